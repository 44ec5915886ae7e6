// Host header syntax (RFC 3986 §3.2.2 host with an optional §3.2.3 port), as required of
// `x-forwarded-host` by protocol.md §1.
#pragma once

#include <string_view>

namespace subgate {

// True for "reg-name", "IPv4", "[IPv6]" (or "[v1.x]" IPvFuture), each with an optional
// ":port" of 1-5 digits up to 65535. An empty host or an empty port is rejected, and so is a
// reg-name over 255 bytes.
bool isValidHostHeader(std::string_view value);

}  // namespace subgate
