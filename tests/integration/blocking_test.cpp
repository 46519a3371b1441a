// Blocking GETJOB against the real binary (PROTOCOL.md 1.1, 3.2 "When blocked", 6.2,
// 6.8, 6.14): serving blocked clients, blocking on queues of different shards, timeouts,
// many concurrent consumers and producers (every job delivered exactly once),
// disconnection and CLIENT KILL of blocked clients, pipelining behind a blocked command,
// and shutdown with blocked clients. Every test runs with --threads 1 and --threads 4.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/redis_client.h"
#include "support/reply_text.h"
#include "support/server_process.h"
#include "support/server_test.h"
#include "support/shards.h"

namespace disque::test {
namespace {

using namespace std::chrono_literals;

using BlockingTest = ServerTest;

int ShardOf(const std::string& queue, int shards) { return QueueShardOf(queue, shards); }

// `n` (≤ 4) queue names that live on pairwise different shards of a 4-shard server.
std::vector<std::string> NamesOnDifferentShards(const std::string& prefix, int n) {
  std::vector<std::string> names;
  std::set<int> used;
  for (int i = 0; static_cast<int>(names.size()) < n && i < 1000; ++i) {
    const std::string name = prefix + std::to_string(i);
    if (used.insert(ShardOf(name, 4)).second) names.push_back(name);
  }
  return names;
}

// The bytes of a GETJOB reply with one job and no counters.
std::string OneJobReply(const std::string& queue, const std::string& id, const std::string& body) {
  return "*1\r\n*3\r\n" + Bulk(queue) + Bulk(id) + Bulk(body);
}

int64_t BlockedClients(RedisClient& c) { return InfoInt(c, "clients", "blocked_clients"); }

// QSTAT <queue> field, or -1 if the queue is missing.
int64_t QStatInt(RedisClient& c, const std::string& queue, const std::string& field) {
  Reply r = c.Command({"QSTAT", queue});
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    if (r.elements[i].str == field) return r.elements[i + 1].integer;
  }
  return -1;
}

int64_t QLen(RedisClient& c, const std::string& queue) { return c.Command({"QLEN", queue}).integer; }

std::string AddJob(RedisClient& c, const std::string& queue, const std::string& body) {
  Reply r = c.Command({"ADDJOB", queue, body, "0"});
  EXPECT_EQ(r.type, Reply::Type::kStatus) << r.ToString();
  return r.type == Reply::Type::kStatus ? r.str : "";
}

std::vector<std::string> JobIds(const Reply& r) {
  std::vector<std::string> ids;
  for (const Reply& job : r.elements) ids.push_back(job.elements.size() >= 2 ? job.elements[1].str : "?");
  return ids;
}

// CLIENT LIST entries as key → value maps.
std::vector<std::map<std::string, std::string>> ClientList(RedisClient& c) {
  std::vector<std::map<std::string, std::string>> out;
  for (const auto& line : Lines(c.Command({"CLIENT", "LIST"}).str)) {
    std::map<std::string, std::string> fields;
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      const size_t eq = word.find('=');
      fields[word.substr(0, eq)] = eq == std::string::npos ? "" : word.substr(eq + 1);
    }
    out.push_back(std::move(fields));
  }
  return out;
}

std::map<std::string, std::string> FindClient(RedisClient& c, const std::string& name) {
  for (auto& fields : ClientList(c)) {
    if (fields["name"] == name) return fields;
  }
  return {};
}

// A command run on its own thread (GETJOB that blocks), so that the test can act while
// it waits. `client` must outlive the object and must not be used until Get() returned.
class AsyncCommand {
 public:
  AsyncCommand(RedisClient& client, std::vector<std::string> args)
      : thread_([this, &client, args = std::move(args)] { reply_ = client.Command(args); }) {}
  // Waits for the reply (a connection error or the client timeout gives kNone).
  Reply Get() {
    if (thread_.joinable()) thread_.join();
    return reply_;
  }

 private:
  Reply reply_;
  std::jthread thread_;  // last: started after, and joined before, reply_ is destroyed
};

// Waits until `queue` reports `n` blocked clients.
bool WaitBlocked(RedisClient& c, const std::string& queue, int64_t n) {
  return WaitFor([&] { return QStatInt(c, queue, "blocked") == n; });
}

// ---------------------------------------------------------------------------------
// Serving a blocked client (PROTOCOL.md 3.2)

TEST_P(BlockingTest, BlockedClientGetsExactlyOneJobEvenWithCount) {
  RedisClient producer(port());
  RedisClient consumer(port());
  ASSERT_TRUE(producer.connected() && consumer.connected());
  AsyncCommand call(consumer, {"GETJOB", "COUNT", "5", "FROM", "q"});
  ASSERT_TRUE(WaitBlocked(producer, "q", 1));
  EXPECT_EQ(BlockedClients(producer), 1);
  // Three ADDJOBs in one pipeline: the first serves the blocked client with one job.
  producer.Append({"ADDJOB", "q", "b1", "0"});
  producer.Append({"ADDJOB", "q", "b2", "0"});
  producer.Append({"ADDJOB", "q", "b3", "0"});
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    Reply r = producer.GetReply();
    ASSERT_EQ(r.type, Reply::Type::kStatus) << r.ToString();
    ids.push_back(r.str);
  }
  Reply r = call.Get();
  ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 1u) << "a served client gets exactly one job, whatever COUNT was";
  ASSERT_EQ(r.elements[0].elements.size(), 3u);
  EXPECT_EQ(r.elements[0].elements[0].str, "q");
  EXPECT_EQ(r.elements[0].elements[1].str, ids[0]);
  EXPECT_EQ(r.elements[0].elements[2].str, "b1");
  EXPECT_EQ(QLen(producer, "q"), 2);
  EXPECT_EQ(QStatInt(producer, "q", "blocked"), 0);
  EXPECT_EQ(QStatInt(producer, "q", "jobs-out"), 1);
  EXPECT_EQ(BlockedClients(producer), 0);
  // The consumer's connection works normally afterwards, and now gets up to COUNT.
  EXPECT_EQ(JobIds(consumer.Command({"GETJOB", "COUNT", "5", "FROM", "q"})),
            (std::vector<std::string>{ids[1], ids[2]}));
}

TEST_P(BlockingTest, BlockedClientWithCountersIsServedWithCounters) {
  RedisClient producer(port());
  RedisClient consumer(port());
  ASSERT_TRUE(producer.connected() && consumer.connected());
  AsyncCommand call(consumer, {"GETJOB", "WITHCOUNTERS", "COUNT", "5", "FROM", "q"});
  ASSERT_TRUE(WaitBlocked(producer, "q", 1));
  const std::string id = AddJob(producer, "q", "body");
  AddJob(producer, "q", "second");
  Reply r = call.Get();
  ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 1u);
  const Reply& job = r.elements[0];
  ASSERT_EQ(job.elements.size(), 7u);
  EXPECT_EQ(job.elements[0].str, "q");
  EXPECT_EQ(job.elements[1].str, id);
  EXPECT_EQ(job.elements[2].str, "body");
  EXPECT_EQ(job.elements[3].type, Reply::Type::kBulk);
  EXPECT_EQ(job.elements[3].str, "nacks");
  EXPECT_EQ(job.elements[4].ToString(), ":0");
  EXPECT_EQ(job.elements[5].str, "additional-deliveries");
  EXPECT_EQ(job.elements[6].ToString(), ":0");

  // A NACKed job served to a blocked client shows its nacks counter.
  ASSERT_EQ(producer.Command({"GETJOB", "FROM", "q"}).elements.size(), 1u);  // drain "second"
  AsyncCommand call2(consumer, {"GETJOB", "WITHCOUNTERS", "FROM", "q"});
  ASSERT_TRUE(WaitBlocked(producer, "q", 1));
  EXPECT_EQ(producer.Command({"NACK", id}).ToString(), ":1");
  Reply again = call2.Get();
  ASSERT_EQ(again.elements.size(), 1u) << again.ToString();
  ASSERT_EQ(again.elements[0].elements.size(), 7u);
  EXPECT_EQ(again.elements[0].elements[1].str, id);
  EXPECT_EQ(again.elements[0].elements[4].ToString(), ":1");
}

TEST_P(BlockingTest, EarliestBlockedClientIsServedFirst) {
  RedisClient producer(port());
  RawConnection first(port());
  RawConnection second(port());
  ASSERT_TRUE(producer.connected() && first.connected() && second.connected());
  ASSERT_TRUE(first.Send(Multibulk({"GETJOB", "FROM", "q"})));
  ASSERT_TRUE(WaitBlocked(producer, "q", 1));
  ASSERT_TRUE(second.Send(Multibulk({"GETJOB", "FROM", "q"})));
  ASSERT_TRUE(WaitBlocked(producer, "q", 2));
  const std::string id1 = AddJob(producer, "q", "one");
  const std::string expected1 = OneJobReply("q", id1, "one");
  EXPECT_EQ(first.Read(expected1.size()), expected1);
  EXPECT_EQ(QStatInt(producer, "q", "blocked"), 1);
  EXPECT_EQ(QLen(producer, "q"), 0);
  const std::string id2 = AddJob(producer, "q", "two");
  const std::string expected2 = OneJobReply("q", id2, "two");
  EXPECT_EQ(second.Read(expected2.size()), expected2);
  EXPECT_EQ(QStatInt(producer, "q", "blocked"), 0);
}

TEST_P(BlockingTest, BlockedOnQueuesOfDifferentShardsServedByAnyOfThem) {
  const std::vector<std::string> queues = NamesOnDifferentShards("shardq-", 4);
  ASSERT_EQ(queues.size(), 4u);
  RedisClient producer(port());
  RedisClient consumer(port());
  ASSERT_TRUE(producer.connected() && consumer.connected());
  for (size_t target = 0; target < queues.size(); ++target) {
    AsyncCommand call(consumer, {"GETJOB", "FROM", queues[0], queues[1], queues[2], queues[3]});
    for (const auto& q : queues) ASSERT_TRUE(WaitBlocked(producer, q, 1)) << q;
    EXPECT_EQ(BlockedClients(producer), 1) << "one client, blocked on four queues";
    const std::string body = "for-" + queues[target];
    const std::string id = AddJob(producer, queues[target], body);
    Reply r = call.Get();
    ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
    ASSERT_EQ(r.elements.size(), 1u);
    ASSERT_EQ(r.elements[0].elements.size(), 3u);
    EXPECT_EQ(r.elements[0].elements[0].str, queues[target]);
    EXPECT_EQ(r.elements[0].elements[1].str, id);
    EXPECT_EQ(r.elements[0].elements[2].str, body);
    // Served once, it is unblocked from every queue.
    for (const auto& q : queues) {
      EXPECT_TRUE(WaitBlocked(producer, q, 0)) << q;
      EXPECT_EQ(QLen(producer, q), 0) << q;
    }
    EXPECT_TRUE(WaitFor([&] { return BlockedClients(producer) == 0; }));
  }
  // A second job on another shard is not taken by the already served client.
  AddJob(producer, queues[1], "left");
  EXPECT_EQ(QLen(producer, queues[1]), 1);
}

TEST_P(BlockingTest, TimeoutRepliesNullArray) {
  const std::vector<std::string> queues = NamesOnDifferentShards("tq-", 3);
  ASSERT_EQ(queues.size(), 3u);
  RedisClient observer(port());
  ASSERT_TRUE(observer.connected());
  {
    RawConnection conn(port());
    ASSERT_TRUE(conn.connected());
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(conn.Send(Multibulk({"GETJOB", "TIMEOUT", "200", "FROM", "q"})));
    EXPECT_EQ(conn.Read(5, 5000), "*-1\r\n");
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_GE(elapsed, 190ms);
    EXPECT_LT(elapsed, 4s);
  }
  {
    RawConnection conn(port());
    ASSERT_TRUE(conn.connected());
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(conn.Send(Multibulk({"GETJOB", "TIMEOUT", "300", "COUNT", "3", "FROM", queues[0], queues[1], queues[2]})));
    EXPECT_TRUE(WaitFor([&] { return BlockedClients(observer) == 1; }, 2s));
    EXPECT_EQ(conn.Read(5, 5000), "*-1\r\n");
    EXPECT_GE(std::chrono::steady_clock::now() - start, 290ms);
    for (const auto& q : queues) EXPECT_TRUE(WaitBlocked(observer, q, 0)) << q;
    EXPECT_EQ(BlockedClients(observer), 0);
    // The connection is usable, and a job added now stays queued.
    ASSERT_TRUE(conn.Send(Multibulk({"PING"})));
    EXPECT_EQ(conn.Read(7, 5000), "+PONG\r\n");
    AddJob(observer, queues[2], "x");
    EXPECT_EQ(QLen(observer, queues[2]), 1);
  }
  // hiredis reports the null array as nil.
  RedisClient c(port());
  EXPECT_EQ(c.Command({"GETJOB", "TIMEOUT", "100", "FROM", "empty"}).type, Reply::Type::kNil);
}

// ---------------------------------------------------------------------------------
// Concurrency: every job delivered exactly once

TEST_P(BlockingTest, TwentyBlockedConsumersEachGetOneOfTwentyJobs) {
  constexpr int kConsumers = 20;
  RedisClient producer(port());
  ASSERT_TRUE(producer.connected());
  std::mutex mu;
  std::vector<std::string> received;
  std::vector<std::string> problems;
  std::atomic<int> connected{0};
  {
    std::vector<std::jthread> consumers;
    for (int i = 0; i < kConsumers; ++i) {
      consumers.emplace_back([&, i] {
        RedisClient c(port(), 30000);
        if (!c.connected()) {
          std::lock_guard lock(mu);
          problems.push_back("consumer " + std::to_string(i) + " could not connect");
          return;
        }
        ++connected;
        // The server-side timeout bounds the wait should a job never come.
        Reply r = c.Command({"GETJOB", "TIMEOUT", "15000", "COUNT", "3", "FROM", "many"});
        std::lock_guard lock(mu);
        if (r.type != Reply::Type::kArray || r.elements.size() != 1 || r.elements[0].elements.size() != 3) {
          problems.push_back("consumer " + std::to_string(i) + ": " + r.ToString() + " " + r.str);
        } else {
          received.push_back(r.elements[0].elements[1].str);
        }
      });
    }
    const bool all_blocked = WaitBlocked(producer, "many", kConsumers);
    EXPECT_TRUE(all_blocked) << "blocked=" << QStatInt(producer, "many", "blocked");
    EXPECT_EQ(BlockedClients(producer), kConsumers);
    std::set<std::string> produced;
    for (int i = 0; i < kConsumers; ++i) produced.insert(AddJob(producer, "many", "job" + std::to_string(i)));
    consumers.clear();  // joins
    EXPECT_TRUE(problems.empty()) << problems.front();
    EXPECT_EQ(received.size(), static_cast<size_t>(kConsumers));
    EXPECT_EQ(std::set<std::string>(received.begin(), received.end()), produced) << "every job exactly once";
  }
  EXPECT_EQ(QLen(producer, "many"), 0);
  EXPECT_EQ(QStatInt(producer, "many", "blocked"), 0);
  EXPECT_EQ(QStatInt(producer, "many", "jobs-out"), kConsumers);
  EXPECT_EQ(BlockedClients(producer), 0);
}

TEST_P(BlockingTest, ManyProducersAndConsumersAcrossShardsDeliverEachJobOnce) {
  constexpr int kProducers = 4;
  constexpr int kJobsPerProducer = 50;
  constexpr int kJobs = kProducers * kJobsPerProducer;
  constexpr int kConsumers = 12;
  const std::vector<std::string> queues = NamesOnDifferentShards("mpq-", 3);
  ASSERT_EQ(queues.size(), 3u);
  RedisClient observer(port());
  ASSERT_TRUE(observer.connected());

  std::mutex mu;
  std::vector<std::string> produced, consumed, problems;
  std::atomic<int> consumed_count{0};
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kConsumers; ++i) {
      threads.emplace_back([&, i] {
        RedisClient c(port());
        if (!c.connected()) {
          std::lock_guard lock(mu);
          problems.push_back("consumer " + std::to_string(i) + " could not connect");
          return;
        }
        while (consumed_count.load() < kJobs && std::chrono::steady_clock::now() < deadline) {
          Reply r = c.Command({"GETJOB", "TIMEOUT", "200", "COUNT", "2", "FROM", queues[0], queues[1], queues[2]});
          if (r.type == Reply::Type::kNil) continue;
          std::lock_guard lock(mu);
          if (r.type != Reply::Type::kArray) {
            problems.push_back("consumer " + std::to_string(i) + ": " + r.ToString() + " " + r.str);
            return;
          }
          for (const auto& id : JobIds(r)) consumed.push_back(id);
          consumed_count += static_cast<int>(r.elements.size());
        }
      });
    }
    // Start producing once some consumers wait, so that both paths (serving blocked
    // clients and plain fetching) are exercised.
    EXPECT_TRUE(WaitFor([&] { return BlockedClients(observer) >= 3; }));
    for (int p = 0; p < kProducers; ++p) {
      threads.emplace_back([&, p] {
        RedisClient c(port());
        for (int j = 0; j < kJobsPerProducer; ++j) {
          const std::string& q = queues[(p + j) % queues.size()];
          Reply r = c.Command({"ADDJOB", q, "p" + std::to_string(p) + "-" + std::to_string(j), "0"});
          std::lock_guard lock(mu);
          if (r.type != Reply::Type::kStatus) {
            problems.push_back("producer " + std::to_string(p) + ": " + r.ToString() + " " + r.str);
            return;
          }
          produced.push_back(r.str);
        }
      });
    }
  }  // joins every thread
  EXPECT_TRUE(problems.empty()) << problems.front();
  ASSERT_EQ(produced.size(), static_cast<size_t>(kJobs));
  const std::set<std::string> produced_set(produced.begin(), produced.end());
  const std::set<std::string> consumed_set(consumed.begin(), consumed.end());
  EXPECT_EQ(produced_set.size(), produced.size()) << "duplicate job IDs";
  EXPECT_EQ(consumed.size(), consumed_set.size()) << "a job was delivered twice";
  EXPECT_EQ(consumed.size(), static_cast<size_t>(kJobs));
  EXPECT_TRUE(consumed_set == produced_set) << "consumed " << consumed_set.size() << " of " << produced_set.size();
  int64_t jobs_out = 0;
  for (const auto& q : queues) {
    EXPECT_EQ(QLen(observer, q), 0) << q;
    EXPECT_EQ(QStatInt(observer, q, "blocked"), 0) << q;
    jobs_out += QStatInt(observer, q, "jobs-out");
  }
  EXPECT_EQ(jobs_out, kJobs);
  EXPECT_TRUE(WaitFor([&] { return BlockedClients(observer) == 0; }));
}

// ---------------------------------------------------------------------------------
// Blocked clients that go away

TEST_P(BlockingTest, DisconnectedBlockedClientIsForgottenAndJobStaysQueued) {
  const std::vector<std::string> queues = NamesOnDifferentShards("dq-", 2);
  ASSERT_EQ(queues.size(), 2u);
  RedisClient observer(port());
  ASSERT_TRUE(observer.connected());
  {
    RawConnection blocked(port());
    ASSERT_TRUE(blocked.connected());
    ASSERT_TRUE(blocked.Send(Multibulk({"GETJOB", "FROM", queues[0], queues[1]})));
    ASSERT_TRUE(WaitBlocked(observer, queues[0], 1));
    ASSERT_TRUE(WaitBlocked(observer, queues[1], 1));
    EXPECT_EQ(BlockedClients(observer), 1);
  }  // disconnects
  int64_t blocked_clients = -1;
  EXPECT_TRUE(WaitFor([&] { return (blocked_clients = BlockedClients(observer)) == 0; }))
      << "blocked_clients=" << blocked_clients;
  EXPECT_TRUE(WaitBlocked(observer, queues[0], 0));
  EXPECT_TRUE(WaitBlocked(observer, queues[1], 0));
  EXPECT_TRUE(WaitFor([&] { return InfoInt(observer, "clients", "connected_clients") == 1; }));
  const std::string id0 = AddJob(observer, queues[0], "not lost");
  const std::string id1 = AddJob(observer, queues[1], "not lost");
  EXPECT_EQ(QLen(observer, queues[0]), 1) << "the job must stay queued, not go to the gone client";
  EXPECT_EQ(QLen(observer, queues[1]), 1);
  EXPECT_EQ(QStatInt(observer, queues[0], "jobs-out"), 0);
  EXPECT_EQ(JobIds(observer.Command({"GETJOB", "COUNT", "2", "FROM", queues[0], queues[1]})),
            (std::vector<std::string>{id0, id1}));
}

// Regression: a client that closes while its GETJOB is still registering on other
// shards used to stay blocked forever (its timer was cancelled before any wait).
TEST_P(BlockingTest, ClientClosingWhileRegisteringIsReleased) {
  const std::vector<std::string> queues = NamesOnDifferentShards("rq-", 4);
  ASSERT_EQ(queues.size(), 4u);
  RedisClient observer(port());
  ASSERT_TRUE(observer.connected());
  std::vector<std::string> args = {"GETJOB", "FROM"};
  for (int i = 0; i < 8; ++i) args.push_back(queues[i % 4] + std::to_string(i));
  for (int i = 0; i < 30; ++i) {
    RawConnection c(port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Send(Multibulk(args)));
  }  // each closes at once
  int64_t blocked = -1;
  EXPECT_TRUE(WaitFor([&] { return (blocked = BlockedClients(observer)) == 0; })) << "blocked_clients=" << blocked;
  EXPECT_TRUE(WaitFor([&] { return InfoInt(observer, "clients", "connected_clients") == 1; }));
  AddJob(observer, args[2], "kept");
  EXPECT_EQ(QLen(observer, args[2]), 1) << "no job may go to a gone client";
}

// Regression: a blocked client that sent more commands and then hung up must be
// noticed (the socket watch ends at the first pipelined byte; the cron polls).
TEST_P(BlockingTest, HangUpAfterPipelinedCommandIsNoticed) {
  RedisClient observer(port());
  ASSERT_TRUE(observer.connected());
  {
    RawConnection blocked(port());
    ASSERT_TRUE(blocked.connected());
    ASSERT_TRUE(blocked.Send(Multibulk({"GETJOB", "FROM", "pq"})));
    ASSERT_TRUE(WaitBlocked(observer, "pq", 1));
    ASSERT_TRUE(blocked.Send(Multibulk({"PING"})));
  }  // hangs up with the PING unread
  int64_t blocked_clients = -1;
  EXPECT_TRUE(WaitFor([&] { return (blocked_clients = BlockedClients(observer)) == 0; }))
      << "blocked_clients=" << blocked_clients;
  EXPECT_TRUE(WaitBlocked(observer, "pq", 0));
  AddJob(observer, "pq", "kept");
  EXPECT_EQ(QLen(observer, "pq"), 1);
}

TEST_P(BlockingTest, ClientKillOfBlockedClient) {
  RedisClient observer(port());
  ASSERT_TRUE(observer.connected());
  RedisClient by_id(port());
  RedisClient by_addr(port());
  ASSERT_TRUE(by_id.connected() && by_addr.connected());
  ASSERT_EQ(by_id.Command({"CLIENT", "SETNAME", "by-id"}).ToString(), "+OK");
  ASSERT_EQ(by_addr.Command({"CLIENT", "SETNAME", "by-addr"}).ToString(), "+OK");
  AsyncCommand id_call(by_id, {"GETJOB", "FROM", "kq"});
  AsyncCommand addr_call(by_addr, {"GETJOB", "FROM", "kq"});
  ASSERT_TRUE(WaitBlocked(observer, "kq", 2));
  EXPECT_EQ(BlockedClients(observer), 2);

  auto id_fields = FindClient(observer, "by-id");
  ASSERT_FALSE(id_fields.empty());
  EXPECT_EQ(observer.Command({"CLIENT", "KILL", "ID", id_fields["id"]}).ToString(), ":1");
  EXPECT_EQ(id_call.Get().type, Reply::Type::kNone) << "the killed client sees the connection close";
  EXPECT_TRUE(WaitBlocked(observer, "kq", 1));
  EXPECT_TRUE(WaitFor([&] { return BlockedClients(observer) == 1; }));

  auto addr_fields = FindClient(observer, "by-addr");
  ASSERT_FALSE(addr_fields.empty());
  EXPECT_EQ(observer.Command({"CLIENT", "KILL", addr_fields["addr"]}).ToString(), "+OK");
  EXPECT_EQ(addr_call.Get().type, Reply::Type::kNone);
  EXPECT_TRUE(WaitBlocked(observer, "kq", 0));
  EXPECT_TRUE(WaitFor([&] { return BlockedClients(observer) == 0; }));

  AddJob(observer, "kq", "kept");
  EXPECT_EQ(QLen(observer, "kq"), 1);
}

// ---------------------------------------------------------------------------------
// INFO and CLIENT LIST (PROTOCOL.md 6.2, 6.8)

TEST_P(BlockingTest, InfoBlockedClientsCountsBlockedClients) {
  const std::vector<std::string> queues = NamesOnDifferentShards("iq-", 3);
  ASSERT_EQ(queues.size(), 3u);
  RedisClient observer(port());
  ASSERT_TRUE(observer.connected());
  EXPECT_EQ(BlockedClients(observer), 0);
  std::vector<std::unique_ptr<RedisClient>> clients;
  std::vector<std::unique_ptr<AsyncCommand>> calls;
  for (const auto& q : queues) {
    clients.push_back(std::make_unique<RedisClient>(port()));
    ASSERT_TRUE(clients.back()->connected());
    calls.push_back(std::make_unique<AsyncCommand>(*clients.back(), std::vector<std::string>{"GETJOB", "FROM", q}));
  }
  int64_t n = -1;
  EXPECT_TRUE(WaitFor([&] { return (n = BlockedClients(observer)) == 3; })) << "blocked_clients=" << n;
  EXPECT_EQ(InfoInt(observer, "clients", "connected_clients"), 4);
  EXPECT_EQ(InfoInt(observer, "", "blocked_clients"), 3) << "also in the default INFO";
  const std::string id = AddJob(observer, queues[1], "x");
  EXPECT_EQ(JobIds(calls[1]->Get()), (std::vector<std::string>{id}));
  EXPECT_TRUE(WaitFor([&] { return (n = BlockedClients(observer)) == 2; })) << "blocked_clients=" << n;
  AddJob(observer, queues[0], "x");
  AddJob(observer, queues[2], "x");
  EXPECT_EQ(calls[0]->Get().elements.size(), 1u);
  EXPECT_EQ(calls[2]->Get().elements.size(), 1u);
  EXPECT_TRUE(WaitFor([&] { return (n = BlockedClients(observer)) == 0; })) << "blocked_clients=" << n;
}

TEST_P(BlockingTest, ClientListShowsBlockedFlag) {
  RedisClient observer(port());
  RedisClient blocked(port());
  ASSERT_TRUE(observer.connected() && blocked.connected());
  ASSERT_EQ(blocked.Command({"CLIENT", "SETNAME", "waiter"}).ToString(), "+OK");
  ASSERT_EQ(observer.Command({"CLIENT", "SETNAME", "observer"}).ToString(), "+OK");
  EXPECT_EQ(FindClient(observer, "waiter")["flags"], "N");
  AsyncCommand call(blocked, {"GETJOB", "FROM", "lq"});
  std::string flags;
  EXPECT_TRUE(WaitFor([&] { return (flags = FindClient(observer, "waiter")["flags"]) == "b"; })) << "flags=" << flags;
  EXPECT_EQ(FindClient(observer, "waiter")["cmd"], "getjob");
  EXPECT_EQ(FindClient(observer, "observer")["flags"], "N");
  AddJob(observer, "lq", "x");
  EXPECT_EQ(call.Get().elements.size(), 1u);
  EXPECT_TRUE(WaitFor([&] { return (flags = FindClient(observer, "waiter")["flags"]) == "N"; })) << "flags=" << flags;
}

// ---------------------------------------------------------------------------------
// Pipelining behind a blocked GETJOB (PROTOCOL.md 1.1)

TEST_P(BlockingTest, PipelinedCommandsWaitForTheBlockedGetjob) {
  RedisClient producer(port());
  RawConnection conn(port());
  ASSERT_TRUE(producer.connected() && conn.connected());
  ASSERT_TRUE(conn.Send(Multibulk({"GETJOB", "FROM", "pq"}) + Multibulk({"PING"}) + Multibulk({"QLEN", "pq"}) +
                        Multibulk({"PING", "last"})));
  ASSERT_TRUE(WaitBlocked(producer, "pq", 1));
  EXPECT_EQ(conn.Read(1, 300), "") << "nothing may be answered while the GETJOB blocks";
  const std::string id = AddJob(producer, "pq", "body");
  const std::string expected = OneJobReply("pq", id, "body") + "+PONG\r\n" + ":0\r\n" + Bulk("last");
  EXPECT_EQ(conn.Read(expected.size(), 5000), expected);
  // Nothing else follows.
  ASSERT_TRUE(conn.Send(Multibulk({"PING", "after"})));
  EXPECT_EQ(conn.Read(Bulk("after").size(), 5000), Bulk("after"));
}

// The replies of the commands pipelined before a blocking GETJOB are sent when it
// blocks, not when it returns (Redis and Disque write them before sleeping): a client
// that pipelines ACKJOB + GETJOB has its ACK answered while it waits for the next job.
TEST_P(BlockingTest, RepliesBeforeABlockingGetjobAreSentWhileItBlocks) {
  RedisClient producer(port());
  RawConnection conn(port());
  ASSERT_TRUE(producer.connected() && conn.connected());
  const std::string done = AddJob(producer, "other", "done");
  // No TIMEOUT: the GETJOB blocks until a job comes, so its earlier replies can only
  // arrive if they are sent while it blocks.
  ASSERT_TRUE(conn.Send(Multibulk({"PING"}) + Multibulk({"ACKJOB", done}) + Multibulk({"ADDJOB", "elsewhere", "x", "0"}) +
                        Multibulk({"GETJOB", "FROM", "bq"})));
  const std::string before = "+PONG\r\n:1\r\n+D-";
  EXPECT_EQ(conn.Read(before.size(), 10000), before);
  EXPECT_EQ(conn.Read(40, 10000).size(), 40u) << "the rest of ADDJOB's ID and its CRLF";
  ASSERT_TRUE(WaitBlocked(producer, "bq", 1));
  EXPECT_EQ(QLen(producer, "elsewhere"), 1);
  const std::string id = AddJob(producer, "bq", "body");
  const std::string expected = OneJobReply("bq", id, "body");
  EXPECT_EQ(conn.Read(expected.size(), 5000), expected);
}

TEST_P(BlockingTest, PipelinedBlockingGetjobsServedInOrder) {
  RedisClient producer(port());
  RawConnection conn(port());
  ASSERT_TRUE(producer.connected() && conn.connected());
  // Two blocking GETJOBs in a row: the second blocks only after the first is served.
  ASSERT_TRUE(conn.Send(Multibulk({"GETJOB", "FROM", "a"}) + Multibulk({"GETJOB", "FROM", "b"}) + Multibulk({"PING"})));
  ASSERT_TRUE(WaitBlocked(producer, "a", 1));
  const std::string id_b = AddJob(producer, "b", "for-b");  // queued: nobody waits on b yet
  EXPECT_EQ(QLen(producer, "b"), 1);
  const std::string id_a = AddJob(producer, "a", "for-a");
  const std::string expected = OneJobReply("a", id_a, "for-a") + OneJobReply("b", id_b, "for-b") + "+PONG\r\n";
  EXPECT_EQ(conn.Read(expected.size(), 5000), expected);
  EXPECT_EQ(QLen(producer, "b"), 0);
}

// ---------------------------------------------------------------------------------
// Shutdown with blocked clients (PROTOCOL.md 6.14)

TEST_P(BlockingTest, ShutdownCommandWhileClientsAreBlocked) {
  const std::vector<std::string> queues = NamesOnDifferentShards("sq-", 4);
  ASSERT_EQ(queues.size(), 4u);
  RedisClient observer(port());
  ASSERT_TRUE(observer.connected());
  std::vector<std::unique_ptr<RedisClient>> blocked;
  std::vector<std::unique_ptr<AsyncCommand>> calls;
  for (const auto& q : queues) {
    blocked.push_back(std::make_unique<RedisClient>(port()));
    ASSERT_TRUE(blocked.back()->connected());
    calls.push_back(std::make_unique<AsyncCommand>(*blocked.back(), std::vector<std::string>{"GETJOB", "FROM", q}));
  }
  ASSERT_TRUE(WaitFor([&] { return BlockedClients(observer) == 4; }));
  Reply r = observer.Command({"SHUTDOWN"});
  EXPECT_EQ(r.type, Reply::Type::kNone) << "SHUTDOWN has no reply: " << r.ToString();
  const int status = server_->WaitExit(std::chrono::seconds(20));
  ASSERT_NE(status, -1) << "the server did not exit";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << server_->log();
  for (auto& call : calls) EXPECT_EQ(call->Get().type, Reply::Type::kNone);
}

TEST_P(BlockingTest, SigtermWhileClientsAreBlocked) {
  RedisClient observer(port());
  RedisClient blocked(port());
  ASSERT_TRUE(observer.connected() && blocked.connected());
  AsyncCommand call(blocked, {"GETJOB", "FROM", "termq"});
  ASSERT_TRUE(WaitBlocked(observer, "termq", 1));
  const int status = server_->Stop(SIGTERM, std::chrono::seconds(20));
  ASSERT_NE(status, -1) << "the server did not exit";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << server_->log();
  EXPECT_EQ(call.Get().type, Reply::Type::kNone);
}

TEST_P(BlockingTest, FixtureStopsServerWithBlockedClient) {
  // The blocked client outlives the test body's checks; the ServerProcess destructor
  // then stops the server with SIGTERM and fails the test unless it exits cleanly.
  RedisClient observer(port());
  auto blocked = std::make_unique<RedisClient>(port());
  ASSERT_TRUE(observer.connected() && blocked->connected());
  AsyncCommand call(*blocked, {"GETJOB", "TIMEOUT", "60000", "FROM", "q1", "q2"});
  ASSERT_TRUE(WaitBlocked(observer, "q1", 1));
  server_.reset();  // stops the server now, while the client is still connected and blocked
  EXPECT_EQ(call.Get().type, Reply::Type::kNone);
}

INSTANTIATE_TEST_SUITE_P(Threads, BlockingTest, ::testing::Values(1, 4));

}  // namespace
}  // namespace disque::test
