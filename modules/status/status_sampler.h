// What fills the status history (status_history.h): one sample of the process's counts, and the
// thread that takes one every interval while a served config has a `status;` location, so that
// the page's charts show the last minutes from its first load.
//
// Threading: takeStatusSample() on any thread; statusSampler()'s start() and stop() on the main
// thread (Module::activate and deactivate); the sampler thread ("sg-status") only samples.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "modules/status/status_history.h"

namespace subgate {

class IsolateRegistry;

// The counts of now: requests by status class over every server (core/pipeline/
// request_counters.h) and, with a `registry`, its isolates, boots and queue.
StatusSample takeStatusSample(const IsolateRegistry* registry);

// The process's history, which every `status;` location shows.
StatusHistory& statusHistory();

class StatusSampler {
 public:
  StatusSampler() = default;
  ~StatusSampler() { stop(); }
  StatusSampler(const StatusSampler&) = delete;
  StatusSampler& operator=(const StatusSampler&) = delete;

  // Samples `history` every interval from now on, reading `registry` (not kept alive: a weak
  // reference); a later call replaces the registry. The thread starts on the first call.
  void start(StatusHistory& history, const std::shared_ptr<IsolateRegistry>& registry);
  // Stops and joins the thread (nothing when it is not running).
  void stop();
  bool running() const { return thread_.joinable(); }

 private:
  void run(StatusHistory* history);

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::weak_ptr<IsolateRegistry> registry_;
  std::thread thread_;
};

StatusSampler& statusSampler();

}  // namespace subgate
