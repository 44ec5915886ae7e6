#include "core/net/io_batch.h"

#include <event2/event.h>
#include <liburing.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/log/log.h"

namespace subgate {

namespace {
thread_local IoBatch* thread_batch = nullptr;
// Every operation is non-blocking: a full (or empty) socket answers -EAGAIN at once instead of
// the ring waiting for it, so that each flush completes before it returns.
constexpr int kSendFlags = MSG_NOSIGNAL | MSG_DONTWAIT;
constexpr int kRecvFlags = MSG_DONTWAIT;
}  // namespace

struct IoBatch::Ring {
  io_uring ring{};
  unsigned entries = 0;
  bool set_up = false;
  ~Ring() {
    if (set_up) io_uring_queue_exit(&ring);
  }
};

std::unique_ptr<IoBatch> IoBatch::create(event_base* base, unsigned entries, std::string& why) {
  auto ring = std::make_unique<Ring>();
  io_uring_params params{};
  // One thread submits and reaps, and nothing waits on the ring: let the kernel skip the
  // cross-thread notifications it would otherwise send.
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  int rc = io_uring_queue_init_params(entries, &ring->ring, &params);
  if (rc == -EINVAL) {  // a kernel older than 6.0 knows neither flag
    params = {};
    rc = io_uring_queue_init_params(entries, &ring->ring, &params);
  }
  if (rc < 0) {
    why = std::string("io_uring: ") + std::strerror(-rc);
    return nullptr;
  }
  ring->set_up = true;
  ring->entries = params.sq_entries;
  // Each submission then names the ring by its registered index: no file lookup per call.
  // Optional (kernel 5.18+): without it the ring works the same.
  (void)io_uring_register_ring_fd(&ring->ring);
  std::unique_ptr<IoBatch> batch(new IoBatch(base, std::move(ring)));
  if (!batch->flush_event_) {
    why = "cannot create the I/O batch's event";
    return nullptr;
  }
  thread_batch = batch.get();
  return batch;
}

IoBatch* IoBatch::forThisTurn() {
  IoBatch* batch = current();
  if (!batch) return nullptr;
  if (batch->flush_armed_ || batch->dones_left_ > 0) return batch;
  // The event running now is not counted: it left the active queue before its callback.
  return event_base_get_num_events(batch->base_, EVENT_BASE_COUNT_ACTIVE) > 0 ? batch : nullptr;
}

IoBatch* IoBatch::current() {
  IoBatch* batch = thread_batch;
  return batch && batch->enabled_ && batch->ring_ ? batch : nullptr;
}

IoBatch::IoBatch(event_base* base, std::unique_ptr<Ring> ring)
    : ring_(std::move(ring)), base_(base) {
  flush_event_ = event_new(base, -1, 0, onFlush, this);
}

IoBatch::~IoBatch() {
  if (thread_batch == this) thread_batch = nullptr;
  if (flush_event_) event_free(flush_event_);
  for (Client* client : pending_)
    if (client) client->queued_ = false;
}

void IoBatch::queue(Client* client) {
  if (client->queued_) return;
  client->queued_ = true;
  pending_.push_back(client);
  if (!flush_armed_) {
    flush_armed_ = true;
    // Activated events run after those already active: the flush follows the callbacks of the
    // events this turn's poll returned.
    event_active(flush_event_, EV_TIMEOUT, 1);
  }
}

void IoBatch::forget(Client* client) {
  client->queued_ = false;
  client->in_flush_ = false;
  IoBatch* batch = thread_batch;
  if (!batch) return;
  // Linear: a flush holds one turn's clients, and a client rarely goes away while queued.
  for (Client*& entry : batch->pending_)
    if (entry == client) entry = nullptr;
  for (Client*& entry : batch->flushing_)
    if (entry == client) entry = nullptr;
}

void IoBatch::onFlush(int, short, void* arg) { static_cast<IoBatch*>(arg)->flush(); }

void IoBatch::setCoalesce(std::chrono::microseconds window) {
  if (window.count() > 0 && coalescer_.window().count() == 0) {
    // The default slack (50 µs) would stretch every pause by up to that much. Best effort.
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  }
  coalescer_.setWindow(window);
}

void IoBatch::flush() {
  flush_armed_ = false;
  const bool coalescing = coalescer_.window().count() > 0;
  if (coalescing) coalescer_.flushBegins(TurnCoalescer::Clock::now());
  flushing_.swap(pending_);
  const size_t count = flushing_.size();
  fds_.assign(count, -1);
  iovs_.resize(count * kMaxIov);
  messages_.resize(count);
  results_.assign(count, 0);
  // Ask every client first: a writer may have sent its bytes itself since it queued.
  for (size_t i = 0; i < count; ++i) {
    Client* client = flushing_[i];
    if (!client) continue;
    // From here on the client may queue again (for the next flush).
    client->queued_ = false;
    msghdr& message = messages_[i];
    message = {};
    message.msg_iov = &iovs_[i * kMaxIov];
    int pieces = client->prepareBatched(message.msg_iov, fds_[i]);
    if (pieces <= 0) {
      flushing_[i] = nullptr;
      continue;
    }
    client->in_flush_ = true;
    message.msg_iovlen = static_cast<size_t>(pieces);
  }
  // The ring holds `entries` operations at a time: larger flushes go in several submissions.
  const size_t per_submission = ring_ ? ring_->entries : count;
  for (size_t from = 0; from < count; from += per_submission)
    submit(from, std::min(count, from + per_submission));
  // Settle every result before any done runs (see Writer): settling calls nothing else.
  for (size_t i = 0; i < count; ++i)
    if (Client* client = flushing_[i]) client->batchedSettle(results_[i]);
  // Then done, in queue order. One client's done may destroy a later client (it is skipped).
  for (size_t i = 0; i < count; ++i) {
    Client* client = flushing_[i];
    if (!client) continue;
    flushing_[i] = nullptr;
    client->in_flush_ = false;
    dones_left_ = count - i - 1;
    client->batchedDone(results_[i]);
  }
  dones_left_ = 0;
  flushing_.clear();
  if (coalescing) endOfFlush();
}

void IoBatch::endOfFlush() {
  // Something else still runs in this turn (it may flush again): the turn has not ended.
  if (event_base_get_num_events(base_, EVENT_BASE_COUNT_ACTIVE) > 0) return;
  if (!coalescer_.turnEnds(TurnCoalescer::Clock::now())) return;
  // The thread has nothing else to do until its next poll; the events of the clients' next
  // requests gather meanwhile.
  const auto ns = std::chrono::nanoseconds(coalescer_.window()).count();
  timespec pause{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
  }
  coalescer_.paused(TurnCoalescer::Clock::now());
}

void IoBatch::submit(size_t from, size_t to) {
  unsigned taken = 0;
  if (ring_) {
    io_uring* ring = &ring_->ring;
    unsigned prepared = 0;
    for (size_t i = from; i < to; ++i) {
      if (!flushing_[i]) continue;
      io_uring_sqe* sqe = io_uring_get_sqe(ring);  // never null: the ring is empty, to - from fit
      const msghdr& message = messages_[i];
      const bool receives = flushing_[i]->receives_;
      // One piece (what every client gives today) goes as a plain send/recv: the kernel then
      // skips copying in and checking a msghdr and its iovec array per operation.
      if (message.msg_iovlen == 1) {
        const iovec& piece = message.msg_iov[0];
        if (receives) {
          io_uring_prep_recv(sqe, fds_[i], piece.iov_base, piece.iov_len, kRecvFlags);
        } else {
          io_uring_prep_send(sqe, fds_[i], piece.iov_base, piece.iov_len, kSendFlags);
        }
      } else if (receives) {
        io_uring_prep_recvmsg(sqe, fds_[i], &messages_[i], kRecvFlags);
      } else {
        io_uring_prep_sendmsg(sqe, fds_[i], &messages_[i], kSendFlags);
      }
      io_uring_sqe_set_data64(sqe, i);
      ++prepared;
    }
    if (prepared == 0) return;
    int submitted = refuse_next_submission_ ? -std::exchange(refuse_next_submission_, 0)
                                            : io_uring_submit(ring);
    taken = submitted > 0 ? static_cast<unsigned>(submitted) : 0;
    // Non-blocking operations complete while they are submitted: their answers are all there.
    // Should the kernel have handed one to a worker thread, it cannot block there either.
    for (unsigned answered = 0; answered < taken; ++answered) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_peek_cqe(ring, &cqe) != 0) {
        int rc;
        do {
          rc = io_uring_wait_cqe(ring, &cqe);
        } while (rc == -EINTR);
        if (rc != 0) break;
      }
      auto index = static_cast<size_t>(io_uring_cqe_get_data64(cqe));
      if (index >= from && index < to) results_[index] = cqe->res;
      io_uring_cqe_seen(ring, cqe);
    }
    if (taken == prepared) {
      ++submissions_;
      operations_ += prepared;
      return;
    }
    // The ring refused all or part of the submission. What it did not take stays in its queue
    // and would go out with the next submission, pointing at messages gone by then: give the
    // ring up for good. The rest of this flush, and every later one, calls directly.
    LOG_WARN("io_uring submission failed (%s): socket reads and writes are no longer batched",
             submitted < 0 ? std::strerror(-submitted) : "partial");
    ring_.reset();  // current() is null from now on
  }
  // The ring takes entries in order: the first `taken` have their answers.
  for (size_t i = from; i < to; ++i) {
    if (!flushing_[i]) continue;
    if (taken > 0) {
      --taken;
      continue;
    }
    ssize_t n;
    do {
      n = flushing_[i]->receives_ ? ::recvmsg(fds_[i], &messages_[i], kRecvFlags)
                                  : ::sendmsg(fds_[i], &messages_[i], kSendFlags);
    } while (n < 0 && errno == EINTR);
    results_[i] = n < 0 ? -errno : n;
  }
}

}  // namespace subgate
