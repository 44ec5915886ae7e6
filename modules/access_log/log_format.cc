#include "modules/access_log/log_format.h"

#include <sys/time.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <ctime>

#include "core/error/error_kind.h"
#include "core/log/json_text.h"
#include "core/pipeline/request.h"

namespace subgate {
namespace {

struct NamedVariable {
  std::string_view name;
  LogVariable variable;
};

// nginx's names where nginx has the variable; subgate's own otherwise.
constexpr NamedVariable kVariables[] = {
    {"remote_addr", LogVariable::kRemoteAddr},
    {"request_method", LogVariable::kRequestMethod},
    {"request_uri", LogVariable::kRequestUri},
    {"uri", LogVariable::kUri},
    {"args", LogVariable::kArgs},
    {"query_string", LogVariable::kArgs},
    {"server_protocol", LogVariable::kServerProtocol},
    {"request", LogVariable::kRequest},
    {"status", LogVariable::kStatus},
    {"body_bytes_sent", LogVariable::kBodyBytesSent},
    {"request_body_length", LogVariable::kRequestBodyLength},
    {"request_time", LogVariable::kRequestTime},
    {"first_byte_time", LogVariable::kFirstByteTime},
    {"upstream_header_time", LogVariable::kFirstByteTime},
    {"upstream_response_time", LogVariable::kFirstByteTime},
    {"time_local", LogVariable::kTimeLocal},
    {"time_iso8601", LogVariable::kTimeIso8601},
    {"msec", LogVariable::kMsec},
    {"request_id", LogVariable::kRequestId},
    {"trace_id", LogVariable::kTraceId},
    {"deployment_id", LogVariable::kDeploymentId},
    {"subhoster", LogVariable::kSubhoster},
    {"instance_id", LogVariable::kInstanceId},
    {"isolate", LogVariable::kIsolate},
    {"isolate_wait", LogVariable::kIsolateWait},
    {"upstream_addr", LogVariable::kUpstreamAddr},
    {"error_code", LogVariable::kErrorCode},
    {"server_name", LogVariable::kServerName},
};

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool resolve(std::string_view name, LogFormat::Piece& piece) {
  if (name.starts_with("http_") && name.size() > 5) {
    piece.variable = LogVariable::kHttpHeader;
    piece.text.assign(name.substr(5));
    for (char& c : piece.text) c = c == '_' ? '-' : static_cast<char>(std::tolower(c));
    return true;
  }
  for (const NamedVariable& v : kVariables) {
    if (v.name == name) {
      piece.variable = v.variable;
      return true;
    }
  }
  return false;
}

// The wall clock's strings, made once per second per thread (nginx caches them the same way).
struct WallClock {
  time_t second = -1;
  char local[40];
  size_t local_len = 0;
  char iso[40];
  size_t iso_len = 0;
};

const WallClock& wallClock(const timeval& tv) {
  thread_local WallClock clock;
  if (clock.second != tv.tv_sec) {
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    clock.local_len = strftime(clock.local, sizeof clock.local, "%d/%b/%Y:%H:%M:%S %z", &tm);
    // nginx's $time_iso8601 writes the offset with a colon: +00:00.
    size_t n = strftime(clock.iso, sizeof clock.iso, "%Y-%m-%dT%H:%M:%S%z", &tm);
    if (n >= 5 && n + 1 < sizeof clock.iso) {
      clock.iso[n + 1] = '\0';
      clock.iso[n] = clock.iso[n - 1];
      clock.iso[n - 1] = clock.iso[n - 2];
      clock.iso[n - 2] = ':';
      ++n;
    }
    clock.iso_len = n;
    clock.second = tv.tv_sec;
  }
  return clock;
}

// "S.mmm": seconds with millisecond resolution, as nginx writes $request_time.
std::string_view seconds(SteadyTime::duration d, char* buf, size_t size) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms < 0) ms = 0;
  char* end = std::to_chars(buf, buf + size - 4, ms / 1000).ptr;
  const auto frac = ms % 1000;
  *end++ = '.';
  *end++ = static_cast<char>('0' + frac / 100);
  *end++ = static_cast<char>('0' + frac / 10 % 10);
  *end++ = static_cast<char>('0' + frac % 10);
  return std::string_view(buf, static_cast<size_t>(end - buf));
}

std::string_view number(uint64_t n, char* buf, size_t size) {
  return std::string_view(buf, static_cast<size_t>(std::to_chars(buf, buf + size, n).ptr - buf));
}

constexpr char kHex[] = "0123456789ABCDEF";

void appendValue(std::string& out, std::string_view value, LogEscape escape) {
  if (value.empty()) {
    if (escape != LogEscape::kJson) out += '-';
    return;
  }
  switch (escape) {
    case LogEscape::kDefault: appendLogDefault(out, value); break;
    case LogEscape::kJson: appendLogJson(out, value); break;
    case LogEscape::kNone: out.append(value); break;
  }
}

}  // namespace

void appendLogDefault(std::string& out, std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || u < 0x20 || u >= 0x7f) {
      const char escaped[4] = {'\\', 'x', kHex[u >> 4], kHex[u & 15]};
      out.append(escaped, 4);
    } else {
      out += c;
    }
  }
}

void appendLogJson(std::string& out, std::string_view text) { appendJsonStringBody(out, text); }

bool LogFormat::parseEscape(std::string_view value, LogEscape& out) {
  if (value == "default") {
    out = LogEscape::kDefault;
  } else if (value == "json") {
    out = LogEscape::kJson;
  } else if (value == "none") {
    out = LogEscape::kNone;
  } else {
    return false;
  }
  return true;
}

bool LogFormat::compile(std::span<const std::string> parts, LogEscape escape, LogFormat& out,
                        std::string& error) {
  out.pieces_.clear();
  out.escape_ = escape;
  std::string text;
  for (const std::string& part : parts) text += part;
  std::string literal;
  const auto flush_literal = [&] {
    if (literal.empty()) return;
    out.pieces_.push_back(Piece{LogVariable::kLiteral, std::move(literal)});
    literal.clear();
  };
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '$') {
      literal += text[i++];
      continue;
    }
    std::string_view name;
    size_t next;
    if (i + 1 < text.size() && text[i + 1] == '{') {
      const size_t close = text.find('}', i + 2);
      if (close == std::string::npos) {
        error = "unterminated \"${\" in log_format";
        return false;
      }
      name = std::string_view(text).substr(i + 2, close - i - 2);
      next = close + 1;
    } else {
      size_t end = i + 1;
      while (end < text.size() && isNameChar(text[end])) ++end;
      name = std::string_view(text).substr(i + 1, end - i - 1);
      next = end;
    }
    if (name.empty()) {  // a lone `$`: itself
      literal += '$';
      ++i;
      continue;
    }
    Piece piece;
    if (!resolve(name, piece)) {
      error = "unknown log variable \"$";
      error.append(name).append("\"");
      return false;
    }
    flush_literal();
    out.pieces_.push_back(std::move(piece));
    i = next;
  }
  flush_literal();
  return true;
}

void LogFormat::render(const Request& req, std::string& out) const {
  for (const Piece& piece : pieces_) {
    if (piece.variable == LogVariable::kLiteral) {
      out.append(piece.text);
    } else {
      appendLogVariable(req, piece.variable, piece.text, escape_, out);
    }
  }
}

void appendLogVariable(const Request& req, LogVariable variable, std::string_view header,
                       LogEscape escape, std::string& out) {
  char buf[48];
  std::string_view value;
  const bool active = req.active();
  switch (variable) {
    case LogVariable::kLiteral: value = header; break;
    case LogVariable::kRemoteAddr: value = req.remoteAddress(); break;
    case LogVariable::kRequestMethod:
      // The method the client sent: an RFC 8441 WebSocket is a CONNECT, though it travels on as
      // GET.
      if (active) value = req.extendedConnect() ? std::string_view("CONNECT") : req.method();
      break;
    case LogVariable::kRequestUri:
      if (active) value = req.target();
      break;
    case LogVariable::kUri:
      if (active) value = req.path();
      break;
    case LogVariable::kArgs:
      if (active) value = req.query();
      break;
    case LogVariable::kServerProtocol:
      if (active) value = req.protocol();
      break;
    case LogVariable::kRequest: {
      if (!active || req.method().empty()) break;
      // Each part escaped on its own; the spaces between are the format's.
      appendLogVariable(req, LogVariable::kRequestMethod, {}, escape, out);
      out += ' ';
      appendLogVariable(req, LogVariable::kRequestUri, {}, escape, out);
      out += ' ';
      appendLogVariable(req, LogVariable::kServerProtocol, {}, escape, out);
      return;
    }
    case LogVariable::kStatus:
      value = number(static_cast<uint64_t>(req.status()), buf, sizeof buf);
      break;
    case LogVariable::kBodyBytesSent: value = number(req.bodyBytesSent(), buf, sizeof buf); break;
    case LogVariable::kRequestBodyLength:
      value = number(req.bodyBytesReceived(), buf, sizeof buf);
      break;
    case LogVariable::kRequestTime:
      value = seconds(std::chrono::steady_clock::now() - req.startTime(), buf, sizeof buf);
      break;
    case LogVariable::kFirstByteTime:
      if (auto start = req.responseStartTime())
        value = seconds(*start - req.startTime(), buf, sizeof buf);
      break;
    case LogVariable::kTimeLocal:
    case LogVariable::kTimeIso8601:
    case LogVariable::kMsec: {
      timeval tv;
      gettimeofday(&tv, nullptr);
      if (variable == LogVariable::kMsec) {
        char* end = std::to_chars(buf, buf + 24, static_cast<int64_t>(tv.tv_sec)).ptr;
        const auto ms = tv.tv_usec / 1000;
        *end++ = '.';
        *end++ = static_cast<char>('0' + ms / 100);
        *end++ = static_cast<char>('0' + ms / 10 % 10);
        *end++ = static_cast<char>('0' + ms % 10);
        value = std::string_view(buf, static_cast<size_t>(end - buf));
      } else {
        const WallClock& clock = wallClock(tv);
        value = variable == LogVariable::kTimeLocal ? std::string_view(clock.local, clock.local_len)
                                                    : std::string_view(clock.iso, clock.iso_len);
      }
      break;
    }
    case LogVariable::kHttpHeader:
      if (active) value = req.header(header);
      break;
    case LogVariable::kRequestId: value = req.requestId(); break;
    case LogVariable::kTraceId: value = req.traceId(); break;
    case LogVariable::kDeploymentId:
      if (req.route().token) value = req.route().token->deployment_id;
      break;
    case LogVariable::kSubhoster:
      if (req.route().token && req.route().token->subhoster)
        value = req.route().token->subhoster->name;
      break;
    case LogVariable::kInstanceId: value = req.route().instance_id; break;
    case LogVariable::kIsolate: value = req.isolateName(); break;
    case LogVariable::kIsolateWait:
      // Only for a request an isolate served (or waited for): "-" on a proxied one.
      if (!req.isolateName().empty() || req.isolateWait() != SteadyTime::duration::zero())
        value = seconds(req.isolateWait(), buf, sizeof buf);
      break;
    case LogVariable::kUpstreamAddr: value = req.upstreamAddress(); break;
    case LogVariable::kErrorCode:
      if (req.errorKind()) value = errorInfo(*req.errorKind()).code;
      break;
    case LogVariable::kServerName:
      if (active && !req.server().names.empty()) value = req.server().names.front();
      break;
  }
  appendValue(out, value, escape);
}

}  // namespace subgate
