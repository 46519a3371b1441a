// Protected mode (issue 8) with a real non-loopback peer: the server runs in a network
// namespace of its own (support/netns.h), listening on every interface of that
// namespace only, and the test process reaches it across the bridge from 10.A.B.254.
// Runs as root only; skipped elsewhere. The decision itself is unit-tested in
// server_limits_test.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "support/netns.h"
#include "support/redis_client.h"
#include "support/server_process.h"

namespace disque::test {
namespace {

class ProtectedModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = NetLab::Unavailable(); !why.empty()) GTEST_SKIP() << why;
    lab_ = std::make_unique<NetLab>(1);
    ASSERT_EQ(lab_->error(), "");
    ServerOptions options;
    options.host = lab_->ip(0);  // where the launcher looks for the server
    options.netns = lab_->ns(0);
    // The later bind wins: every interface of the namespace. Protected mode starts off
    // so that the launcher, which is not on the loopback, sees the server come up.
    options.config_lines = {"bind 0.0.0.0", "protected-mode no"};
    server_ = std::make_unique<ServerProcess>(options);
    ASSERT_TRUE(server_->Start()) << server_->error();
  }

  void TearDown() override {
    server_.reset();  // the server stops before its namespace goes
    lab_.reset();
  }

  Reply Remote(const std::vector<std::string>& args) {
    RedisClient client(Host{lab_->ip(0)}, server_->port(), 5000);
    return client.Command(args);
  }

  // redis-cli from the namespace's own loopback.
  std::string LoopbackCli(const std::string& args) {
    return RunCommand("ip netns exec " + lab_->ns(0) + " redis-cli -h 127.0.0.1 -p " + std::to_string(server_->port()) +
                      " " + args + " 2>&1");
  }

  std::unique_ptr<NetLab> lab_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ProtectedModeTest, RefusesRemotePeersWithNoPasswordAndAcceptsLoopback) {
  ASSERT_EQ(Remote({"CONFIG", "SET", "protected-mode", "yes"}).ToString(), "+OK");
  const Reply refused = Remote({"PING"});
  ASSERT_TRUE(refused.is_error()) << refused.ToString();
  EXPECT_EQ(refused.str.rfind("DENIED Disque is running in protected mode", 0), 0u) << refused.str;
  EXPECT_NE(refused.str.find("CONFIG SET protected-mode no"), std::string::npos) << "says how to fix it";
  EXPECT_EQ(LoopbackCli("PING"), "PONG\n");

  // A password lifts it, for clients that then authenticate.
  ASSERT_EQ(LoopbackCli("CONFIG SET requirepass s3cret"), "OK\n");
  RedisClient remote(Host{lab_->ip(0)}, server_->port(), 5000);
  EXPECT_EQ(remote.Command({"PING"}).ToString(), "-NOAUTH Authentication required.");
  EXPECT_EQ(remote.Command({"AUTH", "s3cret"}).ToString(), "+OK");
  EXPECT_EQ(remote.Command({"PING"}).ToString(), "+PONG");
  // rejected_connections counts maxclients refusals only (PROTOCOL.md).
  EXPECT_NE(remote.Command({"INFO", "stats"}).str.find("rejected_connections:0\r\n"), std::string::npos);
}

}  // namespace
}  // namespace disque::test
