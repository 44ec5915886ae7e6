#include "core/events/event_queue.h"

#include <algorithm>

namespace subgate {

void EventQueue::setPolicy(const EventBatchPolicy& policy) {
  policy_ = policy;
  trim();
}

void EventQueue::trim() {
  while (lines_.size() > policy_.queue_max) {
    bytes_ -= lines_.front().text.size();
    lines_.pop_front();
    ++counts_.dropped;
  }
}

void EventQueue::push(std::string line, SteadyTime now) {
  bytes_ += line.size();
  lines_.push_back({std::move(line), now});
  trim();
}

std::chrono::milliseconds EventQueue::backoff(uint32_t failures) const {
  std::chrono::milliseconds wait = std::max(policy_.backoff_min, std::chrono::milliseconds(1));
  for (uint32_t i = 1; i < failures && wait < policy_.backoff_max; ++i) wait *= 2;
  return std::min(wait, std::max(policy_.backoff_max, policy_.backoff_min));
}

std::optional<SteadyTime> EventQueue::wakeAt() const {
  if (in_flight_) return std::nullopt;
  if (current_) return retry_at_;
  if (lines_.empty()) return std::nullopt;
  if (lines_.size() >= policy_.max_events || bytes_ >= policy_.max_bytes) return lines_.front().at;
  return lines_.front().at + policy_.flush_interval;
}

std::optional<EventQueue::Batch> EventQueue::take(SteadyTime now) {
  std::optional<SteadyTime> due = wakeAt();
  if (!due || now < *due) return std::nullopt;
  if (!current_) {
    Batch batch;
    while (!lines_.empty() && batch.events < std::max<size_t>(policy_.max_events, 1)) {
      const std::string& text = lines_.front().text;
      if (batch.events > 0 && batch.body.size() + text.size() > policy_.max_bytes) break;
      batch.body += text;
      ++batch.events;
      bytes_ -= text.size();
      lines_.pop_front();
    }
    current_ = std::move(batch);
    attempts_ = 0;
  } else {
    ++counts_.retries;
  }
  in_flight_ = true;
  ++counts_.posts;
  return current_;
}

void EventQueue::done(Outcome outcome, SteadyTime now) {
  if (!in_flight_ || !current_) return;
  in_flight_ = false;
  if (outcome == Outcome::kRetry && ++attempts_ < std::max<uint32_t>(policy_.max_attempts, 1)) {
    retry_at_ = now + backoff(attempts_);
    return;
  }
  (outcome == Outcome::kSent ? counts_.sent : counts_.failed) += current_->events;
  current_.reset();
  attempts_ = 0;
}

}  // namespace subgate
