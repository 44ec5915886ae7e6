// The JSON of `status;` (its fields: modules/status/status_module.h, docs/observability.md):
// the isolate pool (IsolateRegistry::statusJson), every module's counters(), the requests by
// status class (core/pipeline/request_counters.h) and the history of the last minutes
// (status_history.h).
//
// Any thread; reads the pool under its mutex and the counters summed over every thread.
#pragma once

#include <cstdint>
#include <string>

namespace subgate {

class IsolateRegistry;
class StatusHistory;

// Compact, keys sorted, without a trailing newline. `registry` may be null (no isolate pool).
std::string renderStatusJson(const IsolateRegistry* registry, const StatusHistory& history,
                             int64_t now_ms);

}  // namespace subgate
