#include "modules/access_log/access_log_module.h"

#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>

#include "core/log/log_file.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"
#include "modules/access_log/log_format.h"

namespace subgate {
namespace {

// How a location's lines are written: a compiled log_format, or a built-in.
struct AccessLogConf final : ModuleConf {
  std::shared_ptr<LogFile> file;
  enum class Kind { kCombined, kJson, kCustom } kind = Kind::kCombined;
  std::shared_ptr<const LogFormat> format;  // kCustom
};

// The `log_format` blocks of a config, by name (main-level compiled data).
using FormatTable = std::map<std::string, std::shared_ptr<const LogFormat>, std::less<>>;

constexpr DirectiveSpec kDirectives[] = {
    {"access_log", kMainContext | kServerContext | kLocationContext, 1, 2},
    {"log_format", kMainContext, 2, -1, false, true},
};

// nginx's combined, compiled once: remote - - [time] "request" status bytes "referer" "agent".
const LogFormat& combinedFormat() {
  static const LogFormat kCombined = [] {
    LogFormat f;
    std::string error;
    const std::string text =
        R"($remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" )"
        R"("$http_user_agent")";
    LogFormat::compile(std::span<const std::string>(&text, 1), LogEscape::kDefault, f, error);
    return f;
  }();
  return kCombined;
}

void appendMs(std::string& out, SteadyTime::duration d) {
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.3f", std::chrono::duration<double, std::milli>(d).count());
  out += ms;
}

// The built-in `json` format: the same values as the log variables, one JSON object a line.
void appendJsonLine(const Request& req, std::string& line) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  char time_buf[64];
  strftime(time_buf, sizeof time_buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
  const auto field = [&](const char* name, LogVariable variable) {
    line += name;
    appendLogVariable(req, variable, {}, LogEscape::kJson, line);
    line += '"';
  };
  line += R"({"time":")";
  line += time_buf;
  line += '"';
  field(R"(,"remote":")", LogVariable::kRemoteAddr);
  field(R"(,"method":")", LogVariable::kRequestMethod);
  field(R"(,"uri":")", LogVariable::kRequestUri);
  field(R"(,"protocol":")", LogVariable::kServerProtocol);
  line += ",\"status\":";
  appendLogVariable(req, LogVariable::kStatus, {}, LogEscape::kJson, line);
  line += ",\"bytes\":";
  appendLogVariable(req, LogVariable::kBodyBytesSent, {}, LogEscape::kJson, line);
  line += ",\"request_bytes\":";
  appendLogVariable(req, LogVariable::kRequestBodyLength, {}, LogEscape::kJson, line);
  line += ",\"duration_ms\":";
  appendMs(line, std::chrono::steady_clock::now() - req.startTime());
  // Null until a response head went out (the client went away first).
  line += ",\"first_byte_ms\":";
  if (auto start = req.responseStartTime()) {
    appendMs(line, *start - req.startTime());
  } else {
    line += "null";
  }
  field(R"(,"upstream":")", LogVariable::kUpstreamAddr);
  field(R"(,"error":")", LogVariable::kErrorCode);
  field(R"(,"request_id":")", LogVariable::kRequestId);
  field(R"(,"trace_id":")", LogVariable::kTraceId);
  field(R"(,"deployment_id":")", LogVariable::kDeploymentId);
  field(R"(,"subhoster":")", LogVariable::kSubhoster);
  field(R"(,"instance_id":")", LogVariable::kInstanceId);
  field(R"(,"isolate":")", LogVariable::kIsolate);
  line += ",\"isolate_wait_ms\":";
  appendMs(line, req.isolateWait());
  line += '}';
}

}  // namespace

std::span<const DirectiveSpec> AccessLogModule::directives() const { return kDirectives; }

bool AccessLogModule::compileMain(const config::Node& root, CompileContext& ctx) const {
  auto formats = std::make_shared<FormatTable>();
  for (const config::Node& node : root.children) {
    if (node.name != "log_format") continue;
    const std::string& name = node.args[0];
    if (name == "combined" || name == "json" || formats->contains(name)) {
      std::string message = "duplicate log_format name \"";
      message.append(name).append("\"");
      return ctx.fail(node, message);
    }
    std::span<const std::string> parts(node.args);
    parts = parts.subspan(1);
    LogEscape escape = LogEscape::kDefault;
    if (parts.front().starts_with("escape=")) {
      if (!LogFormat::parseEscape(std::string_view(parts.front()).substr(7), escape)) {
        std::string message = "invalid log_format parameter \"";
        message.append(parts.front()).append("\" (escape=default, json or none)");
        return ctx.fail(node, message);
      }
      parts = parts.subspan(1);
      if (parts.empty()) {
        std::string message = "log_format \"";
        message.append(name).append("\" has no format");
        return ctx.fail(node, message);
      }
    }
    auto format = std::make_shared<LogFormat>();
    std::string error;
    if (!LogFormat::compile(parts, escape, *format, error)) return ctx.fail(node, error);
    formats->emplace(name, std::move(format));
  }
  ctx.config.module_main.emplace_back(this, formats);
  return true;
}

std::shared_ptr<const ModuleConf> AccessLogModule::compileLocation(const Scope& scope,
                                                                   CompileContext& ctx) const {
  const config::Node* node = scope.find("access_log");
  if (!node || node->args[0] == "off") return nullptr;
  auto conf = std::make_shared<AccessLogConf>();
  if (node->args.size() > 1) {
    const std::string& name = node->args[1];
    if (name == "json") {
      conf->kind = AccessLogConf::Kind::kJson;
    } else if (name != "combined") {
      auto formats = ctx.config.mainOf<FormatTable>(this);
      auto it = formats ? formats->find(name) : FormatTable::const_iterator();
      if (!formats || it == formats->end()) {
        std::string message = "unknown log format \"";
        message.append(name).append("\" (combined, json or a log_format name)");
        ctx.fail(*node, message);
        return nullptr;
      }
      conf->kind = AccessLogConf::Kind::kCustom;
      conf->format = it->second;
    }
  }
  // Every location of one config that names the same file shares one descriptor.
  static std::mutex mutex;
  static std::map<std::pair<const RuntimeConfig*, std::string>, std::weak_ptr<LogFile>> open_files;
  std::string path = node->args[0] == "stderr" ? "stderr" : ctx.resolvePath(node->args[0]);
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = open_files[{&ctx.config, path}];
  conf->file = slot.lock();
  if (!conf->file) {
    std::string err;
    conf->file = LogFile::open(path, err);
    if (!conf->file) {
      std::string message = "cannot open access log \"";
      message += path;
      message += "\": ";
      message += err;
      ctx.fail(*node, message);
      return nullptr;
    }
    slot = conf->file;
  }
  return conf;
}

void AccessLogModule::log(const Request& req, const ModuleConf& conf) const {
  const auto& log = static_cast<const AccessLogConf&>(conf);
  // One buffer per worker thread, kept between requests: a line costs no allocation once it
  // has grown to the longest line seen.
  thread_local std::string line;
  line.clear();
  switch (log.kind) {
    case AccessLogConf::Kind::kCombined: combinedFormat().render(req, line); break;
    case AccessLogConf::Kind::kJson: appendJsonLine(req, line); break;
    case AccessLogConf::Kind::kCustom: log.format->render(req, line); break;
  }
  line += '\n';
  ssize_t ignored = ::write(log.file->fd(), line.data(), line.size());
  (void)ignored;
}

}  // namespace subgate
