#include "disque/common/strings.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <utility>

namespace disque {
namespace {

std::optional<int64_t> ParseWithBase(std::string_view s, int base) {
  if (s.empty()) return 0;  // QUIRK of Disque's strtoll use: "" parses as 0.
  if (std::isspace(static_cast<unsigned char>(s.front()))) return std::nullopt;
  const std::string buf(s);  // strtoll needs a terminator
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(buf.c_str(), &end, base);
  if (errno == ERANGE || end != buf.c_str() + buf.size()) return std::nullopt;
  return static_cast<int64_t>(v);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'; }

}  // namespace

std::optional<int64_t> ParseInt64(std::string_view s) {
  // Up to 18 plain digits cannot overflow and read the same as with strtoll: the common
  // case (ADDJOB's timeout, COUNT, RETRY, ...) skips the copy and the libc call.
  if (!s.empty() && s.size() <= 18) {
    uint64_t v = 0;  // unsigned: a non-digit wraps it (defined), and is then rejected
    bool digits = true;
    for (const char c : s) {
      const auto d = static_cast<uint64_t>(static_cast<unsigned char>(c)) - '0';
      digits = digits && d <= 9;
      v = v * 10 + d;
    }
    if (digits) return static_cast<int64_t>(v);
  }
  return ParseWithBase(s, 10);
}

std::optional<int64_t> ParseOctal(std::string_view s) { return ParseWithBase(s, 8); }

std::optional<int64_t> ParseMemory(std::string_view s) {
  // A port of Disque's memtoll(): an optional '-', digits, then a unit that must make up
  // the whole rest. The digits are read with strtoll, so "" and "-" (with or without a
  // unit) are 0 (QUIRK); '+' and spaces are not accepted.
  size_t digits = (!s.empty() && s.front() == '-') ? 1 : 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  const std::string_view unit = s.substr(digits);
  int64_t mul;
  if (unit.empty() || EqualsIgnoreCase(unit, "b")) {
    mul = 1;
  } else if (EqualsIgnoreCase(unit, "k")) {
    mul = 1000;
  } else if (EqualsIgnoreCase(unit, "kb")) {
    mul = 1024;
  } else if (EqualsIgnoreCase(unit, "m")) {
    mul = 1000 * 1000;
  } else if (EqualsIgnoreCase(unit, "mb")) {
    mul = 1024 * 1024;
  } else if (EqualsIgnoreCase(unit, "g")) {
    mul = 1000LL * 1000 * 1000;
  } else if (EqualsIgnoreCase(unit, "gb")) {
    mul = 1024LL * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  const std::string_view num = s.substr(0, digits);
  int64_t v = 0;
  if (num.size() > 1 || (num.size() == 1 && num.front() != '-')) {
    auto parsed = ParseInt64(num);
    if (!parsed) return std::nullopt;  // overflow
    v = *parsed;
  }
  int64_t out;
  if (__builtin_mul_overflow(v, mul, &out)) return std::nullopt;
  return out;
}

std::optional<bool> ParseYesNo(std::string_view s) {
  if (EqualsIgnoreCase(s, "yes")) return true;
  if (EqualsIgnoreCase(s, "no")) return false;
  return std::nullopt;
}

std::optional<std::vector<std::string>> SplitArgs(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    while (i < n && IsSpace(line[i])) ++i;
    if (i >= n) return out;
    std::string cur;
    bool in_dq = false;  // inside "double quotes"
    bool in_sq = false;  // inside 'single quotes'
    bool done = false;
    while (!done) {
      if (in_dq) {
        if (i >= n) return std::nullopt;  // unterminated quotes
        if (line[i] == '\\' && i + 3 < n && line[i + 1] == 'x' && HexDigit(line[i + 2]) >= 0 &&
            HexDigit(line[i + 3]) >= 0) {
          cur.push_back(static_cast<char>(HexDigit(line[i + 2]) * 16 + HexDigit(line[i + 3])));
          i += 3;
        } else if (line[i] == '\\' && i + 1 < n) {
          ++i;
          switch (line[i]) {
            case 'n': cur.push_back('\n'); break;
            case 'r': cur.push_back('\r'); break;
            case 't': cur.push_back('\t'); break;
            case 'b': cur.push_back('\b'); break;
            case 'a': cur.push_back('\a'); break;
            default: cur.push_back(line[i]); break;
          }
        } else if (line[i] == '"') {
          // The closing quote must be followed by a space or the end.
          if (i + 1 < n && !IsSpace(line[i + 1])) return std::nullopt;
          done = true;
        } else {
          cur.push_back(line[i]);
        }
      } else if (in_sq) {
        if (i >= n) return std::nullopt;
        if (line[i] == '\\' && i + 1 < n && line[i + 1] == '\'') {
          ++i;
          cur.push_back('\'');
        } else if (line[i] == '\'') {
          if (i + 1 < n && !IsSpace(line[i + 1])) return std::nullopt;
          done = true;
        } else {
          cur.push_back(line[i]);
        }
      } else {
        if (i >= n) {
          done = true;
          break;
        }
        switch (line[i]) {
          case ' ': case '\n': case '\r': case '\t':  // not \v or \f (sdssplitargs)
            done = true;
            break;
          case '"': in_dq = true; break;
          case '\'': in_sq = true; break;
          default: cur.push_back(line[i]); break;
        }
      }
      if (i < n) ++i;
    }
    out.push_back(std::move(cur));
  }
}

void AppendQuoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\a': out += "\\a"; break;
      case '\b': out += "\\b"; break;
      default:
        if (std::isprint(static_cast<unsigned char>(c))) {
          out.push_back(c);
        } else {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        }
    }
  }
  out.push_back('"');
}

// A port of Redis's stringmatchlen(), quirks included: the loop stops as soon as either
// side is exhausted, so a non-empty pattern never matches the empty string (not even "*").
bool GlobMatch(std::string_view pattern, std::string_view s, bool nocase) {
  auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  const char* p = pattern.data();
  size_t plen = pattern.size();
  const char* str = s.data();
  size_t slen = s.size();
  while (plen > 0 && slen > 0) {
    switch (p[0]) {
      case '*':
        while (plen > 1 && p[1] == '*') {
          ++p;
          --plen;
        }
        if (plen == 1) return true;
        while (slen > 0) {
          if (GlobMatch({p + 1, plen - 1}, {str, slen}, nocase)) return true;
          ++str;
          --slen;
        }
        return false;
      case '?':
        ++str;
        --slen;
        break;
      case '[': {
        ++p;
        --plen;
        const bool negate = plen > 0 && p[0] == '^';
        if (negate) {
          ++p;
          --plen;
        }
        bool match = false;
        while (true) {
          if (plen >= 2 && p[0] == '\\') {
            ++p;
            --plen;
            if (p[0] == str[0]) match = true;
          } else if (plen == 0) {
            // Unterminated class: step back so the increment below ends the pattern.
            --p;
            ++plen;
            break;
          } else if (p[0] == ']') {
            break;
          } else if (plen >= 3 && p[1] == '-') {
            char start = p[0], end = p[2], c = str[0];
            if (start > end) std::swap(start, end);
            if (nocase) {
              start = lower(start);
              end = lower(end);
              c = lower(c);
            }
            p += 2;
            plen -= 2;
            if (c >= start && c <= end) match = true;
          } else if (nocase ? lower(p[0]) == lower(str[0]) : p[0] == str[0]) {
            match = true;
          }
          ++p;
          --plen;
        }
        if (negate) match = !match;
        if (!match) return false;
        ++str;
        --slen;
        break;
      }
      case '\\':
        if (plen >= 2) {
          ++p;
          --plen;
        }
        [[fallthrough]];
      default:
        if (nocase ? lower(p[0]) != lower(str[0]) : p[0] != str[0]) return false;
        ++str;
        --slen;
        break;
    }
    ++p;
    --plen;
    if (slen == 0) {
      while (plen > 0 && p[0] == '*') {
        ++p;
        --plen;
      }
      break;
    }
  }
  return plen == 0 && slen == 0;
}

std::string_view Trim(std::string_view s) {
  constexpr std::string_view kBlanks = " \t\r\n";
  const size_t begin = s.find_first_not_of(kBlanks);
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(kBlanks);
  return s.substr(begin, end - begin + 1);
}

bool SecretEquals(std::string_view given, std::string_view secret) {
  if (given.size() > kMaxPasswordLen || secret.size() > kMaxPasswordLen) return false;
  unsigned diff = given.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < kMaxPasswordLen; ++i) {
    const auto a = static_cast<unsigned char>(i < given.size() ? given[i] : 0);
    const auto b = static_cast<unsigned char>(i < secret.size() ? secret[i] : 0);
    diff |= static_cast<unsigned>(a ^ b);
  }
  return diff == 0;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

void ToLowerInPlace(std::string& s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  ToLowerInPlace(out);
  return out;
}

std::string HumanBytes(uint64_t n) {
  // bytesToHuman(): B below 1K, then K, M, G, T, P with two decimals; from 1024P on Redis
  // falls back to plain bytes.
  static const char kUnits[] = "KMGTP";
  char buf[64];
  if (n < 1024) {
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
    return buf;
  }
  uint64_t scale = 1024;  // unit kUnits[u] covers [scale, scale * 1024)
  for (int u = 0; u < 5; ++u, scale *= 1024) {
    if (n / scale < 1024) {
      std::snprintf(buf, sizeof buf, "%.2f%c", static_cast<double>(n) / static_cast<double>(scale),
                    kUnits[u]);
      return buf;
    }
  }
  std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
  return buf;
}

std::string RandomHex(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string out(n, '0');
  for (auto& c : out) c = kHex[rng() & 15];
  return out;
}

}  // namespace disque
