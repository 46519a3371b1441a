#pragma once

#include <cstdint>

#include "disque/common/clock.h"

namespace disque::testing {

// A clock that moves only when told to: time-based behaviour (TTL, retry, delay,
// timeouts) is tested by advancing it, never by sleeping. Starts at a realistic wall
// time (2026-01-01), because job times of 0 mean "never" in places.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1767225600000) : now_ms_(start_ms) {}
  int64_t NowMs() const override { return now_ms_; }
  int64_t NowUs() const override { return now_ms_ * 1000; }
  int64_t MonotonicMs() const override { return now_ms_; }
  void Advance(int64_t ms) { now_ms_ += ms; }
  void Set(int64_t ms) { now_ms_ = ms; }

 private:
  int64_t now_ms_;
};

}  // namespace disque::testing
