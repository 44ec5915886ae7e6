#include "core/process/confinement.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

namespace subgate {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
constexpr uint32_t kAuditArch = 0;  // no filter: the syscall numbers below are per architecture
#endif

// Landlock's ruleset attribute as of ABI 4 (the system headers may predate its net field).
struct LandlockRulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
};
constexpr uint64_t kLandlockAccessNetBindTcp = 1ull << 0;
constexpr unsigned kLandlockCreateRulesetVersion = 1u << 0;

// Kernel interfaces no isolate needs, each a known path to the host or to other processes.
constexpr long kDeniedSyscalls[] = {
    SYS_ptrace,
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    SYS_kexec_load,
    SYS_kexec_file_load,
    SYS_init_module,
    SYS_finit_module,
    SYS_delete_module,
    SYS_bpf,
    SYS_perf_event_open,
    SYS_userfaultfd,
    SYS_keyctl,
    SYS_add_key,
    SYS_request_key,
    SYS_io_uring_setup,
    SYS_io_uring_enter,
    SYS_io_uring_register,
    SYS_syslog,
    SYS_acct,
    SYS_swapon,
    SYS_swapoff,
    SYS_reboot,
    SYS_settimeofday,
    SYS_clock_settime,
    SYS_clock_adjtime,
    SYS_adjtimex,
    SYS_quotactl,
    SYS_open_by_handle_at,
    SYS_name_to_handle_at,
};

sock_filter statement(uint16_t code, uint32_t k) { return BPF_STMT(code, k); }
sock_filter jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  return BPF_JUMP(code, k, jt, jf);
}

std::vector<sock_filter> buildFilter() {
  std::vector<sock_filter> f;
  if (kAuditArch == 0) return f;
  const uint32_t allow = SECCOMP_RET_ALLOW;
  const uint32_t eperm = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
  const uint32_t eafnosupport = SECCOMP_RET_ERRNO | (EAFNOSUPPORT & SECCOMP_RET_DATA);
  // A foreign architecture's numbers mean other calls: refuse them all.
  f.push_back(statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0));
  f.push_back(statement(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  f.push_back(statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
#if defined(__x86_64__)
  // The x32 ABI's numbers (bit 30) would slip past every comparison below.
  f.push_back(jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
  f.push_back(statement(BPF_RET | BPF_K, eperm));
#endif
  // socket() and socketpair(): the unix and IPv4 families only. The accumulator holds the
  // syscall number again past each block (a block that does not match jumps over all of it).
  for (long nr : {static_cast<long>(SYS_socket), static_cast<long>(SYS_socketpair)}) {
    f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 5));
    f.push_back(statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])));
    f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 2, 0));
    f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 1, 0));
    f.push_back(statement(BPF_RET | BPF_K, eafnosupport));
    f.push_back(statement(BPF_RET | BPF_K, allow));
  }
  for (long nr : kDeniedSyscalls) {
    f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1));
    f.push_back(statement(BPF_RET | BPF_K, eperm));
  }
  f.push_back(statement(BPF_RET | BPF_K, allow));
  return f;
}

// connect() goes to the listener; everything else passes (the first filter decides it).
std::vector<sock_filter> buildNotifyFilter() {
  std::vector<sock_filter> f;
  if (kAuditArch == 0) return f;
  f.push_back(statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(SYS_connect), 0, 1));
  f.push_back(statement(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF));
  f.push_back(statement(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  return f;
}

}  // namespace

int landlockAbi() {
  long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, kLandlockCreateRulesetVersion);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

PreparedConfinement prepareConfinement(const ConfinementOptions& options,
                                       std::vector<std::string>& notes) {
  PreparedConfinement prepared;
  prepared.options = options;
  if (options.seccomp) {
    prepared.filter = buildFilter();
    if (prepared.filter.empty())
      notes.push_back("no seccomp filter on this architecture (x86_64 and aarch64 only)");
  }
  if (options.notify_connect) {
    prepared.notify_filter = buildNotifyFilter();
    if (prepared.notify_filter.empty()) prepared.options.notify_connect = false;
  }
  if (options.no_tcp_bind) {
    prepared.landlock_net = landlockAbi() >= 4;
    if (!prepared.landlock_net)
      notes.push_back(
          "the kernel has no Landlock network rules (Linux 6.7+): TCP listening is refused by "
          "Deno's permissions only");
  }
  return prepared;
}

bool applyConfinement(const PreparedConfinement& prepared, int* listener) noexcept {
  const ConfinementOptions& options = prepared.options;
  // Raw system calls: the child of a threaded parent must not take glibc's set*id broadcast.
  if (options.change_user) {
    if (syscall(SYS_setgroups, 0, nullptr) != 0) return false;
    if (syscall(SYS_setresgid, options.gid, options.gid, options.gid) != 0) return false;
    if (syscall(SYS_setresuid, options.uid, options.uid, options.uid) != 0) return false;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  if (prepared.landlock_net) {
    LandlockRulesetAttr attr{0, kLandlockAccessNetBindTcp};
    long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0u);
    if (fd < 0) return false;
    long rc = syscall(SYS_landlock_restrict_self, fd, 0u);
    ::close(static_cast<int>(fd));
    if (rc != 0) return false;
  }
  if (!prepared.filter.empty()) {
    sock_fprog program{static_cast<unsigned short>(prepared.filter.size()),
                       const_cast<sock_filter*>(prepared.filter.data())};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) != 0) return false;
  }
  if (options.notify_connect && listener) {
    sock_fprog program{static_cast<unsigned short>(prepared.notify_filter.size()),
                       const_cast<sock_filter*>(prepared.notify_filter.data())};
    long fd =
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &program);
    if (fd < 0) return false;
    *listener = static_cast<int>(fd);
  }
  return true;
}

}  // namespace subgate
