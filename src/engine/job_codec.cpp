#include "disque/engine/job_codec.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "disque/common/byte_cursor.h"

// The layout is in job_codec.h and PROTOCOL.md 8.5. Integers are written and read a byte
// at a time, least significant first, so the result does not depend on the host's byte
// order or struct layout. The parser checks every length against the bytes left inside L
// before reading or allocating, in 64-bit arithmetic where it adds.

namespace disque::engine {
namespace {

constexpr size_t kNodeIdLen = 40;
constexpr size_t kLengthSize = 4;  // the leading uint32 L
constexpr size_t kFixedBlockSize = kJobIdLen + 1 + 1 + 2 + 4 + 8 + 4 + 4 + 2 + 2;
constexpr size_t kCountsSize = 3 * 4;  // qlen, blen and n
// The smallest L: empty queue name and body, no nodes.
constexpr size_t kMinRecordLen = kFixedBlockSize + kCountsSize;
static_assert(kFixedBlockSize == 68, "PROTOCOL.md 8.5: the fixed block is 68 bytes");

constexpr uint8_t kMaxState = static_cast<uint8_t>(JobState::kAcked);

bool IsNodeId(std::string_view id) {
  return id.size() == kNodeIdLen && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// --- Encoding -------------------------------------------------------------------------

template <typename T>
void PutLittleEndian(std::string& out, T value) {
  char bytes[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  out.append(bytes, sizeof(T));
}

// A fixed-width text field: cut or padded with spaces should the precondition fail.
void PutFixed(std::string& out, std::string_view text, size_t width) {
  const size_t n = std::min(text.size(), width);
  out.append(text.substr(0, n));
  out.append(width - n, ' ');
}

void PutString(std::string& out, std::string_view text) {
  PutLittleEndian<uint32_t>(out, static_cast<uint32_t>(text.size()));
  out.append(text);
}

// L for `job`, in 64 bits so that the precondition check itself cannot wrap.
uint64_t RecordLen(const JobRecord& job) {
  return uint64_t{kMinRecordLen} + job.queue.size() + job.body.size() +
         uint64_t{kNodeIdLen} * job.nodes.size();
}

// --- Decoding -------------------------------------------------------------------------

using Cursor = ByteCursor<std::endian::little>;

Status Error(std::string what) { return Status::Error(std::move(what)); }

// A uint32 length followed by that many bytes, all within the cursor.
Status ReadString(Cursor& in, std::string_view what, std::string& out) {
  if (in.left() < 4) return Error("truncated " + std::string(what) + " length");
  const uint32_t len = in.Read<uint32_t>();
  if (len > in.left()) return Error(std::string(what) + " runs past the record");
  out = in.Bytes(len);
  return Status::Ok();
}

Status ReadNodes(Cursor& in, std::vector<std::string>& nodes) {
  if (in.left() < 4) return Error("truncated node count");
  const uint32_t count = in.Read<uint32_t>();
  // Checked before reserving, so a lying count costs nothing.
  if (count > in.left() / kNodeIdLen) return Error("node list runs past the record");
  nodes.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    std::string_view id = in.Bytes(kNodeIdLen);
    if (!IsNodeId(id)) return Error("bad node ID");
    nodes.emplace_back(id);
  }
  return Status::Ok();
}

}  // namespace

void AppendJobRecord(const JobRecord& job, std::string& out) {
  assert(job.id.size() == kJobIdLen);
  assert(job.gc_retry < 16);
  assert(std::all_of(job.nodes.begin(), job.nodes.end(),
                     [](const std::string& id) { return id.size() == kNodeIdLen; }));
  const uint64_t len = RecordLen(job);
  assert(len <= std::numeric_limits<uint32_t>::max());
  const size_t start = out.size();
  out.reserve(start + kLengthSize + len);

  PutLittleEndian<uint32_t>(out, static_cast<uint32_t>(len));
  PutFixed(out, job.id, kJobIdLen);
  const auto state = static_cast<uint8_t>(job.state);
  out.push_back(static_cast<char>((state & 0x0f) | ((job.gc_retry & 0x0f) << 4)));
  out.push_back(static_cast<char>(job.flags));
  PutLittleEndian<uint16_t>(out, job.repl);
  PutLittleEndian<uint32_t>(out, job.etime);
  PutLittleEndian<uint64_t>(out, job.ctime);
  PutLittleEndian<uint32_t>(out, job.delay);
  PutLittleEndian<uint32_t>(out, job.retry);
  PutLittleEndian<uint16_t>(out, job.nacks);
  PutLittleEndian<uint16_t>(out, job.additional_deliveries);
  PutString(out, job.queue);
  PutString(out, job.body);
  PutLittleEndian<uint32_t>(out, static_cast<uint32_t>(job.nodes.size()));
  for (const std::string& node : job.nodes) PutFixed(out, node, kNodeIdLen);
  assert(out.size() - start == kLengthSize + len);
}

Result<JobRecord> ParseJobRecord(std::string_view in, size_t* consumed) {
  if (in.size() < kLengthSize) return Error("truncated record");
  const uint32_t len = Cursor{in}.Read<uint32_t>();
  // in.size() >= 4 here, so the subtraction cannot wrap (nor can 4 + L on a 32-bit host).
  if (in.size() - kLengthSize < len) return Error("truncated record");
  if (len < kMinRecordLen) return Error("record length " + std::to_string(len) + " too small");

  // From here every read stays within L: the fixed block and the counts fit, and each
  // variable field is checked against what is left.
  Cursor record{in.substr(kLengthSize, len)};
  JobRecord job;
  std::string_view id = record.Bytes(kJobIdLen);
  if (!IsValidJobIdFormat(id)) return Error("bad job ID");
  job.id = id;
  const auto state_byte = record.Read<uint8_t>();
  if ((state_byte & 0x0f) > kMaxState) return Error("bad job state");
  job.state = static_cast<JobState>(state_byte & 0x0f);
  job.gc_retry = static_cast<uint8_t>(state_byte >> 4);
  job.flags = record.Read<uint8_t>();
  job.repl = record.Read<uint16_t>();
  job.etime = record.Read<uint32_t>();
  job.ctime = record.Read<uint64_t>();
  job.delay = record.Read<uint32_t>();
  job.retry = record.Read<uint32_t>();
  job.nacks = record.Read<uint16_t>();
  job.additional_deliveries = record.Read<uint16_t>();
  if (Status s = ReadString(record, "queue name", job.queue); !s.ok()) return s;
  if (Status s = ReadString(record, "body", job.body); !s.ok()) return s;
  if (Status s = ReadNodes(record, job.nodes); !s.ok()) return s;
  if (record.left() != 0) return Error(std::to_string(record.left()) + " trailing bytes in record");

  if (consumed != nullptr) *consumed = kLengthSize + size_t{len};
  return job;
}

}  // namespace disque::engine
