// What a child process gives up between its start and exec, before it runs anything untrusted: the
// operating system's half of the isolate sandbox that needs no helper program (bubblewrap adds the
// namespaces; core/isolates/sandbox.h). In order:
//   1. its user: when subgate runs as root, the child becomes `uid`/`gid` with no supplementary
//      groups (an isolate never runs as root);
//   2. no new privileges (PR_SET_NO_NEW_PRIVS): no setuid binary, file capability or LSM
//      transition can give it more than it has;
//   3. no TCP listening: a Landlock ruleset that handles TCP bind and allows none (Linux 6.7+,
//      Landlock ABI 4), so no descendant can bind a TCP port in any network namespace;
//   4. a seccomp filter: sockets only of the unix and IPv4 families (IPv6, packet, netlink and
//      the rest fail with EAFNOSUPPORT), and the kernel interfaces an isolate has no use for
//      (ptrace, other processes' memory, kernel modules and kexec, bpf, perf events, userfaultfd,
//      keyrings, io_uring, the clock, swap, reboot, handle-based opens) fail with EPERM;
//   5. with notify_connect, a second filter that hands every connect() to the parent (seccomp
//      user notification, core/process/connect_gate.h): the child's `listener` out-parameter.
// Each is inherited across exec and by every descendant, and none can be undone.
//
// Threading: prepareConfinement() allocates and may run anywhere; applyConfinement() is
// async-signal-safe and runs in the started child only (core/process/child_process.h).
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace subgate {

struct ConfinementOptions {
  bool change_user = false;  // setgroups/setgid/setuid to uid/gid (meaningful for root only)
  uid_t uid = 0;
  gid_t gid = 0;
  bool no_tcp_bind = true;  // the Landlock rule (skipped, with a note, where the kernel lacks it)
  bool seccomp = true;
  bool notify_connect = false;  // connect() decided by the parent (connect_gate.h)
};

// Built in the parent, applied in the child: holds the filter program, so it must outlive the
// child's start.
struct PreparedConfinement {
  ConfinementOptions options;
  std::vector<sock_filter> filter;
  std::vector<sock_filter> notify_filter;  // with notify_connect
  bool landlock_net = false;               // the kernel offers Landlock's TCP rules
};

// Builds the seccomp program and probes Landlock. `notes` gets one line per wall the kernel
// cannot provide (for the startup log).
PreparedConfinement prepareConfinement(const ConfinementOptions& options,
                                       std::vector<std::string>& notes);

// In the child: applies every wall in the order above. False (errno set) if one fails; the
// child must then not exec. With notify_connect, `listener` gets the notification fd to pass to
// the parent.
bool applyConfinement(const PreparedConfinement& prepared, int* listener = nullptr) noexcept;

// The Landlock ABI version of the running kernel, 0 without Landlock.
int landlockAbi();

}  // namespace subgate
