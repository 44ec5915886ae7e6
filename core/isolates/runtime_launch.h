// Process-independent pieces of running Deno isolates: the command line and environment a
// runtime process is started with, and the cleanup of isolate folders that a killed subgate left
// behind.
//
// Threading: runtimeArgv() and runtimeEnv() are pure and may be called on any thread (the
// supervisor thread does); removeOrphanFolders() runs on the main thread at configuration.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/isolates/deno_config.h"
#include "core/isolates/runtime_settings.h"

namespace subgate {

// What starting a runtime process needs: a copy, because a reload may change the settings
// while the supervisor works.
struct RuntimeLaunch {
  RuntimeSettings settings;
  std::string harness_path;
  std::string deno_dir;
};

// The argv of a runtime process working in `dir` (its code in dir/code, its socket in dir/sock)
// for `code`, or a generic spare when `code` is null.
std::vector<std::string> runtimeArgv(const RuntimeLaunch& launch, const std::string& dir,
                                     const DeploymentCode* code);
// The whole environment of a runtime process.
std::vector<std::string> runtimeEnv(const RuntimeLaunch& launch);

// The file in an isolate folder (/tmp/subgate-XXXXXX) naming the pid of the subgate owning it.
inline constexpr std::string_view kOwnerFile = "owner.pid";

// Removes /tmp/subgate-* isolate folders whose subgate died without cleaning up (kill -9): they
// name their owner in owner.pid. Folders without it are not ours to touch.
void removeOrphanFolders();

}  // namespace subgate
