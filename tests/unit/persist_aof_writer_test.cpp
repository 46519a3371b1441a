// Unit tests for persist::AofWriter (include/disque/persist/aof_writer.h): the file
// header, append positions and released(), the fsync policies, write errors and their
// retry, the rewrite switch-over (capture, FinishRewrite) and concurrent appends. Files
// are read back with persist::AofReader. Waits poll a condition under a deadline; the
// writer retries a failed write after 1 s, so the error tests take about that long.

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "disque/persist/aof_format.h"
#include "disque/persist/aof_writer.h"
#include "support/files.h"

namespace disque::persist {
namespace {

using config::AppendFsync;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Polls `pred` until it holds or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& pred, milliseconds timeout = milliseconds(3000)) {
  const auto deadline = steady_clock::now() + timeout;
  while (!pred()) {
    if (steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

std::string Framed(RecordType type, std::string_view payload) {
  std::string out;
  AppendRecord(type, payload, out);
  return out;
}
std::string Load(std::string_view payload) { return Framed(RecordType::kLoadJob, payload); }
std::string Del(std::string_view payload) { return Framed(RecordType::kDelJob, payload); }

struct Rec {
  RecordType type;
  std::string payload;
  bool operator==(const Rec&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Rec& r) {
  return os << (r.type == RecordType::kLoadJob ? "LOADJOB(" : "DELJOB(") << r.payload << ")";
}

// Every record of the file; the file must end cleanly.
std::vector<Rec> ReadRecords(const std::string& path) {
  std::vector<Rec> out;
  Result<AofReader> opened = AofReader::Open(path);
  if (!opened.ok()) {
    ADD_FAILURE() << "can't open " << path << ": " << opened.status().message();
    return out;
  }
  AofReader reader = std::move(opened).value();
  while (true) {
    const AofReader::Outcome o = reader.Next();
    if (o == AofReader::Outcome::kRecord) {
      out.push_back({reader.type(), std::string(reader.payload())});
      continue;
    }
    EXPECT_EQ(o, AofReader::Outcome::kEnd) << "at " << reader.offset() << ": " << reader.error();
    return out;
  }
}

uint64_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

// A rewrite's temporary file: the header and the snapshot records. Returns its fd.
int WriteTempFile(const std::string& path, const std::string& records) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  const std::string data = FileHeader() + records;
  EXPECT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  return fd;
}

class AofWriterTest : public ::testing::Test {
 protected:
  bool Released(uint64_t pos) {
    return WaitFor([&] { return writer_.released() >= pos; });
  }

  test::TempDir dir_;
  const std::string path_ = dir_.File("appendonly.aof");
  std::atomic<int> notified_{0};
  AofWriter writer_{[this] { notified_.fetch_add(1); }};
};

TEST_F(AofWriterTest, OpenOnAMissingFileWritesTheHeader) {
  ASSERT_FALSE(std::filesystem::exists(path_));
  EXPECT_FALSE(writer_.is_open());
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  EXPECT_TRUE(writer_.is_open());
  EXPECT_EQ(test::ReadFile(path_), FileHeader());
  EXPECT_EQ(FileSize(path_), kAofHeaderSize);
  const AofWriterStats s = writer_.stats();
  EXPECT_TRUE(s.open);
  EXPECT_EQ(s.current_size, kAofHeaderSize);
  EXPECT_EQ(s.base_size, kAofHeaderSize);
  EXPECT_EQ(s.last_write_errno, 0);
  writer_.Close();
  EXPECT_FALSE(writer_.is_open());
  EXPECT_FALSE(writer_.stats().open);
  EXPECT_TRUE(ReadRecords(path_).empty());
}

TEST_F(AofWriterTest, OpenOnAnEmptyFileWritesTheHeader) {
  test::WriteFile(path_, "");
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  EXPECT_EQ(test::ReadFile(path_), FileHeader());
}

TEST_F(AofWriterTest, OpenFailsInAMissingDirectory) {
  EXPECT_FALSE(writer_.Open(dir_.File("no/such/dir.aof"), AppendFsync::kEverysec).ok());
  EXPECT_FALSE(writer_.is_open());
  EXPECT_EQ(writer_.Append(Load("x")), 0u);
}

TEST_F(AofWriterTest, AppendsGetIncreasingPositionsAreReleasedAndReadBackInOrder) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  const std::vector<std::string> records = {Load("job-1"), Del("job-1"), Load(std::string(10000, 'b')),
                                            Load("job-3") + Del("job-3")};  // two records in one Append
  std::vector<uint64_t> positions;
  uint64_t expected = 0;
  for (const std::string& r : records) {
    positions.push_back(writer_.Append(r));
    expected += r.size();
    EXPECT_EQ(positions.back(), expected) << "the position after the records, in one stream";
  }
  EXPECT_EQ(writer_.appended(), positions.back());
  EXPECT_EQ(writer_.Append(""), 0u) << "nothing to wait for";
  ASSERT_TRUE(Released(positions.back())) << writer_.released() << " < " << positions.back();
  EXPECT_EQ(writer_.released(), positions.back());
  EXPECT_TRUE(WaitFor([&] { return notified_.load() > 0; })) << "the listener runs when released() advances";
  EXPECT_TRUE(WaitFor([&] { return writer_.stats().current_size == kAofHeaderSize + expected; }));
  EXPECT_EQ(writer_.stats().buffer_length, 0u);
  writer_.Close();
  EXPECT_EQ(FileSize(path_), kAofHeaderSize + expected);
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "job-1"},
                                                  {RecordType::kDelJob, "job-1"},
                                                  {RecordType::kLoadJob, std::string(10000, 'b')},
                                                  {RecordType::kLoadJob, "job-3"},
                                                  {RecordType::kDelJob, "job-3"}}));
}

TEST_F(AofWriterTest, CloseAndDestructionWriteWhatIsBuffered) {
  {
    AofWriter w(nullptr);
    ASSERT_TRUE(w.Open(path_, AppendFsync::kEverysec).ok());
    for (int i = 0; i < 100; ++i) w.Append(Load("r" + std::to_string(i)));
    w.Close();  // no wait for released(): Close itself writes the buffer
    EXPECT_EQ(w.released(), w.appended());
  }
  std::vector<Rec> got = ReadRecords(path_);
  ASSERT_EQ(got.size(), 100u);
  {
    AofWriter w(nullptr);
    ASSERT_TRUE(w.Open(path_, AppendFsync::kNo).ok());
    for (int i = 100; i < 200; ++i) w.Append(Load("r" + std::to_string(i)));
  }  // the destructor closes
  got = ReadRecords(path_);
  ASSERT_EQ(got.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(got[i].payload, "r" + std::to_string(i));
}

TEST_F(AofWriterTest, ReopenAppendsAfterTheExistingContent) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  const uint64_t p1 = writer_.Append(Load("first"));
  writer_.Close();
  const uint64_t size1 = FileSize(path_);
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  EXPECT_EQ(writer_.stats().current_size, size1);
  EXPECT_EQ(writer_.stats().base_size, size1);
  const uint64_t p2 = writer_.Append(Del("second"));
  EXPECT_GT(p2, p1) << "positions continue across a close";
  ASSERT_TRUE(Released(p2));
  writer_.Close();
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "first"}, {RecordType::kDelJob, "second"}}));
  // Opened by another writer too: no second header.
  AofWriter other(nullptr);
  ASSERT_TRUE(other.Open(path_, AppendFsync::kNo).ok());
  other.Append(Load("third"));
  other.Close();
  EXPECT_EQ(ReadRecords(path_).size(), 3u);
}

TEST_F(AofWriterTest, AppendWhileClosedReturnsZeroAndWritesNothing) {
  EXPECT_EQ(writer_.Append(Load("never opened")), 0u);
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  const uint64_t p = writer_.Append(Load("kept"));
  EXPECT_GT(p, 0u);
  writer_.Close();
  const std::string content = test::ReadFile(path_);
  EXPECT_EQ(writer_.Append(Load("after close")), 0u);
  writer_.Close();  // closing twice is harmless
  EXPECT_EQ(test::ReadFile(path_), content);
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "kept"}}));
}

TEST_F(AofWriterTest, WriteErrorWithEverysecReleasesRepliesAndIsRetriedUntilItSucceeds) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  ASSERT_TRUE(Released(writer_.Append(Load("before"))));
  ASSERT_TRUE(WaitFor([&] { return FileSize(path_) == kAofHeaderSize + Load("before").size(); }));
  const uint64_t size = FileSize(path_);

  writer_.InjectWriteError(ENOSPC);
  const int notified_before = notified_.load();
  const uint64_t p1 = writer_.Append(Load("during-1"));
  ASSERT_TRUE(WaitFor([&] { return writer_.last_write_errno() == ENOSPC; }));
  EXPECT_EQ(writer_.stats().last_write_errno, ENOSPC);
  ASSERT_TRUE(Released(p1)) << "with everysec the replies are released, as Disque sends them";
  // The listener runs just after the writer releases (outside its lock): poll for it.
  EXPECT_TRUE(WaitFor([&] { return notified_.load() > notified_before; })) << "the listener runs after a failed write";
  // (Not waited for: a record appended after the failure is released by the next
  // attempt, a second later.)
  const uint64_t p2 = writer_.Append(Del("during-2"));
  EXPECT_EQ(FileSize(path_), size) << "nothing reached the file";
  EXPECT_EQ(writer_.stats().current_size, size);
  EXPECT_GT(writer_.stats().buffer_length, 0u) << "the records stay buffered";
  EXPECT_EQ(writer_.last_write_errno(), ENOSPC);

  writer_.InjectWriteError(0);
  ASSERT_TRUE(WaitFor([&] { return writer_.last_write_errno() == 0; }));  // retried every second
  ASSERT_TRUE(WaitFor([&] { return writer_.stats().buffer_length == 0; }));
  EXPECT_GE(writer_.released(), p2);
  const uint64_t p3 = writer_.Append(Load("after"));
  ASSERT_TRUE(Released(p3));
  writer_.Close();
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "before"},
                                                  {RecordType::kLoadJob, "during-1"},
                                                  {RecordType::kDelJob, "during-2"},
                                                  {RecordType::kLoadJob, "after"}}));
}

TEST_F(AofWriterTest, CloseDuringAPersistentWriteErrorDoesNotHang) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  ASSERT_TRUE(Released(writer_.Append(Load("written"))));
  writer_.InjectWriteError(EIO);
  const uint64_t p = writer_.Append(Load("lost"));
  ASSERT_TRUE(WaitFor([&] { return writer_.last_write_errno() == EIO; }));
  const auto start = steady_clock::now();
  writer_.Close();  // documented: what could not be written is lost with the file
  EXPECT_LT(steady_clock::now() - start, milliseconds(2000));
  EXPECT_FALSE(writer_.is_open());
  EXPECT_GE(writer_.released(), p);
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "written"}}));
}

TEST_F(AofWriterTest, RewriteSwitchesToTheSnapshotPlusTheCapturedRecords) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  ASSERT_TRUE(Released(writer_.Append(Load("old-1") + Del("old-1"))));
  writer_.BeginCapture();
  const uint64_t pa = writer_.Append(Load("captured-a"));
  const uint64_t pb = writer_.Append(Del("captured-b"));
  EXPECT_EQ(writer_.stats().rewrite_buffer_length, Load("captured-a").size() + Del("captured-b").size());
  ASSERT_TRUE(Released(pb));  // they also reach the old file meanwhile
  const std::string temp = dir_.File("temp-rewrite.aof");
  const int fd = WriteTempFile(temp, Load("snap-1") + Load("snap-2"));
  ASSERT_TRUE(writer_.FinishRewrite(fd, temp, path_, false).ok());
  EXPECT_TRUE(writer_.is_open());
  EXPECT_FALSE(std::filesystem::exists(temp)) << "renamed over the AOF";
  EXPECT_EQ(writer_.stats().rewrite_buffer_length, 0u);
  const std::vector<Rec> expected = {{RecordType::kLoadJob, "snap-1"},
                                     {RecordType::kLoadJob, "snap-2"},
                                     {RecordType::kLoadJob, "captured-a"},
                                     {RecordType::kDelJob, "captured-b"}};
  EXPECT_EQ(ReadRecords(path_), expected);
  const uint64_t rewritten = FileSize(path_);
  EXPECT_EQ(writer_.stats().base_size, rewritten);
  EXPECT_EQ(writer_.stats().current_size, rewritten);
  EXPECT_GE(writer_.released(), pb);

  // Later appends go to the new file, positions continuing.
  const uint64_t pc = writer_.Append(Load("later"));
  EXPECT_GT(pc, pa);
  ASSERT_TRUE(Released(pc));
  ASSERT_TRUE(WaitFor([&] { return FileSize(path_) == rewritten + Load("later").size(); }));
  writer_.Close();
  std::vector<Rec> all = expected;
  all.push_back({RecordType::kLoadJob, "later"});
  EXPECT_EQ(ReadRecords(path_), all);
}

TEST_F(AofWriterTest, RewriteAdoptingOnAClosedWriterOpensIt) {
  EXPECT_FALSE(writer_.is_open());
  writer_.BeginCapture();
  EXPECT_EQ(writer_.Append(Load("captured")), 0u) << "closed: nothing to wait for, but captured";
  EXPECT_GT(writer_.stats().rewrite_buffer_length, 0u);
  const std::string temp = dir_.File("temp-rewrite.aof");
  const int fd = WriteTempFile(temp, Load("snap"));
  ASSERT_TRUE(writer_.FinishRewrite(fd, temp, path_, true).ok());
  EXPECT_TRUE(writer_.is_open());
  EXPECT_TRUE(writer_.stats().open);
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "snap"}, {RecordType::kLoadJob, "captured"}}));
  const uint64_t p = writer_.Append(Del("next"));
  EXPECT_GT(p, 0u);
  ASSERT_TRUE(Released(p));
  writer_.Close();
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "snap"},
                                                  {RecordType::kLoadJob, "captured"},
                                                  {RecordType::kDelJob, "next"}}));
}

TEST_F(AofWriterTest, RewriteWithoutAdoptLeavesAClosedWriterClosed) {
  writer_.BeginCapture();
  EXPECT_EQ(writer_.Append(Load("captured")), 0u);
  const std::string temp = dir_.File("temp-rewrite.aof");
  const int fd = WriteTempFile(temp, Load("snap"));
  ASSERT_TRUE(writer_.FinishRewrite(fd, temp, path_, false).ok());
  EXPECT_FALSE(writer_.is_open());
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "snap"}, {RecordType::kLoadJob, "captured"}}));
  EXPECT_EQ(writer_.Append(Load("dropped")), 0u);
  EXPECT_EQ(ReadRecords(path_).size(), 2u);
}

TEST_F(AofWriterTest, AFailedRewriteKeepsAppendingToTheOldFile) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  ASSERT_TRUE(Released(writer_.Append(Load("old"))));
  writer_.BeginCapture();
  ASSERT_TRUE(Released(writer_.Append(Load("captured"))));
  const std::string temp = dir_.File("temp-rewrite.aof");
  const int fd = WriteTempFile(temp, Load("snap"));
  // The rename cannot succeed: the target's directory does not exist.
  const Status st = writer_.FinishRewrite(fd, temp, dir_.File("missing/appendonly.aof"), false);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(std::filesystem::exists(temp)) << "the temporary file is removed";
  EXPECT_TRUE(writer_.is_open());
  EXPECT_EQ(writer_.stats().rewrite_buffer_length, 0u);
  ASSERT_TRUE(Released(writer_.Append(Load("later"))));
  writer_.Close();
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "old"},
                                                  {RecordType::kLoadJob, "captured"},
                                                  {RecordType::kLoadJob, "later"}}));

  // On a closed writer a failed adopting rewrite leaves it closed.
  AofWriter closed(nullptr);
  closed.BeginCapture();
  EXPECT_EQ(closed.Append(Load("c")), 0u);
  const int fd2 = WriteTempFile(temp, Load("snap"));
  EXPECT_FALSE(closed.FinishRewrite(fd2, temp, dir_.File("missing/appendonly.aof"), true).ok());
  EXPECT_FALSE(closed.is_open());
  EXPECT_EQ(closed.Append(Load("d")), 0u);
}

TEST_F(AofWriterTest, EndCaptureDropsTheCapture) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  writer_.BeginCapture();
  ASSERT_TRUE(Released(writer_.Append(Load("in-old-file-only"))));
  EXPECT_GT(writer_.stats().rewrite_buffer_length, 0u);
  writer_.EndCapture();
  EXPECT_EQ(writer_.stats().rewrite_buffer_length, 0u);
  ASSERT_TRUE(Released(writer_.Append(Load("not-captured"))));
  EXPECT_EQ(writer_.stats().rewrite_buffer_length, 0u);
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "in-old-file-only"},
                                                  {RecordType::kLoadJob, "not-captured"}}));
  // A rewrite finished without a capture is the snapshot alone.
  const std::string temp = dir_.File("temp-rewrite.aof");
  const int fd = WriteTempFile(temp, Load("snap"));
  ASSERT_TRUE(writer_.FinishRewrite(fd, temp, path_, false).ok());
  EXPECT_EQ(ReadRecords(path_), (std::vector<Rec>{{RecordType::kLoadJob, "snap"}}));
}

TEST_F(AofWriterTest, PolicyAlwaysReleasesOnlyAfterAnFsync) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kAlways).ok());
  for (int i = 0; i < 5; ++i) {
    const uint64_t before = writer_.stats().fsyncs;
    const uint64_t p = writer_.Append(Load("sync-" + std::to_string(i)));
    ASSERT_TRUE(Released(p));
    // released() is stored after the fsync is counted.
    EXPECT_GT(writer_.stats().fsyncs, before) << i;
  }
  writer_.Close();
  EXPECT_EQ(ReadRecords(path_).size(), 5u);
}

TEST_F(AofWriterTest, PolicyEverysecFsyncsInTheBackground) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  const uint64_t before = writer_.stats().fsyncs;
  ASSERT_TRUE(Released(writer_.Append(Load("x"))));
  EXPECT_TRUE(WaitFor([&] { return writer_.stats().fsyncs > before; }, milliseconds(2500)))
      << "the syncer thread fsyncs about once a second";
}

TEST_F(AofWriterTest, PolicyNoDoesNotFsyncBeforeClose) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kNo).ok());
  const uint64_t before = writer_.stats().fsyncs;
  ASSERT_TRUE(Released(writer_.Append(Load("x"))));
  EXPECT_EQ(writer_.stats().fsyncs, before);
  writer_.Close();
  EXPECT_GT(writer_.stats().fsyncs, before) << "Close fsyncs";
}

TEST_F(AofWriterTest, ConcurrentAppendsLandExactlyOnceInEachThreadsOrder) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  std::vector<uint64_t> last(kThreads, 0);
  std::vector<bool> increasing(kThreads, true);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t prev = 0;
      for (int i = 0; i < kPerThread; ++i) {
        const std::string tag = std::to_string(t) + ":" + std::to_string(i);
        // Every tenth append carries two records, which must stay together.
        const std::string records = i % 10 == 9 ? Load(tag) + Del(tag) : Load(tag);
        const uint64_t p = writer_.Append(records);
        if (p <= prev) increasing[t] = false;
        prev = p;
      }
      last[t] = prev;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(increasing[t]) << t;
  const uint64_t max_pos = *std::max_element(last.begin(), last.end());
  EXPECT_EQ(max_pos, writer_.appended());
  ASSERT_TRUE(Released(max_pos));
  writer_.Close();
  const std::vector<Rec> got = ReadRecords(path_);
  ASSERT_EQ(got.size(), static_cast<size_t>(kThreads * kPerThread + kThreads * kPerThread / 10));
  std::vector<int> next(kThreads, 0);
  std::string pending_del;  // a LOADJOB of a pair must be followed by its DELJOB at once
  for (const Rec& r : got) {
    if (!pending_del.empty()) {
      ASSERT_EQ(r, (Rec{RecordType::kDelJob, pending_del})) << "a two-record append was split";
      pending_del.clear();
      continue;
    }
    ASSERT_EQ(r.type, RecordType::kLoadJob) << r;
    const size_t colon = r.payload.find(':');
    ASSERT_NE(colon, std::string::npos);
    const int t = std::stoi(r.payload.substr(0, colon));
    const int i = std::stoi(r.payload.substr(colon + 1));
    ASSERT_TRUE(t >= 0 && t < kThreads) << r;
    ASSERT_EQ(i, next[t]) << "thread " << t << " out of order or duplicated";
    ++next[t];
    if (i % 10 == 9) pending_del = r.payload;
  }
  EXPECT_TRUE(pending_del.empty());
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kPerThread) << t;
}

TEST_F(AofWriterTest, AppendsRacingARewriteLandExactlyOnceAfterTheSnapshot) {
  ASSERT_TRUE(writer_.Open(path_, AppendFsync::kEverysec).ok());
  std::atomic<int> done{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> last_pos{0};
  std::thread appender([&] {
    for (int i = 0; !stop.load(); ++i) {
      last_pos.store(writer_.Append(Load("seq:" + std::to_string(i))));
      done.store(i + 1);
      std::this_thread::sleep_for(std::chrono::microseconds(20));  // a rate, not a wait
    }
  });
  ASSERT_TRUE(WaitFor([&] { return done.load() >= 200; }));
  const int before = done.load();
  writer_.BeginCapture();
  const int after = done.load();
  const std::string temp = dir_.File("temp-rewrite.aof");
  const int fd = WriteTempFile(temp, Load("snapshot"));
  ASSERT_TRUE(WaitFor([&] { return done.load() >= after + 200; }));
  const Status finished = writer_.FinishRewrite(fd, temp, path_, false);
  const int at_finish = done.load();
  ASSERT_TRUE(WaitFor([&] { return done.load() >= at_finish + 200; }));
  stop.store(true);
  appender.join();
  const int total = done.load();
  ASSERT_TRUE(finished.ok()) << finished.message();
  ASSERT_TRUE(Released(last_pos.load()));
  writer_.Close();

  const std::vector<Rec> got = ReadRecords(path_);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0], (Rec{RecordType::kLoadJob, "snapshot"}));
  ASSERT_GE(got.size(), 2u);
  // The rest: every record from the capture boundary on, once each, in order.
  const int first = std::stoi(got[1].payload.substr(4));
  EXPECT_GE(first, before);
  EXPECT_LE(first, after + 1);
  for (size_t k = 1; k < got.size(); ++k) {
    ASSERT_EQ(got[k], (Rec{RecordType::kLoadJob, "seq:" + std::to_string(first + static_cast<int>(k) - 1)})) << k;
  }
  EXPECT_EQ(first + static_cast<int>(got.size()) - 1, total);
}

TEST(AofWriterDeathTest, WriteErrorWithPolicyAlwaysExits) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  test::TempDir dir;
  const std::string path = dir.File("appendonly.aof");
  EXPECT_EXIT(
      {
        AofWriter w(nullptr);
        if (!w.Open(path, AppendFsync::kAlways).ok()) std::_Exit(2);
        w.InjectWriteError(EIO);
        const uint64_t p = w.Append(Load("x"));
        // A reply must never be released for a write that did not happen.
        WaitFor([&] { return w.released() >= p; }, milliseconds(5000));
        std::_Exit(w.released() >= p ? 3 : 4);
      },
      ::testing::ExitedWithCode(1), "");
}

}  // namespace
}  // namespace disque::persist
