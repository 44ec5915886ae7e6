#include "core/lua/shared_dict.h"

#include <iterator>

namespace subgate::lua {

SharedDict& SharedDict::instance() {
  // Never destroyed: worker threads may still touch it while static destructors run at exit.
  static SharedDict* dict = new SharedDict(10000, 32u << 20);
  return *dict;
}

SharedDict::SharedDict(size_t max_keys, size_t max_bytes)
    : max_keys_(max_keys), max_bytes_(max_bytes) {}

size_t SharedDict::entryBytes(std::string_view key, const Value& value) {
  size_t value_bytes = value.type == Value::Type::kString ? value.string.size() : 8;
  return kEntryOverhead + key.size() + value_bytes;
}

SharedDict::Clock::time_point SharedDict::expiryAt(Clock::time_point now, double ttl_seconds) {
  if (!(ttl_seconds > 0)) return Clock::time_point::max();
  // Beyond ~100 years is "never"; this also keeps the duration cast from overflowing.
  if (ttl_seconds > 3.2e9) return Clock::time_point::max();
  return now +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(ttl_seconds));
}

SharedDict::List::iterator SharedDict::findLive(std::string_view key, Clock::time_point now) {
  auto found = index_.find(key);
  if (found == index_.end()) return lru_.end();
  List::iterator it = found->second;
  if (it->expiry <= now) {
    erase(it);
    return lru_.end();
  }
  lru_.splice(lru_.begin(), lru_, it);
  return it;
}

void SharedDict::erase(List::iterator it) {
  bytes_ -= entryBytes(it->key, it->value);
  index_.erase(std::string_view(it->key));
  lru_.erase(it);
}

bool SharedDict::makeRoom(size_t extra_bytes, Clock::time_point now) {
  bool evicted_live = false;
  while (!lru_.empty() && (lru_.size() + 1 > max_keys_ || bytes_ + extra_bytes > max_bytes_)) {
    List::iterator victim = std::prev(lru_.end());
    if (victim->expiry > now) evicted_live = true;
    erase(victim);
  }
  return evicted_live;
}

bool SharedDict::get(std::string_view key, Value& out, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  List::iterator it = findLive(key, now);
  if (it == lru_.end()) return false;
  out = it->value;
  return true;
}

SharedDict::SetStatus SharedDict::set(std::string_view key, const Value& value, double ttl_seconds,
                                      Clock::time_point now) {
  size_t bytes = entryBytes(key, value);
  // One entry may take at most an eighth of the dictionary, so one big value cannot flush it.
  if (key.size() > kMaxKeyBytes || bytes > max_bytes_ / 8 || max_keys_ == 0) {
    return SetStatus::kTooLarge;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto found = index_.find(key);
  if (found != index_.end()) erase(found->second);
  bool evicted = makeRoom(bytes, now);
  lru_.push_front(Entry{std::string(key), value, expiryAt(now, ttl_seconds)});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_ += bytes;
  return evicted ? SetStatus::kStoredEvicting : SetStatus::kStored;
}

namespace {

bool isNumber(const SharedDict::Value& v) { return v.type != SharedDict::Value::Type::kString; }

double asDouble(const SharedDict::Value& v) {
  return v.type == SharedDict::Value::Type::kInteger ? static_cast<double>(v.integer) : v.number;
}

// Lua integer semantics: wrap around instead of overflowing (signed overflow is UB in C++).
SharedDict::Value add(const SharedDict::Value& a, const SharedDict::Value& b) {
  SharedDict::Value sum;
  if (a.type == SharedDict::Value::Type::kInteger && b.type == SharedDict::Value::Type::kInteger) {
    sum.type = SharedDict::Value::Type::kInteger;
    sum.integer =
        static_cast<int64_t>(static_cast<uint64_t>(a.integer) + static_cast<uint64_t>(b.integer));
  } else {
    sum.type = SharedDict::Value::Type::kNumber;
    sum.number = asDouble(a) + asDouble(b);
  }
  return sum;
}

}  // namespace

SharedDict::IncrStatus SharedDict::incr(std::string_view key, const Value& by, const Value* init,
                                        double init_ttl_seconds, Clock::time_point now,
                                        Value& out) {
  if (!isNumber(by) || (init && !isNumber(*init))) return IncrStatus::kNotANumber;
  std::lock_guard<std::mutex> lock(mu_);
  List::iterator it = findLive(key, now);
  if (it != lru_.end()) {
    if (!isNumber(it->value)) return IncrStatus::kNotANumber;
    // Numbers have a fixed size in entryBytes, so the byte count does not change.
    it->value = add(it->value, by);
    out = it->value;
    return IncrStatus::kOk;
  }
  if (!init) return IncrStatus::kNotFound;
  Value sum = add(*init, by);
  size_t bytes = entryBytes(key, sum);
  if (key.size() > kMaxKeyBytes || bytes > max_bytes_ / 8 || max_keys_ == 0) {
    return IncrStatus::kTooLarge;
  }
  makeRoom(bytes, now);
  lru_.push_front(Entry{std::string(key), sum, expiryAt(now, init_ttl_seconds)});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_ += bytes;
  out = sum;
  return IncrStatus::kOk;
}

bool SharedDict::remove(std::string_view key, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = index_.find(key);
  if (found == index_.end()) return false;
  bool live = found->second->expiry > now;
  erase(found->second);
  return live;
}

size_t SharedDict::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

size_t SharedDict::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

void SharedDict::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  index_.clear();
  lru_.clear();
  bytes_ = 0;
}

}  // namespace subgate::lua
