#pragma once

#include <cstdint>
#include <string>

#include "disque/common/status.h"

namespace disque::persist {

// What --check-aof found in a file: how far it is valid and why it stops there.
struct AofCheck {
  enum class Verdict { kValid, kTornTail, kCorrupt };
  Verdict verdict = Verdict::kValid;
  uint64_t size = 0;      // bytes in the file
  uint64_t valid = 0;     // bytes that form a valid file (== size when kValid)
  uint64_t loadjobs = 0;  // valid records of each type
  uint64_t deljobs = 0;
  std::string problem;    // what is wrong at `valid`, for the report
};

// Reads the whole file the way the loader does, also decoding each record's payload.
Result<AofCheck> CheckAof(const std::string& path);

// The `disque-server --check-aof FILE [--fix]` mode: prints the report to stdout and
// returns the exit status (0: valid, or fixed; 1: not valid, or not fixable).
int RunCheckAof(const std::string& path, bool fix);

}  // namespace disque::persist
