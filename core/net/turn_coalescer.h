// Decides when a busy worker should pause for a moment at the end of an event-loop turn, before
// it polls again, so that the next turn finds more events and carries more requests
// (`io_coalesce`, docs/config.md).
//
// Why: when a worker keeps up with its clients it sleeps in epoll_wait and is woken for almost
// every request (about 1.3 per turn behind wrk -c50); each sleep and wake-up costs it the
// scheduler's work, and each small turn its own system calls. NICs moderate interrupts for the
// same reason. A pause of a few microseconds lets the events of several requests gather, so one
// wake-up and one io_uring submission serve them all (20 µs, measured: about 14% less CPU per
// request behind wrk -c50, 9% behind h2load; docs/performance.md); what it costs is at most the
// pause in latency per turn.
//
// Contract: the pause is asked for only when the loop came back quickly (the turn began within
// one window of the previous turn's end: events arrive about as fast as the window, so waiting
// gathers more). A quiet worker (turns further apart than the window) never pauses, so a lone
// request is never delayed; neither is a turn with one operation, which IoBatch makes directly
// and never flushes. A saturated worker is not held back much: its turns run until the work that
// gathered is done, so a pause is a small share of each turn, and it makes the next one carry
// more. window 0 turns it off. Pure logic: the caller gives the times and makes the pause.
//
// Threading: one per worker thread (owned by its IoBatch); not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

namespace subgate {

class TurnCoalescer {
 public:
  using Clock = std::chrono::steady_clock;
  void setWindow(std::chrono::microseconds window) { window_ = window; }
  std::chrono::microseconds window() const { return window_; }

  // A batch flush begins at `now`; the first one after a turn's end marks the next turn's start.
  void flushBegins(Clock::time_point now) {
    if (in_turn_) return;
    in_turn_ = true;
    turn_start_ = now;
  }
  // The turn ends at `now` (nothing else is active: the loop polls next). True: pause for
  // window() first, then call paused().
  bool turnEnds(Clock::time_point now) {
    const bool quick = have_last_end_ && in_turn_ && turn_start_ - last_end_ < window_;
    in_turn_ = false;
    have_last_end_ = true;
    last_end_ = now;
    return window_.count() > 0 && quick;
  }
  // The pause asked for by turnEnds() ended at `now`: the turn ends there.
  void paused(Clock::time_point now) {
    last_end_ = now;
    ++pauses_;
  }
  uint64_t pauses() const { return pauses_; }

 private:
  std::chrono::microseconds window_{0};
  bool in_turn_ = false;
  bool have_last_end_ = false;
  Clock::time_point turn_start_{};
  Clock::time_point last_end_{};
  uint64_t pauses_ = 0;
};

}  // namespace subgate
