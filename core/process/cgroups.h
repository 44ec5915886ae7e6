// Child cgroups for child processes: a memory cap, a task (process and thread) cap and CPU time
// accounting per child, placed under this process's own cgroups so that an unprivileged or
// containerized subgate can use what was delegated to it. Each controller is looked for on its
// own: a cgroup v1 hierarchy where one is mounted for it (memory, pids, cpuacct), else the
// cgroup v2 hierarchy where this process's cgroup lists it (CPU time: cpu.stat, always there).
//
// Layout: <controller mount><own cgroup>/<group>/<child>, e.g.
// /sys/fs/cgroup/memory/process_api/abc/subgate-1234/iso-7. A child process joins its cgroups
// itself before exec (SpawnOptions::cgroup_procs), so its first instruction is already capped.
//
// Threading: open() and close() once each, on one thread; everything else is const and may be
// called from any thread in between (only the file system is touched).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subgate {

// Pure parsing, for tests.
// The folder of this process's cgroup for `controller` ("memory", "pids", "cpuacct"; "" for the
// v2 hierarchy) from /proc/self/cgroup and /proc/self/mountinfo; "" when it is not mounted.
std::string cgroupFolder(std::string_view proc_self_cgroup, std::string_view mountinfo,
                         std::string_view controller);
// The number after `key` on a "key N" line (memory.oom_control, memory.events, cpu.stat).
std::optional<uint64_t> keyedValue(std::string_view text, std::string_view key);

// A child cgroup's CPU time file kept open between reads (CgroupSet::cpuTime): one
// open per child rather than one per read (the limits tick reads it every 250 ms). Closed when
// destroyed or by close(). Threading: one thread.
class CgroupCpuFile {
 public:
  CgroupCpuFile() = default;
  CgroupCpuFile(const CgroupCpuFile&) = delete;
  CgroupCpuFile& operator=(const CgroupCpuFile&) = delete;
  ~CgroupCpuFile() { close(); }
  void close();

 private:
  friend class CgroupSet;
  int fd_ = -1;
};

class CgroupSet {
 public:
  struct Caps {
    uint64_t memory_bytes = 0;  // 0: no cap
    uint64_t tasks = 0;         // processes and threads; 0: no cap
  };

  CgroupSet() = default;
  CgroupSet(const CgroupSet&) = delete;
  CgroupSet& operator=(const CgroupSet&) = delete;
  ~CgroupSet() { close(); }

  // Finds the usable controllers and makes the folder `group` in each. Controllers it cannot
  // use (not mounted, not delegated, not writable) are left out; summary() says which. Before
  // that, removes the folders beside it for which `orphan(name)` is true, with their (empty)
  // children: the groups of a process that died without close().
  void open(const std::string& group, const std::function<bool(std::string_view)>& orphan);
  bool memory() const { return !memory_.empty(); }
  bool tasks() const { return !pids_.empty(); }
  bool cpu() const { return !cpu_.empty(); }
  // One line for the log: the folder used per controller, or why none is.
  const std::string& summary() const { return summary_; }

  // Makes the child cgroup `name` with `caps` (each only where its controller is usable) and
  // appends the cgroup.procs files a process writes itself into. False with `error`.
  bool create(const std::string& name, const Caps& caps, std::vector<std::string>& procs,
              std::string& error) const;
  // How many processes the kernel's OOM killer killed in child `name` (0 when unknown).
  uint64_t oomKills(const std::string& name) const;
  // The CPU time the processes of child `name` used, or nullopt without CPU accounting; read
  // through `file`, opened (close-on-exec) at its first use and read again from its start
  // after; closed again when a read fails.
  std::optional<std::chrono::nanoseconds> cpuTime(const std::string& name,
                                                  CgroupCpuFile& file) const;
  // Removes child `name` once its processes exited (a cgroup with tasks cannot be removed):
  // false while some folder is still there. Then killAll() and try again later: a process that
  // outlived the one subgate watched (inside a sandbox, say) may still be leaving.
  bool remove(const std::string& name) const;
  // SIGKILL to every process left in child `name`.
  void killAll(const std::string& name) const;
  // Removes the group folders (their children must be gone).
  void close();

 private:
  std::string memory_;  // group folders, "" where unusable
  std::string pids_;
  std::string cpu_;
  bool memory_v2_ = false;
  bool pids_v2_ = false;
  bool cpu_v2_ = false;
  std::string summary_;
  // Parses the text of a child's CPU time file (cpu.stat or cpuacct.usage).
  std::optional<std::chrono::nanoseconds> parseCpuTime(std::string_view text) const;
  std::string cpuTimePath(const std::string& name) const;
};

}  // namespace subgate
