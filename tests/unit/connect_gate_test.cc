// A confined child's connect() calls decided by its parent, for real: a forked child, loopback
// listeners of this process, no traffic beyond them.
#include "core/process/connect_gate.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/process/confinement.h"
#include "core/process/fd_passing.h"

namespace subgate {
namespace {

int listenOnLoopback(uint16_t& port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  listen(fd, 4);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port = ntohs(address.sin_port);
  return fd;
}

int connectTo(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);  // blocking: the gate connects it on a thread
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  int saved = errno;
  close(fd);
  return rc == 0 ? 0 : saved;
}

TEST(ConnectGate, TheParentDecidesEachConnectAndMakesTheAllowedOnes) {
  std::vector<std::string> notes;
  ConfinementOptions options;
  options.seccomp = false;
  options.no_tcp_bind = false;
  options.notify_connect = true;
  PreparedConfinement prepared = prepareConfinement(options, notes);
  if (!prepared.options.notify_connect) GTEST_SKIP() << "no seccomp on this architecture";
  uint16_t open_port = 0, closed_port = 0;
  int open_listener = listenOnLoopback(open_port);
  int closed_listener = listenOnLoopback(closed_port);
  int channel[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, channel), 0);
  pid_t child = fork();
  if (child == 0) {
    int listener = -1;
    if (!applyConfinement(prepared, &listener)) _exit(100);
    if (!sendFd(channel[1], listener)) _exit(101);
    close(listener);
    if (connectTo(open_port) != 0) _exit(1);
    if (connectTo(closed_port) != EACCES) _exit(2);
    _exit(0);
  }
  close(channel[1]);
  char tag;
  int listener = -1;
  ASSERT_EQ(receiveWithFd(channel[0], &tag, 1, listener), 1);
  ASSERT_GE(listener, 0);
  uint64_t refused = 0;
  auto verdict = [closed_port](const sockaddr_storage& address, socklen_t) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(address);
    return ntohs(in.sin_port) == closed_port ? EACCES : 0;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool open = true;
  while (open && std::chrono::steady_clock::now() < deadline) {
    pollfd ready{listener, POLLIN, 0};
    poll(&ready, 1, 100);
    open = serveConnectNotifications(listener, verdict, refused);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the allowed connect failed, 2: the refused one passed";
  EXPECT_EQ(refused, 1u);
  EXPECT_FALSE(open) << "the listener hangs up once the child is gone";
  for (int fd : {listener, channel[0], open_listener, closed_listener}) close(fd);
}

}  // namespace
}  // namespace subgate
