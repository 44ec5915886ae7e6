// The per-deployment families: the `metrics_deployments` busiest deployments by requests, each
// with its own series, and every other one summed into deployment="_other" (which also holds
// the counts of deployments the per-thread tables let go: core/pipeline/deployment_counters.h).
#include <algorithm>
#include <string>
#include <unordered_map>

#include "modules/metrics/metrics_families.h"

namespace subgate {
namespace {

constexpr std::string_view kOther = "_other";
constexpr std::string_view kClassNames[RequestCounters::kClasses] = {"1xx", "2xx", "3xx", "4xx",
                                                                     "5xx"};

std::string keyOf(std::string_view subhoster, std::string_view deployment_id) {
  std::string key(subhoster);
  key.push_back('\0');
  key.append(deployment_id);
  return key;
}

}  // namespace

void renderDeployments(PrometheusText& out, const MetricsSnapshot& snapshot) {
  if (snapshot.deployments_shown == 0) return;
  std::vector<const DeploymentCounters::Row*> rows;
  rows.reserve(snapshot.deployments.rows.size());
  for (const DeploymentCounters::Row& row : snapshot.deployments.rows) rows.push_back(&row);
  // The busiest first; ties by name, so that the same counts show the same deployments.
  std::sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) {
    const uint64_t ra = a->requests();
    const uint64_t rb = b->requests();
    if (ra != rb) return ra > rb;
    if (a->deployment_id != b->deployment_id) return a->deployment_id < b->deployment_id;
    return a->subhoster < b->subhoster;
  });
  const size_t shown = std::min<size_t>(snapshot.deployments_shown, rows.size());
  DeploymentCounters::Row other = snapshot.deployments.evicted;
  for (size_t i = shown; i < rows.size(); ++i) other.merge(*rows[i]);
  rows.resize(shown);

  std::unordered_map<std::string, size_t> isolates;
  size_t isolates_other = 0;
  for (const auto& entry : snapshot.deployment_isolates)
    isolates[keyOf(entry.subhoster, entry.deployment_id)] += entry.isolates;

  out.family("subgate_deployment_requests_total", "counter",
             "Requests answered, by deployment (the metrics_deployments busiest; the rest in "
             "deployment=\"_other\") and status class.");
  for (const auto* row : rows)
    for (size_t k = 0; k < RequestCounters::kClasses; ++k)
      out.sample({{"deployment", row->deployment_id},
                  {"subhoster", row->subhoster},
                  {"code", kClassNames[k]}},
                 row->by_class[k]);
  for (size_t k = 0; k < RequestCounters::kClasses; ++k)
    out.sample({{"deployment", kOther}, {"subhoster", ""}, {"code", kClassNames[k]}},
               other.by_class[k]);

  out.family("subgate_deployment_errors_total", "counter",
             "Answers subgate made itself with an x-deno-error, by deployment and error code.");
  for (size_t k = 0; k < RequestCounters::kErrorKinds; ++k) {
    const std::string_view code = errorInfo(static_cast<ErrorKind>(k)).code;
    for (const auto* row : rows)
      out.sample(
          {{"deployment", row->deployment_id}, {"subhoster", row->subhoster}, {"code", code}},
          row->errors[k]);
    out.sample({{"deployment", kOther}, {"subhoster", ""}, {"code", code}}, other.errors[k]);
  }

  out.family("subgate_deployment_request_duration_seconds", "histogram",
             "Requests by time from their head's arrival to the end of their response, by "
             "deployment.",
             "seconds");
  for (const auto* row : rows)
    out.histogram({{"deployment", row->deployment_id}, {"subhoster", row->subhoster}},
                  row->duration);
  out.histogram({{"deployment", kOther}, {"subhoster", ""}}, other.duration);

  out.family("subgate_deployment_isolates", "gauge",
             "Isolates alive now (starting or ready), by deployment.");
  for (const auto* row : rows) {
    auto found = isolates.find(keyOf(row->subhoster, row->deployment_id));
    size_t n = 0;
    if (found != isolates.end()) {
      n = found->second;
      isolates.erase(found);
    }
    out.sample({{"deployment", row->deployment_id}, {"subhoster", row->subhoster}}, n);
  }
  for (const auto& [key, n] : isolates) isolates_other += n;
  out.sample({{"deployment", kOther}, {"subhoster", ""}}, isolates_other);
}

}  // namespace subgate
