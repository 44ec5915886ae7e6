// The parent's side of a confined child's connect() calls (confinement.h, notify_connect): the
// kernel holds each call and hands it here through the seccomp listener; the parent decides.
//
// The address a call names lives in the child's memory, which the child can change after it was
// read: so an allowed call is never let through as it is. The parent connects the child's own
// socket (a duplicate of its fd, pidfd_getfd) to the copy it checked and answers with that
// connect's result, as the call's own; a refused call answers the refusal's errno.
//
// Threading: serveConnectNotifications() runs on the thread that watches the listener; a
// blocking stream socket's connect is made on a short-lived thread of its own, which answers.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>

namespace subgate {

// 0 to let the connection be made, else the errno the call fails with.
using ConnectVerdict = std::function<int(const sockaddr_storage& address, socklen_t length)>;

// Serves the calls waiting on `listener` (non-blocking). False once the child is gone (the
// listener hung up or failed): stop watching it. `refused` counts the refusals.
bool serveConnectNotifications(int listener, const ConnectVerdict& verdict, uint64_t& refused);

}  // namespace subgate
