// Starts a child program with its stdin, stdout and stderr on pipes, a clean environment, its
// own process group (a terminal's Ctrl-C reaches subgate, which stops children its own way) and
// PR_SET_PDEATHSIG(SIGKILL), so that it never outlives subgate, even after `kill -9`. A pidfd
// tells when it exited. Optionally (SpawnOptions) the child sets resource limits and joins
// cgroups before it executes the program, so that no instruction of the program runs outside
// them.
//
// The child is started with clone(CLONE_VM | CLONE_VFORK), as posix_spawn does: it runs in the
// caller's memory, on its own stack, until it executes the program, and the calling thread waits
// until then; no page table is copied (a fork would stall subgate's other threads).
//
// Threading: spawnChild() may be called from any long-lived thread. The death signal follows
// the thread that started the child, so callers must not spawn from threads that end before the
// process.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "core/process/confinement.h"

namespace subgate {

struct ChildProcess {
  pid_t pid = -1;
  int pidfd = -1;      // readable once the child exited
  int stdin_fd = -1;   // write end, non-blocking
  int stdout_fd = -1;  // read end, non-blocking
  int stderr_fd = -1;  // read end, non-blocking
  // With a confinement that has notify_connect: the seccomp listener of the child's connect()
  // calls (core/process/connect_gate.h), non-blocking; else -1.
  int notify_fd = -1;
};

// What the child does to itself between its start and exec.
struct SpawnOptions {
  // setrlimit(resource, {value, value}) each; the value must not exceed the caller's hard limit
  // unless the caller may raise it.
  std::vector<std::pair<int, rlim_t>> rlimits;
  // `cgroup.procs` files (v1 or v2) the child writes itself into, in order.
  std::vector<std::string> cgroup_procs;
  // Applied last, after the limits and cgroups (it may drop the privileges they need).
  const PreparedConfinement* confinement = nullptr;
};

// argv[0] is the program path. False with `error` set when a pipe or the clone fails or the
// program cannot be executed (reported through a close-on-exec pipe, so a missing binary is an
// error here, not a child that exits at once; so is a limit, cgroup or confinement the child
// cannot take).
bool spawnChild(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                const std::string& cwd, ChildProcess& child, std::string& error,
                const SpawnOptions& options = {});

// Closes the parent's ends of the pipes and the pidfd (the process itself is not touched).
void closeChildFds(ChildProcess& child);

}  // namespace subgate
