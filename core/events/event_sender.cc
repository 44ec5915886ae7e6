#include "core/events/event_sender.h"

#include <pthread.h>

#include <ctime>

#include "core/events/gzip.h"
#include "core/jwt/jwt.h"
#include "core/log/log.h"

namespace subgate {

namespace {

constexpr int64_t kTokenSeconds = 60;
// A queue with nothing to send for this long is removed (its counts are kept).
constexpr std::chrono::minutes kIdleQueue{5};

}  // namespace

std::string eventsToken(const Subhoster& subhoster, int64_t now) {
  std::string claims = "{\"iat\":";
  claims.append(std::to_string(now)).append(",\"exp\":");
  claims.append(std::to_string(now + kTokenSeconds)).append("}");
  return jwt::signHs256(subhoster.name, claims, subhoster.secret);
}

EventQueue::Outcome classifyEventsAnswer(const HttpResult& result) {
  if (result.error != HttpClientError::kNone) {
    // A body over the cap or a garbled answer comes from an origin that took the request:
    // sending it again would not help.
    return result.error == HttpClientError::kProtocol || result.error == HttpClientError::kTooLarge
               ? EventQueue::Outcome::kRejected
               : EventQueue::Outcome::kRetry;
  }
  const int status = result.response.status;
  if (status >= 200 && status <= 299) return EventQueue::Outcome::kSent;
  if (status >= 500) return EventQueue::Outcome::kRetry;
  return EventQueue::Outcome::kRejected;
}

EventSender::EventSender(Poster poster) : poster_(std::move(poster)) {}

EventSender::~EventSender() { stop(); }

void EventSender::configure(const EventSenderSettings& settings) {
  std::lock_guard<std::mutex> lock(mu_);
  settings_ = settings;
  for (auto& [key, channel] : channels_) channel.queue.setPolicy(settings.policy);
  if (!started_ && !stopping_) {
    started_ = true;
    thread_ = std::thread([this] { run(); });
  }
  wake_.notify_one();
}

void EventSender::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void EventSender::enqueue(const std::shared_ptr<const Subhoster>& subhoster,
                          const std::string& rpc_root, std::string line) {
  std::string key = subhoster->name;
  key += '\n';
  key += rpc_root;
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  auto it = channels_.find(key);
  if (it == channels_.end())
    it = channels_.emplace(key, Channel{subhoster, rpc_root, EventQueue(settings_.policy), now})
             .first;
  Channel& channel = it->second;
  channel.subhoster = subhoster;  // the newest config's secret
  channel.last_used = now;
  const bool was_empty = channel.queue.queued() == 0;
  channel.queue.push(std::move(line), now);
  // Only a new deadline wakes the thread: the first event of a batch, or a full batch.
  if (was_empty || channel.queue.queued() >= settings_.policy.max_events ||
      channel.queue.queuedBytes() >= settings_.policy.max_bytes)
    wake_.notify_one();
}

EventSender::Totals EventSender::totals() const {
  std::lock_guard<std::mutex> lock(mu_);
  Totals t;
  t.sent = retired_.sent;
  t.dropped = retired_.dropped;
  t.failed = retired_.failed;
  t.retries = retired_.retries;
  t.posts = retired_.posts;
  for (const auto& [key, channel] : channels_) {
    const EventCounts& c = channel.queue.counts();
    t.sent += c.sent;
    t.dropped += c.dropped;
    t.failed += c.failed;
    t.retries += c.retries;
    t.posts += c.posts;
    t.queued += channel.queue.queued();
  }
  t.origins = channels_.size();
  return t;
}

EventQueue::Outcome EventSender::post(const Subhoster& subhoster, const std::string& rpc_root,
                                      const std::string& ndjson) {
  if (poster_) return poster_(subhoster, rpc_root, ndjson);
  HttpClientOptions options;
  {
    std::lock_guard<std::mutex> lock(mu_);
    options = settings_.client;
  }
  std::string error;
  auto url = parseHttpUrl(rpc_root + "events", error);
  if (!url) {
    LOG_WARN("events: cannot post to %sevents: %s", rpc_root.c_str(), error.c_str());
    return EventQueue::Outcome::kRejected;
  }
  std::string body;
  if (!gzipCompress(ndjson, body)) {
    LOG_ERROR("events: cannot compress a batch for %s", url->text.c_str());
    return EventQueue::Outcome::kRejected;
  }
  const std::string token = eventsToken(subhoster, static_cast<int64_t>(std::time(nullptr)));
  HttpResult result = httpPost(*url,
                               {{"authorization", "Bearer " + token},
                                {"content-type", "application/x-ndjson"},
                                {"content-encoding", "gzip"}},
                               body, options);
  const EventQueue::Outcome outcome = classifyEventsAnswer(result);
  if (outcome != EventQueue::Outcome::kSent) {
    std::string why = result.message;
    if (result.error == HttpClientError::kNone)
      why.assign("status ").append(std::to_string(result.response.status));
    LOG_WARN("events: POST %s failed (%s)%s", url->text.c_str(), why.c_str(),
             outcome == EventQueue::Outcome::kRetry ? ", will retry" : "; the batch is dropped");
  }
  return outcome;
}

void EventSender::run() {
  pthread_setname_np(pthread_self(), "sg-events");
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    // The first due queue after the one served last (round robin), and the next deadline.
    Channel* due = nullptr;
    std::string due_key;
    std::optional<Clock::time_point> next;
    auto consider = [&](auto begin, auto end) {
      for (auto it = begin; it != end && !due; ++it) {
        std::optional<SteadyTime> at = it->second.queue.wakeAt();
        if (!at) continue;
        if (*at <= now) {
          due = &it->second;
          due_key = it->first;
        } else if (!next || *at < *next) {
          next = *at;
        }
      }
    };
    auto after = channels_.upper_bound(last_served_);
    consider(after, channels_.end());
    consider(channels_.begin(), after);
    if (due) {
      std::optional<EventQueue::Batch> batch = due->queue.take(now);
      if (!batch) continue;
      last_served_ = due_key;
      std::shared_ptr<const Subhoster> subhoster = due->subhoster;
      const std::string rpc_root = due->rpc_root;
      lock.unlock();
      const EventQueue::Outcome outcome = post(*subhoster, rpc_root, batch->body);
      lock.lock();
      // A queue with a batch in flight is never removed: it is still there.
      auto it = channels_.find(due_key);
      if (it != channels_.end()) it->second.queue.done(outcome, Clock::now());
      continue;
    }
    std::erase_if(channels_, [&](const auto& entry) {
      const Channel& channel = entry.second;
      if (!channel.queue.idle() || now - channel.last_used < kIdleQueue) return false;
      const EventCounts& c = channel.queue.counts();
      retired_.sent += c.sent;
      retired_.dropped += c.dropped;
      retired_.failed += c.failed;
      retired_.retries += c.retries;
      retired_.posts += c.posts;
      return true;
    });
    if (next) {
      wake_.wait_until(lock, *next);
    } else {
      wake_.wait_for(lock, kIdleQueue);
    }
  }
}

}  // namespace subgate
