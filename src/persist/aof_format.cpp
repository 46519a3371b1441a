#include "disque/persist/aof_format.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "disque/common/byte_cursor.h"
#include "disque/common/crc32c.h"

namespace disque::persist {
namespace {

void Put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint32_t Get32(std::string_view in, size_t at) {
  ByteCursor<std::endian::little> c{in, at};
  return c.Read<uint32_t>();
}

constexpr size_t kReadChunk = 1 << 20;

}  // namespace

std::string FileHeader() {
  std::string out(kAofMagic);
  Put32(out, kAofVersion);
  Put32(out, Crc32c(out));
  return out;
}

void AppendRecord(RecordType type, std::string_view payload, std::string& out) {
  const size_t start = out.size();
  Put32(out, static_cast<uint32_t>(payload.size()));
  out.push_back(static_cast<char>(type));
  out.append(3, '\0');
  Put32(out, Crc32c(std::string_view(out).substr(start, 8)));
  Put32(out, Crc32c(payload));
  out.append(payload);
}

Result<AofReader> AofReader::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Status(Code::kErr, std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status(Code::kErr, std::strerror(err));
  }
  return AofReader(fd, static_cast<uint64_t>(st.st_size));
}

AofReader::AofReader(AofReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      pos_(other.pos_),
      buf_(std::move(other.buf_)),
      buf_pos_(other.buf_pos_),
      header_done_(other.header_done_),
      finished_(other.finished_) {}

AofReader::~AofReader() {
  if (fd_ >= 0) ::close(fd_);
}

bool AofReader::Fill(size_t n) {
  if (buf_.size() - buf_pos_ >= n) return true;
  buf_.erase(0, buf_pos_);
  buf_pos_ = 0;
  // Read at least a chunk, at most what the file still has.
  const uint64_t file_at = pos_ + buf_.size();
  const size_t want = static_cast<size_t>(std::min<uint64_t>(std::max(n - buf_.size(), kReadChunk), size_ - file_at));
  const size_t old = buf_.size();
  buf_.resize(old + want);
  size_t got = 0;
  while (got < want) {
    const ssize_t r = ::pread(fd_, buf_.data() + old + got, want - got, static_cast<off_t>(file_at + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  buf_.resize(old + got);
  return buf_.size() >= n;
}

bool AofReader::ZeroTail(uint64_t from) {
  char block[4096];
  for (uint64_t at = from; at < size_;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof block, size_ - at));
    const ssize_t r = ::pread(fd_, block, n, static_cast<off_t>(at));
    if (r <= 0) return false;
    if (std::any_of(block, block + r, [](char c) { return c != 0; })) return false;
    at += static_cast<uint64_t>(r);
  }
  return true;
}

AofReader::Outcome AofReader::Torn(uint64_t at) {
  finished_ = true;
  offset_ = at;
  return Outcome::kTorn;
}

AofReader::Outcome AofReader::Corrupt(uint64_t at, std::string why) {
  finished_ = true;
  offset_ = at;
  error_ = std::move(why);
  return Outcome::kCorrupt;
}

AofReader::Outcome AofReader::Next() {
  if (finished_) return Outcome::kEnd;
  if (!header_done_) {
    if (size_ == 0) {
      finished_ = true;
      return Outcome::kEnd;
    }
    // A file shorter than its header is the tail of a crash during creation if what
    // is there is a prefix of the header (or zeros).
    const std::string expected = FileHeader();
    if (size_ < kAofHeaderSize) {
      Fill(static_cast<size_t>(size_));
      const std::string_view have = Peek(static_cast<size_t>(size_));
      if (expected.starts_with(have) || ZeroTail(0)) return Torn(0);
      return Corrupt(0, "not a disque-server AOF (bad file header)");
    }
    Fill(kAofHeaderSize);
    const std::string_view header = Peek(kAofHeaderSize);
    if (!header.starts_with(kAofMagic)) return Corrupt(0, "not a disque-server AOF (bad magic)");
    if (Get32(header, 12) != Crc32c(header.substr(0, 12))) return Corrupt(0, "bad file header checksum");
    if (Get32(header, 8) != kAofVersion) {
      return Corrupt(0, "unsupported AOF format version " + std::to_string(Get32(header, 8)));
    }
    header_done_ = true;
    buf_pos_ += kAofHeaderSize;
    pos_ += kAofHeaderSize;
  }
  const uint64_t at = pos_;
  if (at == size_) {
    finished_ = true;
    return Outcome::kEnd;
  }
  if (size_ - at < kRecordHeaderSize) return Torn(at);
  Fill(kRecordHeaderSize);
  const std::string_view header = Peek(kRecordHeaderSize);
  if (Get32(header, 8) != Crc32c(header.substr(0, 8))) {
    if (ZeroTail(at)) return Torn(at);
    return Corrupt(at, "bad record header checksum");
  }
  const uint32_t length = Get32(header, 0);
  const auto type = static_cast<uint8_t>(header[4]);
  if (type != static_cast<uint8_t>(RecordType::kLoadJob) && type != static_cast<uint8_t>(RecordType::kDelJob)) {
    return Corrupt(at, "unknown record type " + std::to_string(type));
  }
  if (length > kMaxRecordPayload) return Corrupt(at, "record length " + std::to_string(length) + " too large");
  const uint64_t end = at + kRecordHeaderSize + length;
  if (end > size_) return Torn(at);
  const uint32_t payload_crc = Get32(header, 12);
  Fill(kRecordHeaderSize + length);
  const std::string_view payload = Peek(kRecordHeaderSize + length).substr(kRecordHeaderSize);
  if (Crc32c(payload) != payload_crc) {
    // The last write of a crash can leave a full-length record whose pages were never
    // written (zeros): only the last record can be torn that way.
    if (end == size_) return Torn(at);
    return Corrupt(at, "bad record checksum");
  }
  type_ = static_cast<RecordType>(type);
  payload_ = payload;
  offset_ = at;
  buf_pos_ += kRecordHeaderSize + length;
  pos_ = end;
  return Outcome::kRecord;
}

}  // namespace disque::persist
