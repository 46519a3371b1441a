// Fuzz target for the RESP request parser (include/disque/resp/parser.h): multibulk and
// inline requests, pipelined, fed the way a connection feeds them (a region that grows by
// appends and loses each request's bytes once it is consumed).
//
// Input: 3 control bytes, then the bytes a client sends.
//   bytes 0-1  little-endian: the low 12 bits are the split point (modulo the stream
//              length + 1), the high 4 bits the stretch k
//   byte 2     0xD7: "stretched": 64 KB - 8 + k more copies of the byte at the split
//              point (unless it is a newline) are inserted there, so that lines end just
//              under, at or just over the 64 KB limits of PROTOCOL.md 1.1; other values:
//              no stretching.
//
// A stretched input costs a hundred plain ones (64 KB through the instrumented parser),
// so one value of byte 2 only makes one (see IsStretchByte), and most of them are
// mutants of the "long_" seeds.
//
// The stream is parsed three ways: in one piece, in two pieces cut at the split point
// (the region moving in memory between Parse() calls, so a parser that kept pointers
// instead of offsets reads freed memory; not for a stretched stream, whose second piece
// is the 64 KB run), and one byte at a time (251 once stretched). All three must give
// the same requests and end the same way (protocol error, or the same bytes left
// waiting), except that a line over 64 KB can be refused by a piecewise run when its
// newline had not arrived yet, which the one-piece run accepts (as Redis does): then the
// piecewise run's requests are a prefix of the one-piece run's.
//
// Besides: the limits hold (a first request whose count or first bulk length is over
// its limit is refused; no more than 64 KB of a line is buffered while waiting for its
// end; bytes_wanted() stays within one bulk), every error is one of the texts of
// PROTOCOL.md 1.1, inline requests have no empty argument, a failed parser stays
// failed, and every request re-encoded as canonical multibulk parses back the same.
//
// Built with libFuzzer under clang (`make fuzz`), and as resp_request_fuzz_replay, which
// runs the seed corpus under any compiler in ctest (replay_main.cpp).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "disque/resp/parser.h"

namespace {

using disque::resp::RequestParser;

constexpr size_t kControlSize = 3;
constexpr size_t kStretchBase = disque::resp::kMaxInlineLen - 8;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "resp_request_fuzz: %s\n", what);
  std::abort();
}

// What a connection sees: the requests in order, the error that ended the stream (empty
// if none), and the bytes still waiting for the rest of a request. The requests are kept
// as digests (FNV-1a of every argument's length and bytes), digests[i] covering requests
// 0..i, so that a long pipeline costs no allocation per request.
struct Outcome {
  std::vector<uint64_t> digests;
  std::string error;
  size_t pending = 0;
};

uint64_t Digest(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3;
  return h;
}

uint64_t Digest(uint64_t h, uint64_t n) {
  return Digest(h, std::string_view(reinterpret_cast<const char*>(&n), sizeof n));
}

// A request written as canonical multibulk parses back to the same arguments, whole.
// `parser` is reused: Parse() after a request starts over.
void CheckReencoding(RequestParser& parser, const std::vector<std::string_view>& args) {
  std::string encoded = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view arg : args) {
    encoded += "$" + std::to_string(arg.size()) + "\r\n";
    encoded += arg;
    encoded += "\r\n";
  }
  if (parser.Parse(encoded) != RequestParser::Result::kRequest)
    Fail("a re-encoded request does not parse");
  if (parser.consumed() != encoded.size()) Fail("a re-encoded request does not consume its bytes");
  if (parser.args() != args) Fail("a re-encoded request parses to different arguments");
}

bool IsKnownError(std::string_view error) {
  static constexpr std::string_view kErrors[] = {
      "ERR Protocol error: too big inline request",
      "ERR Protocol error: unbalanced quotes in request",
      "ERR Protocol error: too big mbulk count string",
      "ERR Protocol error: invalid multibulk length",
      "ERR Protocol error: too big bulk count string",
      "ERR Protocol error: invalid bulk length",
  };
  if (std::find(std::begin(kErrors), std::end(kErrors), error) != std::end(kErrors)) return true;
  // "expected '$', got '<c>'": exactly one byte between the quotes.
  constexpr std::string_view kExpected = "ERR Protocol error: expected '$', got '";
  return error.size() == kExpected.size() + 2 && error.starts_with(kExpected) &&
         error.back() == '\'';
}

// 0xD7 rather than 0xFF or 0x00, which libFuzzer's mutators write all the time (one
// input in six was a stretched one); and out of the coverage instrumentation, so that
// its comparison tracing does not learn the value and write it into inputs either.
#if defined(__clang__)
__attribute__((no_sanitize("coverage"), noinline))
#endif
bool IsStretchByte(uint8_t byte) {
  return byte == 0xD7;
}

bool IsTooBig(std::string_view error) { return error.find("too big") != std::string_view::npos; }

// The bytes received and not consumed yet, kept as a connection keeps them: consumed
// bytes are dropped from the front now and then (which moves the region), and
// Relocate() copies the region elsewhere and frees the old copy.
class Region {
 public:
  std::string_view view() const { return std::string_view(buf_).substr(start_); }
  size_t size() const { return buf_.size() - start_; }
  void Append(std::string_view bytes) { buf_.append(bytes); }
  void Consume(size_t n) {
    start_ += n;
    if (start_ > buf_.size() / 2) {
      buf_.erase(0, start_);
      start_ = 0;
    }
  }
  void Relocate() {
    std::string moved(view());
    buf_.swap(moved);
    start_ = 0;
  }

 private:
  std::string buf_;
  size_t start_ = 0;
};

// Checks what must hold after any Parse() result, and records it into `out`; requests
// are also re-encoded if `reencoder` is not null. Returns true when the caller should
// call Parse() again (a request was consumed).
bool Record(RequestParser& parser, RequestParser::Result result, Region& region, Outcome& out,
            RequestParser* reencoder) {
  using Result = RequestParser::Result;
  const std::string_view data = region.view();
  switch (result) {
    case Result::kNeedMore: {
      // Waiting for the end of a line buffers at most 64 KB of it: an inline request (no
      // '\n' yet) or a count line (no '\r' yet) that reaches past it is refused.
      if (data.size() > disque::resp::kMaxInlineLen) {
        const bool multibulk = data.front() == '*';
        if (data.find(multibulk ? '\r' : '\n') == std::string_view::npos)
          Fail("a line past 64 KB is still awaited");
      }
      const size_t wanted = parser.bytes_wanted();
      if (wanted != 0 && wanted <= data.size()) Fail("bytes_wanted() is already there");
      if (wanted > data.size() + static_cast<size_t>(disque::resp::kMaxBulkLen) + 2) {
        Fail("bytes_wanted() is more than one bulk");
      }
      out.pending = data.size();
      return false;
    }
    case Result::kError:
      out.error = parser.error();
      if (!IsKnownError(out.error)) Fail("an error text that PROTOCOL.md 1.1 does not give");
      if (parser.Parse(data) != Result::kError) Fail("a failed parser parsed again");
      out.pending = 0;
      return false;
    case Result::kRequest: {
      const size_t consumed = parser.consumed();
      if (consumed == 0 || consumed > data.size()) Fail("consumed() out of range");
      const auto& args = parser.args();
      if (args.size() > static_cast<size_t>(disque::resp::kMaxMultibulkLen))
        Fail("too many arguments");
      uint64_t h =
          Digest(out.digests.empty() ? 0xcbf29ce484222325 : out.digests.back(), args.size());
      for (std::string_view arg : args) {
        if (arg.size() > static_cast<size_t>(disque::resp::kMaxBulkLen))
          Fail("an argument past 512 MB");
        if (data.front() != '*' && arg.empty()) Fail("an inline request kept an empty argument");
        h = Digest(Digest(h, arg.size()), arg);
      }
      out.digests.push_back(h);
      if (reencoder != nullptr) CheckReencoding(*reencoder, args);
      region.Consume(consumed);
      return true;
    }
  }
  Fail("unknown result");
}

// Feeds `stream` cut at `cuts` (increasing offsets). `relocate`: the region moves before
// each Parse() (only after new bytes once it is past 4 KB: the copies would make long
// pipelines quadratic). `reencoder`: see Record().
Outcome Feed(std::string_view stream, const std::vector<size_t>& cuts, bool relocate,
             RequestParser* reencoder = nullptr) {
  constexpr size_t kRelocateAlways = 4096;
  RequestParser parser;
  Outcome out;
  Region region;
  size_t from = 0;
  for (size_t i = 0; i <= cuts.size() && out.error.empty(); ++i) {
    const size_t to = i < cuts.size() ? cuts[i] : stream.size();
    region.Append(stream.substr(from, to - from));
    from = to;
    for (bool appended = true;; appended = false) {
      if (relocate && (appended || region.size() <= kRelocateAlways)) region.Relocate();
      if (!Record(parser, parser.Parse(region.view()), region, out, reencoder)) break;
    }
  }
  return out;
}

// In small pieces: one byte at a time, or 251 bytes at a time for a stretched stream
// (one byte at a time, 64 KB under the fuzzer's instrumentation would dominate the run).
// The parser resumes its scans where it stopped, so this is linear.
Outcome FeedSmallPieces(std::string_view stream) {
  const size_t piece = stream.size() <= 4096 ? 1 : 251;
  RequestParser parser;
  Outcome out;
  Region region;
  for (size_t i = 0; i < stream.size() && out.error.empty(); i += piece) {
    region.Append(stream.substr(i, piece));
    while (Record(parser, parser.Parse(region.view()), region, out, nullptr)) {
    }
  }
  return out;
}

// A decimal as the protocol writes it (no sign, no leading zero), up to 18 digits.
std::optional<int64_t> PlainNumber(std::string_view text) {
  if (text.empty() || text.size() > 18 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// The limits of PROTOCOL.md 1.1 on the first request, read independently of the parser
// when its count line, and the header of its first argument, are plain: a count over
// 1048576, or a bulk length over 512 MB or negative, is an error before any request.
void CheckFirstRequestLimits(std::string_view stream, const Outcome& whole) {
  if (stream.empty() || stream[0] != '*') return;
  const size_t count_end = stream.find('\r');
  if (count_end == std::string_view::npos || count_end + 1 >= stream.size()) return;
  const std::optional<int64_t> count = PlainNumber(stream.substr(1, count_end - 1));
  if (!count) return;
  std::string_view expected;
  if (*count > disque::resp::kMaxMultibulkLen) {
    expected = "ERR Protocol error: invalid multibulk length";
  } else if (*count > 0) {
    const size_t at = count_end + 2;
    const size_t len_end = stream.find('\r', at);
    if (at >= stream.size() || stream[at] != '$' || len_end == std::string_view::npos ||
        len_end + 1 >= stream.size()) {
      return;
    }
    std::string_view len_text = stream.substr(at + 1, len_end - at - 1);
    const bool negative = !len_text.empty() && len_text[0] == '-';
    if (negative) len_text.remove_prefix(1);
    const std::optional<int64_t> len = PlainNumber(len_text);
    if (!len || (negative && *len == 0)) return;
    if (!negative && *len <= disque::resp::kMaxBulkLen) return;
    expected = "ERR Protocol error: invalid bulk length";
  } else {
    return;
  }
  if (!whole.digests.empty() || whole.error != expected)
    Fail("a request over the limits was not refused");
}

void CheckSame(const Outcome& whole, const Outcome& pieces) {
  if (IsTooBig(pieces.error) && whole.error != pieces.error) {
    // A line over 64 KB refused before its end arrived, which the one-piece run had.
    const size_t n = pieces.digests.size();
    if (n > whole.digests.size() || (n > 0 && pieces.digests.back() != whole.digests[n - 1])) {
      Fail("a piecewise run refused a long line after different requests");
    }
    return;
  }
  if (pieces.digests != whole.digests) Fail("piecewise and one-piece runs give different requests");
  if (pieces.error != whole.error) Fail("piecewise and one-piece runs end with different errors");
  if (pieces.pending != whole.pending)
    Fail("piecewise and one-piece runs leave different bytes waiting");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kControlSize) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string stream(input.substr(kControlSize));
  const size_t control = size_t{data[0]} | (size_t{data[1]} << 8);
  const size_t split = (control & 0xFFF) % (stream.size() + 1);
  // Not a newline: 64 K empty inline requests take 70 ms and reach no limit.
  const bool stretched = IsStretchByte(data[2]) && split < stream.size() && stream[split] != '\n';
  if (stretched) stream.insert(split, kStretchBase + (control >> 12), stream[split]);

  RequestParser reencoder;
  const Outcome whole = Feed(stream, {}, false, &reencoder);
  if (!stretched) CheckSame(whole, Feed(stream, {split}, true));
  CheckSame(whole, FeedSmallPieces(stream));
  CheckFirstRequestLimits(stream, whole);
  return 0;
}
