// The log rate limit of one isolate (`events_log_rate LINES BYTES`): at most `lines` log events
// and `bytes` bytes of messages per second, counted in one-second windows. What it refuses is
// counted, and reported once (takeDropped()) after the window it was refused in has closed, so
// the origin learns how much it did not get.
//
// Threading: none inside; the isolate's owner (the supervisor, registry mutex held) calls it.
// Pure logic on a clock the caller passes in.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "core/net/clock.h"

namespace subgate {

class LogRateLimiter {
 public:
  struct Dropped {
    uint64_t lines = 0;
    uint64_t bytes = 0;
    explicit operator bool() const { return lines > 0; }
  };

  // 0 for either: no limit on it.
  void setLimits(uint32_t lines_per_second, uint64_t bytes_per_second) {
    max_lines_ = lines_per_second;
    max_bytes_ = bytes_per_second;
  }

  // Whether a message of `bytes` may go out at `now`; a refused one is counted.
  bool admit(SteadyTime now, size_t bytes) {
    roll(now);
    const bool over_lines = max_lines_ > 0 && lines_ + 1 > max_lines_;
    const bool over_bytes = max_bytes_ > 0 && bytes_ + bytes > max_bytes_;
    if (over_lines || over_bytes) {
      ++dropped_.lines;
      dropped_.bytes += bytes;
      dropped_window_ = window_;
      return false;
    }
    ++lines_;
    bytes_ += bytes;
    return true;
  }

  // What was refused, once the window of the last refusal closed (then forgotten); empty before.
  Dropped takeDropped(SteadyTime now) {
    roll(now);
    if (!dropped_ || dropped_window_ == window_) return {};
    Dropped out = dropped_;
    dropped_ = {};
    return out;
  }

  // Refused and not yet taken (tests, status).
  const Dropped& pending() const { return dropped_; }

 private:
  void roll(SteadyTime now) {
    if (started_ && now - window_start_ < std::chrono::seconds(1)) return;
    started_ = true;
    window_start_ = now;
    ++window_;
    lines_ = 0;
    bytes_ = 0;
  }

  uint32_t max_lines_ = 0;
  uint64_t max_bytes_ = 0;
  bool started_ = false;
  SteadyTime window_start_{};
  uint64_t window_ = 0;  // numbers the windows
  uint64_t lines_ = 0;   // admitted in this window
  uint64_t bytes_ = 0;
  Dropped dropped_;
  uint64_t dropped_window_ = 0;  // the window of the last refusal
};

}  // namespace subgate
