// Unit tests for disque/engine/job_codec.h: the LOADJOB serialization of PROTOCOL.md 8.5
// (round trips, a hand-built golden record, and rejection of truncated or corrupted input).

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "disque/engine/job_codec.h"

namespace disque::engine {
namespace {

using namespace std::string_literals;

constexpr std::string_view kId = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";
constexpr std::string_view kNodeA = "dcb833cf0123456789abcdef0123456789abcdef";
constexpr std::string_view kNodeB = "0000000000000000000000000000000000000001";

// Offsets in a serialized record (the leading 4-byte L included).
constexpr size_t kIdOffset = 4;
constexpr size_t kStateOffset = 44;
constexpr size_t kQlenOffset = 4 + 68;

JobRecord Sample() {
  JobRecord job;
  job.id = kId;
  job.state = JobState::kQueued;
  job.gc_retry = 3;
  job.flags = kJobBcastQueued | kJobWillQueue;
  job.repl = 3;
  job.etime = 1700000000;
  job.ctime = 1700000000123ULL * 1000000 + 7;
  job.delay = 5;
  job.retry = 300;
  job.nacks = 2;
  job.additional_deliveries = 1;
  job.queue = "myqueue";
  job.body = "hello world";
  job.nodes = {std::string(kNodeA), std::string(kNodeB)};
  return job;
}

std::string Encode(const JobRecord& job) {
  std::string out;
  AppendJobRecord(job, out);
  return out;
}

uint32_t ReadLe32(const std::string& bytes, size_t offset) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i)
    v |= uint32_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  return v;
}

void WriteLe32(std::string& bytes, size_t offset, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) bytes[offset + i] = static_cast<char>(v >> (8 * i));
}

// Encodes, checks the length prefix, parses back and checks every byte was consumed.
void ExpectRoundTrip(const JobRecord& job) {
  const std::string bytes = Encode(job);
  EXPECT_EQ(ReadLe32(bytes, 0), bytes.size() - 4);
  size_t consumed = 0;
  Result<JobRecord> parsed = ParseJobRecord(bytes, &consumed);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, job);
  EXPECT_EQ(consumed, bytes.size());
}

void ExpectRejected(const std::string& bytes, std::string_view reason) {
  Result<JobRecord> parsed = ParseJobRecord(bytes);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find(reason), std::string_view::npos)
      << "message: " << parsed.status().message();
}

// ------------------------------------------------------------------ round trips

TEST(JobCodecRoundTrip, Sample) { ExpectRoundTrip(Sample()); }

TEST(JobCodecRoundTrip, EmptyQueueBodyAndNodes) {
  JobRecord job = Sample();
  job.queue.clear();
  job.body.clear();
  job.nodes.clear();
  ExpectRoundTrip(job);
  EXPECT_EQ(Encode(job).size(), 4u + 68 + 12);
}

TEST(JobCodecRoundTrip, LargeBinaryBody) {
  JobRecord job = Sample();
  job.body.resize(1 << 20);
  for (size_t i = 0; i < job.body.size(); ++i) job.body[i] = static_cast<char>(i * 131 + 7);
  job.queue = "q\0\r\n\xff"s;  // names are binary safe
  ExpectRoundTrip(job);
}

TEST(JobCodecRoundTrip, QueueNameLongerThanSixteenBitsOfLength) {
  JobRecord job = Sample();
  job.queue.assign(70000, 'q');
  job.queue[65535] = '\0';
  const std::string bytes = Encode(job);
  EXPECT_EQ(ReadLe32(bytes, kQlenOffset), 70000u) << "qlen is 32 bits on the wire";
  ExpectRoundTrip(job);
}

TEST(JobCodecRoundTrip, ZeroOneAndManyNodes) {
  JobRecord job = Sample();
  for (size_t count : {0, 1, 2, 200}) {
    job.nodes.clear();
    for (size_t i = 0; i < count; ++i) {
      std::string id(kNodeA);
      const std::string n = std::to_string(i);
      id.replace(id.size() - n.size(), n.size(), n);
      job.nodes.push_back(id);
    }
    SCOPED_TRACE(count);
    ExpectRoundTrip(job);
  }
}

TEST(JobCodecRoundTrip, EveryStateWithEveryGcRetry) {
  JobRecord job = Sample();
  for (JobState state :
       {JobState::kWaitRepl, JobState::kActive, JobState::kQueued, JobState::kAcked}) {
    for (uint8_t gc_retry = 0; gc_retry < 16; ++gc_retry) {
      job.state = state;
      job.gc_retry = gc_retry;
      SCOPED_TRACE(testing::Message() << "state " << int(state) << " gc_retry " << int(gc_retry));
      const std::string bytes = Encode(job);
      EXPECT_EQ(static_cast<uint8_t>(bytes[kStateOffset]),
                static_cast<int>(state) | (gc_retry << 4));
      ExpectRoundTrip(job);
    }
  }
}

TEST(JobCodecRoundTrip, MaximumFieldValues) {
  JobRecord job = Sample();
  job.gc_retry = 15;
  job.flags = 0xff;
  job.repl = std::numeric_limits<uint16_t>::max();
  job.etime = std::numeric_limits<uint32_t>::max();
  job.ctime = std::numeric_limits<uint64_t>::max();
  job.delay = std::numeric_limits<uint32_t>::max();
  job.retry = std::numeric_limits<uint32_t>::max();
  job.nacks = std::numeric_limits<uint16_t>::max();
  job.additional_deliveries = std::numeric_limits<uint16_t>::max();
  ExpectRoundTrip(job);
}

TEST(JobCodecRoundTrip, AppendKeepsWhatTheBufferHeld) {
  std::string out = "prefix";
  AppendJobRecord(Sample(), out);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(out.substr(6), Encode(Sample()));
}

// ------------------------------------------------------------------ golden bytes

// Every field has distinct bytes, so a swapped, misplaced or big-endian field shows.
TEST(JobCodecGolden, MatchesHandBuiltBytes) {
  JobRecord job;
  job.id = kId;
  job.state = JobState::kQueued;  // 2
  job.gc_retry = 3;
  job.flags = 0x05;
  job.repl = 0x0203;
  job.etime = 0x0a0b0c0d;
  job.ctime = 0x0102030405060708ULL;
  job.delay = 0x11121314;
  job.retry = 0x21222324;
  job.nacks = 0x3132;
  job.additional_deliveries = 0x4142;
  job.queue = "q1";
  job.body = "hello";
  job.nodes = {std::string(kNodeA), std::string(kNodeB)};

  // L = 68 fixed + (4 + 2) queue + (4 + 5) body + (4 + 2 * 40) nodes = 167 = 0xa7.
  const std::string expected =
      "\xa7\x00\x00\x00"s
      "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1"
      "\x32"                              // state 2 | gc_retry 3 << 4
      "\x05"                              // flags
      "\x03\x02"                          // repl
      "\x0d\x0c\x0b\x0a"                  // etime
      "\x08\x07\x06\x05\x04\x03\x02\x01"  // ctime
      "\x14\x13\x12\x11"                  // delay
      "\x24\x23\x22\x21"                  // retry
      "\x32\x31"                          // num_nacks
      "\x42\x41"                          // num_deliv
      "\x02\x00\x00\x00"
      "q1"
      "\x05\x00\x00\x00"
      "hello"
      "\x02\x00\x00\x00"
      "dcb833cf0123456789abcdef0123456789abcdef"
      "0000000000000000000000000000000000000001";
  ASSERT_EQ(expected.size(), 4u + 167);
  EXPECT_EQ(Encode(job), expected);

  size_t consumed = 0;
  Result<JobRecord> parsed = ParseJobRecord(expected, &consumed);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, job);
  EXPECT_EQ(consumed, expected.size());
}

// ------------------------------------------------------------------ rejection

TEST(JobCodecReject, EveryStrictPrefix) {
  const std::string bytes = Encode(Sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    size_t consumed = 12345;
    Result<JobRecord> parsed = ParseJobRecord(std::string_view(bytes).substr(0, n), &consumed);
    EXPECT_FALSE(parsed.ok());
    EXPECT_EQ(consumed, 12345u);  // untouched on failure
  }
}

TEST(JobCodecReject, BadIdCharacters) {
  for (size_t offset : {size_t{0}, size_t{1}, size_t{10}, size_t{35}}) {
    std::string bytes = Encode(Sample());
    bytes[kIdOffset + offset] = 'x';
    SCOPED_TRACE(offset);
    ExpectRejected(bytes, "bad job ID");
  }
}

TEST(JobCodecReject, StateAboveAcked) {
  for (uint8_t state = 4; state < 16; ++state) {
    std::string bytes = Encode(Sample());
    bytes[kStateOffset] = static_cast<char>(state | (1 << 4));
    SCOPED_TRACE(int(state));
    ExpectRejected(bytes, "bad job state");
  }
}

TEST(JobCodecReject, NodeIdNotLowercaseHex) {
  for (char bad : {'A', 'F', 'g', ' ', '\0'}) {
    std::string bytes = Encode(Sample());
    bytes[bytes.size() - 1] = bad;  // last character of the last node ID
    SCOPED_TRACE(int(bad));
    ExpectRejected(bytes, "bad node ID");
  }
}

TEST(JobCodecReject, LengthTooSmallForTheFixedBlock) {
  for (uint32_t len : {0u, 1u, 67u, 68u, 79u}) {
    std::string bytes = Encode(Sample());
    WriteLe32(bytes, 0, len);
    SCOPED_TRACE(len);
    ExpectRejected(bytes, "too small");
  }
}

TEST(JobCodecReject, LengthLargerThanTheInput) {
  for (uint32_t extra : {1u, 1000u}) {
    std::string bytes = Encode(Sample());
    WriteLe32(bytes, 0, ReadLe32(bytes, 0) + extra);
    ExpectRejected(bytes, "truncated record");
  }
  std::string bytes = Encode(Sample());
  WriteLe32(bytes, 0, std::numeric_limits<uint32_t>::max());  // 4 + L must not wrap
  ExpectRejected(bytes, "truncated record");
}

TEST(JobCodecReject, QueueLengthPastTheRecord) {
  for (uint32_t qlen : {1000u, std::numeric_limits<uint32_t>::max()}) {
    std::string bytes = Encode(Sample());
    WriteLe32(bytes, kQlenOffset, qlen);
    SCOPED_TRACE(qlen);
    ExpectRejected(bytes, "queue name runs past");
  }
}

TEST(JobCodecReject, BodyLengthPastTheRecord) {
  const JobRecord job = Sample();
  std::string bytes = Encode(job);
  WriteLe32(bytes, kQlenOffset + 4 + job.queue.size(), std::numeric_limits<uint32_t>::max());
  ExpectRejected(bytes, "body runs past");
}

// A huge count is rejected by arithmetic, before anything is allocated for it.
TEST(JobCodecReject, NodeCountPastTheRecord) {
  const JobRecord job = Sample();
  const size_t count_offset = kQlenOffset + 4 + job.queue.size() + 4 + job.body.size();
  for (uint32_t count : {3u, std::numeric_limits<uint32_t>::max()}) {
    std::string bytes = Encode(job);
    ASSERT_EQ(ReadLe32(bytes, count_offset), 2u);
    WriteLe32(bytes, count_offset, count);
    SCOPED_TRACE(count);
    ExpectRejected(bytes, "node list runs past");
  }
}

// A shorter field leaves bytes inside L unread: Disque's reader would misparse them.
TEST(JobCodecReject, TrailingBytesInsideTheRecord) {
  std::string bytes = Encode(Sample());
  bytes += "junk";
  WriteLe32(bytes, 0, ReadLe32(bytes, 0) + 4);
  ExpectRejected(bytes, "4 trailing bytes");

  // Same with a node count one short of the nodes present.
  const JobRecord job = Sample();
  bytes = Encode(job);
  WriteLe32(bytes, kQlenOffset + 4 + job.queue.size() + 4 + job.body.size(), 1);
  ExpectRejected(bytes, "40 trailing bytes");
}

// ------------------------------------------------------------------ streams

TEST(JobCodecStream, ConcatenatedRecordsParseOneAfterTheOther) {
  JobRecord first = Sample();
  JobRecord second = Sample();
  second.id[12] = '+';
  second.state = JobState::kAcked;
  second.body = std::string(5000, 'b');
  second.nodes.clear();

  std::string buffer;
  AppendJobRecord(first, buffer);
  const size_t first_size = buffer.size();
  AppendJobRecord(second, buffer);
  buffer += "\x01\x02"s;  // the start of a third record, not all there yet

  std::string_view rest = buffer;
  size_t consumed = 0;
  Result<JobRecord> a = ParseJobRecord(rest, &consumed);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(*a, first);
  EXPECT_EQ(consumed, first_size);
  rest.remove_prefix(consumed);

  Result<JobRecord> b = ParseJobRecord(rest, &consumed);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(*b, second);
  rest.remove_prefix(consumed);

  EXPECT_EQ(rest, "\x01\x02"s);
  EXPECT_FALSE(ParseJobRecord(rest).ok());
}

TEST(JobCodecStream, ConsumedIsOptional) {
  Result<JobRecord> parsed = ParseJobRecord(Encode(Sample()));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, Sample());
}

}  // namespace
}  // namespace disque::engine
