// Every family `metrics;` answers, rendered from one snapshot of the process's counters (the
// same sources as `status;`: IsolateRegistry::snapshot(), Module::counters()) and of the
// requests counted by server (core/pipeline/request_counters.h). docs/observability.md lists
// them; tests/unit/metrics_module_test.cc pins them.
#pragma once

#include <string>
#include <vector>

#include "core/isolates/isolate_registry.h"
#include "core/pipeline/deployment_counters.h"
#include "core/pipeline/module.h"
#include "core/pipeline/request_counters.h"
#include "modules/metrics/prometheus_text.h"

namespace subgate {

struct MetricsSnapshot {
  IsolateRegistry::Snapshot isolates;  // zero in a build or config without the runtime
  std::vector<RequestCounters::Row> requests;
  RequestCounters::Totals totals;      // connections, TLS, WebSockets, isolate wait
  std::vector<ModuleCounter> modules;  // every module's counters()
  // Per deployment (`metrics_deployments N`; 0: none shown): the N busiest by requests get
  // their own series, the rest (and `deployments.evicted`) are summed into deployment="_other".
  uint32_t deployments_shown = 0;
  DeploymentCounters::Snapshot deployments;
  std::vector<IsolateRegistry::DeploymentIsolates> deployment_isolates;
};

// deployment_families.cc: the per-deployment families of `snapshot` (none when
// deployments_shown is 0).
void renderDeployments(PrometheusText& out, const MetricsSnapshot& snapshot);

// The text (format 0.0.4, or OpenMetrics 1.0.0) of `snapshot`.
std::string renderMetrics(const MetricsSnapshot& snapshot,
                          PrometheusText::Format format = PrometheusText::Format::kText);

}  // namespace subgate
