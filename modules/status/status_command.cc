#include "modules/status/status_command.h"

#include <jansson.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "core/http_client/http_client.h"
#include "modules/status/status_table.h"

namespace subgate {
namespace {

constexpr const char* kUsage =
    "usage: subgate status [--watch [--interval SECONDS] [--count N]] [URL]\n"
    "       (default URL http://127.0.0.1:8081/status; --interval 2; --count: until interrupted)\n";

struct Arguments {
  std::string url = "http://127.0.0.1:8081/status";
  bool watch = false;
  std::chrono::milliseconds interval{2000};
  long count = 0;  // 0: until interrupted
};

bool parseArguments(int argc, char** args, Arguments& out) {
  bool have_url = false;
  bool watch_options = false;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = args[i];
    if (arg == "--watch") {
      out.watch = true;
    } else if ((arg == "--interval" || arg == "--count") && i + 1 < argc) {
      watch_options = true;
      char* end = nullptr;
      const char* value = args[++i];
      if (arg == "--interval") {
        const double seconds = std::strtod(value, &end);
        // At least 0.1 s: a watch must not turn into a load test of the status location.
        if (end == value || *end != '\0' || !(seconds >= 0.1) || seconds > 86400) return false;
        out.interval = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
      } else {
        out.count = std::strtol(value, &end, 10);
        if (end == value || *end != '\0' || out.count < 1) return false;
      }
    } else if (!arg.starts_with("-") && !have_url) {
      out.url = std::string(arg);
      have_url = true;
    } else {
      return false;
    }
  }
  return out.watch || !watch_options;
}

// One GET of the status JSON: the parsed document, or null with `error` set.
json_t* fetchStatus(const HttpUrl& url, std::string& error) {
  HttpClientOptions options;
  options.connect_timeout = std::chrono::seconds(2);
  options.total_timeout = std::chrono::seconds(5);
  HttpResult result = httpGet(url, {{"Accept", "application/json"}}, options);
  if (result.error != HttpClientError::kNone) {
    error = result.message;
    return nullptr;
  }
  json_error_t parse_error;
  json_t* status =
      json_loadb(result.response.body.data(), result.response.body.size(), 0, &parse_error);
  if (result.response.status != 200 || !json_is_object(status)) {
    error = url.text;
    error += " answered ";
    error += std::to_string(result.response.status);
    if (!status) error += " without JSON";
    error += '\n';
    error += result.response.body;
    json_decref(status);
    return nullptr;
  }
  return status;
}

int watch(const HttpUrl& url, const Arguments& arguments) {
  const bool terminal = isatty(STDOUT_FILENO) == 1;
  for (long round = 0; arguments.count == 0 || round < arguments.count; ++round) {
    if (round > 0) std::this_thread::sleep_for(arguments.interval);
    std::string error;
    json_t* status = fetchStatus(url, error);
    std::string screen;
    if (terminal) {
      screen = "\x1b[H\x1b[2J";  // home, clear the screen
    } else if (round > 0) {
      screen = "\n";
    }
    if (status) {
      screen += renderStatusTable(status, url.text);
    } else {
      screen += "subgate status: ";
      screen += error;
      if (screen.back() != '\n') screen += '\n';
    }
    json_decref(status);
    std::fwrite(screen.data(), 1, screen.size(), stdout);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int runStatusCommand(const ServerOptions&, int argc, char** args) {
  Arguments arguments;
  if (!parseArguments(argc, args, arguments)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string error;
  auto url = parseHttpUrl(arguments.url, error);
  if (!url) {
    std::fprintf(stderr, "subgate status: %s\n", error.c_str());
    return 2;
  }
  if (arguments.watch) return watch(*url, arguments);
  json_t* status = fetchStatus(*url, error);
  if (!status) {
    std::fprintf(stderr, "subgate status: %s", error.c_str());
    if (error.empty() || error.back() != '\n') std::fputc('\n', stderr);
    return 1;
  }
  char* text = json_dumps(status, JSON_INDENT(2) | JSON_SORT_KEYS);
  std::printf("%s\n", text ? text : "{}");
  free(text);
  json_decref(status);
  return 0;
}

}  // namespace subgate
