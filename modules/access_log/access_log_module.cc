#include "modules/access_log/access_log_module.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <map>
#include <mutex>

#include "core/log/log_file.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"

namespace subgate {
namespace {

struct AccessLogConf final : ModuleConf {
  std::shared_ptr<LogFile> file;
  bool json = false;
};

constexpr DirectiveSpec kDirectives[] = {
    {"access_log", kMainContext | kServerContext | kLocationContext, 1, 2},
};

void appendQuoted(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 ||
        static_cast<unsigned char>(c) >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

std::span<const DirectiveSpec> AccessLogModule::directives() const { return kDirectives; }

std::shared_ptr<const ModuleConf> AccessLogModule::compileLocation(const Scope& scope,
                                                                   CompileContext& ctx) const {
  const config::Node* node = scope.find("access_log");
  if (!node || node->args[0] == "off") return nullptr;
  auto conf = std::make_shared<AccessLogConf>();
  if (node->args.size() > 1) {
    if (node->args[1] == "json") {
      conf->json = true;
    } else if (node->args[1] != "combined") {
      ctx.fail(*node, "unknown access_log format \"" + node->args[1] + "\" (combined or json)");
      return nullptr;
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
  std::string line;
  line.reserve(256);
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  char time_buf[64];
  auto elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - req.startTime())
          .count();
  // The method the client sent: an RFC 8441 WebSocket is a CONNECT, though it travels on as GET.
  std::string_view method = !req.active()           ? std::string_view()
                            : req.extendedConnect() ? std::string_view("CONNECT")
                                                    : req.method();
  std::string_view target = req.active() ? req.target() : std::string_view();
  std::string_view protocol = req.active() ? req.protocol() : std::string_view();
  if (log.json) {
    strftime(time_buf, sizeof time_buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
    line += "{\"time\":\"";
    line += time_buf;
    line += "\",\"remote\":\"";
    appendJsonEscaped(line, req.remoteAddress());
    line += "\",\"method\":\"";
    appendJsonEscaped(line, method);
    line += "\",\"uri\":\"";
    appendJsonEscaped(line, target);
    line += "\",\"protocol\":\"";
    line += protocol;
    line += "\",\"status\":";
    line += std::to_string(req.status());
    line += ",\"bytes\":";
    line += std::to_string(req.bodyBytesSent());
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.3f", elapsed);
    line += ",\"duration_ms\":";
    line += ms;
    line += ",\"upstream\":\"";
    appendJsonEscaped(line, req.upstreamAddress());
    line += "\",\"error\":\"";
    if (req.errorKind()) line += errorInfo(*req.errorKind()).code;
    // Both are made of URL-safe characters only (request_trace.h): no escaping needed.
    line += "\",\"request_id\":\"";
    line += req.requestId();
    line += "\",\"trace_id\":\"";
    line += req.traceId();
    line += "\"}\n";
  } else {
    strftime(time_buf, sizeof time_buf, "%d/%b/%Y:%H:%M:%S %z", &tm);
    line += req.remoteAddress();
    line += " - - [";
    line += time_buf;
    line += "] ";
    std::string request_line;
    if (req.active() && !method.empty()) {
      request_line.append(method).append(" ").append(target).append(" ").append(protocol);
    }
    appendQuoted(line, request_line);
    line += ' ';
    line += std::to_string(req.status());
    line += ' ';
    line += std::to_string(req.bodyBytesSent());
    line += ' ';
    appendQuoted(line, req.active() ? req.header("referer") : std::string_view());
    line += ' ';
    appendQuoted(line, req.active() ? req.header("user-agent") : std::string_view());
    line += '\n';
  }
  ssize_t ignored = ::write(log.file->fd(), line.data(), line.size());
  (void)ignored;
}

}  // namespace subgate
