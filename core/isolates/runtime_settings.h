// The `runtime deno { ... }` block: how isolate processes are started, pooled and stopped, and
// how deployments are fetched from origins. One set per process; a reload replaces it (running
// isolates keep going, new decisions use the new values).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/events/event_queue.h"
#include "core/http_client/http_client.h"
#include "core/isolates/code_assembly.h"
#include "core/isolates/sandbox.h"
#include "core/log/log.h"

namespace subgate {

struct RuntimeSettings {
  std::string deno_path;  // the Deno executable
  std::string dir;        // working folder: harness, one subfolder per isolate, Deno's cache
  uint32_t spare = 0;     // generic processes kept started, waiting for code
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds boot_timeout{10000};  // process start (or assignment) to serving
  std::chrono::milliseconds queue_timeout{5000};  // wait for a free isolate before 503
  std::chrono::milliseconds stop_timeout{5000};   // SIGINT to SIGKILL
  uint64_t memory_limit = 256ull << 20;           // V8 heap cap per isolate
  // `v8_flags FLAG...`: V8 flags of every isolate, after subgate's own (--max-old-space-size
  // from memory_limit), so they can replace them. The default keeps a loaded isolate's young
  // generation small (docs/performance.md, "Isolates per GiB").
  std::vector<std::string> v8_flags{"--max-semi-space-size=4"};
  uint32_t max_isolates = 100;                // whole process; idle ones evicted LRU
  uint32_t max_isolates_per_deployment = 10;  // shared isolates of one deployment
  // Dedicated (instance id) isolates of one deployment; a new id past it stops the deployment's
  // least recently used idle instance, or gets 503 CAPACITY_EXCEEDED when all are busy.
  uint32_t max_instances_per_deployment = 10;
  BundleLimits bundle;       // bundle_max_bytes, bundle_max_modules, bundle_max_module_size
  size_t boot_cache = 1000;  // deployments whose code is kept
  // A failed /boot is answered again without asking the origin for this long after the first
  // failure, doubling with each failure in a row up to the second (boot_backoff.h); 0: off.
  std::chrono::milliseconds boot_failure_backoff{1000};
  std::chrono::milliseconds boot_failure_backoff_max{30000};
  std::chrono::milliseconds sticky_ttl{60000};      // identifier kept after its last request
  size_t sticky_max = 100000;                       // identifiers remembered per deployment
  std::chrono::milliseconds cluster_timeout{5000};  // longest wait for siblings (cluster_hub.h)
  HttpClientOptions origin;                         // the /boot client
  std::string region = "local";                     // DENO_REGION of every isolate (`region NAME`)

  // CPU and memory limits per isolate (docs/config.md, docs/security.md).
  // The whole process (heap, ArrayBuffers, native memory) through a memory cgroup; 0: twice
  // memory_limit (processMemoryLimit()).
  uint64_t process_memory_limit = 0;
  // CPU time an isolate may spend without its event loop turning; 0: off.
  std::chrono::milliseconds cpu_block_limit{1000};
  // CPU time an isolate may use over any cpu_window; 0: off.
  std::chrono::milliseconds cpu_budget{0};
  std::chrono::milliseconds cpu_window{0};
  uint32_t max_files = 1024;     // RLIMIT_NOFILE per isolate process
  uint32_t max_processes = 256;  // tasks (processes and threads) per isolate: pids cgroup

  // Events (core/events, docs/origin.md): the sender's batches, queue and retries, one POST's
  // timeout, and each isolate's log rate limit (0: none). A subhoster turns them on (`events on`).
  EventBatchPolicy events;
  std::chrono::milliseconds events_timeout{5000};
  uint32_t events_log_lines = 100;       // log events per second per isolate
  uint64_t events_log_bytes = 64 << 10;  // bytes of log messages per second per isolate
  // Isolate output in the error log (`isolate_log_level LEVEL|off`): every line at that level;
  // unset, debug and info lines at info and warn and error lines at warn.
  bool isolate_log = true;
  std::optional<LogLevel> isolate_log_level;

  uint64_t processMemoryLimit() const {
    return process_memory_limit ? process_memory_limit : 2 * memory_limit;
  }
  // Not a directive: where this subgate listens ("host:port", "*:port" for a wildcard; the
  // isolates module fills it from the config's listeners and server_names). The harness adds
  // the loop markers only to requests for these (core/ingress/cdn_loop.h).
  std::vector<std::string> own_hosts;
  SandboxSettings sandbox;  // sandbox.h
};

}  // namespace subgate
