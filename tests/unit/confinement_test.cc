// The confinement applied in a forked child (no traffic: sockets are created and bound on
// loopback only, never connected).
#include "core/process/confinement.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace subgate {
namespace {

// Runs `check` in a child confined by `prepared`; its exit code: 0 for success, else the step
// that failed.
template <typename Check>
int inConfinedChild(const PreparedConfinement& prepared, Check check) {
  pid_t pid = fork();
  if (pid == 0) {
    if (!applyConfinement(prepared)) _exit(100);
    _exit(check());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

TEST(Confinement, OnlyUnixAndIpv4SocketsAndNoDangerousCalls) {
  std::vector<std::string> notes;
  PreparedConfinement prepared = prepareConfinement({}, notes);
  if (prepared.filter.empty()) GTEST_SKIP() << "no seccomp filter on this architecture";
  int code = inConfinedChild(prepared, [] {
    int v4 = socket(AF_INET, SOCK_STREAM, 0);
    if (v4 < 0) return 1;
    close(v4);
    int unix_socket = socket(AF_UNIX, SOCK_STREAM, 0);
    if (unix_socket < 0) return 2;
    close(unix_socket);
    if (socket(AF_INET6, SOCK_STREAM, 0) >= 0 || errno != EAFNOSUPPORT) return 3;
    if (socket(AF_NETLINK, SOCK_RAW, 0) >= 0 || errno != EAFNOSUPPORT) return 4;
    if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0 || errno != EPERM) return 5;
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return 6;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST(Confinement, NoTcpBindWhereTheKernelHasLandlockNet) {
  std::vector<std::string> notes;
  ConfinementOptions options;
  options.seccomp = false;
  PreparedConfinement prepared = prepareConfinement(options, notes);
  if (!prepared.landlock_net) GTEST_SKIP() << "no Landlock network rules in this kernel";
  int code = inConfinedChild(prepared, [] {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return 1;
    if (errno != EACCES) return 2;
    return 0;
  });
  EXPECT_EQ(code, 0);
  // Without the rule the same bind works (the test would pass for the wrong reason otherwise).
  PreparedConfinement open = prepareConfinement({false, 0, 0, false, false}, notes);
  EXPECT_EQ(inConfinedChild(
                open,
                [] {
                  int fd = socket(AF_INET, SOCK_STREAM, 0);
                  sockaddr_in address{};
                  address.sin_family = AF_INET;
                  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                  return bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 ? 0
                                                                                              : 1;
                }),
            0);
}

}  // namespace
}  // namespace subgate
