#include "modules/status/status_history.h"

namespace subgate {

StatusHistory::StatusHistory(std::chrono::milliseconds interval, size_t capacity)
    : interval_(interval), capacity_(capacity == 0 ? 1 : capacity) {
  ring_.reserve(capacity_);
}

bool StatusHistory::dueLocked(int64_t now_ms) const {
  if (ring_.empty()) return true;
  const StatusSample& newest = ring_[(next_ + ring_.size() - 1) % ring_.size()];
  return now_ms - newest.time_ms >= interval_.count() * 9 / 10;
}

bool StatusHistory::sampleIfDue(int64_t now_ms, const std::function<StatusSample()>& take) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!dueLocked(now_ms)) return false;
  }
  // Taken unlocked: it reads other locks (the isolate pool's), and a status read must not wait
  // for the sampler thread's read of them.
  StatusSample sample = take();
  sample.time_ms = now_ms;
  std::lock_guard<std::mutex> lock(mu_);
  if (!dueLocked(now_ms)) return false;  // the other sampler was quicker
  if (ring_.size() < capacity_) {
    ring_.push_back(sample);
  } else {
    ring_[next_] = sample;
    next_ = (next_ + 1) % capacity_;
  }
  return true;
}

std::vector<StatusSample> StatusHistory::samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<StatusSample> out;
  out.reserve(ring_.size());
  if (ring_.size() < capacity_) {
    out = ring_;
  } else {
    for (size_t i = 0; i < capacity_; ++i) out.push_back(ring_[(next_ + i) % capacity_]);
  }
  return out;
}

int64_t unixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace subgate
