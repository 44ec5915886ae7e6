// nginx-style access log formats: `log_format NAME [escape=default|json|none] STRING...;`.
//
// A format is compiled once, when the config loads, into a flat list of pieces, each a literal
// or a variable id (with a header name for $http_NAME), so that writing a request's line only
// appends: no parsing, no lookups by name, no allocation beyond the caller's line buffer.
// The variables and their meaning are in docs/observability.md ("Log variables").
//
// Escaping applies to variable values, never to the format's own literals:
//   default  `"`, `\`, control bytes and bytes >= 0x7f become \xHH (nginx's default): a
//            client's header cannot end a quoted field or start a new line.
//   json     a JSON string body (core/log/json_text.h): `"`, `\`, control bytes and DEL escaped
//            (\n, \u00hh), valid UTF-8 kept, every byte of an invalid sequence written as U+FFFD,
//            so the line stays valid JSON for any input; a missing value is empty (nginx's
//            escape=json).
//   none     the value as it is (a hostile header can then write a line break).
// Outside json, a missing or empty value is written as `-`, as nginx writes a missing one.
//
// Threading: a LogFormat is immutable after compile() and shared by every worker; render()
// runs on the request's worker thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace subgate {

class Request;

enum class LogEscape : uint8_t { kDefault, kJson, kNone };

enum class LogVariable : uint8_t {
  kLiteral,  // not a variable: the piece's text
  kRemoteAddr,
  kRequestMethod,
  kRequestUri,
  kUri,
  kArgs,
  kServerProtocol,
  kRequest,
  kStatus,
  kBodyBytesSent,
  kRequestBodyLength,
  kRequestTime,
  kFirstByteTime,  // $upstream_header_time, $upstream_response_time, $first_byte_time
  kTimeLocal,
  kTimeIso8601,
  kMsec,
  kHttpHeader,  // $http_NAME: the piece's text is the header name (dashes for underscores)
  kRequestId,
  kTraceId,
  kDeploymentId,
  kSubhoster,
  kInstanceId,
  kIsolate,
  kIsolateWait,
  kUpstreamAddr,
  kErrorCode,
  kServerName,
};

class LogFormat {
 public:
  struct Piece {
    LogVariable variable = LogVariable::kLiteral;
    std::string text;  // the literal, or the header name of kHttpHeader
  };

  // Compiles the concatenation of `parts` (the directive's string arguments): `$name` runs
  // over [A-Za-z0-9_], `${name}` ends at the brace (for a letter right after a variable); a `$`
  // followed by neither is a literal `$`. False with `error` set ("unknown log variable
  // \"$foo\"", "unterminated \"${\"").
  static bool compile(std::span<const std::string> parts, LogEscape escape, LogFormat& out,
                      std::string& error);

  // Parses the `escape=` parameter's value; false when it is none of the three.
  static bool parseEscape(std::string_view value, LogEscape& out);

  // Appends the line for `req` (no newline) to `out`. The log phase: the response has ended.
  void render(const Request& req, std::string& out) const;

  LogEscape escape() const { return escape_; }
  std::span<const Piece> pieces() const { return pieces_; }

 private:
  std::vector<Piece> pieces_;
  LogEscape escape_ = LogEscape::kDefault;
};

// Appends `text` escaped for a JSON string body (the json escaping above, without quotes:
// core/log/json_text.h). The built-in `json` format uses it too.
void appendLogJson(std::string& out, std::string_view text);

// Appends `text` with nginx's default escaping (above).
void appendLogDefault(std::string& out, std::string_view text);

// Appends one variable's value of `req`, escaped by `escape` (the missing-value rule above).
// `header` names the header for kHttpHeader. Used by render() and the built-in formats.
void appendLogVariable(const Request& req, LogVariable variable, std::string_view header,
                       LogEscape escape, std::string& out);

}  // namespace subgate
