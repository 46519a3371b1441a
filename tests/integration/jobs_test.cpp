// The single-node job commands against the real binary (PROTOCOL.md 2.2-2.5 and 3):
// ADDJOB (ID format, options, validation and its order), GETJOB (parsing, passes over
// several queues, WITHCOUNTERS, blocking, pauses), ACKJOB, FASTACK, DELJOB, ENQUEUE,
// NACK, DEQUEUE, SHOW, WORKING and LOADJOB, the time-driven behaviour (delay, retry,
// expiry), a thousand-job round trip, and real third-party clients (redis-cli,
// redis-py). Every test runs with --threads 1 and --threads 4; with four shards the
// queue names used by the multi-queue tests are chosen to land on different shards
// (and, separately, on the same shard).
//
// hiredis reports both `$-1` and `*-1` as "nil", so the tests that must tell a null
// bulk from a null array read the raw reply bytes (RawCommand).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/redis_client.h"
#include "support/reply_text.h"
#include "support/server_process.h"
#include "support/server_test.h"
#include "support/shards.h"

namespace disque::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Type = Reply::Type;

using JobsTest = ServerTest;

const char kBadId[] = "-BADID Invalid Job ID format.";
const char kNoJob[] = "-NOJOB Job not known in the context of this node.";
const char kTooLate[] =
    "-TOOLATE Half of job TTL already elapsed, you are no longer allowed to postpone the next "
    "delivery.";
const char kNoRepl[] = "-NOREPL Not enough reachable nodes for the requested replication level";
const char kRetry0Repl[] =
    "-ERR With RETRY set to 0 please explicitly set  REPLICATE to 1 (at-most-once delivery)";
const char kDelayTtl[] =
    "-ERR The specified DELAY is greater than TTL. Job refused since would never be delivered";
const char kMaxlen[] = "-MAXLEN Queue is already longer than the specified MAXLEN count";
const char kPaused[] = "-PAUSED Queue paused in input, try later";
const char kSyntax[] = "-ERR syntax error";
const char kTimeoutNotInt[] = "-ERR timeout is not an integer or out of range";
const char kTimeoutNeg[] = "-ERR timeout is negative";
const char kReplicateRange[] = "-ERR REPLICATE must be between 1 and 65535";
const char kTtlRange[] = "-ERR TTL must be a number > 0";
const char kRetryRange[] = "-ERR RETRY time must be a non negative number";
const char kDelayRange[] = "-ERR DELAY time must be a non negative number";
const char kMaxlenRange[] = "-ERR MAXLEN must be a positive number";
const char kCountRange[] = "-ERR COUNT must be a number greater than zero";

// A format-valid ID that no node ever generated (PROTOCOL.md 2.2: only the length and
// the four fixed bytes are checked).
const char kUnknownId[] = "D-zzzzzzzz-xxxxxxxxxxxxxxxxxxxxxxxx-zzzz";

const char* const kShowFields[15] = {
    "id",    "queue", "state",           "repl",            "ttl",
    "ctime", "delay", "retry",           "nacks",           "additional-deliveries",
    "nodes-delivered", "nodes-confirmed", "next-requeue-within", "next-awake-within", "body"};

// ---------------------------------------------------------------------------------
// Helpers

// The shard of a queue with `threads` shards.
int ShardOf(const std::string& queue, int threads) { return QueueShardOf(queue, threads); }

// Two queue names that are on different shards (or on the same shard) with 4 threads.
std::pair<std::string, std::string> QueuePair(const std::string& prefix, bool same_shard) {
  const std::string a = prefix + "-A";
  for (int i = 0; i < 1000; ++i) {
    const std::string b = prefix + "-B" + std::to_string(i);
    if ((ShardOf(a, 4) == ShardOf(b, 4)) == same_shard) return {a, b};
  }
  ADD_FAILURE() << "no queue pair found";
  return {a, a};
}

// End offset of the RESP value that starts at `pos`, or npos while incomplete.
size_t RespEnd(const std::string& b, size_t pos) {
  if (pos >= b.size()) return std::string::npos;
  const size_t eol = b.find("\r\n", pos);
  if (eol == std::string::npos) return std::string::npos;
  const char t = b[pos];
  if (t != '$' && t != '*') return eol + 2;
  const long long n = std::stoll(b.substr(pos + 1, eol - pos - 1));
  if (n < 0) return eol + 2;
  if (t == '$') {
    const size_t end = eol + 2 + static_cast<size_t>(n) + 2;
    return end <= b.size() ? end : std::string::npos;
  }
  size_t p = eol + 2;
  for (long long i = 0; i < n; ++i) {
    p = RespEnd(b, p);
    if (p == std::string::npos) return p;
  }
  return p;
}

// Reads one complete RESP reply from `conn`; returns its exact bytes.
std::string ReadRawReply(RawConnection& conn, int timeout_ms = 10000) {
  std::string buf;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (RespEnd(buf, 0) == std::string::npos) {
    const int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0) return buf + "(timeout)";
    const std::string got = conn.Read(1, left);
    if (got.empty()) return buf + "(closed or timeout)";
    buf += got;
  }
  return buf;
}

// Sends one command on a fresh raw connection; returns the exact bytes of the reply.
std::string RawCommand(int port, const std::vector<std::string>& args, int timeout_ms = 10000) {
  RawConnection conn(port);
  if (!conn.connected() || !conn.Send(Multibulk(args))) return "(connection failed)";
  return ReadRawReply(conn, timeout_ms);
}

// The exact bytes of a one-job GETJOB reply.
std::string RawJobReply(const std::string& queue, const std::string& id, const std::string& body) {
  return "*1\r\n*3\r\n" + Bulk(queue) + Bulk(id) + Bulk(body);
}

long long ElapsedMs(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

// ADDJOB that must succeed: returns the ID (a status reply).
std::string AddJob(RedisClient& c, const std::string& queue, const std::string& body,
                   const std::vector<std::string>& options = {}) {
  std::vector<std::string> args{"ADDJOB", queue, body, "0"};
  args.insert(args.end(), options.begin(), options.end());
  const Reply r = c.Command(args);
  EXPECT_EQ(r.type, Type::kStatus) << "ADDJOB " << queue << ": " << r.ToString();
  EXPECT_EQ(r.str.size(), 40u) << r.ToString();
  return r.str;
}

// The ADDJOB reply as text ("+D-..." or "-ERR ...").
std::string AddJobReply(RedisClient& c, const std::vector<std::string>& args_after_addjob) {
  std::vector<std::string> args{"ADDJOB"};
  args.insert(args.end(), args_after_addjob.begin(), args_after_addjob.end());
  return c.Command(args).ToString();
}

std::string NodeId(RedisClient& c) {
  const Reply r = c.Command({"HELLO"});
  EXPECT_EQ(r.type, Type::kArray) << r.ToString();
  if (r.elements.size() < 2) return "";
  return r.elements[1].str;
}

int64_t Qlen(RedisClient& c, const std::string& queue) {
  const Reply r = c.Command({"QLEN", queue});
  EXPECT_EQ(r.type, Type::kInteger) << r.ToString();
  return r.integer;
}

// SHOW as a name → value map; empty when the reply is not a 30-element array.
std::map<std::string, Reply> Show(RedisClient& c, const std::string& id) {
  const Reply r = c.Command({"SHOW", id});
  std::map<std::string, Reply> out;
  if (r.type != Type::kArray || r.elements.size() != 30) return out;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) out[r.elements[i].str] = r.elements[i + 1];
  return out;
}

std::string State(RedisClient& c, const std::string& id) {
  auto show = Show(c, id);
  return show.count("state") != 0 ? show["state"].str : "(no job)";
}

int64_t ShowInt(RedisClient& c, const std::string& id, const std::string& field) {
  auto show = Show(c, id);
  EXPECT_EQ(show[field].type, Type::kInteger) << field << " of " << id;
  return show[field].integer;
}

bool Gone(RedisClient& c, const std::string& id) { return c.Command({"SHOW", id}).type == Type::kNil; }

// The IDs of a GETJOB reply, in order.
std::vector<std::string> JobIds(const Reply& r) {
  std::vector<std::string> ids;
  for (const Reply& job : r.elements) {
    ids.push_back(job.elements.size() >= 2 ? job.elements[1].str : "(malformed)");
  }
  return ids;
}

// QSTAT's `blocked` value for `queue`, or -1.
int64_t BlockedOn(RedisClient& c, const std::string& queue) {
  const Reply r = c.Command({"QSTAT", queue});
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    if (r.elements[i].str == "blocked") return r.elements[i + 1].integer;
  }
  return -1;
}

// ---------------------------------------------------------------------------------
// ADDJOB (PROTOCOL.md 2.2, 3.1)

TEST_P(JobsTest, AddjobRepliesStatusIdWithTheDocumentedFormat) {
  RedisClient c(port());
  ASSERT_TRUE(c.connected());
  const std::string node = NodeId(c);
  ASSERT_EQ(node.size(), 40u);
  const std::string raw = RawCommand(port(), {"ADDJOB", "q", "body", "0"});
  ASSERT_EQ(raw.size(), 43u) << raw;
  EXPECT_EQ(raw.substr(0, 3), "+D-") << "ADDJOB replies a status, not a bulk: " << raw;
  EXPECT_EQ(raw.substr(41), "\r\n");

  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    const Reply r = c.Command({"ADDJOB", "q" + std::to_string(i % 7), "body", "0"});
    ASSERT_EQ(r.type, Type::kStatus) << r.ToString();
    const std::string& id = r.str;
    ASSERT_EQ(id.size(), 40u) << id;
    EXPECT_EQ(id.substr(0, 2), "D-") << id;
    EXPECT_EQ(id.substr(2, 8), node.substr(0, 8)) << id;
    EXPECT_EQ(id[10], '-') << id;
    EXPECT_EQ(id[35], '-') << id;
    for (size_t k = 11; k < 35; ++k) {
      const char ch = id[k];
      const bool b64 = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                       (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
      EXPECT_TRUE(b64) << "offset " << k << " of " << id;
    }
    EXPECT_EQ(id.substr(36), "05a1") << id;
    EXPECT_TRUE(seen.insert(id).second) << "duplicate ID " << id;
  }
}

TEST_P(JobsTest, AddjobTtlFieldRule) {
  RedisClient c(port());
  struct Case {
    std::vector<std::string> options;
    std::string field;
  };
  const std::vector<Case> cases{
      {{}, "05a1"},
      {{"RETRY", "0"}, "05a0"},
      {{"TTL", "100", "RETRY", "10"}, "0001"},
      {{"TTL", "100", "RETRY", "0"}, "0000"},
      {{"TTL", "100"}, "0001"},
      {{"TTL", "4"}, "0001"},
      {{"TTL", "5"}, "0001"},
      {{"TTL", "30"}, "0001"},
      {{"TTL", "120", "RETRY", "0"}, "0002"},
      {{"TTL", "180", "RETRY", "5"}, "0003"},
      {{"TTL", "240", "RETRY", "5"}, "0005"},
      {{"TTL", "600"}, "000b"},
      {{"TTL", "600", "RETRY", "0"}, "000a"},
      {{"TTL", "3932100"}, "ffff"},
      {{"TTL", "4000000"}, "ffff"},
      {{"TTL", "4000000", "RETRY", "0"}, "fffe"},
  };
  for (const Case& k : cases) {
    const std::string id = AddJob(c, "ttlq", "b", k.options);
    std::string opts;
    for (const auto& o : k.options) opts += o + " ";
    EXPECT_EQ(id.size() == 40 ? id.substr(36) : id, k.field) << "options: " << opts;
  }
}

TEST_P(JobsTest, AddjobDefaultsShownBySHOW) {
  RedisClient c(port());
  const std::string id = AddJob(c, "q", "hello");
  auto show = Show(c, id);
  ASSERT_FALSE(show.empty());
  EXPECT_EQ(show["state"].str, "queued");
  EXPECT_EQ(show["repl"].ToString(), ":1");
  EXPECT_GE(show["ttl"].integer, 86399);
  EXPECT_LE(show["ttl"].integer, 86400);
  EXPECT_EQ(show["delay"].ToString(), ":0");
  EXPECT_EQ(show["retry"].ToString(), ":300");
  EXPECT_EQ(Qlen(c, "q"), 1);
}

TEST_P(JobsTest, AddjobDefaultRetryIsTenthOfTtlCappedAt300AtLeast1) {
  RedisClient c(port());
  const std::vector<std::pair<std::string, int64_t>> cases{
      {"1", 1},      {"5", 1},     {"9", 1},       {"10", 1},     {"19", 1},   {"20", 2},
      {"100", 10},   {"2999", 299}, {"3000", 300}, {"3010", 300}, {"100000", 300},
  };
  for (const auto& [ttl, retry] : cases) {
    const std::string id = AddJob(c, "rq", "b", {"TTL", ttl});
    EXPECT_EQ(ShowInt(c, id, "retry"), retry) << "TTL " << ttl;
    // The job's TTL is as given.
    const int64_t shown_ttl = ShowInt(c, id, "ttl");
    EXPECT_LE(shown_ttl, std::stoll(ttl)) << "TTL " << ttl;
    EXPECT_GE(shown_ttl, std::stoll(ttl) - 1) << "TTL " << ttl;
  }
}

TEST_P(JobsTest, AddjobEveryOption) {
  RedisClient c(port());
  // REPLICATE 1 is feasible on a single node.
  std::string id = AddJob(c, "opt", "b", {"REPLICATE", "1"});
  EXPECT_EQ(ShowInt(c, id, "repl"), 1);
  EXPECT_EQ(State(c, id), "queued");

  // RETRY.
  id = AddJob(c, "opt", "b", {"RETRY", "7"});
  EXPECT_EQ(ShowInt(c, id, "retry"), 7);

  // TTL (explicit RETRY is kept as given, even if larger than the default would be).
  id = AddJob(c, "opt", "b", {"TTL", "50", "RETRY", "40"});
  EXPECT_GE(ShowInt(c, id, "ttl"), 49);
  EXPECT_LE(ShowInt(c, id, "ttl"), 50);
  EXPECT_EQ(ShowInt(c, id, "retry"), 40);

  // DELAY: the job is active, not queued, until the delay passes.
  id = AddJob(c, "delayq", "b", {"DELAY", "100"});
  EXPECT_EQ(State(c, id), "active");
  EXPECT_EQ(ShowInt(c, id, "delay"), 100);
  EXPECT_EQ(Qlen(c, "delayq"), 0);
  const int64_t requeue = ShowInt(c, id, "next-requeue-within");
  EXPECT_GT(requeue, 95000);
  EXPECT_LE(requeue, 100000);

  // ASYNC with REPLICATE 1 is the plain non-blocking path: queued at once.
  id = AddJob(c, "asyncq", "b", {"ASYNC"});
  EXPECT_EQ(State(c, id), "queued");
  EXPECT_EQ(Qlen(c, "asyncq"), 1);

  // MAXLEN on a missing queue, then on a queue below and at the limit.
  AddJob(c, "maxq", "b", {"MAXLEN", "1"});
  EXPECT_EQ(Qlen(c, "maxq"), 1);
  EXPECT_EQ(AddJobReply(c, {"maxq", "b", "0", "MAXLEN", "1"}), kMaxlen);
  AddJob(c, "maxq", "b", {"MAXLEN", "2"});
  EXPECT_EQ(AddJobReply(c, {"maxq", "b", "0", "MAXLEN", "2"}), kMaxlen);
  EXPECT_EQ(Qlen(c, "maxq"), 2);
  AddJob(c, "maxq", "b", {"MAXLEN", "3"});
  EXPECT_EQ(Qlen(c, "maxq"), 3);

  // Keywords are case-insensitive; all options together.
  id = AddJob(c, "allq", "body",
              {"replicate", "1", "Delay", "3", "rEtRy", "4", "ttl", "60", "maxlen", "10", "async"});
  auto show = Show(c, id);
  EXPECT_EQ(show["repl"].ToString(), ":1");
  EXPECT_EQ(show["delay"].ToString(), ":3");
  EXPECT_EQ(show["retry"].ToString(), ":4");
  EXPECT_EQ(show["state"].str, "active");
  EXPECT_EQ(id.substr(36), "0001");
}

TEST_P(JobsTest, AddjobRepeatedOptionsLastOneWins) {
  RedisClient c(port());
  std::string id = AddJob(c, "rep", "b", {"TTL", "10", "TTL", "100"});
  EXPECT_GE(ShowInt(c, id, "ttl"), 99);
  EXPECT_EQ(ShowInt(c, id, "retry"), 10) << "the default RETRY follows the last TTL";

  id = AddJob(c, "rep", "b", {"RETRY", "5", "RETRY", "7"});
  EXPECT_EQ(ShowInt(c, id, "retry"), 7);

  id = AddJob(c, "rep2", "b", {"DELAY", "10", "DELAY", "0"});
  EXPECT_EQ(State(c, id), "queued");
  EXPECT_EQ(ShowInt(c, id, "delay"), 0);

  // A REPLICATE 2 overridden by REPLICATE 1 is feasible on one node.
  id = AddJob(c, "rep", "b", {"REPLICATE", "2", "REPLICATE", "1"});
  EXPECT_EQ(ShowInt(c, id, "repl"), 1);
  EXPECT_EQ(AddJobReply(c, {"rep", "b", "0", "REPLICATE", "1", "REPLICATE", "2"}), kNoRepl);

  // RETRY 0 overridden: an at-least-once ID.
  id = AddJob(c, "rep", "b", {"RETRY", "0", "RETRY", "3"});
  EXPECT_EQ(id.substr(36), "05a1");
  id = AddJob(c, "rep", "b", {"RETRY", "3", "RETRY", "0"});
  EXPECT_EQ(id.substr(36), "05a0");

  // MAXLEN: the last one is the limit.
  AddJob(c, "repmax", "b");
  EXPECT_EQ(AddJobReply(c, {"repmax", "b", "0", "MAXLEN", "5", "MAXLEN", "1"}), kMaxlen);
  AddJob(c, "repmax", "b", {"MAXLEN", "1", "MAXLEN", "5"});

  // Each value is validated as it is scanned: a bad first occurrence fails anyway.
  EXPECT_EQ(AddJobReply(c, {"rep", "b", "0", "TTL", "0", "TTL", "10"}), kTtlRange);
}

TEST_P(JobsTest, AddjobArity) {
  RedisClient c(port());
  const std::string err = "-ERR wrong number of arguments for 'addjob' command";
  EXPECT_EQ(c.Command({"ADDJOB"}).ToString(), err);
  EXPECT_EQ(c.Command({"ADDJOB", "q"}).ToString(), err);
  EXPECT_EQ(c.Command({"addjob", "q", "b"}).ToString(), err);
  EXPECT_EQ(Qlen(c, "q"), 0);
}

TEST_P(JobsTest, AddjobOptionValueErrors) {
  RedisClient c(port());
  auto add = [&](std::vector<std::string> opts) {
    std::vector<std::string> args{"vq", "b", "0"};
    args.insert(args.end(), opts.begin(), opts.end());
    return AddJobReply(c, args);
  };
  for (const char* v : {"0", "-1", "65536", "x", "1.5", "99999999999999999999"}) {
    EXPECT_EQ(add({"REPLICATE", v}), kReplicateRange) << v;
  }
  for (const char* v : {"0", "-1", "x", "", "10s"}) EXPECT_EQ(add({"TTL", v}), kTtlRange) << v;
  for (const char* v : {"-1", "x", "1.0"}) EXPECT_EQ(add({"RETRY", v}), kRetryRange) << v;
  for (const char* v : {"-1", "x", " 1"}) EXPECT_EQ(add({"DELAY", v}), kDelayRange) << v;
  for (const char* v : {"0", "-1", "x"}) EXPECT_EQ(add({"MAXLEN", v}), kMaxlenRange) << v;
  // A keyword in the last position, or an unknown word, is a syntax error.
  for (const char* k : {"REPLICATE", "DELAY", "RETRY", "TTL", "MAXLEN", "FOO", "replicate"}) {
    EXPECT_EQ(add({k}), kSyntax) << k;
  }
  EXPECT_EQ(add({"TTL", "10", "FOO", "1"}), kSyntax);
  EXPECT_EQ(add({"TTL", "10", "RETRY"}), kSyntax);
  // ASYNC takes no value, so it may be last; but a word after it is still scanned.
  EXPECT_EQ(add({"ASYNC"}).substr(0, 3), "+D-");
  EXPECT_EQ(add({"ASYNC", "1"}), kSyntax);
  // Integer parsing: strtoll rules (PROTOCOL.md 1.4).
  EXPECT_EQ(add({"TTL", "+100"}).substr(0, 3), "+D-");
  EXPECT_EQ(add({"TTL", "0100"}).substr(0, 3), "+D-");
  EXPECT_EQ(add({"REPLICATE", "65535"}), kNoRepl) << "65535 is in range";
  // RETRY "" parses as 0: an at-most-once job (allowed with the default REPLICATE 1).
  const std::string r = add({"RETRY", ""});
  ASSERT_EQ(r.substr(0, 3), "+D-") << r;
  EXPECT_EQ(r.substr(37), "05a0");
  EXPECT_EQ(Qlen(c, "vq"), 4);
}

TEST_P(JobsTest, AddjobTimeoutArgument) {
  RedisClient c(port());
  EXPECT_EQ(AddJobReply(c, {"q", "b", "x"}), kTimeoutNotInt);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "1.5"}), kTimeoutNotInt);
  EXPECT_EQ(AddJobReply(c, {"q", "b", " 5"}), kTimeoutNotInt) << "leading whitespace";
  EXPECT_EQ(AddJobReply(c, {"q", "b", "5 "}), kTimeoutNotInt) << "trailing character";
  EXPECT_EQ(AddJobReply(c, {"q", "b", "9223372036854775808"}), kTimeoutNotInt) << "overflow";
  EXPECT_EQ(AddJobReply(c, {"q", "b", "-1"}), kTimeoutNeg);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "-9223372036854775808"}), kTimeoutNeg);
  EXPECT_EQ(Qlen(c, "q"), 0);
  // Valid timeouts: the empty string is 0 (QUIRK), signs and leading zeros are fine.
  for (const char* t : {"", "0", "+0", "-0", "100", "+5000", "000100", "9223372036854775807"}) {
    EXPECT_EQ(AddJobReply(c, {"q", "b", t}).substr(0, 3), "+D-") << "timeout '" << t << "'";
  }
  EXPECT_EQ(Qlen(c, "q"), 8);
}

TEST_P(JobsTest, AddjobValidationOrder) {
  RedisClient c(port());
  // Step 2 (options, left to right) before step 3 (timeout).
  EXPECT_EQ(AddJobReply(c, {"q", "b", "x", "REPLICATE", "0"}), kReplicateRange);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "-1", "TTL", "0"}), kTtlRange);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "x", "FOO"}), kSyntax);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "x", "TTL"}), kSyntax);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "TTL", "0", "RETRY", "-1"}), kTtlRange);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "RETRY", "-1", "TTL", "0"}), kRetryRange);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "TTL", "0", "FOO"}), kTtlRange);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "FOO", "TTL", "0"}), kSyntax);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "DELAY", "-1", "MAXLEN", "0"}), kDelayRange);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "MAXLEN", "0", "DELAY", "-1"}), kMaxlenRange);
  // Step 3 (timeout) before step 4 (RETRY 0 with REPLICATE > 1).
  EXPECT_EQ(AddJobReply(c, {"q", "b", "-1", "RETRY", "0", "REPLICATE", "2"}), kTimeoutNeg);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "x", "RETRY", "0", "REPLICATE", "2"}), kTimeoutNotInt);
  // Step 4 before step 5 (DELAY >= TTL).
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "RETRY", "0", "REPLICATE", "2", "DELAY", "10", "TTL", "5"}),
            kRetry0Repl);
  // Step 5 before step 7 (replication feasibility).
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "REPLICATE", "2", "DELAY", "10", "TTL", "10"}), kDelayTtl);
  // Step 7 before step 8 (MAXLEN) and step 9 (PAUSED).
  AddJob(c, "q", "b");
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "REPLICATE", "2", "MAXLEN", "1"}), kNoRepl);
  EXPECT_EQ(c.Command({"PAUSE", "q", "in"}).ToString(), "+in");
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "REPLICATE", "2"}), kNoRepl);
  // Step 8 (MAXLEN) before step 9 (PAUSED).
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "MAXLEN", "1"}), kMaxlen);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "MAXLEN", "2"}), kPaused);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0"}), kPaused);
  // Step 5 before step 9.
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "DELAY", "5", "TTL", "5"}), kDelayTtl);
  EXPECT_EQ(Qlen(c, "q"), 1);
}

TEST_P(JobsTest, AddjobReplicationOnASingleNode) {
  RedisClient c(port());
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "REPLICATE", "2"}), kNoRepl);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "100", "REPLICATE", "3"}), kNoRepl);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "REPLICATE", "2", "ASYNC"}), kNoRepl);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "RETRY", "0", "REPLICATE", "2"}), kRetry0Repl);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "REPLICATE", "2", "RETRY", "0"}), kRetry0Repl);
  EXPECT_EQ(Qlen(c, "q"), 0);
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
  // RETRY 0 with the default (1 on a single node) or an explicit REPLICATE 1 is fine.
  EXPECT_EQ(AddJob(c, "q", "b", {"RETRY", "0"}).substr(36), "05a0");
  EXPECT_EQ(AddJob(c, "q", "b", {"RETRY", "0", "REPLICATE", "1"}).substr(36), "05a0");
  EXPECT_EQ(Qlen(c, "q"), 2);
}

TEST_P(JobsTest, AddjobDelayMustBeLessThanTtl) {
  RedisClient c(port());
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "DELAY", "86400"}), kDelayTtl);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "DELAY", "5", "TTL", "5"}), kDelayTtl);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "DELAY", "6", "TTL", "5"}), kDelayTtl);
  EXPECT_EQ(AddJobReply(c, {"q", "b", "0", "TTL", "5", "DELAY", "6"}), kDelayTtl);
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
  const std::string id = AddJob(c, "q", "b", {"DELAY", "4", "TTL", "5"});
  EXPECT_EQ(State(c, id), "active");
  AddJob(c, "q", "b", {"DELAY", "86399"});
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 2);
}

TEST_P(JobsTest, AddjobOnAQueuePausedInInput) {
  RedisClient c(port());
  EXPECT_EQ(c.Command({"PAUSE", "pq", "in"}).ToString(), "+in");
  EXPECT_EQ(AddJobReply(c, {"pq", "b", "0"}), kPaused);
  EXPECT_EQ(AddJobReply(c, {"pq", "b", "0", "ASYNC"}), kPaused);
  EXPECT_EQ(c.Command({"PAUSE", "pq", "all"}).ToString(), "+all");
  EXPECT_EQ(AddJobReply(c, {"pq", "b", "0"}), kPaused);
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
  // Output pause does not refuse jobs.
  EXPECT_EQ(c.Command({"PAUSE", "pq", "out"}).ToString(), "+out");
  AddJob(c, "pq", "b");
  EXPECT_EQ(c.Command({"PAUSE", "pq", "none"}).ToString(), "+none");
  AddJob(c, "pq", "b");
  EXPECT_EQ(Qlen(c, "pq"), 2);
  // Another queue is not affected by the pause of the first.
  EXPECT_EQ(c.Command({"PAUSE", "pq", "in"}).ToString(), "+in");
  AddJob(c, "other", "b");
}

TEST_P(JobsTest, AddjobBinarySafeQueueAndBody) {
  RedisClient c(port());
  const std::string queue("q\0\r\n x", 6);
  const std::string body("b\0o\r\ndy\xff", 9);
  const std::string id = AddJob(c, queue, body);
  auto show = Show(c, id);
  EXPECT_EQ(show["queue"].str, queue);
  EXPECT_EQ(show["body"].str, body);
  EXPECT_EQ(Qlen(c, queue), 1);
  EXPECT_EQ(Qlen(c, "q"), 0) << "queue names are binary-safe";
  const Reply r = c.Command({"GETJOB", "NOHANG", "FROM", queue});
  ASSERT_EQ(r.elements.size(), 1u) << r.ToString();
  EXPECT_EQ(r.elements[0].elements[0].str, queue);
  EXPECT_EQ(r.elements[0].elements[2].str, body);
  // Queue names are case-sensitive.
  AddJob(c, "Case", "b");
  EXPECT_EQ(Qlen(c, "case"), 0);
  EXPECT_EQ(Qlen(c, "Case"), 1);
}

// ---------------------------------------------------------------------------------
// GETJOB (PROTOCOL.md 3.2)

TEST_P(JobsTest, GetjobParsingErrors) {
  RedisClient c(port());
  auto get = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "GETJOB");
    return c.Command(args).ToString();
  };
  EXPECT_EQ(get({}), "-ERR wrong number of arguments for 'getjob' command");
  EXPECT_EQ(get({"TIMEOUT", "x", "FROM", "q"}), kTimeoutNotInt);
  EXPECT_EQ(get({"TIMEOUT", "1.5", "FROM", "q"}), kTimeoutNotInt);
  EXPECT_EQ(get({"TIMEOUT", "FROM", "q"}), kTimeoutNotInt) << "TIMEOUT takes the next word";
  EXPECT_EQ(get({"TIMEOUT", "-1", "FROM", "q"}), kTimeoutNeg);
  for (const char* n : {"0", "-1", "x", ""}) {
    EXPECT_EQ(get({"COUNT", n, "FROM", "q"}), kCountRange) << "COUNT '" << n << "'";
  }
  EXPECT_EQ(get({"FOO", "FROM", "q"}), kSyntax);
  EXPECT_EQ(get({"NOHANG", "FOO", "FROM", "q"}), kSyntax);
  EXPECT_EQ(get({"NOHANG"}), kSyntax) << "no FROM";
  EXPECT_EQ(get({"NOHANG", "COUNT", "2", "WITHCOUNTERS"}), kSyntax) << "no FROM";
  EXPECT_EQ(get({"FROM"}), kSyntax) << "nothing after FROM";
  EXPECT_EQ(get({"NOHANG", "FROM"}), kSyntax) << "nothing after FROM";
  EXPECT_EQ(get({"TIMEOUT"}), kSyntax) << "TIMEOUT last";
  EXPECT_EQ(get({"COUNT"}), kSyntax) << "COUNT last";
  EXPECT_EQ(get({"NOHANG", "COUNT"}), kSyntax) << "COUNT last";
  // Errors come in scan order.
  EXPECT_EQ(get({"TIMEOUT", "x", "COUNT", "0", "FROM", "q"}), kTimeoutNotInt);
  EXPECT_EQ(get({"COUNT", "0", "TIMEOUT", "x", "FROM", "q"}), kCountRange);
  EXPECT_EQ(get({"COUNT", "0", "FOO"}), kCountRange);
  EXPECT_EQ(get({"FOO", "COUNT", "0"}), kSyntax);
  EXPECT_EQ(get({"TIMEOUT", "-5"}), kTimeoutNeg) << "the timeout is checked before FROM";
  // Keywords are case-insensitive; options may repeat.
  AddJob(c, "q", "b");
  const Reply r = c.Command({"getjob", "nohang", "count", "1", "COUNT", "5", "timeout", "10",
                             "withcounters", "from", "q"});
  ASSERT_EQ(r.type, Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 1u);
  EXPECT_EQ(r.elements[0].elements.size(), 7u);
}

TEST_P(JobsTest, GetjobWordsAfterFromAreQueueNames) {
  RedisClient c(port());
  const std::string j_from = AddJob(c, "FROM", "in FROM");
  const std::string j_count = AddJob(c, "COUNT", "in COUNT");
  const std::string j_nohang = AddJob(c, "NOHANG", "in NOHANG");
  // "GETJOB NOHANG FROM FROM": the queue named FROM.
  Reply r = c.Command({"GETJOB", "NOHANG", "FROM", "FROM"});
  ASSERT_EQ(r.type, Type::kArray) << r.ToString();
  EXPECT_EQ(JobIds(r), std::vector<std::string>{j_from});
  // COUNT and 5 after FROM are queue names; COUNT stays 1 (the default).
  r = c.Command({"GETJOB", "NOHANG", "FROM", "COUNT", "5", "NOHANG"});
  EXPECT_EQ(JobIds(r), std::vector<std::string>{j_count});
  EXPECT_EQ(Qlen(c, "NOHANG"), 1);
  // WITHCOUNTERS after FROM is a queue name too: three-element jobs.
  r = c.Command({"GETJOB", "COUNT", "3", "FROM", "WITHCOUNTERS", "NOHANG"});
  ASSERT_EQ(r.elements.size(), 1u) << r.ToString();
  EXPECT_EQ(r.elements[0].elements.size(), 3u);
  EXPECT_EQ(JobIds(r), std::vector<std::string>{j_nohang});
}

TEST_P(JobsTest, GetjobNohangWithNothingIsANullArray) {
  RedisClient c(port());
  EXPECT_EQ(RawCommand(port(), {"GETJOB", "NOHANG", "FROM", "empty"}), "*-1\r\n");
  EXPECT_EQ(RawCommand(port(), {"GETJOB", "NOHANG", "COUNT", "10", "WITHCOUNTERS", "FROM", "e1", "e2"}),
            "*-1\r\n");
  // GETJOB NOHANG creates the queue (PROTOCOL.md 2.5).
  const Reply qstat = c.Command({"QSTAT", "empty"});
  EXPECT_EQ(qstat.type, Type::kArray) << qstat.ToString();
  EXPECT_EQ(qstat.elements.size(), 20u);
}

TEST_P(JobsTest, GetjobReplyShapeAndEffects) {
  RedisClient c(port());
  const std::string id = AddJob(c, "q", "the body");
  const Reply r = c.Command({"GETJOB", "FROM", "q"});
  ASSERT_EQ(r.type, Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 1u);
  const Reply& job = r.elements[0];
  ASSERT_EQ(job.type, Type::kArray);
  ASSERT_EQ(job.elements.size(), 3u);
  for (const Reply& e : job.elements) EXPECT_EQ(e.type, Type::kBulk) << e.ToString();
  EXPECT_EQ(job.elements[0].str, "q");
  EXPECT_EQ(job.elements[1].str, id);
  EXPECT_EQ(job.elements[2].str, "the body");
  // The job is now active and out of the queue; the queue counts the fetch.
  EXPECT_EQ(State(c, id), "active");
  EXPECT_EQ(Qlen(c, "q"), 0);
  const Reply qstat = c.Command({"QSTAT", "q"});
  ASSERT_EQ(qstat.elements.size(), 20u);
  EXPECT_EQ(qstat.elements[14].str, "jobs-in");
  EXPECT_EQ(qstat.elements[15].ToString(), ":1");
  EXPECT_EQ(qstat.elements[16].str, "jobs-out");
  EXPECT_EQ(qstat.elements[17].ToString(), ":1");
  // The exact bytes of a GETJOB reply.
  const std::string id2 = AddJob(c, "q", "x");
  EXPECT_EQ(RawCommand(port(), {"GETJOB", "FROM", "q"}),
            "*1\r\n*3\r\n" + Bulk("q") + Bulk(id2) + Bulk("x"));
}

// The jobs of a GETJOB reply are written at a pointer after one size computation
// (job_commands.cpp AppendJobs): every length's digit count, empty bodies, long queue
// names and big bodies give the bytes a piecewise writer gives.
TEST_P(JobsTest, GetjobReplyBytesForEveryLengthWidth) {
  RedisClient c(port());
  for (const std::string& queue : {std::string("q"), std::string(300, 'n')}) {
    std::string expected;
    size_t n = 0;
    for (size_t len : {0, 1, 9, 10, 99, 100, 999, 1000, 70000}) {
      const std::string body(len, static_cast<char>('a' + n % 26));
      const std::string id = AddJob(c, queue, body);
      expected += "*3\r\n" + Bulk(queue) + Bulk(id) + Bulk(body);
      ++n;
    }
    EXPECT_EQ(RawCommand(port(), {"GETJOB", "COUNT", "100", "FROM", queue}),
              "*" + std::to_string(n) + "\r\n" + expected)
        << "queue name of " << queue.size() << " bytes";
  }
}

TEST_P(JobsTest, GetjobIsFifoWithinAQueue) {
  RedisClient c(port());
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(AddJob(c, "fifo", "job" + std::to_string(i)));
  // One at a time.
  for (int i = 0; i < 10; ++i) {
    const Reply r = c.Command({"GETJOB", "NOHANG", "FROM", "fifo"});
    ASSERT_EQ(JobIds(r), std::vector<std::string>{ids[static_cast<size_t>(i)]}) << "job " << i;
    EXPECT_EQ(r.elements[0].elements[2].str, "job" + std::to_string(i));
  }
  // The rest in one call.
  const Reply r = c.Command({"GETJOB", "NOHANG", "COUNT", "100", "FROM", "fifo"});
  EXPECT_EQ(JobIds(r), std::vector<std::string>(ids.begin() + 10, ids.end()));
  EXPECT_EQ(Qlen(c, "fifo"), 0);
}

// COUNT 3 FROM A B with A={a1,a2,a3}, B={b1} → a1, b1, a2 (one job per queue per pass).
void CheckCountPasses(int port, RedisClient& c, const std::string& a, const std::string& b) {
  const std::string a1 = AddJob(c, a, "a1"), a2 = AddJob(c, a, "a2"), a3 = AddJob(c, a, "a3");
  const std::string b1 = AddJob(c, b, "b1");
  Reply r = c.Command({"GETJOB", "COUNT", "3", "FROM", a, b});
  ASSERT_EQ(r.type, Type::kArray) << r.ToString();
  EXPECT_EQ(JobIds(r), (std::vector<std::string>{a1, b1, a2}));
  ASSERT_EQ(r.elements.size(), 3u);
  EXPECT_EQ(r.elements[0].elements[0].str, a);
  EXPECT_EQ(r.elements[1].elements[0].str, b);
  EXPECT_EQ(r.elements[2].elements[0].str, a);
  EXPECT_EQ(Qlen(c, a), 1);
  EXPECT_EQ(Qlen(c, b), 0);
  // Passes stop once a pass takes nothing: COUNT 10 returns what is there.
  const std::string b2 = AddJob(c, b, "b2"), b3 = AddJob(c, b, "b3");
  r = c.Command({"GETJOB", "NOHANG", "COUNT", "10", "FROM", b, a});
  EXPECT_EQ(JobIds(r), (std::vector<std::string>{b2, a3, b3}));
  EXPECT_EQ(RawCommand(port, {"GETJOB", "NOHANG", "COUNT", "10", "FROM", a, b}), "*-1\r\n");
}

TEST_P(JobsTest, GetjobCountTakesOneJobPerQueuePerPassAcrossShards) {
  ASSERT_EQ(Crc16("123456789"), 0x31C3) << "the test's CRC16 must match the server's routing";
  const auto [a, b] = QueuePair("cross", false);
  ASSERT_NE(ShardOf(a, 4), ShardOf(b, 4));
  RedisClient c(port());
  CheckCountPasses(port(), c, a, b);
}

TEST_P(JobsTest, GetjobCountTakesOneJobPerQueuePerPassSameShard) {
  const auto [a, b] = QueuePair("same", true);
  ASSERT_EQ(ShardOf(a, 4), ShardOf(b, 4));
  RedisClient c(port());
  CheckCountPasses(port(), c, a, b);
}

TEST_P(JobsTest, GetjobCountOverManyQueuesOnAllShards) {
  RedisClient c(port());
  // Eight queues covering every shard with 4 threads; two jobs each.
  std::vector<std::string> queues;
  std::set<int> shards;
  for (int i = 0; queues.size() < 8 && i < 1000; ++i) {
    const std::string q = "multi" + std::to_string(i);
    const int s = ShardOf(q, 4);
    if (shards.count(s) == 0 || queues.size() >= 4) {
      shards.insert(s);
      queues.push_back(q);
    }
  }
  ASSERT_EQ(shards.size(), 4u);
  std::map<std::string, std::vector<std::string>> ids;
  for (int round = 0; round < 2; ++round) {
    for (const auto& q : queues) ids[q].push_back(AddJob(c, q, q + "-" + std::to_string(round)));
  }
  std::vector<std::string> expected;
  for (int round = 0; round < 2; ++round) {
    for (const auto& q : queues) expected.push_back(ids[q][static_cast<size_t>(round)]);
  }
  std::vector<std::string> args{"GETJOB", "COUNT", "13", "FROM"};
  args.insert(args.end(), queues.begin(), queues.end());
  const Reply r = c.Command(args);
  expected.resize(13);
  EXPECT_EQ(JobIds(r), expected);
}

TEST_P(JobsTest, GetjobWithCounters) {
  RedisClient c(port());
  const std::string id = AddJob(c, "wc", "body");
  Reply r = c.Command({"GETJOB", "WITHCOUNTERS", "FROM", "wc"});
  ASSERT_EQ(r.elements.size(), 1u) << r.ToString();
  const Reply& job = r.elements[0];
  ASSERT_EQ(job.elements.size(), 7u);
  EXPECT_EQ(job.elements[0].ToString(), "$wc");
  EXPECT_EQ(job.elements[1].ToString(), "$" + id);
  EXPECT_EQ(job.elements[2].ToString(), "$body");
  EXPECT_EQ(job.elements[3].ToString(), "$nacks");
  EXPECT_EQ(job.elements[4].ToString(), ":0");
  EXPECT_EQ(job.elements[5].ToString(), "$additional-deliveries");
  EXPECT_EQ(job.elements[6].ToString(), ":0");
  // After two NACKs and an ENQUEUE.
  EXPECT_EQ(c.Command({"NACK", id}).ToString(), ":1");
  c.Command({"GETJOB", "FROM", "wc"});
  EXPECT_EQ(c.Command({"NACK", id}).ToString(), ":1");
  c.Command({"GETJOB", "FROM", "wc"});
  EXPECT_EQ(c.Command({"ENQUEUE", id}).ToString(), ":1");
  EXPECT_EQ(RawCommand(port(), {"GETJOB", "WITHCOUNTERS", "FROM", "wc"}),
            "*1\r\n*7\r\n" + Bulk("wc") + Bulk(id) + Bulk("body") + Bulk("nacks") + ":2\r\n" +
                Bulk("additional-deliveries") + ":1\r\n");
}

TEST_P(JobsTest, GetjobTimeoutRepliesNullArrayAfterTheTimeout) {
  RedisClient c(port());
  const auto start = Clock::now();
  EXPECT_EQ(RawCommand(port(), {"GETJOB", "TIMEOUT", "300", "FROM", "nothing", "here"}), "*-1\r\n");
  const long long elapsed = ElapsedMs(start);
  EXPECT_GE(elapsed, 280) << "replied before the timeout";
  EXPECT_LT(elapsed, 5000);
  // The connection that timed out is usable; nothing is left blocked.
  const Reply r = c.Command({"GETJOB", "TIMEOUT", "100", "FROM", "nothing"});
  EXPECT_EQ(r.type, Type::kNil) << r.ToString();
  EXPECT_EQ(BlockedOn(c, "nothing"), 0);
}

TEST_P(JobsTest, BlockedGetjobIsServedOneJobWhateverTheCount) {
  const auto [a, b] = QueuePair("blk", false);
  RedisClient c(port());
  RawConnection waiter(port());
  ASSERT_TRUE(waiter.Send(Multibulk({"GETJOB", "COUNT", "5", "WITHCOUNTERS", "FROM", a, b})));
  ASSERT_TRUE(WaitFor([&] { return BlockedOn(c, a) == 1 && BlockedOn(c, b) == 1; }, 5s))
      << "the GETJOB did not block";
  // Two jobs in one pipelined burst; the blocked client gets exactly one.
  c.Append({"ADDJOB", b, "first", "0"});
  c.Append({"ADDJOB", b, "second", "0"});
  const std::string first = c.GetReply().str;
  c.GetReply();
  EXPECT_EQ(ReadRawReply(waiter),
            "*1\r\n*7\r\n" + Bulk(b) + Bulk(first) + Bulk("first") + Bulk("nacks") + ":0\r\n" +
                Bulk("additional-deliveries") + ":0\r\n");
  EXPECT_EQ(Qlen(c, b), 1);
  EXPECT_EQ(BlockedOn(c, a), 0);
  EXPECT_EQ(BlockedOn(c, b), 0);
}

TEST_P(JobsTest, GetjobSkipsAQueuePausedInOutput) {
  const auto [a, b] = QueuePair("paused", false);
  RedisClient c(port());
  const std::string ja = AddJob(c, a, "a");
  const std::string jb = AddJob(c, b, "b");
  EXPECT_EQ(c.Command({"PAUSE", a, "out"}).ToString(), "+out");
  EXPECT_EQ(RawCommand(port(), {"GETJOB", "NOHANG", "FROM", a}), "*-1\r\n");
  Reply r = c.Command({"GETJOB", "NOHANG", "COUNT", "5", "FROM", a, b});
  EXPECT_EQ(JobIds(r), std::vector<std::string>{jb});
  EXPECT_EQ(Qlen(c, a), 1) << "QLEN still works on a paused queue";
  EXPECT_EQ(State(c, ja), "queued");
  // PAUSE all skips too; clearing it makes the job deliverable.
  EXPECT_EQ(c.Command({"PAUSE", a, "all"}).ToString(), "+all");
  EXPECT_EQ(RawCommand(port(), {"GETJOB", "NOHANG", "FROM", a}), "*-1\r\n");
  EXPECT_EQ(c.Command({"PAUSE", a, "in"}).ToString(), "+in");
  r = c.Command({"GETJOB", "NOHANG", "FROM", a});
  EXPECT_EQ(JobIds(r), std::vector<std::string>{ja});
}

TEST_P(JobsTest, ClearingAnOutputPauseServesBlockedClients) {
  RedisClient c(port());
  const std::string id = AddJob(c, "po", "b");
  EXPECT_EQ(c.Command({"PAUSE", "po", "out"}).ToString(), "+out");
  RawConnection waiter(port());
  ASSERT_TRUE(waiter.Send(Multibulk({"GETJOB", "FROM", "po"})));
  ASSERT_TRUE(WaitFor([&] { return BlockedOn(c, "po") == 1; }, 5s));
  EXPECT_EQ(c.Command({"PAUSE", "po", "none"}).ToString(), "+none");
  EXPECT_EQ(ReadRawReply(waiter), RawJobReply("po", id, "b"));
}

// ---------------------------------------------------------------------------------
// ACKJOB, FASTACK, DELJOB, ENQUEUE, NACK, DEQUEUE (PROTOCOL.md 3.3-3.8)

const char* const kIdCommands[] = {"ACKJOB", "FASTACK", "DELJOB", "ENQUEUE", "NACK", "DEQUEUE"};

TEST_P(JobsTest, IdListCommandsWithZeroIdsReplyZero) {
  RedisClient c(port());
  for (const char* cmd : kIdCommands) {
    EXPECT_EQ(c.Command({cmd}).ToString(), ":0") << cmd;
    EXPECT_EQ(RawCommand(port(), {cmd}), ":0\r\n") << cmd;
  }
}

TEST_P(JobsTest, IdListCommandsRejectABadIdAndDoNothing) {
  RedisClient c(port());
  const std::vector<std::string> bad_ids{
      "",
      "D-",
      std::string(kUnknownId).substr(0, 39),
      std::string(kUnknownId) + "x",
      "X-zzzzzzzz-xxxxxxxxxxxxxxxxxxxxxxxx-zzzz",
      "DXzzzzzzzz-xxxxxxxxxxxxxxxxxxxxxxxx-zzzz",
      "D-zzzzzzzzXxxxxxxxxxxxxxxxxxxxxxxxx-zzzz",
      "D-zzzzzzzz-xxxxxxxxxxxxxxxxxxxxxxxxXzzzz",
      "d-zzzzzzzz-xxxxxxxxxxxxxxxxxxxxxxxx-zzzz",
  };
  for (const char* cmd : kIdCommands) {
    const std::string queued = AddJob(c, "bq", "b");
    const std::string delivered = AddJob(c, "bd", "b");
    ASSERT_EQ(JobIds(c.Command({"GETJOB", "FROM", "bd"})), std::vector<std::string>{delivered});
    for (const auto& bad : bad_ids) {
      EXPECT_EQ(c.Command({cmd, queued, delivered, bad}).ToString(), kBadId) << cmd << " '" << bad << "'";
      EXPECT_EQ(c.Command({cmd, bad, queued, delivered}).ToString(), kBadId) << cmd << " '" << bad << "'";
    }
    EXPECT_EQ(RawCommand(port(), {cmd, "bad"}), std::string(kBadId) + "\r\n") << cmd;
    // Nothing was done.
    EXPECT_EQ(State(c, queued), "queued") << cmd;
    EXPECT_EQ(State(c, delivered), "active") << cmd;
    EXPECT_EQ(Qlen(c, "bq"), 1) << cmd;
    EXPECT_EQ(Qlen(c, "bd"), 0) << cmd;
    EXPECT_EQ(ShowInt(c, delivered, "nacks"), 0) << cmd;
    EXPECT_EQ(ShowInt(c, delivered, "additional-deliveries"), 0) << cmd;
    EXPECT_EQ(c.Command({"DELJOB", queued, delivered}).ToString(), ":2");
  }
  // The single-ID commands.
  EXPECT_EQ(c.Command({"SHOW", "bad"}).ToString(), kBadId);
  EXPECT_EQ(c.Command({"WORKING", "bad"}).ToString(), kBadId);
  for (const auto& bad : bad_ids) {
    EXPECT_EQ(c.Command({"SHOW", bad}).ToString(), kBadId) << bad;
    EXPECT_EQ(c.Command({"WORKING", bad}).ToString(), kBadId) << bad;
  }
}

TEST_P(JobsTest, UnknownFormatValidIdsCountZero) {
  RedisClient c(port());
  for (const char* cmd : kIdCommands) {
    EXPECT_EQ(c.Command({cmd, kUnknownId}).ToString(), ":0") << cmd;
    EXPECT_EQ(c.Command({cmd, "D-00000000-000000000000000000000000-0001"}).ToString(), ":0") << cmd;
  }
  EXPECT_EQ(RawCommand(port(), {"SHOW", kUnknownId}), "$-1\r\n");
  EXPECT_EQ(c.Command({"WORKING", kUnknownId}).ToString(), kNoJob);
  // On a single node, no dummy ACK is created for an unknown ID.
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
}

TEST_P(JobsTest, AckjobCountsAndDeletes) {
  RedisClient c(port());
  const std::string j1 = AddJob(c, "aq", "1"), j2 = AddJob(c, "aq", "2"), j3 = AddJob(c, "aq", "3");
  ASSERT_EQ(JobIds(c.Command({"GETJOB", "FROM", "aq"})), std::vector<std::string>{j1});
  // A delivered job and a queued one count; an unknown one does not.
  EXPECT_EQ(c.Command({"ACKJOB", j1, j2, kUnknownId}).ToString(), ":2");
  EXPECT_EQ(RawCommand(port(), {"SHOW", j1}), "$-1\r\n") << "an acked job is deleted at once";
  EXPECT_EQ(RawCommand(port(), {"SHOW", j2}), "$-1\r\n");
  EXPECT_EQ(Qlen(c, "aq"), 1);
  // Twice: 1 then 0.
  EXPECT_EQ(c.Command({"ACKJOB", j3}).ToString(), ":1");
  EXPECT_EQ(c.Command({"ACKJOB", j3}).ToString(), ":0");
  EXPECT_EQ(Qlen(c, "aq"), 0);
  // The same ID twice in one call counts once.
  const std::string j4 = AddJob(c, "aq", "4");
  EXPECT_EQ(c.Command({"ACKJOB", j4, j4}).ToString(), ":1");
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
  // A delayed (active) job can be acked too.
  const std::string j5 = AddJob(c, "aq", "5", {"DELAY", "100"});
  EXPECT_EQ(c.Command({"ackjob", j5}).ToString(), ":1");
  EXPECT_TRUE(Gone(c, j5));
}

TEST_P(JobsTest, FastackCountsAndDeletes) {
  RedisClient c(port());
  const std::string j1 = AddJob(c, "fq", "1"), j2 = AddJob(c, "fq", "2");
  const std::string j3 = AddJob(c, "fq", "3", {"DELAY", "50"});
  ASSERT_EQ(JobIds(c.Command({"GETJOB", "FROM", "fq"})), std::vector<std::string>{j1});
  EXPECT_EQ(c.Command({"FASTACK", j1, j2, j3, kUnknownId}).ToString(), ":3");
  for (const auto& id : {j1, j2, j3}) EXPECT_EQ(RawCommand(port(), {"SHOW", id}), "$-1\r\n");
  EXPECT_EQ(c.Command({"FASTACK", j1, j2}).ToString(), ":0");
  EXPECT_EQ(Qlen(c, "fq"), 0);
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
}

TEST_P(JobsTest, DeljobDeletesInAnyState) {
  RedisClient c(port());
  const std::string queued = AddJob(c, "dq", "q");
  const std::string delivered = AddJob(c, "dq", "d");
  const std::string delayed = AddJob(c, "dq2", "l", {"DELAY", "100"});
  ASSERT_EQ(JobIds(c.Command({"GETJOB", "FROM", "dq"})), std::vector<std::string>{queued});
  // `queued` is now delivered (active), `delivered` is queued.
  EXPECT_EQ(State(c, queued), "active");
  EXPECT_EQ(State(c, delivered), "queued");
  EXPECT_EQ(State(c, delayed), "active");
  EXPECT_EQ(c.Command({"DELJOB", queued, delivered, delayed, kUnknownId}).ToString(), ":3");
  for (const auto& id : {queued, delivered, delayed}) EXPECT_TRUE(Gone(c, id));
  EXPECT_EQ(Qlen(c, "dq"), 0);
  EXPECT_EQ(c.Command({"DELJOB", queued}).ToString(), ":0");
  EXPECT_EQ(RawCommand(port(), {"GETJOB", "NOHANG", "FROM", "dq", "dq2"}), "*-1\r\n");
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
}

TEST_P(JobsTest, NackRequeuesADeliveredJobAndCountsNacks) {
  RedisClient c(port());
  const std::string id = AddJob(c, "nq", "b");
  // A queued job is not active: NACK does nothing.
  EXPECT_EQ(c.Command({"NACK", id}).ToString(), ":0");
  EXPECT_EQ(ShowInt(c, id, "nacks"), 0);
  ASSERT_EQ(JobIds(c.Command({"GETJOB", "FROM", "nq"})), std::vector<std::string>{id});
  EXPECT_EQ(Qlen(c, "nq"), 0);
  EXPECT_EQ(c.Command({"NACK", id, kUnknownId}).ToString(), ":1");
  EXPECT_EQ(Qlen(c, "nq"), 1);
  auto show = Show(c, id);
  EXPECT_EQ(show["state"].str, "queued");
  EXPECT_EQ(show["nacks"].ToString(), ":1");
  EXPECT_EQ(show["additional-deliveries"].ToString(), ":0") << "NACK is not an additional delivery";
  EXPECT_EQ(c.Command({"NACK", id}).ToString(), ":0") << "already queued";
  // Fetch and NACK again: 2.
  const Reply r = c.Command({"GETJOB", "WITHCOUNTERS", "FROM", "nq"});
  ASSERT_EQ(r.elements.size(), 1u);
  EXPECT_EQ(r.elements[0].elements[4].ToString(), ":1");
  EXPECT_EQ(c.Command({"nack", id}).ToString(), ":1");
  EXPECT_EQ(ShowInt(c, id, "nacks"), 2);
  EXPECT_EQ(ShowInt(c, id, "additional-deliveries"), 0);
  // The requeued job keeps its ctime, so it comes before a newer job.
  AddJob(c, "nq", "newer");
  EXPECT_EQ(JobIds(c.Command({"GETJOB", "FROM", "nq"})), std::vector<std::string>{id});
}

TEST_P(JobsTest, EnqueueRequeuesADeliveredJobAndCountsAdditionalDeliveries) {
  RedisClient c(port());
  const std::string id = AddJob(c, "eq", "b");
  EXPECT_EQ(c.Command({"ENQUEUE", id}).ToString(), ":0") << "already queued";
  ASSERT_EQ(JobIds(c.Command({"GETJOB", "FROM", "eq"})), std::vector<std::string>{id});
  EXPECT_EQ(c.Command({"ENQUEUE", id, kUnknownId}).ToString(), ":1");
  EXPECT_EQ(Qlen(c, "eq"), 1);
  auto show = Show(c, id);
  EXPECT_EQ(show["state"].str, "queued");
  EXPECT_EQ(show["additional-deliveries"].ToString(), ":1");
  EXPECT_EQ(show["nacks"].ToString(), ":0");
  ASSERT_EQ(JobIds(c.Command({"GETJOB", "FROM", "eq"})), std::vector<std::string>{id});
  EXPECT_EQ(c.Command({"enqueue", id}).ToString(), ":1");
  EXPECT_EQ(ShowInt(c, id, "additional-deliveries"), 2);
  EXPECT_EQ(ShowInt(c, id, "nacks"), 0);
}

TEST_P(JobsTest, EnqueueOfADelayedJobQueuesItWithoutCountingADelivery) {
  RedisClient c(port());
  const std::string id = AddJob(c, "edq", "b", {"DELAY", "100"});
  EXPECT_EQ(State(c, id), "active");
  EXPECT_EQ(c.Command({"ENQUEUE", id}).ToString(), ":1");
  EXPECT_EQ(State(c, id), "queued");
  EXPECT_EQ(Qlen(c, "edq"), 1);
  EXPECT_EQ(ShowInt(c, id, "additional-deliveries"), 0) << "first queueing on this node";
  // A delayed RETRY 0 job that has not been queued yet is queued too.
  const std::string once = AddJob(c, "edq0", "b", {"DELAY", "100", "RETRY", "0"});
  EXPECT_EQ(c.Command({"NACK", once}).ToString(), ":1");
  EXPECT_EQ(State(c, once), "queued");
}

TEST_P(JobsTest, NackAndEnqueueOfADeliveredAtMostOnceJobDoNothing) {
  RedisClient c(port());
  const std::string id = AddJob(c, "amo", "b", {"RETRY", "0"});
  ASSERT_EQ(JobIds(c.Command({"GETJOB", "FROM", "amo"})), std::vector<std::string>{id});
  EXPECT_EQ(c.Command({"NACK", id}).ToString(), ":0");
  EXPECT_EQ(c.Command({"ENQUEUE", id}).ToString(), ":0");
  EXPECT_EQ(State(c, id), "active");
  EXPECT_EQ(Qlen(c, "amo"), 0);
  EXPECT_EQ(ShowInt(c, id, "nacks"), 0);
  EXPECT_EQ(ShowInt(c, id, "additional-deliveries"), 0);
}

TEST_P(JobsTest, DequeueMovesQueuedJobsToActive) {
  RedisClient c(port());
  const std::string j1 = AddJob(c, "deq", "1", {"RETRY", "30"});
  const std::string j2 = AddJob(c, "deq", "2");
  EXPECT_EQ(Qlen(c, "deq"), 2);
  EXPECT_EQ(c.Command({"DEQUEUE", j1, kUnknownId}).ToString(), ":1");
  EXPECT_EQ(Qlen(c, "deq"), 1);
  auto show = Show(c, j1);
  EXPECT_EQ(show["state"].str, "active");
  // The scheduled requeue is kept.
  EXPECT_EQ(show["next-requeue-within"].type, Type::kInteger) << show["next-requeue-within"].ToString();
  EXPECT_GT(show["next-requeue-within"].integer, 25000);
  EXPECT_LE(show["next-requeue-within"].integer, 30250);
  EXPECT_EQ(c.Command({"DEQUEUE", j1}).ToString(), ":0") << "already active";
  EXPECT_EQ(JobIds(c.Command({"GETJOB", "NOHANG", "COUNT", "5", "FROM", "deq"})),
            std::vector<std::string>{j2});
  EXPECT_EQ(c.Command({"DEQUEUE", j2}).ToString(), ":0") << "a delivered job is active";
  // ENQUEUE puts a dequeued job back.
  EXPECT_EQ(c.Command({"ENQUEUE", j1}).ToString(), ":1");
  EXPECT_EQ(c.Command({"dequeue", j1, j1}).ToString(), ":1");
  EXPECT_EQ(Qlen(c, "deq"), 0);
}

// ---------------------------------------------------------------------------------
// SHOW (PROTOCOL.md 2.3, 3.9)

TEST_P(JobsTest, ShowHasThirtyElementsInTheDocumentedOrder) {
  RedisClient c(port());
  const std::string node = NodeId(c);
  const Reply time = c.Command({"TIME"});
  ASSERT_EQ(time.elements.size(), 2u);
  const int64_t now_ms = std::stoll(time.elements[0].str) * 1000 + std::stoll(time.elements[1].str) / 1000;
  const std::string id = AddJob(c, "sq", "the body", {"RETRY", "60", "TTL", "3600"});
  const Reply r = c.Command({"SHOW", id});
  ASSERT_EQ(r.type, Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 30u);
  for (size_t i = 0; i < 15; ++i) {
    EXPECT_EQ(r.elements[2 * i].type, Type::kBulk) << i;
    EXPECT_EQ(r.elements[2 * i].str, kShowFields[i]) << i;
  }
  auto v = [&](size_t i) -> const Reply& { return r.elements[2 * i + 1]; };
  EXPECT_EQ(v(0).ToString(), "$" + id);
  EXPECT_EQ(v(1).ToString(), "$sq");
  EXPECT_EQ(v(2).ToString(), "$queued");
  EXPECT_EQ(v(3).ToString(), ":1");
  EXPECT_EQ(v(4).type, Type::kInteger);
  EXPECT_GE(v(4).integer, 3599);
  EXPECT_LE(v(4).integer, 3600);
  EXPECT_EQ(v(5).type, Type::kInteger);
  // ctime is unix milliseconds × 1e6.
  EXPECT_NEAR(static_cast<double>(v(5).integer / 1000000), static_cast<double>(now_ms), 5000.0);
  EXPECT_EQ(v(6).ToString(), ":0");
  EXPECT_EQ(v(7).ToString(), ":60");
  EXPECT_EQ(v(8).ToString(), ":0");
  EXPECT_EQ(v(9).ToString(), ":0");
  ASSERT_EQ(v(10).type, Type::kArray);
  ASSERT_EQ(v(10).elements.size(), 1u);
  EXPECT_EQ(v(10).elements[0].ToString(), "$" + node);
  EXPECT_EQ(v(11).type, Type::kArray);
  EXPECT_EQ(v(11).elements.size(), 0u) << "nodes-confirmed is empty after replication";
  EXPECT_EQ(v(12).type, Type::kInteger);
  EXPECT_GT(v(12).integer, 55000);
  EXPECT_LE(v(12).integer, 60250);
  EXPECT_EQ(v(13).type, Type::kInteger);
  EXPECT_LE(v(13).integer, v(12).integer);
  EXPECT_EQ(v(14).ToString(), "$the body");
}

TEST_P(JobsTest, ShowOfAnUnknownJobIsANullBulk) {
  RedisClient c(port());
  EXPECT_EQ(RawCommand(port(), {"SHOW", kUnknownId}), "$-1\r\n");
  EXPECT_EQ(RawCommand(port(), {"SHOW", "short"}), std::string(kBadId) + "\r\n");
  EXPECT_EQ(c.Command({"SHOW"}).ToString(), "-ERR wrong number of arguments for 'show' command");
  EXPECT_EQ(c.Command({"SHOW", kUnknownId, kUnknownId}).ToString(),
            "-ERR wrong number of arguments for 'show' command");
}

TEST_P(JobsTest, ShowOfAQueuedAtMostOnceJobHasANullRequeueTime) {
  RedisClient c(port());
  const std::string id = AddJob(c, "amo", "b", {"RETRY", "0"});
  const std::string raw = RawCommand(port(), {"SHOW", id});
  EXPECT_NE(raw.find(Bulk("state") + Bulk("queued")), std::string::npos) << raw;
  EXPECT_NE(raw.find(Bulk("retry") + ":0\r\n"), std::string::npos) << raw;
  EXPECT_NE(raw.find(Bulk("next-requeue-within") + "$-1\r\n"), std::string::npos)
      << "a null bulk, not a null array: " << raw;
  const std::string raw_nodes = Bulk("nodes-delivered") + "*1\r\n";
  EXPECT_NE(raw.find(raw_nodes), std::string::npos) << raw;
  EXPECT_NE(raw.find(Bulk("nodes-confirmed") + "*0\r\n"), std::string::npos) << raw;
  auto show = Show(c, id);
  EXPECT_EQ(show["next-requeue-within"].type, Type::kNil);
}

TEST_P(JobsTest, ShowStatesAndDelayedJob) {
  RedisClient c(port());
  const std::string delayed = AddJob(c, "st", "b", {"DELAY", "10", "RETRY", "20"});
  auto show = Show(c, delayed);
  EXPECT_EQ(show["state"].str, "active");
  EXPECT_EQ(show["delay"].ToString(), ":10");
  EXPECT_EQ(show["retry"].ToString(), ":20");
  ASSERT_EQ(show["next-requeue-within"].type, Type::kInteger);
  EXPECT_GT(show["next-requeue-within"].integer, 8000);
  EXPECT_LE(show["next-requeue-within"].integer, 10000);
  const std::string queued = AddJob(c, "st", "b");
  EXPECT_EQ(State(c, queued), "queued");
  c.Command({"GETJOB", "FROM", "st"});
  EXPECT_EQ(State(c, queued), "active");
}

// Checks that the ctimes of 60 jobs added in turn to `a` and `b` strictly increase.
void CheckCtimeIncreases(RedisClient& c, const std::string& a, const std::string& b) {
  int64_t last = 0;
  for (int i = 0; i < 60; ++i) {
    const std::string id = AddJob(c, i % 2 == 0 ? a : b, "b");
    const int64_t ctime = ShowInt(c, id, "ctime");
    EXPECT_GT(ctime, last) << "job " << i << " in " << (i % 2 == 0 ? a : b);
    last = ctime;
  }
}

TEST_P(JobsTest, CtimeIsStrictlyIncreasingWithinAShard) {
  const auto [a, b] = QueuePair("ctime", true);
  RedisClient c(port());
  CheckCtimeIncreases(c, a, a);
  CheckCtimeIncreases(c, a, b);
}

// PROTOCOL.md 2.3: "ctime is strictly increasing per node". DISABLED: with --threads 4
// the server keeps one ctime counter per shard (src/engine/engine.cpp), so two jobs
// created in the same millisecond in queues on different shards get the same ctime.
TEST_P(JobsTest, CtimeIsStrictlyIncreasingPerNode) {
  const auto [a, b] = QueuePair("ctime", false);
  RedisClient c(port());
  CheckCtimeIncreases(c, a, b);
}

// ---------------------------------------------------------------------------------
// JSCAN over jobs (PROTOCOL.md 4.5): the job-facing part

// Every item of a full JSCAN iteration with `options`; fails on a malformed reply.
std::vector<Reply> JscanAll(RedisClient& c, const std::vector<std::string>& options) {
  std::vector<Reply> items;
  std::string cursor = "0";
  for (int calls = 0; calls < 10000; ++calls) {
    std::vector<std::string> args{"JSCAN", cursor};
    args.insert(args.end(), options.begin(), options.end());
    const Reply r = c.Command(args);
    EXPECT_EQ(r.type, Type::kArray) << r.ToString();
    if (r.type != Type::kArray || r.elements.size() != 2) return items;
    EXPECT_EQ(r.elements[0].type, Type::kBulk) << "the cursor is a bulk string";
    EXPECT_EQ(r.elements[1].type, Type::kArray);
    for (const Reply& item : r.elements[1].elements) items.push_back(item);
    cursor = r.elements[0].str;
    if (cursor == "0") return items;
  }
  ADD_FAILURE() << "JSCAN did not finish";
  return items;
}

TEST_P(JobsTest, JscanListsJobsAsStatusRepliesOrShowArrays) {
  RedisClient c(port());
  std::set<std::string> queued, delayed;
  for (int i = 0; i < 30; ++i) queued.insert(AddJob(c, "js" + std::to_string(i % 3), "b"));
  for (int i = 0; i < 5; ++i) delayed.insert(AddJob(c, "js0", "b", {"DELAY", "100"}));
  std::set<std::string> all = queued;
  all.insert(delayed.begin(), delayed.end());

  std::set<std::string> got;
  for (const Reply& item : JscanAll(c, {"COUNT", "7"})) {
    EXPECT_EQ(item.type, Type::kStatus) << "REPLY id items are status replies: " << item.ToString();
    got.insert(item.str);
  }
  EXPECT_EQ(got, all);

  got.clear();
  for (const Reply& item : JscanAll(c, {"STATE", "active"})) got.insert(item.str);
  EXPECT_EQ(got, delayed);
  got.clear();
  for (const Reply& item : JscanAll(c, {"STATE", "QUEUED", "QUEUE", "js1"})) got.insert(item.str);
  EXPECT_EQ(got.size(), 10u);
  for (const auto& id : got) EXPECT_EQ(Show(c, id)["queue"].str, "js1");

  got.clear();
  for (const Reply& item : JscanAll(c, {"REPLY", "all", "QUEUE", "js0", "STATE", "active"})) {
    ASSERT_EQ(item.type, Type::kArray) << item.ToString();
    ASSERT_EQ(item.elements.size(), 30u);
    EXPECT_EQ(item.elements[0].str, "id");
    EXPECT_EQ(item.elements[4].str, "state");
    EXPECT_EQ(item.elements[5].str, "active");
    got.insert(item.elements[1].str);
  }
  EXPECT_EQ(got, delayed);

  EXPECT_EQ(c.Command({"JSCAN", "STATE", "waiting"}).ToString(), "-ERR Invalid job state name");
  EXPECT_EQ(c.Command({"JSCAN", "REPLY", "ids"}).ToString(), "-ERR Invalid REPLY type, try ID or ALL");
}

// A job header keeps the length of queue names shorter than 255 bytes in 8 bits and of
// bodies shorter than 65,535 bytes in 16, and stores longer ones' length in front of the
// name or body (job.h): names and bodies on both sides of those lines, and a name of
// 70,000 bytes through every command that shows a job or a queue.
TEST_P(JobsTest, QueueNamesLongerThanSixteenBitsOfLengthWork) {
  RedisClient c(port());
  std::string queue(70000, '\0');
  for (size_t i = 0; i < queue.size(); ++i) queue[i] = static_cast<char>('a' + i % 26);
  queue[1000] = '\0';  // binary-safe as well
  const std::string id = AddJob(c, queue, "long-name body");
  const std::string delayed = AddJob(c, queue, "later", {"DELAY", "100", "RETRY", "200"});

  auto show = Show(c, id);
  EXPECT_EQ(show["queue"].str, queue);
  EXPECT_EQ(show["body"].str, "long-name body");
  EXPECT_EQ(show["delay"].ToString(), ":0");
  show = Show(c, delayed);
  EXPECT_EQ(show["queue"].str, queue);
  EXPECT_EQ(show["body"].str, "later");
  EXPECT_EQ(show["delay"].ToString(), ":100");
  EXPECT_EQ(show["retry"].ToString(), ":200");
  EXPECT_EQ(show["state"].str, "active");

  const Reply qstat = c.Command({"QSTAT", queue});
  ASSERT_EQ(qstat.type, Type::kArray) << qstat.ToString().substr(0, 200);
  ASSERT_EQ(qstat.elements.size(), 20u);
  EXPECT_EQ(qstat.elements[0].str, "name");
  EXPECT_EQ(qstat.elements[1].str, queue);
  EXPECT_EQ(qstat.elements[3].ToString(), ":1") << "the delayed job is not queued yet";
  EXPECT_EQ(Qlen(c, queue), 1);
  EXPECT_EQ(Qlen(c, queue.substr(0, 65535)), 0) << "a prefix is another queue";

  const Reply peek = c.Command({"QPEEK", queue, "10"});
  ASSERT_EQ(peek.elements.size(), 1u) << peek.ToString().substr(0, 200);
  EXPECT_EQ(peek.elements[0].elements[0].str, queue);
  EXPECT_EQ(peek.elements[0].elements[1].str, id);
  std::set<std::string> scanned;
  for (const Reply& item : JscanAll(c, {"QUEUE", queue})) scanned.insert(item.str);
  EXPECT_EQ(scanned, (std::set<std::string>{id, delayed}));

  const Reply got = c.Command({"GETJOB", "NOHANG", "FROM", queue});
  ASSERT_EQ(got.elements.size(), 1u) << got.ToString().substr(0, 200);
  ASSERT_EQ(got.elements[0].elements.size(), 3u);
  EXPECT_EQ(got.elements[0].elements[0].str, queue);
  EXPECT_EQ(got.elements[0].elements[1].str, id);
  EXPECT_EQ(got.elements[0].elements[2].str, "long-name body");
  EXPECT_EQ(c.Command({"NACK", id}).ToString(), ":1");
  EXPECT_EQ(Show(c, id)["nacks"].ToString(), ":1");
  const Reply again = c.Command({"GETJOB", "NOHANG", "FROM", queue});
  ASSERT_EQ(again.elements.size(), 1u) << again.ToString().substr(0, 200);
  EXPECT_EQ(again.elements[0].elements[0].str, queue);
  EXPECT_EQ(again.elements[0].elements[2].str, "long-name body");
  EXPECT_EQ(c.Command({"ACKJOB", id, delayed}).ToString(), ":2");

  // Around the lines: 254 bytes of name fit the header, 255 and more do not; so for
  // 65,534 bytes of body and 65,535. The old 16-bit line of names is kept as well.
  const std::string big_body(65536, 'B');
  for (size_t len : {size_t{254}, size_t{255}, size_t{256}, size_t{65534}, size_t{65535},
                     size_t{65536}}) {
    for (size_t body_len : {size_t{1}, size_t{65534}, size_t{65535}, size_t{65536}}) {
      const std::string name = queue.substr(0, len);
      const std::string body = std::to_string(len) + big_body.substr(0, body_len);
      const std::string jid = AddJob(c, name, body, {"DELAY", "50"});
      auto s = Show(c, jid);
      EXPECT_EQ(s["queue"].str, name) << len << " " << body_len;
      EXPECT_EQ(s["body"].str, body) << len << " " << body_len;
      EXPECT_EQ(s["delay"].ToString(), ":50") << len << " " << body_len;
      EXPECT_EQ(c.Command({"ENQUEUE", jid}).ToString(), ":1") << len << " " << body_len;
      const Reply r = c.Command({"GETJOB", "NOHANG", "FROM", name});
      ASSERT_EQ(r.elements.size(), 1u) << len << " " << body_len;
      EXPECT_EQ(r.elements[0].elements[0].str, name) << len << " " << body_len;
      EXPECT_EQ(r.elements[0].elements[2].str, body) << len << " " << body_len;
      EXPECT_EQ(c.Command({"ACKJOB", jid}).ToString(), ":1") << len << " " << body_len;
    }
  }
}

// ---------------------------------------------------------------------------------
// WORKING (PROTOCOL.md 3.5)

TEST_P(JobsTest, WorkingRepliesTheRetryAndTakesTheJobOutOfTheQueue) {
  RedisClient c(port());
  const std::string id = AddJob(c, "wq", "b", {"RETRY", "7"});
  EXPECT_EQ(Qlen(c, "wq"), 1);
  EXPECT_EQ(RawCommand(port(), {"WORKING", id}), ":7\r\n");
  EXPECT_EQ(Qlen(c, "wq"), 0);
  auto show = Show(c, id);
  EXPECT_EQ(show["state"].str, "active");
  ASSERT_EQ(show["next-requeue-within"].type, Type::kInteger);
  EXPECT_GT(show["next-requeue-within"].integer, 6000);
  EXPECT_LE(show["next-requeue-within"].integer, 7250);
  EXPECT_EQ(c.Command({"working", id}).ToString(), ":7");
  // The default RETRY.
  const std::string def = AddJob(c, "wq", "b");
  EXPECT_EQ(c.Command({"WORKING", def}).ToString(), ":300");
  // At-most-once (QUIRK): :0 and the job leaves the queue for good.
  const std::string once = AddJob(c, "wq0", "b", {"RETRY", "0"});
  EXPECT_EQ(c.Command({"WORKING", once}).ToString(), ":0");
  EXPECT_EQ(Qlen(c, "wq0"), 0);
  EXPECT_EQ(State(c, once), "active");
  // Errors.
  EXPECT_EQ(c.Command({"WORKING", "D-123"}).ToString(), kBadId);
  EXPECT_EQ(c.Command({"WORKING", kUnknownId}).ToString(), kNoJob);
  EXPECT_EQ(c.Command({"WORKING"}).ToString(), "-ERR wrong number of arguments for 'working' command");
  EXPECT_EQ(c.Command({"WORKING", id, id}).ToString(),
            "-ERR wrong number of arguments for 'working' command");
}

TEST_P(JobsTest, WorkingAfterHalfTheTtlIsTooLate) {
  RedisClient c(port());
  const auto start = Clock::now();
  const std::string id = AddJob(c, "tl", "b", {"TTL", "2"});
  // Right after creation WORKING is allowed (TTL 2 → RETRY 1).
  Reply r = c.Command({"WORKING", id});
  ASSERT_EQ(r.ToString(), ":1");
  // Poll until the server refuses; the refusal must be TOOLATE, not NOJOB (the TTL is
  // not over yet), and it cannot come before half of the (at least 1 s) lifetime.
  ASSERT_TRUE(WaitFor(
      [&] {
        r = c.Command({"WORKING", id});
        return r.type != Type::kInteger;
      },
      5s))
      << r.ToString();
  EXPECT_EQ(r.ToString(), kTooLate);
  EXPECT_GE(ElapsedMs(start), 450);
  EXPECT_EQ(c.Command({"WORKING", id}).ToString(), kTooLate);
}

// ---------------------------------------------------------------------------------
// Time-driven behaviour

TEST_P(JobsTest, DelayedJobIsQueuedAfterTheDelay) {
  RedisClient c(port());
  const auto start = Clock::now();
  const std::string id = AddJob(c, "dlq", "b", {"DELAY", "1"});
  EXPECT_EQ(State(c, id), "active");
  EXPECT_EQ(Qlen(c, "dlq"), 0);
  ASSERT_TRUE(WaitFor([&] { return Qlen(c, "dlq") == 1; }, 5s));
  EXPECT_GE(ElapsedMs(start), 700) << "queued before the delay";
  EXPECT_EQ(State(c, id), "queued");
  EXPECT_EQ(ShowInt(c, id, "additional-deliveries"), 0);
  EXPECT_EQ(JobIds(c.Command({"GETJOB", "NOHANG", "FROM", "dlq"})), std::vector<std::string>{id});
}

TEST_P(JobsTest, BlockedGetjobIsServedWhenADelayedJobIsQueued) {
  RedisClient c(port());
  const std::string id = AddJob(c, "dlb", "b", {"DELAY", "1"});
  EXPECT_EQ(RawCommand(port(), {"GETJOB", "TIMEOUT", "5000", "FROM", "dlb"}), RawJobReply("dlb", id, "b"));
}

TEST_P(JobsTest, UnackedJobIsRequeuedAfterTheRetry) {
  RedisClient c(port());
  const std::string id = AddJob(c, "rtq", "b", {"RETRY", "1"});
  ASSERT_EQ(JobIds(c.Command({"GETJOB", "FROM", "rtq"})), std::vector<std::string>{id});
  const auto fetched = Clock::now();
  EXPECT_EQ(Qlen(c, "rtq"), 0);
  ASSERT_TRUE(WaitFor([&] { return Qlen(c, "rtq") == 1; }, 5s));
  EXPECT_GE(ElapsedMs(fetched), 300);
  auto show = Show(c, id);
  EXPECT_EQ(show["state"].str, "queued");
  EXPECT_EQ(show["additional-deliveries"].ToString(), ":1");
  EXPECT_EQ(show["nacks"].ToString(), ":0");
  const Reply r = c.Command({"GETJOB", "WITHCOUNTERS", "FROM", "rtq"});
  ASSERT_EQ(r.elements.size(), 1u) << r.ToString();
  EXPECT_EQ(r.elements[0].elements[6].ToString(), ":1");
  // Acked, it is not requeued again.
  EXPECT_EQ(c.Command({"ACKJOB", id}).ToString(), ":1");
  EXPECT_EQ(Qlen(c, "rtq"), 0);
}

TEST_P(JobsTest, JobsDisappearAfterTheirTtl) {
  RedisClient c(port());
  const std::string queued = AddJob(c, "exq", "b", {"TTL", "1"});
  const std::string delivered = AddJob(c, "exq", "b", {"TTL", "1"});
  const std::string keeper = AddJob(c, "exq", "b", {"TTL", "100"});
  c.Command({"DEQUEUE", delivered});
  EXPECT_EQ(Qlen(c, "exq"), 2);
  ASSERT_TRUE(WaitFor([&] { return Gone(c, queued) && Gone(c, delivered); }, 5s));
  EXPECT_EQ(RawCommand(port(), {"SHOW", queued}), "$-1\r\n");
  EXPECT_EQ(Qlen(c, "exq"), 1);
  EXPECT_EQ(State(c, keeper), "queued");
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 1);
}

// ---------------------------------------------------------------------------------
// LOADJOB (PROTOCOL.md 3.10)

TEST_P(JobsTest, LoadjobIsRefusedFromClients) {
  RedisClient c(port());
  EXPECT_EQ(c.Command({"LOADJOB", "anything"}).ToString(),
            "-ERR LOADJOB is a special command only processed from AOF");
  EXPECT_EQ(c.Command({"loadjob", ""}).ToString(),
            "-ERR LOADJOB is a special command only processed from AOF");
  EXPECT_EQ(c.Command({"LOADJOB"}).ToString(), "-ERR wrong number of arguments for 'loadjob' command");
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
}

// ---------------------------------------------------------------------------------
// Volume

TEST_P(JobsTest, AThousandJobsInTenQueues) {
  RedisClient c(port());
  constexpr int kQueues = 10, kPerQueue = 100;
  std::vector<std::string> queues;
  for (int q = 0; q < kQueues; ++q) queues.push_back("bulk" + std::to_string(q));
  // Pipelined: job i goes to queue i % 10.
  for (int i = 0; i < kQueues * kPerQueue; ++i) {
    c.Append({"ADDJOB", queues[static_cast<size_t>(i % kQueues)], "body" + std::to_string(i), "0"});
  }
  std::vector<std::vector<std::string>> ids(kQueues);
  for (int i = 0; i < kQueues * kPerQueue; ++i) {
    const Reply r = c.GetReply();
    ASSERT_EQ(r.type, Type::kStatus) << i << ": " << r.ToString();
    ids[static_cast<size_t>(i % kQueues)].push_back(r.str);
  }
  for (const auto& q : queues) EXPECT_EQ(Qlen(c, q), kPerQueue) << q;
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 1000);

  std::vector<std::string> args{"GETJOB", "NOHANG", "COUNT", "1000", "FROM"};
  args.insert(args.end(), queues.begin(), queues.end());
  const Reply r = c.Command(args);
  ASSERT_EQ(r.type, Type::kArray) << r.ToString();
  ASSERT_EQ(r.elements.size(), 1000u);
  // Passes over the queues in order, FIFO within each queue.
  std::vector<std::string> all;
  for (size_t k = 0; k < r.elements.size(); ++k) {
    const size_t q = k % kQueues, n = k / kQueues;
    ASSERT_EQ(r.elements[k].elements.size(), 3u);
    EXPECT_EQ(r.elements[k].elements[0].str, queues[q]) << k;
    EXPECT_EQ(r.elements[k].elements[1].str, ids[q][n]) << k;
    EXPECT_EQ(r.elements[k].elements[2].str, "body" + std::to_string(n * kQueues + q)) << k;
    all.push_back(r.elements[k].elements[1].str);
  }
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 1000u);
  for (const auto& q : queues) EXPECT_EQ(Qlen(c, q), 0) << q;

  // Ack half in one command, half pipelined one by one.
  std::vector<std::string> ack{"ACKJOB"};
  ack.insert(ack.end(), all.begin(), all.begin() + 500);
  EXPECT_EQ(c.Command(ack).ToString(), ":500");
  for (size_t k = 500; k < all.size(); ++k) c.Append({"ACKJOB", all[k]});
  int64_t acked = 0;
  for (size_t k = 500; k < all.size(); ++k) acked += c.GetReply().integer;
  EXPECT_EQ(acked, 500);
  EXPECT_EQ(InfoInt(c, "jobs", "registered_jobs"), 0);
  EXPECT_EQ(RawCommand(port(), {"GETJOB", "NOHANG", "FROM", "bulk0", "bulk9"}), "*-1\r\n");
}

// ---------------------------------------------------------------------------------
// Third-party clients

TEST_P(JobsTest, RedisCli) {
  const std::string cli = "redis-cli -h 127.0.0.1 -p " + std::to_string(port());
  int status = -1;
  const std::string out = RunCommand(cli + " ADDJOB cliq 'hello world' 0", "", &status);
  EXPECT_EQ(status, 0);
  ASSERT_EQ(out.size(), 41u) << out;
  const std::string id = out.substr(0, 40);
  EXPECT_EQ(id.substr(0, 2), "D-");
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(RunCommand(cli + " QLEN cliq"), "1\n");
  EXPECT_EQ(RunCommand(cli + " GETJOB NOHANG FROM cliq"), "cliq\n" + id + "\nhello world\n");
  EXPECT_EQ(RunCommand(cli + " GETJOB NOHANG FROM cliq"), "\n");
  EXPECT_EQ(RunCommand(cli + " ACKJOB " + id), "1\n");
  EXPECT_EQ(RunCommand(cli + " SHOW " + id), "\n");
  const std::string err = RunCommand(cli + " ADDJOB cliq b 0 REPLICATE 2");
  EXPECT_NE(err.find("NOREPL Not enough reachable nodes"), std::string::npos) << err;
}

TEST_P(JobsTest, RedisPy) {
  // redis-py may be installed for the system interpreter only.
  std::string python;
  for (const char* candidate : {"/usr/bin/python3", "python3"}) {
    int status = -1;
    RunCommand(std::string(candidate) + " -c 'import redis'", "", &status);
    if (status == 0) {
      python = candidate;
      break;
    }
  }
  if (python.empty()) GTEST_SKIP() << "python3 with the redis module (python3-redis) is not installed";
  const std::string script = R"PY(
import sys, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), decode_responses=True)
jid = r.execute_command("ADDJOB", "pyq", "py body", 0, "RETRY", 5)
print("id", jid)
print("qlen", r.execute_command("QLEN", "pyq"))
jobs = r.execute_command("GETJOB", "NOHANG", "WITHCOUNTERS", "FROM", "pyq")
print("job", jobs[0][0], jobs[0][1] == jid, jobs[0][2], jobs[0][3], jobs[0][4], jobs[0][5], jobs[0][6])
print("none", r.execute_command("GETJOB", "NOHANG", "FROM", "pyq"))
show = r.execute_command("SHOW", jid)
print("show", len(show), show[4], show[5], show[14], show[15])
print("nack", r.execute_command("NACK", jid))
print("ack", r.execute_command("ACKJOB", jid), r.execute_command("ACKJOB", jid))
print("gone", r.execute_command("SHOW", jid))
try:
    r.execute_command("ACKJOB", "nope")
except redis.ResponseError as e:
    print("error", e)
)PY";
  int status = -1;
  const std::string out = RunCommand(python + " - " + std::to_string(port()), script, &status);
  EXPECT_EQ(status, 0) << out;
  std::istringstream in(out);
  std::string first;
  std::getline(in, first);
  ASSERT_EQ(first.size(), 43u) << out;
  EXPECT_EQ(first.substr(0, 5), "id D-") << out;
  const std::string rest = out.substr(first.size() + 1);
  EXPECT_EQ(rest,
            "qlen 1\n"
            "job pyq True py body nacks 0 additional-deliveries 0\n"
            "none None\n"
            "show 30 state active retry 5\n"
            "nack 1\n"
            "ack 1 0\n"
            "gone None\n"
            "error BADID Invalid Job ID format.\n")
      << out;
}

INSTANTIATE_TEST_SUITE_P(Threads, JobsTest, ::testing::Values(1, 4));

}  // namespace
}  // namespace disque::test
