// Unit tests for disque/engine/job_id.h: the 40-character job ID text (PROTOCOL.md 2.2),
// its binary form, the TTL field rule, the format check, slot routing and the generator.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <unordered_set>

#include "disque/engine/engine.h"
#include "disque/engine/job_id.h"
#include "support/fake_clock.h"

namespace disque::engine {
namespace {

constexpr std::string_view kNodeId = "dcb833cf0123456789abcdef0123456789abcdef";
constexpr SipKey kKey = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
constexpr std::string_view kSample = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";

bool IsBase64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// ------------------------------------------------------------------ text <-> binary

TEST(JobIdParse, SampleFromTheSpecRoundTrips) {
  const std::optional<JobId> id = JobId::Parse(kSample);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->ToString(), kSample);
  EXPECT_EQ(id->ttl_field(), 0x05a1);
  // The node prefix is stored binary.
  EXPECT_EQ(id->bytes[0], 0xdc);
  EXPECT_EQ(id->bytes[1], 0xb8);
  EXPECT_EQ(id->bytes[2], 0x33);
  EXPECT_EQ(id->bytes[3], 0xcf);
}

TEST(JobIdParse, FormatWritesExactlyFortyCharacters) {
  const JobId id = *JobId::Parse(kSample);
  char buf[kJobIdLen + 2];
  buf[kJobIdLen] = '#';
  buf[kJobIdLen + 1] = '#';
  id.Format(buf);
  EXPECT_EQ(std::string_view(buf, kJobIdLen), kSample);
  EXPECT_EQ(buf[kJobIdLen], '#');
  EXPECT_EQ(buf[kJobIdLen + 1], '#');
}

TEST(JobIdParse, BinaryRoundTripOfGeneratedIds) {
  JobIdGenerator gen(kNodeId, kKey);
  for (int i = 0; i < 2000; ++i) {
    const JobId id = gen.Next(static_cast<uint16_t>(i % kSlotCount), 60 * i, i % 2 == 0);
    const std::string text = id.ToString();
    ASSERT_EQ(text.size(), kJobIdLen);
    const std::optional<JobId> back = JobId::Parse(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(*back, id) << text;
    EXPECT_EQ(back->ToString(), text);
  }
}

TEST(JobIdParse, EveryBase64CharacterRoundTripsInEveryPosition) {
  constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t pos = 11; pos < 35; ++pos) {
    for (char c : kAlphabet) {
      std::string text(kSample);
      text[pos] = c;
      const std::optional<JobId> id = JobId::Parse(text);
      ASSERT_TRUE(id.has_value()) << text;
      EXPECT_EQ(id->ToString(), text);
    }
  }
}

// Format writes 8 characters at a time (SWAR): against a character-at-a-time encoder,
// every byte value in every position of the binary form.
TEST(JobIdFormat, MatchesAPlainEncoderForEveryByteInEveryPosition) {
  constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  constexpr std::string_view kHexDigits = "0123456789abcdef";
  const auto plain = [&](const JobId& id) {
    std::string s = "D-";
    for (int i = 0; i < 4; ++i) s += {kHexDigits[id.bytes[i] >> 4], kHexDigits[id.bytes[i] & 15]};
    s += '-';
    for (int g = 0; g < 6; ++g) {
      const uint8_t* b = id.bytes.data() + 4 + 3 * g;
      const uint32_t v = (uint32_t{b[0]} << 16) | (uint32_t{b[1]} << 8) | b[2];
      for (int k = 3; k >= 0; --k) s += kAlphabet[(v >> (6 * k)) & 63];
    }
    s += '-';
    for (int i = 22; i < 24; ++i) s += {kHexDigits[id.bytes[i] >> 4], kHexDigits[id.bytes[i] & 15]};
    return s;
  };
  JobId id;
  for (size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<uint8_t>(i * 37 + 11);
  for (size_t pos = 0; pos < id.bytes.size(); ++pos) {
    JobId changed = id;
    for (int b = 0; b < 256; ++b) {
      changed.bytes[pos] = static_cast<uint8_t>(b);
      const std::string text = changed.ToString();
      ASSERT_EQ(text, plain(changed)) << "byte " << pos << " = " << b;
      ASSERT_EQ(JobId::Parse(text), std::optional<JobId>(changed)) << text;
    }
  }
}

TEST(JobIdParse, EveryByteOutsideTheAlphabetIsRejectedInEveryPosition) {
  for (size_t pos = 11; pos < 35; ++pos) {
    for (int c = 0; c < 256; ++c) {
      std::string text(kSample);
      text[pos] = static_cast<char>(c);
      EXPECT_EQ(JobId::Parse(text).has_value(), IsBase64(static_cast<char>(c))) << pos << " " << c;
      // The hash decodes the first four groups only (characters 11..26).
      if (pos < 27) {
        EXPECT_EQ(JobIdHashOfText(text).has_value(), IsBase64(static_cast<char>(c))) << pos << " " << c;
      }
    }
  }
}

TEST(JobIdParse, DistinctTextsGiveDistinctIds) {
  std::string other(kSample);
  other[20] = other[20] == 'A' ? 'B' : 'A';
  EXPECT_NE(*JobId::Parse(kSample), *JobId::Parse(other));
  std::string other_ttl(kSample);
  other_ttl[39] = '3';
  EXPECT_NE(*JobId::Parse(kSample), *JobId::Parse(other_ttl));
  EXPECT_EQ(JobId::Parse(other_ttl)->ttl_field(), 0x05a3);
}

TEST(JobIdParse, RejectsFormatInvalidText) {
  EXPECT_EQ(JobId::Parse(""), std::nullopt);
  EXPECT_EQ(JobId::Parse(kSample.substr(0, 39)), std::nullopt);
  EXPECT_EQ(JobId::Parse(std::string(kSample) + "0"), std::nullopt);
  std::string bad(kSample);
  bad[10] = 'x';
  EXPECT_EQ(JobId::Parse(bad), std::nullopt);
}

TEST(JobIdParse, FormatValidButNonCanonicalTextHasNoBinaryForm) {
  auto with = [](size_t pos, char c) {
    std::string s(kSample);
    s[pos] = c;
    return s;
  };
  // Uppercase hex in the node prefix or in the TTL field.
  EXPECT_EQ(JobId::Parse(with(2, 'D')), std::nullopt);
  EXPECT_EQ(JobId::Parse(with(9, 'F')), std::nullopt);
  EXPECT_EQ(JobId::Parse(with(38, 'A')), std::nullopt);
  // Non-hex in the prefix or the TTL field.
  EXPECT_EQ(JobId::Parse(with(5, 'g')), std::nullopt);
  EXPECT_EQ(JobId::Parse(with(39, 'z')), std::nullopt);
  // Characters outside the base64 alphabet in the random part.
  for (char c : {'-', '=', '!', '_', '.', ' ', '\0'}) {
    EXPECT_EQ(JobId::Parse(with(11, c)), std::nullopt) << int{c};
    EXPECT_EQ(JobId::Parse(with(34, c)), std::nullopt) << int{c};
  }
  // All of them still pass the (loose) format check.
  EXPECT_TRUE(IsValidJobIdFormat(with(2, 'D')));
  EXPECT_TRUE(IsValidJobIdFormat(with(38, 'A')));
  EXPECT_TRUE(IsValidJobIdFormat(with(11, '=')));
}

// ------------------------------------------------------------------ format check

TEST(IsValidJobIdFormat, AcceptsTheSample) { EXPECT_TRUE(IsValidJobIdFormat(kSample)); }

TEST(IsValidJobIdFormat, ChecksOnlyLengthAndBytes0_1_10_35) {
  // Every other byte may be anything, even NUL or a dash.
  std::string s(kJobIdLen, '\0');
  s[0] = 'D';
  s[1] = '-';
  s[10] = '-';
  s[35] = '-';
  EXPECT_TRUE(IsValidJobIdFormat(s));
  std::string dashes(kJobIdLen, '-');
  dashes[0] = 'D';
  EXPECT_TRUE(IsValidJobIdFormat(dashes));
  std::string junk(kJobIdLen, '~');
  junk[0] = 'D';
  junk[1] = '-';
  junk[10] = '-';
  junk[35] = '-';
  EXPECT_TRUE(IsValidJobIdFormat(junk));
}

TEST(IsValidJobIdFormat, RejectsAChangeInAnyCheckedByte) {
  for (size_t pos : {0, 1, 10, 35}) {
    for (char c : {'d', 'E', '_', 'x', '0', '\0'}) {
      std::string s(kSample);
      s[pos] = c;
      EXPECT_FALSE(IsValidJobIdFormat(s)) << pos << " " << int{c};
    }
  }
  // 'D' is only right at 0 and '-' only at 1, 10 and 35.
  std::string s(kSample);
  s[0] = '-';
  EXPECT_FALSE(IsValidJobIdFormat(s));
  s = kSample;
  s[1] = 'D';
  EXPECT_FALSE(IsValidJobIdFormat(s));
}

TEST(IsValidJobIdFormat, AcceptsAnyChangeInAnUncheckedByte) {
  for (size_t pos = 0; pos < kJobIdLen; ++pos) {
    if (pos == 0 || pos == 1 || pos == 10 || pos == 35) continue;
    std::string s(kSample);
    s[pos] = '*';
    EXPECT_TRUE(IsValidJobIdFormat(s)) << pos;
  }
}

TEST(IsValidJobIdFormat, RequiresExactlyFortyBytes) {
  EXPECT_FALSE(IsValidJobIdFormat(""));
  EXPECT_FALSE(IsValidJobIdFormat("D-"));
  EXPECT_FALSE(IsValidJobIdFormat(kSample.substr(0, 39)));
  EXPECT_FALSE(IsValidJobIdFormat(std::string(kSample) + "0"));
  EXPECT_FALSE(IsValidJobIdFormat(std::string(kSample) + std::string(kSample)));
}

// ------------------------------------------------------------------ TTL field

struct TtlRow {
  int64_t ttl;
  bool at_least_once;
  uint16_t field;
  const char* text;
};

// PROTOCOL.md 2.2, the example table, plus the rule's edges.
constexpr TtlRow kTtlRows[] = {
    {86400, true, 0x05a1, "05a1"},
    {86400, false, 0x05a0, "05a0"},
    {4, true, 0x0001, "0001"},
    {5, true, 0x0001, "0001"},
    {30, true, 0x0001, "0001"},
    {100, false, 0x0000, "0000"},
    {100, true, 0x0001, "0001"},
    {600, true, 0x000b, "000b"},
    {3932100, true, 0xffff, "ffff"},
    {3932100 + 60 * 1000, true, 0xffff, "ffff"},
    {int64_t{1} << 40, true, 0xffff, "ffff"},
    // The cap applies first, then the even rule.
    {3932100, false, 0xfffe, "fffe"},
    // Integer division of seconds into minutes.
    {59, false, 0x0000, "0000"},
    {119, false, 0x0000, "0000"},
    {120, false, 0x0002, "0002"},
    {120, true, 0x0003, "0003"},
    {179, true, 0x0003, "0003"},
    {660, false, 0x000a, "000a"},
    {660, true, 0x000b, "000b"},
};

TEST(TtlField, MatchesEveryRowOfTheSpecTable) {
  for (const TtlRow& row : kTtlRows) {
    EXPECT_EQ(TtlField(row.ttl, row.at_least_once), row.field) << row.ttl << " " << row.at_least_once;
  }
}

TEST(TtlField, OddForAtLeastOnceEvenForAtMostOnce) {
  for (int64_t ttl = 1; ttl < 200000; ttl += 37) {
    EXPECT_EQ(TtlField(ttl, true) % 2, 1) << ttl;
    EXPECT_EQ(TtlField(ttl, false) % 2, 0) << ttl;
    const int64_t m = std::min<int64_t>(ttl / 60, 65535);
    EXPECT_LE(std::abs(TtlField(ttl, true) - m), 1) << ttl;
    EXPECT_LE(std::abs(TtlField(ttl, false) - m), 1) << ttl;
  }
}

TEST(TtlField, GeneratedIdsCarryTheFieldAsFourLowercaseHexDigits) {
  JobIdGenerator gen(kNodeId, kKey);
  for (const TtlRow& row : kTtlRows) {
    const JobId id = gen.Next(7, row.ttl, row.at_least_once);
    EXPECT_EQ(id.ttl_field(), row.field);
    EXPECT_EQ(id.ToString().substr(36), row.text) << row.ttl << " " << row.at_least_once;
  }
}

TEST(ReadTtlField, ReadsCanonicalText) {
  EXPECT_EQ(ReadTtlField(kSample), 0x05a1);
  for (const TtlRow& row : kTtlRows) {
    std::string s(kSample);
    s.replace(36, 4, row.text);
    EXPECT_EQ(ReadTtlField(s), row.field) << s;
  }
}

TEST(ReadTtlField, IsLenient) {
  auto with_ttl = [](std::string_view ttl) {
    std::string s(kSample);
    s.replace(36, 4, ttl);
    return s;
  };
  EXPECT_EQ(ReadTtlField(with_ttl("zzzz")), 0);
  EXPECT_EQ(ReadTtlField(with_ttl("05A1")), 0x05a1);
  EXPECT_EQ(ReadTtlField(with_ttl("FFFF")), 0xffff);
  EXPECT_EQ(ReadTtlField(with_ttl("aBcD")), 0xabcd);
  // Each non-hex character is a 0 digit in its own position.
  EXPECT_EQ(ReadTtlField(with_ttl("z1z1")), 0x0101);
  EXPECT_EQ(ReadTtlField(with_ttl("1zzz")), 0x1000);
  EXPECT_EQ(ReadTtlField(with_ttl("g00f")), 0x000f);
  EXPECT_EQ(ReadTtlField(with_ttl("-+/ ")), 0);
}

TEST(JobIdHashOfText, EqualsTheHashOfTheParsedId) {
  JobIdGenerator gen(kNodeId, kKey);
  for (int i = 0; i < 1000; ++i) {
    const std::string text = gen.Next(static_cast<uint16_t>(i), 3600, true).ToString();
    ASSERT_EQ(JobIdHashOfText(text), JobId::Parse(text)->hash()) << text;
  }
  EXPECT_EQ(JobIdHashOfText(kSample), JobId::Parse(kSample)->hash());
}

TEST(JobIdHashOfText, NeedsTheFormatAndBase64InTheCharactersItReads) {
  EXPECT_EQ(JobIdHashOfText(""), std::nullopt);
  EXPECT_EQ(JobIdHashOfText(kSample.substr(0, 39)), std::nullopt);
  std::string bad(kSample);
  bad[20] = '.';  // the third group of the random part: holds hash bytes
  EXPECT_EQ(JobIdHashOfText(bad), std::nullopt);
  // Characters it does not read: the last random group, the node prefix, the TTL field.
  std::string other(kSample);
  other[34] = '.';
  other[2] = 'X';
  other[39] = 'Z';
  EXPECT_EQ(JobIdHashOfText(other), JobId::Parse(kSample)->hash());
  EXPECT_EQ(JobId::Parse(other), std::nullopt);
}

// ------------------------------------------------------------------ slots

TEST(SlotOfJobIdText, EqualsTheSlotGivenToTheGenerator) {
  JobIdGenerator gen(kNodeId, kKey);
  for (uint32_t slot = 0; slot < kSlotCount; ++slot) {
    const JobId id = gen.Next(static_cast<uint16_t>(slot), 3600, slot % 3 != 0);
    EXPECT_EQ(id.slot(), slot);
    EXPECT_EQ(SlotOfJobIdText(id.ToString()), slot);
  }
}

TEST(SlotOfJobIdText, IsZeroWhenTheSlotCharactersAreNotBase64) {
  std::string s(kSample);
  ASSERT_NE(SlotOfJobIdText(s), 0);
  s[11] = '=';
  EXPECT_EQ(SlotOfJobIdText(s), 0);
  s = kSample;
  s[12] = '-';
  EXPECT_EQ(SlotOfJobIdText(s), 0);
}

TEST(SlotOfJobIdText, DecodesTheFirstTwoBase64Characters) {
  std::string s(kSample);
  s[11] = 'A';  // 0
  s[12] = 'B';  // 1
  EXPECT_EQ(SlotOfJobIdText(s), 1);
  s[11] = '/';  // 63
  s[12] = '+';  // 62
  EXPECT_EQ(SlotOfJobIdText(s), 63 * 64 + 62);
  s[11] = 'B';
  s[12] = 'A';
  EXPECT_EQ(SlotOfJobIdText(s), 64);
  EXPECT_EQ(JobId::Parse(s)->slot(), 64);
}

TEST(SlotOfJobIdText, EqualsTheQueueSlotForJobsMadeByAddJob) {
  testing::FakeClock clock;
  Engine engine(clock, kNodeId, kKey, 1);
  for (int i = 0; i < 300; ++i) {
    const std::string queue = "queue-" + std::to_string(i * 7919);
    AddJobArgs args;
    args.queue = queue;
    args.body = "body";
    args.retry = static_cast<uint32_t>(i % 3);
    args.delay = static_cast<uint32_t>(i % 2);
    args.ttl = 100;
    const Result<const Job*> job = engine.AddJob(args);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(SlotOfJobIdText((*job)->id.ToString()), QueueSlot(queue)) << queue;
    EXPECT_EQ((*job)->id.slot(), QueueSlot(queue));
  }
  EXPECT_EQ(QueueSlot(""), 0);  // CRC16 of nothing
  EXPECT_LT(QueueSlot("some-queue"), kSlotCount);
}

// ------------------------------------------------------------------ generator

TEST(JobIdGenerator, IdsStartWithDAndTheFirstEightCharactersOfTheNodeId) {
  JobIdGenerator gen(kNodeId, kKey);
  const std::string text = gen.Next(0, 86400, true).ToString();
  EXPECT_EQ(text.substr(0, 11), "D-dcb833cf-");
  EXPECT_EQ(text[35], '-');
  EXPECT_TRUE(IsValidJobIdFormat(text));

  JobIdGenerator other("0123abcd" + std::string(32, 'e'), kKey);
  EXPECT_EQ(other.Next(0, 86400, true).ToString().substr(0, 11), "D-0123abcd-");
}

TEST(JobIdGenerator, TenThousandIdsAreDistinctAndUseTheBase64Alphabet) {
  JobIdGenerator gen(kNodeId, kKey);
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    // The same slot and TTL every time: only the random part can differ.
    const std::string text = gen.Next(123, 86400, true).ToString();
    for (size_t pos = 11; pos < 35; ++pos) {
      ASSERT_TRUE(IsBase64(text[pos])) << text;
    }
    for (size_t pos : {2, 3, 4, 5, 6, 7, 8, 9, 36, 37, 38, 39}) {
      const char c = text[pos];
      ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << text;
    }
    EXPECT_TRUE(seen.insert(text).second) << "duplicate " << text;
  }
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(JobIdGenerator, RandomPartUsesTheWholeAlphabetIncludingPlusAndSlash) {
  JobIdGenerator gen(kNodeId, kKey);
  std::unordered_set<char> chars;
  for (int i = 0; i < 2000; ++i) {
    const std::string text = gen.Next(0, 60, true).ToString();
    for (size_t pos = 13; pos < 35; ++pos) chars.insert(text[pos]);
  }
  EXPECT_EQ(chars.size(), 64u);
  EXPECT_TRUE(chars.count('+'));
  EXPECT_TRUE(chars.count('/'));
}

TEST(JobIdGenerator, DifferentKeysGiveDifferentSequences) {
  JobIdGenerator a(kNodeId, kKey);
  JobIdGenerator b(kNodeId, SipKey{kKey[0] + 1, kKey[1]});
  EXPECT_NE(a.Next(5, 60, true), b.Next(5, 60, true));
  // The same key and node give the same sequence (the generator is deterministic).
  JobIdGenerator c(kNodeId, kKey);
  JobIdGenerator d(kNodeId, kKey);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.Next(5, 60, true), d.Next(5, 60, true));
}

TEST(JobIdGenerator, HashComesFromTheRandomBits) {
  JobIdGenerator gen(kNodeId, kKey);
  std::unordered_set<uint64_t> hashes;
  for (int i = 0; i < 1000; ++i) hashes.insert(gen.Next(9, 60, true).hash());
  EXPECT_EQ(hashes.size(), 1000u);
}

}  // namespace
}  // namespace disque::engine
