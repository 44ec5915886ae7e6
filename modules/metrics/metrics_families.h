// Every family `metrics;` answers, rendered from one snapshot of the process's counters (the
// same sources as `status;`: IsolateRegistry::snapshot(), Module::counters()) and of the
// requests counted by server (core/pipeline/request_counters.h). docs/observability.md lists
// them; tests/unit/metrics_module_test.cc pins them.
#pragma once

#include <string>
#include <vector>

#include "core/isolates/isolate_registry.h"
#include "core/pipeline/module.h"
#include "core/pipeline/request_counters.h"

namespace subgate {

struct MetricsSnapshot {
  IsolateRegistry::Snapshot isolates;  // zero in a build or config without the runtime
  std::vector<RequestCounters::Row> requests;
  std::vector<ModuleCounter> modules;  // every module's counters()
};

// The Prometheus text (format 0.0.4) of `snapshot`.
std::string renderMetrics(const MetricsSnapshot& snapshot);

}  // namespace subgate
