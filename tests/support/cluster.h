#pragma once

// Multi-node test support: N real server processes on 127.0.0.1 joined with CLUSTER MEET,
// CLUSTER NODES parsing, and deadline-bounded waits on cluster state (PROTOCOL.md part I
// 6.7, part II 1-4 and 11).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/redis_client.h"
#include "support/server_process.h"

namespace disque::test {

// One line of CLUSTER NODES (or of nodes.conf, which holds the same lines):
// `<id> <ip>:<port> <flags> <ping_sent_ms> <pong_received_ms> <connected|disconnected>`.
struct NodeLine {
  std::string id;
  std::string ip;                  // empty when unknown
  int port = 0;                    // the client port
  std::vector<std::string> flags;  // as listed, e.g. {"myself", "leaving"} or {"noflags"}
  int64_t ping_sent = 0;
  int64_t pong_received = 0;
  std::string link;  // "connected" or "disconnected"
  std::string text;  // the line as received, without its "\n"

  bool Has(std::string_view flag) const;
  // PFAIL or FAIL.
  bool Failing() const { return Has("fail?") || Has("fail"); }
};

// Parses one line (without its "\n"). Strict: exactly six fields separated by single
// spaces, the address split at its last ':', decimal port and times. nullopt otherwise.
std::optional<NodeLine> ParseNodeLine(std::string_view line);

// Parses a whole CLUSTER NODES reply or nodes.conf. Every line must end with "\n" (no
// "\r") and parse; empty lines are skipped (nodes.conf may be padded). `error` is empty
// when everything parsed; `nodes` holds the lines that did.
struct ParsedNodes {
  std::vector<NodeLine> nodes;
  std::string error;

  bool ok() const { return error.empty(); }
  // Pointers into `nodes`: not callable on a temporary, whose lines would be gone.
  const NodeLine* Find(std::string_view id) const&;
  const NodeLine* Myself() const&;  // the first line flagged `myself`
  const NodeLine* Find(std::string_view id) const&& = delete;
  const NodeLine* Myself() const&& = delete;
};
ParsedNodes ParseClusterNodes(std::string_view text);

// True for 40 lowercase hex characters (PROTOCOL.md 2.1).
bool IsNodeId(std::string_view id);

struct ClusterOptions {
  int nodes = 3;
  int threads = 1;
  int node_timeout_ms =
      1000;  // `cluster-node-timeout`; Disque's default of 15 s is too slow for tests
  std::vector<std::string> config_lines;  // extra lines for every node's disque.conf

  static ClusterOptions Of(int nodes, int threads = 1) {
    ClusterOptions o;
    o.nodes = nodes;
    o.threads = threads;
    return o;
  }
};

// N ServerProcess nodes. Nothing is joined until the test asks (MeetChain, or
// StartAndJoin). The destructor continues any SIGSTOPped node first, so that every
// ServerProcess can stop its node with SIGTERM: no process outlives the test.
class Cluster {
 public:
  explicit Cluster(ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Starts every node and waits until each answers PING.
  ::testing::AssertionResult Start();
  // Start, MeetChain and WaitFullMesh.
  ::testing::AssertionResult StartAndJoin(
      std::chrono::milliseconds deadline = std::chrono::seconds(20));

  int size() const { return static_cast<int>(nodes_.size()); }
  ServerProcess& node(int i) { return *nodes_.at(i); }
  int port(int i) const { return nodes_.at(i)->port(); }
  int bus_port(int i) const { return port(i) + 10000; }
  std::string nodes_conf_path(int i) const { return nodes_.at(i)->dir() + "/nodes.conf"; }

  // A connection to node i, reconnected if the previous one broke (after a restart).
  RedisClient& client(int i);
  // Runs a command on node i; on a connection error (the node restarted since the last
  // command) reconnects and tries once more.
  Reply Command(int i, const std::vector<std::string>& args);

  // CLUSTER MEET 127.0.0.1 <port of `to`> sent to `from`; true on +OK.
  ::testing::AssertionResult Meet(int from, int to);
  // MEET node i+1 from node i for i in 0..N-2: gossip must complete the mesh.
  ::testing::AssertionResult MeetChain();

  // Every node lists exactly the N current IDs (its own as `myself`), none in handshake,
  // fail?, fail or noaddr, and CLUSTER INFO cluster_reachable_nodes == N-1 everywhere.
  // Checked by polling until `deadline`; the failure message shows the last problem
  // and every node's view.
  ::testing::AssertionResult WaitFullMesh(
      std::chrono::milliseconds deadline = std::chrono::seconds(20));
  // The reason the mesh is not full right now, or "" if it is.
  std::string MeshProblem();

  // Polls `condition` until it holds or `deadline` passes, evaluating it at most every
  // `interval` (each evaluation queries several processes; a 10 ms poll would load the
  // machine that the nodes share).
  static bool Poll(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
                   std::chrono::milliseconds interval = std::chrono::milliseconds(100));

  // CLUSTER MYID of node i ("" on error).
  std::string NodeId(int i);
  // CLUSTER NODES of node i, raw and parsed.
  std::string NodesText(int i);
  ParsedNodes Nodes(int i);
  // The flags node `observer` lists for `id`; nullopt if it does not list it (or the
  // query failed).
  std::optional<std::vector<std::string>> FlagsOf(int observer, const std::string& id);
  // A field of CLUSTER INFO on node i ("" if absent), and the integer form (-1 if absent).
  std::string ClusterInfoField(int i, const std::string& name);
  int64_t ClusterInfoInt(int i, const std::string& name);
  // The HELLO priority node `observer` gives `id` ("" if not listed).
  std::string HelloPriority(int observer, const std::string& id);

  // SIGKILL, and wait for the exit.
  bool Kill(int i);
  // SIGSTOP / SIGCONT. Pause returns once every thread of the node is stopped. A paused
  // node is continued by the destructor.
  void Pause(int i);
  void Resume(int i);
  // Starts node i again on the same port, directory and files (nodes.conf included).
  ::testing::AssertionResult Restart(int i);
  // A node failing one of two ways: killed (it comes back empty) or stopped (it comes
  // back with its state), and its return.
  ::testing::AssertionResult TakeDown(int i, bool kill);
  ::testing::AssertionResult BringBack(int i, bool kill);

  // Every node's port, pid and CLUSTER NODES, for failure messages. Paused nodes are
  // not queried.
  std::string Describe();

 private:
  ClusterOptions options_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
  std::vector<bool> paused_;
};

}  // namespace disque::test
