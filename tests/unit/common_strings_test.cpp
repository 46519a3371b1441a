// Unit tests for disque/common/strings.h: the ports of Disque's strtoll use, memtoll(),
// sdssplitargs(), sdscatrepr(), stringmatchlen() and bytesToHuman().

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "disque/common/strings.h"

namespace disque {
namespace {

using Words = std::vector<std::string>;

// The plain-digit path (up to 18 digits) agrees with strtoll around its edges.
TEST(ParseInt64, PlainDigitsAgreeWithStrtoll) {
  for (std::string s : {"7", "0000", "123456789012345678", "999999999999999999", "1000000000000000000",
                        "9223372036854775807", "9223372036854775808", "12a", "1 ", "٣", "1/", ":1", "-0"}) {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    const bool ok = errno != ERANGE && end == s.c_str() + s.size() && !s.empty();
    const std::optional<int64_t> got = ParseInt64(s);
    ASSERT_EQ(got.has_value(), ok) << s;
    if (ok) {
      EXPECT_EQ(*got, v) << s;
    }
  }
}

TEST(ParseInt64, AcceptsSignsAndLeadingZeros) {
  EXPECT_EQ(ParseInt64("0"), 0);
  EXPECT_EQ(ParseInt64("42"), 42);
  EXPECT_EQ(ParseInt64("+42"), 42);
  EXPECT_EQ(ParseInt64("-42"), -42);
  EXPECT_EQ(ParseInt64("007"), 7);
  EXPECT_EQ(ParseInt64("-0"), 0);
  EXPECT_EQ(ParseInt64("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(ParseInt64("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(ParseInt64(std::string(80, '0') + "5"), 5);
}

TEST(ParseInt64, EmptyStringIsZero) { EXPECT_EQ(ParseInt64(""), 0); }

TEST(ParseInt64, RejectsGarbageWhitespaceAndOverflow) {
  for (const char* s : {" 1", "1 ", "\t1", "abc", "1a", "0x10", "1.5", "+", "-", "--1",
                        "9223372036854775808", "-9223372036854775809"}) {
    EXPECT_EQ(ParseInt64(s), std::nullopt) << s;
  }
}

TEST(ParseOctal, ParsesBaseEight) {
  EXPECT_EQ(ParseOctal("777"), 0777);
  EXPECT_EQ(ParseOctal("0755"), 0755);
  EXPECT_EQ(ParseOctal("0"), 0);
  EXPECT_EQ(ParseOctal(""), 0);
  EXPECT_EQ(ParseOctal("-1"), -1);
  EXPECT_EQ(ParseOctal("8"), std::nullopt);
  EXPECT_EQ(ParseOctal("79"), std::nullopt);
  EXPECT_EQ(ParseOctal(" 7"), std::nullopt);
}

TEST(ParseMemory, Units) {
  EXPECT_EQ(ParseMemory("100"), 100);
  EXPECT_EQ(ParseMemory("100b"), 100);
  EXPECT_EQ(ParseMemory("1k"), 1000);
  EXPECT_EQ(ParseMemory("1kb"), 1024);
  EXPECT_EQ(ParseMemory("1m"), 1000000);
  EXPECT_EQ(ParseMemory("1mb"), 1048576);
  EXPECT_EQ(ParseMemory("1g"), 1000000000);
  EXPECT_EQ(ParseMemory("1gb"), 1073741824);
  EXPECT_EQ(ParseMemory("64mb"), 67108864);
}

TEST(ParseMemory, UnitsAreCaseInsensitive) {
  EXPECT_EQ(ParseMemory("1GB"), 1073741824);
  EXPECT_EQ(ParseMemory("1Gb"), 1073741824);
  EXPECT_EQ(ParseMemory("2KB"), 2048);
  EXPECT_EQ(ParseMemory("3M"), 3000000);
  EXPECT_EQ(ParseMemory("5B"), 5);
}

TEST(ParseMemory, NegativeValuesParse) {
  EXPECT_EQ(ParseMemory("-1"), -1);
  EXPECT_EQ(ParseMemory("-2kb"), -2048);
}

TEST(ParseMemory, EmptyNumberIsZeroAsInMemtoll) {
  EXPECT_EQ(ParseMemory(""), 0);
  EXPECT_EQ(ParseMemory("mb"), 0);
  EXPECT_EQ(ParseMemory("-"), 0);
}

TEST(ParseMemory, RejectsUnknownUnitsSpacesAndOverflow) {
  for (const char* s : {"1xb", "1 mb", " 1", "1mb ", "+5", "1.5mb", "1kbb", "abc", "1tb",
                        "99999999999999999999", "9223372036854775807kb", "--1"}) {
    EXPECT_EQ(ParseMemory(s), std::nullopt) << s;
  }
  EXPECT_EQ(ParseMemory("9223372036854775807"), INT64_MAX);
}

TEST(ParseYesNo, IsCaseInsensitive) {
  EXPECT_EQ(ParseYesNo("yes"), true);
  EXPECT_EQ(ParseYesNo("YES"), true);
  EXPECT_EQ(ParseYesNo("Yes"), true);
  EXPECT_EQ(ParseYesNo("no"), false);
  EXPECT_EQ(ParseYesNo("NO"), false);
  for (const char* s : {"", "y", "n", "1", "0", "true", "yes ", " no"}) {
    EXPECT_EQ(ParseYesNo(s), std::nullopt) << s;
  }
}

TEST(SplitArgs, SplitsOnWhitespace) {
  EXPECT_EQ(SplitArgs("set  key\tvalue \r\n"), (Words{"set", "key", "value"}));
  EXPECT_EQ(SplitArgs("  lead"), (Words{"lead"}));
  EXPECT_EQ(SplitArgs(""), Words{});
  EXPECT_EQ(SplitArgs("   "), Words{});
}

TEST(SplitArgs, DoubleQuotesAndEscapes) {
  EXPECT_EQ(SplitArgs(R"("hello world")"), (Words{"hello world"}));
  EXPECT_EQ(SplitArgs(R"("a\nb\rc\td\be\af")"), (Words{"a\nb\rc\td\be\af"}));
  EXPECT_EQ(SplitArgs(R"("q\"q" "b\\s")"), (Words{"q\"q", "b\\s"}));
  EXPECT_EQ(SplitArgs(R"("\x41\x62\x00z")"), (Words{std::string("Ab\0z", 4)}));
  EXPECT_EQ(SplitArgs(R"("\xZZ")"), (Words{"xZZ"}));  // not hex: a plain escaped 'x'
  EXPECT_EQ(SplitArgs(R"("\q")"), (Words{"q"}));
  EXPECT_EQ(SplitArgs(R"("")"), (Words{""}));
  EXPECT_EQ(SplitArgs(R"(a "" b)"), (Words{"a", "", "b"}));
}

TEST(SplitArgs, SingleQuotesAreLiteral) {
  EXPECT_EQ(SplitArgs(R"('a\nb')"), (Words{"a\\nb"}));
  EXPECT_EQ(SplitArgs(R"('it\'s')"), (Words{"it's"}));
  EXPECT_EQ(SplitArgs(R"('a "b"')"), (Words{"a \"b\""}));
}

TEST(SplitArgs, QuotesInsideAWordJoinIt) {
  EXPECT_EQ(SplitArgs(R"(foo"bar baz")"), (Words{"foobar baz"}));
}

TEST(SplitArgs, UnbalancedOrGluedQuotesFail) {
  EXPECT_EQ(SplitArgs(R"("abc)"), std::nullopt);
  EXPECT_EQ(SplitArgs(R"('abc)"), std::nullopt);
  EXPECT_EQ(SplitArgs(R"("abc"def)"), std::nullopt);
  EXPECT_EQ(SplitArgs(R"('abc'def)"), std::nullopt);
  EXPECT_EQ(SplitArgs(R"("abc\")"), std::nullopt);
}

TEST(SplitArgs, VerticalTabAndFormFeedOnlySeparateBetweenWords) {
  // sdssplitargs skips any isspace() between words, but only ' ', \n, \r, \t end one.
  EXPECT_EQ(SplitArgs("\va\vb \fc"), (Words{"a\vb", "c"}));
  EXPECT_EQ(SplitArgs("\"a\"\v"), (Words{"a"}));
}

TEST(AppendQuoted, EscapesLikeSdscatrepr) {
  std::string out = "x ";
  AppendQuoted(out, "a\nb");
  EXPECT_EQ(out, "x \"a\\nb\"");
  auto quoted = [](std::string_view s) {
    std::string q;
    AppendQuoted(q, s);
    return q;
  };
  EXPECT_EQ(quoted(""), "\"\"");
  EXPECT_EQ(quoted("a \"b\" \\c"), R"("a \"b\" \\c")");
  EXPECT_EQ(quoted("\r\t\a\b"), R"("\r\t\a\b")");
  EXPECT_EQ(quoted(std::string("\x01\x7f\xff", 3)), R"("\x01\x7f\xff")");
  EXPECT_EQ(quoted("/var/log/disque.log"), "\"/var/log/disque.log\"");
}

TEST(AppendQuoted, RoundTripsThroughSplitArgs) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  std::string quoted;
  AppendQuoted(quoted, all);
  EXPECT_EQ(SplitArgs(quoted), (Words{all}));
}

TEST(GlobMatch, Basics) {
  EXPECT_TRUE(GlobMatch("*", "maxmemory"));
  EXPECT_TRUE(GlobMatch("max*", "maxmemory"));
  EXPECT_TRUE(GlobMatch("*memory", "maxmemory"));
  EXPECT_TRUE(GlobMatch("*mem*", "maxmemory"));
  EXPECT_TRUE(GlobMatch("**", "x"));
  EXPECT_TRUE(GlobMatch("?ort", "port"));
  EXPECT_FALSE(GlobMatch("?ort", "ort"));
  EXPECT_TRUE(GlobMatch("port", "port"));
  EXPECT_FALSE(GlobMatch("port", "ports"));
  EXPECT_FALSE(GlobMatch("ports", "port"));
  EXPECT_TRUE(GlobMatch("a*", "a"));
  EXPECT_FALSE(GlobMatch("a*b", "a"));
  EXPECT_TRUE(GlobMatch("*a", "ba"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  EXPECT_TRUE(GlobMatch("", ""));
  EXPECT_FALSE(GlobMatch("", "a"));
}

TEST(GlobMatch, NonEmptyPatternNeverMatchesEmptyString) {
  // QUIRK of stringmatchlen(): its loop stops when either side is exhausted.
  EXPECT_FALSE(GlobMatch("*", ""));
  EXPECT_FALSE(GlobMatch("?", ""));
}

TEST(GlobMatch, Classes) {
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hello"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[^e]llo", "hello"));
  EXPECT_TRUE(GlobMatch("h[a-c]llo", "hbllo"));
  EXPECT_TRUE(GlobMatch("h[c-a]llo", "hbllo"));  // reversed range
  EXPECT_FALSE(GlobMatch("h[a-c]llo", "hdllo"));
  EXPECT_TRUE(GlobMatch("[\\]]", "]"));
  EXPECT_TRUE(GlobMatch("[ab", "a"));   // unterminated class ends the pattern
  EXPECT_FALSE(GlobMatch("[]a", "a"));  // "[]" is an empty class
}

TEST(GlobMatch, Escapes) {
  EXPECT_TRUE(GlobMatch("a\\*b", "a*b"));
  EXPECT_FALSE(GlobMatch("a\\*b", "axb"));
  EXPECT_TRUE(GlobMatch("a\\?", "a?"));
  EXPECT_TRUE(GlobMatch("\\", "\\"));
}

TEST(GlobMatch, CaseSensitivity) {
  EXPECT_FALSE(GlobMatch("MAXMEMORY", "maxmemory"));
  EXPECT_TRUE(GlobMatch("MAXMEMORY", "maxmemory", true));
  EXPECT_TRUE(GlobMatch("M[A-B]X*", "max", true));
  EXPECT_FALSE(GlobMatch("M[A-B]X*", "max"));
}

TEST(Strings, CaseHelpers) {
  EXPECT_TRUE(EqualsIgnoreCase("MaxMemory", "maxmemory"));
  EXPECT_FALSE(EqualsIgnoreCase("maxmemory", "maxmemor"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_EQ(ToLower("HeLLo-1"), "hello-1");
  std::string s = "ABC";
  ToLowerInPlace(s);
  EXPECT_EQ(s, "abc");
}

TEST(HumanBytes, MatchesBytesToHuman) {
  EXPECT_EQ(HumanBytes(0), "0B");
  EXPECT_EQ(HumanBytes(1023), "1023B");
  EXPECT_EQ(HumanBytes(1024), "1.00K");
  EXPECT_EQ(HumanBytes(1536), "1.50K");
  EXPECT_EQ(HumanBytes(775192), "757.02K");
  EXPECT_EQ(HumanBytes(1048576), "1.00M");
  EXPECT_EQ(HumanBytes(1073741824), "1.00G");
  EXPECT_EQ(HumanBytes(1099511627776ULL), "1.00T");
  EXPECT_EQ(HumanBytes(1125899906842624ULL), "1.00P");
  EXPECT_EQ(HumanBytes(1152921504606846975ULL), "1024.00P");
  EXPECT_EQ(HumanBytes(1152921504606846976ULL), "1152921504606846976B");
  EXPECT_EQ(HumanBytes(UINT64_MAX), "18446744073709551615B");
}

TEST(RandomHex, LengthAndAlphabet) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    std::string h = RandomHex(40);
    ASSERT_EQ(h.size(), 40u);
    EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(h);
  }
  EXPECT_EQ(seen.size(), 20u);
  EXPECT_EQ(RandomHex(0), "");
}

TEST(Trim, StripsSpacesTabsAndLineEnds) {
  EXPECT_EQ(Trim("  port 7711 \r\n"), "port 7711");
  EXPECT_EQ(Trim("\t\tx"), "x");
  EXPECT_EQ(Trim(" \r\n\t "), "");
  EXPECT_EQ(Trim(""), "");
  EXPECT_EQ(Trim("a b"), "a b");
}

TEST(StringsTest, SecretEquals) {
  EXPECT_TRUE(SecretEquals("", ""));
  EXPECT_TRUE(SecretEquals("s3cret", "s3cret"));
  EXPECT_FALSE(SecretEquals("s3cret", "s3creT"));
  EXPECT_FALSE(SecretEquals("s3cre", "s3cret")) << "a prefix";
  EXPECT_FALSE(SecretEquals("s3cret", "s3cre"));
  EXPECT_FALSE(SecretEquals(std::string("s3cret\0", 7), "s3cret")) << "trailing NUL is not padding";
  EXPECT_FALSE(SecretEquals("", "x"));
  const std::string longest(512, 'p');
  EXPECT_TRUE(SecretEquals(longest, longest));
  EXPECT_FALSE(SecretEquals(longest + "p", longest + "p")) << "past the window nothing matches";
}

}  // namespace
}  // namespace disque
