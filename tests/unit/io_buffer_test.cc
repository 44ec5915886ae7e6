#include "core/net/io_buffer.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "core/net/buffer_pool.h"

namespace subgate {
namespace {

TEST(BufferPool, BlockSizesArePowersOfTwoWithinTheRange) {
  EXPECT_EQ(buffer_pool::blockSize(1), 1024u);
  EXPECT_EQ(buffer_pool::blockSize(1024), 1024u);
  EXPECT_EQ(buffer_pool::blockSize(1025), 2048u);
  EXPECT_EQ(buffer_pool::blockSize(16 * 1024), 16u * 1024);
  EXPECT_EQ(buffer_pool::blockSize(64 * 1024), 64u * 1024);
  EXPECT_EQ(buffer_pool::blockSize(64 * 1024 + 1), 64u * 1024 + 1);  // plain malloc above
}

TEST(BufferPool, AGivenBlockIsTakenAgainWhole) {
  char* a = buffer_pool::take(3000);
  a[4095] = 'x';  // the whole 4 KiB block is usable
  buffer_pool::give(a, 4096);
  char* b = buffer_pool::take(4096);
  EXPECT_EQ(a, b) << "the thread's cache hands back the block it was given";
  buffer_pool::give(b, 4096);
  buffer_pool::give(nullptr, 4096);  // nothing to give
  // Sizes outside the pool (an exact-size copy, a huge buffer) go back to malloc.
  char* odd = static_cast<char*>(std::malloc(300));
  buffer_pool::give(odd, 300);
  char* big = buffer_pool::take(100000);
  buffer_pool::give(big, 100000);
}

TEST(BufferPool, BlocksMayBeReturnedOnAnotherThread) {
  char* block = buffer_pool::take(2048);
  block[2047] = 'x';
  const size_t here = buffer_pool::cachedBytes();
  size_t there_before = 1, there_given = 0, there_taken = 1;
  char* again = nullptr;
  char last = 0;
  std::thread([&] {
    there_before = buffer_pool::cachedBytes();  // a new thread's lists are empty
    buffer_pool::give(block, 2048);             // the block joins this thread's lists...
    there_given = buffer_pool::cachedBytes();
    again = buffer_pool::take(2048);  // ...which hand it out again, whole
    there_taken = buffer_pool::cachedBytes();
    last = again[2047];
    buffer_pool::give(again, 2048);  // freed at this thread's exit (LSan would report a leak)
  }).join();
  EXPECT_EQ(there_before, 0u);
  EXPECT_EQ(there_given, 2048u);
  EXPECT_EQ(again, block);
  EXPECT_EQ(last, 'x');
  EXPECT_EQ(there_taken, 0u);
  EXPECT_EQ(buffer_pool::cachedBytes(), here) << "the taking thread's lists are not touched";
}

TEST(IoBuffer, GrowsKeepingUnreadBytes) {
  IoBuffer buffer;
  buffer.append("hello ");
  buffer.consume(2);
  buffer.append(std::string(5000, 'w'));
  EXPECT_EQ(buffer.readable(), 5004u);
  EXPECT_EQ(buffer.view().substr(0, 5), "llo w");
  EXPECT_EQ(buffer.capacity(), 8192u);
}

TEST(IoBuffer, FirstReadIsSmallThenFullChunks) {
  IoBuffer buffer;
  buffer.reserveForRead(16 * 1024);
  EXPECT_EQ(buffer.capacity(), IoBuffer::kFirstRead);
  buffer.commit(buffer.writable());  // the read filled it: the next one may take a full chunk
  buffer.reserveForRead(16 * 1024);
  EXPECT_GE(buffer.writable(), 16u * 1024);
  EXPECT_EQ(std::string_view(buffer.readPtr(), 1).size(), 1u);
}

TEST(IoBuffer, ShrinkToFitKeepsExactlyTheUnreadBytes) {
  IoBuffer buffer;
  buffer.append("GET / HTTP/1.1\r\n\r\nrest");
  buffer.consume(4);
  buffer.shrinkToFit();
  EXPECT_EQ(buffer.view(), "/ HTTP/1.1\r\n\r\nrest");
  EXPECT_EQ(buffer.capacity(), buffer.readable());
  buffer.append("more");  // grows again from the exact size
  EXPECT_EQ(buffer.view(), "/ HTTP/1.1\r\n\r\nrestmore");
  buffer.consume(buffer.readable());
  buffer.shrinkIfEmpty(0);
  EXPECT_EQ(buffer.capacity(), 0u);
  buffer.shrinkToFit();  // empty: nothing kept
  EXPECT_EQ(buffer.capacity(), 0u);
}

}  // namespace
}  // namespace subgate
