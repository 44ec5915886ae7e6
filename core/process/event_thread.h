// A thread running its own libevent loop, with a mailbox other threads post work to. Used by the
// isolate supervisor (child processes, their pipes and timers) and the boot fetchers.
//
// Threading: post() from any thread; everything posted runs on the loop thread in order.
// Lifetime: stop() (or the destructor) ends the loop and joins; work posted later is dropped.
#pragma once

#include <event2/event.h>

#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace subgate {

class EventThread {
 public:
  explicit EventThread(std::string name);
  ~EventThread();
  EventThread(const EventThread&) = delete;
  EventThread& operator=(const EventThread&) = delete;

  // Starts the loop thread. False (with the reason logged) when the loop cannot be created.
  bool start();
  void post(std::function<void()> task);
  // Ends the loop after the task running now and joins the thread.
  void stop();
  // Loop thread only.
  event_base* base() const { return base_; }
  bool onLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  static void onWake(evutil_socket_t fd, short what, void* arg);

  std::string name_;
  event_base* base_ = nullptr;
  int wake_fd_ = -1;
  event* wake_ev_ = nullptr;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::function<void()>> tasks_;
  bool stopped_ = false;
};

}  // namespace subgate
