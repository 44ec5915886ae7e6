// IoBatch over socket pairs (AF_UNIX, no network): one submission per loop turn, results in
// queue order, clients that go away or re-queue, full and empty sockets answered without
// blocking.
#include "core/net/io_batch.h"

#include <event2/event.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace subgate {
namespace {

struct Pair {
  int ours = -1;
  int theirs = -1;
  Pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    ours = fds[0];
    theirs = fds[1];
  }
  ~Pair() {
    ::close(ours);
    ::close(theirs);
  }
  std::string drain() const {
    std::string got;
    char buf[65536];
    for (int i = 0; i < 1024; ++i) {
      ssize_t n = ::recv(theirs, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
};

class TestWriter final : public IoBatch::Writer {
 public:
  TestWriter(int fd, std::string data) : fd_(fd), data_(std::move(data)) {}
  int prepareBatchedSend(iovec* iov, int& fd) override {
    ++prepared;
    if (data_.empty()) return 0;
    fd = fd_;
    if (one_piece) {
      iov[0] = {data_.data(), data_.size()};
      return 1;
    }
    // Two pieces, to show that the gather list goes out whole and in order.
    size_t half = data_.size() / 2;
    iov[0] = {data_.data(), half};
    iov[1] = {data_.data() + half, data_.size() - half};
    return 2;
  }
  void batchedSendSettle(ssize_t result) override {
    if (result > 0) data_.erase(0, static_cast<size_t>(result));
  }
  void batchedSendDone(ssize_t result) override {
    results.push_back(result);
    if (on_done) on_done();
  }
  void append(std::string_view more) { data_.append(more); }
  size_t pending() const { return data_.size(); }

  bool one_piece = false;  // a single piece takes the ring's plain send, not sendmsg
  int prepared = 0;
  std::vector<ssize_t> results;
  std::function<void()> on_done;

 private:
  int fd_;
  std::string data_;
};

class TestReader final : public IoBatch::Reader {
 public:
  explicit TestReader(int fd) : fd_(fd) {}
  int prepareBatchedRecv(iovec* iov, int& fd) override {
    iov[0] = {buffer_, sizeof buffer_};
    fd = fd_;
    return 1;
  }
  void batchedRecvSettle(ssize_t result) override {
    if (result > 0) got.append(buffer_, static_cast<size_t>(result));
  }
  void batchedRecvDone(ssize_t result) override { results.push_back(result); }

  std::vector<ssize_t> results;
  std::string got;

 private:
  int fd_;
  char buffer_[256];
};

class IoBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = event_base_new();
    ASSERT_NE(base_, nullptr);
    std::string why;
    batch_ = IoBatch::create(base_, 8, why);
    if (!batch_) GTEST_SKIP() << "io_uring is not available here: " << why;
  }
  void TearDown() override {
    batch_.reset();
    if (base_) event_base_free(base_);
  }
  // One loop turn: runs what is active (the flush) without waiting for anything else.
  void turn() { event_base_loop(base_, EVLOOP_NONBLOCK); }

  event_base* base_ = nullptr;
  std::unique_ptr<IoBatch> batch_;
};

TEST_F(IoBatchTest, SendsEveryQueuedWriterInOneSubmission) {
  Pair a, b, c;
  TestWriter wa(a.ours, "request head"), wb(b.ours, "response"), wc(c.ours, "another one");
  ASSERT_EQ(IoBatch::current(), batch_.get());
  batch_->queue(&wa);
  batch_->queue(&wb);
  batch_->queue(&wa);  // queued once
  batch_->queue(&wc);
  EXPECT_TRUE(wa.sendQueued());
  EXPECT_TRUE(a.drain().empty());  // nothing goes out before the turn ends
  turn();
  EXPECT_EQ(a.drain(), "request head");
  EXPECT_EQ(b.drain(), "response");
  EXPECT_EQ(c.drain(), "another one");
  EXPECT_EQ(wa.results, std::vector<ssize_t>{12});
  EXPECT_EQ(wb.results, std::vector<ssize_t>{8});
  EXPECT_FALSE(wa.sendQueued());
  EXPECT_EQ(batch_->submissions(), 1u);
  EXPECT_EQ(batch_->operations(), 3u);
}

TEST_F(IoBatchTest, OnePieceAndGatheredSendsShareASubmission) {
  Pair a, b;
  TestWriter single(a.ours, "one piece"), gathered(b.ours, "two pieces");
  single.one_piece = true;
  batch_->queue(&single);
  batch_->queue(&gathered);
  turn();
  EXPECT_EQ(a.drain(), "one piece");
  EXPECT_EQ(b.drain(), "two pieces");
  EXPECT_EQ(single.results, std::vector<ssize_t>{9});
  EXPECT_EQ(single.pending(), 0u);
  EXPECT_EQ(batch_->submissions(), 1u);
  EXPECT_EQ(batch_->operations(), 2u);
}

TEST_F(IoBatchTest, ATurnThatFollowsCloselyEndsWithAPause) {
  // A window far longer than the gap between two turns of this test, however slow the machine.
  batch_->setCoalesce(std::chrono::milliseconds(20));
  Pair a;
  TestWriter w(a.ours, "x");
  w.one_piece = true;
  for (int i = 0; i < 2; ++i) {
    w.append("y");
    batch_->queue(&w);
    turn();
  }
  EXPECT_EQ(a.drain(), "xyy");
  EXPECT_EQ(batch_->pauses(), 1u);  // the first turn had no previous one to follow
  batch_->setCoalesce(std::chrono::microseconds(0));
  w.append("z");
  batch_->queue(&w);
  turn();
  EXPECT_EQ(batch_->pauses(), 1u);
}

TEST_F(IoBatchTest, LargerTurnsTakeSeveralSubmissions) {
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<std::unique_ptr<TestWriter>> writers;
  for (int i = 0; i < 20; ++i) {  // the ring holds 8
    pairs.push_back(std::make_unique<Pair>());
    writers.push_back(
        std::make_unique<TestWriter>(pairs.back()->ours, "piece " + std::to_string(i)));
    batch_->queue(writers.back().get());
  }
  turn();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(pairs[i]->drain(), "piece " + std::to_string(i));
  EXPECT_EQ(batch_->submissions(), 3u);
  EXPECT_EQ(batch_->operations(), 20u);
}

TEST_F(IoBatchTest, BytesAppendedAfterQueueingGoOutToo) {
  Pair a;
  TestWriter w(a.ours, "head");
  batch_->queue(&w);
  w.append(" and body");
  turn();
  EXPECT_EQ(a.drain(), "head and body");
}

TEST_F(IoBatchTest, NothingToSendMeansNoCallback) {
  Pair a;
  TestWriter w(a.ours, "");
  batch_->queue(&w);
  turn();
  EXPECT_EQ(w.prepared, 1);
  EXPECT_TRUE(w.results.empty());
  EXPECT_FALSE(w.sendQueued());
  EXPECT_EQ(batch_->submissions(), 0u);
}

TEST_F(IoBatchTest, WriterQueuedFromItsCallbackGoesIntoTheNextFlush) {
  Pair a;
  TestWriter w(a.ours, "first");
  int rounds = 0;
  w.on_done = [&] {
    if (++rounds == 1) {
      w.append("second");
      batch_->queue(&w);
    }
  };
  batch_->queue(&w);
  turn();  // the first flush, which re-arms the flush event
  turn();
  EXPECT_EQ(a.drain(), "firstsecond");
  EXPECT_EQ(w.results.size(), 2u);
  EXPECT_EQ(batch_->submissions(), 2u);
}

TEST_F(IoBatchTest, WriterThatGoesAwayIsForgotten) {
  Pair a, b;
  auto gone = std::make_unique<TestWriter>(a.ours, "never sent");
  TestWriter stays(b.ours, "sent");
  batch_->queue(gone.get());
  batch_->queue(&stays);
  gone.reset();
  turn();
  EXPECT_TRUE(a.drain().empty());
  EXPECT_EQ(b.drain(), "sent");
}

TEST_F(IoBatchTest, CallbackMayDestroyALaterWriterOfTheSameFlush) {
  Pair a, b;
  TestWriter first(a.ours, "one");
  auto second = std::make_unique<TestWriter>(b.ours, "two");
  TestWriter* second_raw = second.get();
  first.on_done = [&] { second.reset(); };  // e.g. a client connection closing its upstream
  batch_->queue(&first);
  batch_->queue(second_raw);
  turn();  // ASan would see a call on the destroyed writer
  EXPECT_EQ(first.results, std::vector<ssize_t>{3});
  EXPECT_EQ(second, nullptr);
  EXPECT_EQ(b.drain(), "two");  // it was sent; only its callback is skipped
}

TEST_F(IoBatchTest, FullSocketAnswersAtOnceInsteadOfBlocking) {
  for (bool one_piece : {false, true}) {
    SCOPED_TRACE(one_piece ? "one piece" : "two pieces");
    Pair a;
    int small = 4096;
    ASSERT_EQ(::setsockopt(a.ours, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    TestWriter w(a.ours, std::string(4 << 20, 'x'));
    w.one_piece = one_piece;
    batch_->queue(&w);
    turn();
    ASSERT_EQ(w.results.size(), 1u);
    EXPECT_GT(w.results[0], 0);
    EXPECT_LT(static_cast<size_t>(w.results[0]), size_t{4} << 20);  // partial: the rest waits
    batch_->queue(&w);
    turn();
    ASSERT_EQ(w.results.size(), 2u);
    EXPECT_EQ(w.results[1], -EAGAIN);  // nobody read: still full, and the flush did not wait
  }
}

TEST_F(IoBatchTest, ErrorsArriveAsNegativeErrno) {
  Pair a;
  TestWriter w(a.ours, "to nobody");
  ::close(a.theirs);
  a.theirs = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // keeps ~Pair's close() harmless
  batch_->queue(&w);
  turn();
  ASSERT_EQ(w.results.size(), 1u);
  EXPECT_EQ(w.results[0], -EPIPE);  // MSG_NOSIGNAL: no SIGPIPE either
}

TEST_F(IoBatchTest, ReadsAndWritesShareASubmission) {
  Pair in, out;
  ASSERT_EQ(::send(in.theirs, "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
  TestReader reader(in.ours);
  TestWriter writer(out.ours, "to the upstream");
  batch_->queue(&reader);
  batch_->queue(&writer);
  EXPECT_TRUE(reader.recvQueued());
  turn();
  EXPECT_EQ(reader.got, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(out.drain(), "to the upstream");
  EXPECT_FALSE(reader.recvQueued());
  EXPECT_EQ(batch_->submissions(), 1u);
  EXPECT_EQ(batch_->operations(), 2u);
}

TEST_F(IoBatchTest, EmptySocketAnswersAtOnceAndTheEndIsZero) {
  Pair a;
  TestReader reader(a.ours);
  batch_->queue(&reader);
  turn();  // nothing to read: the flush does not wait for data
  ASSERT_EQ(reader.results, std::vector<ssize_t>{-EAGAIN});
  ::shutdown(a.theirs, SHUT_WR);
  batch_->queue(&reader);
  turn();
  EXPECT_EQ(reader.results.back(), 0);
}

TEST_F(IoBatchTest, ObjectBothReaderAndWriterIsQueuedOnceForEach) {
  struct Both final : IoBatch::Reader, IoBatch::Writer {
    explicit Both(int fd) : fd(fd) {}
    int prepareBatchedRecv(iovec* iov, int& out_fd) override {
      iov[0] = {buffer, sizeof buffer};
      out_fd = fd;
      return 1;
    }
    void batchedRecvSettle(ssize_t) override {}
    void batchedRecvDone(ssize_t result) override { read = result; }
    int prepareBatchedSend(iovec* iov, int& out_fd) override {
      iov[0] = {const_cast<char*>("pong"), 4};
      out_fd = fd;
      return 1;
    }
    void batchedSendSettle(ssize_t) override {}
    void batchedSendDone(ssize_t result) override { wrote = result; }
    int fd;
    char buffer[16];
    ssize_t read = -1, wrote = -1;
  };
  Pair a;
  ASSERT_EQ(::send(a.theirs, "ping", 4, 0), 4);
  auto both = std::make_unique<Both>(a.ours);
  batch_->queue(static_cast<IoBatch::Reader*>(both.get()));
  batch_->queue(static_cast<IoBatch::Writer*>(both.get()));
  EXPECT_TRUE(both->recvQueued());
  EXPECT_TRUE(both->sendQueued());
  turn();
  EXPECT_EQ(both->read, 4);
  EXPECT_EQ(both->wrote, 4);
  EXPECT_EQ(a.drain(), "pong");
  // Gone while both are queued: neither is called.
  batch_->queue(static_cast<IoBatch::Reader*>(both.get()));
  batch_->queue(static_cast<IoBatch::Writer*>(both.get()));
  both.reset();
  turn();
  EXPECT_EQ(batch_->submissions(), 1u);
}

TEST_F(IoBatchTest, EveryResultIsSettledBeforeAnyDoneRuns) {
  // Were the second writer's sent bytes still in its buffer when the first one's done runs, a
  // direct write from there (a client connection writing its upstream) would send them twice.
  Pair a, b;
  TestWriter first(a.ours, "one"), second(b.ours, "two");
  size_t seen = 99;
  first.on_done = [&] { seen = second.pending(); };
  batch_->queue(&first);
  batch_->queue(&second);
  turn();
  EXPECT_EQ(seen, 0u);
}

TEST_F(IoBatchTest, ClientQueuedByAnotherBeforeItsOwnDoneGoesIntoTheNextFlush) {
  Pair a, b;
  TestWriter first(a.ours, "one"), second(b.ours, "two");
  first.on_done = [&] {
    second.append(" and more");
    batch_->queue(&second);  // its done of this flush has not run yet
  };
  batch_->queue(&first);
  batch_->queue(&second);
  turn();
  turn();
  EXPECT_EQ(b.drain(), "two and more");
  EXPECT_EQ(second.results.size(), 2u);
}

TEST_F(IoBatchTest, QueueingPaysOnlyWhenSomethingElseRunsBeforeTheFlush) {
  EXPECT_EQ(IoBatch::forThisTurn(), nullptr);  // alone in the turn: a direct call is cheaper
  event* other = event_new(
      base_, -1, 0, [](evutil_socket_t, short, void*) {}, nullptr);
  event_active(other, EV_TIMEOUT, 1);  // another callback of this turn is still to run
  EXPECT_EQ(IoBatch::forThisTurn(), batch_.get());
  turn();
  EXPECT_EQ(IoBatch::forThisTurn(), nullptr);
  Pair a, b;
  TestWriter first(a.ours, "one"), second(b.ours, "two");
  batch_->queue(&first);  // a flush is coming: join it
  EXPECT_EQ(IoBatch::forThisTurn(), batch_.get());
  IoBatch* seen_in_first_done = nullptr;
  IoBatch* seen_in_last_done = batch_.get();
  first.on_done = [&] { seen_in_first_done = IoBatch::forThisTurn(); };  // second's result is next
  second.on_done = [&] { seen_in_last_done = IoBatch::forThisTurn(); };
  batch_->queue(&second);
  turn();
  EXPECT_EQ(seen_in_first_done, batch_.get());
  EXPECT_EQ(seen_in_last_done, nullptr);
  event_free(other);
}

TEST_F(IoBatchTest, RefusedSubmissionIsMadeDirectlyAndTheRingGivenUp) {
  Pair a, b, c;
  TestWriter first(a.ours, "request head"), second(b.ours, "response");
  ASSERT_EQ(::send(c.theirs, "upstream bytes", 14, 0), 14);
  TestReader reader(c.ours);
  batch_->queue(&first);
  batch_->queue(&reader);
  batch_->queue(&second);
  batch_->refuseNextSubmissionForTest(EBUSY);
  turn();
  // Nothing is lost: every operation was made, by direct calls, and reported as usual.
  EXPECT_EQ(a.drain(), "request head");
  EXPECT_EQ(b.drain(), "response");
  EXPECT_EQ(reader.got, "upstream bytes");
  EXPECT_EQ(first.results, std::vector<ssize_t>{12});
  EXPECT_EQ(second.results, std::vector<ssize_t>{8});
  EXPECT_EQ(reader.results, std::vector<ssize_t>{14});
  EXPECT_EQ(batch_->submissions(), 0u);
  // The ring is gone for good: callers read and write directly from now on.
  EXPECT_EQ(IoBatch::current(), nullptr);
  // What was queued before anyone knew is still made, directly.
  first.append("more");
  batch_->queue(&first);
  turn();
  EXPECT_EQ(a.drain(), "more");
  EXPECT_EQ(batch_->submissions(), 0u);
}

TEST(IoBatchResults, SettlingASendDropsWhatWentOut) {
  IoBuffer out;
  out.append("0123456789");
  EXPECT_FALSE(IoBatch::dropSent(out, 4));  // a partial send: the socket is full
  EXPECT_EQ(std::string_view(out.readPtr(), out.readable()), "456789");
  EXPECT_FALSE(IoBatch::dropSent(out, -EAGAIN));  // nothing went out
  EXPECT_EQ(out.readable(), 6u);
  EXPECT_TRUE(IoBatch::dropSent(out, 6));
  EXPECT_EQ(out.readable(), 0u);
  EXPECT_TRUE(IoBatch::wouldBlock(-EAGAIN));
  EXPECT_TRUE(IoBatch::wouldBlock(-EWOULDBLOCK));
  EXPECT_FALSE(IoBatch::wouldBlock(-EPIPE));
  EXPECT_FALSE(IoBatch::wouldBlock(0));
}

TEST_F(IoBatchTest, TurnedOffMeansWriteDirectly) {
  batch_->setEnabled(false);
  EXPECT_EQ(IoBatch::current(), nullptr);
  batch_->setEnabled(true);
  EXPECT_EQ(IoBatch::current(), batch_.get());
  batch_.reset();
  EXPECT_EQ(IoBatch::current(), nullptr);
}

}  // namespace
}  // namespace subgate
