// Failed `/boot` calls remembered per deployment (issue 18, "origins that fail"): a failing origin
// is not asked again for the same deployment until a growing delay has passed. Meanwhile every
// request of that deployment gets the failure it got (same error code, same message) at once.
//
// The rule (docs/config.md, `boot_failure_backoff`):
//   after the n-th failure in a row, the deployment's boot is not retried for
//   min(first * 2^(n-1), longest); a success forgets the deployment's failures;
//   the request that finds the delay over retries (one fetch: the registry's single flight).
// The table is bounded (kMaxEntries): past it, entries whose delay is over go first, then those
// that end soonest. Forgetting one only costs an earlier retry.
// Pure: no locking, no clock; the registry calls it under its mutex with its steady clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/error/error_kind.h"
#include "core/net/clock.h"

namespace subgate {

class BootBackoff {
 public:
  static constexpr size_t kMaxEntries = 10000;

  struct Failure {
    ErrorKind error = ErrorKind::kInternalBootRpcError;
    std::string message;
    SteadyTime retry_at{};
    uint32_t in_a_row = 0;
  };

  // `first` zero turns the cache off: nothing is remembered.
  void configure(std::chrono::milliseconds first, std::chrono::milliseconds longest) {
    first_ = first;
    longest_ = longest < first ? first : longest;
    if (first_.count() == 0) failures_.clear();
  }

  // The failure to answer with now, or nullopt when the deployment may be fetched.
  const Failure* blocking(const std::string& key, SteadyTime now) const {
    auto it = failures_.find(key);
    if (it == failures_.end() || now >= it->second.retry_at) return nullptr;
    return &it->second;
  }

  // A fetch of `key` failed at `now`: returns the delay before the next try (zero when off).
  std::chrono::milliseconds failed(const std::string& key, ErrorKind error, std::string message,
                                   SteadyTime now) {
    if (first_.count() == 0) return std::chrono::milliseconds(0);
    if (failures_.size() >= kMaxEntries && !failures_.count(key)) trim(now);
    Failure& f = failures_[key];
    f.in_a_row = f.in_a_row < 32 ? f.in_a_row + 1 : f.in_a_row;
    std::chrono::milliseconds delay = first_;
    for (uint32_t i = 1; i < f.in_a_row && delay < longest_; ++i) delay *= 2;
    if (delay > longest_) delay = longest_;
    f.error = error;
    f.message = std::move(message);
    f.retry_at = now + delay;
    return delay;
  }

  // A fetch of `key` succeeded.
  void succeeded(const std::string& key) { failures_.erase(key); }

  size_t size() const { return failures_.size(); }

 private:
  void trim(SteadyTime now) {
    for (auto it = failures_.begin(); it != failures_.end();)
      it = now >= it->second.retry_at ? failures_.erase(it) : std::next(it);
    while (failures_.size() >= kMaxEntries) {
      auto soonest = failures_.begin();
      for (auto it = failures_.begin(); it != failures_.end(); ++it)
        if (it->second.retry_at < soonest->second.retry_at) soonest = it;
      failures_.erase(soonest);
    }
  }

  std::chrono::milliseconds first_{1000};
  std::chrono::milliseconds longest_{30000};
  std::unordered_map<std::string, Failure> failures_;
};

}  // namespace subgate
