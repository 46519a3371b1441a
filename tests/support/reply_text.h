#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "support/redis_client.h"

// RESP bytes to send over a RawConnection, and INFO text parsing, shared by the
// integration tests.
namespace disque::test {

// "$<len>\r\n<text>\r\n": the bytes of a bulk reply (or request argument).
inline std::string Bulk(const std::string& text) { return "$" + std::to_string(text.size()) + "\r\n" + text + "\r\n"; }

// The bytes of a multibulk request.
inline std::string Multibulk(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += Bulk(a);
  return out;
}

// The non-empty lines of `text`, without their trailing CR.
inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The value of `field:` in INFO text, or "" when absent.
inline std::string InfoField(const std::string& info, const std::string& field) {
  for (const auto& line : Lines(info)) {
    if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
  }
  return "";
}

// An integer INFO field of `section` ("" for the default INFO), or -1 when absent.
inline int64_t InfoInt(RedisClient& c, const std::string& section, const std::string& field) {
  const Reply info = section.empty() ? c.Command({"INFO"}) : c.Command({"INFO", section});
  const std::string v = InfoField(info.str, field);
  return v.empty() ? -1 : std::stoll(v);
}

}  // namespace disque::test
