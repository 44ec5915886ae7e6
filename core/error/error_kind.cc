#include "core/error/error_kind.h"

#include <array>

#include "core/log/json_text.h"

namespace subgate {
namespace {

constexpr std::array<ErrorInfo, static_cast<size_t>(ErrorKind::kCount)> kErrors = {{
    {400, "MISSING_XFORWARDED_HOST", "the x-forwarded-host header is missing"},
    {400, "INVALID_HOST_HEADER", "the host is not a valid host name"},
    {401, "MISSING_XDENO_SUBHOST", "the x-deno-subhost header is missing"},
    {401, "INVALID_XDENO_SUBHOST", "the x-deno-subhost token is invalid"},
    {502, "INTERNAL_BOOT_RPC_ERROR", "the boot request to the origin failed"},
    {502, "ORIGIN_BOOT_RPC_ERROR", "the origin answered the boot request with an error"},
    {404, "DEPLOYMENT_NOT_FOUND", "the deployment was not found"},
    {502, "ORIGIN_MISSING_XDENO_CONFIG", "the origin's boot response has no x-deno-config"},
    {502, "ORIGIN_INVALID_XDENO_CONFIG", "the origin's x-deno-config is invalid"},
    {502, "DEPLOYMENT_FAILED", "the deployment failed"},
    {502, "MEMORY_LIMIT", "the isolate was killed for exceeding its memory limit"},
    {502, "TIME_LIMIT", "the isolate was killed for exceeding its CPU time limit"},
    {508, "LOOP_DETECTED", "the request loops back to its own deployment"},
    {504, "REQUEST_TIMED_OUT", "the response did not start before the request deadline"},
    {503, "CAPACITY_EXCEEDED", "every isolate is at its limit"},
    {400, "BAD_REQUEST", "the request is malformed"},
    {500, "INTERNAL_SERVER_ERROR", "internal server error"},
    {404, "NOT_FOUND", "no location matches the request"},
    {431, "HEADER_TOO_LARGE", "the request header is too large"},
    {414, "URI_TOO_LONG", "the request URI is too long"},
    {413, "PAYLOAD_TOO_LARGE", "the request body is too large"},
    {408, "CLIENT_TIMEOUT", "the client did not send the request in time"},
    {502, "UPSTREAM_ERROR", "the upstream failed to answer"},
    {504, "UPSTREAM_TIMED_OUT", "the upstream timed out"},
    {502, "ORIGIN_INVALID_BUNDLE", "the origin's code bundle is invalid"},
}};

}  // namespace

const ErrorInfo& errorInfo(ErrorKind kind) { return kErrors[static_cast<size_t>(kind)]; }

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 508: return "Loop Detected";
    default: return "Unknown";
  }
}

void appendJsonEscaped(std::string& out, std::string_view text) { appendJsonStringBody(out, text); }

std::string errorHeaderValue(ErrorKind kind, std::string_view message) {
  std::string out;
  out.reserve(48 + message.size());
  out += "{\"code\":\"";
  out += errorInfo(kind).code;
  out += "\",\"message\":\"";
  appendJsonEscaped(out, message);
  out += "\"}";
  return out;
}

}  // namespace subgate
