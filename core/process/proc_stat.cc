#include "core/process/proc_stat.h"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
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

std::optional<std::chrono::nanoseconds> processCpuTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  auto ticks = parseStatCpuTicks(line);
  static const long kTicksPerSecond = sysconf(_SC_CLK_TCK);
  if (!ticks || kTicksPerSecond <= 0) return std::nullopt;
  return std::chrono::nanoseconds(*ticks *
                                  (1000000000ull / static_cast<uint64_t>(kTicksPerSecond)));
}

namespace {

std::optional<std::chrono::nanoseconds> treeCpuTime(pid_t pid, int depth) {
  auto total = processCpuTime(pid);
  if (!total || depth == 0) return total;
  std::error_code ec;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream children(task.path() / "children");
    for (pid_t child; children >> child;)
      *total += treeCpuTime(child, depth - 1).value_or(std::chrono::nanoseconds(0));
  }
  return total;
}

}  // namespace

std::optional<std::chrono::nanoseconds> processTreeCpuTime(pid_t pid) {
  return treeCpuTime(pid, 8);  // deep enough for a launcher or two; bounded against loops
}

}  // namespace subgate
