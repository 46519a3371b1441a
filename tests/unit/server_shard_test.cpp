// Shard::RunOn: the cross-shard helper every multi-shard command is built on. Runs a
// real Server with shard threads but no listeners (port 0).

#include <gtest/gtest.h>

#include <asio/use_future.hpp>
#include <atomic>
#include <memory>
#include <thread>

#include "disque/server/server.h"
#include "support/files.h"

namespace disque::server {
namespace {

class ShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::Config cfg;
    cfg.port = 0;  // no listeners: this test only exercises the shards
    cfg.threads = 3;
    // Each test process its own nodes.conf: the file is locked for the server's life.
    cfg.cluster_config_file = dir_.File("nodes.conf");
    auto table = CommandTable::Build({});
    ASSERT_TRUE(table.ok());
    server_ = std::make_unique<Server>(options_, cfg, std::move(table).value(), ProcessInfo{});
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (!server_) return;
    server_->RequestShutdown();
    server_->Wait();
  }

  // Runs `body` as a coroutine on shard `from` and waits for its result.
  template <typename T>
  T RunFrom(int from, std::function<asio::awaitable<T>()> body) {
    return asio::co_spawn(server_->shard(from).context(), std::move(body), asio::use_future).get();
  }

  test::TempDir dir_;
  config::Options options_;
  std::unique_ptr<Server> server_;
};

TEST_F(ShardTest, RunsOnTargetThreadAndResumesOnCaller) {
  auto result = RunFrom<std::pair<int, int>>(0, [this]() -> asio::awaitable<std::pair<int, int>> {
    const int ran_on = co_await Shard::RunOn(server_->shard(2), [](Shard&) { return Shard::Current()->id(); });
    co_return std::pair{ran_on, Shard::Current()->id()};
  });
  EXPECT_EQ(result.first, 2) << "fn runs on the target shard's thread";
  EXPECT_EQ(result.second, 0) << "the caller resumes on its own shard";
}

TEST_F(ShardTest, SameShardRunsInline) {
  const bool inline_call = RunFrom<bool>(1, [this]() -> asio::awaitable<bool> {
    const std::thread::id caller = std::this_thread::get_id();
    const std::thread::id ran = co_await Shard::RunOn(server_->shard(1), [](Shard&) { return std::this_thread::get_id(); });
    co_return ran == caller;
  });
  EXPECT_TRUE(inline_call);
}

TEST_F(ShardTest, VoidResultAndFanOut) {
  auto hits = std::make_shared<std::atomic<int>>(0);
  RunFrom<int>(0, [this, hits]() -> asio::awaitable<int> {
    for (int i = 0; i < server_->shard_count(); ++i) {
      auto bump = [hits](Shard&) { hits->fetch_add(1); };
      co_await Shard::RunOn(server_->shard(i), std::move(bump));
    }
    co_return 0;
  });
  EXPECT_EQ(hits->load(), 3);
}

// Counts its live instances: copies made and destroyed must balance exactly.
struct Probe {
  static inline std::atomic<int> live{0};
  Probe() { ++live; }
  Probe(const Probe&) { ++live; }
  Probe(Probe&&) noexcept { ++live; }
  Probe& operator=(const Probe&) = default;
  ~Probe() { --live; }
  int value = 42;
};

// The GCC 12 double-destruction bug: what the function captures must be destroyed
// exactly once per copy, whatever shard it runs on. Copies may be released on other
// shard threads after the caller resumes, so the count is checked once the server (and
// every pending handler with it) is gone.
TEST_F(ShardTest, CapturedValuesAreDestroyedExactlyOnce) {
  const int before = Probe::live.load();
  {
    Probe probe;
    const int sum = RunFrom<int>(0, [this, probe]() -> asio::awaitable<int> {
      int total = 0;
      for (int i = 0; i < server_->shard_count(); ++i) {
        auto read = [probe](Shard&) { return probe.value; };
        const int v = co_await Shard::RunOn(server_->shard(i), std::move(read));
        total += v;
      }
      co_return total;
    });
    EXPECT_EQ(sum, 3 * 42);
  }
  server_->RequestShutdown();
  server_->Wait();
  server_.reset();
  EXPECT_EQ(Probe::live.load(), before);
}

}  // namespace
}  // namespace disque::server
