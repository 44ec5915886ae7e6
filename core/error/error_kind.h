// The one table that maps every failure subgate itself answers to its HTTP status and its
// machine-readable `x-deno-error` code (protocol.md §2). Nothing else invents statuses.
#pragma once

#include <string>
#include <string_view>

namespace subgate {

enum class ErrorKind : unsigned char {
  kMissingForwardedHost,
  kInvalidHostHeader,
  kMissingSubhost,
  kInvalidSubhost,
  kInternalBootRpcError,
  kOriginBootRpcError,
  kDeploymentNotFound,
  kOriginMissingConfig,
  kOriginInvalidConfig,
  kDeploymentFailed,
  kMemoryLimit,
  kTimeLimit,
  kLoopDetected,
  kRequestTimedOut,
  kCapacityExceeded,
  kBadRequest,
  kInternalServerError,
  // [subgate] additions for the plain proxy, documented in docs/errors.md.
  kNotFound,
  kHeaderTooLarge,
  kUriTooLong,
  kPayloadTooLarge,
  kClientTimeout,
  kUpstreamError,
  kUpstreamTimedOut,
  kOriginInvalidBundle,  // the /boot body or a layer is not a valid module graph (issue 18)
  kCount,
};

struct ErrorInfo {
  int status;
  std::string_view code;     // x-deno-error "code"
  std::string_view message;  // default human-readable message
};

const ErrorInfo& errorInfo(ErrorKind kind);

// Reason phrase for a status code ("OK", "Bad Gateway", ...); "Unknown" when not known.
std::string_view reasonPhrase(int status);

// The one-line JSON value of the x-deno-error header: {"code":"...","message":"..."}.
std::string errorHeaderValue(ErrorKind kind, std::string_view message);

// Appends `text` to `out` as the inside of a JSON string (quotes not included):
// core/log/json_text.h.
void appendJsonEscaped(std::string& out, std::string_view text);

}  // namespace subgate
