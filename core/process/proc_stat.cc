#include "core/process/proc_stat.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <string>

namespace subgate {
namespace {

// Calls `visit(field, token)` for the fields 3 to `last` of a stat line, counted after the last
// ')' (the command name may hold anything); false when there are fewer fields.
template <typename Visit>
bool visitStatFields(std::string_view stat, int last, Visit&& visit) {
  const size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos) return false;
  std::string_view rest = stat.substr(paren + 1);
  for (int field = 3; field <= last; ++field) {
    const size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return false;
    rest.remove_prefix(start);
    const size_t end = rest.find_first_of(" \n");
    if (!visit(field, rest.substr(0, end))) return false;
    if (end == std::string_view::npos) return field == last;
    rest.remove_prefix(end);
  }
  return true;
}

bool parseNumber(std::string_view token, uint64_t& value) {
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  return ec == std::errc() && ptr == token.data() + token.size();
}

// Enough for any stat line's first 22 fields (the pid, a command name of at most 64 bytes,
// then at most 20 digits a field).
constexpr size_t kStatBytes = 1024;

// Deep enough for a launcher or two; bounded against anything odd in /proc.
constexpr int kMaxDepth = 8;

std::chrono::nanoseconds ticksToTime(uint64_t ticks) {
  static const long kTicksPerSecond = sysconf(_SC_CLK_TCK);
  const uint64_t per_tick =
      kTicksPerSecond > 0 ? 1000000000ull / static_cast<uint64_t>(kTicksPerSecond) : 0;
  return std::chrono::nanoseconds(ticks * per_tick);
}

void statPath(pid_t pid, bool main_thread, char (&path)[64]) {
  if (main_thread)
    std::snprintf(path, sizeof path, "/proc/%d/task/%d/stat", static_cast<int>(pid),
                  static_cast<int>(pid));
  else
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
}

// /proc/PID/stat, or /proc/PID/task/PID/stat (its main thread's) with `main_thread`; -1 when
// it cannot be opened. Close-on-exec: a child process must never inherit it.
int openStat(pid_t pid, bool main_thread) {
  char path[64];
  statPath(pid, main_thread, path);
  return ::open(path, O_RDONLY | O_CLOEXEC);
}

// The same file read once.
std::optional<StatFields> readStat(pid_t pid, bool main_thread) {
  char path[64];
  statPath(pid, main_thread, path);
  char buffer[kStatBytes];
  const auto text = readSmallFile(path, buffer, sizeof buffer);
  if (!text) return std::nullopt;
  return parseStatFields(*text);
}

// Appends the living children of `pid` (every thread's) and theirs, down to `depth` levels.
void addDescendants(pid_t pid, int depth, std::vector<TreeMember>& members) {
  if (depth == 0) return;
  char folder[64];
  std::snprintf(folder, sizeof folder, "/proc/%d/task", static_cast<int>(pid));
  DIR* tasks = opendir(folder);
  if (!tasks) return;  // gone meanwhile
  std::vector<pid_t> children;
  while (const dirent* task = readdir(tasks)) {
    if (task->d_name[0] < '0' || task->d_name[0] > '9') continue;
    char path[352];  // the folder (< 64) and a file name (< 256)
    std::snprintf(path, sizeof path, "%s/%s/children", folder, task->d_name);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // a thread that ended meanwhile
    // Space-separated pids, read in pieces: a number may straddle two.
    char chunk[4096];
    uint64_t number = 0;
    bool in_number = false;
    for (;;) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (chunk[i] >= '0' && chunk[i] <= '9') {
          number = number * 10 + static_cast<uint64_t>(chunk[i] - '0');
          in_number = true;
        } else if (in_number) {
          children.push_back(static_cast<pid_t>(number));
          number = 0;
          in_number = false;
        }
      }
    }
    if (in_number) children.push_back(static_cast<pid_t>(number));
    ::close(fd);
  }
  closedir(tasks);
  for (pid_t child : children) {
    const auto stat = readStat(child, false);
    if (!stat) continue;  // exited meanwhile
    members.push_back({child, stat->start_time});
    addDescendants(child, depth - 1, members);
  }
}

}  // namespace

std::optional<StatFields> parseStatFields(std::string_view stat) {
  StatFields fields;
  const bool ok = visitStatFields(stat, 22, [&fields](int field, std::string_view token) {
    uint64_t value = 0;
    if (field == 14 || field == 15) {
      if (!parseNumber(token, value)) return false;
      fields.cpu_ticks += value;
    } else if (field == 22) {
      if (!parseNumber(token, value)) return false;
      fields.start_time = value;
    }
    return true;
  });
  if (!ok) return std::nullopt;
  return fields;
}

std::optional<uint64_t> parseStatCpuTicks(std::string_view stat) {
  uint64_t ticks = 0;
  const bool ok = visitStatFields(stat, 15, [&ticks](int field, std::string_view token) {
    if (field < 14) return true;
    uint64_t value = 0;
    if (!parseNumber(token, value)) return false;
    ticks += value;
    return true;
  });
  if (!ok) return std::nullopt;
  return ticks;
}

std::optional<std::string_view> readSmallFile(const char* path, char* buffer, size_t size) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  size_t used = 0;
  while (used < size) {
    const ssize_t n = ::read(fd, buffer + used, size - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;  // a process that died after the open: ESRCH
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
    // A /proc or cgroup file is made whole at the first read: a short one that ends a line is
    // all of it (saves the read that would return 0).
    if (used < size && buffer[used - 1] == '\n') break;
  }
  ::close(fd);
  return std::string_view(buffer, used);
}

std::optional<std::chrono::nanoseconds> processCpuTime(pid_t pid) {
  const auto stat = readStat(pid, false);
  if (!stat) return std::nullopt;
  return ticksToTime(stat->cpu_ticks);
}

std::vector<TreeMember> findProcessTree(pid_t root) {
  const auto stat = readStat(root, false);
  if (!stat) return {};
  std::vector<TreeMember> members{{root, stat->start_time}};
  addDescendants(root, kMaxDepth, members);
  return members;
}

ProcessTreeCpu::~ProcessTreeCpu() {
  for (const auto& pair : fds_)
    for (const int fd : pair)
      if (fd >= 0) ::close(fd);
}

void ProcessTreeCpu::discover(std::chrono::steady_clock::time_point now) {
  std::vector<TreeMember> found = findProcessTree(root_);
  // The files of members still there stay open; the others' are closed.
  std::vector<std::array<int, 2>> fds(found.size(), {-1, -1});
  for (size_t old = 0; old < members_.size(); ++old) {
    size_t kept = 0;
    while (kept < found.size() && !(found[kept].pid == members_[old].pid &&
                                    found[kept].start_time == members_[old].start_time))
      ++kept;
    if (kept < found.size() && !stale_) {
      fds[kept] = fds_[old];
      continue;
    }
    for (const int fd : fds_[old])
      if (fd >= 0) ::close(fd);
  }
  members_ = std::move(found);
  fds_ = std::move(fds);
  found_at_ = now;
  stale_ = false;
  ++discoveries_;
}

bool ProcessTreeCpu::readMembers(bool main_threads, bool all_threads, bool skip_gone, Times& times,
                                 bool& skipped) {
  uint64_t main_ticks = 0, all_ticks = 0;
  for (size_t i = 0; i < members_.size(); ++i) {
    const TreeMember& member = members_[i];
    for (const bool main_thread : {true, false}) {
      if (!(main_thread ? main_threads : all_threads)) continue;
      int& fd = fds_[i][main_thread ? 0 : 1];
      if (fd < 0) fd = openStat(member.pid, main_thread);
      // A file held open reads its own process for good: once that is gone (reaped), ESRCH,
      // whoever has its pid now.
      std::optional<StatFields> stat;
      char buffer[kStatBytes];
      if (fd >= 0) {
        ssize_t n;
        do n = ::pread(fd, buffer, sizeof buffer, 0);
        while (n < 0 && errno == EINTR);
        if (n > 0) stat = parseStatFields(std::string_view(buffer, static_cast<size_t>(n)));
      }
      if (!stat || stat->start_time != member.start_time) {
        if (!skip_gone || member.pid == root_) return false;
        skipped = true;
        break;
      }
      (main_thread ? main_ticks : all_ticks) += stat->cpu_ticks;
    }
  }
  if (main_threads) times.main_threads = ticksToTime(main_ticks);
  if (all_threads) times.all_threads = ticksToTime(all_ticks);
  return true;
}

ProcessTreeCpu::Times ProcessTreeCpu::read(std::chrono::steady_clock::time_point now,
                                           bool main_threads, bool all_threads) {
  Times times;
  bool skipped = false;
  if (members_.empty() || stale_ || now - found_at_ >= refresh_) discover(now);
  if (!members_.empty() && readMembers(main_threads, all_threads, false, times, skipped))
    return times;
  // A member is gone (or its pid is another process's now): the tree changed, find it again. A
  // descendant gone before this second read counts for nothing, as a process that exited does
  // in /proc, and the tree is found again at the next read.
  stale_ = true;  // no file kept: the one that failed may be among them
  discover(now);
  if (members_.empty() || !readMembers(main_threads, all_threads, true, times, skipped))
    return {};  // the root is gone
  stale_ = skipped;
  return times;
}

bool isInProcessTree(pid_t pid, pid_t ancestor) {
  for (int level = 0; level < 16 && pid > 1; ++level) {
    if (pid == ancestor) return true;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    char buffer[kStatBytes];
    const auto text = readSmallFile(path, buffer, sizeof buffer);
    if (!text) return false;
    // Field 4, the parent, after the command name in parentheses (which may hold both).
    uint64_t parent = 0;
    if (!visitStatFields(*text, 4, [&parent](int field, std::string_view token) {
          return field != 4 || parseNumber(token, parent);
        }))
      return false;
    pid = static_cast<pid_t>(parent);
  }
  return false;
}

}  // namespace subgate
