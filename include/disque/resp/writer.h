#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace disque::resp {

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
