// What the events sender decides for one origin (rpc_root), as pure state on a clock the caller
// passes in (tests use a fake one): which events wait, when a batch is due, what is dropped, and
// when a failed batch is tried again.
//
// - A batch is due when the queue holds `max_events` events or `max_bytes` bytes, or its oldest
//   event waited `flush_interval`; it takes events oldest first up to both caps (one event at
//   least, however large).
// - One batch is in flight at a time. It succeeds (counted sent), is rejected (4xx or another
//   answer that a retry cannot change: counted failed, never retried), or fails in a way worth
//   retrying (connection error, timeout, 5xx): it is sent again after a backoff that starts at
//   `backoff_min` and doubles up to `backoff_max`, at most `max_attempts` sends in all (then
//   counted failed). Events arriving meanwhile wait behind it.
// - The queue (not counting the batch in flight) holds `queue_max` events at most: a new event
//   pushes out the oldest, counted dropped.
//
// Threading: none inside; the owner (EventSender) locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "core/net/clock.h"

namespace subgate {

struct EventBatchPolicy {
  size_t max_events = 500;                         // events_batch_events N
  size_t max_bytes = 1u << 20;                     // events_batch_bytes SIZE (NDJSON, uncompressed)
  std::chrono::milliseconds flush_interval{1000};  // events_flush_interval DURATION
  size_t queue_max = 10000;                        // events_queue N (per origin)
  std::chrono::milliseconds backoff_min{500};      // events_retry MIN MAX ATTEMPTS
  std::chrono::milliseconds backoff_max{30000};
  uint32_t max_attempts = 5;
};

struct EventCounts {
  uint64_t sent = 0;     // events the origin accepted (2xx)
  uint64_t dropped = 0;  // pushed out of a full queue
  uint64_t failed = 0;   // in batches rejected (4xx) or that ran out of attempts
  uint64_t retries = 0;  // batches sent again
  uint64_t posts = 0;    // sends (batches and their retries)
};

class EventQueue {
 public:
  enum class Outcome { kSent, kRejected, kRetry };

  explicit EventQueue(const EventBatchPolicy& policy) : policy_(policy) {}

  // A new policy (a reload): applies to what comes next; a smaller queue_max drops at once.
  void setPolicy(const EventBatchPolicy& policy);
  // Appends one encoded event (an NDJSON line).
  void push(std::string line, SteadyTime now);

  // The next batch to send, if one is due at `now` and none is in flight: the NDJSON body
  // (uncompressed) and its event count. The batch stays in flight until done().
  struct Batch {
    std::string body;
    size_t events = 0;
  };
  std::optional<Batch> take(SteadyTime now);
  // How the batch in flight ended.
  void done(Outcome outcome, SteadyTime now);

  // When take() may next return a batch (nullopt: not before something is pushed, or while one
  // is in flight).
  std::optional<SteadyTime> wakeAt() const;

  bool inFlight() const { return in_flight_; }
  size_t queued() const { return lines_.size(); }
  size_t queuedBytes() const { return bytes_; }
  const EventCounts& counts() const { return counts_; }
  // Nothing waits, nothing is in flight or waiting for another attempt.
  bool idle() const { return lines_.empty() && !current_; }
  // The backoff after the n-th failed send of a batch (n >= 1).
  std::chrono::milliseconds backoff(uint32_t failures) const;

 private:
  struct Line {
    std::string text;
    SteadyTime at;
  };
  void trim();

  EventBatchPolicy policy_;
  std::deque<Line> lines_;
  size_t bytes_ = 0;
  EventCounts counts_;
  std::optional<Batch> current_;  // in flight, or waiting for its next attempt
  bool in_flight_ = false;
  uint32_t attempts_ = 0;  // sends of current_ that failed
  SteadyTime retry_at_{};
};

}  // namespace subgate
