// Fuzz target for job IDs (include/disque/engine/job_id.h): the input is ID text as a
// client or a peer sends it.
//
// - Text that parses is canonical: it formats back to itself, passes the format check,
//   and its slot and TTL field read from the text agree with the binary form.
// - Format-valid text that does not parse still has a slot below 4096.
// - Any 24 bytes are a JobId whose text parses back to the same bytes (the input's first
//   24 bytes are used as one).
// - The generator, keyed and seeded from the input, makes IDs that parse back, carry the
//   slot, the TTL parity and the node prefix they were made with.
//
// Built with libFuzzer under clang (`make fuzz`), and as job_id_fuzz_replay, which runs
// the seed corpus under any compiler in ctest (replay_main.cpp).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "disque/common/hash.h"
#include "disque/engine/job_id.h"

namespace {

using disque::engine::JobId;
using disque::engine::kJobIdLen;
using disque::engine::kSlotCount;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "job_id_fuzz: %s\n", what);
  std::abort();
}

bool IsLowerHex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

void CheckText(std::string_view text) {
  const bool format_ok = disque::engine::IsValidJobIdFormat(text);
  // Read as Disque reads dummy ACKs: any text, any length.
  const uint16_t ttl = disque::engine::ReadTtlField(text);
  const std::optional<JobId> id = JobId::Parse(text);
  if (!id) {
    // SlotOfJobIdText's precondition is the format check.
    if (format_ok && disque::engine::SlotOfJobIdText(text) >= kSlotCount) Fail("a slot past 4095");
    return;
  }
  if (!format_ok) Fail("Parse accepted text that fails the format check");
  if (id->ToString() != text) Fail("a parsed ID does not format back to its text");
  if (JobId::Parse(id->ToString()) != id) Fail("a formatted ID parses to another ID");
  if (disque::engine::SlotOfJobIdText(text) != id->slot())
    Fail("the slot of the text differs from the ID's");
  if (id->slot() >= kSlotCount) Fail("a slot past 4095");
  if (ttl != id->ttl_field()) Fail("the TTL field of the text differs from the ID's");
}

void CheckBytes(const uint8_t* bytes) {
  JobId id;
  std::memcpy(id.bytes.data(), bytes, id.bytes.size());
  const std::string text = id.ToString();
  if (text.size() != kJobIdLen || !disque::engine::IsValidJobIdFormat(text))
    Fail("Format wrote a bad ID");
  if (JobId::Parse(text) != id) Fail("the text of an ID parses to another ID");
  if (disque::engine::SlotOfJobIdText(text) != id.slot())
    Fail("the slot of a formatted ID is lost");
}

// Input, from its start: key (16 bytes), slot (2), TTL seconds (8), at-least-once (1),
// then the node ID text (the rest, up to 40 bytes).
void CheckGenerator(std::string_view input) {
  constexpr size_t kFixed = 16 + 2 + 8 + 1;
  if (input.size() < kFixed) return;
  disque::SipKey key;
  std::memcpy(key.data(), input.data(), 16);
  uint16_t slot;
  std::memcpy(&slot, input.data() + 16, 2);
  int64_t ttl_seconds;
  std::memcpy(&ttl_seconds, input.data() + 18, 8);
  const bool at_least_once = (input[26] & 1) != 0;
  const std::string_view node_id = input.substr(kFixed, 40);

  disque::engine::JobIdGenerator generator(node_id, key);
  const JobId first = generator.Next(slot, ttl_seconds, at_least_once);
  const JobId second = generator.Next(slot, ttl_seconds, at_least_once);
  if (first == second) Fail("the generator repeated an ID");
  for (const JobId& id : {first, second}) {
    const std::string text = id.ToString();
    if (JobId::Parse(text) != id) Fail("a generated ID does not parse back");
    if (id.slot() != (slot & (kSlotCount - 1))) Fail("a generated ID lost its slot");
    if (id.ttl_field() != disque::engine::TtlField(ttl_seconds, at_least_once))
      Fail("a generated ID lost its TTL");
    if (((id.ttl_field() & 1) != 0) != at_least_once)
      Fail("the TTL parity is not the delivery guarantee");
    // The node prefix: the ID's first 8 characters if they are lowercase hex (short IDs
    // padded with '0'), else zeros.
    std::string prefix(node_id.substr(0, 8));
    prefix.resize(8, '0');
    if (!IsLowerHex(prefix)) prefix = "00000000";
    if (text.compare(2, 8, prefix) != 0) Fail("a generated ID has the wrong node prefix");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckText(input);
  if (size >= sizeof(JobId{}.bytes)) CheckBytes(data);
  CheckGenerator(input);
  const uint16_t queue_slot = disque::engine::QueueSlot(input);
  if (queue_slot >= kSlotCount) Fail("a queue slot past 4095");
  return 0;
}
