// The last minutes of the process, for the status page's charts: a fixed ring of samples of
// cumulative counts (requests by status class, isolate boots and boot failures) and gauges
// (isolates, queued requests), taken at most once per interval. Rates are the differences of
// neighbouring samples over their times (the page and `subgate status --watch` compute them),
// so a sample taken late or skipped shows as a longer step, never as a wrong rate.
//
// Who samples: the status module's sampler thread (status_sampler.h), every interval, and a
// `status;` request when no sample is recent (a process without the thread, or before its first
// tick). Never the request path of other locations: sampling reads per-thread counters and the
// isolate pool's mutex, which a request that is not a status read never waits on.
//
// Threading: every member may be called from any thread (one mutex of its own).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace subgate {

struct StatusSample {
  int64_t time_ms = 0;                 // Unix milliseconds
  std::array<uint64_t, 5> requests{};  // requests answered since the start, [0] 1xx .. [4] 5xx
  uint64_t ready = 0;                  // isolates that became ready, since the start
  uint64_t boot_failures = 0;          // failed /boot calls and isolates failed before ready
  uint64_t isolates = 0;               // isolates alive now
  uint64_t queued = 0;                 // requests waiting for room now
};

class StatusHistory {
 public:
  static constexpr std::chrono::milliseconds kInterval{2000};
  static constexpr size_t kSamples = 150;  // 5 minutes at kInterval

  explicit StatusHistory(std::chrono::milliseconds interval = kInterval,
                         size_t capacity = kSamples);

  // Adds take() at `now_ms` unless the newest sample is younger than 9/10 of the interval (a
  // timer's tick that came a little early still counts). `take` runs without the history's
  // lock held. Returns whether a sample was added.
  bool sampleIfDue(int64_t now_ms, const std::function<StatusSample()>& take);
  // The samples, oldest first.
  std::vector<StatusSample> samples() const;
  std::chrono::milliseconds interval() const { return interval_; }

 private:
  bool dueLocked(int64_t now_ms) const;

  const std::chrono::milliseconds interval_;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::vector<StatusSample> ring_;  // capacity_ slots once full
  size_t next_ = 0;                 // where the next sample goes once the ring is full
};

// Unix milliseconds now (the samples' clock: the page shows wall times).
int64_t unixMillisNow();

}  // namespace subgate
