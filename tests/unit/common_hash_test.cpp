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

}  // namespace
}  // namespace disque
