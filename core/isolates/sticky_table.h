// The gateway model's identifier table (protocol.md §6): which isolate an identifier (identify()'s
// answer) was last sent to, and how many of its requests are open there. An entry lives while
// any request of its identifier is open, plus `ttl` after the last one ended, and the table is
// bounded: past `max` entries the least recently used one goes (even with requests open: they
// finish normally, the identifier merely loses its stickiness).
//
// Not thread-safe: the isolate registry holds the deployment's sticky_mu around every call.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace subgate {

template <class Target>
class StickyTable {
 public:
  using Time = std::chrono::steady_clock::time_point;

  explicit StickyTable(size_t max = 100000) : max_(max) {}
  StickyTable(const StickyTable&) = delete;
  StickyTable& operator=(const StickyTable&) = delete;

  void setMax(size_t max) {
    max_ = max;
    while (entries_.size() > max_) evictOldest();
  }

  // The target `id` was last sent to, if it is still alive; nullptr otherwise.
  std::shared_ptr<Target> find(std::string_view id) const {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : it->second->target.lock();
  }

  // A request of `id` was sent to `target`: the entry now points there (its open count restarts
  // when the identifier moved) and becomes the most recently used.
  void opened(std::string_view id, const std::shared_ptr<Target>& target, Time now) {
    if (max_ == 0) return;
    auto it = index_.find(id);
    if (it == index_.end()) {
      if (entries_.size() >= max_) evictOldest();
      entries_.push_front(Entry{std::string(id), {}, 0, now});
      index_.emplace(entries_.front().id, entries_.begin());
      it = index_.find(id);
    } else {
      entries_.splice(entries_.begin(), entries_, it->second);
    }
    Entry& entry = *it->second;
    if (entry.target.lock() != target) {
      entry.target = target;
      entry.open = 0;
    }
    ++entry.open;
    entry.last = now;
  }

  // A request of `id` that was sent to `target` ended. Requests from before the identifier
  // moved elsewhere (or before its entry was evicted) do not count.
  void closed(std::string_view id, const Target* target, Time now) {
    auto it = index_.find(id);
    if (it == index_.end()) return;
    Entry& entry = *it->second;
    if (entry.target.lock().get() != target) return;
    if (entry.open > 0) --entry.open;
    entry.last = now;
  }

  // Drops the entries whose target is gone or no longer `usable(target)`, and those with no
  // open request for `ttl`.
  template <class Usable>
  void sweep(Time now, std::chrono::milliseconds ttl, Usable usable) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto target = it->target.lock();
      bool expired = it->open == 0 && now - it->last >= ttl;
      if (!target || !usable(*target) || expired) {
        index_.erase(std::string_view(it->id));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }

  size_t size() const { return entries_.size(); }
  // Calls fn(id, target, open) for the `n` most recently used entries, most recent first
  // (`target` null when it is gone); for status.
  template <class Fn>
  void forEachRecent(size_t n, Fn fn) const {
    for (auto it = entries_.begin(); it != entries_.end() && n > 0; ++it, --n)
      fn(std::string_view(it->id), it->target.lock(), it->open);
  }
  // Open requests of `id` on its current target (0 when unknown); for tests.
  uint32_t openCount(std::string_view id) const {
    auto it = index_.find(id);
    return it == index_.end() ? 0 : it->second->open;
  }

 private:
  struct Entry {
    std::string id;
    std::weak_ptr<Target> target;
    uint32_t open = 0;
    Time last{};
  };

  void evictOldest() {
    index_.erase(std::string_view(entries_.back().id));
    entries_.pop_back();
  }

  size_t max_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<std::string_view, typename std::list<Entry>::iterator>
      index_;  // views into Entry::id
};

}  // namespace subgate
