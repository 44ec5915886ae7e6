#include "modules/status/status_json.h"

#include <jansson.h>

#include <array>
#include <cstdlib>
#include <string>

#include "core/isolates/isolate_registry.h"
#include "core/pipeline/module.h"
#include "core/pipeline/request_counters.h"
#include "modules/status/status_history.h"

namespace subgate {
namespace {

constexpr const char* kClassNames[RequestCounters::kClasses] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

json_t* countJson(uint64_t value) { return json_integer(static_cast<json_int_t>(value)); }

void setClasses(json_t* object, const std::array<uint64_t, RequestCounters::kClasses>& counts) {
  for (size_t k = 0; k < RequestCounters::kClasses; ++k)
    json_object_set_new(object, kClassNames[k], countJson(counts[k]));
}

json_t* historyJson(const StatusHistory& history) {
  json_t* out = json_object();
  json_object_set_new(out, "interval_ms",
                      json_integer(static_cast<json_int_t>(history.interval().count())));
  json_t* samples = json_array();
  for (const StatusSample& sample : history.samples()) {
    json_t* item = json_object();
    json_object_set_new(item, "time_ms", json_integer(static_cast<json_int_t>(sample.time_ms)));
    json_t* requests = json_array();
    for (uint64_t count : sample.requests) json_array_append_new(requests, countJson(count));
    json_object_set_new(item, "requests", requests);
    json_object_set_new(item, "ready", countJson(sample.ready));
    json_object_set_new(item, "boot_failures", countJson(sample.boot_failures));
    json_object_set_new(item, "isolates", countJson(sample.isolates));
    json_object_set_new(item, "queued", countJson(sample.queued));
    json_array_append_new(samples, item);
  }
  json_object_set_new(out, "samples", samples);
  return out;
}

}  // namespace

std::string renderStatusJson(const IsolateRegistry* registry, const StatusHistory& history,
                             int64_t now_ms) {
  const std::string pool = registry ? registry->statusJson() : "{}";
  json_t* root = json_loadb(pool.data(), pool.size(), 0, nullptr);
  if (!json_is_object(root)) {
    json_decref(root);
    root = json_object();
  }
  // The counters every module keeps (Module::counters(): token_cache_hits, ...) at the top level.
  for (const Module* module : allModules())
    for (const ModuleCounter& counter : module->counters())
      json_object_set_new(root, std::string(counter.name).c_str(), countJson(counter.value));
  // Requests by status class: over every server, and per server label.
  std::array<uint64_t, RequestCounters::kClasses> total{};
  json_t* servers = json_array();
  for (const RequestCounters::Row& row : RequestCounters::snapshot()) {
    json_t* server = json_object();
    json_object_set_new(server, "server", json_stringn(row.label.data(), row.label.size()));
    std::array<uint64_t, RequestCounters::kClasses> counts{};
    for (size_t k = 0; k < RequestCounters::kClasses && k < row.by_class.size(); ++k) {
      counts[k] = row.by_class[k];
      total[k] += counts[k];
    }
    setClasses(server, counts);
    json_array_append_new(servers, server);
  }
  json_t* requests = json_object();
  setClasses(requests, total);
  json_object_set_new(root, "requests", requests);
  json_object_set_new(root, "servers", servers);
  json_object_set_new(root, "history", historyJson(history));
  json_object_set_new(root, "time_ms", json_integer(static_cast<json_int_t>(now_ms)));
  std::string out;
  if (char* text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS)) {
    out = text;
    free(text);
  }
  json_decref(root);
  return out;
}

}  // namespace subgate
