// TurnCoalescer: when a worker pauses at the end of a turn (io_coalesce), on a made-up clock.
#include "core/net/turn_coalescer.h"

#include <gtest/gtest.h>

namespace subgate {
namespace {

using std::chrono::microseconds;
using Clock = TurnCoalescer::Clock;

class TurnCoalescerTest : public ::testing::Test {
 protected:
  void SetUp() override { coalescer_.setWindow(microseconds(20)); }
  // One turn: it starts `gap` after the previous one ended, flushes once and lasts 5 µs.
  // Returns whether the coalescer asks for a pause (and then takes it).
  bool turn(microseconds gap) {
    now_ += gap;
    coalescer_.flushBegins(now_);
    now_ += microseconds(5);
    bool pause = coalescer_.turnEnds(now_);
    if (pause) {
      now_ += coalescer_.window();
      coalescer_.paused(now_);
    }
    return pause;
  }

  TurnCoalescer coalescer_;
  Clock::time_point now_{};
};

TEST_F(TurnCoalescerTest, TheFirstTurnNeverPauses) { EXPECT_FALSE(turn(microseconds(0))); }

TEST_F(TurnCoalescerTest, TurnsThatFollowCloselyPause) {
  turn(microseconds(0));
  EXPECT_TRUE(turn(microseconds(3)));
  EXPECT_TRUE(turn(microseconds(0)));  // events were waiting after the pause
  EXPECT_EQ(coalescer_.pauses(), 2u);
}

TEST_F(TurnCoalescerTest, AQuietWorkerNeverPauses) {
  turn(microseconds(0));
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(turn(microseconds(20)));  // a window apart or more
  EXPECT_FALSE(turn(microseconds(1000)));
  EXPECT_EQ(coalescer_.pauses(), 0u);
}

TEST_F(TurnCoalescerTest, ATurnStartsAtItsFirstFlush) {
  turn(microseconds(0));
  // A long turn: its reads, then 100 µs later the writes their results queued. What counts is
  // how soon it began after the previous one, not how long it ran.
  now_ += microseconds(2);
  coalescer_.flushBegins(now_);
  now_ += microseconds(100);
  coalescer_.flushBegins(now_);
  EXPECT_TRUE(coalescer_.turnEnds(now_));
  coalescer_.paused(now_ + microseconds(20));
  // The next turn begins late: its first flush is what is measured, not its second.
  now_ += microseconds(60);
  coalescer_.flushBegins(now_);
  now_ += microseconds(1);
  coalescer_.flushBegins(now_);
  EXPECT_FALSE(coalescer_.turnEnds(now_));
}

TEST_F(TurnCoalescerTest, WindowZeroIsOff) {
  coalescer_.setWindow(microseconds(0));
  turn(microseconds(0));
  EXPECT_FALSE(turn(microseconds(0)));
}

}  // namespace
}  // namespace subgate
