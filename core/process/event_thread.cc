#include "core/process/event_thread.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log/log.h"

namespace subgate {

EventThread::EventThread(std::string name) : name_(std::move(name)) {}

EventThread::~EventThread() {
  stop();
  if (wake_ev_) event_free(wake_ev_);
  if (base_) event_base_free(base_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool EventThread::start() {
  event_config* cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  base_ = event_base_new_with_config(cfg);
  event_config_free(cfg);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!base_ || wake_fd_ < 0) {
    LOG_ERROR("%s: cannot create an event loop", name_.c_str());
    return false;
  }
  wake_ev_ = event_new(base_, wake_fd_, EV_READ | EV_PERSIST, onWake, this);
  event_add(wake_ev_, nullptr);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
  });
  return true;
}

void EventThread::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    tasks_.push_back(std::move(task));
  }
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void EventThread::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (!thread_.joinable()) return;
  // The loop thread itself notices through the wake event; break from there so that a task
  // running now finishes first.
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
  thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  tasks_.clear();
}

void EventThread::onWake(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<EventThread*>(arg);
  uint64_t count;
  ssize_t ignored = ::read(fd, &count, sizeof count);
  (void)ignored;
  std::vector<std::function<void()>> tasks;
  bool stopped;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    tasks.swap(self->tasks_);
    stopped = self->stopped_;
  }
  for (auto& task : tasks) task();
  if (stopped) event_base_loopbreak(self->base_);
}

}  // namespace subgate
