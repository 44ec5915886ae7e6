// A libevent timer for a deadline that moves often (every read or write of a connection):
// re-armed only when the new deadline is earlier than the scheduled firing, so moving a deadline
// later costs nothing. The owner's callback calls fired() and then compares the clock with its
// real deadline, re-arming if it is not there yet.
#pragma once

#include <event2/event.h>
#include <event2/event_struct.h>

#include <chrono>

#include "core/net/clock.h"

namespace subgate {

class LazyTimer {
 public:
  LazyTimer() = default;
  ~LazyTimer() {
    if (pending_) evtimer_del(&ev_);
  }
  LazyTimer(const LazyTimer&) = delete;
  LazyTimer& operator=(const LazyTimer&) = delete;

  void assign(event_base* base, event_callback_fn callback, void* arg) {
    evtimer_assign(&ev_, base, callback, arg);
  }
  // Schedules a firing at `deadline` unless one is already due at or before it.
  void arm(SteadyTime deadline, SteadyTime now) {
    if (pending_ && due_ <= deadline) return;
    auto delay = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
    if (delay.count() < 0) delay = std::chrono::microseconds(0);
    timeval tv{static_cast<time_t>(delay.count() / 1000000),
               static_cast<suseconds_t>(delay.count() % 1000000)};
    evtimer_add(&ev_, &tv);
    pending_ = true;
    due_ = deadline;
  }
  // From the callback: the scheduled firing happened.
  void fired() { pending_ = false; }

 private:
  event ev_{};
  bool pending_ = false;
  SteadyTime due_{};
};

}  // namespace subgate
