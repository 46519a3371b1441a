#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace disque::resp {

// Replies whose size is known before they are written (a GETJOB reply's jobs): the
// caller grows its buffer once, then writes each piece at a pointer, with no capacity
// check per piece. Each Write* writes exactly the bytes its *Size() gives, the same
// bytes ReplyWriter appends, and returns the end of what it wrote. Inline: a call per
// piece was a large part of what they replace.

// Digits of v in decimal.
inline size_t DecimalSize(uint64_t v) {
  size_t n = 1;
  for (; v >= 10000; v /= 10000) n += 4;
  if (v >= 10) ++n;
  if (v >= 100) ++n;
  if (v >= 1000) ++n;
  return n;
}

inline char* WriteDecimal(char* out, uint64_t v) {
  char* const end = out + DecimalSize(v);
  char* p = end;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return end;
}

// "$<len>\r\n", then a bulk of len bytes "<bytes>\r\n" (Bulk), then "*<n>\r\n" (ArrayHeader).
inline size_t BulkHeaderSize(size_t len) { return 1 + DecimalSize(len) + 2; }
inline char* WriteBulkHeader(char* out, size_t len) {
  *out++ = '$';
  out = WriteDecimal(out, len);
  *out++ = '\r';
  *out++ = '\n';
  return out;
}

inline size_t BulkSize(size_t len) { return BulkHeaderSize(len) + len + 2; }
inline char* WriteBulk(char* out, std::string_view s) {
  out = WriteBulkHeader(out, s.size());
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  out += s.size();
  *out++ = '\r';
  *out++ = '\n';
  return out;
}

inline size_t ArrayHeaderSize(size_t n) { return 1 + DecimalSize(n) + 2; }
inline char* WriteArrayHeader(char* out, size_t n) {
  *out++ = '*';
  out = WriteDecimal(out, n);
  *out++ = '\r';
  *out++ = '\n';
  return out;
}

// Appends RESP2 replies to one output buffer (a connection's, or a test's). No
// per-reply allocation: everything is appended in place, integers with to_chars.
class ReplyWriter {
 public:
  explicit ReplyWriter(std::string& out) : out_(&out) {}

  void Status(std::string_view s);  // +s\r\n
  // -text\r\n. `text` includes the code ("ERR syntax error"); CR and LF inside it are
  // replaced by spaces, as Disque does.
  void Error(std::string_view text);
  void Integer(int64_t v);           // :v\r\n
  void Bulk(std::string_view s);     // $len\r\ns\r\n
  void NullBulk();                   // $-1\r\n
  void NullArray();                  // *-1\r\n
  void ArrayHeader(size_t n);        // *n\r\n, to be followed by n replies
  void Raw(std::string_view bytes);  // bytes as they are (preformatted replies)

  std::string& buffer() { return *out_; }

 private:
  void Header(char type, int64_t n);
  std::string* out_;
};

}  // namespace disque::resp
