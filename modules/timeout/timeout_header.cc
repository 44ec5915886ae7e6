#include "modules/timeout/timeout_header.h"

#include <cstdint>

namespace subgate {

std::optional<std::chrono::milliseconds> parseTimeoutHeader(std::string_view value) {
  // Ten digits keep the product below 2^64 and any deadline far beyond request_timeout_max.
  if (value.empty() || value.size() > 10) return std::nullopt;
  uint64_t ms = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    ms = ms * 10 + static_cast<uint64_t>(c - '0');
  }
  if (ms == 0) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

}  // namespace subgate
