#pragma once

#include <cstdint>

namespace disque {

// Time source for everything that reasons about time. Production code uses the system
// clock; unit tests inject a FakeClock (tests/support) so TTL, retry and delay are
// tested without sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  // Unix time in milliseconds (wall clock: job ctime, TTL deadlines, TIME).
  virtual int64_t NowMs() const = 0;
  // Unix time in microseconds.
  virtual int64_t NowUs() const = 0;
  // A monotonic time in milliseconds (timeouts, uptime); never jumps backwards.
  virtual int64_t MonotonicMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  int64_t NowUs() const override;
  int64_t MonotonicMs() const override;
  // The process-wide instance.
  static const SystemClock& Instance();
};

// `seconds` in milliseconds, INT64_MAX when that does not fit (config values such as
// `timeout` accept any non-negative int64).
constexpr int64_t SecondsToMsSaturating(int64_t seconds) {
  return seconds > INT64_MAX / 1000 ? INT64_MAX : seconds * 1000;
}

}  // namespace disque
