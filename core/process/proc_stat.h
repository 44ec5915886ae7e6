// The CPU time of running processes from /proc/PID/stat: user plus system time of all their
// threads, or of their main threads only, in clock ticks (sysconf(_SC_CLK_TCK), usually 10 ms
// each); and ProcessTreeCpu, which finds a process tree once and then reads only its members'
// stat files, for a caller that samples the same tree again and again (the isolates' limits
// tick).
//
// Threading: the free functions are pure or read /proc only, on any thread. A ProcessTreeCpu
// belongs to one thread.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace subgate {

// The fields of a /proc/PID/stat line the limits need.
struct StatFields {
  uint64_t cpu_ticks = 0;   // utime + stime (fields 14 and 15)
  uint64_t start_time = 0;  // starttime (field 22), in ticks since boot: tells a reused pid
};
// Parses a /proc/PID/stat (or /proc/PID/task/TID/stat) line. The command name (field 2, in
// parentheses) may hold spaces and parentheses: fields are counted after the last ')'. Nullopt
// when the line is malformed.
std::optional<StatFields> parseStatFields(std::string_view stat);
// utime + stime of a stat line, in clock ticks (parseStatFields without needing field 22).
std::optional<uint64_t> parseStatCpuTicks(std::string_view stat);

// Reads the small /proc (or cgroup) file `path` into `buffer` with open/read/close, no heap:
// the text read, or nullopt when it cannot be opened or read. A file longer than `size` is cut
// there (the stat fields above end within its first 512 bytes).
std::optional<std::string_view> readSmallFile(const char* path, char* buffer, size_t size);

// The CPU time `pid` used so far; nullopt when it is gone or /proc is unreadable.
std::optional<std::chrono::nanoseconds> processCpuTime(pid_t pid);

// A process in a tree, told from a later process with the same pid by its start time.
struct TreeMember {
  pid_t pid = 0;
  uint64_t start_time = 0;
};
// `root` and its living descendants (root first), found through /proc/PID/task/TID/children of
// every thread (a child's parent may be any thread), at most 8 levels deep. Empty when `root`
// is gone.
std::vector<TreeMember> findProcessTree(pid_t root);

// The CPU time of a process tree sampled again and again, cheaply: the tree is found at the
// first read (findProcessTree: some 30 files for a Deno under two bubblewraps, one per thread),
// and each read after that reads only the stat files of the members it knows, which it holds
// open (pread: no path lookup, the cost of opening a /proc file; one or two files per member,
// close-on-exec). A file held open reads its own process for good, never a later one with the
// same pid. So that a process started later cannot hide its CPU time, the tree is found again
// every `refresh` and at once when a known member is gone. A member found later counts with all
// the CPU time it used since it started.
class ProcessTreeCpu {
 public:
  ProcessTreeCpu(pid_t root, std::chrono::steady_clock::duration refresh)
      : root_(root), refresh_(refresh) {}
  ~ProcessTreeCpu();
  ProcessTreeCpu(const ProcessTreeCpu&) = delete;
  ProcessTreeCpu& operator=(const ProcessTreeCpu&) = delete;

  struct Times {
    // The main thread's (/proc/P/task/P/stat) of each member, when asked for: where a runtime
    // runs its event loop, without its helper and worker threads.
    std::optional<std::chrono::nanoseconds> main_threads;
    // Every thread's of each member (a launcher such as bubblewrap runs the real program as its
    // child), when asked for.
    std::optional<std::chrono::nanoseconds> all_threads;
  };
  // Samples the tree at `now`; both nullopt when the root is gone.
  Times read(std::chrono::steady_clock::time_point now, bool main_threads, bool all_threads);

  pid_t root() const { return root_; }
  // The members as last found (empty before the first read), and how often they were found.
  const std::vector<TreeMember>& members() const { return members_; }
  uint64_t discoveries() const { return discoveries_; }

 private:
  // Reads the known members' files into `times`; false when one of them is gone (with
  // `skip_gone`, only when the root is: a descendant gone is left out and `skipped` set).
  bool readMembers(bool main_threads, bool all_threads, bool skip_gone, Times& times,
                   bool& skipped);
  void discover(std::chrono::steady_clock::time_point now);

  pid_t root_;
  std::chrono::steady_clock::duration refresh_;
  std::vector<TreeMember> members_;
  std::vector<std::array<int, 2>> fds_;  // per member: its main thread's and its stat file
  std::chrono::steady_clock::time_point found_at_{};
  uint64_t discoveries_ = 0;
  bool stale_ = false;  // a member went missing at the last read: find the tree at the next
};

// Whether `pid` is `ancestor` or one of its descendants (parents followed through
// /proc/PID/stat, at most 16 levels). False when either is gone.
bool isInProcessTree(pid_t pid, pid_t ancestor);

}  // namespace subgate
