#include "modules/isolates/runtime_directives.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <string>

namespace subgate {
namespace {

// `cpu_block_limit DURATION | off`: at least 50 ms (the watchdog ticks at a quarter of it).
bool cpuBlockLimit(const config::Node& node, CompileContext& ctx, RuntimeSettings& s) {
  if (node.args[0] == "off") {
    s.cpu_block_limit = std::chrono::milliseconds(0);
    return true;
  }
  if (!ctx.durationArg(node, s.cpu_block_limit, true)) return false;
  if (s.cpu_block_limit < std::chrono::milliseconds(50))
    return ctx.fail(node, "cpu_block_limit must be at least 50ms (or off)");
  return true;
}

// `boot_failure_backoff FIRST [LONGEST] | off`: LONGEST defaults to 30 times FIRST.
bool bootFailureBackoff(const config::Node& node, CompileContext& ctx, RuntimeSettings& s) {
  if (node.args.size() == 1 && node.args[0] == "off") {
    s.boot_failure_backoff = s.boot_failure_backoff_max = std::chrono::milliseconds(0);
    return true;
  }
  if (!ctx.durationArg(node, s.boot_failure_backoff, true)) return false;
  s.boot_failure_backoff_max = s.boot_failure_backoff * 30;
  if (node.args.size() == 2) {
    config::Node second = node;
    second.args.erase(second.args.begin());
    if (!ctx.durationArg(second, s.boot_failure_backoff_max, true)) return false;
    if (s.boot_failure_backoff_max < s.boot_failure_backoff)
      return ctx.fail(node,
                      "boot_failure_backoff: the longest delay must not be shorter than the first");
  }
  return true;
}

// `cpu_limit BUDGET per WINDOW | off`: a positive budget over a window of at least 1 s (the
// budget is measured at ticks of up to 250 ms). The budget may exceed the window: an isolate
// with workers uses more than one core.
bool cpuLimit(const config::Node& node, CompileContext& ctx, RuntimeSettings& s) {
  if (node.args.size() == 1 && node.args[0] == "off") {
    s.cpu_budget = s.cpu_window = std::chrono::milliseconds(0);
    return true;
  }
  if (node.args.size() != 3 || node.args[1] != "per")
    return ctx.fail(node, "cpu_limit takes BUDGET per WINDOW (e.g. 5s per 10s) or off");
  auto budget = config::parseDuration(node.args[0]);
  auto window = config::parseDuration(node.args[2]);
  if (!budget || budget->count() <= 0)
    return ctx.fail(node, "invalid duration \"" + node.args[0] + R"(" in "cpu_limit" directive)");
  if (!window || *window < std::chrono::seconds(1))
    return ctx.fail(node, "the cpu_limit window must be a duration of at least 1s");
  s.cpu_budget = *budget;
  s.cpu_window = *window;
  return true;
}

// `events_retry MIN MAX ATTEMPTS`: the backoff after a failed events POST doubles from MIN up to
// MAX; a batch is sent ATTEMPTS times at most (1: never again).
bool eventsRetry(const config::Node& node, CompileContext& ctx, RuntimeSettings& s) {
  auto min = config::parseDuration(node.args[0]);
  auto max = config::parseDuration(node.args[1]);
  uint64_t attempts = 0;
  auto [end, ec] =
      std::from_chars(node.args[2].data(), node.args[2].data() + node.args[2].size(), attempts);
  if (!min || !max || min->count() <= 0 || *max < *min)
    return ctx.fail(node, "events_retry takes MIN MAX ATTEMPTS with durations 0 < MIN <= MAX");
  if (ec != std::errc() || end != node.args[2].data() + node.args[2].size() || attempts < 1 ||
      attempts > 100)
    return ctx.fail(node, "events_retry ATTEMPTS must be a number from 1 to 100");
  s.events.backoff_min = *min;
  s.events.backoff_max = *max;
  s.events.max_attempts = static_cast<uint32_t>(attempts);
  return true;
}

// `events_log_rate LINES BYTES | off`: log events and message bytes per second per isolate.
bool eventsLogRate(const config::Node& node, CompileContext& ctx, RuntimeSettings& s) {
  if (node.args.size() == 1 && node.args[0] == "off") {
    s.events_log_lines = 0;
    s.events_log_bytes = 0;
    return true;
  }
  if (node.args.size() != 2) return ctx.fail(node, "events_log_rate takes LINES BYTES or off");
  uint64_t lines = 0;
  if (!ctx.countArg(node, 1, 1000000, lines)) return false;
  auto bytes = config::parseSize(node.args[1]);
  if (!bytes || *bytes < 1024)
    return ctx.fail(node, "events_log_rate BYTES must be a size of at least 1k");
  s.events_log_lines = static_cast<uint32_t>(lines);
  s.events_log_bytes = *bytes;
  return true;
}

}  // namespace

std::string defaultDenoPath(const std::string& prefix) {
  if (const char* env = std::getenv("SUBGATE_DENO"); env && *env) return env;
  for (const std::string& root : {std::string(SUBGATE_SOURCE_DIR), prefix}) {
    for (const char* relative :
         {"/node_modules/deno/deno", "/node_modules/@deno/linux-x64-glibc/deno",
          "/node_modules/@deno/linux-arm64-glibc/deno"}) {
      std::string path = root + relative;
      if (access(path.c_str(), X_OK) == 0) return path;
    }
  }
  return std::string(SUBGATE_SOURCE_DIR) + "/node_modules/deno/deno";
}

// `v8_flags FLAG...`: each `--name` or `--name=value`, printable, without a comma (Deno splits
// --v8-flags on commas) or a space; none at all clears subgate's defaults.
bool v8Flags(const config::Node& node, CompileContext& ctx, RuntimeSettings& s) {
  s.v8_flags.clear();
  for (const std::string& flag : node.args) {
    const bool printable = std::all_of(flag.begin(), flag.end(),
                                       [](char c) { return c > ' ' && c < 0x7f && c != ','; });
    if (flag.size() < 3 || !flag.starts_with("--") || !printable) {
      std::string error = "v8_flags: \"";
      error.append(flag).append("\" is not a V8 flag (--name or --name=value, no commas)");
      return ctx.fail(node, error);
    }
    s.v8_flags.push_back(flag);
  }
  return true;
}

bool compileRuntime(const config::Node& block, CompileContext& ctx, RuntimeSettings& s) {
  if (block.args[0] != "deno")
    return ctx.fail(block, "unknown runtime \"" + block.args[0] + "\" (only \"deno\")");
  const config::Node* process_memory = nullptr;
  const config::Node* port_exception = nullptr;  // the first egress_allow with a port
  for (const config::Node& node : block.children) {
    uint64_t n = 0;
    const std::string& name = node.name;
    bool ok = true;
    if (name == "deno_path") {
      s.deno_path = ctx.resolvePath(node.args[0]);
    } else if (name == "dir") {
      s.dir = ctx.resolvePath(node.args[0]);
    } else if (name == "spare") {
      ok = ctx.countArg(node, 0, 64, n);
      s.spare = static_cast<uint32_t>(n);
    } else if (name == "idle_timeout") {
      ok = ctx.durationArg(node, s.idle_timeout, true);
    } else if (name == "boot_timeout") {
      ok = ctx.durationArg(node, s.boot_timeout, true);
    } else if (name == "queue_timeout") {
      ok = ctx.durationArg(node, s.queue_timeout, true);
    } else if (name == "stop_timeout") {
      ok = ctx.durationArg(node, s.stop_timeout, true);
    } else if (name == "memory_limit") {
      ok = ctx.sizeArg(node, s.memory_limit, 16ull << 20);
    } else if (name == "v8_flags") {
      ok = v8Flags(node, ctx, s);
    } else if (name == "process_memory_limit") {
      ok = ctx.sizeArg(node, s.process_memory_limit, 32ull << 20);
      process_memory = &node;
    } else if (name == "cpu_block_limit") {
      ok = cpuBlockLimit(node, ctx, s);
    } else if (name == "cpu_limit") {
      ok = cpuLimit(node, ctx, s);
    } else if (name == "max_files") {
      ok = ctx.countArg(node, 16, 1048576, n);
      s.max_files = static_cast<uint32_t>(n);
    } else if (name == "max_processes") {
      ok = ctx.countArg(node, 16, 1000000, n);
      s.max_processes = static_cast<uint32_t>(n);
    } else if (name == "max_isolates") {
      ok = ctx.countArg(node, 1, 100000, n);
      s.max_isolates = static_cast<uint32_t>(n);
    } else if (name == "max_isolates_per_deployment") {
      ok = ctx.countArg(node, 1, 100000, n);
      s.max_isolates_per_deployment = static_cast<uint32_t>(n);
    } else if (name == "max_instances_per_deployment") {
      ok = ctx.countArg(node, 1, 100000, n);
      s.max_instances_per_deployment = static_cast<uint32_t>(n);
    } else if (name == "boot_cache") {
      ok = ctx.countArg(node, 1, 1000000, n);
      s.boot_cache = n;
    } else if (name == "bundle_max_bytes") {
      ok = ctx.sizeArg(node, n, 1024);
      s.bundle.max_bytes = n;
    } else if (name == "bundle_max_modules") {
      ok = ctx.countArg(node, 1, 1000000, n);
      s.bundle.max_modules = n;
    } else if (name == "bundle_max_module_size") {
      ok = ctx.sizeArg(node, n, 1024);
      s.bundle.max_module_bytes = n;
    } else if (name == "boot_failure_backoff") {
      ok = bootFailureBackoff(node, ctx, s);
    } else if (name == "sticky_ttl") {
      ok = ctx.durationArg(node, s.sticky_ttl);
    } else if (name == "sticky_max") {
      ok = ctx.countArg(node, 0, 10000000, n);
      s.sticky_max = n;
    } else if (name == "region") {
      s.region = node.args[0];
      const bool printable =
          !s.region.empty() && s.region.size() <= 64 &&
          std::all_of(s.region.begin(), s.region.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
          });
      if (!printable)
        ok = ctx.fail(
            node, "region \"" + s.region + "\" must be 1 to 64 letters, digits, '-', '_' or '.'");
    } else if (name == "events_batch_events") {
      ok = ctx.countArg(node, 1, 100000, n);
      s.events.max_events = n;
    } else if (name == "events_batch_bytes") {
      ok = ctx.sizeArg(node, n, 1024);
      s.events.max_bytes = n;
    } else if (name == "events_flush_interval") {
      ok = ctx.durationArg(node, s.events.flush_interval, true);
    } else if (name == "events_queue") {
      ok = ctx.countArg(node, 1, 10000000, n);
      s.events.queue_max = n;
    } else if (name == "events_retry") {
      ok = eventsRetry(node, ctx, s);
    } else if (name == "events_timeout") {
      ok = ctx.durationArg(node, s.events_timeout, true);
    } else if (name == "events_log_rate") {
      ok = eventsLogRate(node, ctx, s);
    } else if (name == "isolate_log_level") {
      LogLevel level;
      s.isolate_log = node.args[0] != "off";
      s.isolate_log_level.reset();
      if (s.isolate_log && !parseLogLevel(node.args[0], level))
        ok = ctx.fail(node, "isolate_log_level takes debug, info, notice, warn, error or off");
      else if (s.isolate_log)
        s.isolate_log_level = level;
    } else if (name == "cluster_timeout") {
      ok = ctx.durationArg(node, s.cluster_timeout, true);
    } else if (name == "origin_connect_timeout") {
      ok = ctx.durationArg(node, s.origin.connect_timeout, true);
    } else if (name == "origin_timeout") {
      ok = ctx.durationArg(node, s.origin.total_timeout, true);
    } else if (name == "origin_max_response") {
      ok = ctx.sizeArg(node, n, 1024);
      s.origin.max_response_bytes = n;
    } else if (name == "sandbox") {
      ok = ctx.flagArg(node, s.sandbox.enabled);
    } else if (name == "sandbox_bwrap") {
      s.sandbox.bwrap = ctx.resolvePath(node.args[0]);
    } else if (name == "sandbox_uids") {
      uint64_t count = 0;
      ok = ctx.countArg(node, 1, 0xfffffffe, n);
      config::Node second = node;
      second.args.erase(second.args.begin());
      if (ok) ok = ctx.countArg(second, 1, 0xffffffffull - n, count);
      s.sandbox.uid_base = static_cast<uint32_t>(n);
      s.sandbox.uid_count = static_cast<uint32_t>(count);
    } else if (name == "egress_allow" || name == "egress_deny") {
      const bool allow = name == "egress_allow";
      for (const std::string& arg : node.args) {
        EgressEntry entry;
        std::string error;
        if (!parseEgressEntry(arg, allow, entry, error)) {
          ok = ctx.fail(node, name + " " + error);
          break;
        }
        if (allow) {
          s.sandbox.egress.allow.push_back(entry);
          if (entry.port != 0 && !port_exception) port_exception = &node;
        } else {
          s.sandbox.egress.deny.push_back(entry.range);
        }
      }
    } else if (name == "origin_ca_file") {
      s.origin.ca_file = ctx.resolvePath(node.args[0]);
      if (access(s.origin.ca_file.c_str(), R_OK) != 0)
        ok = ctx.fail(node, "cannot read origin_ca_file \"" + s.origin.ca_file + "\"");
    }
    if (!ok) return false;
  }
  // The V8 heap lives inside the process: a process cap below it would turn every heap OOM
  // into a kernel kill.
  if (process_memory && s.process_memory_limit < s.memory_limit)
    return ctx.fail(*process_memory, "process_memory_limit must be at least memory_limit");
  // Only the sandbox's kernel check sees ports: without it the whole address would be open.
  if (port_exception && !s.sandbox.enabled)
    return ctx.fail(*port_exception,
                    "egress_allow with a port needs the sandbox (`sandbox on;`): Deno's "
                    "permissions alone would open every port of that address");
  return true;
}

}  // namespace subgate
