#include "core/isolates/cluster_hub.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "core/log/log.h"

namespace subgate {
namespace {

// A sibling that reads its stdin slower than the cluster writes gets at most this much queued;
// past it, messages to it count as failed instead of growing subgate's memory.
constexpr size_t kMaxQueuedInput = 8u << 20;

std::string dumpLine(json_t* value) {
  char* text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
  std::string line = text ? text : "null";
  free(text);
  line.push_back('\n');  // jansson escapes control characters, so the line has no other '\n'
  return line;
}

bool integerField(json_t* message, const char* name, uint64_t& out) {
  json_t* value = json_object_get(message, name);
  if (!json_is_integer(value) || json_integer_value(value) < 0) return false;
  out = static_cast<uint64_t>(json_integer_value(value));
  return true;
}

json_t* countersJson(const ClusterHub::Counters& c) {
  return json_pack(
      "{sIsIsIsIsIsIsIsI}", "broadcasts", static_cast<json_int_t>(c.broadcasts), "whispers",
      static_cast<json_int_t>(c.whispers), "gossips", static_cast<json_int_t>(c.gossips),
      "deliveries", static_cast<json_int_t>(c.deliveries), "answers",
      static_cast<json_int_t>(c.answers), "failed", static_cast<json_int_t>(c.failed), "timed_out",
      static_cast<json_int_t>(c.timed_out), "rejected", static_cast<json_int_t>(c.rejected));
}

void addCounters(ClusterHub::Counters& into, const ClusterHub::Counters& c) {
  into.broadcasts += c.broadcasts;
  into.whispers += c.whispers;
  into.gossips += c.gossips;
  into.deliveries += c.deliveries;
  into.answers += c.answers;
  into.failed += c.failed;
  into.timed_out += c.timed_out;
  into.rejected += c.rejected;
}

}  // namespace

struct ClusterHub::Member {
  uint64_t id = 0;
  std::string cluster;  // empty: dedicated, no siblings
  int fd = -1;
  event* write_ev = nullptr;
  std::string out;  // input queued for the process
  size_t out_sent = 0;
  std::unordered_map<std::string, uint32_t> uids;  // open connections per identifier
  ClusterHub* hub = nullptr;
};

struct ClusterHub::Cluster {
  std::vector<uint64_t> members;
  std::unordered_map<std::string, std::unordered_set<uint64_t>> uids;  // identifier -> holders
  Counters counters;
  size_t calls = 0;  // calls in flight that count here (keeps the entry)
};

// A send or gossip waiting for its siblings.
struct ClusterHub::Call {
  ClusterHub* hub = nullptr;
  uint64_t delivery = 0;
  uint64_t caller = 0;       // 0 once the caller left
  uint64_t caller_call = 0;  // the caller's own call id
  Cluster* cluster = nullptr;
  bool gossip = false;
  std::unordered_set<uint64_t> waiting;
  uint64_t asked = 0;
  uint64_t delivered = 0;
  uint64_t failed = 0;
  uint64_t timed_out = 0;
  json_t* answers = nullptr;  // gossip: the values received
  event* timer = nullptr;
};

ClusterHub::ClusterHub(event_base* base, std::chrono::milliseconds timeout)
    : base_(base), timeout_(timeout) {}

ClusterHub::~ClusterHub() {
  for (auto& [id, call] : calls_) {
    if (call->timer) event_free(call->timer);
    json_decref(call->answers);
  }
  for (auto& [id, member] : members_)
    if (member->write_ev) event_free(member->write_ev);
}

void ClusterHub::setTimeout(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  timeout_ = timeout;
}

ClusterHub::Cluster& ClusterHub::clusterOf(const Member& member) {
  auto& slot = clusters_[member.cluster];
  if (!slot) slot = std::make_unique<Cluster>();
  return *slot;
}

void ClusterHub::join(uint64_t id, std::string cluster, int input_fd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (members_.count(id)) return;
  auto member = std::make_unique<Member>();
  member->id = id;
  member->cluster = std::move(cluster);
  member->fd = input_fd;
  member->hub = this;
  member->write_ev = event_new(base_, input_fd, EV_WRITE, onWritable, member.get());
  clusterOf(*member).members.push_back(id);
  members_.emplace(id, std::move(member));
}

void ClusterHub::leave(uint64_t id) {
  std::vector<uint64_t> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = members_.find(id);
    if (it == members_.end()) return;
    Member& member = *it->second;
    Cluster& cluster = clusterOf(member);
    std::erase(cluster.members, id);
    for (const auto& [uid, count] : member.uids) {
      auto holders = cluster.uids.find(uid);
      if (holders == cluster.uids.end()) continue;
      holders->second.erase(id);
      if (holders->second.empty()) cluster.uids.erase(holders);
    }
    for (auto& [delivery, call] : calls_) {
      if (call->caller == id) call->caller = 0;
      if (call->waiting.erase(id)) {
        ++call->failed;
        if (call->waiting.empty()) done.push_back(delivery);
      }
    }
    if (member.write_ev) event_free(member.write_ev);
    members_.erase(it);
  }
  for (uint64_t delivery : done) finish(delivery);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = clusters_.begin(); it != clusters_.end();) {
    Cluster& c = *it->second;
    if (c.members.empty() && c.calls == 0) {
      addCounters(retired_, c.counters);
      it = clusters_.erase(it);
    } else {
      ++it;
    }
  }
}

void ClusterHub::report(uint64_t id, std::string_view text) {
  json_error_t error;
  json_t* message = json_loadb(text.data(), text.size(), JSON_ALLOW_NUL, &error);
  std::vector<uint64_t> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = members_.find(id);
    if (it == members_.end()) {
      // Not (or no longer) a member: a report from before "ready" or after a stop.
      json_decref(message);
      return;
    }
    Member& member = *it->second;
    if (!json_is_object(message)) {
      ++clusterOf(member).counters.rejected;
      LOG_WARN("isolate #%llu: malformed cluster report: %s", static_cast<unsigned long long>(id),
               message ? "not a JSON object" : logSafe(error.text).c_str());
      json_decref(message);
      return;
    }
    handle(member, message, done);
  }
  json_decref(message);
  for (uint64_t delivery : done) finish(delivery);
}

void ClusterHub::handle(Member& from, json_t* message, std::vector<uint64_t>& done) {
  const char* op = json_string_value(json_object_get(message, "op"));
  const std::string_view kind = op ? op : "";
  Cluster& cluster = clusterOf(from);
  json_t* uid_value = json_object_get(message, "uid");
  const char* uid = json_string_value(uid_value);
  const std::string uid_text = uid ? std::string(uid, json_string_length(uid_value)) : "";
  uint64_t call_id = 0;
  if (kind == "join" && uid) {
    if (from.uids[uid_text]++ == 0) cluster.uids[uid_text].insert(from.id);
  } else if (kind == "leave" && uid) {
    auto held = from.uids.find(uid_text);
    if (held != from.uids.end() && --held->second == 0) {
      from.uids.erase(held);
      auto holders = cluster.uids.find(uid_text);
      if (holders != cluster.uids.end()) {
        holders->second.erase(from.id);
        if (holders->second.empty()) cluster.uids.erase(holders);
      }
    }
  } else if (kind == "send" && integerField(message, "id", call_id) &&
             json_is_string(json_object_get(message, "msg")) && (uid || !uid_value)) {
    ++(uid ? cluster.counters.whispers : cluster.counters.broadcasts);
    Call call;
    call.delivery = next_delivery_++;
    call.caller_call = call_id;
    json_t* deliver =
        json_pack("{sssIsO}", "op", "deliver", "id", static_cast<json_int_t>(call.delivery), "msg",
                  json_object_get(message, "msg"));
    if (uid) json_object_set(deliver, "uid", uid_value);
    startCall(from, std::move(call), siblings(from, uid ? &uid_text : nullptr), dumpLine(deliver),
              timeout_, done);
    json_decref(deliver);
  } else if (kind == "gossip" && integerField(message, "id", call_id) &&
             json_object_get(message, "msg")) {
    ++cluster.counters.gossips;
    std::chrono::milliseconds timeout = timeout_;
    uint64_t asked_ms = 0;
    if (integerField(message, "timeout_ms", asked_ms) && asked_ms > 0)
      timeout = std::min(timeout, std::chrono::milliseconds(asked_ms));
    Call call;
    call.delivery = next_delivery_++;
    call.caller_call = call_id;
    call.gossip = true;
    call.answers = json_array();
    json_t* ask =
        json_pack("{sssIsO}", "op", "gossip", "id", static_cast<json_int_t>(call.delivery), "msg",
                  json_object_get(message, "msg"));
    startCall(from, std::move(call), siblings(from, nullptr), dumpLine(ask), timeout, done);
    json_decref(ask);
  } else if ((kind == "ack" || kind == "answer") && integerField(message, "id", call_id)) {
    handleReply(from, call_id, message, kind == "answer", done);
  } else {
    ++cluster.counters.rejected;
    LOG_WARN("isolate #%llu: unknown or incomplete cluster report \"%s\"",
             static_cast<unsigned long long>(from.id), logSafe(kind).c_str());
  }
}

// The members a call from `from` goes to: its cluster's other members, or those of them that
// hold connections of `uid`. None for a dedicated isolate.
std::vector<ClusterHub::Member*> ClusterHub::siblings(const Member& from, const std::string* uid) {
  std::vector<Member*> targets;
  if (from.cluster.empty()) return targets;
  Cluster& cluster = clusterOf(from);
  auto add_target = [&](uint64_t id) {
    if (id != from.id) targets.push_back(members_.at(id).get());
  };
  if (!uid) {
    for (uint64_t id : cluster.members) add_target(id);
  } else if (auto holders = cluster.uids.find(*uid); holders != cluster.uids.end()) {
    for (uint64_t id : holders->second) add_target(id);
  }
  return targets;
}

void ClusterHub::startCall(Member& from, Call call, const std::vector<Member*>& targets,
                           const std::string& line, std::chrono::milliseconds timeout,
                           std::vector<uint64_t>& done) {
  auto owned = std::make_unique<Call>(std::move(call));
  Call& c = *owned;
  c.hub = this;
  c.caller = from.id;
  c.cluster = &clusterOf(from);
  ++c.cluster->calls;
  c.asked = targets.size();
  for (Member* target : targets) {
    if (enqueue(*target, line)) {
      c.waiting.insert(target->id);
    } else {
      ++c.failed;
    }
  }
  if (!c.waiting.empty()) {
    c.timer = evtimer_new(base_, onCallTimeout, &c);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
    evtimer_add(c.timer, &tv);
  } else {
    done.push_back(c.delivery);
  }
  calls_.emplace(c.delivery, std::move(owned));
}

void ClusterHub::handleReply(Member& from, uint64_t delivery, json_t* message, bool is_answer,
                             std::vector<uint64_t>& done) {
  auto it = calls_.find(delivery);
  // Late (after the timeout) or not asked of this member: nothing waits for it.
  if (it == calls_.end() || !it->second->waiting.erase(from.id)) return;
  Call& call = *it->second;
  if (!is_answer) {
    uint64_t delivered = 0;
    if (integerField(message, "delivered", delivered)) call.delivered += delivered;
  } else if (call.gossip && json_is_true(json_object_get(message, "ok"))) {
    json_t* value = json_object_get(message, "value");
    json_array_append(call.answers, value ? value : json_null());
  } else {
    ++call.failed;
  }
  if (call.waiting.empty()) done.push_back(delivery);
}

void ClusterHub::finish(uint64_t delivery) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(delivery);
  if (it == calls_.end()) return;
  std::unique_ptr<Call> call = std::move(it->second);
  calls_.erase(it);
  if (call->timer) event_free(call->timer);
  call->timed_out += call->waiting.size();
  Counters& counters = call->cluster->counters;
  counters.deliveries += call->delivered;
  counters.failed += call->failed;
  counters.timed_out += call->timed_out;
  --call->cluster->calls;
  json_t* result;
  if (call->gossip) {
    counters.answers += json_array_size(call->answers);
    result = json_pack(
        "{sssIsOsIsIsIsb}", "op", "gossiped", "id", static_cast<json_int_t>(call->caller_call),
        "answers", call->answers, "asked", static_cast<json_int_t>(call->asked), "failed",
        static_cast<json_int_t>(call->failed), "timed_out",
        static_cast<json_int_t>(call->timed_out), "partial", call->failed + call->timed_out > 0);
  } else {
    result = json_pack(
        "{sssIsIsIsIsI}", "op", "sent", "id", static_cast<json_int_t>(call->caller_call),
        "delivered", static_cast<json_int_t>(call->delivered), "isolates",
        static_cast<json_int_t>(call->asked), "failed", static_cast<json_int_t>(call->failed),
        "timed_out", static_cast<json_int_t>(call->timed_out));
  }
  json_decref(call->answers);
  if (auto caller = members_.find(call->caller); call->caller && caller != members_.end()) {
    if (!enqueue(*caller->second, dumpLine(result)))
      LOG_WARN("isolate #%llu: cluster result dropped, its input is full",
               static_cast<unsigned long long>(call->caller));
  }
  json_decref(result);
}

bool ClusterHub::sendLine(uint64_t id, std::string_view line) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = members_.find(id);
  return it != members_.end() && enqueue(*it->second, line);
}

bool ClusterHub::enqueue(Member& member, std::string_view line) {
  if (member.out.size() - member.out_sent + line.size() > kMaxQueuedInput) return false;
  if (member.out_sent > 0 && member.out_sent == member.out.size()) {
    member.out.clear();
    member.out_sent = 0;
  }
  member.out.append(line);
  flush(member);
  return true;
}

void ClusterHub::flush(Member& member) {
  while (member.out_sent < member.out.size()) {
    ssize_t n = ::write(member.fd, member.out.data() + member.out_sent,
                        member.out.size() - member.out_sent);
    if (n > 0) {
      member.out_sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      event_add(member.write_ev, nullptr);
      return;
    }
    // The process closed its input (it is exiting): leave() follows from the registry.
    member.out_sent = member.out.size();
  }
  member.out.clear();
  member.out_sent = 0;
  // Release a buffer a burst made large.
  if (member.out.capacity() > 65536) std::string().swap(member.out);
}

void ClusterHub::onWritable(evutil_socket_t, short, void* arg) {
  auto* member = static_cast<Member*>(arg);
  std::lock_guard<std::mutex> lock(member->hub->mu_);
  member->hub->flush(*member);
}

void ClusterHub::onCallTimeout(evutil_socket_t, short, void* arg) {
  auto* call = static_cast<Call*>(arg);
  call->hub->finish(call->delivery);
}

json_t* ClusterHub::clusterJson(const std::string& cluster_key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clusters_.find(cluster_key);
  if (it == clusters_.end()) return nullptr;
  const Cluster& cluster = *it->second;
  json_t* entry = countersJson(cluster.counters);
  json_object_set_new(entry, "members",
                      json_integer(static_cast<json_int_t>(cluster.members.size())));
  json_object_set_new(entry, "identifiers",
                      json_integer(static_cast<json_int_t>(cluster.uids.size())));
  return entry;
}

ClusterHub::Counters ClusterHub::totals() const {
  std::lock_guard<std::mutex> lock(mu_);
  Counters sum = retired_;
  for (const auto& [key, cluster] : clusters_) addCounters(sum, cluster->counters);
  return sum;
}

json_t* ClusterHub::totalsJson() const { return countersJson(totals()); }

size_t ClusterHub::members() const {
  std::lock_guard<std::mutex> lock(mu_);
  return members_.size();
}

}  // namespace subgate
