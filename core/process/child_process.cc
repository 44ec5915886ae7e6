#include "core/process/child_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/process/fd_passing.h"

// AddressSanitizer builds spawn with fork() (cloneChild says why).
#if defined(__SANITIZE_ADDRESS__)
#define SUBGATE_SPAWN_WITH_FORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SUBGATE_SPAWN_WITH_FORK 1
#endif
#endif
#ifndef SUBGATE_SPAWN_WITH_FORK
#define SUBGATE_SPAWN_WITH_FORK 0
#endif

namespace subgate {
namespace {

void closeIf(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// What the child applies to itself, prepared before the clone (no allocation after it).
struct ChildSetup {
  const std::vector<std::pair<int, rlim_t>>* rlimits;
  std::vector<const char*> cgroup_procs;
  const PreparedConfinement* confinement;
};

// In the child: joins each cgroup by writing "0" (the writer itself) to its cgroup.procs.
bool joinCgroups(const ChildSetup& setup) {
  for (const char* path : setup.cgroup_procs) {
    int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = ::write(fd, "0", 1) == 1;
    ::close(fd);
    if (!ok) return false;
  }
  return true;
}

bool applyRlimits(const ChildSetup& setup) {
  for (const auto& [resource, value] : *setup.rlimits) {
    rlimit limit{value, value};
    if (setrlimit(resource, &limit) != 0) return false;
  }
  return true;
}

// In the parent: one message of the report socket. 0 at its end (the exec happened), else its
// length: 1 for the fd of the child's connect() listener (to `fd`), sizeof(int) for the errno of
// a failure.
ssize_t receiveReport(int report_fd, int& exec_errno, int& fd) {
  char payload[sizeof(int)] = {};
  const ssize_t n = receiveWithFd(report_fd, payload, sizeof payload, fd);
  if (n == static_cast<ssize_t>(sizeof(int))) std::memcpy(&exec_errno, payload, sizeof(int));
  return n;
}

// In the child, between clone and exec: it runs on its own stack in subgate's memory, so
// async-signal-safe calls only (no allocation, no lock, no exception; raw system calls where
// glibc would coordinate with other threads).
[[noreturn]] void execChild(char* const* argv, char* const* envp, const char* cwd, int in, int out,
                            int err, int report_fd, pid_t parent, const ChildSetup& setup) {
  // The handlers are subgate's, and would run on its memory: every caught signal goes back to
  // its default before any is unblocked (ignored ones stay ignored, as exec keeps them).
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction action;
    if (sigaction(sig, nullptr, &action) != 0 || action.sa_handler == SIG_IGN ||
        action.sa_handler == SIG_DFL)
      continue;
    action.sa_handler = SIG_DFL;
    action.sa_flags = 0;
    sigaction(sig, &action, nullptr);
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);  // the parent died before prctl
  setpgid(0, 0);
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all,
              nullptr);  // subgate blocks signals for sigwait; the child must not
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) goto fail;
  // Close everything else except the report pipe (close-on-exec itself).
  if (report_fd > 3) syscall(SYS_close_range, 3u, static_cast<unsigned>(report_fd - 1), 0u);
  syscall(SYS_close_range, static_cast<unsigned>(report_fd + 1), ~0u, 0u);
  if (cwd[0] && chdir(cwd) != 0) goto fail;
  if (!joinCgroups(setup) || !applyRlimits(setup)) goto fail;
  if (setup.confinement) {
    int listener = -1;
    if (!applyConfinement(*setup.confinement, &listener)) goto fail;
    if (listener >= 0) {
      const bool sent = sendFd(report_fd, listener);
      ::close(listener);
      if (!sent) goto fail;
    }
    // A change of user clears the death signal: set it again, and check the parent once more.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
  }
  execve(argv[0], argv, envp);
fail:
  int code = errno;
  ssize_t ignored = ::write(report_fd, &code, sizeof code);
  (void)ignored;
  _exit(127);
}

struct ChildStart {
  char* const* argv;
  char* const* envp;
  const char* cwd;
  int in, out, err, report_fd;
  pid_t parent;
  const ChildSetup* setup;
};

int startChild(void* arg) {
  const ChildStart& start = *static_cast<const ChildStart*>(arg);
  execChild(start.argv, start.envp, start.cwd, start.in, start.out, start.err, start.report_fd,
            start.parent, *start.setup);
}

// Starts the child with clone(CLONE_VM | CLONE_VFORK), as posix_spawn does, rather than fork():
// the child borrows subgate's memory until it executes the program (this thread waits), so no
// page table is copied. A fork copies them under the memory map's lock, which stalls every other
// thread that faults meanwhile, and marks every page copy-on-write, so that each page a worker
// writes afterwards faults once more: 2 to 15 ms per fork on the development VM, where page
// table changes are slow, against 0.03 to 0.4 ms (docs/performance.md). -1 with errno set when
// the clone fails.
//
// AddressSanitizer builds fork instead: ASan's bookkeeping of the calling thread's stack (and the
// shadow memory of the child's frames, which CLONE_VM would share) does not survive a child that
// runs on a borrowed stack in the parent's memory; it reports a stack overflow at the child's
// first no-return call.
pid_t cloneChild(ChildStart& start) {
  // No signal may reach the child before it reset the handlers it inherited (execChild).
  sigset_t all, previous;
  sigfillset(&all);
#if SUBGATE_SPAWN_WITH_FORK
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = fork();
  if (pid == 0) startChild(&start);
  const int clone_errno = errno;
#else
  constexpr size_t kStackBytes = 256 * 1024;  // execChild's frames and the confinement's calls
  void* stack = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = clone(startChild, static_cast<char*>(stack) + kStackBytes,
                          CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
  const int clone_errno = errno;
  munmap(stack, kStackBytes);
#endif
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  errno = clone_errno;
  return pid;
}

}  // namespace

bool spawnChild(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                const std::string& cwd, ChildProcess& child, std::string& error,
                const SpawnOptions& options) {
  std::vector<char*> argv_ptrs;
  for (const std::string& arg : argv) argv_ptrs.push_back(const_cast<char*>(arg.c_str()));
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  for (const std::string& var : env) env_ptrs.push_back(const_cast<char*>(var.c_str()));
  env_ptrs.push_back(nullptr);
  ChildSetup setup{&options.rlimits, {}, options.confinement};
  for (const std::string& path : options.cgroup_procs) setup.cgroup_procs.push_back(path.c_str());

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
  auto cleanup = [&] {
    for (int* pair : {in, out, err, report}) {
      closeIf(pair[0]);
      closeIf(pair[1]);
    }
  };
  // The report channel is a socket: it may carry an fd (the connect() listener) besides errno.
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, report) != 0) {
    error = std::string("pipe: ") + std::strerror(errno);
    cleanup();
    return false;
  }
  ChildStart start{argv_ptrs.data(), env_ptrs.data(), cwd.c_str(), in[0], out[1],
                   err[1],           report[1],       getpid(),    &setup};
  const pid_t pid = cloneChild(start);
  if (pid < 0) {
    error = std::string("clone: ") + std::strerror(errno);
    cleanup();
    return false;
  }

  closeIf(in[0]);
  closeIf(out[1]);
  closeIf(err[1]);
  closeIf(report[1]);
  int exec_errno = 0;
  int listener = -1;
  ssize_t n;
  do {
    n = receiveReport(report[0], exec_errno, listener);
  } while (n == 1);  // the listener; then the end (exec) or errno
  closeIf(report[0]);
  if (n > 0) {
    closeIf(listener);
    waitpid(pid, nullptr, 0);
    error = "cannot run " + argv[0] +
            " (or set its limits, cgroups or confinement): " + std::strerror(exec_errno);
    cleanup();
    return false;
  }
  child.pid = pid;
  child.pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (child.pidfd < 0) {
    error = std::string("pidfd_open: ") + std::strerror(errno);
    closeIf(listener);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    cleanup();
    return false;
  }
  fcntl(child.pidfd, F_SETFD, FD_CLOEXEC);
  child.stdin_fd = in[1];
  child.stdout_fd = out[0];
  child.stderr_fd = err[0];
  child.notify_fd = listener;
  for (int fd : {child.stdin_fd, child.stdout_fd, child.stderr_fd, child.notify_fd})
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return true;
}

void closeChildFds(ChildProcess& child) {
  closeIf(child.notify_fd);
  closeIf(child.pidfd);
  closeIf(child.stdin_fd);
  closeIf(child.stdout_fd);
  closeIf(child.stderr_fd);
}

}  // namespace subgate
