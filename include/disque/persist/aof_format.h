#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "disque/common/status.h"

// The append-only file, format version 1 (docs/persistence.md has the full layout).
//
//   file    = header record*
//   header  = magic[8] "DQAOF\r\n\x1a" | uint32 version (1) | uint32 crc32c(bytes 0..11)
//   record  = uint32 length | uint8 type | uint8[3] zero | uint32 crc32c(bytes 0..7)
//             | uint32 crc32c(payload) | payload[length]
//
// All integers little-endian. Types: 1 LOADJOB (payload: the job serialization of
// PROTOCOL.md 8.5 with an absolute etime), 2 DELJOB (payload: the 40-character job ID).
// The record header has its own CRC so that a length can be trusted before its payload
// is read: a record whose verified length runs past the end of the file was cut by a
// crash, while one whose header fails its check is damaged, unless it is the start of
// a zero-filled tail.
//
// The reader also reads Disque's own AOF files (RESP commands), so that a Disque node's
// data can be loaded; the server rewrites such a file in this format before appending.
namespace disque::persist {

inline constexpr std::string_view kAofMagic{"DQAOF\r\n\x1a", 8};
inline constexpr uint32_t kAofVersion = 1;
inline constexpr size_t kAofHeaderSize = 16;
inline constexpr size_t kRecordHeaderSize = 16;
// A job body is at most 512 MB (proto-max-bulk-len): anything larger is damage.
inline constexpr uint32_t kMaxRecordPayload = 1u << 30;

enum class RecordType : uint8_t {
  kLoadJob = 1,
  kDelJob = 2,
};

// The 16-byte file header.
std::string FileHeader();
// Appends one framed record to `out`.
void AppendRecord(RecordType type, std::string_view payload, std::string& out);

// Reads an AOF sequentially, record by record, and classifies how it ends (the loader
// and --check-aof share it):
//   kRecord   a verified record: type(), payload() (valid until the next call), offset()
//   kEnd      the file ended cleanly after the last record (or is empty)
//   kTorn     a crash cut the last write: from offset() to the end is an incomplete
//             record, the last record failing its payload check, or zero bytes.
//             Truncating the file at offset() leaves a valid file.
//   kCorrupt  a record (or the file header) at offset() is damaged and data follows it:
//             error() says what.
class AofReader {
 public:
  enum class Outcome { kRecord, kEnd, kTorn, kCorrupt };

  // Opens `path` for reading (an error's message is the strerror text).
  static Result<AofReader> Open(const std::string& path);
  AofReader(AofReader&& other) noexcept;
  AofReader& operator=(AofReader&&) = delete;
  AofReader(const AofReader&) = delete;
  ~AofReader();

  Outcome Next();
  // The file is Disque's own AOF (a RESP stream of LOADJOB and DELJOB commands, PROTOCOL.md
  // 8.1): it is read the same way, record by record. Known after the first Next().
  bool legacy() const { return legacy_; }

  RecordType type() const { return type_; }
  std::string_view payload() const { return payload_; }
  // The record just read, or where the tail or the damage starts.
  uint64_t offset() const { return offset_; }
  // Bytes read and verified so far (the file is valid up to here).
  uint64_t valid_end() const { return pos_; }
  uint64_t size() const { return size_; }
  const std::string& error() const { return error_; }

 private:
  AofReader(int fd, uint64_t size) : fd_(fd), size_(size) {}
  // Makes `n` bytes from `pos_` available in buf_ (n <= size_ - pos_).
  bool Fill(size_t n);
  std::string_view Peek(size_t n) const { return std::string_view(buf_).substr(buf_pos_, n); }
  bool ZeroTail(uint64_t from);
  Outcome NextLegacy();
  // Reads "<prefix><decimal>\r\n" at `at` in buf_ (prefix '*' or '$'): the value, or -1
  // if incomplete (*complete false) or malformed.
  int64_t ReadLegacyHeader(size_t at, char prefix, size_t* used, bool* complete);
  Outcome Torn(uint64_t at);
  Outcome Corrupt(uint64_t at, std::string why);

  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t pos_ = 0;         // file offset of the next unread byte
  std::string buf_;          // file bytes [pos_ - buf_pos_, ...)
  size_t buf_pos_ = 0;       // where pos_ is in buf_
  bool header_done_ = false;
  bool legacy_ = false;
  bool finished_ = false;
  RecordType type_ = RecordType::kLoadJob;
  std::string_view payload_;
  uint64_t offset_ = 0;
  std::string error_;
};

}  // namespace disque::persist
