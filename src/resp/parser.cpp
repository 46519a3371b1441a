#include "disque/resp/parser.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <limits>
#include <string>

#include "disque/common/strings.h"

// A port of processInlineBuffer() and processMultibulkBuffer() of Redis 3.2 networking.c,
// which Disque 1.0-rc1 shares, reshaped to be incremental over a caller-owned region.
// Error texts, limits and the order of the checks are the reference's (PROTOCOL.md 1.1).

namespace disque::resp {
namespace {

constexpr std::string_view kErrTooBigInline = "ERR Protocol error: too big inline request";
constexpr std::string_view kErrUnbalancedQuotes =
    "ERR Protocol error: unbalanced quotes in request";
constexpr std::string_view kErrTooBigCount = "ERR Protocol error: too big mbulk count string";
constexpr std::string_view kErrInvalidMultibulkLen = "ERR Protocol error: invalid multibulk length";
constexpr std::string_view kErrTooBigBulkCount = "ERR Protocol error: too big bulk count string";
constexpr std::string_view kErrInvalidBulkLen = "ERR Protocol error: invalid bulk length";
constexpr std::string_view kErrExpectedDollar = "ERR Protocol error: expected '$', got '";

// Redis's string2ll(), which is stricter than strtoll: an optional '-' then digits, no
// '+', no spaces, no leading zeros ("0" alone is fine, "-0" and "01" are not), and no
// overflow. The protocol accepts "*01" or "$+3" only if this does.
bool StringToInt64(std::string_view s, int64_t* value) {
  if (s.empty()) return false;
  if (s == "0") {
    *value = 0;
    return true;
  }
  const bool negative = s.front() == '-';
  if (negative) s.remove_prefix(1);
  if (s.empty() || s.front() < '1' || s.front() > '9') return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    v = v * 10 + digit;
  }
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (v > kMax + 1) return false;
    // Negate in unsigned arithmetic: -(2^63) has no positive int64_t counterpart.
    *value = static_cast<int64_t>(0 - v);
  } else {
    if (v > kMax) return false;
    *value = static_cast<int64_t>(v);
  }
  return true;
}

}  // namespace

RequestParser::Result RequestParser::Parse(std::string_view data) {
  if (failed_) return Result::kError;
  if (complete_) Reset();
  // The caller only appends to the region between calls, so nothing already parsed can
  // have disappeared.
  assert(data.size() >= pos_ && data.size() >= scan_);
  if (data.empty()) return Result::kNeedMore;
  if (kind_ == Kind::kUnknown) kind_ = data.front() == '*' ? Kind::kMultibulk : Kind::kInline;
  return kind_ == Kind::kMultibulk ? ParseMultibulk(data) : ParseInline(data);
}

RequestParser::Result RequestParser::ParseInline(std::string_view data) {
  const size_t newline = data.find('\n', scan_);
  if (newline == std::string_view::npos) {
    if (data.size() > kMaxInlineLen) return Fail(kErrTooBigInline);
    scan_ = data.size();
    return Result::kNeedMore;
  }
  size_t line_len = newline;
  if (line_len > 0 && data[line_len - 1] == '\r') --line_len;

  auto split = SplitArgs(data.substr(0, line_len));
  if (!split) return Fail(kErrUnbalancedQuotes);
  inline_args_ = std::move(*split);
  // Redis drops empty arguments of inline requests ("" or ''), unlike multibulk ones.
  std::erase_if(inline_args_, [](const std::string& arg) { return arg.empty(); });
  args_.assign(inline_args_.begin(), inline_args_.end());
  // Redis 3.2 drops line + 2 bytes even after a bare LF, which eats the first byte of a
  // pipelined next request only if that byte has already arrived. Not copied: it depends
  // on read timing.
  consumed_ = newline + 1;
  complete_ = true;
  return Result::kRequest;
}

RequestParser::Result RequestParser::ParseMultibulk(std::string_view data) {
  if (multibulk_len_ == 0 && scan_ == 0 && data.size() >= 4 && data[1] >= '1' && data[1] <= '9' &&
      data[2] == '\r') {
    // The common count line, "*<1-9>\r\n", read at once (the general path below finds the
    // CR, then calls StringToInt64: 70 instructions of an ADDJOB's 330 in the parser).
    pos_ = scan_ = 4;
    multibulk_len_ = data[1] - '0';
  } else if (multibulk_len_ == 0) {
    // The count line. As in Redis, a line ends at the first '\r' and the byte after it is
    // skipped without being checked; it only has to be there.
    const size_t cr = data.find('\r', scan_);
    if (cr == std::string_view::npos) {
      if (data.size() > kMaxInlineLen) return Fail(kErrTooBigCount);
      scan_ = data.size();
      return Result::kNeedMore;
    }
    scan_ = cr;
    if (cr + 1 >= data.size()) return Result::kNeedMore;

    int64_t count = 0;
    if (!StringToInt64(data.substr(1, cr - 1), &count) || count > kMaxMultibulkLen) {
      return Fail(kErrInvalidMultibulkLen);
    }
    pos_ = scan_ = cr + 2;
    if (count <= 0) return Complete(data, pos_);  // silently consumed: no arguments
    multibulk_len_ = count;
    // Bounded: a 10-byte count line must not make us allocate for a million arguments.
    offsets_.reserve(static_cast<size_t>(std::min<int64_t>(count, 1024)));
  }

  // The loop works on copies of the members: every byte read through `data` (a char may
  // alias anything) would otherwise make the compiler store and reload them.
  size_t pos = pos_, scan = scan_, wanted = bytes_wanted_;
  int64_t left = multibulk_len_, bulk = bulk_len_;
  const auto save = [&] {
    pos_ = pos;
    scan_ = scan;
    bytes_wanted_ = wanted;
    multibulk_len_ = left;
    bulk_len_ = bulk;
  };
  const auto need_more = [&save] {
    save();
    return Result::kNeedMore;
  };
  while (left > 0) {
    if (bulk < 0 && scan == pos) {
      // The common header, "$<len>\r" with a canonical length of up to 9 digits, read in
      // one pass: what the general path below does with a search for the CR and
      // StringToInt64, which were a third of the parser's instructions on ACKJOB's IDs.
      // Anything else (a header cut short, a sign, a leading zero, a long or bad length)
      // goes through the general path, which gives the exact error or waits.
      const size_t limit = std::min(data.size(), pos + 11);  // '$', 9 digits, CR
      size_t i = pos + 1;
      uint64_t len = 0;
      while (i < limit && data[i] >= '0' && data[i] <= '9') len = len * 10 + static_cast<uint64_t>(data[i++] - '0');
      const size_t digits = i - pos - 1;
      // No digit also covers a region that ends at pos: data[pos] is read only after.
      const bool canonical = digits == 1 || (digits > 1 && data[pos + 1] != '0');
      if (canonical && data[pos] == '$' && i < limit && data[i] == '\r' && i + 1 < data.size()) {
        pos = i + 2;
        bulk = static_cast<int64_t>(len);  // under 10^9: within kMaxBulkLen or not
        if (bulk > kMaxBulkLen) return Fail(kErrInvalidBulkLen);
        wanted = pos + len + 2;
      }
    }
    if (bulk < 0) {
      // The "$<len>" line. Its end is searched for before its first byte is checked, so
      // a header that never ends is "too big" rather than "expected '$'", as in Redis.
      const size_t cr = data.find('\r', scan);
      if (cr == std::string_view::npos) {
        if (data.size() - pos > kMaxInlineLen) return Fail(kErrTooBigBulkCount);
        scan = data.size();
        return need_more();
      }
      scan = cr;
      if (cr + 1 >= data.size()) return need_more();

      if (data[pos] != '$') {
        std::string text(kErrExpectedDollar);
        text.push_back(data[pos]);  // the byte as it is; the writer blanks CR and LF
        text.push_back('\'');
        return Fail(text);
      }
      int64_t len = 0;
      if (!StringToInt64(data.substr(pos + 1, cr - pos - 1), &len) || len < 0 ||
          len > kMaxBulkLen) {
        return Fail(kErrInvalidBulkLen);
      }
      pos = cr + 2;
      bulk = len;
      wanted = pos + static_cast<size_t>(len) + 2;
    }

    // The bulk and the two bytes after it (CRLF, not checked, as in Redis). Waiting is a
    // size comparison, so a big bulk arriving in pieces costs nothing per piece.
    if (data.size() < wanted) return need_more();
    offsets_.emplace_back(pos, static_cast<size_t>(bulk));
    pos = scan = wanted;
    bulk = -1;
    wanted = 0;
    --left;
  }
  save();
  return Complete(data, pos_);
}

RequestParser::Result RequestParser::Complete(std::string_view data, size_t end) {
  args_.clear();
  for (const auto& [offset, len] : offsets_) args_.push_back(data.substr(offset, len));
  consumed_ = end;
  complete_ = true;
  return Result::kRequest;
}

RequestParser::Result RequestParser::Fail(std::string_view text) {
  error_.assign(text);
  failed_ = true;
  args_.clear();
  consumed_ = 0;
  bytes_wanted_ = 0;
  return Result::kError;
}

void RequestParser::Reset() {
  kind_ = Kind::kUnknown;
  pos_ = 0;
  scan_ = 0;
  multibulk_len_ = 0;
  bulk_len_ = -1;
  offsets_.clear();  // keeps capacity: no allocation per pipelined request
  complete_ = false;
  args_.clear();
  inline_args_.clear();
  consumed_ = 0;
  bytes_wanted_ = 0;
}

}  // namespace disque::resp
