// libFuzzer target: the cluster reports isolates send subgate (core/isolates/cluster_hub.h), JSON
// whose fields user code chooses (messages, identifiers, gossip values, call ids, timeouts).
// Two shared isolates of one deployment and a dedicated one are members; each input line is one
// report: its first byte picks the sender (ids 0 and 4 are no members; 0xf0 and above makes that
// member leave instead, as an isolate that dies mid-call), the rest is the report's JSON. The
// hub's deliveries are written to the members' input pipes and read back. A crash, a leak or a
// member left behind after every member left is a failure.
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/isolates/cluster_hub.h"
#include "core/log/log.h"

namespace {

event_base* loop() {
  static event_base* base = [] {
    std::string error;
    subgate::setErrorLog("stderr", subgate::LogLevel::kError, error);  // no line per rejection
    return event_base_new();
  }();
  return base;
}

void drain(int fd) {
  char buffer[65536];
  while (read(fd, buffer, sizeof buffer) > 0) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr uint64_t kMembers = 3;
  int pipes[kMembers][2];
  for (auto& fds : pipes)
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) abort();
  {
    subgate::ClusterHub hub(loop(), std::chrono::milliseconds(50));
    hub.join(1, "deployment", pipes[0][1]);
    hub.join(2, "deployment", pipes[1][1]);
    hub.join(3, "", pipes[2][1]);  // dedicated: a cluster of its own
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    while (!rest.empty()) {
      const size_t end = rest.find('\n');
      std::string_view line = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      if (line.empty()) continue;
      const auto who = static_cast<uint8_t>(line[0]);
      const uint64_t member = who % 5;
      if (who >= 0xf0) {
        hub.leave(member);
      } else {
        hub.report(member, line.substr(1));
      }
      event_base_loop(loop(), EVLOOP_NONBLOCK);  // the deliveries go out
      for (auto& fds : pipes) drain(fds[0]);
    }
    json_decref(hub.totalsJson());
    json_decref(hub.clusterJson("deployment"));
    for (uint64_t id = 1; id <= kMembers; ++id) hub.leave(id);
    if (hub.members() != 0) abort();
  }
  for (auto& fds : pipes) {
    close(fds[0]);
    close(fds[1]);
  }
  return 0;
}
