// Gathers the small socket writes made during one turn of a worker's event loop and issues them
// together, with one io_uring_enter(2), after that turn's ready events have run, instead of one
// sendmsg(2) each.
//
// Why: a proxy makes two small sends per request (the request upstream, the response to the
// client), and on virtual machines a system call's entry and exit cost more than such a send's
// TCP work (about 1 µs per call where subgate was measured, see docs/performance.md). One
// submission carries every send of the turn.
//
// Contract:
// - queue(w) asks for one send on w's behalf at the end of the turn. At flush time the batch
//   calls w->prepareBatchedSend() for the bytes to send (the writer may have appended more since
//   it queued, or already written them itself: then it returns 0 and hears nothing more), then
//   w->batchedSendDone() with the result: the bytes written (possibly fewer than asked) or
//   -errno (-EAGAIN when the socket buffer is full). Sends never block: each one completes during
//   the flush. The bytes prepare pointed at must stay put until done() is called.
// - Both calls come from the batch's own event callback on the loop's thread, never from inside
//   queue(), so a writer may queue itself again from done() (that send goes into the next flush).
// - A queued writer that goes away is forgotten (Writer's destructor does it); done() of one
//   writer may destroy others of the same flush: they are skipped.
// - When io_uring cannot be set up (old kernel, seccomp, limits) or the config turns it off
//   (`io_uring off;`), current() is null and writers send directly. When a submission fails,
//   the flush sends each piece directly and the ring is given up, so a batch never loses a
//   write.
//
// Threading: one batch per worker thread, made current() for that thread by create(); not
// thread-safe.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct event;
struct event_base;

namespace subgate {

class SendBatch {
 public:
  static constexpr int kMaxIov = 4;

  class Writer {
   public:
    // Fills `iov` (at most kMaxIov pieces) with the bytes to send now and sets `fd`; returns the
    // number of pieces, 0 when there is nothing to send (done() is then not called).
    virtual int prepareBatchedSend(iovec* iov, int& fd) = 0;
    // The send's result: bytes written (> 0), or -errno.
    virtual void batchedSendDone(ssize_t result) = 0;
    bool sendQueued() const { return queued_; }

   protected:
    ~Writer() {
      if (queued_) forget(this);
    }

   private:
    friend class SendBatch;
    bool queued_ = false;
  };

  // Creates the calling thread's batch on `base` (io_uring with `entries` submission slots),
  // enabled; null with `why` set when io_uring is not available.
  static std::unique_ptr<SendBatch> create(event_base* base, unsigned entries, std::string& why);
  // The calling thread's batch while it is enabled, else null: write directly.
  static SendBatch* current();
  // Turns batching on or off for new writes (queued ones are still flushed).
  void setEnabled(bool enabled) { enabled_ = enabled; }
  ~SendBatch();
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;

  // Queues `writer` for the end of this turn; a writer already queued stays queued once.
  void queue(Writer* writer);

  // Counters for tests and status: submissions made and sends issued through them.
  uint64_t submissions() const { return submissions_; }
  uint64_t sends() const { return sends_; }

 private:
  struct Ring;
  SendBatch(event_base* base, std::unique_ptr<Ring> ring);
  static void onFlush(int fd, short what, void* arg);
  // A queued writer goes away: drop it from the thread's batch.
  static void forget(Writer* writer);
  void flush();
  // Issues the sends of flushing_[from, to) with one submission and fills their results_; sends
  // directly what the ring does not take.
  void submit(size_t from, size_t to);

  std::unique_ptr<Ring> ring_;
  event* flush_event_ = nullptr;
  bool flush_armed_ = false;
  bool enabled_ = true;
  std::vector<Writer*> pending_;   // queued since the last flush
  std::vector<Writer*> flushing_;  // the flush in progress (writers gone become null)
  std::vector<int> fds_;
  std::vector<iovec> iovs_;
  std::vector<msghdr> messages_;
  std::vector<ssize_t> results_;
  uint64_t submissions_ = 0;
  uint64_t sends_ = 0;
};

}  // namespace subgate
