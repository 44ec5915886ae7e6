#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/process/proc_stat.h"

namespace subgate {
namespace {

TEST(ProcessTree, AProcessIsInItsOwnTreeAndItsAncestorsButNotItsChilds) {
  const pid_t self = getpid();
  EXPECT_TRUE(isInProcessTree(self, self));
  EXPECT_TRUE(isInProcessTree(self, getppid()));
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  if (child == 0) {
    char byte;
    ssize_t ignored = read(ready[0], &byte, 1);  // lives until the parent is done
    (void)ignored;
    _exit(0);
  }
  EXPECT_TRUE(isInProcessTree(child, self));
  EXPECT_FALSE(isInProcessTree(self, child));
  EXPECT_FALSE(isInProcessTree(getppid(), self));
  ssize_t ignored = write(ready[1], "x", 1);
  (void)ignored;
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(isInProcessTree(child, self)) << "gone";
  close(ready[0]);
  close(ready[1]);
}

}  // namespace
}  // namespace subgate
