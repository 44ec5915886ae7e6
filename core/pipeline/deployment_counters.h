// Requests counted per deployment for the `metrics;` handler (modules/metrics): by status
// class, by x-deno-error code and a duration histogram, for the deployments with the most
// traffic (`metrics_deployments N`, docs/config.md); the scrape sums the rest into one series.
//
// Each thread counts into a table of its own with room for kCellsPerThread deployments (a
// platform may serve 100,000: memory stays bounded at about kCellsPerThread x 0.5 KiB per
// thread). A deployment not in a full table takes the place of the least busy of a few cells
// sampled round the table (the heavy hitters stay, the long tail churns through the rest); the
// counts of the one it replaces go to the thread's `other` counts, which the scrape adds to
// `_other`. So a deployment's series may restart from zero when it comes back after an
// eviction, like a counter reset (rate() handles it), and the sum over all series never goes
// back.
//
// Threading: count() on any thread without locks (its own table; the cells it publishes are
// read by the scrape through atomic pointers, and a replaced cell is freed only once no scrape
// that may have seen it is running); snapshot() on any thread (scrapes take turns on a mutex).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/pipeline/request_counters.h"

namespace subgate {

class DeploymentCounters {
 public:
  static constexpr size_t kCellsPerThread = 1024;
  // How many cells an eviction compares.
  static constexpr size_t kEvictionSample = 8;

  // One finished request of `deployment_id` of `subhoster` (empty: none). Samples without a
  // status (100..599) are not counted.
  static void count(std::string_view subhoster, std::string_view deployment_id,
                    const RequestSample& sample);

  struct Row {
    std::string subhoster;
    std::string deployment_id;
    std::array<uint64_t, RequestCounters::kClasses> by_class{};
    std::array<uint64_t, RequestCounters::kErrorKinds> errors{};
    LatencyHistogram duration;
    uint64_t requests() const;
    void merge(const Row& other);
  };
  struct Snapshot {
    std::vector<Row> rows;  // one per deployment some thread counts now, summed over threads
    Row evicted;            // the counts of deployments replaced in the tables
  };
  static Snapshot snapshot();
};

}  // namespace subgate
