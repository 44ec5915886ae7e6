#include "core/isolates/runtime_launch.h"

#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "core/isolates/module_path.h"

namespace subgate {

std::vector<std::string> runtimeArgv(const RuntimeLaunch& launch, const std::string& dir,
                                     const DeploymentCode* code) {
  const RuntimeSettings& settings = launch.settings;
  std::vector<std::string> argv;
  if (launch.sandbox->enabled) argv = sandboxArgv(*launch.sandbox, dir);
  argv.insert(argv.end(), {launch.sandbox->enabled ? launch.sandbox->deno : settings.deno_path,
                           "run", "--quiet", "--no-prompt", "--no-config", "--no-lock"});
  // Remote modules come from the deployment's bundle, written into the isolate's Deno cache
  // (code_assembly.h): an import the bundle lacks fails instead of reaching the network.
  argv.push_back("--cached-only");
  // Each isolate's Deno cache is its own and dies with it, so V8's code cache there was only
  // ever written (a SQLite database and its thread; about 1 MiB resident and 1.5 MiB of files),
  // never read back.
  argv.push_back("--no-code-cache");
  const std::string shim = netShimPath(launch.harness_path);
  if (launch.sandbox->enabled) {
    // The deployment's modules may live anywhere in the isolate's own root (module_path.h), and
    // Deno checks reads of a dynamically imported graph: user code reads that root, but none of
    // what the sandbox mounts over it for the runtime (its /proc, libraries, DENO_DIR).
    argv.push_back("--allow-read");
    std::string deny = "--deny-read=" + dir + "/deno";
    for (const std::string& mount : sandboxMounts(*launch.sandbox, dir)) {
      // Not the isolate's own folder nor what holds it (its socket is read there), nor the
      // harness's files.
      if (pathWithin(dir, mount) || mount == shim || mount == launch.harness_path ||
          mount == importMapPath(launch.harness_path) ||
          mount == warmModulePath(launch.harness_path))
        continue;
      deny += ',';
      deny += mount;
    }
    argv.push_back(std::move(deny));
  } else {
    argv.push_back("--allow-read=" + dir + "/root," + dir + "/sock," + shim + "," +
                   warmModulePath(launch.harness_path));
  }
  argv.push_back("--import-map=" + importMapPath(launch.harness_path));
  argv.push_back("--allow-write=" + dir + "/sock");
  argv.push_back("--allow-env");
  if (!code || code->net != DeploymentCode::Net::kList) {
    if (!code || code->net == DeploymentCode::Net::kAll || code->net == DeploymentCode::Net::kNone)
      argv.push_back("--allow-net");  // kNone: revoked by the harness, so spares stay generic
  } else {
    // The harness's own socket must be allowed too: Deno checks unix listeners as net access.
    std::string list = "unix:" + dir + "/sock/s.sock";
    for (const std::string& host : code->net_allow) list += "," + host;
    argv.push_back("--allow-net=" + list);
  }
  // Denials win over any grant, the deployment's own list included (egress_policy.h).
  argv.push_back("--deny-net=" + launch.sandbox->deny_net);
  std::string v8_flags = "--v8-flags=--max-old-space-size=" +
                         std::to_string(std::max<uint64_t>(settings.memory_limit >> 20, 16));
  for (const std::string& flag : settings.v8_flags) {
    v8_flags += ',';  // Deno splits the value on commas; v8_flags has none (isolates_module.cc)
    v8_flags += flag;
  }
  argv.push_back(std::move(v8_flags));
  argv.push_back(launch.harness_path);
  argv.push_back(dir + "/sock/s.sock");
  return argv;
}

std::vector<std::string> runtimeEnv(const RuntimeLaunch&, const std::string& dir) {
  return {"DENO_DIR=" + dir + "/deno", "HOME=" + dir + "/deno", "NO_COLOR=1",
          "DENO_NO_UPDATE_CHECK=1",    "DENO_NO_PROMPT=1",      "PATH=/usr/bin:/bin"};
}

std::string netShimPath(const std::string& harness_path) {
  return std::filesystem::path(harness_path).parent_path() / "node_net_shim.js";
}

std::string warmModulePath(const std::string& harness_path) {
  return std::filesystem::path(harness_path).parent_path() / "warm.ts";
}

std::string importMapPath(const std::string& harness_path) {
  return std::filesystem::path(harness_path).parent_path() / "import_map.json";
}

std::string importMapJson(const std::string& shim_path) {
  // node:net means the shim, except inside the shim, where it means node:net.
  const std::string shim = "file://" + shim_path;
  return "{\"imports\":{\"node:net\":\"" + shim + "\"},\"scopes\":{\"" + shim +
         "\":{\"node:net\":\"node:net\"}}}\n";
}

namespace {

// Whether `pid` is a running process. A zombie counts as dead: in a container whose init does
// not reap, a killed subgate stays a zombie indefinitely.
bool processAlive(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;  // cannot tell: leave its folder alone
  size_t paren = line.rfind(')');  // the command name may contain spaces and parentheses
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

}  // namespace

void removeOrphanFolders() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("subgate-") || name.size() != 14) continue;  // mkdtemp's 6 characters
    std::ifstream owner(entry.path() / kOwnerFile);
    pid_t pid = 0;
    if (!(owner >> pid) || pid <= 0) continue;
    if (processAlive(pid)) continue;
    std::filesystem::remove_all(entry.path(), ec);
  }
}

}  // namespace subgate
