#include "modules/status/status_table.h"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

namespace subgate {
namespace {

constexpr size_t kMaxDeploymentColumn = 40;

uint64_t countOf(const json_t* object, const char* key) {
  const json_t* value = json_object_get(object, key);
  return json_is_integer(value) && json_integer_value(value) > 0
             ? static_cast<uint64_t>(json_integer_value(value))
             : 0;
}

std::string textOf(const json_t* object, const char* key) {
  const json_t* value = json_object_get(object, key);
  return json_is_string(value) ? std::string(json_string_value(value), json_string_length(value))
                               : std::string();
}

size_t columns(std::string_view text) {
  size_t n = 0;
  for (char c : text)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

std::string formatted(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string formatted(const char* format, ...) {
  char buffer[256];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  return std::string(buffer,
                     n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof buffer - 1));
}

std::string padRight(std::string text, size_t width) {
  const size_t used = columns(text);
  if (used < width) text.append(width - used, ' ');
  return text;
}

std::string padLeft(const std::string& text, size_t width) {
  const size_t used = columns(text);
  std::string out;
  if (used < width) out.append(width - used, ' ');
  out += text;
  return out;
}

// Requests per second of the last interval of the history: {all, 4xx, 5xx}; false before there
// are two samples.
bool lastRates(const json_t* status, double rates[3]) {
  const json_t* samples = json_object_get(json_object_get(status, "history"), "samples");
  const size_t n = json_array_size(samples);
  if (n < 2) return false;
  const json_t* a = json_array_get(samples, n - 2);
  const json_t* b = json_array_get(samples, n - 1);
  const double seconds = static_cast<double>(json_integer_value(json_object_get(b, "time_ms")) -
                                             json_integer_value(json_object_get(a, "time_ms"))) /
                         1000.0;
  if (seconds <= 0) return false;
  const json_t* ra = json_object_get(a, "requests");
  const json_t* rb = json_object_get(b, "requests");
  double by_class[5] = {};
  for (size_t k = 0; k < 5; ++k) {
    const json_int_t d =
        json_integer_value(json_array_get(rb, k)) - json_integer_value(json_array_get(ra, k));
    by_class[k] = d > 0 ? static_cast<double>(d) / seconds : 0;
  }
  rates[0] = by_class[0] + by_class[1] + by_class[2] + by_class[3] + by_class[4];
  rates[1] = by_class[3];
  rates[2] = by_class[4];
  return true;
}

std::string clockOf(const json_t* status) {
  const json_int_t ms = json_integer_value(json_object_get(status, "time_ms"));
  if (ms <= 0) return "-";
  const time_t seconds = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  if (!gmtime_r(&seconds, &tm)) return "-";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

struct Line {
  std::string deployment;
  uint64_t isolates = 0;
  uint64_t active = 0;
  uint64_t room = 0;  // isolate_limit x shared isolates
  uint64_t queued = 0;
  uint64_t sticky = 0;
};

}  // namespace

std::string terminalText(std::string_view text, size_t width) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      out += '?';
    } else if (c == 0xC2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) < 0xA0) {
      out += '?';  // a C1 control (U+0080..U+009F), which terminals may also obey
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (columns(out) <= width) return out;
  // Cut at a code point boundary, leaving room for "...".
  const size_t keep = width > 3 ? width - 3 : 0;
  size_t seen = 0;
  size_t cut = 0;
  for (; cut < out.size(); ++cut) {
    if ((static_cast<unsigned char>(out[cut]) & 0xC0) != 0x80) {
      if (seen == keep) break;
      ++seen;
    }
  }
  out.resize(cut);
  out += std::string_view("...").substr(0, std::min<size_t>(3, width));
  return out;
}

std::string renderStatusTable(const json_t* status, std::string_view source) {
  std::vector<Line> lines;
  const json_t* deployments = json_object_get(status, "deployments");
  size_t index;
  const json_t* d;
  json_array_foreach(deployments, index, d) {
    Line line;
    line.deployment = terminalText(textOf(d, "deployment_id"), kMaxDeploymentColumn);
    const json_t* isolates = json_object_get(d, "isolates");
    size_t shared = 0;
    size_t i;
    const json_t* isolate;
    json_array_foreach(isolates, i, isolate) {
      ++line.isolates;
      line.active += countOf(isolate, "active");
      if (textOf(isolate, "instance_id").empty()) ++shared;
    }
    line.room = countOf(d, "isolate_limit") * shared;
    line.queued = countOf(d, "queued");
    line.sticky = countOf(d, "sticky");
    lines.push_back(std::move(line));
  }
  std::sort(lines.begin(), lines.end(),
            [](const Line& a, const Line& b) { return a.deployment < b.deployment; });

  std::string out = "subgate status  ";
  out += terminalText(source, 80);
  out += "  ";
  out += clockOf(status);
  out += '\n';
  const json_t* requests = json_object_get(status, "requests");
  uint64_t total = 0;
  for (const char* k : {"1xx", "2xx", "3xx", "4xx", "5xx"}) total += countOf(requests, k);
  double rates[3];
  if (lastRates(status, rates)) {
    out += formatted("requests %.2f/s (4xx %.2f/s, 5xx %.2f/s)  ", rates[0], rates[1], rates[2]);
  } else {
    out += "requests -/s  ";
  }
  out += formatted("%" PRIu64 " since start (4xx %" PRIu64 ", 5xx %" PRIu64 ")\n", total,
                   countOf(requests, "4xx"), countOf(requests, "5xx"));
  out += formatted("isolates %" PRIu64 "  spares %" PRIu64 "  queued %" PRIu64 "  booted %" PRIu64
                   "  boot failures %" PRIu64 "\n",
                   countOf(status, "isolates"), countOf(status, "spares"),
                   countOf(status, "queued"), countOf(status, "ready"),
                   countOf(status, "boot_failures") + countOf(status, "isolate_boot_failures"));
  out += '\n';

  size_t width = 10;
  for (const Line& line : lines) width = std::max(width, columns(line.deployment));
  auto row = [&](const std::string& name, const std::string& isolates, const std::string& active,
                 const std::string& queued, const std::string& sticky) {
    out += padRight(name, width);
    out += padLeft(isolates, 10);
    out += padLeft(active, 14);
    out += padLeft(queued, 8);
    out += padLeft(sticky, 8);
    out += '\n';
  };
  auto activeText = [](uint64_t active, uint64_t room) {
    std::string text = std::to_string(active);
    text += '/';
    text += room > 0 ? std::to_string(room) : std::string("-");
    return text;
  };
  row("DEPLOYMENT", "ISOLATES", "ACTIVE/LIMIT", "QUEUED", "STICKY");
  Line sum;
  for (const Line& line : lines) {
    row(line.deployment, std::to_string(line.isolates), activeText(line.active, line.room),
        std::to_string(line.queued), std::to_string(line.sticky));
    sum.isolates += line.isolates;
    sum.active += line.active;
    sum.room += line.room;
    sum.queued += line.queued;
    sum.sticky += line.sticky;
  }
  if (lines.empty()) out += "(no deployment loaded)\n";
  row("TOTAL", std::to_string(sum.isolates), activeText(sum.active, sum.room),
      std::to_string(sum.queued), std::to_string(sum.sticky));
  return out;
}

}  // namespace subgate
