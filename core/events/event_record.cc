#include "core/events/event_record.h"

#include <cstdio>
#include <ctime>

#include "core/log/json_text.h"

namespace subgate {

std::string_view eventTypeName(EventType type) {
  switch (type) {
    case EventType::kBoot: return "boot";
    case EventType::kBootFailure: return "bootFailure";
    case EventType::kLog: return "log";
    case EventType::kUncaughtException: return "uncaughtException";
    case EventType::kMemoryLimit: return "memoryLimit";
    case EventType::kTimeLimit: return "timeLimit";
  }
  return "log";
}

std::string_view logEventLevelName(LogEventLevel level) {
  switch (level) {
    case LogEventLevel::kDebug: return "debug";
    case LogEventLevel::kInfo: return "info";
    case LogEventLevel::kWarn: return "warn";
    case LogEventLevel::kError: return "error";
  }
  return "info";
}

bool parseLogEventLevel(std::string_view text, LogEventLevel& level) {
  for (LogEventLevel candidate :
       {LogEventLevel::kDebug, LogEventLevel::kInfo, LogEventLevel::kWarn, LogEventLevel::kError}) {
    if (text == logEventLevelName(candidate)) {
      level = candidate;
      return true;
    }
  }
  return false;
}

void appendJsonText(std::string& out, std::string_view text) {
  out += '"';
  appendJsonStringBody(out, text);
  out += '"';
}

std::string bootPayload(std::chrono::nanoseconds boot_time) {
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(boot_time).count();
  char buf[48];
  std::snprintf(buf, sizeof buf, "{\"boot_time\":%lld.%03lld}",
                static_cast<long long>(millis / 1000), static_cast<long long>(millis % 1000));
  return buf;
}

std::string messagePayload(std::string_view msg) {
  std::string out = "{\"msg\":";
  appendJsonText(out, msg);
  out += '}';
  return out;
}

std::string logPayload(std::string_view msg, LogEventLevel level, std::string_view request_id) {
  std::string out = "{\"msg\":";
  appendJsonText(out, msg);
  out += ",\"level\":\"";
  out += logEventLevelName(level);
  out += '"';
  if (!request_id.empty()) {
    out += ",\"request_id\":";
    appendJsonText(out, request_id);
  }
  out += '}';
  return out;
}

std::string rfc3339Millis(std::chrono::system_clock::time_point time) {
  using std::chrono::duration_cast;
  const auto since = time.time_since_epoch();
  auto millis = duration_cast<std::chrono::milliseconds>(since).count();
  long long seconds = millis / 1000;
  long long rest = millis % 1000;
  if (rest < 0) {  // before 1970: floor, not truncate
    rest += 1000;
    --seconds;
  }
  const time_t t = static_cast<time_t>(seconds);
  tm parts{};
  gmtime_r(&t, &parts);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", parts.tm_year + 1900,
                parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, rest);
  return buf;
}

std::string encodeEventLine(const EventRecord& event) {
  std::string out = "{\"deployment_id\":";
  appendJsonText(out, event.deployment_id);
  out += ",\"timestamp\":\"";
  out += rfc3339Millis(event.time);
  out += "\",\"event_type\":\"";
  out += eventTypeName(event.type);
  out += "\",\"event\":";
  out += event.payload.empty() ? std::string_view("{}") : std::string_view(event.payload);
  out += ",\"execution_id\":";
  appendJsonText(out, event.execution_id);
  out += ",\"region\":";
  appendJsonText(out, event.region);
  out += "}\n";
  return out;
}

}  // namespace subgate
