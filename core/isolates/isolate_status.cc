// IsolateRegistry's reports (isolate_registry.h): the pool's counts for tests and the `metrics`
// handler, and the pool as JSON for the `status` handler. All read the registry under its mutex
// (isolate_pool.h).
#include <jansson.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>

#include "core/isolates/isolate_pool.h"
#include "core/isolates/isolate_registry.h"

namespace subgate {

namespace {

IsolateRegistry::Stats countsLocked(const IsolateRegistry::Impl& m) {
  IsolateRegistry::Stats s = m.counters;
  s.isolates = m.live;
  s.spares = m.spares.size();
  s.deployments = m.deployments.size();
  s.queued = m.queued.load();
  return s;
}

}  // namespace

IsolateRegistry::Stats IsolateRegistry::counts() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return countsLocked(*impl_);
}

IsolateRegistry::Stats IsolateRegistry::stats() const {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  Stats s = countsLocked(m);
  // Isolates by state: a walk over every deployment's isolates (so not in counts()).
  auto countState = [&s](const Isolate& isolate) {
    switch (isolate.state) {
      case Isolate::State::kWaitingCode: ++s.waiting_code; break;
      case Isolate::State::kStarting: ++s.starting; break;
      case Isolate::State::kReady: ++s.ready_now; break;
      case Isolate::State::kStopping:  // detached from their deployment: counted below
      case Isolate::State::kSpare:
      case Isolate::State::kDead: break;
    }
  };
  for (const auto& [key, d] : m.deployments) {
    for (const auto& isolate : d->shared) countState(*isolate);
    for (const auto& [id, isolate] : d->instances) countState(*isolate);
    std::lock_guard<std::mutex> sticky_lock(d->sticky_mu);
    s.sticky += d->sticky.size();
  }
  for (const auto& [id, isolate] : m.processes)
    if (isolate->state == Isolate::State::kStopping) ++s.stopping;
  return s;
}

std::vector<IsolateRegistry::DeploymentIsolates> IsolateRegistry::isolatesByDeployment() const {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  std::vector<DeploymentIsolates> out;
  out.reserve(m.deployments.size());
  for (const auto& [key, d] : m.deployments) {
    const size_t n = d->shared.size() + d->instances.size();
    if (n == 0) continue;
    out.push_back({d->subhoster ? d->subhoster->name : std::string(), d->deployment_id, n});
  }
  return out;
}

IsolateRegistry::Snapshot IsolateRegistry::snapshot() const {
  Snapshot out;
  out.pool = stats();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->hub) out.cluster = impl_->hub->totals();
  }
  out.events = impl_->event_sender.totals();
  return out;
}

namespace {

const char* stateName(Isolate::State state) {
  switch (state) {
    case Isolate::State::kSpare: return "spare";
    case Isolate::State::kWaitingCode: return "waiting_code";
    case Isolate::State::kStarting: return "starting";
    case Isolate::State::kReady: return "ready";
    case Isolate::State::kStopping: return "stopping";
    case Isolate::State::kDead: return "dead";
  }
  return "unknown";
}

// A JSON string of `text`, which may come from a tenant (identify()'s answer): bytes that are
// not valid UTF-8 become '?' rather than dropping the value.
json_t* textJson(std::string_view text) {
  if (json_t* value = json_stringn(text.data(), text.size())) return value;
  std::string ascii(text);
  for (char& c : ascii)
    if (static_cast<unsigned char>(c) >= 0x80 || c == '\0') c = '?';
  return json_stringn(ascii.data(), ascii.size());
}

json_t* integerJson(uint64_t value) { return json_integer(static_cast<json_int_t>(value)); }

// The identifiers status lists per deployment: its most recently used ones.
constexpr size_t kStatusIdentifiers = 20;

json_t* bootJson(const IsolateRegistry::BootRecord& boot) {
  json_t* out = json_object();
  json_object_set_new(out, "deployment_id", textJson(boot.deployment_id));
  json_object_set_new(out, "instance_id", textJson(boot.instance_id));
  json_object_set_new(out, "isolate", integerJson(boot.isolate));
  json_object_set_new(out, "time_ms", json_integer(static_cast<json_int_t>(boot.time_ms)));
  json_object_set_new(out, "duration_ms", json_integer(static_cast<json_int_t>(boot.duration_ms)));
  json_object_set_new(out, "outcome", json_string(boot.ok ? "ready" : "failed"));
  json_object_set_new(out, "error", textJson(boot.error));
  json_object_set_new(out, "message", textJson(boot.message));
  return out;
}

json_t* isolateJson(const Isolate& isolate) {
  json_t* out = json_object();
  json_object_set_new(out, "id", json_integer(static_cast<json_int_t>(isolate.id)));
  json_object_set_new(out, "instance_id",
                      json_stringn(isolate.instance_id.data(), isolate.instance_id.size()));
  json_object_set_new(out, "state", json_string(stateName(isolate.state)));
  json_object_set_new(out, "active", json_integer(isolate.active.load()));
  json_object_set_new(out, "pid", json_integer(isolate.process.pid));
  return out;
}

}  // namespace

std::string IsolateRegistry::statusJson() const {
  Impl& m = *impl_;
  json_t* root = json_object();
  json_t* deployments = json_array();
  size_t sticky = 0;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    json_object_set_new(root, "isolates", json_integer(static_cast<json_int_t>(m.live)));
    json_object_set_new(root, "spares", json_integer(static_cast<json_int_t>(m.spares.size())));
    json_object_set_new(root, "boots", json_integer(static_cast<json_int_t>(m.counters.boots)));
    json_object_set_new(root, "boot_failures",
                        json_integer(static_cast<json_int_t>(m.counters.boot_failures)));
    json_object_set_new(root, "boot_backoff_answers",
                        json_integer(static_cast<json_int_t>(m.counters.boot_backoff_answers)));
    json_object_set_new(root, "processes",
                        json_integer(static_cast<json_int_t>(m.counters.processes)));
    json_object_set_new(root, "ready", json_integer(static_cast<json_int_t>(m.counters.ready)));
    json_object_set_new(root, "evicted_idle",
                        json_integer(static_cast<json_int_t>(m.counters.evicted_idle)));
    json_object_set_new(root, "evicted_lru",
                        json_integer(static_cast<json_int_t>(m.counters.evicted_lru)));
    json_object_set_new(root, "egress_denied",
                        json_integer(static_cast<json_int_t>(m.counters.egress_denied)));
    json_object_set_new(root, "stopped_time_limit",
                        json_integer(static_cast<json_int_t>(m.counters.stopped_time_limit)));
    json_object_set_new(root, "stopped_memory_limit",
                        json_integer(static_cast<json_int_t>(m.counters.stopped_memory_limit)));
    json_object_set_new(root, "stopped_failed", integerJson(m.counters.stopped_failed));
    json_object_set_new(root, "events_rate_limited",
                        json_integer(static_cast<json_int_t>(m.counters.events_rate_limited)));
    json_object_set_new(root, "isolate_boot_failures",
                        integerJson(m.counters.isolate_boot_failures));
    json_object_set_new(root, "queued", integerJson(m.queued.load()));
    json_t* boots = json_array();
    for (const BootRecord& boot : m.recent_boots) json_array_append_new(boots, bootJson(boot));
    json_object_set_new(root, "recent_boots", boots);
    for (const auto& [key, d] : m.deployments) {
      json_t* entry = json_object();
      json_object_set_new(entry, "deployment_id",
                          json_stringn(d->deployment_id.data(), d->deployment_id.size()));
      json_object_set_new(entry, "subhoster",
                          json_string(d->subhoster ? d->subhoster->name.c_str() : ""));
      json_object_set_new(entry, "rpc_root", json_stringn(d->rpc_root.data(), d->rpc_root.size()));
      json_object_set_new(entry, "queued", json_integer(static_cast<json_int_t>(d->queue.size())));
      json_object_set_new(entry, "isolate_limit", integerJson(d->isolate_limit));
      json_object_set_new(entry, "warm_leases",
                          json_integer(static_cast<json_int_t>(d->warm_leases.load())));
      size_t sticky_size = 0;
      json_t* identifiers = json_array();
      {
        std::lock_guard<std::mutex> sticky_lock(d->sticky_mu);
        sticky_size = d->sticky.size();
        d->sticky.forEachRecent(
            kStatusIdentifiers,
            [&](std::string_view id, const std::shared_ptr<Isolate>& target, uint32_t open) {
              json_t* item = json_object();
              json_object_set_new(item, "id", textJson(id));
              json_object_set_new(item, "isolate", integerJson(target ? target->id : 0));
              json_object_set_new(item, "open", integerJson(open));
              json_array_append_new(identifiers, item);
            });
      }
      json_object_set_new(entry, "identifiers", identifiers);
      json_object_set_new(entry, "sticky", json_integer(static_cast<json_int_t>(sticky_size)));
      sticky += sticky_size;
      json_t* isolates = json_array();
      for (const auto& isolate : d->shared) json_array_append_new(isolates, isolateJson(*isolate));
      for (const auto& [id, isolate] : d->instances)
        json_array_append_new(isolates, isolateJson(*isolate));
      json_object_set_new(entry, "isolates", isolates);
      if (json_t* cluster = m.hub ? m.hub->clusterJson(d->key) : nullptr)
        json_object_set_new(entry, "cluster", cluster);
      json_array_append_new(deployments, entry);
    }
  }
  json_object_set_new(root, "sticky", json_integer(static_cast<json_int_t>(sticky)));
  json_object_set_new(root, "deployments", deployments);
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.hub) {
      json_object_set_new(root, "cluster", m.hub->totalsJson());
    }
  }
  // The events sender's counts (its own lock; core/events/event_sender.h).
  const EventSender::Totals events = m.event_sender.totals();
  for (const auto& [name, value] : {std::pair<const char*, uint64_t>{"events_sent", events.sent},
                                    {"events_dropped", events.dropped},
                                    {"events_failed", events.failed},
                                    {"events_retries", events.retries},
                                    {"events_posts", events.posts},
                                    {"events_queued", events.queued},
                                    {"events_origins", events.origins}})
    json_object_set_new(root, name, json_integer(static_cast<json_int_t>(value)));
  char* text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  std::string out = text ? text : "{}";
  free(text);
  json_decref(root);
  return out;
}

}  // namespace subgate
