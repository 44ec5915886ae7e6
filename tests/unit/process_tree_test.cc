// The process-tree parts of core/process/proc_stat.h on this test process and forked children:
// isInProcessTree, readSmallFile, findProcessTree and ProcessTreeCpu (the isolates' limits tick).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "core/process/proc_stat.h"

namespace subgate {
namespace {

using namespace std::chrono_literals;

// A forked child that waits until released (after using `spin` of CPU time), then exits.
class Child {
 public:
  explicit Child(std::chrono::milliseconds spin = 0ms) {
    if (pipe(gate_) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      // CPU time, not wall time: on a busy machine it may get a fraction of a core.
      for (timespec used{};
           clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used) == 0 &&
           std::chrono::seconds(used.tv_sec) + std::chrono::nanoseconds(used.tv_nsec) < spin;) {
      }
      char byte;
      ssize_t ignored = read(gate_[0], &byte, 1);  // lives until released
      (void)ignored;
      _exit(0);
    }
  }
  ~Child() {
    release();
    close(gate_[0]);
    close(gate_[1]);
  }
  pid_t pid() const { return pid_; }
  // Lets it exit and reaps it.
  void release() {
    if (pid_ <= 0) return;
    ssize_t ignored = write(gate_[1], "x", 1);
    (void)ignored;
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  int gate_[2] = {-1, -1};
  pid_t pid_ = -1;
};

bool hasMember(const std::vector<TreeMember>& members, pid_t pid) {
  for (const TreeMember& member : members)
    if (member.pid == pid) return true;
  return false;
}

TEST(ProcessTree, AProcessIsInItsOwnTreeAndItsAncestorsButNotItsChilds) {
  const pid_t self = getpid();
  EXPECT_TRUE(isInProcessTree(self, self));
  EXPECT_TRUE(isInProcessTree(self, getppid()));
  Child child;
  ASSERT_GT(child.pid(), 0);
  const pid_t pid = child.pid();
  EXPECT_TRUE(isInProcessTree(pid, self));
  EXPECT_FALSE(isInProcessTree(self, pid));
  EXPECT_FALSE(isInProcessTree(getppid(), self));
  child.release();
  EXPECT_FALSE(isInProcessTree(pid, self)) << "gone";
}

TEST(ProcessTree, ReadsASmallFileIntoTheBufferGiven) {
  char buffer[1024];
  const auto stat = readSmallFile("/proc/self/stat", buffer, sizeof buffer);
  ASSERT_TRUE(stat);
  EXPECT_TRUE(stat->starts_with(std::to_string(getpid()) + " (")) << *stat;
  EXPECT_TRUE(stat->ends_with("\n"));
  const auto fields = parseStatFields(*stat);
  ASSERT_TRUE(fields);
  EXPECT_GT(fields->start_time, 0u);
  // Cut at the buffer's size; a missing file gives nothing.
  const auto cut = readSmallFile("/proc/self/stat", buffer, 8);
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->size(), 8u);
  EXPECT_FALSE(readSmallFile("/proc/self/no-such-file", buffer, sizeof buffer));
}

TEST(ProcessTree, FindsTheProcessAndItsChildrenWithTheirStartTimes) {
  EXPECT_TRUE(findProcessTree(-1).empty());
  Child child;
  ASSERT_GT(child.pid(), 0);
  const auto members = findProcessTree(getpid());
  ASSERT_GE(members.size(), 2u);
  EXPECT_EQ(members.front().pid, getpid()) << "the root first";
  ASSERT_TRUE(hasMember(members, child.pid()));
  char buffer[1024];
  const std::string path = "/proc/" + std::to_string(child.pid()) + "/stat";
  const auto stat = readSmallFile(path.c_str(), buffer, sizeof buffer);
  ASSERT_TRUE(stat);
  for (const TreeMember& member : members) {
    if (member.pid == child.pid()) {
      EXPECT_EQ(member.start_time, parseStatFields(*stat)->start_time);
    }
  }
  const pid_t pid = child.pid();
  child.release();
  EXPECT_FALSE(hasMember(findProcessTree(getpid()), pid));
}

TEST(ProcessTreeCpu, FindsTheTreeOnceThenOnlyAtTheRefreshOrWhenAMemberIsGone) {
  const auto t0 = std::chrono::steady_clock::now();
  ProcessTreeCpu tree(getpid(), 5s);
  EXPECT_EQ(tree.root(), getpid());
  auto times = tree.read(t0, true, true);
  ASSERT_TRUE(times.main_threads);
  ASSERT_TRUE(times.all_threads);
  // Every thread's time is at least the main thread's, give or take a clock tick: each file
  // rounds its user and system times down to ticks on its own.
  EXPECT_GE(*times.all_threads + 10ms, *times.main_threads);
  EXPECT_EQ(tree.discoveries(), 1u);
  // A child started after: not read before the refresh (the limits tick's isolates start none).
  Child child(50ms);
  ASSERT_GT(child.pid(), 0);
  times = tree.read(t0 + 1s, false, true);
  EXPECT_FALSE(times.main_threads) << "not asked for";
  ASSERT_TRUE(times.all_threads);
  EXPECT_EQ(tree.discoveries(), 1u);
  EXPECT_FALSE(hasMember(tree.members(), child.pid()));
  // At the refresh it is found, with all the CPU time it used since it started.
  const auto before = *times.all_threads;
  times = tree.read(t0 + 5s, true, true);
  EXPECT_EQ(tree.discoveries(), 2u);
  ASSERT_TRUE(hasMember(tree.members(), child.pid()));
  ASSERT_TRUE(times.all_threads);
  EXPECT_GE(*times.all_threads, before);
  // Gone: found again at once, without it; the times are still read.
  const pid_t pid = child.pid();
  child.release();
  times = tree.read(t0 + 6s, true, true);
  EXPECT_EQ(tree.discoveries(), 3u);
  EXPECT_FALSE(hasMember(tree.members(), pid));
  EXPECT_TRUE(times.main_threads);
  EXPECT_TRUE(times.all_threads);
  times = tree.read(t0 + 7s, true, true);
  EXPECT_EQ(tree.discoveries(), 3u) << "the tree is known again";
}

TEST(ProcessTreeCpu, CountsAChildsCpuTimeAndNothingOnceTheRootIsGone) {
  Child spinner(100ms);  // 10 clock ticks of CPU time
  ASSERT_GT(spinner.pid(), 0);
  const pid_t pid = spinner.pid();
  // The child spins as a tree of its own: root gone later means nothing is read.
  ProcessTreeCpu tree(pid, 5s);
  const auto t0 = std::chrono::steady_clock::now();
  // Poll (bounded: 10 s) until its spin shows in its own main thread's time.
  std::optional<std::chrono::nanoseconds> main_thread;
  for (int i = 0; i < 2000; ++i) {
    main_thread = tree.read(t0, true, false).main_threads;
    ASSERT_TRUE(main_thread);
    if (*main_thread >= 50ms) break;
    usleep(5000);
  }
  EXPECT_GE(*main_thread, 50ms);
  spinner.release();
  const auto times = tree.read(t0 + 1s, true, true);
  EXPECT_FALSE(times.main_threads);
  EXPECT_FALSE(times.all_threads);
}

}  // namespace
}  // namespace subgate
