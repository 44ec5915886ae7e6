// The CPU time of a running process from /proc/PID/stat: user plus system time of all its
// threads (of its children only with processTreeCpuTime), in clock ticks (sysconf(_SC_CLK_TCK),
// usually 10 ms each).
//
// Threading: pure or reading /proc only; any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace subgate {

// utime + stime (fields 14 and 15) of a /proc/PID/stat line, in clock ticks. The command name
// (field 2, in parentheses) may hold spaces and parentheses: fields are counted after the last
// ')'. Nullopt when the line is malformed.
std::optional<uint64_t> parseStatCpuTicks(std::string_view stat);

// The CPU time `pid` used so far; nullopt when it is gone or /proc is unreadable.
std::optional<std::chrono::nanoseconds> processCpuTime(pid_t pid);
// The same for `pid` and its living descendants (a launcher such as bubblewrap runs the real
// program as its child), from /proc/PID/task/TID/children. Nullopt when `pid` is gone.
std::optional<std::chrono::nanoseconds> processTreeCpuTime(pid_t pid);
// The CPU time of the main thread (/proc/P/task/P/stat) of `pid` and of each of its living
// descendants: where a runtime runs its event loop, without its helper and worker threads.
std::optional<std::chrono::nanoseconds> mainThreadsCpuTime(pid_t pid);

// Whether `pid` is `ancestor` or one of its descendants (parents followed through
// /proc/PID/stat, at most 16 levels). False when either is gone.
bool isInProcessTree(pid_t pid, pid_t ancestor);

}  // namespace subgate
