#include "disque/persist/aof_format.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "disque/engine/job_codec.h"
#include "disque/persist/aof_check.h"
#include "support/files.h"

namespace disque::persist {
namespace {

using Outcome = AofReader::Outcome;

struct Rec {
  RecordType type;
  std::string payload;
  bool operator==(const Rec&) const = default;
};

// What a reader reports for a file: the records, then how it ended and where.
struct Scan {
  std::vector<Rec> records;
  Outcome end = Outcome::kEnd;
  uint64_t offset = 0;
  std::string error;
};

Scan ScanFile(const std::string& path) {
  Result<AofReader> opened = AofReader::Open(path);
  EXPECT_TRUE(opened.ok()) << opened.status().message();
  AofReader reader = std::move(opened).value();
  Scan scan;
  while (true) {
    const Outcome o = reader.Next();
    if (o != Outcome::kRecord) {
      scan.end = o;
      scan.offset = reader.offset();
      scan.error = reader.error();
      return scan;
    }
    scan.records.push_back({reader.type(), std::string(reader.payload())});
  }
}

class AofFormatTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& bytes) {
    test::WriteFile(path_, bytes);
    return path_;
  }
  // A file of three records; `ends` gets each record's end offset.
  std::string ThreeRecords(std::vector<size_t>* ends = nullptr) {
    std::string file = FileHeader();
    for (const Rec& r : records_) {
      AppendRecord(r.type, r.payload, file);
      if (ends != nullptr) ends->push_back(file.size());
    }
    return file;
  }

  test::TempDir dir_;
  const std::string path_ = dir_.File("disque.aof");
  const std::vector<Rec> records_ = {
      {RecordType::kLoadJob, "first job payload"},
      {RecordType::kDelJob, std::string(40, 'x')},
      {RecordType::kLoadJob, std::string(5000, 'b')},  // spans more than one read
  };
};

TEST_F(AofFormatTest, HeaderIsSixteenVersionedBytes) {
  const std::string h = FileHeader();
  ASSERT_EQ(h.size(), kAofHeaderSize);
  EXPECT_EQ(h.substr(0, 8), kAofMagic);
  EXPECT_EQ(h.substr(8, 4), std::string("\x01\x00\x00\x00", 4));
}

TEST_F(AofFormatTest, RecordLayout) {
  std::string out;
  AppendRecord(RecordType::kDelJob, "abc", out);
  ASSERT_EQ(out.size(), kRecordHeaderSize + 3);
  EXPECT_EQ(out.substr(0, 8), std::string("\x03\x00\x00\x00\x02\x00\x00\x00", 8));
  EXPECT_EQ(out.substr(16), "abc");
}

TEST_F(AofFormatTest, RoundTrip) {
  const Scan scan = ScanFile(Write(ThreeRecords()));
  EXPECT_EQ(scan.records, records_);
  EXPECT_EQ(scan.end, Outcome::kEnd);
}

TEST_F(AofFormatTest, EmptyFileAndHeaderOnlyAreClean) {
  EXPECT_EQ(ScanFile(Write("")).end, Outcome::kEnd);
  const Scan scan = ScanFile(Write(FileHeader()));
  EXPECT_TRUE(scan.records.empty());
  EXPECT_EQ(scan.end, Outcome::kEnd);
}

TEST_F(AofFormatTest, TornAtEveryOffsetOfTheLastRecord) {
  std::vector<size_t> ends;
  const std::string file = ThreeRecords(&ends);
  const size_t last_start = ends[1];
  for (size_t cut = last_start + 1; cut < file.size(); ++cut) {
    const Scan scan = ScanFile(Write(file.substr(0, cut)));
    ASSERT_EQ(scan.end, Outcome::kTorn) << "cut at " << cut;
    EXPECT_EQ(scan.offset, last_start) << "cut at " << cut;
    EXPECT_EQ(scan.records, std::vector<Rec>(records_.begin(), records_.begin() + 2)) << "cut at " << cut;
  }
  // A cut exactly between records is a clean end.
  const Scan clean = ScanFile(Write(file.substr(0, last_start)));
  EXPECT_EQ(clean.end, Outcome::kEnd);
}

TEST_F(AofFormatTest, TornInsideTheFileHeader) {
  const std::string h = FileHeader();
  for (size_t cut = 1; cut < h.size(); ++cut) {
    const Scan scan = ScanFile(Write(h.substr(0, cut)));
    EXPECT_EQ(scan.end, Outcome::kTorn) << cut;
    EXPECT_EQ(scan.offset, 0u);
  }
}

TEST_F(AofFormatTest, ZeroFilledTailIsTorn) {
  std::vector<size_t> ends;
  std::string file = ThreeRecords(&ends);
  file.append(100, '\0');  // a crash after the size grew, before the data landed
  const Scan scan = ScanFile(Write(file));
  EXPECT_EQ(scan.end, Outcome::kTorn);
  EXPECT_EQ(scan.offset, ends[2]);
  EXPECT_EQ(scan.records, records_);
}

TEST_F(AofFormatTest, LastRecordWithUnwrittenPayloadIsTorn) {
  std::vector<size_t> ends;
  std::string file = ThreeRecords(&ends);
  // The last record's header landed, its payload pages did not (zeros).
  std::fill(file.begin() + static_cast<long>(ends[1] + kRecordHeaderSize), file.end(), '\0');
  const Scan scan = ScanFile(Write(file));
  EXPECT_EQ(scan.end, Outcome::kTorn);
  EXPECT_EQ(scan.offset, ends[1]);
}

TEST_F(AofFormatTest, AnyFlippedByteBeforeTheLastRecordIsCorruption) {
  std::vector<size_t> ends;
  const std::string file = ThreeRecords(&ends);
  // Every byte of the first two records: the damage is found where it is, never
  // mistaken for a torn tail, and nothing after it is read.
  for (size_t at = kAofHeaderSize; at < ends[1]; ++at) {
    std::string bad = file;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    const Scan scan = ScanFile(Write(bad));
    ASSERT_EQ(scan.end, Outcome::kCorrupt) << "byte " << at;
    const uint64_t record_start = at < ends[0] ? kAofHeaderSize : ends[0];
    EXPECT_EQ(scan.offset, record_start) << "byte " << at;
    EXPECT_FALSE(scan.error.empty());
  }
}

TEST_F(AofFormatTest, DamagedHeaderOfTheLastRecordIsCorruption) {
  std::vector<size_t> ends;
  std::string file = ThreeRecords(&ends);
  file[ends[1] + 1] ^= 0x01;  // its length: the header check catches it
  const Scan scan = ScanFile(Write(file));
  EXPECT_EQ(scan.end, Outcome::kCorrupt);
  EXPECT_EQ(scan.offset, ends[1]);
}

TEST_F(AofFormatTest, BadFileHeader) {
  std::string file = ThreeRecords();
  file[0] = '*';  // a Disque RESP file, or anything else
  Scan scan = ScanFile(Write(file));
  EXPECT_EQ(scan.end, Outcome::kCorrupt);
  EXPECT_EQ(scan.offset, 0u);
  file = ThreeRecords();
  file[13] ^= 0x10;  // the header checksum
  scan = ScanFile(Write(file));
  EXPECT_EQ(scan.end, Outcome::kCorrupt);
  EXPECT_EQ(scan.offset, 0u);
}

TEST_F(AofFormatTest, CheckerReportsAndFixes) {
  // Real payloads this time: the checker decodes them.
  const std::string id = "D-a48fa499-62B4GvTabXRD0oLwl16dQQcw-05a1";
  engine::JobRecord job;
  job.id = id;
  job.queue = "q";
  job.body = "body";
  std::string payload;
  engine::AppendJobRecord(job, payload);
  std::vector<size_t> ends;
  std::string file = FileHeader();
  for (int i = 0; i < 3; ++i) {
    AppendRecord(i == 1 ? RecordType::kDelJob : RecordType::kLoadJob, i == 1 ? id : payload, file);
    ends.push_back(file.size());
  }
  Write(file);
  Result<AofCheck> valid = CheckAof(path_);
  ASSERT_TRUE(valid.ok());
  EXPECT_EQ(valid->verdict, AofCheck::Verdict::kValid);
  EXPECT_EQ(valid->loadjobs, 2u);
  EXPECT_EQ(valid->deljobs, 1u);
  Write(file.substr(0, file.size() - 3));
  Result<AofCheck> check = CheckAof(path_);
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->verdict, AofCheck::Verdict::kTornTail);
  EXPECT_EQ(check->valid, ends[1]);
  EXPECT_EQ(RunCheckAof(path_, false), 1);
  EXPECT_EQ(RunCheckAof(path_, true), 0);
  EXPECT_EQ(test::ReadFile(path_), file.substr(0, ends[1]));
  EXPECT_EQ(RunCheckAof(path_, false), 0);
}

TEST_F(AofFormatTest, CheckerDecodesPayloads) {
  // Framing intact, but the LOADJOB payload is not a job serialization.
  Write(ThreeRecords());
  Result<AofCheck> check = CheckAof(path_);
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->verdict, AofCheck::Verdict::kCorrupt);
  EXPECT_EQ(check->valid, kAofHeaderSize);
  EXPECT_NE(check->problem.find("LOADJOB"), std::string::npos);
}

}  // namespace
}  // namespace disque::persist

namespace disque::persist {
namespace {

std::string RespCommand(std::string_view name, std::string_view arg) {
  std::string out = "*2\r\n$" + std::to_string(name.size()) + "\r\n";
  out.append(name).append("\r\n$").append(std::to_string(arg.size())).append("\r\n");
  out.append(arg).append("\r\n");
  return out;
}

TEST_F(AofFormatTest, ReadsDisqueOwnAofFiles) {
  const std::string id = "D-a48fa499-62B4GvTabXRD0oLwl16dQQcw-05a1";
  engine::JobRecord job;
  job.id = id;
  job.queue = "q";
  job.body = std::string(300, 'z');
  std::string payload;
  engine::AppendJobRecord(job, payload);
  const std::string first = RespCommand("LOADJOB", payload);
  const std::string file = first + RespCommand("DELJOB", id);
  Scan scan = ScanFile(Write(file));
  ASSERT_EQ(scan.end, Outcome::kEnd);
  EXPECT_EQ(scan.records, (std::vector<Rec>{{RecordType::kLoadJob, payload}, {RecordType::kDelJob, id}}));
  // Cut anywhere in the last command: a torn tail at its start.
  for (size_t cut = first.size() + 1; cut < file.size(); ++cut) {
    scan = ScanFile(Write(file.substr(0, cut)));
    ASSERT_EQ(scan.end, Outcome::kTorn) << cut;
    EXPECT_EQ(scan.offset, first.size()) << cut;
    EXPECT_EQ(scan.records.size(), 1u) << cut;
  }
  // Another command is damage, as in Disque ("Unknown command ... reading the append
  // only file").
  scan = ScanFile(Write(first + RespCommand("ADDJOB", "x") + first));
  EXPECT_EQ(scan.end, Outcome::kCorrupt);
  EXPECT_EQ(scan.offset, first.size());
  Result<AofCheck> check = CheckAof(Write(file));
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->verdict, AofCheck::Verdict::kValid);
}

}  // namespace
}  // namespace disque::persist
