// Sends the events of isolates to their origins (protocol.md §3, docs/origin.md "Events"):
// `POST {rpc_root}events`, a gzip'd NDJSON body, `Authorization: Bearer` an HS256 token of the
// subhoster's (claims iat and exp, no deployment_id). One queue per (subhoster, rpc_root) with
// the batching, dropping and retry rules of EventQueue (event_queue.h).
//
// Threading: enqueue() is called on the isolate supervisor's thread (any thread works) and only
// takes a mutex for a push: it never waits on the network. The POSTs run on the sender's own
// thread ("sg-events"), one at a time: an origin that stalls holds the others back for at most
// `timeout` per attempt, and its backoff spaces out the attempts. configure() and stop() on the
// main thread; totals() from any thread.
// Lifetime: stop() (or the destructor) ends the thread after the POST in flight, if any (bounded
// by `timeout`); events still queued are not sent.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/events/event_queue.h"
#include "core/http_client/http_client.h"
#include "core/ingress/ingress.h"

namespace subgate {

struct EventSenderSettings {
  EventBatchPolicy policy;
  HttpClientOptions
      client;  // connect_timeout and ca_file as for /boot; total_timeout: events_timeout
};

// The bearer token of an events POST: kid = the subhoster, claims iat = now, exp = now + 60 s.
std::string eventsToken(const Subhoster& subhoster, int64_t now);
// What a POST's result means for its batch: 2xx sent; connection errors, timeouts and 5xx worth
// another attempt; anything else (4xx, 1xx/3xx) rejected.
EventQueue::Outcome classifyEventsAnswer(const HttpResult& result);

class EventSender {
 public:
  // Sends one batch (the NDJSON body, uncompressed) and says how it went. The default POSTs it
  // with httpPost(); tests put a fake in.
  using Poster = std::function<EventQueue::Outcome(
      const Subhoster& subhoster, const std::string& rpc_root, const std::string& ndjson)>;

  explicit EventSender(Poster poster = nullptr);
  ~EventSender();
  EventSender(const EventSender&) = delete;
  EventSender& operator=(const EventSender&) = delete;

  // Applies `settings` (to every queue) and starts the thread on first use.
  void configure(const EventSenderSettings& settings);
  // Queues one NDJSON line for (subhoster, rpc_root).
  void enqueue(const std::shared_ptr<const Subhoster>& subhoster, const std::string& rpc_root,
               std::string line);
  void stop();

  struct Totals {
    uint64_t sent = 0;
    uint64_t dropped = 0;
    uint64_t failed = 0;
    uint64_t retries = 0;
    uint64_t posts = 0;
    uint64_t queued = 0;   // waiting now, all origins
    uint64_t origins = 0;  // queues now
  };
  Totals totals() const;

 private:
  struct Channel {
    std::shared_ptr<const Subhoster> subhoster;
    std::string rpc_root;
    EventQueue queue;
    std::chrono::steady_clock::time_point last_used;
  };
  using Clock = std::chrono::steady_clock;

  void run();
  EventQueue::Outcome post(const Subhoster& subhoster, const std::string& rpc_root,
                           const std::string& ndjson);

  Poster poster_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  EventSenderSettings settings_;
  std::map<std::string, Channel> channels_;  // by subhoster name '\n' rpc_root
  EventCounts retired_;                      // counts of queues removed when idle
  std::string last_served_;                  // round robin among due queues
  bool started_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace subgate
