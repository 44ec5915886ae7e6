// One event of the origin's events RPC (protocol.md §3, docs/origin.md "Events") and its wire
// form: a line of newline-delimited JSON.
//
// Contract: pure functions, any thread. Text from user code (log messages, exception messages)
// may be any bytes: the encoder writes valid JSON and valid UTF-8 whatever it gets (invalid
// sequences become U+FFFD).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace subgate {

enum class EventType { kBoot, kBootFailure, kLog, kUncaughtException, kMemoryLimit, kTimeLimit };

// "boot", "bootFailure", "log", "uncaughtException", "memoryLimit", "timeLimit".
std::string_view eventTypeName(EventType type);

// The level of a `log` event: what the harness reports for console.debug / info (and log) /
// warn / error; raw output lines count as info (stdout) or error (stderr).
enum class LogEventLevel { kDebug, kInfo, kWarn, kError };
std::string_view logEventLevelName(LogEventLevel level);
// Parses "debug" | "info" | "warn" | "error".
bool parseLogEventLevel(std::string_view text, LogEventLevel& level);

struct EventRecord {
  std::string deployment_id;
  std::chrono::system_clock::time_point time;
  EventType type = EventType::kLog;
  std::string payload;  // the `event` object, as JSON (bootPayload() and the others below)
  std::string execution_id;
  std::string region;
};

// {"boot_time":SECONDS} with millisecond precision.
std::string bootPayload(std::chrono::nanoseconds boot_time);
// {"msg":MSG} (bootFailure, uncaughtException, memoryLimit, timeLimit).
std::string messagePayload(std::string_view msg);
// {"msg":MSG,"level":LEVEL}, and "request_id":ID when the output came from a request's handler
// (a subgate addition inside the event object: the six top-level fields stay as they are).
std::string logPayload(std::string_view msg, LogEventLevel level, std::string_view request_id = {});

// RFC 3339 in UTC with milliseconds: "2026-12-06T23:50:45.123Z".
std::string rfc3339Millis(std::chrono::system_clock::time_point time);

// The NDJSON line of `event`, newline included:
// {"deployment_id":..,"timestamp":..,"event_type":..,"event":{..},"execution_id":..,"region":..}
std::string encodeEventLine(const EventRecord& event);

// Appends `text` as a JSON string (quotes included): control characters escaped, invalid UTF-8
// replaced by U+FFFD.
void appendJsonText(std::string& out, std::string_view text);

}  // namespace subgate
