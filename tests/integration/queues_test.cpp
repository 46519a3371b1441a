// The queue commands and the queue-level administration, against the real binary
// (PROTOCOL.md 2.5, 4, 5, 6.1, 6.2, 6.13): QLEN, QPEEK, QSTAT, QSCAN, JSCAN, PAUSE, idle
// queue eviction, OOM refusal, HELLO, INFO jobs/queues/persistence and DEBUG FLUSHALL.
// Every test runs with --threads 1 and --threads 4; with four shards, queues and jobs
// live on different shards, so the scans and counters exercise the cross-shard paths.

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
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

using QueuesTest = ServerTest;

constexpr const char* kNotInteger = "-ERR value is not an integer or out of range";
constexpr const char* kBadCursor = "-ERR invalid cursor or option name";
constexpr const char* kSyntax = "-ERR syntax error";
constexpr const char* kOom = "-OOM command not allowed when used memory > 'maxmemory'.";
constexpr const char* kDefaultMaxmemory = "1073741824";

// Sends one command on a fresh raw connection and returns the first `bytes` bytes of
// the reply. For replies hiredis cannot tell apart (`*-1` and `$-1`).
std::string RawReply(int port, const std::vector<std::string>& args, size_t bytes) {
  RawConnection conn(port);
  if (!conn.connected() || !conn.Send(Multibulk(args))) return "(no connection)";
  return conn.Read(bytes, 5000);
}

// ADDJOB with the default options; the job ID, or "" (with a test failure) on error.
std::string AddJob(RedisClient& c, const std::string& queue, const std::string& body,
                   const std::vector<std::string>& options = {}) {
  std::vector<std::string> args{"ADDJOB", queue, body, "0"};
  args.insert(args.end(), options.begin(), options.end());
  Reply r = c.Command(args);
  EXPECT_EQ(r.type, Reply::Type::kStatus) << r.ToString();
  EXPECT_EQ(r.str.size(), 40u) << r.ToString();
  return r.type == Reply::Type::kStatus ? r.str : "";
}

// QSTAT as a name → value map; empty if the reply is not a 20-element array.
std::map<std::string, Reply> QStat(RedisClient& c, const std::string& queue) {
  std::map<std::string, Reply> out;
  Reply r = c.Command({"QSTAT", queue});
  if (r.type != Reply::Type::kArray || r.elements.size() != 20) return out;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) out[r.elements[i].str] = r.elements[i + 1];
  return out;
}

bool QueueExists(RedisClient& c, const std::string& queue) {
  return c.Command({"QSTAT", queue}).type == Reply::Type::kArray;
}

int64_t QStatInt(RedisClient& c, const std::string& queue, const std::string& field) {
  auto stat = QStat(c, queue);
  auto it = stat.find(field);
  return it == stat.end() ? -1 : it->second.integer;
}

// The ids of a GETJOB / QPEEK reply ([[queue, id, body], ...]).
std::vector<std::string> JobIds(const Reply& r) {
  std::vector<std::string> ids;
  for (const Reply& job : r.elements) ids.push_back(job.elements.size() >= 2 ? job.elements[1].str : "?");
  return ids;
}

// The second element of a SCAN reply, as strings.
std::set<std::string> ScanItems(const Reply& r) {
  std::set<std::string> out;
  if (r.type != Reply::Type::kArray || r.elements.size() != 2) return out;
  for (const Reply& e : r.elements[1].elements) out.insert(e.str);
  return out;
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

// True if `condition` holds on every check for `duration` (a bounded "stays so" check).
bool HoldsFor(const std::function<bool()>& condition, std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!condition()) return false;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

// ---------------------------------------------------------------------------------
// QLEN (PROTOCOL.md 4.1)

TEST_P(QueuesTest, QlenCountsQueuedJobsAndIsZeroForMissingQueue) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Command({"QLEN", "nosuchqueue"}).ToString(), ":0");
  EXPECT_FALSE(QueueExists(c, "nosuchqueue")) << "QLEN must not create the queue";
  AddJob(c, "q", "a");
  AddJob(c, "q", "b");
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":2");
  EXPECT_EQ(c.Command({"GETJOB", "FROM", "q"}).elements.size(), 1u);
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":1");
  EXPECT_EQ(c.Command({"QLEN", "Q"}).ToString(), ":0") << "queue names are case-sensitive";
  EXPECT_EQ(c.Command({"QLEN"}).ToString(), "-ERR wrong number of arguments for 'qlen' command");
  EXPECT_EQ(c.Command({"QLEN", "a", "b"}).ToString(), "-ERR wrong number of arguments for 'qlen' command");
}

// ---------------------------------------------------------------------------------
// QPEEK (PROTOCOL.md 4.2)

TEST_P(QueuesTest, QpeekFromHeadAndTail) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  const std::string j1 = AddJob(c, "q", "body1");
  const std::string j2 = AddJob(c, "q", "body2");
  const std::string j3 = AddJob(c, "q", "body3");

  Reply r = c.Command({"QPEEK", "q", "2"});
  ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 2u);
  EXPECT_EQ(JobIds(r), (std::vector<std::string>{j1, j2})) << "positive count: oldest first";
  // Each element is [queue, id, body], three bulk strings.
  ASSERT_EQ(r.elements[0].elements.size(), 3u);
  for (const Reply& e : r.elements[0].elements) EXPECT_EQ(e.type, Reply::Type::kBulk);
  EXPECT_EQ(r.elements[0].elements[0].str, "q");
  EXPECT_EQ(r.elements[0].elements[2].str, "body1");
  EXPECT_EQ(r.elements[1].elements[2].str, "body2");

  EXPECT_EQ(JobIds(c.Command({"QPEEK", "q", "-2"})), (std::vector<std::string>{j3, j2}))
      << "negative count: newest first";
  EXPECT_EQ(JobIds(c.Command({"QPEEK", "q", "100"})), (std::vector<std::string>{j1, j2, j3}));
  EXPECT_EQ(JobIds(c.Command({"QPEEK", "q", "-100"})), (std::vector<std::string>{j3, j2, j1}));
  EXPECT_EQ(JobIds(c.Command({"QPEEK", "q", "+1"})), (std::vector<std::string>{j1}));
  EXPECT_EQ(JobIds(c.Command({"QPEEK", "q", "-1"})), (std::vector<std::string>{j3}));

  // The queue is not modified.
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":3");
  EXPECT_EQ(QStatInt(c, "q", "jobs-out"), 0);
  Reply got = c.Command({"GETJOB", "NOHANG", "FROM", "q"});
  EXPECT_EQ(JobIds(got), (std::vector<std::string>{j1}));
}

TEST_P(QueuesTest, QpeekEmptyResultsAndErrors) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  AddJob(c, "q", "x");
  Reply r = c.Command({"QPEEK", "q", "0"});
  EXPECT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  EXPECT_TRUE(r.elements.empty());
  // The empty string parses as 0 (PROTOCOL.md 1.4).
  r = c.Command({"QPEEK", "q", ""});
  EXPECT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  EXPECT_TRUE(r.elements.empty());
  EXPECT_EQ(RawReply(port(), {"QPEEK", "missing", "5"}, 4), "*0\r\n");
  EXPECT_EQ(RawReply(port(), {"QPEEK", "missing", "-5"}, 4), "*0\r\n");
  EXPECT_FALSE(QueueExists(c, "missing")) << "QPEEK must not create the queue";
  // An existing but empty queue.
  EXPECT_EQ(c.Command({"GETJOB", "NOHANG", "FROM", "empty"}).type, Reply::Type::kNil);
  ASSERT_TRUE(QueueExists(c, "empty"));
  EXPECT_EQ(RawReply(port(), {"QPEEK", "empty", "3"}, 4), "*0\r\n");

  EXPECT_EQ(c.Command({"QPEEK", "q", "abc"}).ToString(), kNotInteger);
  EXPECT_EQ(c.Command({"QPEEK", "q", "1x"}).ToString(), kNotInteger);
  EXPECT_EQ(c.Command({"QPEEK", "q", " 1"}).ToString(), kNotInteger);
  EXPECT_EQ(c.Command({"QPEEK", "q", "99999999999999999999"}).ToString(), kNotInteger);
  EXPECT_EQ(c.Command({"QPEEK", "q"}).ToString(), "-ERR wrong number of arguments for 'qpeek' command");
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":1");
}

TEST_P(QueuesTest, QpeekIgnoresPause) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  const std::string j1 = AddJob(c, "q", "x");
  EXPECT_EQ(c.Command({"PAUSE", "q", "all"}).ToString(), "+all");
  EXPECT_EQ(JobIds(c.Command({"QPEEK", "q", "1"})), (std::vector<std::string>{j1}));
  EXPECT_EQ(JobIds(c.Command({"QPEEK", "q", "-1"})), (std::vector<std::string>{j1}));
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":1");
}

// ---------------------------------------------------------------------------------
// QSTAT (PROTOCOL.md 4.3)

TEST_P(QueuesTest, QstatOfMissingQueueIsNullArray) {
  EXPECT_EQ(RawReply(port(), {"QSTAT", "missing"}, 5), "*-1\r\n");
  RedisClient c(port());
  EXPECT_EQ(c.Command({"QSTAT", "missing"}).type, Reply::Type::kNil);
  EXPECT_EQ(RawReply(port(), {"QSTAT", "missing"}, 5), "*-1\r\n") << "QSTAT must not create the queue";
  EXPECT_EQ(c.Command({"QSTAT"}).ToString(), "-ERR wrong number of arguments for 'qstat' command");
}

TEST_P(QueuesTest, QstatLayoutAndTypes) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  AddJob(c, "myqueue", "a");
  AddJob(c, "myqueue", "b");
  Reply r = c.Command({"QSTAT", "myqueue"});
  ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 20u);
  const std::vector<std::string> names{"name",        "len",         "age",     "idle",     "blocked",
                                       "import-from", "import-rate", "jobs-in", "jobs-out", "pause"};
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(r.elements[2 * i].type, Reply::Type::kBulk) << names[i];
    EXPECT_EQ(r.elements[2 * i].str, names[i]) << "field " << i;
  }
  auto value = [&](size_t i) -> const Reply& { return r.elements[2 * i + 1]; };
  EXPECT_EQ(value(0).type, Reply::Type::kBulk);
  EXPECT_EQ(value(0).str, "myqueue");
  EXPECT_EQ(value(1).ToString(), ":2");
  EXPECT_EQ(value(2).type, Reply::Type::kInteger);
  EXPECT_GE(value(2).integer, 0);
  EXPECT_LE(value(2).integer, 5);
  EXPECT_EQ(value(3).type, Reply::Type::kInteger);
  EXPECT_GE(value(3).integer, 0);
  EXPECT_LE(value(3).integer, 5);
  EXPECT_EQ(value(4).ToString(), ":0");
  EXPECT_EQ(value(5).type, Reply::Type::kArray);
  EXPECT_TRUE(value(5).elements.empty());
  EXPECT_EQ(value(6).ToString(), ":0");
  EXPECT_EQ(value(7).ToString(), ":2");
  EXPECT_EQ(value(8).ToString(), ":0");
  EXPECT_EQ(value(9).type, Reply::Type::kBulk) << "pause is a bulk string";
  EXPECT_EQ(value(9).str, "none");
}

TEST_P(QueuesTest, QstatCountsJobsInAndOut) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  AddJob(c, "q", "a");
  AddJob(c, "q", "b");
  AddJob(c, "q", "c");
  EXPECT_EQ(QStatInt(c, "q", "jobs-in"), 3);
  EXPECT_EQ(QStatInt(c, "q", "jobs-out"), 0);
  Reply got = c.Command({"GETJOB", "COUNT", "2", "FROM", "q"});
  ASSERT_EQ(got.elements.size(), 2u) << got.ToString();
  EXPECT_EQ(QStatInt(c, "q", "len"), 1);
  EXPECT_EQ(QStatInt(c, "q", "jobs-in"), 3);
  EXPECT_EQ(QStatInt(c, "q", "jobs-out"), 2);
  // A NACKed job is enqueued again: jobs-in counts enqueues.
  EXPECT_EQ(c.Command({"NACK", JobIds(got)[0]}).ToString(), ":1");
  EXPECT_EQ(QStatInt(c, "q", "len"), 2);
  EXPECT_EQ(QStatInt(c, "q", "jobs-in"), 4);
  EXPECT_EQ(c.Command({"GETJOB", "COUNT", "10", "FROM", "q"}).elements.size(), 2u);
  EXPECT_EQ(QStatInt(c, "q", "jobs-out"), 4);
  EXPECT_EQ(QStatInt(c, "q", "len"), 0);
  // Peeking counts nothing.
  c.Command({"QPEEK", "q", "10"});
  EXPECT_EQ(QStatInt(c, "q", "jobs-out"), 4);
}

TEST_P(QueuesTest, QstatCountsBlockedClients) {
  RedisClient c(port());
  RedisClient blocked(port());
  ASSERT_TRUE(c.connected() && blocked.connected());
  AsyncCommand call(blocked, {"GETJOB", "FROM", "bq"});
  int64_t n = -1;
  EXPECT_TRUE(WaitFor([&] { return (n = QStatInt(c, "bq", "blocked")) == 1; })) << "blocked=" << n;
  const std::string id = AddJob(c, "bq", "wake");
  Reply r = call.Get();
  ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  EXPECT_EQ(JobIds(r), (std::vector<std::string>{id}));
  EXPECT_EQ(QStatInt(c, "bq", "blocked"), 0);
  EXPECT_EQ(QStatInt(c, "bq", "jobs-out"), 1);
  EXPECT_EQ(QStatInt(c, "bq", "len"), 0);
}

// ---------------------------------------------------------------------------------
// QSCAN (PROTOCOL.md 4.4)

TEST_P(QueuesTest, QscanReplyShapeAndOptionParsing) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  AddJob(c, "qa", "x");
  AddJob(c, "qb", "x");
  Reply r = c.Command({"QSCAN"});
  ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 2u);
  EXPECT_EQ(r.elements[0].type, Reply::Type::kBulk) << "the cursor is a bulk string";
  EXPECT_EQ(r.elements[1].type, Reply::Type::kArray);
  for (const Reply& e : r.elements[1].elements) EXPECT_EQ(e.type, Reply::Type::kBulk);
  // Two queues fit in one default call (COUNT 100).
  EXPECT_EQ(r.elements[0].str, "0");
  EXPECT_EQ(ScanItems(r), (std::set<std::string>{"qa", "qb"}));

  // Options and the cursor anywhere, keywords case-insensitive.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"QSCAN", "0"},
                                             {"QSCAN", "0", "COUNT", "10"},
                                             {"QSCAN", "COUNT", "10", "0"},
                                             {"qscan", "count", "10", "busyloop", "minlen", "0"},
                                             {"QSCAN", "BUSYLOOP", "0", "MAXLEN", "5", "IMPORTRATE", "0"},
                                             {"QSCAN", "COUNT", "5", "COUNT", "7"},
                                             {"QSCAN", "BUSYLOOP", "BUSYLOOP"}}) {
    Reply s = c.Command(args);
    ASSERT_EQ(s.type, Reply::Type::kArray) << args[1] << ": " << s.ToString() << " " << s.str;
    EXPECT_EQ(s.elements.size(), 2u);
  }
  // A cursor of -1 is accepted (parsed as unsigned, wraps around).
  Reply wrapped = c.Command({"QSCAN", "-1"});
  EXPECT_EQ(wrapped.type, Reply::Type::kArray) << wrapped.ToString() << " " << wrapped.str;

  EXPECT_EQ(c.Command({"QSCAN", "foo"}).ToString(), kBadCursor);
  EXPECT_EQ(c.Command({"QSCAN", "1x"}).ToString(), kBadCursor);
  EXPECT_EQ(c.Command({"QSCAN", "0", "0"}).ToString(), kSyntax) << "a second cursor word";
  EXPECT_EQ(c.Command({"QSCAN", "0", "5"}).ToString(), kSyntax);
  // A keyword with no value is parsed as the cursor.
  EXPECT_EQ(c.Command({"QSCAN", "COUNT"}).ToString(), kBadCursor);
  EXPECT_EQ(c.Command({"QSCAN", "MINLEN"}).ToString(), kBadCursor);
  EXPECT_EQ(c.Command({"QSCAN", "BUSYLOOP", "IMPORTRATE"}).ToString(), kBadCursor);
  EXPECT_EQ(c.Command({"QSCAN", "0", "COUNT"}).ToString(), kSyntax)
      << "a trailing COUNT after a cursor is a second cursor word";
  EXPECT_EQ(c.Command({"QSCAN", "COUNT", "abc"}).ToString(), kNotInteger);
  EXPECT_EQ(c.Command({"QSCAN", "MINLEN", "abc"}).ToString(), kNotInteger);
  EXPECT_EQ(c.Command({"QSCAN", "MAXLEN", "1.5"}).ToString(), kNotInteger);
  EXPECT_EQ(c.Command({"QSCAN", "IMPORTRATE", "x"}).ToString(), kNotInteger);
}

TEST_P(QueuesTest, QscanFilters) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  AddJob(c, "one", "x");
  for (int i = 0; i < 3; ++i) AddJob(c, "three", "x");
  EXPECT_EQ(c.Command({"GETJOB", "NOHANG", "FROM", "zero"}).type, Reply::Type::kNil);  // creates it, empty
  ASSERT_TRUE(QueueExists(c, "zero"));

  auto scan = [&](std::vector<std::string> options) {
    std::vector<std::string> args{"QSCAN", "BUSYLOOP"};
    args.insert(args.end(), options.begin(), options.end());
    Reply r = c.Command(args);
    EXPECT_EQ(r.type, Reply::Type::kArray) << r.ToString() << " " << r.str;
    if (r.elements.size() == 2) {
      EXPECT_EQ(r.elements[0].str, "0") << "BUSYLOOP scans everything";
    }
    return ScanItems(r);
  };
  using Set = std::set<std::string>;
  EXPECT_EQ(scan({}), (Set{"zero", "one", "three"}));
  EXPECT_EQ(scan({"MINLEN", "1"}), (Set{"one", "three"}));
  EXPECT_EQ(scan({"MINLEN", "2"}), (Set{"three"}));
  EXPECT_EQ(scan({"MINLEN", "4"}), Set{});
  EXPECT_EQ(scan({"MINLEN", "-5"}), (Set{"zero", "one", "three"})) << "negative MINLEN filters nothing";
  EXPECT_EQ(scan({"MAXLEN", "0"}), (Set{"zero"}));
  EXPECT_EQ(scan({"MAXLEN", "1"}), (Set{"zero", "one"}));
  EXPECT_EQ(scan({"MAXLEN", "3"}), (Set{"zero", "one", "three"}));
  EXPECT_EQ(scan({"MINLEN", "1", "MAXLEN", "1"}), (Set{"one"}));
  EXPECT_EQ(scan({"MAXLEN", "-1"}), (Set{"zero", "one", "three"})) << "MAXLEN -1 means unset";
  // QUIRK: any other negative MAXLEN excludes every queue.
  EXPECT_EQ(scan({"MAXLEN", "-2"}), Set{});
  EXPECT_EQ(scan({"MAXLEN", "-100"}), Set{});
  EXPECT_EQ(scan({"IMPORTRATE", "0"}), (Set{"zero", "one", "three"}));
  EXPECT_EQ(scan({"IMPORTRATE", "-3"}), (Set{"zero", "one", "three"}));
  EXPECT_EQ(scan({"IMPORTRATE", "1"}), Set{}) << "nothing was imported";
}

TEST_P(QueuesTest, QscanFullIterationVisitsEveryQueue) {
  constexpr int kQueues = 500;
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  std::set<std::string> created;
  for (int i = 0; i < kQueues; ++i) {
    const std::string name = "queue:" + std::to_string(i);
    created.insert(name);
    c.Append({"ADDJOB", name, "x", "0"});
  }
  for (int i = 0; i < kQueues; ++i) ASSERT_EQ(c.GetReply().type, Reply::Type::kStatus);
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), kQueues);

  std::set<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    Reply r = c.Command({"QSCAN", cursor, "COUNT", "10"});
    ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString() << " " << r.str;
    ASSERT_EQ(r.elements.size(), 2u);
    ASSERT_EQ(r.elements[0].type, Reply::Type::kBulk);
    cursor = r.elements[0].str;
    for (const Reply& e : r.elements[1].elements) {
      EXPECT_TRUE(created.count(e.str)) << "unknown queue " << e.str;
      seen.insert(e.str);
    }
    ASSERT_LT(++calls, 100000) << "the iteration does not end";
  } while (cursor != "0");
  EXPECT_EQ(seen, created);
  EXPECT_GT(calls, 1) << "COUNT 10 should not return 500 queues in one call";

  // BUSYLOOP returns everything in one call, whatever COUNT says.
  Reply all = c.Command({"QSCAN", "COUNT", "10", "BUSYLOOP"});
  ASSERT_EQ(all.elements.size(), 2u) << all.ToString();
  EXPECT_EQ(all.elements[0].str, "0");
  EXPECT_EQ(ScanItems(all), created);
}

// ---------------------------------------------------------------------------------
// JSCAN (PROTOCOL.md 4.5)

TEST_P(QueuesTest, JscanOptionParsing) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  AddJob(c, "q", "x");
  Reply r = c.Command({"JSCAN"});
  ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 2u);
  EXPECT_EQ(r.elements[0].type, Reply::Type::kBulk);
  EXPECT_EQ(r.elements[0].str, "0");
  EXPECT_EQ(r.elements[1].elements.size(), 1u);

  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"JSCAN", "0"},
                                             {"JSCAN", "COUNT", "10", "0"},
                                             {"jscan", "busyloop", "queue", "q", "state", "queued", "reply", "id"},
                                             {"JSCAN", "STATE", "active", "0", "REPLY", "ALL"}}) {
    Reply s = c.Command(args);
    ASSERT_EQ(s.type, Reply::Type::kArray) << args[1] << ": " << s.ToString() << " " << s.str;
    EXPECT_EQ(s.elements.size(), 2u);
  }
  EXPECT_EQ(c.Command({"JSCAN", "foo"}).ToString(), kBadCursor);
  EXPECT_EQ(c.Command({"JSCAN", "0", "0"}).ToString(), kSyntax);
  EXPECT_EQ(c.Command({"JSCAN", "COUNT"}).ToString(), kBadCursor);
  EXPECT_EQ(c.Command({"JSCAN", "QUEUE"}).ToString(), kBadCursor);
  EXPECT_EQ(c.Command({"JSCAN", "COUNT", "abc"}).ToString(), kNotInteger);
  EXPECT_EQ(c.Command({"JSCAN", "STATE", "bogus"}).ToString(), "-ERR Invalid job state name");
  EXPECT_EQ(c.Command({"JSCAN", "STATE", "queued", "STATE", "nope"}).ToString(), "-ERR Invalid job state name");
  EXPECT_EQ(c.Command({"JSCAN", "REPLY", "bogus"}).ToString(), "-ERR Invalid REPLY type, try ID or ALL");
  EXPECT_EQ(c.Command({"JSCAN", "REPLY", "ids"}).ToString(), "-ERR Invalid REPLY type, try ID or ALL");
}

TEST_P(QueuesTest, JscanQueueAndStateFilters) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  const std::string a1 = AddJob(c, "qa", "x");
  const std::string a2 = AddJob(c, "qa", "x");
  const std::string a3 = AddJob(c, "qa", "x");
  const std::string b1 = AddJob(c, "qb", "x");
  const std::string delayed = AddJob(c, "qb", "x", {"DELAY", "100"});  // active until the delay ends
  Reply got = c.Command({"GETJOB", "FROM", "qa"});                       // a1 becomes active
  ASSERT_EQ(JobIds(got), (std::vector<std::string>{a1}));

  auto scan = [&](std::vector<std::string> options) {
    std::vector<std::string> args{"JSCAN", "BUSYLOOP"};
    args.insert(args.end(), options.begin(), options.end());
    Reply r = c.Command(args);
    EXPECT_EQ(r.type, Reply::Type::kArray) << r.ToString() << " " << r.str;
    return ScanItems(r);
  };
  using Set = std::set<std::string>;
  const Set everything{a1, a2, a3, b1, delayed};
  EXPECT_EQ(scan({}), everything);
  EXPECT_EQ(scan({"QUEUE", "qa"}), (Set{a1, a2, a3}));
  EXPECT_EQ(scan({"QUEUE", "qb"}), (Set{b1, delayed}));
  EXPECT_EQ(scan({"QUEUE", "QA"}), Set{}) << "QUEUE is an exact match";
  EXPECT_EQ(scan({"QUEUE", "q"}), Set{});
  EXPECT_EQ(scan({"STATE", "queued"}), (Set{a2, a3, b1}));
  EXPECT_EQ(scan({"STATE", "active"}), (Set{a1, delayed}));
  EXPECT_EQ(scan({"STATE", "QUEUED"}), (Set{a2, a3, b1})) << "state names are case-insensitive";
  EXPECT_EQ(scan({"STATE", "Active"}), (Set{a1, delayed}));
  EXPECT_EQ(scan({"STATE", "queued", "STATE", "active"}), everything) << "repeated STATE is OR-ed";
  EXPECT_EQ(scan({"STATE", "acked"}), Set{});
  EXPECT_EQ(scan({"STATE", "wait-repl"}), Set{});
  EXPECT_EQ(scan({"STATE", "acked", "STATE", "active"}), (Set{a1, delayed}));
  EXPECT_EQ(scan({"QUEUE", "qa", "STATE", "active"}), (Set{a1}));
  EXPECT_EQ(scan({"QUEUE", "qb", "STATE", "queued"}), (Set{b1}));
}

TEST_P(QueuesTest, JscanReplyIdAndAll) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  const std::string id = AddJob(c, "q", "the body");

  for (const char* mode : {"id", "ID", "Id"}) {
    Reply r = c.Command({"JSCAN", "REPLY", mode});
    ASSERT_EQ(r.elements.size(), 2u) << r.ToString() << " " << r.str;
    ASSERT_EQ(r.elements[1].elements.size(), 1u);
    EXPECT_EQ(r.elements[1].elements[0].type, Reply::Type::kStatus) << "IDs are status replies";
    EXPECT_EQ(r.elements[1].elements[0].str, id);
  }
  // Default is REPLY id.
  Reply def = c.Command({"JSCAN"});
  ASSERT_EQ(def.elements.size(), 2u);
  ASSERT_EQ(def.elements[1].elements.size(), 1u);
  EXPECT_EQ(def.elements[1].elements[0].type, Reply::Type::kStatus);
  EXPECT_EQ(def.elements[1].elements[0].str, id);

  for (const char* mode : {"all", "ALL"}) {
    Reply r = c.Command({"JSCAN", "REPLY", mode});
    ASSERT_EQ(r.elements.size(), 2u) << r.ToString() << " " << r.str;
    ASSERT_EQ(r.elements[1].elements.size(), 1u);
    const Reply& job = r.elements[1].elements[0];
    ASSERT_EQ(job.type, Reply::Type::kArray);
    ASSERT_EQ(job.elements.size(), 30u);
    EXPECT_EQ(job.elements[0].str, "id");
    EXPECT_EQ(job.elements[1].str, id);
    EXPECT_EQ(job.elements[2].str, "queue");
    EXPECT_EQ(job.elements[3].str, "q");
    EXPECT_EQ(job.elements[4].str, "state");
    EXPECT_EQ(job.elements[5].str, "queued");
    EXPECT_EQ(job.elements[28].str, "body");
    EXPECT_EQ(job.elements[29].str, "the body");
    // The same array SHOW returns, field by field (names and types).
    Reply show = c.Command({"SHOW", id});
    ASSERT_EQ(show.elements.size(), 30u);
    for (size_t i = 0; i < 30; i += 2) {
      EXPECT_EQ(job.elements[i].str, show.elements[i].str);
      EXPECT_EQ(job.elements[i + 1].type, show.elements[i + 1].type) << job.elements[i].str;
    }
  }
}

TEST_P(QueuesTest, JscanFullIterationVisitsEveryJob) {
  constexpr int kJobs = 2000;
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < kJobs; ++i) c.Append({"ADDJOB", "jq" + std::to_string(i % 7), "body", "0"});
  std::set<std::string> created;
  for (int i = 0; i < kJobs; ++i) {
    Reply r = c.GetReply();
    ASSERT_EQ(r.type, Reply::Type::kStatus) << r.ToString();
    created.insert(r.str);
  }
  ASSERT_EQ(created.size(), static_cast<size_t>(kJobs));

  std::set<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    Reply r = c.Command({"JSCAN", cursor, "COUNT", "7"});
    ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString() << " " << r.str;
    ASSERT_EQ(r.elements.size(), 2u);
    cursor = r.elements[0].str;
    for (const Reply& e : r.elements[1].elements) {
      EXPECT_TRUE(created.count(e.str)) << "unknown job " << e.str;
      seen.insert(e.str);
    }
    ASSERT_LT(++calls, 200000) << "the iteration does not end";
  } while (cursor != "0");
  EXPECT_EQ(seen.size(), created.size());
  EXPECT_TRUE(seen == created);
  EXPECT_GT(calls, 10);

  Reply all = c.Command({"JSCAN", "BUSYLOOP", "COUNT", "7"});
  ASSERT_EQ(all.elements.size(), 2u);
  EXPECT_EQ(all.elements[0].str, "0");
  EXPECT_TRUE(ScanItems(all) == created);
  // Filtered full iteration: one queue only.
  std::set<std::string> jq3;
  cursor = "0";
  calls = 0;
  do {
    Reply r = c.Command({"JSCAN", cursor, "COUNT", "20", "QUEUE", "jq3"});
    ASSERT_EQ(r.elements.size(), 2u) << r.ToString() << " " << r.str;
    cursor = r.elements[0].str;
    for (const Reply& e : r.elements[1].elements) jq3.insert(e.str);
    ASSERT_LT(++calls, 200000);
  } while (cursor != "0");
  EXPECT_EQ(jq3.size(), static_cast<size_t>((kJobs - 3 + 6) / 7));  // i % 7 == 3
}

// ---------------------------------------------------------------------------------
// PAUSE (PROTOCOL.md 4.6)

TEST_P(QueuesTest, PauseFoldsOptionsLeftToRight) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  AddJob(c, "q", "x");
  auto pause_of = [&] {
    auto stat = QStat(c, "q");
    EXPECT_EQ(stat["pause"].type, Reply::Type::kBulk);
    return stat["pause"].str;
  };
  Reply r = c.Command({"PAUSE", "q", "in"});
  EXPECT_EQ(r.type, Reply::Type::kStatus);
  EXPECT_EQ(r.str, "in");
  EXPECT_EQ(pause_of(), "in");
  EXPECT_EQ(c.Command({"PAUSE", "q", "out"}).ToString(), "+out") << "flags are replaced, not added";
  EXPECT_EQ(pause_of(), "out");
  EXPECT_EQ(c.Command({"PAUSE", "q", "in", "out"}).ToString(), "+all");
  EXPECT_EQ(pause_of(), "all");
  EXPECT_EQ(c.Command({"PAUSE", "q", "in", "none"}).ToString(), "+none") << "none resets the set so far";
  EXPECT_EQ(pause_of(), "none");
  EXPECT_EQ(c.Command({"PAUSE", "q", "none", "in"}).ToString(), "+in");
  EXPECT_EQ(c.Command({"PAUSE", "q", "all"}).ToString(), "+all");
  EXPECT_EQ(c.Command({"PAUSE", "q", "state"}).ToString(), "+all") << "state only reads";
  EXPECT_EQ(pause_of(), "all");
  EXPECT_EQ(c.Command({"PAUSE", "q", "all", "none", "out"}).ToString(), "+out");
  EXPECT_EQ(c.Command({"PAUSE", "q", "OUT", "bcast"}).ToString(), "+out") << "bcast is accepted";
  EXPECT_EQ(c.Command({"PAUSE", "q", "bcast"}).ToString(), "+out") << "bcast alone changes nothing";
  EXPECT_EQ(c.Command({"PAUSE", "q", "In", "State"}).ToString(), "+in");
  EXPECT_EQ(c.Command({"PAUSE", "q", "out", "in"}).ToString(), "+all");

  // An unknown word: syntax error, nothing applied.
  EXPECT_EQ(c.Command({"PAUSE", "q", "none", "bogus"}).ToString(), kSyntax);
  EXPECT_EQ(pause_of(), "all");
  EXPECT_EQ(c.Command({"PAUSE", "q", "bogus", "none"}).ToString(), kSyntax);
  EXPECT_EQ(pause_of(), "all");
  EXPECT_EQ(c.Command({"PAUSE", "q", "state"}).ToString(), "+all");
  EXPECT_EQ(c.Command({"PAUSE", "q", "none"}).ToString(), "+none");
  EXPECT_EQ(pause_of(), "none");
  EXPECT_EQ(c.Command({"PAUSE", "q"}).ToString(), "-ERR wrong number of arguments for 'pause' command");
}

TEST_P(QueuesTest, PauseOnMissingQueue) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Command({"PAUSE", "m1", "none"}).ToString(), "+none");
  EXPECT_EQ(RawReply(port(), {"QSTAT", "m1"}, 5), "*-1\r\n") << "PAUSE q none must not create the queue";
  EXPECT_EQ(c.Command({"PAUSE", "m2", "state"}).ToString(), "+none");
  EXPECT_EQ(RawReply(port(), {"QSTAT", "m2"}, 5), "*-1\r\n");
  EXPECT_EQ(c.Command({"PAUSE", "m3", "in", "none"}).ToString(), "+none");
  EXPECT_EQ(RawReply(port(), {"QSTAT", "m3"}, 5), "*-1\r\n");
  EXPECT_EQ(c.Command({"PAUSE", "m4", "bogus"}).ToString(), kSyntax);
  EXPECT_EQ(RawReply(port(), {"QSTAT", "m4"}, 5), "*-1\r\n");
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 0);

  EXPECT_EQ(c.Command({"PAUSE", "m5", "in"}).ToString(), "+in");
  auto stat = QStat(c, "m5");
  ASSERT_FALSE(stat.empty()) << "PAUSE q in creates the queue";
  EXPECT_EQ(stat["pause"].str, "in");
  EXPECT_EQ(stat["len"].integer, 0);
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 1);
  EXPECT_EQ(c.Command({"PAUSE", "m6", "out"}).ToString(), "+out");
  EXPECT_EQ(QStat(c, "m6")["pause"].str, "out");
  EXPECT_EQ(c.Command({"PAUSE", "m7", "all"}).ToString(), "+all");
  EXPECT_EQ(QStat(c, "m7")["pause"].str, "all");
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 3);
}

TEST_P(QueuesTest, InputPauseRefusesAddjob) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Command({"PAUSE", "q", "in"}).ToString(), "+in");
  EXPECT_EQ(c.Command({"ADDJOB", "q", "x", "0"}).ToString(), "-PAUSED Queue paused in input, try later");
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":0");
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
  EXPECT_EQ(c.Command({"PAUSE", "q", "all"}).ToString(), "+all");
  EXPECT_EQ(c.Command({"ADDJOB", "q", "x", "0"}).ToString(), "-PAUSED Queue paused in input, try later");
  // Output-only pause accepts jobs.
  EXPECT_EQ(c.Command({"PAUSE", "q", "out"}).ToString(), "+out");
  AddJob(c, "q", "x");
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":1");
  EXPECT_EQ(c.Command({"PAUSE", "q", "none"}).ToString(), "+none");
  AddJob(c, "q", "y");
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":2");
  // Other queues are not affected.
  EXPECT_EQ(c.Command({"PAUSE", "q", "in"}).ToString(), "+in");
  AddJob(c, "other", "x");
}

TEST_P(QueuesTest, OutputPauseHoldsJobsUntilCleared) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  const std::string id = AddJob(c, "q", "x");
  EXPECT_EQ(c.Command({"PAUSE", "q", "out"}).ToString(), "+out");
  EXPECT_EQ(RawReply(port(), {"GETJOB", "NOHANG", "FROM", "q"}, 5), "*-1\r\n");
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":1");
  EXPECT_EQ(JobIds(c.Command({"QPEEK", "q", "1"})), (std::vector<std::string>{id}));
  // Other queues in the same GETJOB are still served.
  const std::string other = AddJob(c, "other", "y");
  EXPECT_EQ(JobIds(c.Command({"GETJOB", "NOHANG", "COUNT", "5", "FROM", "q", "other"})),
            (std::vector<std::string>{other}));

  EXPECT_EQ(c.Command({"PAUSE", "q", "none"}).ToString(), "+none");
  EXPECT_EQ(JobIds(c.Command({"GETJOB", "NOHANG", "FROM", "q"})), (std::vector<std::string>{id}));
}

TEST_P(QueuesTest, OutputPauseKeepsBlockedClientBlockedUntilCleared) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Command({"PAUSE", "q", "out"}).ToString(), "+out");
  RawConnection blocked(port());
  ASSERT_TRUE(blocked.connected());
  ASSERT_TRUE(blocked.Send(Multibulk({"GETJOB", "FROM", "q"})));
  ASSERT_TRUE(WaitFor([&] { return QStatInt(c, "q", "blocked") == 1; }));
  const std::string id = AddJob(c, "q", "body");
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":1") << "the job stays queued while paused";
  EXPECT_EQ(QStatInt(c, "q", "blocked"), 1);
  EXPECT_EQ(blocked.Read(1, 300), "") << "the blocked client must not be served while paused";
  EXPECT_EQ(c.Command({"PAUSE", "q", "none"}).ToString(), "+none");
  const std::string expected = "*1\r\n*3\r\n" + Bulk("q") + Bulk(id) + Bulk("body");
  EXPECT_EQ(blocked.Read(expected.size(), 5000), expected) << "clearing the output pause serves the client";
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":0");
  EXPECT_EQ(QStatInt(c, "q", "blocked"), 0);
}

// ---------------------------------------------------------------------------------
// Idle queue eviction and OOM (PROTOCOL.md 2.5, 5)

TEST_P(QueuesTest, IdleEmptyQueuesAreEvictedUnderMemoryPressureButPausedOnesAreNot) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  // Two empty queues (one created by GETJOB NOHANG, one emptied by GETJOB) and a paused one.
  EXPECT_EQ(c.Command({"GETJOB", "NOHANG", "FROM", "idle1"}).type, Reply::Type::kNil);
  AddJob(c, "idle2", "x");
  EXPECT_EQ(c.Command({"GETJOB", "FROM", "idle2"}).elements.size(), 1u);
  EXPECT_EQ(c.Command({"PAUSE", "paused", "in"}).ToString(), "+in");
  ASSERT_TRUE(QueueExists(c, "idle1") && QueueExists(c, "idle2") && QueueExists(c, "paused"));

  ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", "1"}).ToString(), "+OK");
  EXPECT_TRUE(WaitFor([&] { return !QueueExists(c, "idle1") && !QueueExists(c, "idle2"); }, 15s))
      << "idle empty queues were not evicted";
  EXPECT_EQ(RawReply(port(), {"QSTAT", "idle1"}, 5), "*-1\r\n");
  EXPECT_TRUE(QueueExists(c, "paused")) << "a paused queue must not be evicted";
  EXPECT_TRUE(HoldsFor([&] { return QueueExists(c, "paused"); }, 1500ms)) << "a paused queue must not be evicted";
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 1);
  // Unpaused, it goes too.
  EXPECT_EQ(c.Command({"PAUSE", "paused", "none"}).ToString(), "+none");
  EXPECT_TRUE(WaitFor([&] { return !QueueExists(c, "paused"); }, 15s));
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 0);

  ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", kDefaultMaxmemory}).ToString(), "+OK");
  AddJob(c, "idle1", "again");
  EXPECT_EQ(c.Command({"QLEN", "idle1"}).ToString(), ":1") << "an evicted queue is re-created on demand";
  EXPECT_EQ(QStatInt(c, "idle1", "jobs-in"), 1) << "an evicted queue loses its statistics";
}

// Regression: eviction visited a fixed number of buckets per 100 ms, so with many queues
// a sweep took far longer than the max idle time.
TEST_P(QueuesTest, ManyIdleQueuesAreAllEvictedWithinSeconds) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  constexpr int kQueues = 20000;
  for (int i = 0; i < kQueues; ++i) c.Append({"GETJOB", "NOHANG", "FROM", "many-" + std::to_string(i)});
  for (int i = 0; i < kQueues; ++i) ASSERT_EQ(c.GetReply().type, Reply::Type::kNil);
  ASSERT_EQ(InfoInt(c, "queues", "registered_queues"), kQueues);
  ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", "1"}).ToString(), "+OK");
  // Max idle 2 s, and a sweep should take about 1.6 s: well within 10 s.
  int64_t left = -1;
  EXPECT_TRUE(WaitFor([&] { return (left = InfoInt(c, "queues", "registered_queues")) == 0; }, 10s))
      << left << " queues left";
  ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", kDefaultMaxmemory}).ToString(), "+OK");
}

// Regression: a COUNT near INT64_MAX overflowed the step limit (COUNT * 10).
TEST_P(QueuesTest, HugeScanCountScansEverything) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 300; ++i) AddJob(c, "hc-" + std::to_string(i), "x");
  for (const char* cmd : {"QSCAN", "JSCAN"}) {
    const Reply r = c.Command({cmd, "COUNT", "9223372036854775807"});
    ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString();
    ASSERT_EQ(r.elements.size(), 2u);
    EXPECT_EQ(r.elements[0].str, "0") << cmd;
    EXPECT_EQ(r.elements[1].elements.size(), 300u) << cmd;
    EXPECT_EQ(c.Command({cmd, "COUNT", "922337203685477581"}).type, Reply::Type::kArray);
  }
}

TEST_P(QueuesTest, QueueWithJobsOrBlockedClientIsNotEvicted) {
  RedisClient c(port());
  RedisClient blocked(port());
  ASSERT_TRUE(c.connected() && blocked.connected());
  AddJob(c, "full", "x");
  EXPECT_EQ(c.Command({"GETJOB", "NOHANG", "FROM", "empty"}).type, Reply::Type::kNil);
  AsyncCommand call(blocked, {"GETJOB", "FROM", "waited"});
  ASSERT_TRUE(WaitFor([&] { return QStatInt(c, "waited", "blocked") == 1; }));
  ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", "1"}).ToString(), "+OK");
  EXPECT_TRUE(WaitFor([&] { return !QueueExists(c, "empty"); }, 15s));
  EXPECT_TRUE(HoldsFor([&] { return QueueExists(c, "full") && QueueExists(c, "waited"); }, 1500ms));
  ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", kDefaultMaxmemory}).ToString(), "+OK");
  const std::string id = AddJob(c, "waited", "wake");
  EXPECT_EQ(JobIds(call.Get()), (std::vector<std::string>{id}));
}

TEST_P(QueuesTest, OomRefusesDenyoomCommandsOnly) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  const std::string j1 = AddJob(c, "q", "a");
  const std::string j2 = AddJob(c, "q", "b");
  ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", "1"}).ToString(), "+OK");
  EXPECT_EQ(c.Command({"ADDJOB", "q", "x", "0"}).ToString(), kOom);
  EXPECT_EQ(c.Command({"ADDJOB", "other", "x", "0", "ASYNC"}).ToString(), kOom);
  EXPECT_EQ(c.Command({"PING"}).ToString(), "+PONG");
  Reply got = c.Command({"GETJOB", "NOHANG", "FROM", "q"});
  EXPECT_EQ(JobIds(got), (std::vector<std::string>{j1})) << got.ToString();
  EXPECT_EQ(c.Command({"NACK", j1}).ToString(), kOom);
  EXPECT_EQ(c.Command({"ENQUEUE", j1}).ToString(), kOom);
  EXPECT_EQ(c.Command({"ACKJOB", j1}).ToString(), ":1");
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":1");
  EXPECT_EQ(JobIds(c.Command({"GETJOB", "NOHANG", "FROM", "q"})), (std::vector<std::string>{j2}));
  EXPECT_EQ(c.Command({"GETJOB", "NOHANG", "FROM", "q"}).type, Reply::Type::kNil);
  EXPECT_EQ(c.Command({"FASTACK", j2}).ToString(), ":1");
  EXPECT_EQ(c.Command({"INFO"}).type, Reply::Type::kBulk);

  ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", kDefaultMaxmemory}).ToString(), "+OK");
  AddJob(c, "q", "after");
  EXPECT_EQ(c.Command({"QLEN", "q"}).ToString(), ":1");
}

// ---------------------------------------------------------------------------------
// HELLO (PROTOCOL.md 6.1)

// Clients per shard, from DEBUG SHARDS ("shard:<i> clients:<n> ...").
std::vector<int64_t> ClientsPerShard(RedisClient& c) {
  std::vector<int64_t> counts;
  for (const Reply& line : c.Command({"DEBUG", "SHARDS"}).elements) {
    const size_t at = line.str.find("clients:");
    counts.push_back(at == std::string::npos ? -1 : std::stoll(line.str.substr(at + 8)));
  }
  return counts;
}

// Eviction above 95 % samples every shard, not only the client's: a client on a shard
// without evictable jobs still gets room made elsewhere instead of -OOM.
TEST_P(QueuesTest, EvictionFreesMemoryOnOtherShards) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  const int64_t base = InfoInt(c, "memory", "used_memory");
  // Delivered at-most-once jobs are evictable: all in one queue, so on one shard.
  constexpr int kJobs = 4000;
  const std::string body(2048, 'e');
  for (int i = 0; i < kJobs; ++i) c.Append({"ADDJOB", "evictable", body, "0", "RETRY", "0"});
  for (int i = 0; i < kJobs; ++i) ASSERT_EQ(c.GetReply().type, Reply::Type::kStatus);
  for (int i = 0; i < kJobs / 100; ++i) {
    ASSERT_EQ(c.Command({"GETJOB", "COUNT", "100", "FROM", "evictable"}).elements.size(), 100u);
  }
  // A client on another shard than the queue's (found by which shard's client count
  // grows when it connects); with one shard there is no other.
  const int queue_shard = QueueShardOf("evictable", GetParam());
  std::vector<std::unique_ptr<RedisClient>> conns;
  RedisClient* other = nullptr;
  for (int i = 0; i <= GetParam() && other == nullptr; ++i) {
    const std::vector<int64_t> before = ClientsPerShard(c);
    conns.push_back(std::make_unique<RedisClient>(port()));
    ASSERT_TRUE(conns.back()->connected());
    ASSERT_EQ(conns.back()->Command({"PING"}).ToString(), "+PONG");  // adopted by its shard by now
    const std::vector<int64_t> after = ClientsPerShard(c);
    ASSERT_EQ(before.size(), after.size());
    for (size_t s = 0; s < after.size(); ++s) {
      if (after[s] > before[s] && (GetParam() == 1 || static_cast<int>(s) != queue_shard)) other = conns.back().get();
    }
  }
  ASSERT_NE(other, nullptr);
  // used_memory counts the jobs' arena bytes as each shard's cron publishes them (every
  // 100 ms): wait until it has them, or maxmemory below would be set under the base use.
  int64_t used = 0;
  ASSERT_TRUE(WaitFor([&] { return (used = InfoInt(c, "memory", "used_memory")) > base + int64_t{kJobs} * 2048; }))
      << "used_memory " << used << ", before the jobs " << base;
  // Usage above maxmemory: above 95 %, so denyoom commands must first evict. The server
  // samples its usage every 100 ms, so poll until the eviction has happened.
  ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", std::to_string(used / 10 * 9)}).ToString(), "+OK");
  std::string nack;
  int64_t jobs = -1;
  EXPECT_TRUE(WaitFor([&] {
    nack = other->Command({"NACK", "D-00000000-AAAAAAAAAAAAAAAAAAAAAAAA-0001"}).ToString();
    jobs = InfoInt(c, "jobs", "registered_jobs");
    return nack == ":0" && jobs < kJobs;
  })) << "last NACK: " << nack << ", registered_jobs: " << jobs << " (eviction should free delivered RETRY 0 jobs)"
       << "; used_memory " << used << " before, " << InfoInt(c, "memory", "used_memory") << " now";
  ASSERT_EQ(c.Command({"CONFIG", "SET", "maxmemory", kDefaultMaxmemory}).ToString(), "+OK");
}

TEST_P(QueuesTest, HelloLayout) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  Reply r = c.Command({"HELLO"});
  ASSERT_EQ(r.type, Reply::Type::kArray) << r.ToString() << " " << r.str;
  ASSERT_EQ(r.elements.size(), 3u) << "a standalone node knows only itself";
  EXPECT_EQ(r.elements[0].ToString(), ":1");
  ASSERT_EQ(r.elements[1].type, Reply::Type::kBulk);
  const std::string id = r.elements[1].str;
  ASSERT_EQ(id.size(), 40u);
  for (char ch : id) EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(ch)) || (ch >= 'a' && ch <= 'f')) << id;
  const Reply& self = r.elements[2];
  ASSERT_EQ(self.type, Reply::Type::kArray);
  ASSERT_EQ(self.elements.size(), 4u);
  for (const Reply& e : self.elements) EXPECT_EQ(e.type, Reply::Type::kBulk) << e.ToString();
  EXPECT_EQ(self.elements[0].str, id);
  EXPECT_EQ(self.elements[1].str, "") << "own IP stays empty until another node connects";
  EXPECT_EQ(self.elements[2].str, std::to_string(port()));
  EXPECT_EQ(self.elements[3].str, "1");
  EXPECT_EQ(c.Command({"HELLO", "x"}).ToString(), "-ERR wrong number of arguments for 'hello' command");
  // Job IDs carry the first 8 characters of the node ID.
  const std::string job = AddJob(c, "q", "x");
  EXPECT_EQ(job.substr(2, 8), id.substr(0, 8));
}

// ---------------------------------------------------------------------------------
// INFO (PROTOCOL.md 6.2)

TEST_P(QueuesTest, InfoDefaultSectionsInOrder) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  const std::vector<std::string> expected{"Server", "Clients", "Memory", "Jobs", "Queues", "Persistence", "Stats", "CPU"};
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"INFO"}, {"INFO", "default"}, {"INFO", "DEFAULT"}}) {
    Reply r = c.Command(args);
    ASSERT_EQ(r.type, Reply::Type::kBulk) << r.ToString();
    std::vector<std::string> sections;
    for (const auto& line : Lines(r.str)) {
      if (line.rfind("# ", 0) == 0) sections.push_back(line.substr(2));
    }
    EXPECT_EQ(sections, expected) << args.size();
    EXPECT_NE(r.str.find("\r\n\r\n# Jobs\r\nregistered_jobs:"), std::string::npos);
    EXPECT_NE(r.str.find("\r\n\r\n# Queues\r\nregistered_queues:"), std::string::npos);
  }
  Reply jobs = c.Command({"INFO", "jobs"});
  EXPECT_EQ(Lines(jobs.str), (std::vector<std::string>{"# Jobs", "registered_jobs:0"}));
  Reply queues = c.Command({"INFO", "Queues"});
  EXPECT_EQ(Lines(queues.str), (std::vector<std::string>{"# Queues", "registered_queues:0"}));
}

TEST_P(QueuesTest, InfoRegisteredJobsAndQueuesTrackAddsAndAcks) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 0);
  // Jobs and queues spread over several queues (and shards).
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(AddJob(c, "iq" + std::to_string(i % 4), "x"));
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 12);
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 4);
  EXPECT_EQ(InfoField(c.Command({"INFO"}).str, "registered_jobs"), "12");
  EXPECT_EQ(InfoField(c.Command({"INFO"}).str, "registered_queues"), "4");
  // Fetching keeps the job registered.
  EXPECT_EQ(c.Command({"GETJOB", "COUNT", "3", "FROM", "iq0"}).elements.size(), 3u);
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 12);
  // ACKed jobs are deleted at once on a single node.
  EXPECT_EQ(c.Command({"ACKJOB", ids[0], ids[1], ids[2]}).ToString(), ":3");
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 9);
  EXPECT_EQ(c.Command({"FASTACK", ids[3]}).ToString(), ":1");
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 8);
  EXPECT_EQ(c.Command({"DELJOB", ids[4]}).ToString(), ":1");
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 7);
  // Queues stay until evicted.
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 4);
  EXPECT_EQ(c.Command({"GETJOB", "NOHANG", "FROM", "newq"}).type, Reply::Type::kNil);
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 5);
}

TEST_P(QueuesTest, InfoPersistenceWithoutAof) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  Reply r = c.Command({"INFO", "persistence"});
  ASSERT_EQ(r.type, Reply::Type::kBulk);
  const auto lines = Lines(r.str);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "# Persistence");
  EXPECT_EQ(InfoField(r.str, "loading"), "0");
  EXPECT_EQ(InfoField(r.str, "aof_enabled"), "0");
  EXPECT_EQ(InfoField(r.str, "aof_state"), "off");
  EXPECT_EQ(InfoField(r.str, "aof_current_size"), "") << "only when AOF is not off";
}

// ---------------------------------------------------------------------------------
// DEBUG FLUSHALL (PROTOCOL.md 6.13)

TEST_P(QueuesTest, DebugFlushallDeletesEverythingAndWakesBlockedClients) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(AddJob(c, "fq" + std::to_string(i % 5), "x"));
  EXPECT_EQ(c.Command({"PAUSE", "pq", "all"}).ToString(), "+all");
  RawConnection blocked(port());
  ASSERT_TRUE(blocked.connected());
  ASSERT_TRUE(blocked.Send(Multibulk({"GETJOB", "FROM", "waitq", "fq-none"})));
  ASSERT_TRUE(WaitFor([&] { return QStatInt(c, "waitq", "blocked") == 1; }));
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 20);
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 8);

  EXPECT_EQ(c.Command({"DEBUG", "FLUSHALL"}).ToString(), "+OK");
  EXPECT_EQ(blocked.Read(5, 5000), "*-1\r\n") << "a blocked GETJOB gets a null array";
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
  EXPECT_EQ(InfoInt(c, "queues", "registered_queues"), 0);
  EXPECT_EQ(InfoInt(c, "clients", "blocked_clients"), 0);
  EXPECT_EQ(c.Command({"QLEN", "fq0"}).ToString(), ":0");
  EXPECT_EQ(c.Command({"SHOW", ids[0]}).type, Reply::Type::kNil);
  EXPECT_EQ(RawReply(port(), {"QSTAT", "pq"}, 5), "*-1\r\n");
  // The woken connection is usable.
  ASSERT_TRUE(blocked.Send(Multibulk({"PING"})));
  EXPECT_EQ(blocked.Read(7, 5000), "+PONG\r\n");
  // And the server works as before.
  AddJob(c, "fq0", "again");
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 1);
  EXPECT_EQ(c.Command({"debug", "flushall"}).ToString(), "+OK");
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
}

INSTANTIATE_TEST_SUITE_P(Threads, QueuesTest, ::testing::Values(1, 4));

}  // namespace
}  // namespace disque::test
