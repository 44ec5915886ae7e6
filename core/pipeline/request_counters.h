// Requests counted by server and status class for the `metrics;` handler (modules/metrics):
// the hot path adds to a block of counters of its own thread, the scrape sums every thread's.
//
// Servers are counted by label (their first server_name, else their first listen address), each
// label interned once into a process-wide slot that outlives reloads, so a counter keeps growing
// across a reload (Prometheus counters must not go back) and servers of the same label share it.
//
// Threading: slotFor() on the main thread at config load (any thread is safe: it locks);
// count() on any thread, without locks and without writes other threads make (each thread
// writes only its own block, with relaxed atomics so that the scrape reads whole values);
// snapshot() on any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace subgate {

class RequestCounters {
 public:
  // 1xx .. 5xx.
  static constexpr size_t kClasses = 5;
  // Labels past this many share the last slot, labelled kOverflowLabel.
  static constexpr uint32_t kMaxSlots = 4096;
  static constexpr std::string_view kOverflowLabel = "_other";

  // The slot of `label`, the same for the same label for the life of the process.
  static uint32_t slotFor(std::string_view label);
  // One request of `slot` answered with `status`. Statuses outside 100..599 (0: no response was
  // sent, the client went away first) are not counted.
  static void count(uint32_t slot, int status);

  struct Row {
    std::string label;
    std::array<uint64_t, kClasses> by_class{};  // [0] 1xx ... [4] 5xx
  };
  // Every label ever interned, in slot order, with its counts summed over all threads.
  static std::vector<Row> snapshot();
};

}  // namespace subgate
