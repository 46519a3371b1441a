// Real network partitions (issue 5): three nodes, each in its own network namespace on
// a bridge (support/netns.h), partitioned by dropping packets between namespaces rather
// than by the servers' own fault injection. Runs as root only; skipped elsewhere.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/netns.h"
#include "support/redis_client.h"
#include "support/server_process.h"

namespace disque::test {
namespace {

using std::chrono::seconds;

class NetnsClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = NetLab::Unavailable(); !why.empty()) GTEST_SKIP() << why;
    lab_ = std::make_unique<NetLab>(3);
    ASSERT_EQ(lab_->error(), "");
    for (int i = 0; i < 3; ++i) {
      ServerOptions options;
      options.threads = 2;
      options.host = lab_->ip(i);
      options.netns = lab_->ns(i);
      options.config_lines = {"cluster-node-timeout 1000"};
      nodes_.push_back(std::make_unique<ServerProcess>(options));
      ASSERT_TRUE(nodes_.back()->Start()) << nodes_.back()->error();
    }
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(Command(i, {"CLUSTER", "MEET", lab_->ip(i + 1), std::to_string(nodes_[i + 1]->port())}).str, "OK");
    }
    ASSERT_TRUE(WaitFor([&] { return Reachable(0) == 2 && Reachable(1) == 2 && Reachable(2) == 2; }, seconds(20)));
  }

  void TearDown() override {
    nodes_.clear();  // the servers stop before their namespaces go
    lab_.reset();
  }

  Reply Command(int i, const std::vector<std::string>& args) {
    RedisClient client(Host{lab_->ip(i)}, nodes_[i]->port(), 5000);
    return client.Command(args);
  }
  int64_t Reachable(int i) {
    const std::string info = Command(i, {"CLUSTER", "INFO"}).str;
    const size_t at = info.find("cluster_reachable_nodes:");
    return at == std::string::npos ? -1 : std::strtoll(info.c_str() + at + 24, nullptr, 10);
  }
  // The job's state on node i, or "" if SHOW returns null.
  std::string State(int i, const std::string& id) {
    const Reply r = Command(i, {"SHOW", id});
    if (r.type != Reply::Type::kArray || r.elements.size() < 6) return "";
    return r.elements[5].str;
  }

  std::unique_ptr<NetLab> lab_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
};

TEST_F(NetnsClusterTest, APartitionedOwnerGetsTheAckWhenThePartitionHeals) {
  const Reply added = Command(0, {"ADDJOB", "q", "body", "5000", "REPLICATE", "3"});
  ASSERT_EQ(added.type, Reply::Type::kStatus) << added.ToString();
  const std::string id = added.str;
  for (int i = 0; i < 3; ++i) EXPECT_NE(State(i, id), "") << i;

  // Node 2 loses the network to both others; each side sees the other fail.
  ASSERT_TRUE(lab_->Cut(2, 0)) << lab_->error();
  ASSERT_TRUE(lab_->Cut(2, 1)) << lab_->error();
  ASSERT_TRUE(WaitFor([&] { return Reachable(0) == 1 && Reachable(1) == 1 && Reachable(2) == 0; }, seconds(20)));
  EXPECT_EQ(Command(0, {"ADDJOB", "q", "x", "1000", "REPLICATE", "3"}).ToString(),
            "-NOREPL Not enough reachable nodes for the requested replication level");
  EXPECT_EQ(Command(0, {"ADDJOB", "q", "x", "1000", "REPLICATE", "2"}).type, Reply::Type::kStatus);

  // The ACK reaches node 1 but not node 2: the acked copies are kept (collection needs
  // every holder's confirmation) until node 2 can be told.
  EXPECT_EQ(Command(0, {"ACKJOB", id}).integer, 1);
  ASSERT_TRUE(WaitFor([&] { return State(1, id) == "acked"; }, seconds(10)));
  EXPECT_EQ(State(0, id), "acked");
  EXPECT_EQ(State(2, id), "active");

  ASSERT_TRUE(lab_->Heal(2, 0)) << lab_->error();
  ASSERT_TRUE(lab_->Heal(2, 1)) << lab_->error();
  ASSERT_TRUE(WaitFor([&] { return Reachable(0) == 2 && Reachable(2) == 2; }, seconds(20)));
  // GC retries back off (1, 4, 8, 16 s): one of them reaches node 2.
  EXPECT_TRUE(WaitFor([&] { return State(0, id).empty() && State(2, id).empty(); }, seconds(40)))
      << "node 0: " << State(0, id) << ", node 2: " << State(2, id);
}

TEST_F(NetnsClusterTest, JobsAddedInAMinorityReachConsumersAfterTheHeal) {
  ASSERT_TRUE(lab_->Cut(2, 0)) << lab_->error();
  ASSERT_TRUE(lab_->Cut(2, 1)) << lab_->error();
  ASSERT_TRUE(WaitFor([&] { return Reachable(2) == 0; }, seconds(20)));
  const Reply added = Command(2, {"ADDJOB", "island", "body", "0", "REPLICATE", "1"});
  ASSERT_EQ(added.type, Reply::Type::kStatus) << added.ToString();
  EXPECT_EQ(Command(0, {"GETJOB", "NOHANG", "FROM", "island"}).type, Reply::Type::kNil);

  ASSERT_TRUE(lab_->Heal(2, 0)) << lab_->error();
  ASSERT_TRUE(lab_->Heal(2, 1)) << lab_->error();
  ASSERT_TRUE(WaitFor([&] { return Reachable(0) == 2 && Reachable(2) == 2; }, seconds(20)));
  // A consumer on node 0 gets it by federation (NEEDJOBS to everyone, then YOURJOBS).
  const Reply got = Command(0, {"GETJOB", "TIMEOUT", "10000", "FROM", "island"});
  ASSERT_EQ(got.type, Reply::Type::kArray) << got.ToString();
  ASSERT_EQ(got.elements.size(), 1u);
  EXPECT_EQ(got.elements[0].elements[1].str, added.str);
}

}  // namespace
}  // namespace disque::test
