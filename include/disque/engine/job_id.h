#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "disque/common/hash.h"

// Job IDs (PROTOCOL.md 2.2, DESIGN.md "Threads: shards that share nothing").
//
// Text form, exactly 40 characters:
//   D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1
//   "D-" | 8 hex: creating node | "-" | 24 base64: random part | "-" | 4 hex: TTL minutes
// The first two base64 characters of the random part (12 bits) are the slot of the
// job's queue, so any shard of any node routes a job command from the ID alone.
//
// Binary form (JobId, 24 bytes), which is what the engine stores:
//   bytes[0..4)   the node prefix (the 8 hex characters)
//   bytes[4..22)  the random part (24 base64 characters = 18 bytes; its first 12 bits
//                 are the slot)
//   bytes[22..24) the TTL field, big-endian
// Only canonical text (lowercase hex, the base64 alphabet) has a binary form. Any other
// text that passes the format check can name no job here, so it is simply unknown.
namespace disque::engine {

inline constexpr size_t kJobIdLen = 40;
inline constexpr int kSlotBits = 12;
inline constexpr uint32_t kSlotCount = 1u << kSlotBits;

struct JobId {
  std::array<uint8_t, 24> bytes{};

  bool operator==(const JobId&) const = default;

  uint16_t slot() const { return static_cast<uint16_t>((bytes[4] << 4) | (bytes[5] >> 4)); }
  uint16_t ttl_field() const { return static_cast<uint16_t>((bytes[22] << 8) | bytes[23]); }
  // 64 random bits (the random part after the slot): the hash of the ID for tables.
  uint64_t hash() const {
    uint64_t h;
    std::memcpy(&h, bytes.data() + 6, sizeof h);
    return h;
  }

  // Writes the 40 characters to out[0..40).
  void Format(char* out) const;
  std::string ToString() const;
  // The binary form of canonical text, or nullopt.
  static std::optional<JobId> Parse(std::string_view text);
};

// JobId::Parse(text)->hash() without decoding the rest: what a prefetch needs. May give a
// hash for text that Parse rejects (a non-canonical node prefix or TTL field).
std::optional<uint64_t> JobIdHashOfText(std::string_view text);

// The only checks Disque makes (PROTOCOL.md 2.2): length 40, "D-" at 0, '-' at 10 and 35.
bool IsValidJobIdFormat(std::string_view text);

// The slot encoded in a (format-valid) ID text; 0 when those characters are not base64
// (such an ID names no job, so any shard can answer for it).
uint16_t SlotOfJobIdText(std::string_view text);

// The slot of a queue name: 12 bits of CRC16, the same on every node.
inline uint16_t QueueSlot(std::string_view name) { return Crc16(name) & (kSlotCount - 1); }

// The TTL field for a job: minutes, capped at 65535, odd for at-least-once jobs
// (retry > 0), even for at-most-once ones.
uint16_t TtlField(int64_t ttl_seconds, bool at_least_once);

// The TTL field read back from ID text, as Disque reads it for dummy ACKs: hex digits in
// either case, any other character counts as 0.
uint16_t ReadTtlField(std::string_view text);

// Generates IDs for one shard. The random part is SipHash-2-4 of a counter under a key
// from the OS random source (two outputs, 128 bits): unpredictable, and distinct per
// counter value.
class JobIdGenerator {
 public:
  // `node_id`: this node's 40-character hex ID (its first 8 characters are used).
  JobIdGenerator(std::string_view node_id, SipKey key);
  JobId Next(uint16_t slot, int64_t ttl_seconds, bool at_least_once);

 private:
  std::array<uint8_t, 4> node_prefix_{};
  SipKey key_;
  uint64_t counter_ = 0;
};

}  // namespace disque::engine
