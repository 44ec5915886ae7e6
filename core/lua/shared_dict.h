// A process-wide key/value dictionary shared by every Lua VM (subgate.shared in scripts): counters
// and small maps that all worker threads see. Survives config reloads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace subgate::lua {

// Thread-safe (one mutex; every operation is a hash lookup). Bounded by key count and by bytes
// (keys + values + a fixed per-entry overhead): storing past either bound evicts the least
// recently used entries, and set() reports it. Expired entries are dropped when touched or
// evicted. Times are passed in, so tests control the clock.
class SharedDict {
 public:
  using Clock = std::chrono::steady_clock;

  struct Value {
    enum class Type { kString, kInteger, kNumber };
    Type type = Type::kString;
    std::string string;
    int64_t integer = 0;
    double number = 0;
  };

  enum class SetStatus {
    kStored,
    kStoredEvicting,  // stored, and live entries were evicted to make room
    kTooLarge,        // key or value larger than the per-entry bounds; nothing changed
  };
  enum class IncrStatus { kOk, kNotFound, kNotANumber, kTooLarge };

  static constexpr size_t kMaxKeyBytes = 1024;
  static constexpr size_t kEntryOverhead = 96;  // rough bytes per entry besides key and value

  // The dictionary scripts use: 10000 keys, 32 MiB.
  static SharedDict& instance();

  SharedDict(size_t max_keys, size_t max_bytes);
  SharedDict(const SharedDict&) = delete;
  SharedDict& operator=(const SharedDict&) = delete;

  // False when `key` is absent or expired at `now`.
  bool get(std::string_view key, Value& out, Clock::time_point now);
  // ttl_seconds <= 0: never expires. Replaces any previous value and expiry.
  SetStatus set(std::string_view key, const Value& value, double ttl_seconds,
                Clock::time_point now);
  // Adds `by` (kInteger or kNumber) to the number at `key` and returns the sum in `out`; the
  // expiry is kept. When the key is absent: with `init` stores init + by (expiring after
  // init_ttl_seconds when > 0), without it returns kNotFound. Integer + integer wraps around
  // like Lua integers; anything with a kNumber gives a kNumber.
  IncrStatus incr(std::string_view key, const Value& by, const Value* init, double init_ttl_seconds,
                  Clock::time_point now, Value& out);
  // True when a live entry was removed.
  bool remove(std::string_view key, Clock::time_point now);

  size_t size() const;
  size_t bytes() const;
  void clear();

 private:
  struct Entry {
    std::string key;
    Value value;
    Clock::time_point expiry;  // time_point::max(): never
  };
  using List = std::list<Entry>;

  static size_t entryBytes(std::string_view key, const Value& value);
  static Clock::time_point expiryAt(Clock::time_point now, double ttl_seconds);
  // With mu_ held: the live entry for key (moved to the front), or end() (an expired one is
  // dropped).
  List::iterator findLive(std::string_view key, Clock::time_point now);
  void erase(List::iterator it);
  // Evicts from the back until `extra_bytes` and one more key fit. True if a live entry went.
  bool makeRoom(size_t extra_bytes, Clock::time_point now);

  const size_t max_keys_;
  const size_t max_bytes_;
  mutable std::mutex mu_;
  List lru_;                                                    // most recently used first
  std::unordered_map<std::string_view, List::iterator> index_;  // views into Entry::key
  size_t bytes_ = 0;
};

}  // namespace subgate::lua
