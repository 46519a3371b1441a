#include "disque/common/hash.h"

#include <bit>
#include <cstring>
#include <random>

namespace disque {
namespace {

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline void SipRound(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = Rotl(v1, 13);
  v1 ^= v0;
  v0 = Rotl(v0, 32);
  v2 += v3;
  v3 = Rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = Rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = Rotl(v1, 17);
  v1 ^= v2;
  v2 = Rotl(v2, 32);
}

inline uint64_t LoadLe64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

namespace {

// SipHash-2-4's state: compression of 8-byte blocks, then the finalization.
struct SipState {
  uint64_t v0, v1, v2, v3;
  explicit SipState(const SipKey& key)
      : v0(0x736f6d6570736575ULL ^ key[0]),
        v1(0x646f72616e646f6dULL ^ key[1]),
        v2(0x6c7967656e657261ULL ^ key[0]),
        v3(0x7465646279746573ULL ^ key[1]) {}
  void Absorb(uint64_t m) {
    v3 ^= m;
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    v0 ^= m;
  }
  // `last`: the final block (the length in its top byte, the tail bytes below).
  uint64_t Finish(uint64_t last) {
    Absorb(last);
    v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) SipRound(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

}  // namespace

uint64_t SipHash24(const SipKey& key, std::string_view data) {
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  const size_t len = data.size();
  SipState s(key);
  const size_t full = len & ~size_t{7};
  for (size_t i = 0; i < full; i += 8) s.Absorb(LoadLe64(in + i));
  uint64_t b = static_cast<uint64_t>(len) << 56;
  for (size_t i = 0; i < (len & 7); ++i) b |= static_cast<uint64_t>(in[full + i]) << (8 * i);
  return s.Finish(b);
}

uint64_t SipHash24Word(const SipKey& key, uint64_t word) {
  SipState s(key);
  s.Absorb(word);  // the one full block: the word's bytes, loaded little-endian
  return s.Finish(uint64_t{8} << 56);  // the length byte, no tail bytes
}

SipKey RandomSipKey() {
  std::random_device rd;  // getrandom(2) on Linux
  SipKey key{};
  for (auto& k : key) k = (static_cast<uint64_t>(rd()) << 32) | rd();
  return key;
}

namespace {

// The bitwise CRC of every byte value, so that Crc16 folds in a byte per lookup instead
// of eight shift-and-xor steps (it routes every ADDJOB and GETJOB by queue name).
constexpr std::array<uint16_t, 256> MakeCrc16Table() {
  std::array<uint16_t, 256> table{};
  for (unsigned byte = 0; byte < 256; ++byte) {
    auto crc = static_cast<uint16_t>(byte << 8);
    for (int i = 0; i < 8; ++i) crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> kCrc16Table = MakeCrc16Table();

}  // namespace

uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char c : data) crc = static_cast<uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ c) & 0xff]);
  return crc;
}

}  // namespace disque
