#include "core/log/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace subgate {
namespace {

std::atomic<int> g_fd{STDERR_FILENO};
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

// The path behind g_fd ("stderr" or empty: nothing to reopen); written on the main thread.
std::mutex g_path_mutex;
std::string g_path;

constexpr const char* kLevelNames[] = {"debug", "info", "notice", "warn", "error"};

}  // namespace

bool parseLogLevel(std::string_view text, LogLevel& level) {
  for (int i = 0; i < 5; ++i) {
    if (text == kLevelNames[i]) {
      level = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

bool setErrorLog(const std::string& target, LogLevel level, std::string& err) {
  int fd = STDERR_FILENO;
  if (target != "stderr") {
    fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      err = "cannot open error log \"" + target + "\": " + std::strerror(errno);
      return false;
    }
  }
  {
    std::lock_guard<std::mutex> lock(g_path_mutex);
    g_path = target;
  }
  int old = g_fd.exchange(fd);
  // The old descriptor is left open if it was a file: another thread may be writing to it
  // right now, and a reload happens rarely enough that one descriptor per reload is cheap.
  (void)old;
  g_level.store(static_cast<int>(level));
  return true;
}

bool reopenErrorLog(std::string& err) {
  std::lock_guard<std::mutex> lock(g_path_mutex);
  if (g_path.empty() || g_path == "stderr") return true;
  return reopenOnto(g_path, g_fd.load(), err);
}

bool reopenOnto(const std::string& path, int target_fd, std::string& err) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  // dup2 swaps the file behind the descriptor number atomically: threads writing now finish
  // their line in the old file or the new one.
  if (fd < 0 || ::dup2(fd, target_fd) < 0) {
    err = "cannot reopen \"";
    err += path;
    err += "\": ";
    err += std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}

bool logEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void appendLogSafe(std::string& out, std::string_view text) {
  constexpr char kHex[] = "0123456789abcdef";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte != 0x7f) {
      out += c;
    } else {
      const char escaped[4] = {'\\', 'x', kHex[byte >> 4], kHex[byte & 0xf]};
      out.append(escaped, sizeof escaped);
    }
  }
}

std::string logSafe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  appendLogSafe(out, text);
  return out;
}

void logRaw(std::string_view line) {
  ssize_t ignored = ::write(g_fd.load(std::memory_order_relaxed), line.data(), line.size());
  (void)ignored;
}

void logf(LogLevel level, const char* format, ...) {
  char buf[4096];
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  int n = static_cast<int>(strftime(buf, sizeof buf, "%Y/%m/%d %H:%M:%S", &tm));
  n += std::snprintf(buf + n, sizeof buf - n, " [%s] ", kLevelNames[static_cast<int>(level)]);
  va_list args;
  va_start(args, format);
  int m = std::vsnprintf(buf + n, sizeof buf - n - 1, format, args);
  va_end(args);
  if (m < 0) m = 0;
  n = std::min<int>(n + m, sizeof buf - 2);
  buf[n++] = '\n';
  logRaw(std::string_view(buf, n));
}

}  // namespace subgate
