// Shared by the .cc files that define Http1Connection (http1_connection.cc, http1_io.cc,
// http1_request_body.cc, http1_response.cc): the limits more than one of them applies. Not for
// use elsewhere. Constants only one file needs stay in that file.
#pragma once

#include <cstddef>
#include <cstdint>

namespace subgate {

inline constexpr size_t kReadChunk = 16 * 1024;
// The response buffer's back-pressure pair: the response path tells producers to pause above the
// high mark, the write path resumes them once a write takes it below the low mark.
inline constexpr size_t kOutHighWater = 256 * 1024;  // above this, producers are told to pause
inline constexpr size_t kOutLowWater = 64 * 1024;    // below this, paused producers resume
inline constexpr uint64_t kMaxDiscard = 1 << 20;  // unread body bytes we skip to keep a connection

}  // namespace subgate
