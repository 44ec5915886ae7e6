// Latency histograms with fixed bucket bounds, for the `metrics;` handler (modules/metrics): the
// request duration, the time to first byte, the isolate wait and the isolate boot duration all
// use the same bounds, chosen for a proxy (half a millisecond to ten seconds; slower lands in
// +Inf), so that a dashboard can compare them bucket by bucket.
//
// Two shapes: LatencyHistogram, plain counts to add up and render; and
// ThreadLatencyHistogram, the same counts as relaxed atomics written by one thread and read by
// the scrape on another (request_counters.h), so that the hot path takes no lock.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace subgate {

struct LatencyBuckets {
  // Upper bounds (inclusive, like Prometheus's `le`), in seconds and in nanoseconds.
  static constexpr size_t kBounds = 14;
  static constexpr std::array<double, kBounds> kSeconds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  static constexpr std::array<uint64_t, kBounds> kNanos = {
      500'000,     1'000'000,   2'500'000,   5'000'000,  10'000'000, 25'000'000,    50'000'000,
      100'000'000, 250'000'000, 500'000'000, 1000000000, 2500000000, 5000000000ull, 10000000000ull};
  // Buckets counted: one per bound and the last for +Inf.
  static constexpr size_t kBuckets = kBounds + 1;

  // The bucket of a duration of `nanos` (the first bound >= it; kBounds for +Inf).
  static size_t bucketOf(uint64_t nanos) {
    size_t i = 0;
    while (i < kBounds && nanos > kNanos[i]) ++i;
    return i;
  }
  // A duration as nanoseconds, negative ones (clock mishaps) as zero.
  template <class Rep, class Period>
  static uint64_t nanosOf(std::chrono::duration<Rep, Period> d) {
    const auto n = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    return n > 0 ? static_cast<uint64_t>(n) : 0;
  }
};

// Counts per bucket (not cumulative: renderers add them up) and the sum of the durations.
struct LatencyHistogram {
  std::array<uint64_t, LatencyBuckets::kBuckets> buckets{};
  uint64_t sum_nanos = 0;

  void add(uint64_t nanos) {
    ++buckets[LatencyBuckets::bucketOf(nanos)];
    sum_nanos += nanos;
  }
  void merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
    sum_nanos += other.sum_nanos;
  }
  uint64_t count() const {
    uint64_t n = 0;
    for (uint64_t b : buckets) n += b;
    return n;
  }
};

// One thread writes (add), any thread reads (addTo). The writer is the only one: a load and a
// store per counter, no read-modify-write across cores.
struct ThreadLatencyHistogram {
  std::array<std::atomic<uint64_t>, LatencyBuckets::kBuckets> buckets{};
  std::atomic<uint64_t> sum_nanos{0};

  void add(uint64_t nanos) {
    std::atomic<uint64_t>& bucket = buckets[LatencyBuckets::bucketOf(nanos)];
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_nanos.store(sum_nanos.load(std::memory_order_relaxed) + nanos, std::memory_order_relaxed);
  }
  void addTo(LatencyHistogram& out) const {
    for (size_t i = 0; i < buckets.size(); ++i)
      out.buckets[i] += buckets[i].load(std::memory_order_relaxed);
    out.sum_nanos += sum_nanos.load(std::memory_order_relaxed);
  }
};

}  // namespace subgate
