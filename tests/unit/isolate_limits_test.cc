// The pure parts of the isolates' CPU and memory limits: /proc/PID/stat's CPU fields, where this
// process's cgroups are (/proc/self/cgroup and mountinfo), "key N" files, the two CPU rules
// (cpu_limits.h), the runtime block's limit directives and the isolate's lean launch
// (runtime_launch.h). The limits themselves, on real
// isolates: tests/integration/test_isolate_limits.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/isolates/cpu_limits.h"
#include "core/isolates/runtime_launch.h"
#include "core/isolates/runtime_settings.h"
#include "core/process/cgroups.h"
#include "core/process/proc_stat.h"
#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using namespace std::chrono_literals;
using test_support::configError;
using test_support::PipelineHarness;

TEST(ProcStat, UserPlusSystemTicksAfterTheCommandName) {
  EXPECT_EQ(parseStatCpuTicks("1234 (deno) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 "
                              "12 0 500 100000 200"),
            287u);
  // The command name may hold spaces and parentheses: fields count from the last ')'.
  EXPECT_EQ(parseStatCpuTicks("77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 9 0 0"), 11u);
  EXPECT_EQ(parseStatCpuTicks("77 (x) R 1 77 77 0 -1 0 0 0 0 0 5 6\n"), 11u);
}

TEST(ProcStat, MalformedLinesGiveNothing) {
  EXPECT_FALSE(parseStatCpuTicks(""));
  EXPECT_FALSE(parseStatCpuTicks("1234 deno S 1 2 3"));
  EXPECT_FALSE(parseStatCpuTicks("1234 (deno) S 1 1234 1234 0 -1 4194560 100 0 0 0 250"));
  EXPECT_FALSE(parseStatCpuTicks("1234 (deno) S 1 1234 1234 0 -1 4194560 100 0 0 0 2x5 37 0"));
  // The start time is field 22: a line cut before it gives nothing.
  EXPECT_FALSE(parseStatFields("77 (x) R 1 77 77 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0"));
  EXPECT_FALSE(parseStatFields("77 (x) R 1 77 77 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 y 0"));
}

TEST(ProcStat, CpuTicksAndStartTime) {
  const auto fields = parseStatFields(
      "1234 (deno) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 12 0 500 100000 200\n");
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->cpu_ticks, 287u);
  EXPECT_EQ(fields->start_time, 500u);
  const auto odd = parseStatFields("77 (a) (b) R 1 77 77 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 9");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->cpu_ticks, 11u);
  EXPECT_EQ(odd->start_time, 9u);
}

TEST(ProcStat, ThisProcessHasACpuTime) {
  // Read in this order, each at least the one before: CPU time only grows, and the process
  // counts its main thread, its tree the process. Give or take a clock tick between a thread's
  // and its process's: each file rounds its user and system times down to ticks on its own.
  ProcessTreeCpu reader(getpid(), std::chrono::hours(1));
  auto main_thread = reader.read(std::chrono::steady_clock::now(), true, false).main_threads;
  ASSERT_TRUE(main_thread);
  auto own = processCpuTime(getpid());
  ASSERT_TRUE(own);
  auto tree = reader.read(std::chrono::steady_clock::now(), false, true).all_threads;
  ASSERT_TRUE(tree);
  EXPECT_GE(*own + 10ms, *main_thread);
  EXPECT_GE(*tree, *own);
  EXPECT_FALSE(processCpuTime(-1));
}

// This machine's layout (a container with cgroup v1 hierarchies and an empty v2 one).
constexpr const char* kHybridCgroup =
    "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";
constexpr const char* kHybridMounts =
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(Cgroups, FoldersOfAV1Layout) {
  EXPECT_EQ(cgroupFolder(kHybridCgroup, kHybridMounts, "memory"),
            "/sys/fs/cgroup/memory/process_api/abc");
  EXPECT_EQ(cgroupFolder(kHybridCgroup, kHybridMounts, "pids"), "/sys/fs/cgroup/pids");
  EXPECT_EQ(cgroupFolder(kHybridCgroup, kHybridMounts, "cpuacct"), "/sys/fs/cgroup/cpuacct");
  EXPECT_EQ(cgroupFolder(kHybridCgroup, kHybridMounts, ""), "/sys/fs/cgroup/unified");
  EXPECT_EQ(cgroupFolder(kHybridCgroup, kHybridMounts, "blkio"), "");  // not in either file
}

TEST(Cgroups, CoMountedControllersAndV2) {
  EXPECT_EQ(
      cgroupFolder("3:cpu,cpuacct:/a/b\n",
                   "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
                   "cpuacct"),
      "/sys/fs/cgroup/cpu,cpuacct/a/b");
  EXPECT_EQ(cgroupFolder("0::/system.slice/subgate.service\n",
                         "25 22 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n", ""),
            "/sys/fs/cgroup/system.slice/subgate.service");
  // A mount of part of the hierarchy (its root is the cgroup path's prefix).
  EXPECT_EQ(
      cgroupFolder("4:memory:/docker/abc/inner\n",
                   "34 30 0:31 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
                   "memory"),
      "/sys/fs/cgroup/memory/inner");
  EXPECT_EQ(
      cgroupFolder("4:memory:/other\n",
                   "34 30 0:31 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
                   "memory"),
      "");
}

TEST(Cgroups, KeyedValues) {
  const char* oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
  EXPECT_EQ(keyedValue(oom_control, "oom_kill"), 3u);
  EXPECT_EQ(keyedValue(oom_control, "under_oom"), 0u);
  EXPECT_FALSE(keyedValue(oom_control, "oom"));
  EXPECT_EQ(keyedValue("usage_usec 1500\nuser_usec 1000\n", "usage_usec"), 1500u);
  EXPECT_FALSE(keyedValue("oom_kill x\n", "oom_kill"));
}

TEST(LoopWatch, BlockedOnlyAfterTheLimitInCpuTimeSinceAnUnansweredPing) {
  LoopWatch watch;
  EXPECT_FALSE(watch.blocked(10s, 1s));  // no ping out
  const uint64_t first = watch.pinged(2s);
  EXPECT_TRUE(watch.waiting());
  EXPECT_FALSE(watch.blocked(2s + 999ms, 1s));
  EXPECT_TRUE(watch.blocked(3s, 1s));
  watch.answered(first);
  EXPECT_FALSE(watch.blocked(10s, 1s));
  // The answer to an older ping does not count for the one out now.
  const uint64_t second = watch.pinged(10s);
  watch.answered(first);
  EXPECT_TRUE(watch.blocked(11s, 1s));
  watch.answered(second);
  EXPECT_FALSE(watch.waiting());
}

TEST(LoopWatch, PingsOnlyAProcessThatUsedCpuTimeSinceItsLastPing) {
  LoopWatch watch;
  EXPECT_TRUE(watch.needsPing(0s));  // the first tick always pings
  const uint64_t first = watch.pinged(2s);
  EXPECT_FALSE(watch.needsPing(2s)) << "no CPU time used since it went out";
  watch.answered(first);
  // Idle since: no ping (it would be answered at once).
  EXPECT_FALSE(watch.needsPing(2s));
  EXPECT_FALSE(watch.blocked(2s, 1s));
  // It ran: the ping goes out and counts from this tick's CPU time, as it would have if every
  // idle tick had pinged (each such ping answered at once).
  EXPECT_TRUE(watch.needsPing(2s + 10ms));
  watch.pinged(2s + 10ms);
  EXPECT_FALSE(watch.blocked(3s, 1s));
  EXPECT_TRUE(watch.blocked(3s + 10ms, 1s));
}

// User code can read its isolate's stdin and take a ping off it, which the harness then never
// answers. With one ping out at a time, the isolate was killed after its next second of CPU time
// however well its loop turned.
TEST(LoopWatch, ALostPingIsFollowedByAnotherAndALaterAnswerEndsTheWait) {
  LoopWatch watch;
  const uint64_t lost = watch.pinged(2s);
  EXPECT_FALSE(watch.needsPing(2s)) << "idle since";
  EXPECT_TRUE(watch.needsPing(2s + 250ms)) << "it used CPU time: another goes out";
  const uint64_t next = watch.pinged(2s + 250ms);
  EXPECT_EQ(next, lost + 1);
  EXPECT_TRUE(watch.blocked(3s, 1s)) << "a block counts from the first unanswered ping";
  watch.answered(next);
  EXPECT_FALSE(watch.waiting());
  EXPECT_FALSE(watch.blocked(5s, 1s));
  // A late answer to a ping from before the wait began does not end it.
  const uint64_t third = watch.pinged(6s);
  watch.answered(lost);
  EXPECT_TRUE(watch.waiting());
  watch.answered(third + 1) /* never sent */;
  EXPECT_TRUE(watch.waiting());
  watch.answered(third);
  EXPECT_FALSE(watch.waiting());
}

TEST(CpuWindow, UsageOverTheLastWindowOfSamples) {
  CpuWindow window;
  const SteadyTime t0 = SteadyTime() + 100s;
  // 400 ms of CPU per 250 ms tick would be impossible on one core; the numbers only test sums.
  EXPECT_EQ(window.add(t0, 1000ms, 1000ms), 0ms);  // the first sample is the baseline
  EXPECT_EQ(window.add(t0 + 250ms, 1100ms, 1000ms), 100ms);
  EXPECT_EQ(window.add(t0 + 500ms, 1300ms, 1000ms), 300ms);
  EXPECT_EQ(window.add(t0 + 1000ms, 1500ms, 1000ms), 500ms);  // t0 is exactly a window back
  // t0 is now older than the window: the baseline is t0 + 250 ms.
  EXPECT_EQ(window.add(t0 + 1250ms, 1600ms, 1000ms), 500ms);
  // After a gap longer than the window only the new sample is left: it is its own baseline.
  EXPECT_EQ(window.add(t0 + 10s, 9000ms, 1000ms), 0ms);
}

constexpr const char* kServer = "server { listen 127.0.0.1:1; location / { isolates; } }\n";

std::string runtimeError(const std::string& directives) {
  return configError("runtime deno { " + directives + " }\n" + kServer);
}

TEST(RuntimeLimits, AcceptsTheLimitDirectives) {
  for (const char* directives :
       {"cpu_block_limit 1s; cpu_limit 5s per 10s;", "cpu_block_limit off; cpu_limit off;",
        "cpu_limit 20s per 10s;", "memory_limit 64m; process_memory_limit 64m;",
        "max_files 64; max_processes 32;"}) {
    PipelineHarness harness(std::string("runtime deno { ") + directives + " }\n" + kServer);
    EXPECT_TRUE(harness.ok()) << directives << ": " << harness.error();
  }
}

TEST(RuntimeLimits, RefusesMalformedLimits) {
  EXPECT_EQ(runtimeError("cpu_block_limit 10ms;"),
            "<embedded>:1: cpu_block_limit must be at least 50ms (or off)");
  EXPECT_EQ(runtimeError("cpu_block_limit forever;"),
            "<embedded>:1: invalid duration \"forever\" in \"cpu_block_limit\" directive");
  EXPECT_EQ(runtimeError("cpu_limit 5s 10s;"),
            "<embedded>:1: cpu_limit takes BUDGET per WINDOW (e.g. 5s per 10s) or off");
  EXPECT_EQ(runtimeError("cpu_limit 5s;"),
            "<embedded>:1: cpu_limit takes BUDGET per WINDOW (e.g. 5s per 10s) or off");
  EXPECT_EQ(runtimeError("cpu_limit 0s per 10s;"),
            "<embedded>:1: invalid duration \"0s\" in \"cpu_limit\" directive");
  EXPECT_EQ(runtimeError("cpu_limit 100ms per 500ms;"),
            "<embedded>:1: the cpu_limit window must be a duration of at least 1s");
  EXPECT_EQ(runtimeError("memory_limit 128m; process_memory_limit 64m;"),
            "<embedded>:1: process_memory_limit must be at least memory_limit");
  EXPECT_EQ(runtimeError("process_memory_limit 1m;"),
            "<embedded>:1: invalid size \"1m\" in \"process_memory_limit\" directive");
  EXPECT_EQ(runtimeError("max_files 4;"),
            "<embedded>:1: invalid number \"4\" in \"max_files\" directive");
  EXPECT_EQ(runtimeError("max_processes 0;"),
            "<embedded>:1: invalid number \"0\" in \"max_processes\" directive");
}

TEST(RuntimeLimits, RefusesMalformedV8Flags) {
  EXPECT_TRUE(PipelineHarness(std::string("runtime deno { v8_flags --max-semi-space-size=8 "
                                          "--stack-size=900; }\n") +
                              kServer)
                  .ok());
  EXPECT_TRUE(PipelineHarness(std::string("runtime deno { v8_flags; }\n") + kServer).ok());
  EXPECT_EQ(runtimeError("v8_flags max-semi-space-size=8;"),
            "<embedded>:1: v8_flags: \"max-semi-space-size=8\" is not a V8 flag (--name or "
            "--name=value, no commas)");
  EXPECT_EQ(runtimeError("v8_flags --a,--b;"),
            "<embedded>:1: v8_flags: \"--a,--b\" is not a V8 flag (--name or --name=value, no "
            "commas)");
}

// The memory-lean launch (docs/performance.md, "Isolates per GiB"): no V8 code cache, the
// default V8 flags after the heap cap, the operator's in their place.
TEST(RuntimeLaunch, StartsIsolatesLean) {
  RuntimeLaunch launch;
  launch.settings.deno_path = "/deno";
  launch.harness_path = "/h/harness.js";
  launch.sandbox = std::make_shared<SandboxPlan>();
  launch.settings.memory_limit = 128ull << 20;
  std::vector<std::string> argv = runtimeArgv(launch, "/tmp/iso", nullptr);
  auto has = [&](const std::string& arg) {
    return std::find(argv.begin(), argv.end(), arg) != argv.end();
  };
  EXPECT_TRUE(has("--no-code-cache"));
  EXPECT_TRUE(has("--v8-flags=--max-old-space-size=128,--max-semi-space-size=4"));
  launch.settings.v8_flags = {"--max-semi-space-size=16", "--stack-size=900"};
  argv = runtimeArgv(launch, "/tmp/iso", nullptr);
  EXPECT_TRUE(has("--v8-flags=--max-old-space-size=128,--max-semi-space-size=16,--stack-size=900"));
  launch.settings.v8_flags.clear();
  argv = runtimeArgv(launch, "/tmp/iso", nullptr);
  EXPECT_TRUE(has("--v8-flags=--max-old-space-size=128"));
}

TEST(RuntimeSettings, TheProcessCapDefaultsToTwiceTheHeap) {
  RuntimeSettings settings;
  settings.memory_limit = 64ull << 20;
  EXPECT_EQ(settings.processMemoryLimit(), 128ull << 20);
  settings.process_memory_limit = 100ull << 20;
  EXPECT_EQ(settings.processMemoryLimit(), 100ull << 20);
}

}  // namespace
}  // namespace subgate
