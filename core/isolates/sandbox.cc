#include "core/isolates/sandbox.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/isolates/runtime_launch.h"
#include "core/process/child_process.h"

namespace subgate {
namespace {

constexpr std::chrono::seconds kProbeTimeout{20};

std::string findProgram(const char* name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path && *path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin"}) {
    std::string candidate = std::string(dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// The shared libraries `program` loads, as ldd names them (the loader's own path included).
// Empty for a static program or where ldd is missing: the standard library folders are then
// made visible instead.
std::vector<std::string> librariesOf(const std::string& program) {
  std::vector<std::string> libraries;
  std::string command = "ldd '" + program + "' 2>/dev/null";
  if (program.find('\'') != std::string::npos) return libraries;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return libraries;
  char line[1024];
  while (fgets(line, sizeof line, pipe)) {
    std::string text = line;
    size_t arrow = text.find("=> ");
    size_t start = arrow != std::string::npos ? arrow + 3 : text.find_first_not_of(" \t");
    if (start == std::string::npos || text[start] != '/') continue;
    size_t end = text.find_first_of(" \t\n(", start);
    libraries.push_back(text.substr(start, end - start));
  }
  pclose(pipe);
  return libraries;
}

// Runs `argv` confined to the end (bounded), collecting what it printed on stderr.
bool runProbe(const std::vector<std::string>& argv, const PreparedConfinement& confinement,
              std::string& output) {
  ChildProcess child;
  std::string error;
  SpawnOptions options;
  options.confinement = &confinement;
  if (!spawnChild(argv, {"PATH=/usr/bin:/bin", "NO_COLOR=1"}, "/", child, error, options)) {
    output = error;
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + kProbeTimeout;
  bool exited = false;
  while (!exited && std::chrono::steady_clock::now() < deadline) {
    pollfd fds[2] = {{child.pidfd, POLLIN, 0}, {child.stderr_fd, POLLIN, 0}};
    if (poll(fds, 2, 200) < 0 && errno != EINTR) break;
    char buf[4096];
    for (ssize_t n; (n = ::read(child.stderr_fd, buf, sizeof buf)) > 0;)
      output.append(buf, static_cast<size_t>(n));
    exited = fds[0].revents & POLLIN;
  }
  int status = 0;
  if (!exited) kill(child.pid, SIGKILL);
  waitpid(child.pid, &status, 0);
  closeChildFds(child);
  if (!exited) {
    std::string late = "the sandbox did not start within ";
    late.append(std::to_string(kProbeTimeout.count())).append(" s. ");
    output.insert(0, late);
  }
  return exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Whether a user other than the owner and group can reach and read `path` (every folder above it
// searchable by others): the isolates' users are such users.
bool openToOthers(const std::string& path) {
  std::filesystem::path current = std::filesystem::absolute(path);
  struct stat st;
  if (stat(current.c_str(), &st) != 0 || (st.st_mode & S_IROTH) == 0) return false;
  for (current = current.parent_path(); !current.empty(); current = current.parent_path()) {
    if (stat(current.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
    if (current == current.root_path()) break;
  }
  return true;
}

std::string lastLines(std::string text, size_t limit) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > limit) text = "..." + text.substr(text.size() - limit);
  return text;
}

}  // namespace

uid_t isolateUid(const SandboxPlan& plan, uint64_t isolate_id) {
  return static_cast<uid_t>(plan.uid_base + isolate_id % plan.uid_count);
}

PreparedConfinement isolateConfinement(const SandboxPlan& plan, uint64_t isolate_id) {
  PreparedConfinement confinement = plan.confinement;
  confinement.options.change_user = plan.change_user;
  confinement.options.uid = isolateUid(plan, isolate_id);
  confinement.options.gid = static_cast<gid_t>(confinement.options.uid);
  return confinement;
}

namespace {

// Optional files of /etc that name resolution and time zones read: present on most hosts.
constexpr const char* kEtcFiles[] = {"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf",
                                     "/etc/localtime", "/etc/ld.so.cache"};

}  // namespace

std::vector<std::string> sandboxArgv(const SandboxPlan& plan, const std::string& dir) {
  // The root first: bubblewrap makes the mount points of what follows inside it, and the
  // modules subgate writes there later appear at their own paths (a bind shares the folder).
  std::vector<std::string> argv = {plan.bwrap,
                                   "--die-with-parent",
                                   "--unshare-user",
                                   "--disable-userns",
                                   "--unshare-pid",
                                   "--unshare-ipc",
                                   "--unshare-uts",
                                   "--unshare-cgroup-try",
                                   "--hostname",
                                   "isolate",
                                   "--cap-drop",
                                   "ALL",
                                   "--bind",
                                   dir + "/root",
                                   "/",
                                   "--proc",
                                   "/proc",
                                   "--dev",
                                   "/dev",
                                   "--tmpfs",
                                   "/tmp"};
  for (const std::string& file : plan.visible) {
    argv.insert(argv.end(), {"--ro-bind", file, file});
  }
  for (const char* file : kEtcFiles) argv.insert(argv.end(), {"--ro-bind-try", file, file});
  // The isolate's folder is writable (its socket, its DENO_DIR), but not the root inside it,
  // which it reaches there too; then the root itself is made read-only.
  argv.insert(argv.end(), {"--bind", dir, dir, "--ro-bind", dir + "/root", dir + "/root",
                           "--remount-ro", "/", "--chdir", dir, "--"});
  return argv;
}

std::vector<std::string> sandboxMounts(const SandboxPlan& plan, const std::string& dir) {
  std::vector<std::string> mounts = {"/proc", "/dev", "/tmp"};
  mounts.insert(mounts.end(), plan.visible.begin(), plan.visible.end());
  mounts.insert(mounts.end(), std::begin(kEtcFiles), std::end(kEtcFiles));
  mounts.push_back(dir);
  return mounts;
}

bool handDirToIsolate(const SandboxPlan& plan, uint64_t isolate_id, const std::string& dir,
                      std::string& error) {
  if (!plan.enabled || !plan.change_user) return true;
  const uid_t uid = isolateUid(plan, isolate_id);
  for (const std::string& path : {dir, dir + "/sock", dir + "/deno", dir + "/root"}) {
    if (chown(path.c_str(), uid, static_cast<gid_t>(uid)) != 0) {
      error = "cannot hand " + path + " to the isolate's user: " + std::strerror(errno);
      return false;
    }
  }
  chmod(dir.c_str(), 0700);
  chmod((dir + "/root").c_str(),
        0755);  // read-only inside the sandbox: the isolate cannot change its code
  return true;
}

bool planSandbox(const SandboxSettings& settings, const std::string& deno_path,
                 const std::string& harness_path, const std::string& probe_dir,
                 std::shared_ptr<const SandboxPlan>& out, std::string& error,
                 std::vector<std::string>& notes) {
  auto plan = std::make_shared<SandboxPlan>();
  std::vector<Ipv4Cidr> host_v4;
  std::vector<std::string> host_v6;
  hostAddresses(host_v4, host_v6);
  plan->deny_net = denyNetList(settings.egress, host_v4, host_v6);
  plan->gate = egressGate(settings.egress, host_v4, resolvConfNameservers());
  plan->enabled = settings.enabled;
  if (!plan->enabled) {
    out = std::move(plan);
    return true;
  }
  plan->bwrap = settings.bwrap.empty() ? findProgram("bwrap") : settings.bwrap;
  if (plan->bwrap.empty() || access(plan->bwrap.c_str(), X_OK) != 0) {
    error =
        "the isolate sandbox needs bubblewrap (bwrap), which is not installed: install it "
        "(apt-get install bubblewrap, or scripts/setup.sh runtime), or write `sandbox off;` in "
        "the runtime block to run isolates behind Deno's permissions only";
    return false;
  }
  plan->change_user = geteuid() == 0;
  plan->uid_base = settings.uid_base;
  plan->uid_count = std::max<uint32_t>(settings.uid_count, 1);
  plan->deno = deno_path;
  if (plan->change_user && !openToOthers(deno_path)) {
    // A checkout under /root, say: the isolates' users could not start it.
    // Written beside and renamed over: a reload must not write into a binary isolates run.
    const std::string copy = std::filesystem::path(probe_dir).parent_path() / "deno";
    const std::string fresh = copy + ".new";
    std::error_code copy_error;
    std::filesystem::copy_file(deno_path, fresh, std::filesystem::copy_options::overwrite_existing,
                               copy_error);
    if (!copy_error && chmod(fresh.c_str(), 0755) == 0)
      std::filesystem::rename(fresh, copy, copy_error);
    if (copy_error) {
      error = "cannot copy the Deno binary to " + copy +
              " for the isolates' users: " + copy_error.message();
      return false;
    }
    plan->deno = copy;
  }
  plan->visible.push_back(plan->deno);
  std::vector<std::string> libraries = librariesOf(deno_path);
  if (libraries.empty()) {
    for (const char* dir : {"/lib", "/lib64", "/usr/lib", "/usr/lib64"}) {
      if (access(dir, R_OK) == 0) plan->visible.push_back(dir);
    }
  }
  for (const std::string& library : libraries) plan->visible.push_back(library);
  plan->visible.push_back(harness_path);
  plan->visible.push_back(netShimPath(harness_path));
  plan->visible.push_back(importMapPath(harness_path));
  plan->visible.push_back(warmModulePath(harness_path));
  ConfinementOptions options;
  options.notify_connect = true;
  plan->confinement = prepareConfinement(options, notes);

  // Prove it: Deno starts inside the walls, as the user the isolates get.
  std::error_code ec;
  std::filesystem::remove_all(probe_dir, ec);
  std::filesystem::create_directories(probe_dir + "/root", ec);
  std::filesystem::create_directories(probe_dir + "/sock", ec);
  std::filesystem::create_directories(probe_dir + "/deno", ec);
  const uint64_t probe_id = 0;
  std::string output;
  bool ok = !ec && handDirToIsolate(*plan, probe_id, probe_dir, output);
  if (ok) {
    std::vector<std::string> argv = sandboxArgv(*plan, probe_dir);
    argv.insert(argv.end(), {plan->deno, "--version"});
    ok = runProbe(argv, isolateConfinement(*plan, probe_id), output);
  }
  std::filesystem::remove_all(probe_dir, ec);
  if (!ok) {
    const std::string tail = lastLines(output, 400);
    error =
        "the isolate sandbox cannot start here (bubblewrap needs user namespaces, and the "
        "isolate's user must be able to read the Deno binary): " +
        tail +
        ". Fix that, or write `sandbox off;` in the runtime block to run isolates behind "
        "Deno's permissions only";
    return false;
  }
  out = std::move(plan);
  return true;
}

}  // namespace subgate
