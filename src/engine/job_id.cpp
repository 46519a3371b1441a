#include "disque/engine/job_id.h"

#include <array>
#include <bit>
#include <string_view>

namespace disque::engine {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Character -> its digit value shifted left by `shift`, or kBad (a bit no valid value
// sets) for characters outside the alphabet. Tables, not branches: the branches of a
// range test mispredict when every parsed ID differs, which made parsing three times
// slower on real traffic than on one repeated ID. With the value already in place, a
// group of digits is lookups ORed together, the check folded in (one test of kBad at
// the end).
template <typename T, T kBad>
struct PlacedDigitTable {
  std::array<T, 256> value{};
  constexpr PlacedDigitTable(std::string_view alphabet, int shift) {
    value.fill(kBad);
    for (size_t i = 0; i < alphabet.size(); ++i) value[static_cast<uint8_t>(alphabet[i])] = static_cast<T>(i << shift);
  }
  T operator[](char c) const { return value[static_cast<uint8_t>(c)]; }
};

constexpr std::string_view kBase64Alphabet(kBase64, 64);

// A hex digit in the high or the low nibble of a byte: a byte is two lookups ORed.
// Canonical (lowercase) hex only.
constexpr uint16_t kBadNibble = 0x8000;
using NibbleTable = PlacedDigitTable<uint16_t, kBadNibble>;
constexpr NibbleTable kHighNibble(std::string_view(kHex, 16), 4), kLowNibble(std::string_view(kHex, 16), 0);

// Decodes 2n lowercase hex digits into n bytes. Returns a negative number when a digit
// is not canonical hex (checked once, by the caller), else 0.
int DecodeHex(const char* in, size_t n, uint8_t* out) {
  const auto* c = reinterpret_cast<const uint8_t*>(in);
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t v = kHighNibble.value[c[2 * i]] | kLowNibble.value[c[2 * i + 1]];
    bad |= v;
    out[i] = static_cast<uint8_t>(v);
  }
  return (bad & kBadNibble) != 0 ? -1 : 0;
}

// A base64 character's digit shifted to its place among a group's 24 bits, one table
// per place (the first character's digit is the highest): a group is four lookups
// ORed. A lookup, a shift and an OR per character, with a check each, were half of an
// ACKJOB's ID parsing.
constexpr uint32_t kBadDigit = 0x80000000u;
using Base64Table = PlacedDigitTable<uint32_t, kBadDigit>;
constexpr std::array<Base64Table, 4> kPlacedDigits{Base64Table(kBase64Alphabet, 18), Base64Table(kBase64Alphabet, 12),
                                                   Base64Table(kBase64Alphabet, 6), Base64Table(kBase64Alphabet, 0)};

// Decodes the first kGroups groups of the random part's 24 characters (4 characters ->
// 3 bytes each) into bytes[4 + 3 * group ...], and writes one byte past the last group
// (each group is stored as 4 bytes: the caller writes that byte afterwards or ignores
// it). Returns a negative number when a character is outside the alphabet (checked
// once, by the caller), else 0. Unrolled: the group count is a constant.
template <int kGroups>
int DecodeRandomGroups(const char* text, uint8_t* bytes) {
  uint32_t bad = 0;
  for (int g = 0; g < kGroups; ++g) {
    const auto* c = reinterpret_cast<const uint8_t*>(text + 11 + 4 * g);
    const uint32_t v = kPlacedDigits[0].value[c[0]] | kPlacedDigits[1].value[c[1]] | kPlacedDigits[2].value[c[2]] |
                       kPlacedDigits[3].value[c[3]];
    bad |= v;
    const uint32_t be = __builtin_bswap32(v << 8);  // the group's 3 bytes first, then a 0
    std::memcpy(bytes + 4 + 3 * g, &be, 4);
  }
  return (bad & kBadDigit) != 0 ? -1 : 0;
}

// The first character in the low byte: stored as it is on a little-endian machine.
static_assert(std::endian::native == std::endian::little);
template <int kBits>
struct CharPairTable {
  std::array<uint16_t, size_t{1} << (2 * kBits)> pair{};
  constexpr explicit CharPairTable(std::string_view alphabet) {
    constexpr size_t kMask = (size_t{1} << kBits) - 1;
    for (size_t i = 0; i < pair.size(); ++i) {
      pair[i] = static_cast<uint16_t>(static_cast<uint8_t>(alphabet[i >> kBits]) |
                                      (static_cast<uint8_t>(alphabet[i & kMask]) << 8));
    }
  }
};

constexpr CharPairTable<6> kBase64Pairs{kBase64Alphabet};  // 12 bits -> 2 characters (8 KB)
constexpr CharPairTable<4> kHexPairs{std::string_view(kHex, 16)};         // a byte -> 2 digits

void StorePair(char* out, uint16_t pair) { std::memcpy(out, &pair, 2); }

// 6 bytes (big-endian at `in`) -> 8 base64 characters. Reads 8 bytes: the caller's
// array holds them.
void EncodeBase64x8(const uint8_t* in, char* out) {
  uint64_t w;
  std::memcpy(&w, in, 8);
  w = __builtin_bswap64(w) >> 16;  // the 48 bits, the first byte highest
  StorePair(out, kBase64Pairs.pair[w >> 36]);
  StorePair(out + 2, kBase64Pairs.pair[(w >> 24) & 0xfff]);
  StorePair(out + 4, kBase64Pairs.pair[(w >> 12) & 0xfff]);
  StorePair(out + 6, kBase64Pairs.pair[w & 0xfff]);
}

void EncodeHex(const uint8_t* in, size_t n, char* out) {
  for (size_t i = 0; i < n; ++i) StorePair(out + 2 * i, kHexPairs.pair[in[i]]);
}

}  // namespace

void JobId::Format(char* out) const {
  out[0] = 'D';
  out[1] = '-';
  EncodeHex(bytes.data(), 4, out + 2);
  out[10] = '-';
  // 18 bytes -> 24 characters, 6 bytes -> 8 at a time (the last read ends at byte 24).
  EncodeBase64x8(bytes.data() + 4, out + 11);
  EncodeBase64x8(bytes.data() + 10, out + 19);
  EncodeBase64x8(bytes.data() + 16, out + 27);
  out[35] = '-';
  EncodeHex(bytes.data() + 22, 2, out + 36);
}

std::string JobId::ToString() const {
  std::string s(kJobIdLen, '\0');
  Format(s.data());
  return s;
}

std::optional<JobId> JobId::Parse(std::string_view text) {
  if (!IsValidJobIdFormat(text)) return std::nullopt;
  // Every digit is looked up and the outcome checked once at the end: each decoder
  // returns a negative number when a character is outside its alphabet. An early return
  // per digit was half of an ACKJOB's parsing cost in branches.
  const char* t = text.data();
  JobId id;
  int bad = DecodeRandomGroups<6>(t, id.bytes.data());  // writes byte 22 too: first
  bad |= DecodeHex(t + 2, 4, id.bytes.data());
  bad |= DecodeHex(t + 36, 2, id.bytes.data() + 22);
  if (bad < 0) return std::nullopt;
  return id;
}

std::optional<uint64_t> JobIdHashOfText(std::string_view text) {
  if (!IsValidJobIdFormat(text)) return std::nullopt;
  // hash() is bytes 6..14: in the first four groups (bytes 4..16). Whether the rest of
  // the text is canonical does not matter for a prefetch.
  JobId id;
  if (DecodeRandomGroups<4>(text.data(), id.bytes.data()) < 0) return std::nullopt;
  return id.hash();
}

bool IsValidJobIdFormat(std::string_view text) {
  return text.size() == kJobIdLen && text[0] == 'D' && text[1] == '-' && text[10] == '-' && text[35] == '-';
}

uint16_t SlotOfJobIdText(std::string_view text) {
  const uint32_t slot = kPlacedDigits[2][text[11]] | kPlacedDigits[3][text[12]];  // the digits' places: 6, 0
  if (slot & kBadDigit) return 0;
  return static_cast<uint16_t>(slot);
}

uint16_t TtlField(int64_t ttl_seconds, bool at_least_once) {
  int64_t m = ttl_seconds / 60;
  if (m > 65535) m = 65535;
  if (m < 0) m = 0;
  return static_cast<uint16_t>(at_least_once ? (m | 1) : (m & ~int64_t{1}));
}

uint16_t ReadTtlField(std::string_view text) {
  uint16_t v = 0;
  for (size_t i = 36; i < 40 && i < text.size(); ++i) {
    const char c = text[i];
    int d = 0;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    v = static_cast<uint16_t>((v << 4) | d);
  }
  return v;
}

JobIdGenerator::JobIdGenerator(std::string_view node_id, SipKey key) : key_(key) {
  std::string prefix(node_id.substr(0, 8));
  prefix.resize(8, '0');
  if (DecodeHex(prefix.data(), 4, node_prefix_.data()) < 0) node_prefix_ = {};
}

JobId JobIdGenerator::Next(uint16_t slot, int64_t ttl_seconds, bool at_least_once) {
  JobId id;
  std::memcpy(id.bytes.data(), node_prefix_.data(), 4);
  // The random part: the slot (12 bits), a nibble of h0 ^ h1, then h0 and h1, two
  // SipHash outputs of successive counter values (bytes 6..22: the table hash, bytes
  // 6..14, is h0). 128 bits of entropy. Two calls, not three: hashing was the largest
  // single function in an ADDJOB's instruction count.
  const auto next_hash = [this] {
    const uint64_t n = counter_++;
    return SipHash24Word(key_, n);
  };
  const uint64_t h0 = next_hash();
  const uint64_t h1 = next_hash();
  id.bytes[4] = static_cast<uint8_t>(slot >> 4);
  id.bytes[5] = static_cast<uint8_t>(((slot & 15) << 4) | ((h0 ^ h1) >> 60));
  std::memcpy(id.bytes.data() + 6, &h0, 8);
  std::memcpy(id.bytes.data() + 14, &h1, 8);
  const uint16_t ttl = TtlField(ttl_seconds, at_least_once);
  id.bytes[22] = static_cast<uint8_t>(ttl >> 8);
  id.bytes[23] = static_cast<uint8_t>(ttl);
  return id;
}

}  // namespace disque::engine
