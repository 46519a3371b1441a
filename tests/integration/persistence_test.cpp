// The append-only file against the real binary (PROTOCOL.md 8, 6.14, 6.15, 6.2 "#
// Persistence", 1.2 MISCONF): what is logged and in which bytes (the file is parsed
// here independently of the server's reader, CRC32C included), what a restart loads
// (queued jobs come back active, requeue after DELAY+RETRY, expired and acked jobs
// stay gone), the controlled restart (aof-enqueue-jobs-once + SHUTDOWN REWRITE-AOF),
// SIGKILL while clients are writing under every fsync policy, torn and damaged files,
// BGREWRITEAOF (compaction, concurrent writes, a kill in the middle), CONFIG SET
// appendonly, write errors (DEBUG AOF-FAULT and a real full tmpfs), the automatic
// rewrite, --check-aof, Disque's RESP files, and a two-node cluster whose replicas log
// their copies.
//
// Every server runs in its ServerProcess's temporary directory on a free port; kills
// are SIGKILL followed by a restart on the same directory. Waits poll with WaitFor.
// AofStartupTest.JobsAnsweredDuringStartupAreInTheFile and
// ReplicaAofTest.ReplicaWritesItsCopyBeforeConfirmingIt are regression tests for two
// ways an answered job escaped the file (both fixed in 522a71d).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/cluster.h"
#include "support/files.h"
#include "support/redis_client.h"
#include "support/reply_text.h"
#include "support/server_process.h"

namespace disque::test {
namespace {

using namespace std::chrono_literals;
using Type = Reply::Type;
using Args = std::vector<std::string>;

const char kRewriteStarted[] = "+Background append only file rewriting started";
const char kRewriteRunning[] = "-ERR Background append only file rewriting already in progress";
const char kShutdownFailed[] = "-ERR Errors trying to SHUTDOWN. Check logs.";
const char kMisconfNoSpace[] = "-MISCONF Errors writing to the AOF file: No space left on device";
const char kMisconfEio[] = "-MISCONF Errors writing to the AOF file: Input/output error";

// ---------------------------------------------------------------------------------
// The file format, decoded here without the server's code (include/disque/persist/
// aof_format.h, PROTOCOL.md 8.5).

uint32_t Crc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char ch : data) {
    crc ^= ch;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint64_t Le(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}

std::string Put32(uint32_t v) {
  std::string out;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return out;
}

// The 16 bytes every AOF starts with.
std::string ExpectedHeader() {
  std::string h("DQAOF\r\n\x1a", 8);
  h += Put32(1);
  h += Put32(Crc32c(h));
  return h;
}

struct AofJob {
  std::string id;
  int state = -1;  // 0 wait-repl, 1 active, 2 queued, 3 acked
  int flags = 0;
  int repl = 0;
  uint32_t etime = 0;
  uint64_t ctime = 0;
  uint32_t delay = 0, retry = 0;
  int nacks = 0, deliveries = 0;
  std::string queue, body;
  std::vector<std::string> nodes;
};

struct AofRecord {
  int type = 0;  // 1 LOADJOB, 2 DELJOB
  uint64_t offset = 0;
  uint64_t end = 0;
  std::string payload;
  AofJob job;  // LOADJOB: decoded; DELJOB: job.id only
};

struct AofFile {
  bool header_ok = false;
  std::vector<AofRecord> records;
  uint64_t size = 0;
  std::string error;  // empty: every byte of the file is a verified record

  // The jobs a replay leaves: LOADJOB of a known ID and DELJOB of an unknown one do
  // nothing (the rule the rewrite relies on).
  std::map<std::string, AofJob> Replay() const {
    std::map<std::string, AofJob> live;
    for (const auto& r : records) {
      if (r.type == 1) {
        live.emplace(r.job.id, r.job);
      } else {
        live.erase(r.job.id);
      }
    }
    return live;
  }
  std::set<std::string> LiveIds() const {
    std::set<std::string> ids;
    for (const auto& [id, job] : Replay()) ids.insert(id);
    return ids;
  }
  // "L <id>" / "D <id>" per record, for exact sequence comparisons.
  std::vector<std::string> Summary() const {
    std::vector<std::string> out;
    for (const auto& r : records) out.push_back((r.type == 1 ? "L " : "D ") + r.job.id);
    return out;
  }
};

bool DecodeJob(std::string_view p, AofJob* job, std::string* why) {
  if (p.size() < 4 + 68 + 12) return *why = "LOADJOB payload too short", false;
  if (Le(p, 0, 4) != p.size() - 4) return *why = "LOADJOB length prefix does not match the payload", false;
  size_t at = 4;
  job->id = std::string(p.substr(at, 40));
  at += 40;
  job->state = static_cast<unsigned char>(p[at]) & 0x0F;
  job->flags = static_cast<unsigned char>(p[at + 1]);
  job->repl = static_cast<int>(Le(p, at + 2, 2));
  job->etime = static_cast<uint32_t>(Le(p, at + 4, 4));
  job->ctime = Le(p, at + 8, 8);
  job->delay = static_cast<uint32_t>(Le(p, at + 16, 4));
  job->retry = static_cast<uint32_t>(Le(p, at + 20, 4));
  job->nacks = static_cast<int>(Le(p, at + 24, 2));
  job->deliveries = static_cast<int>(Le(p, at + 26, 2));
  at += 28;
  auto str = [&](std::string* out) {
    if (p.size() - at < 4) return false;
    const uint64_t n = Le(p, at, 4);
    at += 4;
    if (p.size() - at < n) return false;
    *out = std::string(p.substr(at, n));
    at += n;
    return true;
  };
  if (!str(&job->queue) || !str(&job->body) || p.size() - at < 4) return *why = "LOADJOB variable part truncated", false;
  const uint64_t n = Le(p, at, 4);
  at += 4;
  if (p.size() - at != n * 40) return *why = "LOADJOB node list does not fill the payload", false;
  for (uint64_t i = 0; i < n; ++i, at += 40) job->nodes.emplace_back(p.substr(at, 40));
  return true;
}

AofFile ParseAofBytes(const std::string& bytes) {
  AofFile f;
  f.size = bytes.size();
  if (bytes.size() < 16 || bytes.substr(0, 16) != ExpectedHeader()) {
    f.error = "bad or missing file header";
    return f;
  }
  f.header_ok = true;
  size_t at = 16;
  while (at < bytes.size()) {
    if (bytes.size() - at < 16) {
      f.error = "truncated record header at " + std::to_string(at);
      return f;
    }
    const std::string_view h(bytes.data() + at, 16);
    const uint64_t len = Le(h, 0, 4);
    const int type = static_cast<unsigned char>(h[4]);
    if (h[5] != 0 || h[6] != 0 || h[7] != 0 || Le(h, 8, 4) != Crc32c(h.substr(0, 8)) || (type != 1 && type != 2)) {
      f.error = "bad record header at " + std::to_string(at);
      return f;
    }
    if (bytes.size() - at - 16 < len) {
      f.error = "truncated record at " + std::to_string(at);
      return f;
    }
    AofRecord r;
    r.type = type;
    r.offset = at;
    r.end = at + 16 + len;
    r.payload = bytes.substr(at + 16, len);
    if (Le(h, 12, 4) != Crc32c(r.payload)) {
      f.error = "bad payload checksum at " + std::to_string(at);
      return f;
    }
    std::string why;
    if (type == 2) {
      if (r.payload.size() != 40) {
        f.error = "DELJOB payload of " + std::to_string(r.payload.size()) + " bytes at " + std::to_string(at);
        return f;
      }
      r.job.id = r.payload;
    } else if (!DecodeJob(r.payload, &r.job, &why)) {
      f.error = why + " at " + std::to_string(at);
      return f;
    }
    f.records.push_back(std::move(r));
    at += 16 + len;
  }
  return f;
}

AofFile ParseAof(const std::string& path) { return ParseAofBytes(ReadFile(path)); }

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

bool Exists(const std::string& path) { return std::filesystem::exists(path); }

// Temp files of a rewrite left in `dir`.
std::vector<std::string> RewriteTempFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("temp-rewriteaof-bg-", 0) == 0) out.push_back(name);
  }
  return out;
}

int64_t NowS() { return static_cast<int64_t>(std::time(nullptr)); }

// ---------------------------------------------------------------------------------
// Commands.

// ADDJOB <queue> <body> 0 <options...>: the new ID, or "<reply>" when it was not one.
std::string AddJob(RedisClient& c, const std::string& queue, const std::string& body, const Args& options = {}) {
  Args args{"ADDJOB", queue, body, "0"};
  args.insert(args.end(), options.begin(), options.end());
  const Reply r = c.Command(args);
  return r.type == Type::kStatus ? r.str : "<" + r.ToString() + ">";
}

// Pipelined ADDJOBs of bodies prefix0, prefix1, ...; the IDs (or "<reply>") in order.
std::vector<std::string> AddJobs(RedisClient& c, const std::string& queue, const std::string& prefix, int n,
                                 const Args& options = {}) {
  for (int i = 0; i < n; ++i) {
    Args args{"ADDJOB", queue, prefix + std::to_string(i), "0"};
    args.insert(args.end(), options.begin(), options.end());
    c.Append(args);
  }
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    const Reply r = c.GetReply();
    ids.push_back(r.type == Type::kStatus ? r.str : "<" + r.ToString() + ">");
  }
  return ids;
}

// Pipelined ACKJOB of each ID; the number that replied :1.
int AckAll(RedisClient& c, const std::vector<std::string>& ids) {
  for (const auto& id : ids) c.Append({"ACKJOB", id});
  int acked = 0;
  for (size_t i = 0; i < ids.size(); ++i) acked += c.GetReply().ToString() == ":1" ? 1 : 0;
  return acked;
}

// One job as SHOW gives it.
struct Shown {
  bool known = false;
  std::string error;
  std::map<std::string, Reply> fields;

  int64_t Int(const std::string& name) const {
    auto it = fields.find(name);
    return it == fields.end() || it->second.type != Type::kInteger ? -999999 : it->second.integer;
  }
  std::string Str(const std::string& name) const {
    auto it = fields.find(name);
    return it == fields.end() ? "<absent>" : it->second.type == Type::kNil ? "<nil>" : it->second.str;
  }
  bool IsNil(const std::string& name) const {
    auto it = fields.find(name);
    return it != fields.end() && it->second.type == Type::kNil;
  }
  std::vector<std::string> List(const std::string& name) const {
    std::vector<std::string> out;
    auto it = fields.find(name);
    if (it != fields.end()) {
      for (const auto& e : it->second.elements) out.push_back(e.str);
    }
    return out;
  }
};

Shown Show(RedisClient& c, const std::string& id) {
  Shown s;
  const Reply r = c.Command({"SHOW", id});
  if (r.type == Type::kNil) return s;
  if (r.type != Type::kArray || r.elements.size() != 30) {
    s.error = "SHOW replied " + r.ToString();
    return s;
  }
  s.known = true;
  for (size_t k = 0; k + 1 < r.elements.size(); k += 2) s.fields[r.elements[k].str] = r.elements[k + 1];
  return s;
}

// QPEEK <queue> <n> as "id body" strings, head first.
std::vector<std::string> Peek(RedisClient& c, const std::string& queue, int n = 100000) {
  const Reply r = c.Command({"QPEEK", queue, std::to_string(n)});
  std::vector<std::string> out;
  if (r.type != Type::kArray) return {"<QPEEK replied " + r.ToString() + ">"};
  for (const auto& e : r.elements) {
    out.push_back(e.elements.size() == 3 ? e.elements[1].str + " " + e.elements[2].str : "<" + e.ToString() + ">");
  }
  return out;
}

int64_t Qlen(RedisClient& c, const std::string& queue) {
  const Reply r = c.Command({"QLEN", queue});
  return r.type == Type::kInteger ? r.integer : -1;
}

// Every job ID the node holds (JSCAN over the whole table).
std::set<std::string> AllJobIds(RedisClient& c) {
  std::set<std::string> ids;
  std::string cursor = "0";
  do {
    const Reply r = c.Command({"JSCAN", cursor, "COUNT", "1000"});
    if (r.type != Type::kArray || r.elements.size() != 2) {
      ids.insert("<JSCAN replied " + r.ToString() + ">");
      break;
    }
    cursor = r.elements[0].str;
    for (const auto& e : r.elements[1].elements) ids.insert(e.str);
  } while (cursor != "0");
  return ids;
}

std::string Persistence(RedisClient& c) { return c.Command({"INFO", "persistence"}).str; }
std::string PField(RedisClient& c, const std::string& field) { return InfoField(Persistence(c), field); }

std::string ConfigGet(RedisClient& c, const std::string& name) {
  const Reply r = c.Command({"CONFIG", "GET", name});
  return r.elements.size() == 2 ? r.elements[1].str : "<" + r.ToString() + ">";
}

// The exit status as "exit <n>" / "signal <n>" / "timeout", for readable assertions.
std::string ExitText(int status) {
  if (status == -1) return "timeout";
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// True once the server on `port` has finished the persistence part of its startup:
// not loading, the AOF open and journaling if appendonly is yes, and
// aof-enqueue-jobs-once reset after a load.
//
// ServerProcess::Start and Restart return at the first PONG, which the server now
// gives only once all of that is done (it answers -LOADING until then); the tests
// still check it explicitly before their first command, so that a regression shows as
// a clear failure here rather than as a lost job later.
bool PersistenceReady(int port) {
  RedisClient c(port, 2000);
  if (!c.connected()) return false;
  const std::string info = Persistence(c);
  if (InfoField(info, "loading") != "0") return false;
  if (ConfigGet(c, "appendonly") == "yes" && InfoField(info, "aof_state") != "on") return false;
  return ConfigGet(c, "aof-enqueue-jobs-once") == "no";
}

::testing::AssertionResult Ready(ServerProcess& server, bool started) {
  if (!started) return ::testing::AssertionFailure() << server.error();
  if (!WaitFor([&] { return PersistenceReady(server.port()); }, 30s)) {
    return ::testing::AssertionFailure() << "persistence not ready:\n" << server.log();
  }
  return ::testing::AssertionSuccess();
}
::testing::AssertionResult StartReady(ServerProcess& server) { return Ready(server, server.Start()); }
::testing::AssertionResult RestartReady(ServerProcess& server) { return Ready(server, server.Restart()); }

// Starts (first) or restarts a server that must exit by itself (a damaged file); its
// exit as ExitText. What Start/Restart return is not relied on: before 522a71d the
// server answered PONG before it began loading, so they could report success first.
std::string RestartExpectingExit(ServerProcess& server, bool first = false) {
  if (first) {
    server.Start();
  } else {
    server.Restart();
  }
  return ExitText(server.WaitExit(30s));
}

// SIGKILL and restart on the same directory, port and config file.
::testing::AssertionResult KillAndRestart(ServerProcess& server) {
  const int status = server.Stop(SIGKILL);
  if (status == -1) return ::testing::AssertionFailure() << "did not die on SIGKILL";
  return RestartReady(server);
}

// Sends SHUTDOWN [args] and expects the connection to close without a reply and the
// process to exit 0.
::testing::AssertionResult ShutdownQuietly(ServerProcess& server, const Args& args) {
  RawConnection raw(server.port());
  Args cmd{"SHUTDOWN"};
  cmd.insert(cmd.end(), args.begin(), args.end());
  if (!raw.Send(Multibulk(cmd))) return ::testing::AssertionFailure() << "send failed";
  bool closed = false;
  const std::string got = raw.ReadUntilClose(&closed, 30000);
  if (!got.empty() || !closed) {
    return ::testing::AssertionFailure() << "SHUTDOWN replied '" << got << "' closed=" << closed;
  }
  const int status = server.WaitExit(30s);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return ::testing::AssertionFailure() << "exit: " << ExitText(status) << "\n" << server.log();
  }
  return ::testing::AssertionSuccess();
}

ServerOptions Options(int threads, std::vector<std::string> lines) {
  ServerOptions o;
  o.threads = threads;
  o.config_lines = std::move(lines);
  return o;
}

std::string AofPath(const ServerProcess& s, const std::string& name = "disque.aof") {
  return s.dir() + "/" + name;
}

// ---------------------------------------------------------------------------------
// Tests parameterized on --threads.

class PersistenceTest : public ::testing::TestWithParam<int> {
 protected:
  int threads() const { return GetParam(); }
};

// What a job's life writes, record by record and byte by byte: LOADJOB at ADDJOB (in
// the state of that moment, with absolute etime), DELJOB at ACKJOB, FASTACK and DELJOB,
// nothing for GETJOB, NACK, WORKING, DEQUEUE or ENQUEUE. A restart loads it back
// without journaling the load again.
TEST_P(PersistenceTest, FileRecordsEachJobsCreationAndRemoval) {
  ServerProcess server(Options(threads(), {"appendonly yes", "appendfilename jobs.aof", "appendfsync always"}));
  ASSERT_TRUE(StartReady(server));
  const std::string path = AofPath(server, "jobs.aof");
  EXPECT_EQ(ReadFile(path), ExpectedHeader()) << "a missing file is created with its header";
  EXPECT_FALSE(Exists(AofPath(server))) << "appendfilename is used, not the default name";
  RedisClient c(server.port());
  EXPECT_EQ(ConfigGet(c, "appendonly"), "yes");
  EXPECT_EQ(ConfigGet(c, "appendfsync"), "always");
  {
    const std::string info = Persistence(c);
    EXPECT_EQ(InfoField(info, "loading"), "0") << info;
    EXPECT_EQ(InfoField(info, "aof_enabled"), "1") << info;
    EXPECT_EQ(InfoField(info, "aof_state"), "on") << info;
    EXPECT_EQ(InfoField(info, "aof_rewrite_in_progress"), "0") << info;
    EXPECT_EQ(InfoField(info, "aof_last_write_status"), "ok") << info;
    EXPECT_EQ(InfoField(info, "aof_current_size"), "16") << info;
    EXPECT_EQ(InfoField(info, "aof_base_size"), "16") << info;
  }
  const std::string myid = c.Command({"CLUSTER", "MYID"}).str;
  ASSERT_TRUE(IsNodeId(myid)) << myid;

  const std::string binary_body("two\r\nlines\0and a zero", 21);
  const int64_t t0 = NowS();
  const std::string j1 = AddJob(c, "q1", "body one", {"TTL", "100", "RETRY", "7"});
  const std::string j2 = AddJob(c, "q2", binary_body, {"DELAY", "5", "TTL", "200", "RETRY", "9"});
  const std::string j3 = AddJob(c, "q1", "at most once", {"REPLICATE", "1", "RETRY", "0"});
  const std::string j4 = AddJob(c, "q3", "default options");
  const int64_t t1 = NowS();
  for (const auto& id : {j1, j2, j3, j4}) ASSERT_EQ(id.rfind("D-", 0), 0u) << id;

  // Each reply came after its record was written: the file already has all four.
  const uint64_t size_after_adds = FileSize(path);
  {
    const AofFile f = ParseAof(path);
    ASSERT_EQ(f.error, "");
    EXPECT_EQ(f.Summary(), (std::vector<std::string>{"L " + j1, "L " + j2, "L " + j3, "L " + j4}));
  }

  // Delivery, NACK, WORKING, DEQUEUE and ENQUEUE are not logged.
  const Reply got = c.Command({"GETJOB", "NOHANG", "FROM", "q1"});
  ASSERT_EQ(got.elements.size(), 1u) << got.ToString();
  ASSERT_EQ(got.elements[0].elements.at(1).str, j1);
  EXPECT_EQ(c.Command({"NACK", j1}).ToString(), ":1");
  EXPECT_EQ(c.Command({"DEQUEUE", j4}).ToString(), ":1");
  EXPECT_EQ(c.Command({"ENQUEUE", j4}).ToString(), ":1");
  EXPECT_EQ(c.Command({"WORKING", j4}).type, Type::kInteger);
  EXPECT_EQ(FileSize(path), size_after_adds);

  EXPECT_EQ(c.Command({"ACKJOB", j1}).ToString(), ":1");
  EXPECT_EQ(c.Command({"FASTACK", j3}).ToString(), ":1");
  EXPECT_EQ(c.Command({"DELJOB", j4}).ToString(), ":1");

  const AofFile f = ParseAof(path);
  ASSERT_EQ(f.error, "");
  ASSERT_EQ(f.Summary(), (std::vector<std::string>{"L " + j1, "L " + j2, "L " + j3, "L " + j4, "D " + j1, "D " + j3,
                                                   "D " + j4}));
  EXPECT_EQ(f.size, FileSize(path));
  EXPECT_EQ(InfoField(Persistence(c), "aof_current_size"), std::to_string(f.size));

  const AofJob& r1 = f.records[0].job;
  EXPECT_EQ(r1.state, 2) << "queued at creation";
  EXPECT_EQ(r1.repl, 1);
  EXPECT_EQ(r1.delay, 0u);
  EXPECT_EQ(r1.retry, 7u);
  EXPECT_EQ(r1.nacks, 0);
  EXPECT_EQ(r1.deliveries, 0);
  EXPECT_EQ(r1.queue, "q1");
  EXPECT_EQ(r1.body, "body one");
  EXPECT_GE(static_cast<int64_t>(r1.etime), t0 + 100) << "absolute unix seconds";
  EXPECT_LE(static_cast<int64_t>(r1.etime), t1 + 101);
  EXPECT_GE(static_cast<int64_t>(r1.ctime / 1000000000), t0 - 1) << "ms * 1e6";
  EXPECT_LE(static_cast<int64_t>(r1.ctime / 1000000000), t1 + 1);
  EXPECT_EQ(r1.nodes, std::vector<std::string>{myid});
  EXPECT_EQ(r1.flags & 4, 0) << "not delivered yet";

  const AofJob& r2 = f.records[1].job;
  EXPECT_EQ(r2.state, 1) << "a delayed job is active";
  EXPECT_EQ(r2.delay, 5u);
  EXPECT_EQ(r2.retry, 9u);
  EXPECT_EQ(r2.queue, "q2");
  EXPECT_EQ(r2.body, binary_body);
  EXPECT_GE(static_cast<int64_t>(r2.etime), t0 + 200);
  EXPECT_LE(static_cast<int64_t>(r2.etime), t1 + 201);

  EXPECT_EQ(f.records[2].job.retry, 0u);
  EXPECT_EQ(f.records[2].job.body, "at most once");
  EXPECT_EQ(f.records[3].job.retry, 300u) << "default RETRY for TTL 86400";
  for (int i = 4; i < 7; ++i) EXPECT_EQ(f.records[static_cast<size_t>(i)].payload.size(), 40u);

  // Only j2 survives a crash, with its fields.
  ASSERT_TRUE(KillAndRestart(server));
  RedisClient c2(server.port());
  for (const auto& id : {j1, j3, j4}) EXPECT_FALSE(Show(c2, id).known) << id;
  const Shown s2 = Show(c2, j2);
  ASSERT_TRUE(s2.known) << s2.error;
  EXPECT_EQ(s2.Str("queue"), "q2");
  EXPECT_EQ(s2.Str("state"), "active");
  EXPECT_EQ(s2.Str("body"), binary_body);
  EXPECT_EQ(s2.Int("delay"), 5);
  EXPECT_EQ(s2.Int("retry"), 9);
  EXPECT_EQ(s2.Int("ctime"), static_cast<int64_t>(r2.ctime));
  EXPECT_LE(s2.Int("ttl"), 200);
  EXPECT_GE(s2.Int("ttl"), 200 - (NowS() - t0) - 2);
  EXPECT_EQ(s2.List("nodes-delivered"), std::vector<std::string>{myid});
  EXPECT_EQ(AllJobIds(c2), std::set<std::string>{j2});
  // Loading journals nothing again: the file is as it was, and is the new base size.
  EXPECT_EQ(FileSize(path), f.size);
  EXPECT_EQ(PField(c2, "aof_base_size"), std::to_string(f.size));
  EXPECT_NE(server.log().find("DB loaded from append only file"), std::string::npos) << server.log();
  // New records go after the loaded ones.
  const std::string j5 = AddJob(c2, "q1", "after restart");
  const AofFile again = ParseAof(path);
  ASSERT_EQ(again.error, "");
  ASSERT_EQ(again.records.size(), 8u);
  EXPECT_EQ(again.records[7].job.id, j5);
}

// A crash while several clients add and acknowledge jobs, under each fsync policy:
// every job whose ADDJOB was answered is back with its queue, body, retry and TTL;
// every job whose ACKJOB was answered stays gone. A SIGKILL is not a power loss, so
// `everysec` and `no` keep everything answered too (replies wait for write()).
class KillNineTest : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(KillNineTest, EveryAnsweredJobSurvivesSigkill) {
  const auto& [policy, threads] = GetParam();
  ServerProcess server(Options(threads, {"appendonly yes", "appendfsync " + policy}));
  ASSERT_TRUE(StartReady(server));
  const int64_t t0 = NowS();

  constexpr int kProducers = 4;
  constexpr int kTarget = 240;  // answered ADDJOBs before the kill
  struct Producer {
    std::mutex mu;
    std::vector<std::pair<std::string, std::string>> added;  // id, body
    std::set<std::string> acked;
    std::string add_in_flight;  // body of an ADDJOB sent but not answered
    std::string ack_in_flight;  // id of an ACKJOB sent but not answered
    std::string stopped_by;
  };
  std::vector<std::unique_ptr<Producer>> producers;
  for (int p = 0; p < kProducers; ++p) producers.push_back(std::make_unique<Producer>());
  std::atomic<int> answered{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int p = 0; p < kProducers; ++p) {
    workers.emplace_back([&, p] {
      Producer& me = *producers[static_cast<size_t>(p)];
      RedisClient c(server.port());
      const std::string queue = "kq" + std::to_string(p);
      for (int i = 0; !stop.load() && i < 100000; ++i) {
        const std::string body = "p" + std::to_string(p) + "-" + std::to_string(i) + std::string(static_cast<size_t>(i % 50), 'x');
        {
          std::lock_guard lock(me.mu);
          me.add_in_flight = body;
        }
        const Reply r = c.Command({"ADDJOB", queue, body, "0", "TTL", "600", "RETRY", "30"});
        std::unique_lock lock(me.mu);
        if (r.type != Type::kStatus) {
          me.stopped_by = r.ToString() + " " + c.error();
          return;
        }
        me.add_in_flight.clear();
        me.added.emplace_back(r.str, body);
        answered.fetch_add(1);
        if (i % 4 != 3) continue;
        // Acknowledge the job added two steps before.
        const std::string victim = me.added[me.added.size() - 3].first;
        me.ack_in_flight = victim;
        lock.unlock();
        const Reply a = c.Command({"ACKJOB", victim});
        lock.lock();
        if (a.ToString() != ":1") {
          me.stopped_by = a.ToString() + " " + c.error();
          return;
        }
        me.acked.insert(victim);
        me.ack_in_flight.clear();
      }
    });
  }
  const bool enough = WaitFor([&] { return answered.load() >= kTarget; }, 60s);
  const int kill_status = server.Stop(SIGKILL);
  stop.store(true);
  for (auto& w : workers) w.join();
  ASSERT_TRUE(enough) << "only " << answered.load() << " jobs answered";
  ASSERT_NE(kill_status, -1);
  ASSERT_TRUE(RestartReady(server));

  RedisClient c(server.port());
  const std::set<std::string> present = AllJobIds(c);
  std::set<std::string> expected, maybe;
  std::set<std::string> in_flight_bodies;
  int checked = 0;
  for (auto& pp : producers) {
    Producer& p = *pp;
    if (!p.add_in_flight.empty()) in_flight_bodies.insert(p.add_in_flight);
    if (!p.ack_in_flight.empty()) maybe.insert(p.ack_in_flight);
    for (const auto& [id, body] : p.added) {
      if (p.acked.count(id) != 0) {
        EXPECT_EQ(present.count(id), 0u) << "acked job resurrected: " << id;
        continue;
      }
      if (maybe.count(id) != 0) continue;
      expected.insert(id);
      EXPECT_EQ(present.count(id), 1u) << "answered job lost: " << id << " (" << body << ")";
      // Full check of a sample (every 7th), SHOW costs a round trip each.
      if (++checked % 7 == 0 || p.added.back().first == id) {
        const Shown s = Show(c, id);
        ASSERT_TRUE(s.known) << id;
        EXPECT_EQ(s.Str("body"), body);
        EXPECT_EQ(s.Str("queue"), "kq" + body.substr(1, body.find('-') - 1));
        EXPECT_EQ(s.Str("state"), "active") << "a queued job is loaded active";
        EXPECT_EQ(s.Int("retry"), 30);
        EXPECT_LE(s.Int("ttl"), 600);
        EXPECT_GE(s.Int("ttl"), 600 - (NowS() - t0) - 2);
      }
    }
  }
  // Beyond the answered jobs, only an unanswered ADDJOB per producer may have made it.
  for (const auto& id : present) {
    if (expected.count(id) != 0 || maybe.count(id) != 0) continue;
    const Shown s = Show(c, id);
    EXPECT_EQ(in_flight_bodies.count(s.Str("body")), 1u) << "unexpected job " << id << " body " << s.Str("body");
  }
  EXPECT_LE(present.size(), expected.size() + maybe.size() + in_flight_bodies.size());
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(Qlen(c, "kq" + std::to_string(p)), 0);
  // The file the server loaded is valid throughout, up to a torn last record at most.
  const AofFile f = ParseAof(AofPath(server));
  EXPECT_EQ(f.error, "");
}

INSTANTIATE_TEST_SUITE_P(Policies, KillNineTest,
                         ::testing::Combine(::testing::Values("always", "everysec", "no"), ::testing::Values(1, 4)),
                         [](const auto& param_info) {
                           return std::get<0>(param_info.param) + "_threads" + std::to_string(std::get<1>(param_info.param));
                         });

// A restart without aof-enqueue-jobs-once: queued and active jobs come back active
// (QLEN 0); an at-least-once job is requeued about DELAY + RETRY seconds later, an
// at-most-once job never; a job whose TTL passed while the server was down, and an
// acked one, are not loaded.
TEST_P(PersistenceTest, RestartLoadsJobsActiveAndRequeuesAfterRetry) {
  ServerProcess server(Options(threads(), {"appendonly yes"}));
  ASSERT_TRUE(StartReady(server));
  RedisClient c(server.port());
  const std::string delivered = AddJob(c, "rq", "delivered", {"RETRY", "2", "TTL", "60"});
  const Reply got = c.Command({"GETJOB", "NOHANG", "FROM", "rq"});
  ASSERT_EQ(got.elements.size(), 1u) << got.ToString();
  ASSERT_EQ(got.elements[0].elements.at(1).str, delivered);
  const std::string queued = AddJob(c, "rq", "queued", {"RETRY", "2", "TTL", "60"});
  const std::string delayed = AddJob(c, "rq", "delayed", {"DELAY", "1", "RETRY", "2", "TTL", "60"});
  const std::string amo = AddJob(c, "rq", "at most once", {"REPLICATE", "1", "RETRY", "0", "TTL", "60"});
  const std::string shortlived = AddJob(c, "rq", "short", {"TTL", "2"});
  const std::string acked = AddJob(c, "rq", "acked", {"TTL", "60"});
  ASSERT_EQ(c.Command({"ACKJOB", acked}).ToString(), ":1");

  // The short job's absolute expire time, from the file.
  const AofFile f = ParseAof(AofPath(server));
  ASSERT_EQ(f.error, "");
  const auto live = f.Replay();
  ASSERT_EQ(live.size(), 5u);
  ASSERT_EQ(live.count(shortlived), 1u);
  const int64_t etime = live.at(shortlived).etime;

  ASSERT_NE(server.Stop(SIGKILL), -1);
  ASSERT_TRUE(WaitFor([&] { return NowS() >= etime; }, 10s));
  ASSERT_TRUE(RestartReady(server));
  RedisClient c2(server.port());
  EXPECT_EQ(Qlen(c2, "rq"), 0) << "nothing is queued at load";
  EXPECT_FALSE(Show(c2, shortlived).known) << "expired while the server was down";
  EXPECT_FALSE(Show(c2, acked).known);
  const Shown q = Show(c2, queued), d = Show(c2, delivered), dl = Show(c2, delayed), a = Show(c2, amo);
  for (const Shown* s : {&q, &d, &dl, &a}) {
    ASSERT_TRUE(s->known) << s->error;
    EXPECT_EQ(s->Str("state"), "active");
  }
  EXPECT_TRUE(a.IsNil("next-requeue-within")) << "RETRY 0: never requeued";
  // now + (DELAY + RETRY) s, -250..+249 ms, read a moment after the load.
  EXPECT_LE(q.Int("next-requeue-within"), 2250);
  EXPECT_GE(q.Int("next-requeue-within"), 0);
  EXPECT_LE(dl.Int("next-requeue-within"), 3250);
  // At least 501 ms apart at load; less the time between the two SHOWs.
  EXPECT_GE(dl.Int("next-requeue-within") - q.Int("next-requeue-within"), 300) << "DELAY counts too";
  EXPECT_EQ(AllJobIds(c2), (std::set<std::string>{queued, delivered, delayed, amo}));

  // The two RETRY 2 jobs come back (`delayed` a second later, not waited for).
  ASSERT_TRUE(WaitFor([&] { return Qlen(c2, "rq") >= 2; }, 15s)) << Qlen(c2, "rq");
  std::set<std::string> requeued;
  for (const auto& e : Peek(c2, "rq")) requeued.insert(e.substr(0, e.find(' ')));
  EXPECT_EQ(requeued.count(queued), 1u);
  EXPECT_EQ(requeued.count(delivered), 1u);
  EXPECT_EQ(requeued.count(amo), 0u);
  EXPECT_EQ(Show(c2, amo).Str("state"), "active");
}

// The controlled restart (PROTOCOL.md 8.3): aof-enqueue-jobs-once yes, CONFIG REWRITE,
// SHUTDOWN REWRITE-AOF. The same jobs come back queued in the same order, with their
// counters; delivered jobs stay active; the option resets itself, in the file too.
class ControlledRestartTest : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(ControlledRestartTest, QueuesComeBackInTheSameOrder) {
  const auto [threads, appendonly] = GetParam();
  ServerProcess server(Options(threads, {appendonly ? "appendonly yes" : "appendonly no"}));
  ASSERT_TRUE(StartReady(server));
  RedisClient c(server.port());
  const std::vector<std::string> q1 = AddJobs(c, "cq1", "one-", 200, {"RETRY", "30", "TTL", "3600"});
  const std::vector<std::string> q2 = AddJobs(c, "cq2", "two-", 50, {"DELAY", "0", "TTL", "1800"});
  const std::string amo = AddJob(c, "cq1", "at most once", {"REPLICATE", "1", "RETRY", "0"});
  // nacked: NACKed twice (nacks 2). enqueued: delivered, then ENQUEUE (additional-
  // deliveries 1). active: delivered, not acked. acked: gone.
  const Reply got = c.Command({"GETJOB", "NOHANG", "COUNT", "3", "FROM", "cq1"});
  ASSERT_EQ(got.elements.size(), 3u) << got.ToString();
  const std::string nacked = got.elements[0].elements.at(1).str;
  const std::string enqueued = got.elements[1].elements.at(1).str;
  const std::string active = got.elements[2].elements.at(1).str;
  ASSERT_EQ(c.Command({"NACK", nacked}).ToString(), ":1");
  ASSERT_EQ(c.Command({"DEQUEUE", nacked}).ToString(), ":1");
  ASSERT_EQ(c.Command({"NACK", nacked}).ToString(), ":1");
  ASSERT_EQ(c.Command({"ENQUEUE", enqueued}).ToString(), ":1");
  const std::string acked = q1[100];
  ASSERT_EQ(c.Command({"ACKJOB", acked}).ToString(), ":1");

  const std::vector<std::string> peek1 = Peek(c, "cq1"), peek2 = Peek(c, "cq2");
  ASSERT_EQ(peek1.size(), 200u - 3 - 1 + 2 + 1);
  ASSERT_EQ(peek2.size(), 50u);
  std::map<std::string, Shown> before;
  for (const auto& id : {nacked, enqueued, active, amo, q1[150], q2[0], q2[49]}) before[id] = Show(c, id);
  ASSERT_EQ(before[nacked].Int("nacks"), 2);
  ASSERT_EQ(before[enqueued].Int("additional-deliveries"), 1);
  const std::set<std::string> ids_before = AllJobIds(c);
  ASSERT_EQ(ids_before.size(), 250u);
  const int64_t t_before = NowS();

  ASSERT_EQ(c.Command({"CONFIG", "SET", "aof-enqueue-jobs-once", "yes"}).ToString(), "+OK");
  ASSERT_EQ(c.Command({"CONFIG", "REWRITE"}).ToString(), "+OK");
  EXPECT_NE(ReadFile(server.config_path()).find("aof-enqueue-jobs-once yes"), std::string::npos);
  EXPECT_EQ(c.Command({"SHUTDOWN", "REWRITE-AOF", "NOW"}).ToString(), "-ERR syntax error");
  EXPECT_EQ(c.Command({"SHUTDOWN", "REWRITE"}).ToString(), "-ERR syntax error");
  ASSERT_TRUE(ShutdownQuietly(server, {"REWRITE-AOF"}));

  // The rewritten file holds exactly the live jobs, in their current state.
  const AofFile f = ParseAof(AofPath(server));
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.LiveIds(), ids_before);
  EXPECT_EQ(f.records.size(), 250u) << "one LOADJOB per job, no DELJOB";
  const auto live = f.Replay();
  EXPECT_EQ(live.at(nacked).state, 2);
  EXPECT_EQ(live.at(nacked).nacks, 2);
  EXPECT_EQ(live.at(enqueued).deliveries, 1);
  EXPECT_EQ(live.at(active).state, 1);
  EXPECT_TRUE(RewriteTempFiles(server.dir()).empty());

  ASSERT_TRUE(RestartReady(server));
  RedisClient c2(server.port());
  EXPECT_EQ(ConfigGet(c2, "aof-enqueue-jobs-once"), "no");
  const std::string conf = ReadFile(server.config_path());
  EXPECT_NE(conf.find("aof-enqueue-jobs-once no"), std::string::npos) << conf;
  EXPECT_EQ(conf.find("aof-enqueue-jobs-once yes"), std::string::npos) << conf;
  EXPECT_EQ(Peek(c2, "cq1"), peek1);
  EXPECT_EQ(Peek(c2, "cq2"), peek2);
  EXPECT_EQ(AllJobIds(c2), ids_before);
  EXPECT_FALSE(Show(c2, acked).known);
  for (const auto& [id, old] : before) {
    const Shown now = Show(c2, id);
    ASSERT_TRUE(now.known) << id;
    for (const char* field : {"queue", "state", "body"}) EXPECT_EQ(now.Str(field), old.Str(field)) << id << " " << field;
    for (const char* field : {"repl", "ctime", "delay", "retry", "nacks", "additional-deliveries"}) {
      EXPECT_EQ(now.Int(field), old.Int(field)) << id << " " << field;
    }
    EXPECT_LE(now.Int("ttl"), old.Int("ttl"));
    EXPECT_GE(now.Int("ttl"), old.Int("ttl") - (NowS() - t_before) - 2) << id;
  }
  EXPECT_EQ(Show(c2, active).Str("state"), "active");
  EXPECT_EQ(Show(c2, amo).Str("state"), "queued") << "RETRY 0 jobs are requeued too (a deliberate difference)";

  // The option really is off now: another restart loads nothing when appendonly is no.
  ASSERT_NE(server.Stop(SIGTERM), -1);
  ASSERT_TRUE(RestartReady(server));
  RedisClient c3(server.port());
  if (appendonly) {
    EXPECT_EQ(Qlen(c3, "cq1"), 0) << "loaded active";
    EXPECT_EQ(AllJobIds(c3), ids_before);
  } else {
    EXPECT_TRUE(AllJobIds(c3).empty());
  }
}

// SHUTDOWN REWRITE-AOF with appendonly no while producers keep going: clients are
// served during the rewrite (Disque blocks instead), so every job confirmed before the
// connection closed must be in the file, whether the snapshot saw it or not.
TEST_P(ControlledRestartTest, JobsConfirmedDuringTheShutdownRewriteAreKept) {
  const auto [threads, appendonly] = GetParam();
  ServerProcess server(Options(threads, {appendonly ? "appendonly yes" : "appendonly no"}));
  ASSERT_TRUE(StartReady(server));
  RedisClient c(server.port());
  const std::vector<std::string> before = AddJobs(c, "sq", "before-", 500);
  // Each shard's part of the snapshot is followed by 200 ms: a window for the producer.
  ASSERT_EQ(c.Command({"DEBUG", "AOF-REWRITE-DELAY", "200"}).ToString(), "+OK");

  std::atomic<bool> stop{false};
  std::vector<std::string> confirmed;
  std::thread producer([&] {
    RedisClient p(server.port());
    for (int i = 0; !stop.load(); ++i) {
      const Reply r = p.Command({"ADDJOB", "sq", "during-" + std::to_string(i), "0"});
      if (r.type != Type::kStatus) break;  // the connection closed: the server is exiting
      confirmed.push_back(r.str);
    }
  });
  // The producer runs before, during and after the rewrite, until the server exits.
  const bool producing = WaitFor([&] { return Qlen(c, "sq") > 600; }, 10s);
  const ::testing::AssertionResult shut =
      producing ? ShutdownQuietly(server, {"REWRITE-AOF"}) : ::testing::AssertionFailure() << "no jobs added";
  stop.store(true);
  producer.join();
  ASSERT_TRUE(shut);
  ASSERT_GT(confirmed.size(), 100u);

  const AofFile f = ParseAof(AofPath(server));
  ASSERT_EQ(f.error, "");
  const std::set<std::string> in_file = f.LiveIds();
  for (const std::string& id : before) EXPECT_EQ(in_file.count(id), 1u) << id;
  size_t missing = 0;
  for (const std::string& id : confirmed) missing += in_file.count(id) == 0 ? 1 : 0;
  EXPECT_EQ(missing, 0u) << "of " << confirmed.size() << " jobs confirmed while the rewrite ran";
}

INSTANTIATE_TEST_SUITE_P(Threads, ControlledRestartTest,
                         ::testing::Combine(::testing::Values(1, 4), ::testing::Bool()), [](const auto& param_info) {
                           return "threads" + std::to_string(std::get<0>(param_info.param)) +
                                  (std::get<1>(param_info.param) ? "_appendonly" : "_no_appendonly");
                         });

// BGREWRITEAOF: one at a time, compaction (acked jobs leave no trace), the current
// state of each job, the commands that ran meanwhile kept, the temp file renamed over
// the AOF, and the result loaded after a crash.
TEST_P(PersistenceTest, BgRewriteAofCompactsAndKeepsConcurrentWrites) {
  ServerProcess server(Options(threads(), {"appendonly yes"}));
  ASSERT_TRUE(StartReady(server));
  const std::string path = AofPath(server);
  RedisClient c(server.port());
  std::vector<std::string> ids = AddJobs(c, "bq", "job-", 3000, {"TTL", "3600", "RETRY", "60"});
  ASSERT_EQ(ids.front().rfind("D-", 0), 0u) << ids.front();
  const std::vector<std::string> acked_first(ids.begin(), ids.begin() + 1000);
  ASSERT_EQ(AckAll(c, acked_first), 1000);
  const Reply got = c.Command({"GETJOB", "NOHANG", "COUNT", "2", "FROM", "bq"});
  ASSERT_EQ(got.elements.size(), 2u);
  const std::string nacked = got.elements[0].elements.at(1).str;
  const std::string delivered = got.elements[1].elements.at(1).str;
  ASSERT_EQ(c.Command({"NACK", nacked}).ToString(), ":1");
  const uint64_t size_before = FileSize(path);
  ASSERT_EQ(ParseAof(path).records.size(), 4000u);

  ASSERT_EQ(c.Command({"DEBUG", "AOF-REWRITE-DELAY", "300"}).ToString(), "+OK");
  ASSERT_EQ(c.Command({"BGREWRITEAOF"}).ToString(), kRewriteStarted);
  EXPECT_EQ(c.Command({"BGREWRITEAOF"}).ToString(), kRewriteRunning);
  {
    const std::string info = Persistence(c);
    EXPECT_EQ(InfoField(info, "aof_rewrite_in_progress"), "1") << info;
    EXPECT_NE(InfoField(info, "aof_current_rewrite_time_sec"), "-1") << info;
  }
  // While it runs: new jobs and acknowledgements of old ones.
  const std::vector<std::string> added_during = AddJobs(c, "bq", "during-", 10);
  const std::vector<std::string> acked_during(ids.begin() + 1100, ids.begin() + 1110);
  ASSERT_EQ(AckAll(c, acked_during), 10);
  EXPECT_EQ(PField(c, "aof_rewrite_in_progress"), "1") << "the delay keeps it running";

  ASSERT_TRUE(WaitFor([&] { return PField(c, "aof_rewrite_in_progress") == "0"; }, 30s));
  ASSERT_EQ(c.Command({"DEBUG", "AOF-REWRITE-DELAY", "0"}).ToString(), "+OK");
  const std::string info = Persistence(c);
  EXPECT_EQ(InfoField(info, "aof_last_bgrewrite_status"), "ok") << info;
  EXPECT_EQ(InfoField(info, "aof_current_rewrite_time_sec"), "-1") << info;
  EXPECT_NE(InfoField(info, "aof_last_rewrite_time_sec"), "-1") << info;
  EXPECT_TRUE(RewriteTempFiles(server.dir()).empty());
  EXPECT_NE(server.log().find("Background AOF rewrite finished successfully"), std::string::npos);

  std::set<std::string> expected(ids.begin() + 1000, ids.end());
  for (const auto& id : acked_during) expected.erase(id);
  expected.insert(added_during.begin(), added_during.end());
  ASSERT_EQ(expected.size(), 2000u);
  EXPECT_EQ(AllJobIds(c), expected);
  const AofFile f = ParseAof(path);
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.LiveIds(), expected);
  EXPECT_LT(f.size, size_before);
  EXPECT_EQ(InfoField(info, "aof_current_size"), std::to_string(f.size));
  EXPECT_EQ(InfoField(info, "aof_base_size"), std::to_string(f.size));
  // A job appears at most twice (in the snapshot and in the capture); the 1000 acked
  // before the rewrite not at all.
  std::map<std::string, int> seen;
  for (const auto& r : f.records) ++seen[r.job.id];
  for (const auto& id : acked_first) EXPECT_EQ(seen.count(id), 0u) << id;
  // Snapshot: at most the 2000 live, the 10 added and the 10 acked meanwhile; capture:
  // 10 LOADJOB and 10 DELJOB.
  EXPECT_LE(f.records.size(), 2000u + 10 + 10 + 20);
  // The current state, not the state at creation.
  const auto live = f.Replay();
  EXPECT_EQ(live.at(nacked).state, 2);
  EXPECT_EQ(live.at(nacked).nacks, 1);
  EXPECT_EQ(live.at(delivered).state, 1);
  EXPECT_NE(live.at(delivered).flags & 4, 0) << "delivered by this node";

  ASSERT_TRUE(KillAndRestart(server));
  RedisClient c2(server.port());
  EXPECT_EQ(AllJobIds(c2), expected);
  EXPECT_EQ(Show(c2, nacked).Int("nacks"), 1);
  EXPECT_EQ(Show(c2, ids.back()).Str("body"), "job-2999");
}

// SHUTDOWN REWRITE-AOF with appendonly no journals without turning the AOF on: while
// it runs the state stays off, CONFIG SET appendonly yes is refused as during any
// rewrite (and the config keeps saying no), and the server still exits with the file.
TEST_P(PersistenceTest, ShutdownRewriteWithTheAofOffLeavesItOff) {
  ServerProcess server(Options(threads(), {"appendonly no"}));
  ASSERT_TRUE(StartReady(server));
  RedisClient c(server.port());
  const std::vector<std::string> ids = AddJobs(c, "oq", "job-", 100);
  ASSERT_EQ(c.Command({"DEBUG", "AOF-REWRITE-DELAY", "1000"}).ToString(), "+OK");
  RawConnection shut(server.port());
  ASSERT_TRUE(shut.Send(Multibulk({"SHUTDOWN", "REWRITE-AOF"})));
  ASSERT_TRUE(WaitFor([&] { return PField(c, "aof_rewrite_in_progress") == "1"; }, 10s));
  EXPECT_EQ(PField(c, "aof_state"), "off");
  const Reply on = c.Command({"CONFIG", "SET", "appendonly", "yes"});
  EXPECT_NE(on.ToString().find("Unable to turn on AOF"), std::string::npos) << on.ToString();
  EXPECT_EQ(ConfigGet(c, "appendonly"), "no");
  EXPECT_EQ(PField(c, "aof_state"), "off");

  bool closed = false;
  EXPECT_EQ(shut.ReadUntilClose(&closed, 30000), "");
  EXPECT_TRUE(closed);
  const int status = server.WaitExit(30s);
  ASSERT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << ExitText(status) << server.log();
  const AofFile f = ParseAof(AofPath(server));
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.LiveIds(), std::set<std::string>(ids.begin(), ids.end()));
}

// SIGKILL in the middle of a rewrite: the AOF is only ever replaced by a rename, so
// the old file is complete, including what was written while the rewrite ran.
TEST_P(PersistenceTest, SigkillDuringRewriteLeavesACompleteAof) {
  ServerProcess server(Options(threads(), {"appendonly yes"}));
  ASSERT_TRUE(StartReady(server));
  const std::string path = AofPath(server);
  RedisClient c(server.port());
  // Several queues, so that the shards (which own whole queues) all have jobs: the
  // delay applies to every slice, empty ones included.
  std::vector<std::string> ids;
  for (int q = 0; q < 4; ++q) {
    const std::vector<std::string> some = AddJobs(c, "kq" + std::to_string(q), "job-", 750, {"TTL", "3600"});
    ids.insert(ids.end(), some.begin(), some.end());
  }
  ASSERT_EQ(AckAll(c, std::vector<std::string>(ids.begin(), ids.begin() + 500)), 500);
  ASSERT_EQ(c.Command({"DEBUG", "AOF-REWRITE-DELAY", "1000"}).ToString(), "+OK");
  ASSERT_EQ(c.Command({"BGREWRITEAOF"}).ToString(), kRewriteStarted);
  // The first slice is in the temp file: the rewrite is under way.
  const std::string temp = server.dir() + "/temp-rewriteaof-bg-" + std::to_string(server.pid()) + ".aof";
  ASSERT_TRUE(WaitFor([&] { return FileSize(temp) > 16; }, 10s)) << "no temp file " << temp;
  const std::vector<std::string> during = AddJobs(c, "kq0", "during-", 5);
  ASSERT_EQ(c.Command({"ACKJOB", ids[600]}).ToString(), ":1");
  EXPECT_EQ(PField(c, "aof_rewrite_in_progress"), "1");
  ASSERT_NE(server.Stop(SIGKILL), -1);

  std::set<std::string> expected(ids.begin() + 500, ids.end());
  expected.erase(ids[600]);
  expected.insert(during.begin(), during.end());
  const AofFile f = ParseAof(path);
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.LiveIds(), expected);
  ASSERT_TRUE(RestartReady(server));
  RedisClient c2(server.port());
  EXPECT_EQ(AllJobIds(c2), expected);
  // A rewrite works again after the restart (the leftover temp file is in the way of
  // nobody: its name has the dead PID).
  ASSERT_EQ(c2.Command({"BGREWRITEAOF"}).ToString(), kRewriteStarted);
  ASSERT_TRUE(WaitFor([&] { return PField(c2, "aof_rewrite_in_progress") == "0"; }, 30s));
  EXPECT_EQ(PField(c2, "aof_last_bgrewrite_status"), "ok");
  const AofFile g = ParseAof(path);
  ASSERT_EQ(g.error, "");
  EXPECT_EQ(g.LiveIds(), expected);
  EXPECT_EQ(g.records.size(), expected.size());
}

// BGREWRITEAOF with appendonly no writes the file anyway (PROTOCOL.md 6.15).
TEST_P(PersistenceTest, BgRewriteAofWorksWithAppendonlyNo) {
  ServerProcess server(Options(threads(), {"appendfilename snap.aof"}));
  ASSERT_TRUE(StartReady(server));
  RedisClient c(server.port());
  EXPECT_EQ(ConfigGet(c, "appendonly"), "no");
  EXPECT_EQ(PField(c, "aof_state"), "off");
  EXPECT_EQ(PField(c, "aof_current_size"), "") << "absent while off";
  const std::vector<std::string> ids = AddJobs(c, "sq", "s-", 20);
  EXPECT_FALSE(Exists(AofPath(server, "snap.aof")));
  ASSERT_EQ(c.Command({"BGREWRITEAOF"}).ToString(), kRewriteStarted);
  ASSERT_TRUE(WaitFor([&] { return PField(c, "aof_rewrite_in_progress") == "0"; }, 30s));
  const AofFile f = ParseAof(AofPath(server, "snap.aof"));
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.LiveIds(), std::set<std::string>(ids.begin(), ids.end()));
  // Still off: a new job is not appended.
  const uint64_t size = f.size;
  AddJob(c, "sq", "later");
  EXPECT_EQ(FileSize(AofPath(server, "snap.aof")), size);
  EXPECT_EQ(PField(c, "aof_state"), "off");
}

// CONFIG SET appendonly yes on a server holding jobs: wait-rewrite (SHUTDOWN refused
// meanwhile), then on, with every job in the file; appendonly no stops at once.
TEST_P(PersistenceTest, ConfigSetAppendonlyWritesExistingJobs) {
  ServerProcess server(Options(threads(), {}));
  ASSERT_TRUE(StartReady(server));
  const std::string path = AofPath(server);
  RedisClient c(server.port());
  std::vector<std::string> ids = AddJobs(c, "aq", "a-", 1500, {"TTL", "3600"});
  ASSERT_EQ(c.Command({"DEBUG", "AOF-REWRITE-DELAY", "400"}).ToString(), "+OK");
  ASSERT_EQ(c.Command({"CONFIG", "SET", "appendonly", "yes"}).ToString(), "+OK");
  {
    const std::string info = Persistence(c);
    EXPECT_EQ(InfoField(info, "aof_state"), "wait-rewrite") << info;
    EXPECT_EQ(InfoField(info, "aof_enabled"), "1") << info;
    EXPECT_EQ(InfoField(info, "aof_rewrite_in_progress"), "1") << info;
  }
  EXPECT_EQ(c.Command({"SHUTDOWN"}).ToString(), kShutdownFailed);
  EXPECT_EQ(c.Command({"BGREWRITEAOF"}).ToString(), kRewriteRunning);
  const std::string during = AddJob(c, "aq", "during");
  ASSERT_TRUE(WaitFor([&] { return PField(c, "aof_state") == "on"; }, 30s)) << Persistence(c);
  ASSERT_EQ(c.Command({"DEBUG", "AOF-REWRITE-DELAY", "0"}).ToString(), "+OK");
  const std::string after = AddJob(c, "aq", "after");
  ids.push_back(during);
  ids.push_back(after);
  const std::set<std::string> expected(ids.begin(), ids.end());
  const AofFile f = ParseAof(path);
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.LiveIds(), expected);
  ASSERT_EQ(c.Command({"CONFIG", "REWRITE"}).ToString(), "+OK");
  EXPECT_NE(ReadFile(server.config_path()).find("appendonly yes"), std::string::npos);

  ASSERT_TRUE(KillAndRestart(server));
  RedisClient c2(server.port());
  EXPECT_EQ(PField(c2, "aof_state"), "on");
  EXPECT_EQ(AllJobIds(c2), expected);

  ASSERT_EQ(c2.Command({"CONFIG", "SET", "appendonly", "no"}).ToString(), "+OK");
  const std::string info = Persistence(c2);
  EXPECT_EQ(InfoField(info, "aof_state"), "off") << info;
  EXPECT_EQ(InfoField(info, "aof_enabled"), "0") << info;
  const uint64_t size = FileSize(path);
  ASSERT_EQ(AddJob(c2, "aq", "not logged").rfind("D-", 0), 0u);
  ASSERT_EQ(c2.Command({"ACKJOB", ids[0]}).ToString(), ":1");
  EXPECT_EQ(FileSize(path), size);
}

// DEBUG AOF-FAULT: with everysec, a failed write turns write commands and PING into
// -MISCONF (reads still work); once writes succeed again (retried every second) the
// server recovers and the buffered records reach the file.
TEST_P(PersistenceTest, WriteErrorsGiveMisconfUntilTheWriteSucceeds) {
  ServerProcess server(Options(threads(), {"appendonly yes", "appendfsync everysec"}));
  ASSERT_TRUE(StartReady(server));
  RedisClient c(server.port());
  std::vector<std::string> ids = AddJobs(c, "fq", "f-", 10);
  EXPECT_EQ(c.Command({"DEBUG", "AOF-FAULT", "SOMETHING"}).ToString(), "-ERR DEBUG AOF-FAULT takes ENOSPC, EIO or OFF");

  ASSERT_EQ(c.Command({"DEBUG", "AOF-FAULT", "ENOSPC"}).ToString(), "+OK");
  EXPECT_EQ(c.Command({"PING"}).ToString(), "+PONG") << "no write has failed yet";
  // This write fails in the background; its reply is sent, as Disque sends it.
  const std::string during = AddJob(c, "fq", "during the fault");
  ASSERT_EQ(during.rfind("D-", 0), 0u) << during;
  ids.push_back(during);
  ASSERT_TRUE(WaitFor([&] { return c.Command({"PING"}).ToString() == kMisconfNoSpace; }, 5s))
      << c.Command({"PING"}).ToString();
  EXPECT_EQ(c.Command({"ADDJOB", "fq", "refused", "0"}).ToString(), kMisconfNoSpace);
  EXPECT_EQ(c.Command({"ACKJOB", ids[0]}).ToString(), kMisconfNoSpace);
  EXPECT_EQ(c.Command({"NACK", ids[1]}).ToString(), kMisconfNoSpace);
  EXPECT_EQ(Qlen(c, "fq"), 11) << "reads are served";
  EXPECT_EQ(Show(c, ids[0]).Str("state"), "queued");
  EXPECT_EQ(PField(c, "aof_last_write_status"), "err");
  EXPECT_NE(server.log().find("Error writing to the AOF file: No space left on device"), std::string::npos)
      << server.log();
  // Another errno shows in the message (the retry fails with it within a second).
  ASSERT_EQ(c.Command({"DEBUG", "AOF-FAULT", "EIO"}).ToString(), "+OK");
  EXPECT_TRUE(WaitFor([&] { return c.Command({"PING"}).ToString() == kMisconfEio; }, 5s))
      << c.Command({"PING"}).ToString();

  ASSERT_EQ(c.Command({"DEBUG", "AOF-FAULT", "OFF"}).ToString(), "+OK");
  ASSERT_TRUE(WaitFor([&] { return c.Command({"PING"}).ToString() == "+PONG"; }, 10s))
      << c.Command({"PING"}).ToString();
  EXPECT_EQ(PField(c, "aof_last_write_status"), "ok");
  EXPECT_NE(server.log().find("AOF write error looks solved"), std::string::npos);
  const std::string recovered = AddJob(c, "fq", "after recovery");
  ASSERT_EQ(recovered.rfind("D-", 0), 0u) << recovered;
  ids.push_back(recovered);
  const AofFile f = ParseAof(AofPath(server));
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.LiveIds(), std::set<std::string>(ids.begin(), ids.end()));

  ASSERT_TRUE(KillAndRestart(server));
  RedisClient c2(server.port());
  EXPECT_EQ(AllJobIds(c2), std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_EQ(Show(c2, during).Str("body"), "during the fault");
}

// A damaged or foreign file never loads silently.
TEST_P(PersistenceTest, ZeroLengthAndHeaderPrefixFilesLoadNothing) {
  ServerProcess server(Options(threads(), {"appendonly yes"}));
  WriteFile(AofPath(server), "");
  ASSERT_TRUE(StartReady(server));
  EXPECT_EQ(ReadFile(AofPath(server)), ExpectedHeader()) << "the header is written into an empty file";
  ASSERT_NE(server.Stop(SIGKILL), -1);
  // A crash while creating the file: part of the header.
  WriteFile(AofPath(server), ExpectedHeader().substr(0, 7));
  ASSERT_TRUE(RestartReady(server));
  EXPECT_EQ(ReadFile(AofPath(server)), ExpectedHeader());
  RedisClient c(server.port());
  EXPECT_TRUE(AllJobIds(c).empty());
}

INSTANTIATE_TEST_SUITE_P(Threads, PersistenceTest, ::testing::Values(1, 4));

// ---------------------------------------------------------------------------------
// Damaged files, --check-aof, appendfsync always failures, a full tmpfs, the automatic
// rewrite and a cluster: one thread count each (the file, not the shards, is under
// test).

class AofFileTest : public ::testing::Test {
 protected:
  // A server with appendonly yes that wrote three jobs and stopped; their IDs, and the
  // file's bytes.
  void MakeFile(ServerProcess& server, std::vector<std::string>* ids) {
    ASSERT_TRUE(StartReady(server));
    RedisClient c(server.port());
    for (int i = 0; i < 3; ++i) ids->push_back(AddJob(c, "tq", "job " + std::to_string(i)));
    ASSERT_NE(server.Stop(SIGTERM), -1);
    const AofFile f = ParseAof(AofPath(server));
    ASSERT_EQ(f.error, "");
    ASSERT_EQ(f.records.size(), 3u);
    records_ = f.records;
    bytes_ = ReadFile(AofPath(server));
  }
  // Writes `bytes` as the AOF and restarts: the server must refuse it, naming `offset`.
  void ExpectRefusedAt(ServerProcess& server, const std::string& bytes, uint64_t offset) {
    WriteFile(AofPath(server), bytes);
    EXPECT_EQ(RestartExpectingExit(server), "exit 1");
    EXPECT_NE(server.log().find("Bad file format reading the append only file at offset " + std::to_string(offset)),
              std::string::npos)
        << server.log();
  }
  std::vector<AofRecord> records_;
  std::string bytes_;
};

// A crash cut the last record: with aof-load-truncated yes (the default) the tail is
// truncated with a warning and the rest loads; with no the server refuses to start.
TEST_F(AofFileTest, TornLastRecordIsTruncatedOrRefused) {
  ServerProcess server(Options(1, {"appendonly yes"}));
  std::vector<std::string> ids;
  ASSERT_NO_FATAL_FAILURE(MakeFile(server, &ids));
  const uint64_t cut_at = records_[2].offset;
  WriteFile(AofPath(server), bytes_.substr(0, bytes_.size() - 5));

  // aof-load-truncated no: exit 1, the file untouched.
  WriteFile(server.config_path(), ReadFile(server.config_path()) + "aof-load-truncated no\n");
  EXPECT_EQ(RestartExpectingExit(server), "exit 1");
  EXPECT_NE(server.log().find("Unexpected end of file reading the append only file at offset " +
                              std::to_string(cut_at)),
            std::string::npos)
      << server.log();
  EXPECT_EQ(FileSize(AofPath(server)), bytes_.size() - 5);

  // The default: truncated at the last complete record, loaded, and appended to.
  std::string conf = ReadFile(server.config_path());
  conf.replace(conf.find("aof-load-truncated no"), 21, "aof-load-truncated yes");
  WriteFile(server.config_path(), conf);
  ASSERT_TRUE(RestartReady(server));
  EXPECT_NE(server.log().find("short read while loading the AOF"), std::string::npos) << server.log();
  EXPECT_EQ(FileSize(AofPath(server)), cut_at);
  RedisClient c(server.port());
  EXPECT_EQ(AllJobIds(c), (std::set<std::string>{ids[0], ids[1]}));
  const std::string next = AddJob(c, "tq", "next");
  const AofFile f = ParseAof(AofPath(server));
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.Summary(), (std::vector<std::string>{"L " + ids[0], "L " + ids[1], "L " + next}));
}

// Zeros where the last record should be (pages never written) are a torn tail too.
TEST_F(AofFileTest, ZeroFilledTailIsTorn) {
  ServerProcess server(Options(1, {"appendonly yes"}));
  std::vector<std::string> ids;
  ASSERT_NO_FATAL_FAILURE(MakeFile(server, &ids));
  std::string bytes = bytes_;
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(records_[2].offset), bytes.end(), '\0');
  WriteFile(AofPath(server), bytes + std::string(100, '\0'));
  ASSERT_TRUE(RestartReady(server));
  EXPECT_EQ(FileSize(AofPath(server)), records_[2].offset);
  RedisClient c(server.port());
  EXPECT_EQ(AllJobIds(c), (std::set<std::string>{ids[0], ids[1]}));
}

// A flipped byte in a record followed by others is damage, not a crash: exit 1 and
// the file left as it is, whatever aof-load-truncated says.
TEST_F(AofFileTest, DamagedRecordInTheMiddleIsFatal) {
  ServerProcess server(Options(1, {"appendonly yes"}));
  std::vector<std::string> ids;
  ASSERT_NO_FATAL_FAILURE(MakeFile(server, &ids));
  std::string bytes = bytes_;
  bytes[records_[1].offset + 16 + 30] ^= 0x01;  // in the payload of the second record
  ExpectRefusedAt(server, bytes, records_[1].offset);
  EXPECT_EQ(ReadFile(AofPath(server)), bytes);

  // A damaged record header too.
  bytes = bytes_;
  bytes[records_[0].offset + 2] ^= 0x40;
  ExpectRefusedAt(server, bytes, records_[0].offset);

  // Not an AOF at all.
  ExpectRefusedAt(server, "This is not an append-only file, not even Disque's.\n", 0);
}

// A flipped byte in the last record's payload cannot be told from a torn write: it is
// truncated (aof-load-truncated yes).
TEST_F(AofFileTest, DamagedLastRecordIsTruncated) {
  ServerProcess server(Options(1, {"appendonly yes"}));
  std::vector<std::string> ids;
  ASSERT_NO_FATAL_FAILURE(MakeFile(server, &ids));
  std::string bytes = bytes_;
  bytes[bytes.size() - 3] ^= 0x10;
  WriteFile(AofPath(server), bytes);
  ASSERT_TRUE(RestartReady(server));
  EXPECT_NE(server.log().find("short read while loading the AOF"), std::string::npos) << server.log();
  RedisClient c(server.port());
  EXPECT_EQ(AllJobIds(c), (std::set<std::string>{ids[0], ids[1]}));
}

// Disque's own AOF (a RESP stream of LOADJOB and DELJOB commands with the same job
// serialization) loads, and is rewritten in our format before anything is appended.
TEST_F(AofFileTest, DisqueRespAofIsLoadedAndConverted) {
  ServerProcess server(Options(1, {"appendonly yes"}));
  std::vector<std::string> ids;
  ASSERT_NO_FATAL_FAILURE(MakeFile(server, &ids));
  std::string resp;
  for (const auto& r : records_) resp += Multibulk({"LOADJOB", r.payload});
  resp += Multibulk({"DELJOB", ids[1]});
  WriteFile(AofPath(server), resp);
  ASSERT_TRUE(RestartReady(server));
  RedisClient c(server.port());
  EXPECT_EQ(AllJobIds(c), (std::set<std::string>{ids[0], ids[2]}));
  EXPECT_EQ(Show(c, ids[2]).Str("body"), "job 2");
  const std::string next = AddJob(c, "tq", "after the conversion");
  const AofFile f = ParseAof(AofPath(server));
  ASSERT_EQ(f.error, "") << "converted to disque-server's format";
  EXPECT_EQ(f.LiveIds(), (std::set<std::string>{ids[0], ids[2], next}));

  // A damaged command in such a file is fatal too.
  std::string damaged = Multibulk({"LOADJOB", records_[0].payload}) + Multibulk({"SET", "k"}) +
                        Multibulk({"LOADJOB", records_[1].payload});
  ASSERT_NE(server.Stop(SIGKILL), -1);
  ExpectRefusedAt(server, damaged, Multibulk({"LOADJOB", records_[0].payload}).size());
  EXPECT_NE(server.log().find("SET"), std::string::npos) << "names the command";
}

// aof-enqueue-jobs-once yes with appendonly no needs the file.
TEST(AofStartupTest, EnqueueOnceWithoutFileIsFatal) {
  ServerProcess server(Options(1, {"appendonly no", "aof-enqueue-jobs-once yes"}));
  EXPECT_EQ(RestartExpectingExit(server, /*first=*/true), "exit 1");
  EXPECT_NE(server.log().find("can't open the append log file for reading"), std::string::npos) << server.log();
}

// Jobs answered while the server starts must be journaled like any other. The shards
// serve clients before Persistence::Start runs; the server must answer -LOADING until
// the file is loaded, the writer open and journaling on. (Before 522a71d `loading` was
// set only once the load began and cleared before SetJournaling(true), and an ADDJOB in
// either window was answered but never written.) A file in Disque's RESP format makes
// the second window as long as the conversion rewrite between the load and
// SetJournaling(true), so this test uses one, with a client adding jobs back to back
// from the moment the port answers.
TEST(AofStartupTest, JobsAnsweredDuringStartupAreInTheFile) {
  ServerProcess server(Options(4, {"appendonly yes"}));
  ASSERT_TRUE(StartReady(server));
  {
    RedisClient c(server.port());
    for (int batch = 0; batch < 5; ++batch) {
      ASSERT_EQ(AddJobs(c, "big", "b-", 2000).back().rfind("D-", 0), 0u);
    }
  }
  ASSERT_NE(server.Stop(SIGKILL), -1);
  // The same jobs as Disque's AOF: one LOADJOB command per record.
  const AofFile native = ParseAof(AofPath(server));
  ASSERT_EQ(native.error, "");
  ASSERT_EQ(native.records.size(), 10000u);
  std::string resp;
  for (const auto& r : native.records) resp += Multibulk({"LOADJOB", r.payload});
  WriteFile(AofPath(server), resp);

  std::mutex mu;
  std::vector<std::string> answered;
  int loading_replies = 0;
  std::string unexpected;
  std::atomic<bool> stop{false};
  std::thread client([&] {
    while (!stop.load()) {
      RedisClient c(server.port(), 2000);
      if (!c.connected()) continue;  // refused at once while the server is down
      for (int i = 0; !stop.load(); ++i) {
        const Reply r = c.Command({"ADDJOB", "early", "e" + std::to_string(i), "0"});
        std::lock_guard lock(mu);
        if (r.type == Type::kStatus) {
          answered.push_back(r.str);
        } else if (r.str.rfind("LOADING", 0) == 0) {
          ++loading_replies;
        } else if (r.type == Type::kNone) {
          break;  // reconnect
        } else {
          unexpected = r.ToString();
        }
      }
    }
  });
  const ::testing::AssertionResult up = RestartReady(server);  // keeps the reason
  // A few more once journaling is surely on.
  size_t at_ready = 0;
  {
    std::lock_guard lock(mu);
    at_ready = answered.size();
  }
  WaitFor([&] {
    std::lock_guard lock(mu);
    return answered.size() >= at_ready + 20;
  });
  stop.store(true);
  client.join();
  ASSERT_TRUE(up);
  EXPECT_EQ(unexpected, "");
  const AofFile f = ParseAof(AofPath(server));
  ASSERT_EQ(f.error, "");
  const std::set<std::string> in_file = f.LiveIds();
  std::vector<std::string> missing;
  for (const auto& id : answered) {
    if (in_file.count(id) == 0) missing.push_back(id);
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << answered.size()
                               << " answered ADDJOBs are not in the AOF (" << loading_replies
                               << " -LOADING replies seen); first: " << missing.front();
}

// --check-aof FILE [--fix].
TEST_F(AofFileTest, CheckAofReportsAndFixes) {
  ServerProcess server(Options(1, {"appendonly yes"}));
  std::vector<std::string> ids;
  ASSERT_NO_FATAL_FAILURE(MakeFile(server, &ids));
  const std::string path = AofPath(server);
  const std::string bin = DISQUE_SERVER_BINARY;
  const std::string n = std::to_string(bytes_.size());
  int status = -1;

  std::string out = RunCommand(bin + " --check-aof '" + path + "'", "", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("AOF analyzed: size=" + n + ", ok_up_to=" + n + ", diff=0"), std::string::npos) << out;
  EXPECT_NE(out.find("AOF is valid"), std::string::npos) << out;

  // A torn tail.
  const std::string torn = bytes_.substr(0, bytes_.size() - 5);
  const std::string valid = std::to_string(records_[2].offset);
  WriteFile(path, torn);
  out = RunCommand(bin + " --check-aof '" + path + "'", "", &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("AOF analyzed: size=" + std::to_string(torn.size()) + ", ok_up_to=" + valid +
                     ", diff=" + std::to_string(torn.size() - records_[2].offset)),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("AOF is not valid. Use the --fix option to try fixing it."), std::string::npos) << out;
  EXPECT_EQ(ReadFile(path), torn) << "not modified without --fix";
  out = RunCommand(bin + " --check-aof '" + path + "' --fix", "", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("Successfully truncated AOF to " + valid + " bytes"), std::string::npos) << out;
  EXPECT_EQ(ReadFile(path), bytes_.substr(0, records_[2].offset));
  out = RunCommand(bin + " --check-aof '" + path + "'", "", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("AOF is valid"), std::string::npos) << out;

  // Damage in the middle: --fix keeps what precedes it.
  std::string damaged = bytes_;
  damaged[records_[1].offset + 16 + 30] ^= 0x01;
  WriteFile(path, damaged);
  out = RunCommand(bin + " --check-aof '" + path + "'", "", &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("ok_up_to=" + std::to_string(records_[1].offset)), std::string::npos) << out;
  EXPECT_NE(out.find(std::to_string(records_[1].offset)), std::string::npos) << out;
  EXPECT_NE(out.find("AOF is not valid. Use the --fix option to try fixing it."), std::string::npos) << out;
  out = RunCommand(bin + " --fix --check-aof '" + path + "'", "", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("Successfully truncated AOF to " + std::to_string(records_[1].offset) + " bytes"),
            std::string::npos)
      << out;
  EXPECT_EQ(ReadFile(path), bytes_.substr(0, records_[1].offset));

  // The fixed file loads.
  ASSERT_TRUE(RestartReady(server));
  RedisClient c(server.port());
  EXPECT_EQ(AllJobIds(c), std::set<std::string>{ids[0]});
}

// appendfsync always: a reply must never claim a write that did not happen, so a write
// error stops the server; the answered jobs are in the file.
TEST(AofFaultTest, AlwaysPolicyExitsOnWriteError) {
  ServerProcess server(Options(1, {"appendonly yes", "appendfsync always"}));
  ASSERT_TRUE(StartReady(server));
  std::vector<std::string> ids;
  {
    RedisClient c(server.port());
    ids = AddJobs(c, "xq", "x-", 5);
    ASSERT_EQ(c.Command({"DEBUG", "AOF-FAULT", "EIO"}).ToString(), "+OK");
    const Reply r = c.Command({"ADDJOB", "xq", "never answered", "0"});
    EXPECT_EQ(r.type, Type::kNone) << "no reply: " << r.ToString();
  }
  EXPECT_EQ(ExitText(server.WaitExit()), "exit 1");
  EXPECT_NE(server.log().find("Can't recover from AOF write error when the AOF fsync policy is 'always'"),
            std::string::npos)
      << server.log();
  ASSERT_TRUE(RestartReady(server));
  RedisClient c(server.port());
  EXPECT_EQ(AllJobIds(c), std::set<std::string>(ids.begin(), ids.end()));
}

// The automatic rewrite: once the file passes auto-aof-rewrite-min-size and has grown
// by auto-aof-rewrite-percentage since the last rewrite.
TEST(AofRewriteTest, AutomaticRewriteOnGrowth) {
  ServerProcess server(Options(1, {"appendonly yes", "auto-aof-rewrite-percentage 0", "auto-aof-rewrite-min-size 1mb"}));
  ASSERT_TRUE(StartReady(server));
  const std::string path = AofPath(server);
  RedisClient c(server.port());
  EXPECT_EQ(ConfigGet(c, "auto-aof-rewrite-min-size"), "1048576");
  const std::string body(400, 'b');
  std::vector<std::string> all;
  for (int round = 0; round < 4; ++round) {
    const std::vector<std::string> ids = AddJobs(c, "gq", body, 250);
    ASSERT_EQ(AckAll(c, ids), 250);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  const std::string keep = AddJob(c, "gq", "kept");
  const uint64_t grown = FileSize(path);
  ASSERT_GT(grown, 400000u);
  ASSERT_EQ(PField(c, "aof_base_size"), "16");
  EXPECT_EQ(PField(c, "aof_last_rewrite_time_sec"), "-1") << "percentage 0: never";

  ASSERT_EQ(c.Command({"CONFIG", "SET", "auto-aof-rewrite-min-size", "100000"}).ToString(), "+OK");
  ASSERT_EQ(c.Command({"CONFIG", "SET", "auto-aof-rewrite-percentage", "100"}).ToString(), "+OK");
  ASSERT_TRUE(WaitFor([&] { return FileSize(path) < 1000; }, 20s)) << FileSize(path);
  ASSERT_TRUE(WaitFor([&] { return PField(c, "aof_rewrite_in_progress") == "0"; }, 20s));
  EXPECT_NE(server.log().find("Starting automatic rewriting of AOF on"), std::string::npos) << server.log();
  const AofFile f = ParseAof(path);
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.Summary(), std::vector<std::string>{"L " + keep});
  EXPECT_EQ(PField(c, "aof_base_size"), std::to_string(f.size));
}

// A real full disk: the server's dir on a 256 KB tmpfs. The write that hits ENOSPC is
// cut back (no half record), commands get -MISCONF, and once space is freed the writer
// catches up: every answered job is in the file and survives a SIGKILL.
class TmpfsMount {
 public:
  TmpfsMount() {
    mounted_ = ::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=256k") == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~TmpfsMount() {
    if (mounted_ && ::umount(dir_.path().c_str()) != 0) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string error_;
};

TEST(AofFaultTest, RealFullDiskGivesMisconfThenRecovers) {
  TmpfsMount disk;  // declared first: unmounted after the server stopped
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs: " << disk.error();
  ServerProcess server(Options(1, {"dir " + disk.path(), "appendonly yes", "appendfsync everysec"}));
  ASSERT_TRUE(StartReady(server));
  const std::string path = disk.path() + "/disque.aof";
  ASSERT_EQ(ReadFile(path), ExpectedHeader());
  RedisClient c(server.port());
  const std::vector<std::string> first = AddJobs(c, "dq", "small-", 5);

  // Leave about 40 KB free.
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(disk.path().c_str(), &vfs), 0);
  const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  ASSERT_GT(free_bytes, 80u * 1024);
  WriteFile(disk.path() + "/filler", std::string(free_bytes - 40 * 1024, 'f'));

  // 9000-byte bodies: each record needs new pages, so the disk fills within a few.
  std::vector<std::pair<std::string, std::string>> answered;
  std::string refused;
  for (int i = 0; i < 40 && refused.empty(); ++i) {
    const std::string body = "big-" + std::to_string(i) + std::string(9000, 'z');
    const Reply r = c.Command({"ADDJOB", "dq", body, "0"});
    if (r.type == Type::kStatus) {
      answered.emplace_back(r.str, body);
    } else {
      refused = r.ToString();
    }
  }
  ASSERT_EQ(refused, kMisconfNoSpace) << answered.size() << " answered";
  EXPECT_EQ(c.Command({"PING"}).ToString(), kMisconfNoSpace);
  EXPECT_EQ(PField(c, "aof_last_write_status"), "err");
  EXPECT_EQ(Qlen(c, "dq"), static_cast<int64_t>(5 + answered.size()));
  // What is in the file is whole records only.
  EXPECT_EQ(ParseAof(path).error, "");

  std::filesystem::remove(disk.path() + "/filler");
  ASSERT_TRUE(WaitFor([&] { return c.Command({"PING"}).ToString() == "+PONG"; }, 10s))
      << c.Command({"PING"}).ToString();
  EXPECT_EQ(PField(c, "aof_last_write_status"), "ok");
  std::set<std::string> expected(first.begin(), first.end());
  for (const auto& [id, body] : answered) expected.insert(id);
  const AofFile f = ParseAof(path);
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.LiveIds(), expected);

  ASSERT_TRUE(KillAndRestart(server));
  RedisClient c2(server.port());
  EXPECT_EQ(AllJobIds(c2), expected);
  for (const auto& [id, body] : answered) EXPECT_EQ(Show(c2, id).Str("body"), body) << id;
}

// Two nodes with appendonly yes and REPLICATE 2: the origin and the replica both log
// the job, so after both are killed each still has its copy; an acknowledgement is
// logged on both, so it stays acknowledged after another crash.
TEST(AofClusterTest, ReplicasLogTheirCopiesAndTheAcks) {
  ClusterOptions options = ClusterOptions::Of(2, 1);
  options.config_lines = {"appendonly yes"};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.StartAndJoin());
  for (int n = 0; n < 2; ++n) ASSERT_TRUE(WaitFor([&] { return PersistenceReady(cluster.port(n)); }, 30s));
  const std::string id0 = cluster.NodeId(0), id1 = cluster.NodeId(1);
  std::vector<std::string> jobs;
  {
    RedisClient c(cluster.port(0), 30000);
    for (int i = 0; i < 20; ++i) {
      const std::string id = AddJob(c, "cl", "c-" + std::to_string(i), {"REPLICATE", "2", "RETRY", "60"});
      ASSERT_EQ(id.rfind("D-", 0), 0u) << id;
      jobs.push_back(id);
    }
  }
  // Both wrote each job before the client got its ID (see
  // ReplicaWritesItsCopyBeforeConfirmingIt).
  const std::set<std::string> all(jobs.begin(), jobs.end());
  EXPECT_EQ(ParseAof(cluster.node(0).dir() + "/disque.aof").LiveIds(), all);
  EXPECT_EQ(ParseAof(cluster.node(1).dir() + "/disque.aof").LiveIds(), all);
  for (int n = 0; n < 2; ++n) EXPECT_EQ(ParseAof(cluster.node(n).dir() + "/disque.aof").error, "") << "node " << n;
  ASSERT_TRUE(cluster.Kill(0));
  ASSERT_TRUE(cluster.Kill(1));
  ASSERT_TRUE(cluster.Restart(0));
  ASSERT_TRUE(cluster.Restart(1));
  for (int n = 0; n < 2; ++n) ASSERT_TRUE(WaitFor([&] { return PersistenceReady(cluster.port(n)); }, 30s));
  for (int n = 0; n < 2; ++n) {
    RedisClient c(cluster.port(n));
    for (int i = 0; i < 20; ++i) {
      const Shown s = Show(c, jobs[static_cast<size_t>(i)]);
      ASSERT_TRUE(s.known) << "node " << n << " lost " << jobs[static_cast<size_t>(i)];
      EXPECT_EQ(s.Str("body"), "c-" + std::to_string(i));
      EXPECT_EQ(s.Str("state"), "active");
      auto delivered = s.List("nodes-delivered");
      std::sort(delivered.begin(), delivered.end());
      std::vector<std::string> both{id0, id1};
      std::sort(both.begin(), both.end());
      EXPECT_EQ(delivered, both) << "node " << n;
    }
  }
  ASSERT_TRUE(cluster.WaitFullMesh());
  {
    RedisClient c(cluster.port(0));
    ASSERT_EQ(c.Command({"ACKJOB", jobs[0], jobs[1]}).ToString(), ":2");
  }
  ASSERT_TRUE(Cluster::Poll(
      [&] {
        for (int n = 0; n < 2; ++n) {
          RedisClient c(cluster.port(n));
          if (Show(c, jobs[0]).known || Show(c, jobs[1]).known) return false;
        }
        return true;
      },
      30s));
  // Both logged the acknowledgement (the replica when SETACK came).
  const std::set<std::string> rest(jobs.begin() + 2, jobs.end());
  for (int n = 0; n < 2; ++n) {
    EXPECT_TRUE(WaitFor([&] { return ParseAof(cluster.node(n).dir() + "/disque.aof").LiveIds() == rest; }, 10s))
        << "node " << n;
  }
  ASSERT_TRUE(cluster.Kill(0));
  ASSERT_TRUE(cluster.Kill(1));
  ASSERT_TRUE(cluster.Restart(0));
  ASSERT_TRUE(cluster.Restart(1));
  for (int n = 0; n < 2; ++n) ASSERT_TRUE(WaitFor([&] { return PersistenceReady(cluster.port(n)); }, 30s));
  for (int n = 0; n < 2; ++n) {
    RedisClient c(cluster.port(n));
    const std::set<std::string> ids = AllJobIds(c);
    EXPECT_EQ(ids, rest) << "node " << n;
  }
}

// A replica's GOTJOB is what lets the origin answer a synchronous ADDJOB, so it is a
// reply like any other: the replica's LOADJOB must be written before it goes (Disque
// writes its AOF buffer in beforeSleep, before the event loop sends anything). Before
// 522a71d, Shard::JobsChanged held bus messages for the AOF only under `appendfsync
// always`; under everysec and no the GOTJOB left at once and the record was written
// by the writer thread's sweep up to 10 ms later, so killing the replica right after
// the client got its ID lost a copy the client was told existed. (Under `always` the
// GOTJOB waits for the fsync; a file read cannot tell written from fsynced, so that
// case is not checked here.)
class ReplicaAofTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReplicaAofTest, ReplicaWritesItsCopyBeforeConfirmingIt) {
  ClusterOptions options = ClusterOptions::Of(2, 1);
  options.config_lines = {"appendonly yes", "appendfsync " + GetParam()};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.StartAndJoin());
  for (int n = 0; n < 2; ++n) ASSERT_TRUE(WaitFor([&] { return PersistenceReady(cluster.port(n)); }, 30s));
  RedisClient c(cluster.port(0), 30000);
  int missing_on_origin = 0, missing_on_replica = 0;
  for (int i = 0; i < 10; ++i) {
    const std::string id = AddJob(c, "rc", "replicated " + std::to_string(i), {"REPLICATE", "2"});
    ASSERT_EQ(id.rfind("D-", 0), 0u) << id;
    missing_on_origin += ParseAof(cluster.node(0).dir() + "/disque.aof").LiveIds().count(id) == 0 ? 1 : 0;
    missing_on_replica += ParseAof(cluster.node(1).dir() + "/disque.aof").LiveIds().count(id) == 0 ? 1 : 0;
  }
  EXPECT_EQ(missing_on_origin, 0);
  EXPECT_EQ(missing_on_replica, 0) << "of 10 jobs, the replica had not written that many when the client got the ID";
}

INSTANTIATE_TEST_SUITE_P(Policies, ReplicaAofTest, ::testing::Values("everysec", "no"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace disque::test
