#include "modules/status/status_sampler.h"

#include <pthread.h>

#include "core/isolates/isolate_registry.h"
#include "core/pipeline/request_counters.h"

namespace subgate {

StatusSample takeStatusSample(const IsolateRegistry* registry) {
  StatusSample sample;
  for (const RequestCounters::Row& row : RequestCounters::snapshot())
    for (size_t k = 0; k < sample.requests.size() && k < row.by_class.size(); ++k)
      sample.requests[k] += row.by_class[k];
  if (registry) {
    const IsolateRegistry::Stats stats = registry->counts();
    sample.ready = stats.ready;
    sample.boot_failures = stats.boot_failures + stats.isolate_boot_failures;
    sample.isolates = stats.isolates;
    sample.queued = stats.queued;
  }
  return sample;
}

StatusHistory& statusHistory() {
  static StatusHistory* history = new StatusHistory;  // never destroyed: read until exit
  return *history;
}

StatusSampler& statusSampler() {
  static StatusSampler sampler;
  return sampler;
}

void StatusSampler::start(StatusHistory& history,
                          const std::shared_ptr<IsolateRegistry>& registry) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    registry_ = registry;
    stopping_ = false;
  }
  if (!thread_.joinable()) thread_ = std::thread([this, h = &history] { run(h); });
}

void StatusSampler::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StatusSampler::run(StatusHistory* history) {
  pthread_setname_np(pthread_self(), "sg-status");
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    std::shared_ptr<IsolateRegistry> registry = registry_.lock();
    lock.unlock();
    history->sampleIfDue(unixMillisNow(), [&] { return takeStatusSample(registry.get()); });
    registry.reset();
    lock.lock();
    wake_.wait_for(lock, history->interval(), [this] { return stopping_; });
  }
}

}  // namespace subgate
