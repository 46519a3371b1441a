#pragma once

// The node table and everything PROTOCOL.md part II sections 2 to 4 and 11 say about
// it: handshakes, gossip, the PFAIL/FAIL failure detector, FORGET and its ban, RESET,
// LEAVING, and the nodes.conf text. A deterministic state machine: no sockets, no
// threads. The Bus drives it (Cron every 100 ms, Receive for every decoded message)
// and carries out what it asks through the Transport interface; unit tests drive it
// with a fake clock and an in-memory transport.

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "disque/cluster/message.h"
#include "disque/common/clock.h"
#include "disque/common/status.h"

namespace disque::cluster {

// PROTOCOL.md II 12.
inline constexpr int64_t kCronPeriodMs = 100;
inline constexpr int64_t kBlacklistTtlMs = 60000;
inline constexpr int64_t kMinHandshakeTimeoutMs = 1000;
// Reconnect back-off (ours; Disque retries every cron run): 100 ms doubling per failed
// connect, capped at min(1 s, node_timeout / 2) so that a restarted node is seen again
// well within a node timeout.
inline constexpr int64_t kMaxReconnectDelayMs = 1000;

// A failure report: `reporter` said in gossip, at `time_ms`, that the node is PFAIL/FAIL.
struct FailureReport {
  std::string reporter;
  int64_t time_ms;  // monotonic
};

// One record of the node table (PROTOCOL.md II 2). Times are the clock's monotonic ms
// (CLUSTER NODES converts them to unix ms). States, by flags:
//   handshake (kNodeHandshake): met or gossiped but not yet answered; the ID is a random
//     temporary one until the first PONG/PING on our link renames it; deleted after the
//     handshake timeout. kNodeMeet: our first message to it is MEET, not PING.
//   normal: no failure flag. kNodePfail: a ping of ours has been unanswered for more than
//   node_timeout. kNodeFail: PFAIL here and confirmed by a majority's gossip, or a FAIL
//   message; cleared by the node's next PONG. kNodeNoAddr: its address now answers with
//   another ID; not contacted. kNodeLeaving: copied from its headers (or our own flag).
struct Node {
  std::string id;               // 40 hex
  std::string ip;               // empty: unknown
  uint16_t port = 0;            // client port
  uint16_t bus_port = 0;        // where its bus listens
  uint16_t flags = 0;           // kNode* bits (message.h)
  int64_t ctime_ms = 0;         // when the record was created (handshake timeout)
  int64_t ping_sent_ms = 0;     // the outstanding ping; 0: none
  int64_t pong_received_ms = 0; // the last pong; 0: never
  int64_t fail_time_ms = 0;     // when FAIL was set
  uint64_t link = 0;            // the transport's outgoing link to it; 0: none
  int64_t link_ctime_ms = 0;    // when that link was created
  int connect_failures = 0;     // consecutive failed connects (reconnect back-off)
  int64_t next_connect_ms = 0;  // no connect before this time
  std::vector<FailureReport> fail_reports;
};

// Where a received message came from.
struct Origin {
  uint64_t link = 0;       // the connection, for the PONG reply
  Node* node = nullptr;    // set when that connection is our outgoing link to `node`
  std::string peer_ip;     // the connection's remote address
  std::string local_ip;    // our end of it (how we learn our own IP)
};

// What the Membership asks of the network. Links are best effort: a message to a node
// with no link is dropped (PROTOCOL.md II intro).
class Transport {
 public:
  virtual ~Transport() = default;
  // Starts an outgoing link to node.ip:node.bus_port and sets node.link (and
  // link_ctime_ms). Leaves node.link 0 if the connect fails at once.
  virtual void Connect(Node& node) = 0;
  // Closes node's outgoing link, if any, and sets node.link to 0.
  virtual void DropLink(Node& node) = 0;
  // Queues `message` on node's outgoing link; dropped if there is none.
  virtual void Send(Node& node, const Message& message) = 0;
  // Queues `message` on the connection `link` (a PONG back where the request came from).
  virtual void Reply(uint64_t link, const Message& message) = 0;
};

// What shards see of the cluster: an immutable snapshot, rebuilt by the Membership's
// owner after changes and swapped in atomically (DESIGN.md "Threads").
struct ClusterView {
  struct Entry {
    std::string id;
    std::string ip;
    uint16_t port = 0;
    uint16_t flags = 0;
    bool linked = false;  // an outgoing link exists (always true for myself)
  };
  std::string myself_id;
  bool leaving = false;        // our own LEAVING flag
  int size = 1;                // records not in handshake, including myself
  std::vector<Entry> nodes;    // every record, myself and handshakes included
  std::vector<std::string> reachable;  // other nodes not handshake/PFAIL/FAIL/LEAVING

  // HELLO priority (PROTOCOL.md 6.1): 1, 5 without a link, 10 PFAIL, 100 FAIL or LEAVING.
  static int Priority(const Entry& e);
};

struct MembershipOptions {
  int64_t node_timeout_ms = 15000;
  std::string announce_ip;  // our fixed advertised IP; empty: learned from peers
  uint16_t port = 0;        // our client port as advertised
  uint16_t bus_port = 0;    // our bus port as advertised
};

class Membership {
 public:
  Membership(const Clock& clock, Transport& transport, MembershipOptions options, uint64_t seed);
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Identity. Exactly one of these runs before anything else: a new node with the given
  // (or a random) ID, or the nodes.conf text. Load errors are PROTOCOL.md II 11's.
  void CreateMyself(std::string id = {});
  Status Load(std::string_view text);
  // nodes.conf content: the CLUSTER NODES lines of every record but handshakes.
  std::string ConfigText() const;

  // The 100 ms cron (PROTOCOL.md II 4).
  void Cron();
  // One decoded message (PROTOCOL.md II 1, 3, 4).
  void Receive(const Message& message, const Origin& from);
  // The transport reports an outgoing link that closed: `established` if it had
  // connected. Unanswered connects back off.
  void LinkClosed(Node& node, bool established);

  // CLUSTER MEET and gossip: a handshake to ip:port (bus port 0: port + 10000). False
  // when the address is invalid or a handshake to it is already running.
  bool StartHandshake(std::string_view ip, uint16_t port, uint16_t bus_port = 0);
  // CLUSTER FORGET, with PROTOCOL.md 6.7's errors.
  Status Forget(std::string_view id);
  // CLUSTER RESET: forget every other node; `hard` also takes a new random ID.
  void Reset(bool hard);
  // CLUSTER LEAVING yes/no; true when the flag changed.
  bool SetLeaving(bool leaving);
  bool leaving() const;

  void set_node_timeout(int64_t ms) { options_.node_timeout_ms = ms; }
  int64_t node_timeout() const { return options_.node_timeout_ms; }

  const Node& myself() const { return *myself_; }
  const Node* Find(std::string_view id) const;
  size_t known() const { return nodes_.size(); }
  int size() const;  // PROTOCOL.md II 2 "cluster size"
  const std::vector<Node*>& reachable() const { return reachable_; }

  // CLUSTER NODES.
  std::string NodesText() const;
  ClusterView View() const;

  // A message from this node: the header filled in (job messages add their body).
  Message Header(MessageType type) const;
  // The job messages' "known sender": a record that is not a handshake.
  const Node* KnownSender(std::string_view id) const;
  // Every other record not in handshake ("broadcast to all", PROTOCOL.md II 5).
  template <typename F>
  void ForEachPeer(F fn) const {
    for (const auto& n : nodes_) {
      if (n.get() != myself_ && !(n->flags & kNodeHandshake)) fn(*n);
    }
  }

  // Set by every change nodes.conf must record (PROTOCOL.md II 11's triggers); the
  // owner writes the file and clears it. `TakeSave` returns whether a save is due.
  bool TakeSave();
  // Set by every change the ClusterView shows.
  bool TakeViewChange();

 private:
  Node* Lookup(std::string_view id);
  Node& AddNode(std::string id, uint16_t flags);
  void DeleteNode(Node& node);
  void Rename(Node& node, std::string id);
  void SendPing(Node& node, MessageType type);
  void AppendGossip(Message& m);
  void ProcessGossip(const Message& m, Node* sender);
  void MarkFailingIfNeeded(Node& node);
  size_t CountFailureReports(Node& node);
  void Broadcast(const Message& m);
  void UpdateReachable();
  bool Blacklisted(std::string_view id);
  std::string AdvertisedIp(const Message& m, const Origin& from) const;
  std::string Line(const Node& n) const;
  int64_t ToUnixMs(int64_t monotonic_ms) const;
  void Changed(bool save) {
    view_changed_ = true;
    save_pending_ = save_pending_ || save;
  }

  const Clock& clock_;
  Transport& transport_;
  MembershipOptions options_;
  std::mt19937_64 rng_;
  // Records in creation order (random picks index this), and by ID. Owned here.
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unordered_map<std::string, Node*> by_id_;
  Node* myself_ = nullptr;
  std::vector<Node*> reachable_;
  std::unordered_map<std::string, int64_t> blacklist_;  // ID → expiry (monotonic ms)
  uint64_t cron_runs_ = 0;
  bool save_pending_ = false;
  bool view_changed_ = true;
};

// A valid numeric IPv4 or IPv6 address, in canonical text form (IPv4-mapped IPv6
// addresses become IPv4); empty if `ip` is not one.
std::string CanonicalIp(std::string_view ip);

}  // namespace disque::cluster
