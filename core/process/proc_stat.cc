#include "core/process/proc_stat.h"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace subgate {

std::optional<uint64_t> parseStatCpuTicks(std::string_view stat) {
  size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(paren + 1);
  // After ')': state (field 3) ... utime (14), stime (15): the 12th and 13th fields here.
  uint64_t total = 0;
  for (int field = 3; field <= 15; ++field) {
    size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(start);
    size_t end = rest.find_first_of(" \n");
    std::string_view token = rest.substr(0, end);
    if (field >= 14) {
      uint64_t value = 0;
      auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
      if (ec != std::errc() || ptr != token.data() + token.size()) return std::nullopt;
      total += value;
    }
    if (end == std::string_view::npos) {
      if (field < 15) return std::nullopt;
      break;
    }
    rest.remove_prefix(end);
  }
  return total;
}

namespace {

std::optional<std::chrono::nanoseconds> statCpuTime(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  auto ticks = parseStatCpuTicks(line);
  static const long kTicksPerSecond = sysconf(_SC_CLK_TCK);
  if (!ticks || kTicksPerSecond <= 0) return std::nullopt;
  return std::chrono::nanoseconds(*ticks *
                                  (1000000000ull / static_cast<uint64_t>(kTicksPerSecond)));
}

// The CPU time of `pid` (all its threads, or its main thread only) plus its descendants'.
std::optional<std::chrono::nanoseconds> treeCpuTime(pid_t pid, bool main_thread, int depth) {
  const std::string proc = "/proc/" + std::to_string(pid);
  auto total =
      statCpuTime(main_thread ? proc + "/task/" + std::to_string(pid) + "/stat" : proc + "/stat");
  if (!total || depth == 0) return total;
  // Error codes, not exceptions: threads come and go while their folder is read.
  using std::filesystem::directory_iterator;
  std::error_code ec;
  for (directory_iterator task(proc + "/task", ec); !ec && task != directory_iterator();
       task.increment(ec)) {
    std::ifstream children(task->path() / "children");
    for (pid_t child; children >> child;)
      *total += treeCpuTime(child, main_thread, depth - 1).value_or(std::chrono::nanoseconds(0));
  }
  return total;
}

// Deep enough for a launcher or two; bounded against anything odd in /proc.
constexpr int kMaxDepth = 8;

}  // namespace

std::optional<std::chrono::nanoseconds> processCpuTime(pid_t pid) {
  return statCpuTime("/proc/" + std::to_string(pid) + "/stat");
}

std::optional<std::chrono::nanoseconds> processTreeCpuTime(pid_t pid) {
  return treeCpuTime(pid, false, kMaxDepth);
}

std::optional<std::chrono::nanoseconds> mainThreadsCpuTime(pid_t pid) {
  return treeCpuTime(pid, true, kMaxDepth);
}

bool isInProcessTree(pid_t pid, pid_t ancestor) {
  for (int level = 0; level < 16 && pid > 1; ++level) {
    if (pid == ancestor) return true;
    std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(file, line)) return false;
    // Field 4, the parent, after the command name in parentheses (which may hold both).
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos) return false;
    std::istringstream fields(line.substr(paren + 1));
    std::string state;
    pid_t parent = 0;
    if (!(fields >> state >> parent)) return false;
    pid = parent;
  }
  return false;
}

}  // namespace subgate
