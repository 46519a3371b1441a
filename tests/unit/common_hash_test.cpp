// Unit tests for disque/common/hash.h.

#include <gtest/gtest.h>

#include <string>

#include "disque/common/hash.h"

namespace disque {
namespace {

// The definition, one bit at a time: what the table-driven Crc16 must equal.
uint16_t BitwiseCrc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char c : data) {
    crc ^= static_cast<uint16_t>(c << 8);
    for (int i = 0; i < 8; ++i) crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
  }
  return crc;
}

TEST(Crc16, MatchesTheXmodemCheckValueAndRedisClusterSlots) {
  EXPECT_EQ(Crc16("123456789"), 0x31C3);  // the CRC-16/XMODEM check value
  EXPECT_EQ(Crc16(""), 0);
  // Redis Cluster: CLUSTER KEYSLOT foo = 12182, bar = 5061 (crc16 mod 16384).
  EXPECT_EQ(Crc16("foo") % 16384, 12182);
  EXPECT_EQ(Crc16("bar") % 16384, 5061);
}

TEST(Crc16, EqualsTheBitwiseDefinitionForEveryByteValueAndLongInputs) {
  std::string all;
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    EXPECT_EQ(Crc16(one), BitwiseCrc16(one)) << c;
    all += one;
  }
  EXPECT_EQ(Crc16(all), BitwiseCrc16(all));
  EXPECT_EQ(Crc16(all + all + "queue"), BitwiseCrc16(all + all + "queue"));
}

TEST(SipHash24, MatchesTheReferenceVectorAndDependsOnKeyAndData) {
  // The reference implementation's first test vectors: key 00 01 .. 0f, messages of
  // 0 and 1 bytes (00).
  const SipKey key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  EXPECT_EQ(SipHash24(key, ""), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(SipHash24(key, std::string(1, '\0')), 0x74f839c593dc67fdULL);
  EXPECT_NE(SipHash24(key, "a"), SipHash24(key, "b"));
  EXPECT_NE(SipHash24(key, "a"), SipHash24(SipKey{1, 2}, "a"));
}

// The one-word form is SipHash24 of the word's 8 little-endian bytes.
TEST(SipHash24, OfAWordEqualsTheGeneralFunctionOnItsBytes) {
  const SipKey key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  uint64_t word = 0;
  for (int i = 0; i < 1000; ++i) {
    unsigned char bytes[8];
    for (int b = 0; b < 8; ++b) bytes[b] = static_cast<unsigned char>(word >> (8 * b));
    ASSERT_EQ(SipHash24Word(key, word), SipHash24(key, std::string_view(reinterpret_cast<const char*>(bytes), 8))) << word;
    word = word * 6364136223846793005ULL + 1442695040888963407ULL;
  }
  // The reference vector of 8 bytes 00..07 (Aumasson and Bernstein's vectors.h, entry 8).
  EXPECT_EQ(SipHash24Word(key, 0x0706050403020100ULL), 0x93f5f5799a932462ULL);
}

}  // namespace

}  // namespace disque
