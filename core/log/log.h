// The error log: leveled lines to stderr or a file, safe from any thread.
//
// One line per call, written with a single write(2) so lines from different threads never
// interleave. The sink and level are process-wide; setErrorLog() is called by the main thread
// at startup and on reload.
#pragma once

#include <cstdarg>
#include <string>
#include <string_view>

namespace subgate {

enum class LogLevel { kDebug, kInfo, kNotice, kWarn, kError };

// Parses "debug" | "info" | "notice" | "warn" | "error".
bool parseLogLevel(std::string_view text, LogLevel& level);

// Opens the sink ("stderr" or a file path, appended). Returns false with `err` set on failure;
// the previous sink is kept then.
bool setErrorLog(const std::string& target, LogLevel level, std::string& err);

// Opens the error log's file again at its path onto the same descriptor (SIGUSR1, main thread;
// log_file.h); nothing to do for stderr. False with `err` set when it cannot be opened.
bool reopenErrorLog(std::string& err);
// Opens `path` for appending and moves the new file onto descriptor `target_fd` (dup2), so that
// writers on any thread use the old file or the new one, never a closed descriptor. False with
// `err` set; the old file then stays in use. (reopenErrorLog, LogFile::reopen.)
bool reopenOnto(const std::string& path, int target_fd, std::string& err);

bool logEnabled(LogLevel level);

// printf-style; a newline is added. Written whatever the level: callers check logEnabled() first
// (the LOG_* macros below do).
void logf(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

// Writes a whole preformatted line (newline included) to the error log, unconditionally.
void logRaw(std::string_view line);

// Appends `text` for an error log line: each control byte (below 0x20, and DEL) as \xhh, every
// other byte as it is. Text from outside (user code's output and errors, a script's message)
// can then neither start a line of its own, hide the rest of one (a NUL ends a %s) nor write
// terminal escapes.
void appendLogSafe(std::string& out, std::string_view text);
// The same, as a string of its own.
std::string logSafe(std::string_view text);

}  // namespace subgate

#define SUBGATE_LOG(level, ...)                                            \
  do {                                                                     \
    if (::subgate::logEnabled(level)) ::subgate::logf(level, __VA_ARGS__); \
  } while (0)
#define LOG_DEBUG(...) SUBGATE_LOG(::subgate::LogLevel::kDebug, __VA_ARGS__)
#define LOG_INFO(...) SUBGATE_LOG(::subgate::LogLevel::kInfo, __VA_ARGS__)
#define LOG_NOTICE(...) SUBGATE_LOG(::subgate::LogLevel::kNotice, __VA_ARGS__)
#define LOG_WARN(...) SUBGATE_LOG(::subgate::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) SUBGATE_LOG(::subgate::LogLevel::kError, __VA_ARGS__)
