// Membership (PROTOCOL.md II 2-4 and 11, I 6.7) over an in-memory network. N state
// machines share one fake clock; each talks through its own Transport adapter to a
// simulator that keeps the two ends of a connection apart, as the real bus does: the
// originator knows it by its outgoing link ID (node.link), the acceptor by another ID,
// and every node lives at its own IP, so that PONG routing, own-IP learning and the
// address checks are exercised as on real sockets.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "disque/cluster/membership.h"
#include "disque/cluster/message.h"
#include "support/fake_clock.h"

namespace disque::cluster {
namespace {

constexpr int64_t kTimeout = 1000;
constexpr uint16_t kBusPortOffset = 10000;
constexpr uint16_t kAbsent = 0xffff;  // FlagsAt: the observer has no such record
const std::string kCorrupted = "Unrecoverable error: corrupted cluster config file.";

// Node i lives at 127.0.0.<i+1>, client port 7000 + i, bus port 17000 + i.
std::string IpOf(int i) { return "127.0.0." + std::to_string(i + 1); }
uint16_t PortOf(int i) { return static_cast<uint16_t>(7000 + i); }

bool IsHexId(std::string_view id) {
  return id.size() == kNodeIdSize && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::vector<std::string> Split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// The lines of a CLUSTER NODES / nodes.conf text, each checked to end in '\n'.
std::vector<std::string> Lines(const std::string& text) {
  EXPECT_TRUE(text.empty() || text.back() == '\n') << text;
  std::vector<std::string> lines = Split(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// The line of `text` for node `id`, split at single spaces; empty if there is none.
std::vector<std::string> FieldsOf(const std::string& text, const std::string& id) {
  for (const std::string& line : Lines(text)) {
    if (line.starts_with(id + " ")) return Split(line, ' ');
  }
  return {};
}

// Field `k` of node `id`'s line in `text`; empty if there is no such line.
std::string Field(const std::string& text, const std::string& id, size_t k) {
  const std::vector<std::string> f = FieldsOf(text, id);
  return k < f.size() ? f[k] : std::string();
}

uint16_t FlagsAt(const Membership& observer, const std::string& id) {
  const Node* n = observer.Find(id);
  return n == nullptr ? kAbsent : n->flags;
}

bool Failing(uint16_t flags) { return flags != kAbsent && (flags & (kNodePfail | kNodeFail)) != 0; }

class SimCluster;

// One node's side of the network: every call goes to the simulator, tagged with the node.
class SimTransport final : public Transport {
 public:
  SimTransport(SimCluster& sim, int self) : sim_(sim), self_(self) {}
  void Connect(Node& node) override;
  void DropLink(Node& node) override;
  void Send(Node& node, const Message& message) override;
  void Reply(uint64_t link, const Message& message) override;

 private:
  SimCluster& sim_;
  int self_;
};

// N nodes, one FakeClock. Messages go through one FIFO queue that Deliver() drains (never
// from inside a Transport call). As with TCP, what was sent on a connection still
// reaches the acceptor after the originator closed it (or died), but a reply reaches the
// originator only while its link is open, and nothing reaches a dead node. Kill(i) closes every
// connection of i (the originator of an outgoing link to i is told through LinkClosed(node, true))
// and makes connects to i's address fail. Pause(i) is SIGSTOP: i runs no cron and reads nothing,
// but connects to it succeed (the kernel accepts) and what is sent to it waits; Resume(i) hands it
// over in order.
class SimCluster {
 public:
  explicit SimCluster(int n, int64_t node_timeout_ms = kTimeout) : timeout_(node_timeout_ms) {
    for (int i = 0; i < n; ++i) {
      Peer& p = peers_.emplace_back();
      p.ip = IpOf(i);
      p.port = PortOf(i);
      p.bus_port = static_cast<uint16_t>(PortOf(i) + kBusPortOffset);
      Boot(i, nullptr);
    }
  }

  int size() const { return static_cast<int>(peers_.size()); }
  Membership& m(int i) { return *peers_[i].membership; }
  std::string id(int i) { return m(i).myself().id; }
  testing::FakeClock& clock() { return clock_; }
  int64_t now() const { return clock_.MonotonicMs(); }
  bool alive(int i) const { return peers_[i].alive; }

  // --- driving the simulation

  // Advances time by `ms` in cron periods: each period runs every running node's cron,
  // then delivers everything queued.
  void Step(int64_t ms) {
    for (int64_t t = 0; t < ms; t += kCronPeriodMs) {
      clock_.Advance(kCronPeriodMs);
      for (auto& p : peers_) {
        if (p.alive && !p.paused) p.membership->Cron();
      }
      Deliver();
    }
  }
  // Steps until `done()` holds, evaluating it after every period (so it can also check
  // invariants on the way); false if `limit_ms` passed first.
  template <typename F>
  bool StepUntil(F done, int64_t limit_ms) {
    if (done()) return true;
    for (int64_t t = 0; t < limit_ms; t += kCronPeriodMs) {
      Step(kCronPeriodMs);
      if (done()) return true;
    }
    return false;
  }

  void Deliver() {
    size_t budget = 2'000'000;
    while (!queue_.empty()) {
      if (--budget == 0) {
        ADD_FAILURE() << "message storm";
        queue_.clear();
        return;
      }
      Envelope e = std::move(queue_.front());
      queue_.pop_front();
      Peer& p = peers_[e.to];
      if (!p.alive) continue;
      if (p.paused) {
        p.held.push_back(std::move(e));
        continue;
      }
      if (blackholed_.contains(OutId(e.link))) continue;
      std::optional<Origin> from = e.incoming ? e.incoming : OriginAt(e.to, e.link);
      if (!from) continue;  // a reply to a link closed meanwhile
      if (on_deliver_) on_deliver_(e.to, e.message, *from);
      p.membership->Receive(e.message, *from);
    }
  }

  // i meets i + 1, for every i (the test suite's way of building a cluster).
  void MeetChain() {
    for (int i = 0; i + 1 < size(); ++i) {
      ASSERT_TRUE(m(i).StartHandshake(IpOf(i + 1), PortOf(i + 1))) << i;
    }
  }

  // Every node runs, knows every other one (no handshake entries left), sees no failure,
  // NOADDR or LEAVING flag anywhere, and has all the others reachable.
  bool FullMesh() {
    for (int i = 0; i < size(); ++i) {
      if (!peers_[i].alive) return false;
      const Membership& o = m(i);
      if (o.known() != peers_.size() || o.reachable().size() != peers_.size() - 1) return false;
      for (int j = 0; j < size(); ++j) {
        const uint16_t flags = FlagsAt(o, id(j));
        if (flags != (i == j ? kNodeMyself : 0)) return false;
      }
    }
    return true;
  }

  // --- failures

  void Kill(int i) {
    Peer& p = peers_[i];
    ASSERT_TRUE(p.alive);
    p.saved_conf = p.membership->ConfigText();
    p.alive = false;
    p.paused = false;
    p.held.clear();
    p.closed_while_paused.clear();
    std::vector<Connection> closed;
    for (auto it = conns_.begin(); it != conns_.end();) {
      const Connection& c = it->second;
      if (c.from != i && c.to != i) {
        ++it;
        continue;
      }
      closed.push_back(c);
      incoming_.erase(c.in_id);
      it = conns_.erase(it);
    }
    for (const Connection& c : closed) {
      if (c.from == i) continue;  // the dead end notices nothing
      Peer& owner = peers_[c.from];
      if (owner.paused) {
        owner.closed_while_paused.push_back(c);  // it reads the EOF when it resumes
      } else {
        NotifyClosed(c);
      }
    }
  }
  // Starts killed node i again from the nodes.conf text it had (same identity), or from
  // `conf`, at its old address or at a new one.
  void Restart(int i, std::optional<std::pair<std::string, uint16_t>> address = std::nullopt,
               std::optional<std::string> conf = std::nullopt) {
    Peer& p = peers_[i];
    ASSERT_FALSE(p.alive);
    if (address) {
      p.ip = address->first;
      p.port = address->second;
      p.bus_port = static_cast<uint16_t>(address->second + kBusPortOffset);
    }
    const std::string text = conf ? *conf : p.saved_conf;
    Boot(i, &text);
  }
  // The nodes.conf text node i had when it was killed.
  const std::string& saved_conf(int i) const { return peers_[i].saved_conf; }
  // Starts a brand new node (a new random ID, knowing nobody) where killed node i lived.
  void Replace(int i) {
    ASSERT_FALSE(peers_[i].alive);
    Boot(i, nullptr);
  }
  // From now on, what travels on `from`'s current outgoing link to `to` (both ways) is
  // silently lost, as behind a middlebox that forgot the connection; new connections
  // work. False if there is no such link.
  bool BlackholeLink(int from, int to) {
    for (const auto& [out_id, c] : conns_) {
      if (c.from == from && c.to == to && c.node->link == out_id) {
        blackholed_.insert(out_id);
        return true;
      }
    }
    return false;
  }
  // Connections `from` opened to `to` so far.
  int connects(int from, int to) const {
    auto it = connects_.find({from, to});
    return it == connects_.end() ? 0 : it->second;
  }
  void Pause(int i) { peers_[i].paused = true; }
  void Resume(int i) {
    Peer& p = peers_[i];
    p.paused = false;
    for (const Connection& c : std::exchange(p.closed_while_paused, {})) NotifyClosed(c);
    std::deque<Envelope> held = std::exchange(p.held, {});
    for (Envelope& e : held) queue_.push_back(std::move(e));
    Deliver();
  }

  // --- observation

  // The largest gossip section a node sent while it knew `known` records.
  size_t max_gossip(size_t known) const {
    auto it = max_gossip_.find(known);
    return it == max_gossip_.end() ? 0 : it->second;
  }
  uint64_t sent(MessageType type) const {
    auto it = sent_by_type_.find(static_cast<uint8_t>(type));
    return it == sent_by_type_.end() ? 0 : it->second;
  }
  uint64_t replies(int i) const { return peers_[i].replies; }
  void set_on_deliver(std::function<void(int, const Message&, const Origin&)> f) {
    on_deliver_ = std::move(f);
  }

  std::string Dump() {
    std::string out;
    for (int i = 0; i < size(); ++i) {
      out += "--- node " + std::to_string(i) + (peers_[i].alive ? "" : " (dead)") +
             (peers_[i].paused ? " (paused)" : "") + "\n";
      if (peers_[i].membership) out += m(i).NodesText();
    }
    return out;
  }

  // --- the Transport, node by node

  void Connect(int self, Node& node) {
    if (node.link != 0) ADD_FAILURE() << "Connect while a link is open";
    for (int i = 0; i < size(); ++i) {
      const Peer& p = peers_[i];
      if (!p.alive || p.ip != node.ip || p.bus_port != node.bus_port) continue;
      Connection c{self, i, &node, next_link_++, next_link_++, peers_[self].ip, p.ip};
      conns_.emplace(c.out_id, c);
      incoming_.emplace(c.in_id, c.out_id);
      node.link = c.out_id;
      node.link_ctime_ms = now();
      ++connects_[{self, i}];
      return;
    }
    // Nobody listens there: the connect fails at once and node.link stays 0.
  }
  void DropLink(int self, Node& node) {
    if (node.link == 0) return;
    auto it = conns_.find(node.link);
    if (it == conns_.end()) {
      ADD_FAILURE() << "DropLink of a link that does not exist";
    } else if (it->second.from != self || it->second.node != &node) {
      ADD_FAILURE() << "DropLink of another node's link";
    } else {
      incoming_.erase(it->second.in_id);
      conns_.erase(it);
    }
    node.link = 0;
  }
  void Send(int self, Node& node, const Message& message) {
    CheckMessage(self, message);
    if (node.link == 0) return;  // best effort: no link, no message
    auto it = conns_.find(node.link);
    if (it == conns_.end() || it->second.from != self || it->second.node != &node) {
      ADD_FAILURE() << "Send on a link that is not this node's";
      return;
    }
    const Connection& c = it->second;
    queue_.push_back({c.to, c.in_id, message, Origin{c.in_id, nullptr, c.from_ip, c.to_ip}});
  }
  void Reply(int self, uint64_t link, const Message& message) {
    CheckMessage(self, message);
    ++peers_[self].replies;
    if (auto in = incoming_.find(link); in != incoming_.end()) {
      const Connection& c = conns_.at(in->second);
      EXPECT_EQ(c.to, self);
      queue_.push_back({c.from, c.out_id, message, std::nullopt});
    } else if (auto out = conns_.find(link); out != conns_.end()) {
      const Connection& c = out->second;
      EXPECT_EQ(c.from, self);
      queue_.push_back({c.to, c.in_id, message, Origin{c.in_id, nullptr, c.from_ip, c.to_ip}});
    }
    // Otherwise the connection is gone and the reply with it.
  }

 private:
  struct Connection {
    int from;         // the node that connected
    int to;           // the node that accepted
    Node* node;       // `from`'s record whose outgoing link this is
    uint64_t out_id;  // the ID `from` knows it by (node->link)
    uint64_t in_id;   // the ID `to` knows it by (Origin.link of what arrives there)
    std::string from_ip;
    std::string to_ip;
  };
  struct Envelope {
    int to;
    uint64_t link;  // the receiver's ID of the connection
    Message message;
    std::optional<Origin> incoming;  // set when it travels to the acceptor
  };
  struct Peer {
    std::string ip;
    uint16_t port = 0;
    uint16_t bus_port = 0;
    std::unique_ptr<SimTransport> transport;
    std::unique_ptr<Membership> membership;
    bool alive = false;
    bool paused = false;
    std::string saved_conf;
    std::deque<Envelope> held;
    std::vector<Connection> closed_while_paused;
    uint64_t replies = 0;
    int generation = 0;
  };

  void Boot(int i, const std::string* conf) {
    Peer& p = peers_[i];
    p.membership.reset();
    p.transport = std::make_unique<SimTransport>(*this, i);
    const uint64_t seed =
        1000 + static_cast<uint64_t>(i) + 100 * static_cast<uint64_t>(p.generation++);
    p.membership = std::make_unique<Membership>(
        clock_, *p.transport, MembershipOptions{timeout_, "", p.port, p.bus_port}, seed);
    if (conf == nullptr) {
      p.membership->CreateMyself();
    } else {
      const Status st = p.membership->Load(*conf);
      ASSERT_TRUE(st.ok()) << st.message();
    }
    p.alive = true;
    p.paused = false;
  }

  uint64_t OutId(uint64_t link) const {
    auto in = incoming_.find(link);
    return in == incoming_.end() ? link : in->second;
  }

  // Where a reply arriving on the originator's link `link` comes from; nothing once that
  // link is closed.
  std::optional<Origin> OriginAt(int receiver, uint64_t link) const {
    auto out = conns_.find(link);
    if (out == conns_.end()) return std::nullopt;
    const Connection& c = out->second;
    EXPECT_EQ(c.from, receiver);
    return Origin{link, c.node, c.to_ip, c.from_ip};
  }

  void NotifyClosed(const Connection& c) {
    if (c.node->link != c.out_id) return;  // already dropped or replaced
    c.node->link = 0;
    peers_[c.from].membership->LinkClosed(*c.node, true);
  }

  // PROTOCOL.md II 3.6, checked on every message any node sends: at most
  // max(3, known/10) gossip entries and never more than known - 2; only records the
  // sender has, never itself, a handshake or a NOADDR node; no entry twice.
  void CheckMessage(int self, const Message& message) {
    const Membership& sender = *peers_[self].membership;
    ++sent_by_type_[message.type];
    EXPECT_EQ(message.sender, sender.myself().id);
    EXPECT_EQ(message.port, peers_[self].port);
    const size_t known = sender.known();
    const size_t cap = known < 2 ? 0 : std::min<size_t>(std::max<size_t>(3, known / 10), known - 2);
    size_t& max = max_gossip_[known];
    max = std::max(max, message.gossip.size());
    if (message.gossip.size() > cap) {
      ADD_FAILURE() << "node " << self << " knows " << known << " records and sent "
                    << message.gossip.size() << " gossip entries (cap " << cap << ")";
    }
    std::set<std::string> seen;
    for (const GossipEntry& g : message.gossip) {
      const Node* n = sender.Find(g.id);
      if (g.id == sender.myself().id) ADD_FAILURE() << "node " << self << " gossips about itself";
      if (n == nullptr) {
        ADD_FAILURE() << "node " << self << " gossips about unknown " << g.id;
      } else if (n->flags & (kNodeHandshake | kNodeNoAddr)) {
        ADD_FAILURE() << "node " << self << " gossips about a handshake/noaddr record " << g.id;
      }
      if (g.flags & (kNodeHandshake | kNodeNoAddr | kNodeMyself)) {
        ADD_FAILURE() << "gossip entry with flags " << g.flags;
      }
      if (!seen.insert(g.id).second) ADD_FAILURE() << "gossip entry twice: " << g.id;
    }
  }

  testing::FakeClock clock_;
  int64_t timeout_;
  std::vector<Peer> peers_;
  std::map<uint64_t, Connection> conns_;   // by out_id
  std::map<uint64_t, uint64_t> incoming_;  // in_id → out_id
  std::set<uint64_t> blackholed_;          // out_ids
  std::map<std::pair<int, int>, int> connects_;
  std::deque<Envelope> queue_;
  uint64_t next_link_ = 1;
  std::map<size_t, size_t> max_gossip_;
  std::map<uint8_t, uint64_t> sent_by_type_;
  std::function<void(int, const Message&, const Origin&)> on_deliver_;
};

void SimTransport::Connect(Node& node) { sim_.Connect(self_, node); }
void SimTransport::DropLink(Node& node) { sim_.DropLink(self_, node); }
void SimTransport::Send(Node& node, const Message& message) { sim_.Send(self_, node, message); }
void SimTransport::Reply(uint64_t link, const Message& message) {
  sim_.Reply(self_, link, message);
}

// For a Membership that only loads and renders: nothing ever connects.
class NullTransport final : public Transport {
 public:
  void Connect(Node&) override {}
  void DropLink(Node& node) override { node.link = 0; }
  void Send(Node&, const Message&) override {}
  void Reply(uint64_t, const Message&) override {}
};

// Load() on a fresh Membership: "" when it succeeds, else the error text.
std::string LoadError(const std::string& text) {
  testing::FakeClock clock;
  NullTransport none;
  Membership fresh(clock, none, MembershipOptions{kTimeout, "", 7000, 0}, 1);
  const Status st = fresh.Load(text);
  return st.ok() ? std::string() : std::string(st.message());
}

const std::string kIdA(40, 'a');
const std::string kIdB(40, 'b');
const std::string kIdC(40, 'c');

// --------------------------------------------------------------------------- joining

TEST(ClusterMembershipTest, ChainOfMeetsBecomesAFullMesh) {
  SimCluster sim(7);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 10000)) << sim.Dump();
  std::set<std::string> ids;
  for (int i = 0; i < sim.size(); ++i) {
    EXPECT_TRUE(IsHexId(sim.id(i))) << sim.id(i);
    ids.insert(sim.id(i));
  }
  EXPECT_EQ(ids.size(), 7u);
  for (int i = 0; i < sim.size(); ++i) {
    const Membership& o = sim.m(i);
    EXPECT_EQ(o.known(), 7u);
    EXPECT_EQ(o.size(), 7);
    EXPECT_EQ(o.reachable().size(), 6u);
    // Nobody announced an IP: each learned its own from the address it was reached at.
    EXPECT_EQ(o.myself().ip, IpOf(i));
    for (int j = 0; j < sim.size(); ++j) {
      if (j == i) continue;
      const Node* n = o.Find(sim.id(j));
      ASSERT_NE(n, nullptr);
      EXPECT_EQ(n->ip, IpOf(j));
      EXPECT_EQ(n->port, PortOf(j));
      EXPECT_EQ(n->bus_port, PortOf(j) + kBusPortOffset);
      EXPECT_NE(n->link, 0u);
    }
    const ClusterView view = o.View();
    EXPECT_EQ(view.myself_id, sim.id(i));
    EXPECT_EQ(view.size, 7);
    EXPECT_EQ(view.nodes.size(), 7u);
    EXPECT_EQ(view.reachable.size(), 6u);
    EXPECT_EQ(Lines(o.NodesText()).size(), 7u);
  }
}

TEST(ClusterMembershipTest, MeetsFromBothSidesAtOnceConverge) {
  SimCluster sim(2);
  ASSERT_TRUE(sim.m(0).StartHandshake(IpOf(1), PortOf(1)));
  ASSERT_TRUE(sim.m(1).StartHandshake(IpOf(0), PortOf(0)));
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 3000)) << sim.Dump();
}

// PROTOCOL.md II 3.4: a handshake answered by a node already known (or by ourselves)
// is dropped, not turned into a second record.
TEST(ClusterMembershipTest, MeetOfAKnownNodeOrOfOurselvesLeavesNoExtraRecord) {
  SimCluster sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  ASSERT_TRUE(sim.m(0).StartHandshake(IpOf(0), PortOf(0)));
  ASSERT_TRUE(sim.m(0).StartHandshake(IpOf(1), PortOf(1)));
  EXPECT_EQ(sim.m(0).known(), 5u);
  EXPECT_EQ(sim.m(0).size(), 3);
  // Well before the handshake timeout: both were answered and resolved.
  ASSERT_TRUE(sim.StepUntil([&] { return sim.m(0).known() == 3; }, 500)) << sim.Dump();
  EXPECT_TRUE(sim.FullMesh()) << sim.Dump();
  EXPECT_EQ(sim.m(0).Find(sim.id(1))->ip, IpOf(1));
  EXPECT_EQ(sim.m(0).myself().ip, IpOf(0));
}

// PROTOCOL.md II 3.7: gossip is only taken from known senders; a PING from a stranger is
// answered but neither adds the stranger nor the nodes it mentions.
TEST(ClusterMembershipTest, PingFromAnUnknownSenderIsAnsweredButLearnsNothing) {
  SimCluster sim(1);
  Message ping;
  ping.type = static_cast<uint8_t>(MessageType::kPing);
  ping.sender = kIdA;
  ping.port = 7100;
  ping.bus_port = 17100;
  ping.gossip.push_back(GossipEntry{kIdB, "127.0.0.77", 7177, 17177, 0, 0, 0});
  const uint64_t replies = sim.replies(0);
  sim.m(0).Receive(ping, Origin{424242, nullptr, "127.0.0.70", "127.0.0.1"});
  EXPECT_EQ(sim.replies(0), replies + 1);  // the PONG
  EXPECT_EQ(sim.m(0).known(), 1u);
  // Unknown message types are ignored, and not answered.
  Message odd = ping;
  odd.type = 99;
  sim.m(0).Receive(odd, Origin{424242, nullptr, "127.0.0.70", "127.0.0.1"});
  EXPECT_EQ(sim.replies(0), replies + 1);
  EXPECT_EQ(sim.m(0).known(), 1u);
}

// Job messages (PROTOCOL.md II 5) are routed to the job engine by the Bus: Membership
// ignores them. They are not heartbeats, so even from a known sender they neither copy
// its LEAVING flag, nor get a PONG, nor bring gossip in.
TEST(ClusterMembershipTest, JobMessagesAreIgnored) {
  SimCluster sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  Membership& m0 = sim.m(0);
  const Origin from{999999, nullptr, IpOf(1), IpOf(0)};
  Message job;
  job.sender = sim.id(1);
  job.port = PortOf(1);
  job.bus_port = static_cast<uint16_t>(PortOf(1) + kBusPortOffset);
  job.sender_flags = kNodeLeaving;
  job.gossip.push_back(GossipEntry{kIdA, "127.0.0.77", 7177, 17177, 0, 0, 0});
  job.node = sim.id(2);
  job.job_id = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";
  m0.TakeSave();
  m0.TakeViewChange();
  const std::string before = m0.NodesText();
  const size_t known = m0.known();
  const uint64_t replies = sim.replies(0);
  for (auto type = static_cast<uint8_t>(MessageType::kReplJob);
       type <= static_cast<uint8_t>(MessageType::kPause); ++type) {
    job.type = type;
    m0.Receive(job, from);
  }
  EXPECT_EQ(m0.NodesText(), before);
  EXPECT_EQ(m0.known(), known);
  EXPECT_EQ(sim.replies(0), replies);
  EXPECT_FALSE(m0.TakeSave());
  EXPECT_FALSE(m0.TakeViewChange());
  // The same message as a PING would have changed all of that.
  job.type = static_cast<uint8_t>(MessageType::kPing);
  m0.Receive(job, from);
  EXPECT_EQ(sim.replies(0), replies + 1);
  EXPECT_EQ(FlagsAt(m0, sim.id(1)), kNodeLeaving);
  EXPECT_EQ(m0.known(), known + 1);  // a handshake with the gossiped node
}

// ---------------------------------------------------------------- failure detection

TEST(ClusterMembershipTest, KilledNodesArePfailThenFailAndClearAfterRestart) {
  SimCluster sim(7);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 10000)) << sim.Dump();
  const std::vector<int> dead = {2, 5};
  const std::vector<int> survivors = {0, 1, 3, 4, 6};
  std::map<std::pair<int, int>, int64_t> last_pong;
  for (int s : survivors) {
    for (int d : dead) {
      last_pong[std::make_pair(s, d)] = sim.m(s).Find(sim.id(d))->pong_received_ms;
      ASSERT_GT(last_pong[std::make_pair(s, d)], 0);
    }
  }
  const std::string dead_ids[] = {sim.id(2), sim.id(5)};
  for (int d : dead) sim.Kill(d);
  const int64_t killed_at = sim.now();
  const uint64_t fails_sent = sim.sent(MessageType::kFail);

  int pfail_seen = 0;
  std::set<std::pair<int, int>> pfailed;
  auto all_fail = [&] {
    bool all = true;
    for (int s : survivors) {
      const Membership& o = sim.m(s);
      for (int d : dead) {
        const Node* n = o.Find(sim.id(d));
        if (n == nullptr) {
          ADD_FAILURE() << "node " << s << " lost its record of " << d;
          return true;
        }
        // Never flagged before a node timeout without a pong.
        if (Failing(n->flags)) {
          EXPECT_GT(sim.now() - last_pong[std::make_pair(s, d)], kTimeout)
              << "survivor " << s << " dead " << d;
        }
        if ((n->flags & kNodePfail) && pfailed.insert({s, d}).second) {
          ++pfail_seen;
          EXPECT_GT(sim.now() - n->ping_sent_ms, kTimeout) << "survivor " << s << " dead " << d;
        }
        if (!(n->flags & kNodeFail)) all = false;
      }
      // Survivors keep answering each other.
      for (int t : survivors) {
        EXPECT_FALSE(Failing(FlagsAt(o, sim.id(t)))) << s << " flags " << t;
      }
    }
    return all;
  };
  ASSERT_TRUE(sim.StepUntil(all_fail, 4 * kTimeout)) << sim.Dump();
  EXPECT_GT(pfail_seen, 0);  // the timing checks above did run
  EXPECT_GT(sim.now() - killed_at, kTimeout);
  EXPECT_GT(sim.sent(MessageType::kFail), fails_sent);  // FAIL was broadcast
  for (int s : survivors) {
    const Membership& o = sim.m(s);
    EXPECT_EQ(o.reachable().size(), 4u) << s;
    EXPECT_EQ(o.size(), 7) << s;  // failing nodes still count
    for (const std::string& d : dead_ids) {
      EXPECT_EQ(FlagsAt(o, d), kNodeFail) << s;  // FAIL replaces PFAIL
      const std::vector<std::string> f = FieldsOf(o.NodesText(), d);
      ASSERT_EQ(f.size(), 6u);
      EXPECT_EQ(f[2], "fail");
      for (const ClusterView::Entry& e : o.View().nodes) {
        if (e.id == d) {
          EXPECT_EQ(ClusterView::Priority(e), 100);
        }
      }
    }
  }

  for (int s : survivors) sim.m(s).TakeSave();
  for (int d : dead) sim.Restart(d);
  EXPECT_EQ(sim.id(2), dead_ids[0]);
  EXPECT_EQ(sim.id(5), dead_ids[1]);
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 3 * kTimeout)) << sim.Dump();
  for (int s : survivors) {
    EXPECT_TRUE(sim.m(s).TakeSave()) << s;  // clearing FAIL is saved
    for (const std::string& d : dead_ids) EXPECT_EQ(FlagsAt(sim.m(s), d), 0) << s;
  }
}

TEST(ClusterMembershipTest, TwoNodeClusterNeverReachesTheFailQuorum) {
  SimCluster sim(2);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  const std::string peer = sim.id(1);
  sim.Kill(1);
  for (int t = 0; t < 100; ++t) {
    sim.Step(kCronPeriodMs);
    ASSERT_FALSE(FlagsAt(sim.m(0), peer) & kNodeFail) << "at +" << (t + 1) * kCronPeriodMs << " ms";
  }
  EXPECT_EQ(FlagsAt(sim.m(0), peer), kNodePfail);
  EXPECT_TRUE(sim.m(0).reachable().empty());
  EXPECT_EQ(sim.m(0).size(), 2);
  const std::vector<std::string> f = FieldsOf(sim.m(0).NodesText(), peer);
  ASSERT_EQ(f.size(), 6u);
  EXPECT_EQ(f[2], "fail?");
  EXPECT_EQ(f[5], "disconnected");
}

// PROTOCOL.md II 4: FAIL(id) from a known sender is believed even without a local PFAIL,
// and undone by the node's own next PONG.
TEST(ClusterMembershipTest, FailMessageFromAKnownSenderIsAccepted) {
  SimCluster sim(4);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  Membership& m0 = sim.m(0);
  const Origin from{999999, nullptr, IpOf(1), IpOf(0)};
  Message fail;
  fail.type = static_cast<uint8_t>(MessageType::kFail);
  fail.sender = sim.id(1);
  fail.port = PortOf(1);
  fail.bus_port = static_cast<uint16_t>(PortOf(1) + kBusPortOffset);
  fail.node = sim.id(2);
  m0.TakeSave();

  Message stranger = fail;  // unknown sender
  stranger.sender = kIdA;
  m0.Receive(stranger, from);
  Message about_me = fail;  // about ourselves
  about_me.node = sim.id(0);
  m0.Receive(about_me, from);
  Message about_unknown = fail;
  about_unknown.node = kIdB;
  m0.Receive(about_unknown, from);
  ASSERT_TRUE(m0.StartHandshake("127.0.0.99", 7099));  // a sender still in handshake
  std::string handshake_id;
  for (const auto& e : m0.View().nodes) {
    if (e.flags & kNodeHandshake) handshake_id = e.id;
  }
  ASSERT_FALSE(handshake_id.empty());
  Message from_handshake = fail;
  from_handshake.sender = handshake_id;
  m0.Receive(from_handshake, from);
  EXPECT_EQ(FlagsAt(m0, sim.id(2)), 0);
  EXPECT_EQ(m0.myself().flags, kNodeMyself);
  EXPECT_EQ(m0.Find(kIdB), nullptr);
  ASSERT_TRUE(m0.Forget(handshake_id).ok());
  m0.TakeSave();

  ASSERT_EQ(FlagsAt(m0, sim.id(2)), 0);  // node 0 itself sees nothing wrong
  m0.Receive(fail, from);
  EXPECT_EQ(FlagsAt(m0, sim.id(2)), kNodeFail);
  EXPECT_EQ(m0.reachable().size(), 2u);
  EXPECT_TRUE(m0.TakeSave());
  m0.Receive(fail, from);  // nothing new
  EXPECT_FALSE(m0.TakeSave());
  // Node 2 is alive: its next PONG to node 0 clears FAIL.
  ASSERT_TRUE(sim.StepUntil(
      [&] { return FlagsAt(m0, sim.id(2)) == 0 && m0.reachable().size() == 3; }, 2 * kTimeout))
      << sim.Dump();
  EXPECT_TRUE(m0.TakeSave());
}

TEST(ClusterMembershipTest, PausedNodeIsFailedAndRecoversOnResume) {
  SimCluster sim(5);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  const std::string paused = sim.id(4);
  sim.Pause(4);
  const int64_t paused_at = sim.now();
  std::set<int> saw_pfail;
  ASSERT_TRUE(sim.StepUntil(
      [&] {
        bool all = true;
        for (int s = 0; s < 4; ++s) {
          const uint16_t flags = FlagsAt(sim.m(s), paused);
          if (Failing(flags)) {
            EXPECT_GT(sim.now() - paused_at, kTimeout);
          }
          if (flags & kNodePfail) saw_pfail.insert(s);
          if (!(flags & kNodeFail)) all = false;
        }
        return all;
      },
      5 * kTimeout))
      << sim.Dump();
  EXPECT_FALSE(saw_pfail.empty());
  for (int s = 0; s < 4; ++s) EXPECT_EQ(sim.m(s).reachable().size(), 3u) << s;
  // Frozen: the paused node's own table did not move.
  EXPECT_EQ(sim.m(4).reachable().size(), 4u);

  sim.Resume(4);
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 3 * kTimeout)) << sim.Dump();
  for (int s = 0; s < 4; ++s) EXPECT_EQ(FlagsAt(sim.m(s), paused), 0) << s;
}

// PROTOCOL.md II 4: a link whose pings go unanswered for node_timeout/2 (and that is older
// than node_timeout) is dropped and reconnected, so a silently dead connection is
// repaired before the node would be flagged PFAIL.
TEST(ClusterMembershipTest, SilentlyDeadLinkIsReplacedBeforePfail) {
  SimCluster sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  sim.Step(2 * kTimeout);  // every link is older than node_timeout
  const int connects = sim.connects(0, 1);
  ASSERT_TRUE(sim.BlackholeLink(0, 1));
  for (int t = 0; t < 50; ++t) {
    sim.Step(kCronPeriodMs);
    ASSERT_FALSE(Failing(FlagsAt(sim.m(0), sim.id(1))))
        << "at +" << (t + 1) * kCronPeriodMs << " ms\n"
        << sim.Dump();
  }
  EXPECT_GT(sim.connects(0, 1), connects);
  EXPECT_TRUE(sim.FullMesh()) << sim.Dump();
}

// PING from `from` to `to`, injected as if it came on an incoming connection, with the
// given gossip entries about other nodes (flags as given).
void InjectGossip(SimCluster& sim, int to, int from,
                  const std::vector<std::pair<int, uint16_t>>& about) {
  Message ping;
  ping.type = static_cast<uint8_t>(MessageType::kPing);
  ping.sender = sim.id(from);
  ping.port = PortOf(from);
  ping.bus_port = static_cast<uint16_t>(PortOf(from) + kBusPortOffset);
  for (const auto& [node, flags] : about) {
    ping.gossip.push_back(GossipEntry{sim.id(node), IpOf(node), PortOf(node),
                                      static_cast<uint16_t>(PortOf(node) + kBusPortOffset), flags,
                                      0, 0});
  }
  sim.m(to).Receive(ping, Origin{888888, nullptr, IpOf(from), IpOf(to)});
}

// Five nodes; nodes 1, 2 and 4 die together, so node 0 sees node 4 PFAIL and hears only
// node 3 agree: 2 of 5, no FAIL quorum -- unless the reports nodes 1 and 2 sent before
// dying are (wrongly) still counted. Returns whether node 0 ever marked node 4 FAIL
// within the next 1.9 s, after `before` ran on the fresh cluster.
template <typename F>
bool FailAfterStaleReports(F before) {
  SimCluster sim(5);
  sim.MeetChain();
  EXPECT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  before(sim);
  const int64_t start = sim.now();
  sim.Kill(1);
  sim.Kill(2);
  sim.Kill(4);
  bool fail = false;
  bool checked = false;  // node 0 got node 3's report while it had node 4 PFAIL
  const std::string dead = sim.id(4);
  const std::string witness = sim.id(3);
  sim.set_on_deliver([&](int to, const Message& m, const Origin&) {
    if (to != 0 || m.sender != witness || !(FlagsAt(sim.m(0), dead) & kNodePfail)) return;
    for (const GossipEntry& g : m.gossip)
      checked = checked || (g.id == dead && (g.flags & kNodePfail));
  });
  while (sim.now() - start < 2 * kTimeout - kCronPeriodMs) {
    sim.Step(kCronPeriodMs);
    fail = fail || (FlagsAt(sim.m(0), dead) & kNodeFail);
  }
  EXPECT_TRUE(checked) << "the FAIL check never ran";
  EXPECT_TRUE(FlagsAt(sim.m(0), dead) & (kNodePfail | kNodeFail));
  return fail;
}

TEST(ClusterMembershipTest, FailQuorumCountsOnlyLiveReports) {
  // Baseline: reports of nodes 1 and 2 from just before they died still count (they are
  // younger than 2 x node_timeout): 1, 2, 3 and ourselves make 4 of 5.
  EXPECT_TRUE(FailAfterStaleReports([](SimCluster& sim) {
    InjectGossip(sim, 0, 1, {{4, kNodePfail}});
    InjectGossip(sim, 0, 2, {{4, kNodePfail}});
  }));
  // A later healthy entry from the same sender withdraws its report (II 3.7).
  EXPECT_FALSE(FailAfterStaleReports([](SimCluster& sim) {
    InjectGossip(sim, 0, 1, {{4, kNodePfail}});
    InjectGossip(sim, 0, 2, {{4, kNodePfail}});
    InjectGossip(sim, 0, 1, {{4, 0}});
    InjectGossip(sim, 0, 2, {{4, 0}});
  }));
  // Reports older than 2 x node_timeout no longer count (II 4).
  EXPECT_FALSE(FailAfterStaleReports([](SimCluster& sim) {
    InjectGossip(sim, 0, 1, {{4, kNodePfail}});
    InjectGossip(sim, 0, 2, {{4, kNodePfail}});
    // Age them without letting nodes 1 and 2 talk to node 0 again.
    sim.Kill(1);
    sim.Kill(2);
    sim.Step(2 * kTimeout + kCronPeriodMs);
    sim.Restart(1);
    sim.Restart(2);
  }));
}

// A two-node cluster: a stopped peer stays PFAIL (never FAIL) and is cleared, with a
// nodes.conf save, by its first PONG after it resumes.
TEST(ClusterMembershipTest, StoppedPeerOfTwoNodesIsPfailUntilItAnswers) {
  SimCluster sim(2);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  sim.Pause(1);
  sim.Step(5 * kTimeout);
  EXPECT_EQ(FlagsAt(sim.m(0), sim.id(1)), kNodePfail);
  sim.m(0).TakeSave();
  sim.Resume(1);
  ASSERT_TRUE(sim.StepUntil([&] { return FlagsAt(sim.m(0), sim.id(1)) == 0; }, kTimeout))
      << sim.Dump();
  EXPECT_TRUE(sim.m(0).TakeSave());  // PFAIL clearing is saved (II 11)
}

// PROTOCOL.md II 3.2-3.3: without an announced IP a node takes its own from the local
// address of a MEET (always) or of a PING (only while it has none).
TEST(ClusterMembershipTest, OwnIpComesFromMeetAndFromPingOnlyWhenUnknown) {
  SimCluster sim(1);
  Membership& m0 = sim.m(0);
  EXPECT_EQ(m0.myself().ip, "");
  Message ping;
  ping.type = static_cast<uint8_t>(MessageType::kPing);
  ping.sender = kIdA;
  ping.port = 7100;
  ping.bus_port = 17100;
  m0.TakeSave();
  m0.Receive(ping, Origin{1, nullptr, "127.0.0.70", "::ffff:127.0.0.7"});
  EXPECT_EQ(m0.myself().ip, "127.0.0.7");
  EXPECT_TRUE(m0.TakeSave());
  m0.Receive(ping, Origin{1, nullptr, "127.0.0.70", "127.0.0.8"});
  EXPECT_EQ(m0.myself().ip, "127.0.0.7");
  EXPECT_FALSE(m0.TakeSave());
  Message meet = ping;
  meet.type = static_cast<uint8_t>(MessageType::kMeet);
  m0.Receive(meet, Origin{1, nullptr, "127.0.0.70", "127.0.0.9"});
  EXPECT_EQ(m0.myself().ip, "127.0.0.9");
  EXPECT_EQ(Field(m0.NodesText(), sim.id(0), 1), "127.0.0.9:7000");

  // An announced IP is never replaced.
  testing::FakeClock clock;
  NullTransport none;
  Membership announced(clock, none, MembershipOptions{kTimeout, "10.0.0.1", 7000, 0}, 1);
  announced.CreateMyself();
  announced.Receive(meet, Origin{1, nullptr, "127.0.0.70", "127.0.0.9"});
  EXPECT_EQ(announced.myself().ip, "10.0.0.1");
}

// PROTOCOL.md II 4: besides the node_timeout/2 pings, once a second the cron pings the
// node with the oldest pong among 5 random ones. With the default 15 s timeout that is
// most of the traffic.
TEST(ClusterMembershipTest, RandomPingOncePerSecond) {
  SimCluster sim(3, 15000);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  int pings = 0;
  const std::string me = sim.id(0);
  sim.set_on_deliver([&](int, const Message& m, const Origin&) {
    pings += m.sender == me && m.type == static_cast<uint8_t>(MessageType::kPing) ? 1 : 0;
  });
  sim.Step(10000);
  // At most 2 from the node_timeout/2 rule (one per peer), about 10 random ones.
  EXPECT_GE(pings, 8);
  EXPECT_LE(pings, 14);
}

// ---------------------------------------------------------------------------- FORGET

TEST(ClusterMembershipTest, ForgetErrorsAndTheSixtySecondBan) {
  SimCluster sim(4);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  Membership& m0 = sim.m(0);
  m0.TakeSave();
  EXPECT_EQ(m0.Forget("abc").message(), "Invalid node identifier");
  EXPECT_EQ(m0.Forget("").message(), "Invalid node identifier");
  EXPECT_EQ(m0.Forget(sim.id(1) + "0").message(), "Invalid node identifier");
  EXPECT_EQ(m0.Forget(std::string(40, 'f')).message(), "Unknown node " + std::string(40, 'f'));
  EXPECT_EQ(m0.Forget(sim.id(0)).message(), "I tried hard but I can't forget myself...");
  EXPECT_EQ(m0.known(), 4u);
  EXPECT_FALSE(m0.TakeSave());

  const std::string gone = sim.id(3);
  ASSERT_TRUE(m0.Forget(gone).ok());
  EXPECT_TRUE(m0.TakeSave());
  EXPECT_EQ(m0.Find(gone), nullptr);
  EXPECT_EQ(m0.known(), 3u);
  EXPECT_EQ(m0.reachable().size(), 2u);
  EXPECT_EQ(m0.NodesText().find(gone), std::string::npos);
  EXPECT_EQ(m0.Forget(gone).message(), "Unknown node " + gone);

  // During the ban nodes 1 and 2 gossip about it and node 3 keeps pinging node 0; node 0
  // neither re-adds it nor starts a handshake towards it.
  int gossip_about_gone = 0;
  sim.set_on_deliver([&](int to, const Message& m, const Origin&) {
    if (to != 0 || m.sender == gone) return;
    for (const GossipEntry& g : m.gossip) gossip_about_gone += g.id == gone ? 1 : 0;
  });
  const int64_t forgot_at = sim.now();
  while (sim.now() + kCronPeriodMs < forgot_at + kBlacklistTtlMs) {
    sim.Step(kCronPeriodMs);
    ASSERT_EQ(m0.Find(gone), nullptr) << "re-added " << sim.now() - forgot_at << " ms after FORGET";
    ASSERT_EQ(m0.known(), 3u) << sim.Dump();
  }
  EXPECT_GT(gossip_about_gone, 0);
  // Once the ban expires, the next gossip about it brings it back.
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 10000)) << sim.Dump();
}

TEST(ClusterMembershipTest, ForgetWorksOnHandshakeEntries) {
  SimCluster sim(1);
  ASSERT_TRUE(sim.m(0).StartHandshake("127.0.0.99", 7099));
  std::string handshake_id;
  for (const auto& e : sim.m(0).View().nodes) {
    if (e.flags & kNodeHandshake) handshake_id = e.id;
  }
  ASSERT_TRUE(IsHexId(handshake_id));
  EXPECT_TRUE(sim.m(0).Forget(handshake_id).ok());
  EXPECT_EQ(sim.m(0).known(), 1u);
}

// ----------------------------------------------------------------- RESET and LEAVING

TEST(ClusterMembershipTest, ResetSoftKeepsTheIdAndHardTakesANewOne) {
  SimCluster sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  Membership& m0 = sim.m(0);
  const std::string before = sim.id(0);
  ASSERT_TRUE(m0.SetLeaving(true));
  m0.TakeSave();

  m0.Reset(false);
  EXPECT_EQ(sim.id(0), before);
  EXPECT_EQ(m0.known(), 1u);
  EXPECT_EQ(m0.size(), 1);
  EXPECT_TRUE(m0.reachable().empty());
  EXPECT_TRUE(m0.TakeSave());
  EXPECT_TRUE(m0.leaving());  // RESET does not clear LEAVING (PROTOCOL.md 6.7)
  EXPECT_EQ(Lines(m0.NodesText()).size(), 1u);
  // The others still ping it; it answers but does not take them back.
  sim.Step(3000);
  EXPECT_EQ(m0.known(), 1u) << m0.NodesText();

  m0.Reset(true);
  const std::string after = sim.id(0);
  EXPECT_NE(after, before);
  EXPECT_TRUE(IsHexId(after));
  EXPECT_EQ(m0.Find(before), nullptr);
  EXPECT_EQ(m0.Find(after), &m0.myself());
  EXPECT_EQ(m0.known(), 1u);
  EXPECT_TRUE(m0.TakeSave());
  EXPECT_TRUE(m0.leaving());
  // Node 0's address now answers with another ID (PROTOCOL.md II 3.9).
  ASSERT_TRUE(sim.StepUntil(
      [&] {
        return (FlagsAt(sim.m(1), before) & kNodeNoAddr) &&
               (FlagsAt(sim.m(2), before) & kNodeNoAddr);
      },
      3 * kTimeout))
      << sim.Dump();
}

TEST(ClusterMembershipTest, LeavingSpreadsWithHeartbeatsAndClears) {
  SimCluster sim(5);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  Membership& m4 = sim.m(4);
  const std::string leaving = sim.id(4);
  m4.TakeSave();
  EXPECT_FALSE(m4.SetLeaving(false));
  EXPECT_FALSE(m4.TakeSave());
  EXPECT_TRUE(m4.SetLeaving(true));
  EXPECT_TRUE(m4.leaving());
  EXPECT_TRUE(m4.TakeSave());
  EXPECT_FALSE(m4.SetLeaving(true));
  EXPECT_FALSE(m4.TakeSave());
  EXPECT_EQ(m4.myself().flags, kNodeMyself | kNodeLeaving);
  EXPECT_TRUE(m4.View().leaving);
  EXPECT_EQ(Field(m4.NodesText(), leaving, 2), "myself,leaving");
  EXPECT_EQ(Field(m4.ConfigText(), leaving, 2), "myself,leaving");

  const int64_t set_at = sim.now();
  auto spread = [&] {
    for (int s = 0; s < 4; ++s) {
      if (FlagsAt(sim.m(s), leaving) != kNodeLeaving || sim.m(s).reachable().size() != 3)
        return false;
    }
    return true;
  };
  ASSERT_TRUE(sim.StepUntil(spread, 2 * kTimeout)) << sim.Dump();
  EXPECT_LE(sim.now() - set_at, 2 * kTimeout);
  for (int s = 0; s < 4; ++s) {
    const auto& r = sim.m(s).reachable();
    EXPECT_TRUE(std::none_of(r.begin(), r.end(), [&](const Node* n) { return n->id == leaving; }));
    for (const ClusterView::Entry& e : sim.m(s).View().nodes) {
      if (e.id == leaving) {
        EXPECT_EQ(ClusterView::Priority(e), 100);
      }
    }
  }
  EXPECT_EQ(m4.reachable().size(), 4u);  // our own flag does not change whom we reach

  EXPECT_TRUE(m4.SetLeaving(false));
  EXPECT_FALSE(m4.SetLeaving(false));
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 2 * kTimeout)) << sim.Dump();
}

// ------------------------------------------------------------------------ handshakes

TEST(ClusterMembershipTest, HandshakeValidationAndTimeout) {
  for (const int64_t timeout : {int64_t{300}, kTimeout, int64_t{3000}}) {
    SCOPED_TRACE("node timeout " + std::to_string(timeout));
    SimCluster sim(1, timeout);
    Membership& m0 = sim.m(0);
    EXPECT_FALSE(m0.StartHandshake("localhost", 7100));
    EXPECT_FALSE(m0.StartHandshake("", 7100));
    EXPECT_FALSE(m0.StartHandshake("1.2.3", 7100));
    EXPECT_FALSE(m0.StartHandshake("256.1.1.1", 7100));
    EXPECT_FALSE(m0.StartHandshake("127.0.0.50", 0));
    EXPECT_EQ(m0.known(), 1u);

    EXPECT_TRUE(m0.StartHandshake("127.0.0.50", 7100));
    EXPECT_FALSE(m0.StartHandshake("127.0.0.50", 7100));         // already in progress
    EXPECT_FALSE(m0.StartHandshake("::ffff:127.0.0.50", 7100));  // the same address
    EXPECT_TRUE(m0.StartHandshake("127.0.0.50", 7101));          // another port
    EXPECT_EQ(m0.known(), 3u);
    EXPECT_EQ(m0.size(), 1);  // handshakes do not count
    EXPECT_TRUE(m0.reachable().empty());
    EXPECT_EQ(Lines(m0.ConfigText()).size(), 1u);  // nor are they saved

    const int64_t expiry = std::max(timeout, kMinHandshakeTimeoutMs);
    sim.Step(expiry);
    EXPECT_EQ(m0.known(), 3u) << "deleted before " << expiry << " ms";
    const std::vector<std::string> lines = Lines(m0.NodesText());
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                            [](const std::string& l) { return Split(l, ' ')[2] == "handshake"; }),
              2);
    sim.Step(2 * kCronPeriodMs);
    EXPECT_EQ(m0.known(), 1u) << m0.NodesText();
    EXPECT_TRUE(m0.StartHandshake("127.0.0.50", 7100));  // may start again
  }
}

// ------------------------------------------------------------------------ nodes.conf

TEST(ClusterMembershipTest, NodesConfRoundTrip) {
  SimCluster sim(5);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  const std::string dead = sim.id(4);
  sim.Kill(4);
  ASSERT_TRUE(sim.m(3).SetLeaving(true));
  ASSERT_TRUE(sim.m(0).SetLeaving(true));
  ASSERT_TRUE(sim.StepUntil(
      [&] {
        return FlagsAt(sim.m(0), dead) == kNodeFail && FlagsAt(sim.m(0), sim.id(3)) == kNodeLeaving;
      },
      5 * kTimeout))
      << sim.Dump();
  ASSERT_TRUE(sim.m(0).StartHandshake("127.0.0.99", 7099));
  const Membership& m0 = sim.m(0);
  const std::string conf = m0.ConfigText();

  const std::vector<std::string> lines = Lines(conf);
  ASSERT_EQ(lines.size(), 5u) << conf;  // no handshake line
  int myself_lines = 0;
  for (const std::string& line : lines) {
    const std::vector<std::string> f = Split(line, ' ');
    ASSERT_EQ(f.size(), 6u) << line;
    EXPECT_EQ(f[2].find("handshake"), std::string::npos) << line;
    myself_lines += Split(f[2], ',')[0] == "myself" ? 1 : 0;
  }
  EXPECT_EQ(myself_lines, 1);
  EXPECT_EQ(Field(conf, sim.id(0), 2), "myself,leaving");
  EXPECT_EQ(Field(conf, sim.id(3), 2), "leaving");
  EXPECT_EQ(Field(conf, dead, 2), "fail");
  EXPECT_EQ(Field(conf, sim.id(1), 2), "noflags");

  testing::FakeClock later(sim.clock().NowMs() + 123456);
  NullTransport none;
  Membership loaded(later, none, MembershipOptions{kTimeout, "", PortOf(0), 0}, 7);
  const Status st = loaded.Load("vars currentEpoch 0 lastVoteEpoch 0\n\n" + conf);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(loaded.myself().id, sim.id(0));
  EXPECT_TRUE(loaded.leaving());
  EXPECT_EQ(loaded.known(), 5u);
  EXPECT_EQ(loaded.size(), 5);
  for (int j = 0; j < 5; ++j) {
    const Node* before = m0.Find(sim.id(j));
    const Node* after = loaded.Find(sim.id(j));
    ASSERT_NE(after, nullptr) << j;
    EXPECT_EQ(after->flags, before->flags) << j;
    EXPECT_EQ(after->ip, before->ip) << j;
    EXPECT_EQ(after->port, before->port) << j;
    EXPECT_EQ(after->bus_port, before->bus_port) << j;
    EXPECT_EQ(after->link, 0u);
    // Non-zero times come back as "now" (PROTOCOL.md II 11); myself has none.
    const std::vector<std::string> f = FieldsOf(conf, sim.id(j));
    EXPECT_EQ(after->ping_sent_ms, f[3] == "0" ? 0 : later.MonotonicMs()) << j;
    EXPECT_EQ(after->pong_received_ms, f[4] == "0" ? 0 : later.MonotonicMs()) << j;
  }
  // Written again, the same nodes with the same addresses and flags.
  const std::string again = loaded.ConfigText();
  ASSERT_EQ(Lines(again).size(), 5u);
  for (int j = 0; j < 5; ++j) {
    const std::vector<std::string> a = FieldsOf(conf, sim.id(j));
    const std::vector<std::string> b = FieldsOf(again, sim.id(j));
    ASSERT_EQ(b.size(), 6u);
    EXPECT_EQ(std::vector<std::string>(a.begin(), a.begin() + 3),
              std::vector<std::string>(b.begin(), b.begin() + 3));
  }
}

TEST(ClusterMembershipTest, NodesConfLoadErrors) {
  const std::string me = kIdA + " 127.0.0.1:7000 myself 0 0 connected\n";
  const std::string peer = kIdB + " 127.0.0.2:7001 noflags 0 0 disconnected\n";
  ASSERT_EQ(LoadError(me + peer), "");
  EXPECT_EQ(LoadError(kIdA + " 127.0.0.1:7000 myself 0 0\n"), kCorrupted);              // 5 fields
  EXPECT_EQ(LoadError(kIdA + " 127.0.0.1:7000 myself 0 0 connected x\n"), kCorrupted);  // 7 fields
  EXPECT_EQ(LoadError(kIdA.substr(1) + " 127.0.0.1:7000 myself 0 0 connected\n"),
            kCorrupted);                                                               // 39 chars
  EXPECT_EQ(LoadError(kIdA + "a 127.0.0.1:7000 myself 0 0 connected\n"), kCorrupted);  // 41 chars
  EXPECT_EQ(LoadError(peer), kCorrupted);                                              // no myself
  EXPECT_EQ(LoadError(""), kCorrupted);
  EXPECT_EQ(LoadError(me + kIdB + " 127.0.0.2:7001 myself 0 0 connected\n"),
            kCorrupted);                               // two myself
  EXPECT_EQ(LoadError(me + peer + peer), kCorrupted);  // the same ID twice
  EXPECT_NE(LoadError(me + kIdB + " 127.0.0.2:7001 bogus 0 0 connected\n"), "");  // unknown flag
  EXPECT_NE(LoadError(kIdA + " 127.0.0.1:7000 myself,fail?,sleepy 0 0 connected\n"), "");
  for (const char* address : {"127.0.0.2:x", "127.0.0.2:65536", "127.0.0.2:-1", "127.0.0.2",
                              "127.0.0.2:", "127.0.0.2:7001@x", "127.0.0.2:7001@70000"}) {
    EXPECT_EQ(LoadError(me + kIdB + " " + address + " noflags 0 0 disconnected\n"), kCorrupted)
        << address;
  }
  EXPECT_EQ(LoadError(me + kIdB + " 127.0.0.2:7001 noflags x 0 disconnected\n"), kCorrupted);
  EXPECT_EQ(LoadError(me + kIdB + " 127.0.0.2:7001 noflags 0 y disconnected\n"), kCorrupted);
  // "vars" lines and empty lines are skipped.
  EXPECT_EQ(LoadError("vars currentEpoch 0 lastVoteEpoch 0\n\n" + me + "\n" + peer), "");
}

TEST(ClusterMembershipTest, NodesConfAddressForms) {
  testing::FakeClock clock;
  NullTransport none;
  // Our own bus port is not port + 10000: the line says so.
  Membership own(clock, none, MembershipOptions{kTimeout, "127.0.0.1", 7000, 9000}, 1);
  own.CreateMyself(kIdA);
  EXPECT_EQ(Field(own.ConfigText(), kIdA, 1), "127.0.0.1:7000@9000");

  const std::string text = own.ConfigText() +                                          //
                           kIdB + " 127.0.0.2:7001@9999 noflags 0 0 disconnected\n" +  //
                           kIdC + " 127.0.0.3:7002 fail 0 0 disconnected\n" +          //
                           std::string(40, 'd') + " ::1:7003 noflags 0 0 disconnected\n" +
                           std::string(40, 'e') + " :7004 noflags 0 0 disconnected\n";
  Membership loaded(clock, none, MembershipOptions{kTimeout, "127.0.0.1", 7000, 9000}, 1);
  const Status st = loaded.Load(text);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(loaded.myself().bus_port, 9000);
  ASSERT_NE(loaded.Find(kIdB), nullptr);
  EXPECT_EQ(loaded.Find(kIdB)->port, 7001);
  EXPECT_EQ(loaded.Find(kIdB)->bus_port, 9999);
  EXPECT_EQ(loaded.Find(kIdC)->bus_port, 17002);
  EXPECT_EQ(loaded.Find(std::string(40, 'd'))->ip, "::1");  // split at the last ':'
  EXPECT_EQ(loaded.Find(std::string(40, 'd'))->port, 7003);
  EXPECT_EQ(loaded.Find(std::string(40, 'e'))->ip, "");
  const std::string again = loaded.ConfigText();
  EXPECT_EQ(Field(again, kIdA, 1), "127.0.0.1:7000@9000");
  EXPECT_EQ(Field(again, kIdB, 1), "127.0.0.2:7001@9999");
  EXPECT_EQ(Field(again, kIdC, 1), "127.0.0.3:7002");
  EXPECT_EQ(Field(again, std::string(40, 'd'), 1), "::1:7003");
  EXPECT_EQ(Field(again, std::string(40, 'e'), 1), ":7004");
}

// PROTOCOL.md II 3.8: a known node that shows up from another address is followed there.
TEST(ClusterMembershipTest, NodeRestartedAtAnotherAddressIsFollowed) {
  SimCluster sim(4);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  const std::string moved = sim.id(3);
  sim.Kill(3);
  sim.Restart(3, std::make_pair(std::string("127.0.0.40"), uint16_t{7400}));
  ASSERT_EQ(sim.id(3), moved);
  ASSERT_TRUE(sim.StepUntil(
      [&] {
        for (int s = 0; s < 3; ++s) {
          const Node* n = sim.m(s).Find(moved);
          if (n == nullptr || n->ip != "127.0.0.40" || n->port != 7400 || n->bus_port != 17400 ||
              n->link == 0) {
            return false;
          }
        }
        return sim.FullMesh();
      },
      5 * kTimeout))
      << sim.Dump();
}

// PROTOCOL.md II 3.7 and 3.4: a node we consider failing, gossiped at another address,
// gets a handshake there; when the node answers it, the known record takes the new
// address and the handshake entry goes away. A healthy node gossiped at another address
// is not chased.
TEST(ClusterMembershipTest, FailingNodeGossipedAtANewAddressIsFoundThere) {
  SimCluster sim(4);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  const std::string moved = sim.id(3);
  sim.Kill(3);
  ASSERT_TRUE(sim.StepUntil([&] { return Failing(FlagsAt(sim.m(0), moved)); }, 3 * kTimeout))
      << sim.Dump();
  Membership& m0 = sim.m(0);

  Message ping;  // node 1 tells node 0 where node 3 and node 2 are now
  ping.type = static_cast<uint8_t>(MessageType::kPing);
  ping.sender = sim.id(1);
  ping.port = PortOf(1);
  ping.bus_port = static_cast<uint16_t>(PortOf(1) + kBusPortOffset);
  ping.gossip.push_back(GossipEntry{moved, "127.0.0.40", 7400, 17400, 0, 0, 0});
  ping.gossip.push_back(GossipEntry{sim.id(2), "127.0.0.41", 7401, 17401, 0, 0, 0});
  const size_t known = m0.known();
  m0.Receive(ping, Origin{777777, nullptr, IpOf(1), IpOf(0)});
  EXPECT_EQ(m0.known(), known + 1);
  bool chased = false;
  for (const ClusterView::Entry& e : m0.View().nodes) {
    if (!(e.flags & kNodeHandshake)) continue;
    EXPECT_EQ(e.ip, "127.0.0.40");
    chased = chased || (e.ip == "127.0.0.40" && e.port == 7400);
  }
  EXPECT_TRUE(chased);
  EXPECT_EQ(m0.Find(sim.id(2))->ip, IpOf(2));

  // Node 3 comes back there knowing nobody (so it pings no one): only node 0's
  // handshake can find it.
  std::string myself_line;
  for (const std::string& line : Lines(sim.saved_conf(3))) {
    if (Split(line, ' ')[2].starts_with("myself")) myself_line = line + "\n";
  }
  sim.Restart(3, std::make_pair(std::string("127.0.0.40"), uint16_t{7400}), myself_line);
  ASSERT_EQ(sim.id(3), moved);
  auto handshake_pending = [&] {
    for (const ClusterView::Entry& e : m0.View().nodes) {
      if ((e.flags & kNodeHandshake) && e.ip == "127.0.0.40") return true;
    }
    return false;
  };
  ASSERT_TRUE(sim.StepUntil([&] { return !handshake_pending(); }, kTimeout)) << sim.Dump();
  // Resolved by the PONG to node 0's MEET, before node 3 ever pinged node 0 (which
  // would move the record by II 3.8 instead): the known record took the address.
  const Node* found = m0.Find(moved);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->ip, "127.0.0.40");
  EXPECT_EQ(found->port, 7400);
  EXPECT_EQ(found->bus_port, 17400);
  ASSERT_TRUE(sim.StepUntil(
      [&] {
        const Node* n = m0.Find(moved);
        return n != nullptr && n->ip == "127.0.0.40" && n->port == 7400 && n->bus_port == 17400 &&
               n->flags == 0 && m0.known() == known;
      },
      2 * kTimeout))
      << sim.Dump();
}

// ---------------------------------------------------------------- identity change

// PROTOCOL.md II 3.9: the address of a known node now answers with another ID.
TEST(ClusterMembershipTest, NodeReplacedAtItsAddressBecomesNoaddrAndTheNewOneIsLearned) {
  SimCluster sim(5);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  const std::string old_id = sim.id(4);
  sim.Kill(4);
  ASSERT_TRUE(sim.StepUntil(
      [&] {
        for (int s = 0; s < 4; ++s) {
          if (!(FlagsAt(sim.m(s), old_id) & kNodeFail)) return false;
        }
        return true;
      },
      5 * kTimeout))
      << sim.Dump();
  sim.Replace(4);
  const std::string new_id = sim.id(4);
  ASSERT_NE(new_id, old_id);
  ASSERT_TRUE(sim.m(4).StartHandshake(IpOf(0), PortOf(0)));  // the operator introduces it
  auto settled = [&] {
    for (int s = 0; s < 4; ++s) {
      const Membership& o = sim.m(s);
      if (!(FlagsAt(o, old_id) & kNodeNoAddr) || FlagsAt(o, new_id) != 0 || o.known() != 6 ||
          o.reachable().size() != 4) {
        return false;
      }
    }
    return sim.m(4).known() == 5 && sim.m(4).reachable().size() == 4;
  };
  ASSERT_TRUE(sim.StepUntil(settled, 10000)) << sim.Dump();
  sim.Step(3000);  // and it stays so: NOADDR records are not contacted again
  ASSERT_TRUE(settled()) << sim.Dump();
  for (int s = 0; s < 4; ++s) {
    const Membership& o = sim.m(s);
    const Node* old_record = o.Find(old_id);
    EXPECT_TRUE(old_record->ip.empty());
    EXPECT_EQ(old_record->port, 0);
    EXPECT_EQ(old_record->link, 0u);
    const std::vector<std::string> f = FieldsOf(o.NodesText(), old_id);
    ASSERT_EQ(f.size(), 6u);
    EXPECT_EQ(f[1], ":0");
    EXPECT_EQ(f[2], "fail,noaddr");
    EXPECT_EQ(f[5], "disconnected");
    const Node* new_record = o.Find(new_id);
    EXPECT_EQ(new_record->ip, IpOf(4));
    EXPECT_EQ(new_record->port, PortOf(4));
  }
}

// ------------------------------------------------------------------- CLUSTER NODES

TEST(ClusterMembershipTest, NodesTextFormat) {
  SimCluster sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  Membership& m0 = sim.m(0);
  ASSERT_TRUE(m0.StartHandshake("127.0.0.99", 7099));
  sim.Step(kCronPeriodMs);  // its connect fails: a ping counts as outstanding
  const std::string text = m0.NodesText();
  const std::vector<std::string> lines = Lines(text);
  ASSERT_EQ(lines.size(), 4u) << text;
  for (const std::string& line : lines) {
    const std::vector<std::string> f = Split(line, ' ');
    ASSERT_EQ(f.size(), 6u) << line;
    for (const std::string& field : f) EXPECT_FALSE(field.empty()) << line;
    EXPECT_TRUE(IsHexId(f[0])) << line;
    EXPECT_TRUE(f[5] == "connected" || f[5] == "disconnected") << line;
  }
  EXPECT_EQ(Split(lines[0], ' '),
            (std::vector<std::string>{sim.id(0), IpOf(0) + ":" + std::to_string(PortOf(0)),
                                      "myself", "0", "0", "connected"}));
  for (int j = 1; j < 3; ++j) {
    const std::vector<std::string> f = FieldsOf(text, sim.id(j));
    ASSERT_EQ(f.size(), 6u);
    EXPECT_EQ(f[1], IpOf(j) + ":" + std::to_string(PortOf(j)));
    EXPECT_EQ(f[2], "noflags");
    const Node* n = m0.Find(sim.id(j));
    EXPECT_EQ(f[3],
              std::to_string(n->ping_sent_ms));  // the fake clock's unix and monotonic ms agree
    EXPECT_EQ(f[4], std::to_string(n->pong_received_ms));
    EXPECT_GT(n->pong_received_ms, 0);
    EXPECT_EQ(f[5], "connected");
  }
  const std::vector<std::string> h = Split(lines[3], ' ');
  EXPECT_EQ(h[1], "127.0.0.99:7099");
  EXPECT_EQ(h[2], "handshake");
  EXPECT_EQ(h[3], std::to_string(sim.now()));
  EXPECT_EQ(h[4], "0");
  EXPECT_EQ(h[5], "disconnected");

  // Flags are always listed in PROTOCOL.md 6.7's order, whatever the file said.
  testing::FakeClock clock;
  NullTransport none;
  Membership loaded(clock, none, MembershipOptions{kTimeout, "", 7711, 0}, 1);
  const Status st =
      loaded.Load(kIdA + " :7711 leaving,myself 0 0 connected\n" +  //
                  kIdB + " 127.0.0.2:7001 leaving,noaddr,handshake,fail,fail? 5 6 connected\n" +
                  kIdC + " 127.0.0.3:7002 noflags 0 0 connected\n");
  ASSERT_TRUE(st.ok()) << st.message();
  const std::string loaded_text = loaded.NodesText();
  EXPECT_EQ(FieldsOf(loaded_text, kIdA),
            (std::vector<std::string>{kIdA, ":7711", "myself,leaving", "0", "0", "connected"}));
  EXPECT_EQ(FieldsOf(loaded_text, kIdB),
            (std::vector<std::string>{kIdB, "127.0.0.2:7001", "fail?,fail,handshake,noaddr,leaving",
                                      std::to_string(clock.NowMs()), std::to_string(clock.NowMs()),
                                      "disconnected"}));
  EXPECT_EQ(
      FieldsOf(loaded_text, kIdC),
      (std::vector<std::string>{kIdC, "127.0.0.3:7002", "noflags", "0", "0", "disconnected"}));
}

// A closed link changes what View() shows (`linked`, and HELLO priority 5), so it must
// flag a view change: the bus publishes a new view only when TakeViewChange() says so.
TEST(ClusterMembershipTest, ClosedLinkIsAViewChange) {
  SimCluster sim(3);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  Membership& m0 = sim.m(0);
  const std::string peer = sim.id(1);
  auto entry = [&] {
    for (const ClusterView::Entry& e : m0.View().nodes) {
      if (e.id == peer) return e;
    }
    ADD_FAILURE() << "no view entry";
    return ClusterView::Entry{};
  };
  ASSERT_TRUE(entry().linked);
  ASSERT_EQ(ClusterView::Priority(entry()), 1);
  m0.TakeViewChange();
  sim.Kill(1);  // the transport reports the closed link: LinkClosed(node, true)
  ASSERT_FALSE(entry().linked);
  ASSERT_EQ(ClusterView::Priority(entry()), 5);
  EXPECT_TRUE(m0.TakeViewChange()) << "the view changed but no new view would be published";
}

// A Clock whose monotonic time is unrelated to the unix time, as on a real host.
class SkewedClock final : public Clock {
 public:
  static constexpr int64_t kUnixAtZero = 1767225600000;
  int64_t NowMs() const override { return monotonic_ms + kUnixAtZero; }
  int64_t NowUs() const override { return NowMs() * 1000; }
  int64_t MonotonicMs() const override { return monotonic_ms; }
  int64_t monotonic_ms = 5000;
};

// PROTOCOL.md 6.7: CLUSTER NODES shows unix ms; the table keeps monotonic ms.
TEST(ClusterMembershipTest, NodesTextShowsUnixTimes) {
  SkewedClock clock;
  NullTransport none;
  Membership m(clock, none, MembershipOptions{kTimeout, "", 7000, 0}, 1);
  ASSERT_TRUE(m.Load(kIdA + " 127.0.0.1:7000 myself 0 0 connected\n" + kIdB +
                     " 127.0.0.2:7001 noflags 1767225000000 1767225000001 connected\n")
                  .ok());
  EXPECT_EQ(m.Find(kIdB)->ping_sent_ms, 5000);
  EXPECT_EQ(m.Find(kIdB)->pong_received_ms, 5000);
  clock.monotonic_ms += 700;
  EXPECT_EQ(Field(m.NodesText(), kIdB, 3), std::to_string(5000 + SkewedClock::kUnixAtZero));
  EXPECT_EQ(Field(m.NodesText(), kIdB, 4), std::to_string(5000 + SkewedClock::kUnixAtZero));
  EXPECT_EQ(Field(m.NodesText(), kIdA, 3), "0");
  // A handshake whose connect fails has a ping outstanding from that cron run on.
  ASSERT_TRUE(m.StartHandshake("127.0.0.9", 7009));
  m.Cron();
  for (const std::string& line : Lines(m.NodesText())) {
    const std::vector<std::string> f = Split(line, ' ');
    if (f[2] == "handshake") {
      EXPECT_EQ(f[3], std::to_string(clock.NowMs())) << line;
    }
  }
}

// ------------------------------------------------------------------------- gossip

// The per-message checks run inside the simulator (CheckMessage) on every message of
// every test; here they meet clusters where each cap binds.
TEST(ClusterMembershipTest, GossipSizeFollowsTheClusterSize) {
  SimCluster big(41);
  big.MeetChain();
  ASSERT_TRUE(big.StepUntil([&] { return big.FullMesh(); }, 60000)) << big.Dump();
  big.Step(2000);
  EXPECT_EQ(big.max_gossip(41), 4u);  // max(3, 41 / 10)

  SimCluster small(3);
  small.MeetChain();
  ASSERT_TRUE(small.StepUntil([&] { return small.FullMesh(); }, 5000)) << small.Dump();
  // A handshake that never completes is in the table but never in gossip.
  ASSERT_TRUE(small.m(0).StartHandshake("127.0.0.99", 7099));
  small.Step(kMinHandshakeTimeoutMs - kCronPeriodMs);
  EXPECT_EQ(small.max_gossip(3), 1u);  // known - 2
  EXPECT_LE(small.max_gossip(4), 2u);
  EXPECT_EQ(small.max_gossip(2), 0u);
  EXPECT_EQ(small.max_gossip(1), 0u);
}

// --------------------------------------------------------------------------- HELLO

TEST(ClusterMembershipTest, HelloPriority) {
  ClusterView::Entry e;
  e.linked = true;
  EXPECT_EQ(ClusterView::Priority(e), 1);
  e.linked = false;
  EXPECT_EQ(ClusterView::Priority(e), 5);
  e.flags = kNodePfail;
  EXPECT_EQ(ClusterView::Priority(e), 10);
  e.linked = true;
  EXPECT_EQ(ClusterView::Priority(e), 10);
  e.flags = kNodeFail;
  EXPECT_EQ(ClusterView::Priority(e), 100);
  e.flags = kNodeLeaving;
  EXPECT_EQ(ClusterView::Priority(e), 100);
  e.flags = kNodeLeaving | kNodePfail;
  e.linked = false;
  EXPECT_EQ(ClusterView::Priority(e), 100);

  SimCluster sim(2);
  sim.MeetChain();
  ASSERT_TRUE(sim.StepUntil([&] { return sim.FullMesh(); }, 5000)) << sim.Dump();
  for (const ClusterView::Entry& v : sim.m(0).View().nodes)
    EXPECT_EQ(ClusterView::Priority(v), 1) << v.id;
}

}  // namespace
}  // namespace disque::cluster
