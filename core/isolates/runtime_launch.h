// Process-independent pieces of running Deno isolates: the command line and environment a
// runtime process is started with, and the cleanup of isolate folders that a killed subgate left
// behind.
//
// Threading: runtimeArgv() and runtimeEnv() are pure and may be called on any thread (the
// supervisor thread does); removeOrphanFolders() runs on the main thread at configuration.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/isolates/deno_config.h"
#include "core/isolates/runtime_settings.h"
#include "core/isolates/sandbox.h"

namespace subgate {

// What starting a runtime process needs: a copy, because a reload may change the settings
// while the supervisor works.
struct RuntimeLaunch {
  RuntimeSettings settings;
  std::string harness_path;
  std::shared_ptr<const SandboxPlan> sandbox;  // never null once configured
};

// The argv of a runtime process working in `dir` (its code in dir/root, its socket in dir/sock,
// its own Deno cache and storage in dir/deno) for `code`, or a generic spare when `code` is null:
// inside the sandbox (bubblewrap's command line first) unless it is off.
std::vector<std::string> runtimeArgv(const RuntimeLaunch& launch, const std::string& dir,
                                     const DeploymentCode* code);
// The whole environment of a runtime process working in `dir`. DENO_DIR is the isolate's own:
// its localStorage, Cache API and module cache live and die with it, and no isolate reads what
// another wrote (docs/security.md).
std::vector<std::string> runtimeEnv(const RuntimeLaunch& launch, const std::string& dir);

// Beside the harness: what its import map loads in place of node:net (node_net_shim.js), and
// that import map (`--import-map`).
std::string netShimPath(const std::string& harness_path);
std::string importMapPath(const std::string& harness_path);
// A one-line TypeScript module beside the harness that a spare loads before its code arrives:
// Deno's first TypeScript module costs milliseconds (its caches open), the next ones not.
std::string warmModulePath(const std::string& harness_path);
constexpr std::string_view kWarmModule = "export const warm: number = 1;\n";
// The import map's text for a shim at `shim_path`.
std::string importMapJson(const std::string& shim_path);

// The file in an isolate folder (/tmp/subgate-XXXXXX) naming the pid of the subgate owning it.
inline constexpr std::string_view kOwnerFile = "owner.pid";

// Removes /tmp/subgate-* isolate folders whose subgate died without cleaning up (kill -9): they
// name their owner in owner.pid. Folders without it are not ours to touch.
void removeOrphanFolders();

}  // namespace subgate
