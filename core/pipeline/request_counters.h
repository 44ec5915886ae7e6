// What the `metrics;` handler (modules/metrics) reports of the traffic: each request counted by
// server (status class, x-deno-error code, body bytes, duration and time-to-first-byte
// histograms), and process-wide counts (connections, TLS handshakes, WebSockets, the isolate
// wait histogram). The hot path adds to a block of counters of its own thread; the scrape sums
// every thread's.
//
// Servers are counted by label (their first server_name, else their first listen address), each
// label interned once into a process-wide slot that outlives reloads, so a counter keeps growing
// across a reload (Prometheus counters must not go back) and servers of the same label share it.
//
// Threading: slotFor() on the main thread at config load (any thread is safe: it locks);
// count() and note() on any thread, without locks and without writes other threads make (each
// thread writes only its own block, with relaxed atomics so that the scrape reads whole values);
// snapshot() and totals() on any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error/error_kind.h"
#include "core/pipeline/latency_histogram.h"

namespace subgate {

// One finished request, as the log phase sees it (Request::runLogPhase).
struct RequestSample {
  int status = 0;                              // what the client got; 0: no response was sent
  std::optional<ErrorKind> error;              // the x-deno-error answer subgate made, if any
  uint64_t request_body_bytes = 0;             // received from the client (after de-chunking)
  uint64_t response_body_bytes = 0;            // sent to the client
  uint64_t duration_nanos = 0;                 // start to the log phase
  std::optional<uint64_t> first_byte_nanos;    // start to the response head
  std::optional<uint64_t> isolate_wait_nanos;  // set when the isolate runtime placed it
};

class RequestCounters {
 public:
  // 1xx .. 5xx.
  static constexpr size_t kClasses = 5;
  static constexpr size_t kErrorKinds = static_cast<size_t>(ErrorKind::kCount);
  // Labels past this many share the last slot, labelled kOverflowLabel.
  static constexpr uint32_t kMaxSlots = 4096;
  static constexpr std::string_view kOverflowLabel = "_other";

  // The slot of `label`, the same for the same label for the life of the process.
  static uint32_t slotFor(std::string_view label);
  // One request of `slot` finished. Statuses outside 100..599 (0: no response was sent, the
  // client went away first) are not counted, nor is anything else of that request.
  static void count(uint32_t slot, const RequestSample& sample);
  static void count(uint32_t slot, int status) {
    RequestSample sample;
    sample.status = status;
    count(slot, sample);
  }

  // Process-wide events, counted by the transports and the worker.
  enum class Event : unsigned char {
    kConnectionAccepted,  // a TCP (or unix) connection accepted (it starts as HTTP/1.x)
    kHttp1Served,         // a connection's first HTTP/1.x request head arrived
    kHttp1Closed,         // an HTTP/1.x connection closed, or handed over to HTTP/2
    kHttp2Started,        // a connection continued as HTTP/2 (ALPN h2 or the h2c preface)
    kHttp2Closed,         // an HTTP/2 connection closed
    kTlsHandshake,        // a TLS handshake completed
    kTlsHandshakeFailed,  // a TLS handshake failed, timed out or its client went away
    kWebSocketOpened,     // a 101 (or an extended CONNECT's 2xx) went to a client
    kWebSocketClosed,     // such a request finished (its log phase)
    kCount,
  };
  static void note(Event event);

  struct Row {
    std::string label;
    std::array<uint64_t, kClasses> by_class{};   // [0] 1xx ... [4] 5xx
    std::array<uint64_t, kErrorKinds> errors{};  // by ErrorKind
    uint64_t request_body_bytes = 0;
    uint64_t response_body_bytes = 0;
    LatencyHistogram duration;
    LatencyHistogram first_byte;
  };
  // Every label ever interned, in slot order, with its counts summed over all threads.
  static std::vector<Row> snapshot();

  struct Totals {
    std::array<uint64_t, static_cast<size_t>(Event::kCount)> events{};
    LatencyHistogram isolate_wait;
    uint64_t of(Event event) const { return events[static_cast<size_t>(event)]; }
  };
  // The process-wide counts summed over all threads.
  static Totals totals();
};

}  // namespace subgate
