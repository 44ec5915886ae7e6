#include "core/files/read_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

namespace subgate::files {
namespace {

class ReadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/subgate-read-file-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST_F(ReadFileTest, ReadsARegularFileWhole) {
  std::string big(100000, 'x');
  big += "end\n";
  std::ofstream(dir_ + "/a.conf", std::ios::binary) << big;
  std::string text = "replaced", error;
  ASSERT_TRUE(readRegularFile(dir_ + "/a.conf", text, error)) << error;
  EXPECT_EQ(text, big);
  std::ofstream(dir_ + "/empty.conf");
  ASSERT_TRUE(readRegularFile(dir_ + "/empty.conf", text, error)) << error;
  EXPECT_EQ(text, "");
}

TEST_F(ReadFileTest, NamesWhatIsWrong) {
  std::string text, error;
  EXPECT_FALSE(readRegularFile(dir_ + "/missing", text, error));
  EXPECT_EQ(error, dir_ + "/missing: cannot open: No such file or directory");
  EXPECT_FALSE(readRegularFile(dir_, text, error));
  EXPECT_EQ(error, dir_ + ": not a regular file");
  // A device that never ends.
  EXPECT_FALSE(readRegularFile("/dev/zero", text, error));
  EXPECT_EQ(error, "/dev/zero: not a regular file");
}

// Opening a FIFO for reading waits for a writer; the reader must refuse it at once instead (a
// hang here fails the test by its timeout).
TEST_F(ReadFileTest, RefusesAFifoWithoutWaitingForAWriter) {
  const std::string fifo = dir_ + "/pipe.conf";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::string text, error;
  EXPECT_FALSE(readRegularFile(fifo, text, error));
  EXPECT_EQ(error, fifo + ": not a regular file");
}

// A regular file larger than the limit is refused from its size, without reading (a sparse
// file: it takes no space).
TEST_F(ReadFileTest, RefusesAFileOverTheLimit) {
  const std::string path = dir_ + "/huge.conf";
  { std::ofstream(path) << "x"; }
  ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(kMaxFileBytes) + 1), 0);
  std::string text, error;
  EXPECT_FALSE(readRegularFile(path, text, error));
  EXPECT_EQ(error, path + ": larger than 1 GiB");
  ASSERT_EQ(truncate(path.c_str(), 3), 0);
  EXPECT_TRUE(readRegularFile(path, text, error)) << error;
  EXPECT_EQ(text, std::string("x\0\0", 3));
}

// A file under /proc reports 0 bytes and holds more: the limit holds while reading too.
TEST_F(ReadFileTest, RefusesAFileThatGrowsPastTheLimitWhileRead) {
  std::string text, error;
  ASSERT_TRUE(readRegularFile("/proc/self/status", text, error)) << error;
  ASSERT_GT(text.size(), 100u);
  EXPECT_FALSE(readRegularFile("/proc/self/status", text, error, 100));
  EXPECT_EQ(error, "/proc/self/status: larger than 100 bytes");
  EXPECT_TRUE(readRegularFile("/proc/self/status", text, error, 1 << 20)) << error;
}

// A regular file whose read fails: /proc/self/mem at offset 0, which no process maps.
TEST_F(ReadFileTest, NamesAReadThatFails) {
  std::string text, error;
  EXPECT_FALSE(readRegularFile("/proc/self/mem", text, error));
  EXPECT_EQ(error, "/proc/self/mem: cannot read: Input/output error");
}

}  // namespace
}  // namespace subgate::files
