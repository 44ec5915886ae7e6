#include "core/process/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace subgate {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool writeFile(const std::string& path, std::string_view value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  ::close(fd);
  return ok;
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

bool makeFolder(const std::string& path) {
  return mkdir(path.c_str(), 0755) == 0 || errno == EEXIST;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

bool listed(std::string_view list, std::string_view item, char separator) {
  for (std::string_view part : split(list, separator))
    if (part == item) return true;
  return false;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// The v2 folder of this process with `controller` enabled for the children of `group` in it
// ("" when it is not listed or cannot be enabled: the parent holds processes, say, which v2's
// no-internal-processes rule forbids unless it was already delegated with the controller on).
std::string enableV2(const std::string& own, const std::string& group, const char* controller) {
  if (own.empty() || !listed(trimmed(readFile(own + "/cgroup.controllers")), controller, ' '))
    return "";
  const std::string on = std::string("+") + controller;
  if (!listed(trimmed(readFile(own + "/cgroup.subtree_control")), controller, ' ') &&
      !writeFile(own + "/cgroup.subtree_control", on))
    return "";
  std::string folder = own + "/" + group;
  if (!makeFolder(folder) || !writeFile(folder + "/cgroup.subtree_control", on)) return "";
  return folder;
}

// Removes the folders in `own` that `orphan` names, with their children (cgroup folders hold
// only their control files, which rmdir takes along; a child with tasks left stays).
// Iterates with error codes: another process may remove folders meanwhile, and a range-for's
// increment would throw.
void removeOrphans(const std::string& own, const std::function<bool(std::string_view)>& orphan) {
  using std::filesystem::directory_iterator;
  std::error_code ec;
  for (directory_iterator it(own, ec); !ec && it != directory_iterator(); it.increment(ec)) {
    if (!orphan(it->path().filename().string())) continue;
    std::error_code child_ec;
    for (directory_iterator child(it->path(), child_ec); !child_ec && child != directory_iterator();
         child.increment(child_ec))
      rmdir(child->path().c_str());  // fails on control files, which go with their folder
    rmdir(it->path().c_str());
  }
}

// The group folder for a v1 controller: made in this process's cgroup of that hierarchy.
std::string openV1(const std::string& own, const std::string& group, const char* probe) {
  if (own.empty()) return "";
  std::string folder = own + "/" + group;
  if (!makeFolder(folder) || !exists(folder + "/" + probe)) return "";
  return folder;
}

void describe(std::string& summary, const char* what, const std::string& folder, bool v2) {
  if (!summary.empty()) summary += "; ";
  summary += what;
  summary += folder.empty() ? ": none" : (v2 ? ": cgroup v2 " : ": cgroup v1 ") + folder;
}

}  // namespace

std::string cgroupFolder(std::string_view proc_self_cgroup, std::string_view mountinfo,
                         std::string_view controller) {
  // /proc/self/cgroup: "ID:CONTROLLERS:PATH" (v2: "0::PATH").
  std::string path;
  bool found = false;
  for (std::string_view line : split(proc_self_cgroup, '\n')) {
    std::vector<std::string_view> fields = split(line, ':');
    if (fields.size() < 3) continue;
    std::string_view controllers = fields[1];
    bool match = controller.empty() ? fields[0] == "0" && controllers.empty()
                                    : listed(controllers, controller, ',');
    if (!match) continue;
    path = std::string(line.substr(fields[0].size() + controllers.size() + 2));
    found = true;
    break;
  }
  if (!found) return "";
  // /proc/self/mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPER".
  for (std::string_view line : split(mountinfo, '\n')) {
    size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    std::vector<std::string_view> left = split(line.substr(0, dash), ' ');
    std::vector<std::string_view> right = split(line.substr(dash + 3), ' ');
    if (left.size() < 5 || right.size() < 3) continue;
    bool match = controller.empty() ? right[0] == "cgroup2"
                                    : right[0] == "cgroup" && listed(right[2], controller, ',');
    if (!match) continue;
    std::string_view root = left[3];
    std::string_view relative = path;
    if (root != "/") {  // a cgroup namespace or bind mount shows only part of the hierarchy
      if (!relative.starts_with(root)) continue;
      relative.remove_prefix(root.size());
    }
    std::string folder(left[4]);
    if (relative != "/") folder += relative;
    return folder;
  }
  return "";
}

std::optional<uint64_t> keyedValue(std::string_view text, std::string_view key) {
  for (std::string_view line : split(text, '\n')) {
    if (!line.starts_with(key) || line.size() <= key.size() || line[key.size()] != ' ') continue;
    std::string_view number = line.substr(key.size() + 1);
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec == std::errc() && end == number.data() + number.size()) return value;
  }
  return std::nullopt;
}

void CgroupSet::open(const std::string& group,
                     const std::function<bool(std::string_view)>& orphan) {
  const std::string self = readFile("/proc/self/cgroup");
  const std::string mounts = readFile("/proc/self/mountinfo");
  const std::string v2 = cgroupFolder(self, mounts, "");
  for (const char* controller : {"memory", "pids", "cpuacct", ""}) {
    const std::string own = cgroupFolder(self, mounts, controller);
    if (!own.empty()) removeOrphans(own, orphan);
  }
  memory_ = openV1(cgroupFolder(self, mounts, "memory"), group, "memory.limit_in_bytes");
  if (memory_.empty()) memory_v2_ = !(memory_ = enableV2(v2, group, "memory")).empty();
  pids_ = openV1(cgroupFolder(self, mounts, "pids"), group, "pids.max");
  if (pids_.empty()) pids_v2_ = !(pids_ = enableV2(v2, group, "pids")).empty();
  cpu_ = openV1(cgroupFolder(self, mounts, "cpuacct"), group, "cpuacct.usage");
  if (cpu_.empty() && !v2.empty() && exists(v2 + "/cpu.stat")) {
    // cpu.stat's usage_usec is there in every v2 cgroup, without the cpu controller. The group
    // may exist already (made for memory or pids).
    const std::string folder = v2 + "/" + group;
    if (makeFolder(folder)) {
      cpu_ = folder;
      cpu_v2_ = true;
    }
  }
  summary_.clear();
  describe(summary_, "memory", memory_, memory_v2_);
  describe(summary_, "tasks", pids_, pids_v2_);
  describe(summary_, "cpu time", cpu_, cpu_v2_);
}

bool CgroupSet::create(const std::string& name, const Caps& caps, std::vector<std::string>& procs,
                       std::string& error) const {
  auto join = [&](const std::string& folder) {
    if (!makeFolder(folder)) {
      error = "cannot create the cgroup " + folder + ": " + std::strerror(errno);
      return false;
    }
    const std::string file = folder + "/cgroup.procs";
    for (const std::string& known : procs)
      if (known == file) return true;  // v2: one folder serves every controller
    procs.push_back(file);
    return true;
  };
  auto cap = [&](const std::string& file, uint64_t value) {
    if (writeFile(file, std::to_string(value))) return true;
    error = "cannot write " + file + ": " + std::strerror(errno);
    return false;
  };
  if (!memory_.empty()) {
    const std::string folder = memory_ + "/" + name;
    if (!join(folder)) return false;
    if (caps.memory_bytes) {
      if (!cap(folder + (memory_v2_ ? "/memory.max" : "/memory.limit_in_bytes"), caps.memory_bytes))
        return false;
      // Swap would let the process grow past the cap; best effort (no swap accounting: none).
      if (memory_v2_) {
        writeFile(folder + "/memory.swap.max", "0");
      } else if (exists(folder + "/memory.memsw.limit_in_bytes")) {
        writeFile(folder + "/memory.memsw.limit_in_bytes", std::to_string(caps.memory_bytes));
      }
    }
  }
  if (!pids_.empty()) {
    const std::string folder = pids_ + "/" + name;
    if (!join(folder) || (caps.tasks && !cap(folder + "/pids.max", caps.tasks))) return false;
  }
  if (!cpu_.empty() && !join(cpu_ + "/" + name)) return false;
  return true;
}

uint64_t CgroupSet::oomKills(const std::string& name) const {
  if (memory_.empty()) return 0;
  const std::string file =
      memory_ + "/" + name + (memory_v2_ ? "/memory.events" : "/memory.oom_control");
  return keyedValue(readFile(file), "oom_kill").value_or(0);
}

std::string CgroupSet::cpuTimePath(const std::string& name) const {
  std::string path = cpu_;
  path.append("/").append(name).append(cpu_v2_ ? "/cpu.stat" : "/cpuacct.usage");
  return path;
}

std::optional<std::chrono::nanoseconds> CgroupSet::parseCpuTime(std::string_view text) const {
  if (cpu_v2_) {
    auto usec = keyedValue(text, "usage_usec");
    if (!usec) return std::nullopt;
    return std::chrono::microseconds(*usec);
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  uint64_t ns = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ns);
  if (ec != std::errc() || text.empty()) return std::nullopt;
  return std::chrono::nanoseconds(ns);
}

std::optional<std::chrono::nanoseconds> CgroupSet::cpuTime(const std::string& name,
                                                           CgroupCpuFile& file) const {
  if (cpu_.empty()) return std::nullopt;
  if (file.fd_ < 0) file.fd_ = ::open(cpuTimePath(name).c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd_ < 0) return std::nullopt;
  char buffer[1024];
  ssize_t n;
  do n = ::pread(file.fd_, buffer, sizeof buffer, 0);
  while (n < 0 && errno == EINTR);
  if (n <= 0) {
    file.close();
    return std::nullopt;
  }
  return parseCpuTime(std::string_view(buffer, static_cast<size_t>(n)));
}

void CgroupCpuFile::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool CgroupSet::remove(const std::string& name) const {
  bool removed = true;
  for (const std::string* group : {&memory_, &pids_, &cpu_}) {
    if (!group->empty() && rmdir((*group + "/" + name).c_str()) != 0 && errno != ENOENT)
      removed = false;
  }
  return removed;
}

void CgroupSet::killAll(const std::string& name) const {
  for (const std::string* group : {&memory_, &pids_, &cpu_}) {
    if (group->empty()) continue;
    std::ifstream procs(*group + "/" + name + "/cgroup.procs");
    for (pid_t pid; procs >> pid;) ::kill(pid, SIGKILL);
  }
}

void CgroupSet::close() {
  for (std::string* group : {&memory_, &pids_, &cpu_}) {
    if (!group->empty()) rmdir(group->c_str());
    group->clear();
  }
}

}  // namespace subgate
