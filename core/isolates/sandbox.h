// The walls around each isolate process, below Deno's own permissions (docs/security.md):
//   - bubblewrap gives it its own user, mount, pid, ipc, uts and cgroup namespaces, no nested
//     user namespaces and no capabilities, and a root filesystem holding only the Deno binary and
//     its libraries, the harness, a few files of /etc that name resolution reads, its own folder
//     (code read-only; socket, Deno cache and storage writable) and an empty /tmp; it dies with
//     subgate;
//   - core/process/confinement.h: an unprivileged user when subgate is root (one uid per
//     isolate, from sandbox_uids), no new privileges, no TCP listening, a seccomp filter;
//   - Deno's `--deny-net` list from the egress policy (egress_policy.h), with or without the
//     sandbox.
//
// Threading: planSandbox() runs at configuration (main thread); the plan is immutable after and
// read by the supervisor thread for every launch.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/isolates/egress_policy.h"
#include "core/process/confinement.h"

namespace subgate {

struct SandboxSettings {
  bool enabled = true;         // `sandbox off;` runs isolates with Deno's permissions only
  std::string bwrap;           // sandbox_bwrap; empty: `bwrap` from PATH
  uint32_t uid_base = 200000;  // when subgate runs as root: isolate N runs as
  uint32_t uid_count = 65536;  //   uid = gid = uid_base + N % uid_count
  EgressRules egress;
};

struct SandboxPlan {
  bool enabled = false;
  std::string bwrap;  // the bubblewrap executable
  std::string deno;   // the Deno binary isolates run: a copy they can read where the configured
                      // one sits in a folder closed to them
  std::vector<std::string> visible;  // files bound read-only at their own path
  std::string deny_net;              // Deno's --deny-net value
  EgressGate gate;                   // the kernel's check of every connect() (sandbox on)
  bool change_user = false;          // subgate is root: isolates get their own uid
  uint32_t uid_base = 0;
  uint32_t uid_count = 1;
  PreparedConfinement confinement;  // its uid is set per isolate (isolateConfinement)
};

// Builds the plan for `deno_path` and `harness_path` and, when the sandbox is on, proves it by
// running `deno --version` inside it in `probe_dir` (whose parent is the isolate folder, where a
// copy of Deno goes when its own folder is closed to the isolates' users). False with `error`
// saying what is missing (bubblewrap, user namespaces) and how to opt out. `notes` gets what the
// kernel cannot provide.
bool planSandbox(const SandboxSettings& settings, const std::string& deno_path,
                 const std::string& harness_path, const std::string& probe_dir,
                 std::shared_ptr<const SandboxPlan>& plan, std::string& error,
                 std::vector<std::string>& notes);

// The user an isolate runs as (meaningful when plan.change_user).
uid_t isolateUid(const SandboxPlan& plan, uint64_t isolate_id);

// The confinement of isolate `isolate_id` (its own uid when subgate is root).
PreparedConfinement isolateConfinement(const SandboxPlan& plan, uint64_t isolate_id);

// The bubblewrap command line up to and including "--", for an isolate working in `dir`.
// The isolate's `/` is dir/root (read-only to it; subgate writes the deployment's local modules
// there at their own paths: module_path.h), with the mounts of sandboxMounts() over it; dir/sock
// and dir/deno are writable.
std::vector<std::string> sandboxArgv(const SandboxPlan& plan, const std::string& dir);

// Where the sandbox mounts something over the isolate's root (its /proc, /dev, /tmp, the Deno
// binary and its libraries, the harness, /etc files, `dir`): a module written under one of these
// would be hidden, and its reads are denied to user code.
std::vector<std::string> sandboxMounts(const SandboxPlan& plan, const std::string& dir);

// Makes `dir`, its writable subfolders and its root folder (where bubblewrap makes the mount
// points) belong to the isolate's user (root only).
bool handDirToIsolate(const SandboxPlan& plan, uint64_t isolate_id, const std::string& dir,
                      std::string& error);

}  // namespace subgate
