#include "disque/persist/aof_format.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
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
    Fill(1);
    if (Peek(1) == "*") {
      legacy_ = true;
      header_done_ = true;
      return NextLegacy();
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
  if (legacy_) return NextLegacy();
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

int64_t AofReader::ReadLegacyHeader(size_t at, char prefix, size_t* used, bool* complete) {
  *complete = false;
  // At most 20 digits: anything longer is damage, not a short read.
  constexpr size_t kMaxLine = 1 + 20 + 2;
  const size_t have = std::min(kMaxLine, buf_.size() - at);
  const std::string_view line = std::string_view(buf_).substr(at, have);
  const size_t crlf = line.find("\r\n");
  if (crlf == std::string_view::npos) {
    // No line end in a full-length line is damage; in less, the caller checks whether
    // the file simply ended.
    *complete = have >= kMaxLine;
    return -1;
  }
  *complete = true;
  if (line.empty() || line[0] != prefix || crlf < 2) return -1;
  int64_t value = 0;
  for (size_t i = 1; i < crlf; ++i) {
    if (line[i] < '0' || line[i] > '9' || value > (int64_t{1} << 40)) return -1;
    value = value * 10 + (line[i] - '0');
  }
  *used = crlf + 2;
  return value;
}

AofReader::Outcome AofReader::NextLegacy() {
  // *2\r\n $<n>\r\n <name>\r\n $<m>\r\n <arg>\r\n
  const uint64_t at = pos_;
  if (at == size_) {
    finished_ = true;
    return Outcome::kEnd;
  }
  const size_t available = static_cast<size_t>(std::min<uint64_t>(size_ - at, 64));
  Fill(available);
  size_t off = buf_pos_;
  // Where each argument is, relative to buf_pos_: the Fill() for the second one may move
  // buf_, so views are taken only once both are in.
  size_t starts[2] = {};
  size_t lengths[2] = {};
  for (int part = -1; part < 2; ++part) {
    size_t used = 0;
    bool complete = false;
    const int64_t n = ReadLegacyHeader(off, part < 0 ? '*' : '$', &used, &complete);
    if (n < 0) {
      if (!complete && pos_ + (off - buf_pos_) + (buf_.size() - off) >= size_) return Torn(at);
      return Corrupt(at, "bad RESP command in a Disque AOF");
    }
    off += used;
    if (part < 0) {
      if (n != 2) return Corrupt(at, "a Disque AOF command without exactly 2 arguments");
      continue;
    }
    const size_t need = (off - buf_pos_) + static_cast<size_t>(n) + 2;
    if (pos_ + need > size_) return Torn(at);
    const size_t rel = off - buf_pos_;
    Fill(need + 64 > size_ - pos_ ? static_cast<size_t>(size_ - pos_) : need + 64);
    off = buf_pos_ + rel;
    if (buf_.compare(off + static_cast<size_t>(n), 2, "\r\n") != 0) return Corrupt(at, "bad RESP bulk in a Disque AOF");
    starts[part] = off - buf_pos_;
    lengths[part] = static_cast<size_t>(n);
    off += static_cast<size_t>(n) + 2;
  }
  const std::string_view parts[2] = {std::string_view(buf_).substr(buf_pos_ + starts[0], lengths[0]),
                                     std::string_view(buf_).substr(buf_pos_ + starts[1], lengths[1])};
  std::string name(parts[0]);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "loadjob") {
    type_ = RecordType::kLoadJob;
  } else if (name == "deljob") {
    type_ = RecordType::kDelJob;
  } else {
    return Corrupt(at, "Unknown command '" + std::string(parts[0]) + "' reading the append only file");
  }
  payload_ = parts[1];
  offset_ = at;
  pos_ += off - buf_pos_;
  buf_pos_ = off;
  return Outcome::kRecord;
}

}  // namespace disque::persist
