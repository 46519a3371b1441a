#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace disque::resp {

// Protocol limits of PROTOCOL.md 1.1 (the same as Disque 1.0-rc1 / Redis 3.2).
inline constexpr int64_t kMaxMultibulkLen = 1024 * 1024;          // arguments per request
inline constexpr int64_t kMaxBulkLen = 512LL * 1024 * 1024;       // bytes per argument
inline constexpr size_t kMaxInlineLen = 64 * 1024;                // inline line / count line
inline constexpr size_t kMaxQueryBufLen = 1024ULL * 1024 * 1024;  // whole query buffer

// Incremental RESP2 request parser.
//
// The caller owns the bytes. It keeps every byte it has received and not yet consumed in
// one contiguous region and calls Parse() with a view of that whole region each time more
// bytes arrive (the region may have moved in memory between calls: the parser keeps
// offsets, never pointers). The parser remembers how far it got, so a large bulk that
// arrives in many pieces is scanned once, not once per piece.
//
// States: idle (between requests) -> in a multibulk request (count known, some
// arguments parsed) or in an inline request -> complete (kRequest) or failed (kError).
// After kRequest the caller drops consumed() bytes from the front of its region; the
// next Parse() starts a new request. After kError the connection must reply error() and
// close: the parser stays failed.
class RequestParser {
 public:
  enum class Result {
    kNeedMore,  // the region holds no complete request yet
    kRequest,   // a complete request: args() and consumed() are valid
    kError,     // a protocol error: error() holds the full reply text
  };

  // Parses the request at the front of `data`.
  Result Parse(std::string_view data);

  // The arguments of the last complete request. Views point into the `data` passed to
  // the Parse() call that returned kRequest (multibulk), or into the parser's own
  // storage (inline requests, whose escapes are decoded); they stay valid until the
  // next Parse() call or until that data changes. A request may have zero arguments
  // (`*0`, a negative count, an empty inline line): the caller skips it.
  const std::vector<std::string_view>& args() const { return args_; }

  // Bytes of `data` the last complete request occupied.
  size_t consumed() const { return consumed_; }

  // The error text after kError, without the leading '-' or trailing CRLF, for example
  // "ERR Protocol error: invalid bulk length".
  std::string_view error() const { return error_; }

  // While a bulk argument is being received, the total region size needed to hold it
  // completely (so the caller can reserve once); 0 otherwise.
  size_t bytes_wanted() const { return bytes_wanted_; }

 private:
  enum class Kind : uint8_t { kUnknown, kInline, kMultibulk };

  Result Fail(std::string_view text);
  Result Complete(std::string_view data, size_t end);
  Result ParseInline(std::string_view data);
  Result ParseMultibulk(std::string_view data);
  void Reset();

  // State of the request being parsed. Every position is an offset into the region, which
  // starts at the request's first byte, and never exceeds the size of the last region seen.
  Kind kind_ = Kind::kUnknown;  // decided by the first byte: '*' is multibulk
  size_t pos_ = 0;              // start of the next unparsed line or bulk
  size_t scan_ = 0;             // where the search for the current line's end resumes
  int64_t multibulk_len_ = 0;   // arguments still to read; 0 until the count line is read
  int64_t bulk_len_ = -1;       // length of the bulk being read, -1 before its header
  std::vector<std::pair<size_t, size_t>> offsets_;  // (offset, length) of parsed args
  bool complete_ = false;                           // the last Parse() returned kRequest

  std::vector<std::string_view> args_;
  std::vector<std::string> inline_args_;  // storage for decoded inline arguments
  size_t consumed_ = 0;
  size_t bytes_wanted_ = 0;
  bool failed_ = false;
  std::string error_;
};

}  // namespace disque::resp
