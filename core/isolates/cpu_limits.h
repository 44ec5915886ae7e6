// The two CPU rules of an isolate (docs/config.md: cpu_block_limit, cpu_limit) as pure state,
// fed by the supervisor with samples of the process's CPU time at each limits tick.
//
// Threading: none; each isolate's belongs to the supervisor thread (under the registry mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>

#include "core/net/clock.h"

namespace subgate {

// cpu_block_limit: the supervisor pings the harness, whose answer needs a turn of the event
// loop. The loop counts as blocked when the process used `limit` of CPU time since the oldest
// unanswered ping went out. CPU time, not wall time: an isolate starved by a busy host, or one
// waiting on I/O, is not a hog.
class LoopWatch {
 public:
  bool waiting() const { return waiting_; }
  uint64_t seq() const { return seq_; }
  // Whether a ping should go out at a tick where the process had used `cpu`: it used CPU time
  // since the last ping went out (the first tick always pings). An isolate idle since its last
  // (answered) ping would answer another at once, so it is not sent: the first ping after the
  // isolate runs again goes out at that tick and counts from that tick's CPU time, as the ping of
  // that tick did when idle ticks pinged too. While one is unanswered, another goes out at each
  // tick that used CPU: a ping can be lost (user code can read the isolate's stdin, and a line it
  // takes never reaches the harness), and a loop that turns answers the next one.
  bool needsPing(std::chrono::nanoseconds cpu) const { return seq_ == 0 || cpu != last_cpu_; }
  // A ping went out when the process had used `cpu`; returns its sequence number.
  uint64_t pinged(std::chrono::nanoseconds cpu) {
    if (!waiting_) {
      waiting_ = true;
      first_seq_ = seq_ + 1;
      sent_cpu_ = cpu;
    }
    last_cpu_ = cpu;
    return ++seq_;
  }
  // The answer to ping `seq` arrived. An answer to the first unanswered ping or a later one
  // shows the loop turned since the wait began; an older one's is ignored.
  void answered(uint64_t seq) {
    if (waiting_ && seq >= first_seq_ && seq <= seq_) waiting_ = false;
  }
  // No answer while the process used `limit` of CPU time since the first unanswered ping.
  bool blocked(std::chrono::nanoseconds cpu, std::chrono::nanoseconds limit) const {
    return waiting_ && cpu - sent_cpu_ >= limit;
  }

 private:
  bool waiting_ = false;
  uint64_t seq_ = 0;
  uint64_t first_seq_ = 0;                // the first unanswered ping
  std::chrono::nanoseconds sent_cpu_{0};  // the CPU time when that one went out
  std::chrono::nanoseconds last_cpu_{0};  // the CPU time when the last one went out
};

// cpu_limit BUDGET per WINDOW: samples (time, CPU used so far) taken at each tick; a sample older
// than `window` is forgotten, and the CPU used over the window is the newest sample's minus the
// oldest kept one's. So the span measured is at most `window` (at least `window` less one tick,
// once the isolate is that old).
class CpuWindow {
 public:
  // Records a sample taken at `now` and returns the CPU time used over the window ending there.
  std::chrono::nanoseconds add(SteadyTime now, std::chrono::nanoseconds cpu,
                               std::chrono::milliseconds window) {
    samples_.emplace_back(now, cpu);
    while (samples_.size() > 1 && now - samples_.front().first > window) samples_.pop_front();
    return cpu - samples_.front().second;
  }
  void clear() { samples_.clear(); }

 private:
  std::deque<std::pair<SteadyTime, std::chrono::nanoseconds>> samples_;
};

}  // namespace subgate
