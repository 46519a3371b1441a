// Fuzz target for the cluster bus codec (include/disque/cluster/message.h). The input is
// a receive buffer: frames are cut with FrameLength and decoded one after the other, as
// the bus does. Besides "no crash, no sanitizer report", every decoded message must
// survive Encode and Decode unchanged, and a known type must re-encode to the very bytes
// it came from (the format has exactly one encoding of each message).
//
// Built with libFuzzer under clang (`make fuzz`), and as bus_message_fuzz_replay, which
// runs the seed corpus under any compiler in ctest (replay_main.cpp).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "disque/cluster/message.h"

namespace {

using disque::Result;
using namespace disque::cluster;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "bus_message_fuzz: %s\n", what);
  std::abort();
}

void CheckReencoding(std::string_view frame, const Message& message) {
  std::string encoded;
  Encode(message, encoded);
  Result<Message> again = Decode(encoded);
  if (!again.ok()) Fail("a decoded message does not decode after Encode");
  if (!(*again == message)) Fail("Decode(Encode(m)) differs from m");
  if (IsKnownType(message.type) && encoded != frame) Fail("Encode(Decode(frame)) != frame");
  if (!IsKnownType(message.type) && encoded.size() != kFixedHeaderSize + message.sender_ip.size()) {
    Fail("an unknown type encoded a body");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  // The whole input as one frame: exercises Decode's own length checks.
  Result<Message> whole = Decode(input);
  if (whole.ok()) CheckReencoding(input, *whole);

  std::string_view stream = input;
  while (!stream.empty()) {
    Result<size_t> length = FrameLength(stream);
    if (!length.ok()) break;  // the bus closes the link
    if (*length == 0) {
      if (stream.size() >= 12) Fail("FrameLength wants more than 12 bytes");
      break;
    }
    if (*length < kFixedHeaderSize || *length > kMaxFrameSize) Fail("FrameLength out of range");
    if (*length > stream.size()) break;  // incomplete: wait for more bytes
    std::string_view frame = stream.substr(0, *length);
    Result<Message> message = Decode(frame);
    if (message.ok()) CheckReencoding(frame, *message);
    stream.remove_prefix(*length);
  }
  return 0;
}
