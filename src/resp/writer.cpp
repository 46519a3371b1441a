#include "disque/resp/writer.h"

#include <algorithm>
#include <charconv>

namespace disque::resp {

void ReplyWriter::Status(std::string_view s) {
  out_->push_back('+');
  out_->append(s);
  out_->append("\r\n");
}

void ReplyWriter::Error(std::string_view text) {
  const size_t start = out_->size() + 1;
  out_->push_back('-');
  out_->append(text);
  // A CR or LF inside an error would end the reply early and desynchronize the client.
  std::replace_if(
      out_->begin() + static_cast<std::ptrdiff_t>(start), out_->end(),
      [](char c) { return c == '\r' || c == '\n'; }, ' ');
  out_->append("\r\n");
}

void ReplyWriter::Integer(int64_t v) { Header(':', v); }

void ReplyWriter::Bulk(std::string_view s) {
  Header('$', static_cast<int64_t>(s.size()));
  out_->append(s);
  out_->append("\r\n");
}

void ReplyWriter::NullBulk() { out_->append("$-1\r\n"); }

void ReplyWriter::NullArray() { out_->append("*-1\r\n"); }

void ReplyWriter::ArrayHeader(size_t n) { Header('*', static_cast<int64_t>(n)); }

void ReplyWriter::Raw(std::string_view bytes) { out_->append(bytes); }

void ReplyWriter::Header(char type, int64_t n) {
  // type, up to 20 characters for INT64_MIN, CRLF.
  char buf[1 + 20 + 2];
  buf[0] = type;
  char* end = std::to_chars(buf + 1, buf + 21, n).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out_->append(buf, static_cast<size_t>(end - buf));
}

}  // namespace disque::resp
