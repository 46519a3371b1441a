// The chaos test (issue 5): producers and consumers on every node of a 5-node cluster
// while nodes are killed and restarted (SIGKILL, memory lost), paused (SIGSTOP) and
// partitioned (DEBUG CLUSTER-CUT), one fault at a time, at random. Then the faults end
// and the consumers drain the cluster. It must hold that:
//   - every job whose ADDJOB returned an ID was delivered at least once (none lost);
//   - every node ends with no job at all (every acked job was collected everywhere);
// and it reports the duplicate deliveries.
//
// One fault at a time keeps the run inside the guarantee (fewer than REPLICATE nodes
// failing at once). CHAOS_SECONDS sets the length of the chaos phase (ctest runs a
// short one; `make chaos` a longer one); CHAOS_SEED replays a run.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/cluster.h"
#include "support/redis_client.h"

namespace disque::test {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr int kNodes = 5;
constexpr const char* kQueue = "chaos";

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoll(v, nullptr, 10) : fallback;
}

// What the clients saw, shared by their threads.
struct Ledger {
  std::mutex mu;
  std::map<std::string, std::string> added;  // ID -> body, for every ADDJOB that returned an ID
  std::map<std::string, int> deliveries;     // ID -> times GETJOB returned it
  uint64_t add_errors = 0;
  uint64_t acks = 0;

  void Added(const std::string& id, const std::string& body) {
    std::lock_guard lock(mu);
    added.emplace(id, body);
  }
  void Delivered(const std::string& id) {
    std::lock_guard lock(mu);
    ++deliveries[id];
  }
  size_t Missing() {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& [id, body] : added) n += !deliveries.contains(id);
    return n;
  }
};

// One connection per node for one client thread; a broken one is reopened next time.
class Connections {
 public:
  explicit Connections(const std::vector<int>& ports) : ports_(ports), clients_(ports.size()) {}
  Reply Command(int node, const std::vector<std::string>& args) {
    auto& c = clients_[static_cast<size_t>(node)];
    if (!c || !c->connected()) c = std::make_unique<RedisClient>(ports_[static_cast<size_t>(node)], 3000);
    Reply r = c->Command(args);
    if (r.type == Reply::Type::kNone) c.reset();
    return r;
  }

 private:
  std::vector<int> ports_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
};

TEST(ClusterChaosTest, NoConfirmedJobIsLostAndEveryAckIsCollected) {
  const int64_t chaos_seconds = EnvInt("CHAOS_SECONDS", 30);
  const auto seed = static_cast<uint64_t>(EnvInt("CHAOS_SEED", static_cast<int64_t>(std::random_device()())));
  std::printf("chaos: %lld s, seed %llu (CHAOS_SEED to replay)\n", static_cast<long long>(chaos_seconds),
              static_cast<unsigned long long>(seed));

  ClusterOptions options;
  options.nodes = kNodes;
  options.threads = 2;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.StartAndJoin());
  std::vector<int> ports;
  std::vector<std::string> ids;
  for (int i = 0; i < kNodes; ++i) {
    ports.push_back(cluster.port(i));
    ids.push_back(cluster.NodeId(i));
  }

  Ledger ledger;
  std::atomic<bool> producing{true};
  std::atomic<bool> consuming{true};
  std::vector<std::thread> clients;
  // A failed ASSERT below returns with the clients running: they are stopped and joined
  // on the way out, since a joinable std::thread's destructor would abort the whole run
  // and hide which assertion failed.
  struct StopClients {
    std::atomic<bool>& producing;
    std::atomic<bool>& consuming;
    std::vector<std::thread>& clients;
    ~StopClients() {
      producing = false;
      consuming = false;
      for (std::thread& t : clients) {
        if (t.joinable()) t.join();
      }
    }
  } stop_clients{producing, consuming, clients};
  for (int p = 0; p < 2; ++p) {
    clients.emplace_back([&, p] {
      Connections conns(ports);
      std::mt19937_64 rng(seed + 100 + static_cast<uint64_t>(p));
      for (uint64_t n = 0; producing; ++n) {
        const int node = static_cast<int>(rng() % kNodes);
        const std::string body = "p" + std::to_string(p) + "-" + std::to_string(n);
        Reply r = conns.Command(node, {"ADDJOB", kQueue, body, "2000", "REPLICATE", "3", "RETRY", "2", "TTL", "3600"});
        if (r.type == Reply::Type::kStatus) {
          ledger.Added(r.str, body);
        } else {
          std::lock_guard lock(ledger.mu);
          ++ledger.add_errors;
        }
        if (r.type == Reply::Type::kNone) std::this_thread::sleep_for(milliseconds(50));  // node down
      }
    });
  }
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&, c] {
      Connections conns(ports);
      std::mt19937_64 rng(seed + 200 + static_cast<uint64_t>(c));
      while (consuming) {
        const int node = static_cast<int>(rng() % kNodes);
        Reply r = conns.Command(node, {"GETJOB", "TIMEOUT", "300", "COUNT", "8", "FROM", kQueue});
        if (r.type == Reply::Type::kNone) {
          std::this_thread::sleep_for(milliseconds(50));
          continue;
        }
        if (r.type != Reply::Type::kArray) continue;
        std::vector<std::string> ack = {"ACKJOB"};
        for (const Reply& job : r.elements) {
          if (job.elements.size() < 3) continue;
          ledger.Delivered(job.elements[1].str);
          ack.push_back(job.elements[1].str);
        }
        if (ack.size() > 1 && conns.Command(node, ack).type == Reply::Type::kInteger) {
          std::lock_guard lock(ledger.mu);
          ledger.acks += ack.size() - 1;
        }
      }
    });
  }

  // The chaos: one fault at a time, on a random node, for 1.5 to 3 s, then 1 to 2 s of
  // calm. Kills are the rarest: a killed node comes back empty.
  std::mt19937_64 rng(seed);
  std::map<std::string, int> faults;
  const auto chaos_end = Clock::now() + std::chrono::seconds(chaos_seconds);
  while (Clock::now() < chaos_end) {
    const int victim = static_cast<int>(rng() % kNodes);
    const auto duration = milliseconds(1500 + static_cast<int64_t>(rng() % 1500));
    const uint64_t kind = rng() % 5;
    if (kind == 0) {
      ++faults["kill"];
      ASSERT_TRUE(cluster.Kill(victim)) << cluster.Describe();
      std::this_thread::sleep_for(duration);
      ASSERT_TRUE(cluster.Restart(victim)) << cluster.Describe();
    } else if (kind <= 2) {
      ++faults["pause"];
      cluster.Pause(victim);
      std::this_thread::sleep_for(duration);
      cluster.Resume(victim);
    } else {
      ++faults["partition"];
      // Cut on both sides, so that neither side hears the other.
      for (int i = 0; i < kNodes; ++i) {
        if (i == victim) continue;
        cluster.Command(i, {"DEBUG", "CLUSTER-CUT", ids[static_cast<size_t>(victim)]});
        cluster.Command(victim, {"DEBUG", "CLUSTER-CUT", ids[static_cast<size_t>(i)]});
      }
      std::this_thread::sleep_for(duration);
      for (int i = 0; i < kNodes; ++i) cluster.Command(i, {"DEBUG", "CLUSTER-HEAL"});
    }
    std::this_thread::sleep_for(milliseconds(1000 + static_cast<int64_t>(rng() % 1000)));
  }
  producing = false;
  for (int p = 0; p < 2; ++p) clients[static_cast<size_t>(p)].join();

  // Drain: the consumers go on until every confirmed job was delivered and no node holds
  // any job (acked ones collected, requeued ones consumed). ACK GC backs off up to about
  // a minute after a long partition, hence the generous deadline.
  ASSERT_TRUE(cluster.WaitFullMesh(std::chrono::seconds(30))) << cluster.Describe();
  std::string last;
  const bool drained = Cluster::Poll(
      [&] {
        if (ledger.Missing() != 0) {
          last = std::to_string(ledger.Missing()) + " confirmed jobs not delivered yet";
          return false;
        }
        for (int i = 0; i < kNodes; ++i) {
          Reply r = cluster.Command(i, {"INFO", "jobs"});
          const size_t at = r.str.find("registered_jobs:");
          if (at == std::string::npos) return false;
          const int64_t n = std::strtoll(r.str.c_str() + at + 16, nullptr, 10);
          if (n != 0) {
            last = "node " + std::to_string(i) + " still has " + std::to_string(n) + " jobs";
            return false;
          }
        }
        return true;
      },
      std::chrono::seconds(180), milliseconds(500));
  consuming = false;
  for (size_t i = 2; i < clients.size(); ++i) clients[i].join();

  size_t duplicates = 0, ghosts = 0;
  for (const auto& [id, n] : ledger.deliveries) {
    if (n > 1) duplicates += static_cast<size_t>(n - 1);
    if (!ledger.added.contains(id)) ++ghosts;  // ADDJOB got no ID (NOREPL, node died) but the job lived
  }
  std::printf("chaos: faults kill=%d pause=%d partition=%d; %zu jobs confirmed, %llu ADDJOB errors, "
              "%zu delivered, %zu duplicate deliveries, %zu unconfirmed jobs delivered, %llu acks\n",
              faults["kill"], faults["pause"], faults["partition"], ledger.added.size(),
              static_cast<unsigned long long>(ledger.add_errors), ledger.deliveries.size(), duplicates, ghosts,
              static_cast<unsigned long long>(ledger.acks));
  EXPECT_GT(ledger.added.size(), 0u);
  EXPECT_EQ(ledger.Missing(), 0u) << "confirmed jobs lost (seed " << seed << ")";
  EXPECT_TRUE(drained) << last << " (seed " << seed << ")\n" << cluster.Describe();
}

}  // namespace
}  // namespace disque::test
