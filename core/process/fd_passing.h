// Passing a file descriptor over a unix socket (SCM_RIGHTS), one message at a time.
//
// Threading: both are plain system calls; sendFd() is async-signal-safe (a started child may
// call it before exec).
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace subgate {

// Sends a one-byte message carrying `fd`. True when it was sent.
bool sendFd(int socket, int fd) noexcept;

// Receives one message of at most `size` bytes into `data` (EINTR retried); an fd it carried goes
// to `fd` (close-on-exec). Returns recvmsg's result: 0 at the peer's end, -1 on error.
ssize_t receiveWithFd(int socket, void* data, size_t size, int& fd);

}  // namespace subgate
