// Shared by the .cc files that define ProxySession (proxy_session.cc, proxy_session_io.cc,
// proxy_session_request.cc, proxy_session_response.cc): what more than one of them applies. Not
// for use elsewhere. What only one file needs stays in that file.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/http1/http1_parser.h"

namespace subgate {

// Request body bytes queued for the upstream: above this the client side is told to pause.
inline constexpr size_t kUpstreamHighWater = 256 * 1024;

inline bool namedInConnection(std::string_view connection_value, std::string_view name) {
  return !connection_value.empty() && http1::headerHasToken(connection_value, name);
}

}  // namespace subgate
