#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "disque/resp/parser.h"

namespace disque::resp {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;
using Result = RequestParser::Result;
using Args = std::vector<std::string>;

// What a connection would see after feeding some bytes: the requests it got, in order,
// the protocol error if one ended the stream, and the bytes left unconsumed.
struct Outcome {
  std::vector<Args> requests;
  std::string error;  // empty when no error
  size_t unconsumed = 0;

  bool operator==(const Outcome&) const = default;
};

void PrintTo(const Outcome& o, std::ostream* os) {
  auto quote = [os](std::string_view s) {
    *os << '"';
    for (unsigned char c : s) {
      if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
        *os << c;
      } else {
        static constexpr char kHex[] = "0123456789abcdef";
        *os << "\\x" << kHex[c >> 4] << kHex[c & 15];
      }
    }
    *os << '"';
  };
  *os << "{requests: [";
  for (const Args& req : o.requests) {
    *os << " [";
    for (const std::string& arg : req) {
      quote(arg);
      *os << ' ';
    }
    *os << "]";
  }
  *os << " ], error: ";
  quote(o.error);
  *os << ", unconsumed: " << o.unconsumed << "}";
}

Outcome Requests(std::vector<Args> requests, size_t unconsumed = 0) {
  return Outcome{std::move(requests), "", unconsumed};
}

Outcome Error(std::string_view text, std::vector<Args> before = {}) {
  return Outcome{std::move(before), std::string(text), 0};
}

// Feeds `chunks` one after the other into a growing region, the way a connection does:
// after each chunk, parse until kNeedMore, dropping the consumed bytes of each request.
// Each Parse() gets a fresh copy of the region (unless `copy` is false), so a parser that
// kept pointers instead of offsets would read freed memory.
Outcome Feed(const std::vector<std::string_view>& chunks, bool copy = true) {
  RequestParser parser;
  std::string region;
  Outcome out;
  for (std::string_view chunk : chunks) {
    region.append(chunk);
    while (true) {
      const std::string moved = copy ? region : std::string();
      const std::string_view data = copy ? std::string_view(moved) : std::string_view(region);
      const Result r = parser.Parse(data);
      if (r == Result::kNeedMore) break;
      if (r == Result::kError) {
        out.error = parser.error();
        EXPECT_FALSE(out.error.empty());
        return out;
      }
      out.requests.emplace_back(parser.args().begin(), parser.args().end());
      if (parser.consumed() == 0 || parser.consumed() > region.size()) {
        ADD_FAILURE() << "consumed() " << parser.consumed() << " of " << region.size();
        return out;
      }
      region.erase(0, parser.consumed());
    }
  }
  out.unconsumed = region.size();
  return out;
}

Outcome FeedWhole(std::string_view input) { return Feed({input}); }

Outcome FeedByteByByte(std::string_view input, bool copy = true) {
  std::vector<std::string_view> chunks;
  for (size_t i = 0; i < input.size(); ++i) chunks.push_back(input.substr(i, 1));
  return Feed(chunks, copy);
}

// The outcome must not depend on how the bytes are cut: whole, in two pieces cut at every
// possible boundary, and one byte at a time.
void ExpectOutcome(std::string_view input, const Outcome& expected) {
  EXPECT_EQ(FeedWhole(input), expected) << "fed whole";
  for (size_t cut = 1; cut < input.size(); ++cut) {
    EXPECT_EQ(Feed({input.substr(0, cut), input.substr(cut)}), expected) << "cut at " << cut;
  }
  EXPECT_EQ(FeedByteByByte(input), expected) << "fed byte by byte";
}

// ---------------------------------------------------------------------------------------
// Well-formed requests, table driven.

struct Case {
  const char* name;
  std::string input;
  Outcome expected;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string CaseName(const testing::TestParamInfo<Case>& case_info) { return case_info.param.name; }

std::string AllBytes() {
  std::string s;
  for (int c = 0; c < 256; ++c) s.push_back(static_cast<char>(c));
  return s;
}

class ParserCaseTest : public testing::TestWithParam<Case> {};

TEST_P(ParserCaseTest, SameOutcomeHoweverTheBytesAreCut) {
  ExpectOutcome(GetParam().input, GetParam().expected);
}

const Case kRequestCases[] = {
    {"MultibulkSeveralArgs", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n",
     Requests({{"SET", "k", "value"}})},
    {"MultibulkBinaryArgs", "*3\r\n$4\r\na\r\nb\r\n$3\r\n\0\r\0\r\n$2\r\n\n\n\r\n"s,
     Requests({{"a\r\nb", "\0\r\0"s, "\n\n"}})},
    {"MultibulkAllByteValues", "*1\r\n$256\r\n" + AllBytes() + "\r\n", Requests({{AllBytes()}})},
    {"MultibulkEmptyBulk", "*3\r\n$0\r\n\r\n$1\r\nx\r\n$0\r\n\r\n", Requests({{"", "x", ""}})},
    {"MultibulkZeroCount", "*0\r\n", Requests({{}})},
    {"MultibulkNegativeCount", "*-1\r\n", Requests({{}})},
    {"MultibulkVeryNegativeCount", "*-9223372036854775808\r\n", Requests({{}})},
    {"MultibulkMaxCountWaits", "*1048576\r\n$1\r\na\r\n", Requests({}, 17)},
    {"MultibulkMaxBulkLenWaits", "*1\r\n$536870912\r\nabc", Requests({}, 19)},
    {"MultibulkIncomplete", "*2\r\n$3\r\nfoo\r\n$3\r\nba", Requests({}, 19)},
    // Redis skips the byte after a header's '\r' and the two bytes after a bulk without
    // looking at them.
    {"MultibulkTerminatorsNotChecked", "*2\rX$3\rYabcZZ$1\r\nd\r\n", Requests({{"abc", "d"}})},
    {"InlineCrlf", "PING\r\n", Requests({{"PING"}})},
    {"InlineBareLf", "PING\n", Requests({{"PING"}})},
    {"InlineSeveralArgs", "  SET\tkey   value \r\n", Requests({{"SET", "key", "value"}})},
    {"InlineDoubleQuotes", "SET \"a key\" \"\"\r\n", Requests({{"SET", "a key"}})},
    {"InlineEscapes",
     R"(ECHO "\n\r\t\b\a\\\"\x41\x7a\xff\q")"
     "\r\n",
     Requests({{"ECHO", "\n\r\t\b\a\\\"Az\xffq"}})},
    {"InlineSingleQuotes",
     R"(ECHO 'a "b" \n' 'it\'s')"
     "\n",
     Requests({{"ECHO", R"(a "b" \n)", "it's"}})},
    {"InlineEmptyArgsDropped", "a \"\" b '' c\r\n", Requests({{"a", "b", "c"}})},
    {"InlineOnlyEmptyArgs", "\"\" ''\r\n", Requests({{}})},
    {"InlineEmptyLineCrlf", "\r\n", Requests({{}})},
    {"InlineEmptyLineLf", "\n", Requests({{}})},
    {"InlineBlankLine", "   \t \r\n", Requests({{}})},
    {"InlineOnlyLastCrStripped", "a\r\r\n", Requests({{"a"}})},
    {"InlineIncomplete", "PING\r", Requests({}, 5)},
    {"Pipelined",
     "*1\r\n$4\r\nPING\r\nPING\r\n*0\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n\nGET 'x y'\n*-1\r\n"
     "*1\r\n$3\r\nab",
     Requests({{"PING"}, {"PING"}, {}, {"ECHO", "hi"}, {}, {"GET", "x y"}, {}}, 10)},
};

INSTANTIATE_TEST_SUITE_P(Requests, ParserCaseTest, testing::ValuesIn(kRequestCases), CaseName);

// ---------------------------------------------------------------------------------------
// Malformed requests: the exact error text, whatever the cuts, after the good requests
// that precede it.

constexpr auto kInvalidMultibulkLen = "ERR Protocol error: invalid multibulk length"sv;
constexpr auto kInvalidBulkLen = "ERR Protocol error: invalid bulk length"sv;
constexpr auto kUnbalanced = "ERR Protocol error: unbalanced quotes in request"sv;

const Case kErrorCases[] = {
    {"CountNotANumber", "*abc\r\n", Error(kInvalidMultibulkLen)},
    {"CountEmpty", "*\r\n", Error(kInvalidMultibulkLen)},
    {"CountPlusSign", "*+1\r\n", Error(kInvalidMultibulkLen)},
    {"CountLeadingSpace", "* 1\r\n", Error(kInvalidMultibulkLen)},
    {"CountTrailingSpace", "*1 \r\n", Error(kInvalidMultibulkLen)},
    {"CountTrailingJunk", "*1x\r\n", Error(kInvalidMultibulkLen)},
    {"CountLeadingZero", "*01\r\n", Error(kInvalidMultibulkLen)},
    {"CountMinusZero", "*-0\r\n", Error(kInvalidMultibulkLen)},
    {"CountOnlyMinus", "*-\r\n", Error(kInvalidMultibulkLen)},
    {"CountOverflow", "*99999999999999999999\r\n", Error(kInvalidMultibulkLen)},
    {"CountNegativeOverflow", "*-9223372036854775809\r\n", Error(kInvalidMultibulkLen)},
    {"CountAboveLimit", "*1048577\r\n", Error(kInvalidMultibulkLen)},
    {"CountLfOnlyIsNotALineEnd", "*1\n$1\r\na\r\n", Error(kInvalidMultibulkLen)},
    {"ExpectedDollar", "*1\r\nX3\r\nabc\r\n", Error("ERR Protocol error: expected '$', got 'X'")},
    {"ExpectedDollarGotCr", "*2\r\n$1\r\na\r\n\r\n",
     Error("ERR Protocol error: expected '$', got '\r'")},
    {"ExpectedDollarGotNul", "*1\r\n\0\r\n"s, Error("ERR Protocol error: expected '$', got '\0'"s)},
    {"ExpectedDollarGotStar", "*1\r\n*1\r\n", Error("ERR Protocol error: expected '$', got '*'")},
    {"BulkLenNegative", "*1\r\n$-1\r\n", Error(kInvalidBulkLen)},
    {"BulkLenNotANumber", "*1\r\n$abc\r\n", Error(kInvalidBulkLen)},
    {"BulkLenEmpty", "*1\r\n$\r\n", Error(kInvalidBulkLen)},
    {"BulkLenPlusSign", "*1\r\n$+1\r\na\r\n", Error(kInvalidBulkLen)},
    {"BulkLenLeadingZero", "*1\r\n$01\r\na\r\n", Error(kInvalidBulkLen)},
    {"BulkLenTrailingSpace", "*1\r\n$1 \r\na\r\n", Error(kInvalidBulkLen)},
    {"BulkLenAboveLimit", "*1\r\n$536870913\r\n", Error(kInvalidBulkLen)},
    {"BulkLenOverflow", "*1\r\n$18446744073709551616\r\n", Error(kInvalidBulkLen)},
    // Around the one-pass header (up to 9 digits) and the general path it defers to.
    {"BulkLenNineDigitsAboveLimit", "*1\r\n$999999999\r\n", Error(kInvalidBulkLen)},
    {"BulkLenTenDigits", "*1\r\n$1000000000\r\n", Error(kInvalidBulkLen)},
    {"BulkLenDigitsThenJunk", "*1\r\n$12x\r\n", Error(kInvalidBulkLen)},
    {"BulkLenZeroThenDigit", "*1\r\n$00\r\n\r\n", Error(kInvalidBulkLen)},
    {"SecondBulkBad", "*2\r\n$1\r\na\r\n$x\r\n", Error(kInvalidBulkLen)},
    {"InlineUnbalancedDouble", "ECHO \"abc\r\n", Error(kUnbalanced)},
    {"InlineUnbalancedSingle", "ECHO 'abc\n", Error(kUnbalanced)},
    {"InlineClosingQuoteFollowedByText", "ECHO \"a\"b\r\n", Error(kUnbalanced)},
    {"ErrorAfterGoodRequests", "PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$-5\r\n",
     Error(kInvalidBulkLen, {{"PING"}, {"PING"}})},
};

INSTANTIATE_TEST_SUITE_P(Errors, ParserCaseTest, testing::ValuesIn(kErrorCases), CaseName);

// ---------------------------------------------------------------------------------------
// The 64 KB line limits. They depend on how many bytes are buffered, so they are checked
// fed whole and byte by byte (exactly when the limit is crossed), not at every cut.

constexpr size_t kLimit = kMaxInlineLen;  // 65536

TEST(ParserLimitsTest, InlineLineUpToTheLimitWaitsThenParses) {
  const std::string line(kLimit, 'a');
  EXPECT_EQ(FeedWhole(line), Requests({}, kLimit));
  EXPECT_EQ(FeedWhole(line + "\n"), Requests({{line}}));
}

TEST(ParserLimitsTest, InlineLineOverTheLimitFails) {
  const std::string line(kLimit + 1, 'a');
  const Outcome expected = Error("ERR Protocol error: too big inline request");
  EXPECT_EQ(FeedWhole(line), expected);
  EXPECT_EQ(FeedByteByByte(line, /*copy=*/false), expected);
  // A newline that arrives with the excess bytes in the same read still counts.
  EXPECT_EQ(FeedWhole(line + "\n"), Requests({{line}}));
}

TEST(ParserLimitsTest, InlineLimitCrossedExactlyAtOneByteOver) {
  RequestParser parser;
  std::string region;
  for (size_t i = 0; i < kLimit; ++i) {
    region.push_back('a');
    ASSERT_EQ(parser.Parse(region), Result::kNeedMore) << i;
  }
  region.push_back('a');
  EXPECT_EQ(parser.Parse(region), Result::kError);
}

TEST(ParserLimitsTest, CountLineOverTheLimitFails) {
  const Outcome expected = Error("ERR Protocol error: too big mbulk count string");
  std::string header = "*" + std::string(kLimit - 1, '1');  // exactly 64 KB: still waits
  EXPECT_EQ(FeedWhole(header), Requests({}, kLimit));
  header.push_back('1');
  EXPECT_EQ(FeedWhole(header), expected);
  EXPECT_EQ(FeedByteByByte(header, /*copy=*/false), expected);
  // Once the '\r' is there the line is judged as a number instead.
  EXPECT_EQ(FeedWhole(header + "\r\n"), Error(kInvalidMultibulkLen));
}

TEST(ParserLimitsTest, BulkCountLineOverTheLimitFails) {
  const Outcome expected = Error("ERR Protocol error: too big bulk count string");
  // The limit counts from the start of the bulk header, not of the request.
  const std::string prefix = "*2\r\n$1\r\na\r\n";
  std::string input = prefix + "$" + std::string(kLimit - 1, '1');
  EXPECT_EQ(FeedWhole(input), Requests({}, input.size()));
  input.push_back('1');
  EXPECT_EQ(FeedWhole(input), expected);
  EXPECT_EQ(FeedByteByByte(input, /*copy=*/false), expected);
  // The header's first byte is only checked once its line is complete.
  EXPECT_EQ(FeedWhole(prefix + std::string(kLimit + 1, 'x')), expected);
  EXPECT_EQ(FeedWhole(input + "\r\n"), Error(kInvalidBulkLen));
}

// ---------------------------------------------------------------------------------------
// The parser's own interface.

TEST(ParserTest, EmptyRegionNeedsMore) {
  RequestParser parser;
  EXPECT_EQ(parser.Parse(""), Result::kNeedMore);
  EXPECT_EQ(parser.Parse("*1\r\n$4\r\nPING\r\n"), Result::kRequest);
  EXPECT_EQ(parser.Parse(""), Result::kNeedMore);
  EXPECT_TRUE(parser.args().empty());
}

TEST(ParserTest, MultibulkArgsPointIntoTheRegion) {
  RequestParser parser;
  const std::string region = "*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\nNEXT";
  ASSERT_EQ(parser.Parse(region), Result::kRequest);
  ASSERT_EQ(parser.args().size(), 2u);
  EXPECT_EQ(parser.args()[0].data(), region.data() + 8);
  EXPECT_EQ(parser.args()[1].data(), region.data() + 17);
  EXPECT_EQ(parser.consumed(), region.size() - 4);
}

TEST(ParserTest, PipelinedRequestsWithConsumed) {
  // The caller may also keep the buffer and pass a view that starts after what it has
  // consumed so far.
  const std::string buf = "*1\r\n$4\r\nPING\r\nECHO x\r\n*0\r\n*2\r\n$1\r\na\r\n$0\r\n\r\n";
  RequestParser parser;
  std::string_view rest = buf;
  const std::vector<std::pair<Args, size_t>> want = {
      {{"PING"}, 14}, {{"ECHO", "x"}, 8}, {{}, 4}, {{"a", ""}, 17}};
  for (const auto& [args, consumed] : want) {
    ASSERT_EQ(parser.Parse(rest), Result::kRequest);
    EXPECT_EQ(Args(parser.args().begin(), parser.args().end()), args);
    EXPECT_EQ(parser.consumed(), consumed);
    rest.remove_prefix(parser.consumed());
  }
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(parser.Parse(rest), Result::kNeedMore);
}

TEST(ParserTest, StaysFailedAfterAnError) {
  RequestParser parser;
  ASSERT_EQ(parser.Parse("*1\r\n$x\r\n"), Result::kError);
  EXPECT_EQ(parser.error(), kInvalidBulkLen);
  EXPECT_EQ(parser.Parse("*1\r\n$4\r\nPING\r\n"), Result::kError);
  EXPECT_EQ(parser.Parse("PING\r\n"), Result::kError);
  EXPECT_EQ(parser.Parse(""), Result::kError);
  EXPECT_EQ(parser.error(), kInvalidBulkLen);
  EXPECT_TRUE(parser.args().empty());
}

TEST(ParserTest, StaysFailedAfterAnInlineError) {
  RequestParser parser;
  ASSERT_EQ(parser.Parse("\"\n"), Result::kError);
  EXPECT_EQ(parser.Parse("PING\n"), Result::kError);
  EXPECT_EQ(parser.error(), kUnbalanced);
}

TEST(ParserTest, BytesWantedWhileReadingABulk) {
  RequestParser parser;
  std::string region = "*2\r\n$3\r\nfoo\r\n$10";
  ASSERT_EQ(parser.Parse(region), Result::kNeedMore);
  EXPECT_EQ(parser.bytes_wanted(), 0u);  // the header line is not complete yet
  region += "\r\n";
  ASSERT_EQ(parser.Parse(region), Result::kNeedMore);
  EXPECT_EQ(parser.bytes_wanted(), region.size() + 10 + 2);
  region += "0123456789\r";
  ASSERT_EQ(parser.Parse(region), Result::kNeedMore);
  EXPECT_EQ(parser.bytes_wanted(), region.size() + 1);
  region += "\n";
  ASSERT_EQ(parser.Parse(region), Result::kRequest);
  EXPECT_EQ(parser.bytes_wanted(), 0u);
  EXPECT_EQ(Args(parser.args().begin(), parser.args().end()), (Args{"foo", "0123456789"}));
}

TEST(ParserTest, BytesWantedForTheLargestBulkWithoutAllocating) {
  RequestParser parser;
  ASSERT_EQ(parser.Parse("*1\r\n$536870912\r\n"), Result::kNeedMore);
  EXPECT_EQ(parser.bytes_wanted(), 16u + 536870912u + 2u);
}

TEST(ParserTest, BytesWantedIsZeroOutsideBulks) {
  RequestParser parser;
  std::string region = "*1\r\n$5\r\nab";
  ASSERT_EQ(parser.Parse(region), Result::kNeedMore);
  EXPECT_EQ(parser.bytes_wanted(), 15u);
  region += "cde\r\n*1\r\n$-1\r\n";
  ASSERT_EQ(parser.Parse(region), Result::kRequest);
  EXPECT_EQ(parser.bytes_wanted(), 0u);
  region.erase(0, parser.consumed());
  ASSERT_EQ(parser.Parse(region), Result::kError);
  EXPECT_EQ(parser.bytes_wanted(), 0u);
}

TEST(ParserTest, LargeBulkInManySmallPieces) {
  const std::string body(1 << 20, 'z');
  const std::string input = "*2\r\n$3\r\nSET\r\n$1048576\r\n" + body + "\r\n";
  const size_t header_end = input.size() - body.size() - 2;
  RequestParser parser;
  std::string region;
  // 1-byte pieces: a parser that rescanned the region on each call would take minutes.
  for (size_t i = 0; i + 1 < input.size(); ++i) {
    region.push_back(input[i]);
    ASSERT_EQ(parser.Parse(region), Result::kNeedMore) << i;
    if (region.size() >= header_end) {
      ASSERT_EQ(parser.bytes_wanted(), input.size()) << i;
    }
  }
  region.push_back(input.back());
  ASSERT_EQ(parser.Parse(region), Result::kRequest);
  ASSERT_EQ(parser.args().size(), 2u);
  EXPECT_EQ(parser.args()[1], body);
  EXPECT_EQ(parser.consumed(), input.size());
}

TEST(ParserTest, InlineArgsSurviveTheRegionChanging) {
  // Inline arguments are decoded into the parser's storage, not views into the region.
  RequestParser parser;
  std::string region = "ECHO \"a\\x00b\"\r\n";
  ASSERT_EQ(parser.Parse(region), Result::kRequest);
  region.assign(region.size(), '#');
  ASSERT_EQ(parser.args().size(), 2u);
  EXPECT_EQ(parser.args()[0], "ECHO");
  EXPECT_EQ(parser.args()[1], "a\0b"sv);
}

}  // namespace
}  // namespace disque::resp
