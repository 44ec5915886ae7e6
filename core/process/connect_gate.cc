#include "core/process/connect_gate.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

namespace subgate {
namespace {

// The kernel's sizes of the notification structures (they may grow past the headers').
struct NotifSizes {
  size_t notif = sizeof(seccomp_notif);
  size_t resp = sizeof(seccomp_notif_resp);
};

const NotifSizes& notifSizes() {
  static const NotifSizes sizes = [] {
    NotifSizes out;
    seccomp_notif_sizes kernel{};
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &kernel) == 0) {
      out.notif = std::max<size_t>(out.notif, kernel.seccomp_notif);
      out.resp = std::max<size_t>(out.resp, kernel.seccomp_notif_resp);
    }
    return out;
  }();
  return sizes;
}

void answer(int listener, uint64_t id, int result_errno) {
  std::vector<char> buffer(notifSizes().resp, 0);
  auto* resp = reinterpret_cast<seccomp_notif_resp*>(buffer.data());
  resp->id = id;
  resp->val = 0;
  resp->error = -result_errno;
  resp->flags = 0;
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp);  // fails only if the caller is gone
}

// A pidfd of thread `tid`'s process: the thread itself where the kernel allows it (6.9+), else
// its thread group leader.
int pidfdOfThread(pid_t tid) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, tid, PIDFD_THREAD));
  if (fd >= 0) return fd;
  std::ifstream status("/proc/" + std::to_string(tid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Tgid:", 0) == 0)
      return static_cast<int>(syscall(SYS_pidfd_open, std::stoi(line.substr(5)), 0));
  }
  return -1;
}

// Connects `socket` (the child's, duplicated) to `address` and answers the call with the result.
void connectAndAnswer(int listener, uint64_t id, int socket, const sockaddr_storage& address,
                      socklen_t length) {
  const int rc = ::connect(socket, reinterpret_cast<const sockaddr*>(&address), length);
  const int result = rc == 0 ? 0 : errno;
  ::close(socket);
  answer(listener, id, result);
}

}  // namespace

bool serveConnectNotifications(int listener, const ConnectVerdict& verdict, uint64_t& refused) {
  std::vector<char> buffer(notifSizes().notif);
  for (int round = 0; round < 64; ++round) {  // bounded: the loop comes back for more
    // NOTIF_RECV blocks whatever O_NONBLOCK says: ask poll first.
    pollfd ready{listener, POLLIN, 0};
    if (poll(&ready, 1, 0) < 0) return errno == EINTR;
    if (ready.revents & (POLLHUP | POLLERR | POLLNVAL)) return false;
    if (!(ready.revents & POLLIN)) return true;
    std::memset(buffer.data(), 0, buffer.size());
    auto* req = reinterpret_cast<seccomp_notif*>(buffer.data());
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
      if (errno == EINTR || errno == ENOENT) continue;  // ENOENT: the caller died meanwhile
      return false;
    }
    const uint64_t id = req->id;
    const int child_fd = static_cast<int>(req->data.args[0]);
    const uint64_t pointer = req->data.args[1];
    const socklen_t length =
        static_cast<socklen_t>(std::min<uint64_t>(req->data.args[2], sizeof(sockaddr_storage)));
    sockaddr_storage address{};
    iovec local{&address, length};
    iovec remote{reinterpret_cast<void*>(pointer), length};
    const bool read = length >= sizeof(sa_family_t) &&
                      process_vm_readv(static_cast<pid_t>(req->pid), &local, 1, &remote, 1, 0) ==
                          static_cast<ssize_t>(length);
    if (!read) {
      answer(listener, id, EFAULT);
      continue;
    }
    const int refusal = verdict(address, length);
    if (refusal != 0) {
      ++refused;
      answer(listener, id, refusal);
      continue;
    }
    int pidfd = pidfdOfThread(static_cast<pid_t>(req->pid));
    int socket = pidfd >= 0 ? static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, child_fd, 0)) : -1;
    if (pidfd >= 0) ::close(pidfd);
    // The thread may have died and its id been reused between the read and pidfd_open.
    if (socket < 0 || ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) {
      if (socket >= 0) ::close(socket);
      answer(listener, id, socket < 0 ? EBADF : ECANCELED);
      continue;
    }
    int type = 0;
    socklen_t type_length = sizeof type;
    getsockopt(socket, SOL_SOCKET, SO_TYPE, &type, &type_length);
    const bool blocking = (fcntl(socket, F_GETFL) & O_NONBLOCK) == 0;
    if (blocking && type == SOCK_STREAM) {
      // The connect waits for the peer: not on this thread, which serves every isolate.
      int own_listener = fcntl(listener, F_DUPFD_CLOEXEC, 0);
      std::thread([own_listener, id, socket, address, length] {
        connectAndAnswer(own_listener, id, socket, address, length);
        ::close(own_listener);
      }).detach();
      continue;
    }
    connectAndAnswer(listener, id, socket, address, length);
  }
  return true;
}

}  // namespace subgate
