// Shared by the .cc files that define Http2Connection (http2_connection.cc, http2_io.cc,
// http2_frames.cc): the constants more than one of them uses. Not for use elsewhere. Constants
// only one file needs stay in that file.
#pragma once

#include <cstdint>

namespace subgate {

// drain(): the PING whose ACK (onFrameRecv) ends the grace for streams in flight.
inline constexpr uint8_t kDrainPing[8] = {'s', 'g', '-', 'd', 'r', 'a', 'i', 'n'};

}  // namespace subgate
