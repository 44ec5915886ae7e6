// The direct socket reads and writes of a connection's buffers (those made outside the worker's
// end-of-turn batch, core/net/io_batch.h), with EINTR retried and errors as -errno.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>

#include "core/net/io_buffer.h"

namespace subgate {

// One recv(2) into `buffer` of at most `max` bytes (reserveForRead(max): a buffer without
// memory starts small); `asked` is set to the size asked for (fewer bytes than that: the socket
// is drained). Returns the bytes read (> 0, committed to the buffer), 0 at the peer's end, or
// -errno (-EAGAIN: nothing to read until the next edge).
inline ssize_t receiveInto(int fd, IoBuffer& buffer, size_t max, size_t& asked) {
  buffer.reserveForRead(max);
  const size_t want = std::min(buffer.writable(), max);
  asked = want;
  ssize_t n;
  do {
    n = ::recv(fd, buffer.writePtr(), want, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  buffer.commit(static_cast<size_t>(n));
  return n;
}

// One send(2) of `buffer`'s bytes; consumes those that went out. Returns their count or -errno
// (-EAGAIN: the socket is full).
inline ssize_t sendFrom(int fd, IoBuffer& buffer) {
  ssize_t n;
  do {
    n = ::send(fd, buffer.readPtr(), buffer.readable(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  buffer.consume(static_cast<size_t>(n));
  return n;
}

}  // namespace subgate
