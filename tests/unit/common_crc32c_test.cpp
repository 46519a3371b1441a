#include "disque/common/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace disque {
namespace {

TEST(Crc32c, KnownValues) {
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(Crc32cPortable("123456789"), 0xE3069283u);
}

TEST(Crc32c, HardwareAndTableAgreeAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string data(300, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t len = 0; start + len <= 120; ++len) {
      const std::string_view piece = std::string_view(data).substr(start, len);
      ASSERT_EQ(Crc32c(piece), Crc32cPortable(piece)) << start << " " << len;
    }
  }
}

TEST(Crc32c, ContinuesAPreviousResult) {
  const std::string a = "the quick brown fox ", b = "jumps over the lazy dog";
  EXPECT_EQ(Crc32c(b, Crc32c(a)), Crc32c(a + b));
  EXPECT_EQ(Crc32cPortable(b, Crc32cPortable(a)), Crc32c(a + b));
}

}  // namespace
}  // namespace disque
