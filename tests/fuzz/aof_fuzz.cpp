// Fuzz target for the AOF reader (include/disque/persist/aof_format.h) and the checker
// built on it (aof_check.h), which decodes each record's payload as the loader does:
// the input is a file, in our format or Disque's own (RESP commands), whole, cut short
// or damaged.
//
// Input: 2 control bytes, then the file.
//   byte 0  0xF0..0xFF: "stretched" (below). Other values: the file alone.
//   byte 1  where to cut the file for the prefix check below (from its end), and in the
//           stretched mode where the 1 MB boundary falls.
//
// Checks, besides "no crash, no sanitizer report":
// - The reader's classification is consistent: records follow one another, a clean end
//   is at the end of the file, a torn tail or damage is reported where the verified
//   bytes end, and a finished reader stays finished. CheckAof agrees with it record for
//   record, stopping at the first payload that does not decode.
// - Truncating at the reported offset of a torn tail or of damage (what --check-aof --fix
//   and aof-load-truncated do) leaves a clean file with the same records.
// - A clean file cut short reads as the records that fit, then a torn tail (or a clean
//   end if the cut falls between records): never as damage.
// - Every LOADJOB payload that decodes re-encodes to the same bytes, and the records
//   written again by AppendRecord read back the same (the writer and reader agree).
// - Stretched: the reader reads 1 MB at a time, which small inputs never reach. A valid
//   LOADJOB is inserted after the file's header (16 bytes, or none for a Disque file,
//   which starts with '*') so that the rest of the file starts byte 1 bytes before the
//   first 1 MB ends, and its records are read across a refill of the buffer. The file
//   must read exactly as it did without the padding (records shifted), and a cut near
//   its end must still read as above.
//
// A stretched input costs tens of plain ones (two 1 MB files through the reader, and
// ASan maps every megabyte afresh), but the comparison of byte 0 is left visible to
// libFuzzer's comparison tracing, which then writes 0xF0 into inputs now and then: a
// stretched variant of a plain file is how the bug below was found from scratch.
//
// Found: AofReader::NextLegacy kept the command name as a view into its buffer, which
// the Fill() for the argument could reallocate (use after free, for Disque files whose
// records cross a 1 MB boundary). The "stretched_legacy" seeds are its regression inputs.
//
// The file is handed to the reader through a memfd (a temporary file if memfd_create is
// not available). Built with libFuzzer under clang (`make fuzz`), and as aof_fuzz_replay,
// which runs the seed corpus under any compiler in ctest (replay_main.cpp).

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "disque/common/status.h"
#include "disque/engine/job_codec.h"
#include "disque/engine/job_id.h"
#include "disque/persist/aof_check.h"
#include "disque/persist/aof_format.h"

namespace {

using disque::Result;
using disque::persist::AofCheck;
using disque::persist::AofReader;
using disque::persist::RecordType;

// The reader's read chunk (kReadChunk in aof_format.cpp).
constexpr size_t kReadChunk = 1 << 20;
constexpr size_t kControlSize = 2;
// Above this, a payload is neither kept nor re-encoded: only the stretched mode's padding
// record is that big, and each copy of a megabyte costs page faults under ASan.
constexpr size_t kMaxCheckedPayload = 64 * 1024;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "aof_fuzz: %s\n", what);
  std::abort();
}

// The file the reader opens: one memfd (or temporary file) rewritten for each read.
class ScratchFile {
 public:
  ScratchFile() {
    fd_ = ::memfd_create("aof_fuzz", 0);
    if (fd_ >= 0) {
      path_ = "/proc/self/fd/" + std::to_string(fd_);
      return;
    }
    char name[] = "/tmp/aof_fuzz.XXXXXX";
    fd_ = ::mkstemp(name);
    if (fd_ < 0) Fail("cannot create a scratch file");
    path_ = name;
    unlink_ = true;
  }
  ~ScratchFile() {
    ::close(fd_);
    if (unlink_) ::unlink(path_.c_str());
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Overwritten, then cut to size: pages the file already has are reused, which matters
  // for the 1 MB files of the stretched mode.
  const std::string& Write(std::string_view bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n =
          ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
      if (n <= 0) Fail("cannot write the scratch file");
      done += static_cast<size_t>(n);
    }
    if (::ftruncate(fd_, static_cast<off_t>(bytes.size())) != 0)
      Fail("cannot truncate the scratch file");
    return path_;
  }

 private:
  int fd_ = -1;
  std::string path_;
  bool unlink_ = false;
};

struct Record {
  RecordType type;
  std::string payload;  // empty past kMaxCheckedPayload (only the stretched mode's padding)
  size_t size;          // of the payload
  uint64_t offset;      // where it starts in the file
  uint64_t end;         // where the next one starts

  bool operator==(const Record&) const = default;
};

// What AofReader made of a file.
struct Reading {
  std::vector<Record> records;
  AofReader::Outcome end = AofReader::Outcome::kEnd;
  uint64_t offset = 0;  // of the torn tail or the damage
  std::string error;    // of the damage
  bool legacy = false;
};

Reading Read(ScratchFile& scratch, std::string_view file) {
  Result<AofReader> opened = AofReader::Open(scratch.Write(file));
  if (!opened.ok()) Fail("cannot open the scratch file");
  AofReader reader = std::move(opened).value();
  if (reader.size() != file.size()) Fail("the reader's size is not the file's");
  Reading out;
  while (true) {
    const AofReader::Outcome outcome = reader.Next();
    if (outcome == AofReader::Outcome::kRecord) {
      if (reader.type() != RecordType::kLoadJob && reader.type() != RecordType::kDelJob)
        Fail("a record of no known type");
      // Records follow one another with no gap (the first one follows the header).
      if (!out.records.empty() && reader.offset() != out.records.back().end)
        Fail("a gap between records");
      if (out.records.empty() &&
          reader.offset() != (reader.legacy() ? 0 : disque::persist::kAofHeaderSize)) {
        Fail("the first record is not right after the header");
      }
      if (reader.valid_end() <= reader.offset() || reader.valid_end() > file.size())
        Fail("valid_end() out of range");
      const std::string_view payload = reader.payload();
      out.records.push_back(
          {reader.type(),
           std::string(payload.size() <= kMaxCheckedPayload ? payload : std::string_view()),
           payload.size(), reader.offset(), reader.valid_end()});
      continue;
    }
    out.end = outcome;
    out.offset = reader.offset();
    out.error = reader.error();
    out.legacy = reader.legacy();
    if (outcome == AofReader::Outcome::kEnd) {
      if (reader.valid_end() != file.size()) Fail("a clean end before the end of the file");
    } else {
      if (reader.offset() != reader.valid_end())
        Fail("a torn tail or damage away from the verified end");
      if (reader.offset() > file.size()) Fail("a torn tail or damage past the end of the file");
      if (outcome == AofReader::Outcome::kCorrupt && reader.error().empty())
        Fail("damage without a reason");
    }
    if (reader.Next() != AofReader::Outcome::kEnd) Fail("a finished reader read on");
    return out;
  }
}

// CheckAof decodes payloads on top of the reader: it must stop at the first record that
// does not decode, and otherwise agree with the reader.
void CheckChecker(ScratchFile& scratch, std::string_view file, const Reading& reading) {
  Result<AofCheck> checked = disque::persist::CheckAof(scratch.Write(file));
  if (!checked.ok()) Fail("CheckAof cannot open the scratch file");
  const AofCheck& c = *checked;
  uint64_t loadjobs = 0, deljobs = 0;
  for (const Record& r : reading.records) {
    bool decodes;
    if (r.type == RecordType::kDelJob) {
      decodes = disque::engine::IsValidJobIdFormat(r.payload);
    } else {
      // Bytes after the job's own length are ignored, as the loader ignores them.
      size_t used = 0;
      Result<disque::engine::JobRecord> job = disque::engine::ParseJobRecord(r.payload, &used);
      decodes = job.ok();
      if (decodes) {
        std::string again;
        disque::engine::AppendJobRecord(*job, again);
        if (again != std::string_view(r.payload).substr(0, used))
          Fail("a decoded LOADJOB does not re-encode to its bytes");
      }
    }
    if (!decodes) {
      if (c.verdict != AofCheck::Verdict::kCorrupt || c.valid != r.offset)
        Fail("CheckAof passed a bad payload");
      if (c.loadjobs != loadjobs || c.deljobs != deljobs) Fail("CheckAof miscounted the records");
      return;
    }
    ++(r.type == RecordType::kDelJob ? deljobs : loadjobs);
  }
  if (c.loadjobs != loadjobs || c.deljobs != deljobs) Fail("CheckAof miscounted the records");
  if (c.size != file.size()) Fail("CheckAof reports another size");
  switch (reading.end) {
    case AofReader::Outcome::kEnd:
      if (c.verdict != AofCheck::Verdict::kValid || c.valid != c.size)
        Fail("CheckAof disagrees on a clean file");
      break;
    case AofReader::Outcome::kTorn:
      if (c.verdict != AofCheck::Verdict::kTornTail || c.valid != reading.offset)
        Fail("CheckAof disagrees on a torn tail");
      break;
    case AofReader::Outcome::kCorrupt:
      if (c.verdict != AofCheck::Verdict::kCorrupt || c.valid != reading.offset)
        Fail("CheckAof disagrees on damage");
      break;
    case AofReader::Outcome::kRecord:
      Fail("a reading that did not end");
  }
}

bool SameRecords(const std::vector<Record>& a, const std::vector<Record>& b, size_t n) {
  if (a.size() < n || b.size() < n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (a[i].type != b[i].type || a[i].payload != b[i].payload || a[i].size != b[i].size)
      return false;
  }
  return true;
}

// Cut at the offset of the torn tail or the damage: a clean file, same records.
void CheckTruncation(ScratchFile& scratch, std::string_view file, const Reading& reading) {
  if (reading.end == AofReader::Outcome::kEnd) return;
  const Reading cut = Read(scratch, file.substr(0, reading.offset));
  if (cut.end != AofReader::Outcome::kEnd)
    Fail("truncating at the reported offset does not leave a clean file");
  if (cut.records != reading.records) Fail("truncating at the reported offset changes the records");
}

// A clean file cut `from_end` + 1 bytes before its end: the records that fit, then a
// torn tail where the first incomplete one starts (or a clean end between records).
void CheckPrefix(ScratchFile& scratch, std::string_view file, const Reading& reading,
                 uint8_t from_end) {
  if (reading.end != AofReader::Outcome::kEnd || file.empty()) return;
  const size_t size = file.size() - 1 - from_end % file.size();
  const Reading cut = Read(scratch, file.substr(0, size));
  size_t fit = 0;
  while (fit < reading.records.size() && reading.records[fit].end <= size) ++fit;
  const uint64_t header_end = reading.legacy ? 0 : disque::persist::kAofHeaderSize;
  const uint64_t complete_end = fit > 0 ? reading.records[fit - 1].end : header_end;
  if (size == 0 || size == complete_end) {
    if (cut.end != AofReader::Outcome::kEnd) Fail("a clean file cut between records is not clean");
    if (cut.records !=
        std::vector<Record>(reading.records.begin(), reading.records.begin() + fit)) {
      Fail("a clean file cut between records lost records");
    }
    return;
  }
  // QUIRK: a Disque file cut to less than our 16-byte header is judged as our header
  // and reported as damage ("bad file header").
  if (reading.legacy && size < disque::persist::kAofHeaderSize &&
      cut.end == AofReader::Outcome::kCorrupt)
    return;
  if (cut.end != AofReader::Outcome::kTorn) Fail("a clean file cut short is not a torn tail");
  const uint64_t torn_at = size < header_end ? 0 : complete_end;
  if (cut.offset != torn_at) Fail("a clean file cut short is torn at the wrong offset");
  if (cut.records.size() != fit || !SameRecords(cut.records, reading.records, fit)) {
    Fail("a clean file cut short lost records");
  }
}

// The records written again in our format read back the same.
void CheckRewrite(ScratchFile& scratch, const Reading& reading) {
  std::string file = disque::persist::FileHeader();
  for (const Record& r : reading.records) disque::persist::AppendRecord(r.type, r.payload, file);
  const Reading again = Read(scratch, file);
  if (again.end != AofReader::Outcome::kEnd || again.legacy)
    Fail("rewritten records do not read cleanly");
  if (again.records.size() != reading.records.size() ||
      !SameRecords(again.records, reading.records, reading.records.size())) {
    Fail("rewritten records read back differently");
  }
}

// A valid LOADJOB record of exactly `size` bytes (in our format, or Disque's RESP). The
// last one is kept: a stretched input and its mutations mostly ask for the same one.
const std::string& PaddingRecord(size_t size, bool legacy) {
  static std::string cached;
  static bool cached_legacy = false;
  if (cached.size() == size && cached_legacy == legacy) return cached;
  disque::engine::JobRecord job;
  job.id = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";
  job.queue = "padding";
  auto build = [&](size_t body) {
    job.body.assign(body, 'x');
    std::string payload;
    disque::engine::AppendJobRecord(job, payload);
    std::string out;
    if (legacy) {
      out = "*2\r\n$7\r\nloadjob\r\n$" + std::to_string(payload.size()) + "\r\n";
      out += payload;
      out += "\r\n";
    } else {
      disque::persist::AppendRecord(RecordType::kLoadJob, payload, out);
    }
    return out;
  };
  // The overhead depends on the body only through the digits of the RESP length, which
  // has as many digits as `size` at these sizes.
  const size_t overhead = build(0).size() + (legacy ? std::to_string(size).size() - 2 : 0);
  cached = build(size - overhead);
  cached_legacy = legacy;
  if (cached.size() != size) Fail("cannot build a padding record of that size");
  return cached;
}

// The stretched file reads as the plain one with the padding record in front: where the
// reader's buffer is refilled changes nothing.
void CheckStretched(const Reading& plain, const Reading& stretched, size_t padding, bool legacy) {
  if (!legacy && plain.end == AofReader::Outcome::kCorrupt && plain.offset == 0) {
    // A bad file header: the same, before the padding.
    if (stretched.end != plain.end || stretched.offset != 0 || stretched.error != plain.error ||
        !stretched.records.empty()) {
      Fail("a stretched file with a bad header reads differently");
    }
    return;
  }
  if (stretched.records.empty() || stretched.records[0].type != RecordType::kLoadJob)
    Fail("the padding was not read");
  if (stretched.records.size() != plain.records.size() + 1)
    Fail("a stretched file has other records");
  for (size_t i = 0; i < plain.records.size(); ++i) {
    Record shifted = plain.records[i];
    shifted.offset += padding;
    shifted.end += padding;
    if (!(stretched.records[i + 1] == shifted)) Fail("a stretched file reads a record differently");
  }
  if (stretched.end != plain.end || stretched.error != plain.error)
    Fail("a stretched file ends differently");
  if (plain.end != AofReader::Outcome::kEnd && stretched.offset != plain.offset + padding) {
    Fail("a stretched file is torn or damaged elsewhere");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ScratchFile scratch;
  if (size < kControlSize) return 0;
  const std::string_view file(reinterpret_cast<const char*>(data) + kControlSize,
                              size - kControlSize);

  const Reading reading = Read(scratch, file);
  CheckChecker(scratch, file, reading);
  CheckTruncation(scratch, file, reading);
  CheckPrefix(scratch, file, reading, data[1]);
  CheckRewrite(scratch, reading);
  if (data[0] < 0xF0) return 0;

  // Stretched. A file shorter than a header is read as a header (and a Disque one shorter
  // than ours too, QUIRK): padding it would change what it is. The big file and its
  // scratch file are kept from one input to the next, so their pages are reused.
  if (file.size() < disque::persist::kAofHeaderSize) return 0;
  static ScratchFile big_scratch;
  static std::string stretched;
  const bool legacy = file.front() == '*';
  const size_t head = legacy ? 0 : disque::persist::kAofHeaderSize;
  const std::string& padding = PaddingRecord(kReadChunk - data[1] - head, legacy);
  stretched.assign(file.substr(0, head));
  stretched.append(padding);
  stretched.append(file.substr(head));
  const Reading stretched_reading = Read(big_scratch, stretched);
  CheckStretched(reading, stretched_reading, padding.size(), legacy);
  CheckPrefix(big_scratch, stretched, stretched_reading, data[1]);
  return 0;
}
