// Gathers the small socket reads and writes of one turn of a worker's event loop and issues them
// together, with one io_uring_enter(2) each time the turn's callbacks have run, instead of one
// system call each (in the ring: a plain send/recv for one piece, sendmsg/recvmsg for more).
//
// Why: a proxy makes two small reads and two small writes per request (the request from the
// client and to the upstream, the response from the upstream and to the client), and on virtual
// machines a system call's entry and exit cost more than such a call's TCP work (about 1 µs per
// call where subgate was measured, see docs/performance.md). One submission carries every read
// (or write) of the turn.
//
// Contract:
// - queue(w) asks for one send on the Writer w's behalf (queue(r): one receive for the Reader r)
//   after the callbacks now active have run. At flush time the batch calls prepare for the
//   buffer (a writer may have appended more since it queued, or written them itself; a reader
//   may have nothing to read into any more: then it returns 0 and hears nothing more), then
//   done with the result: the bytes moved (possibly fewer than asked; 0 from a receive is the
//   peer's end) or -errno (-EAGAIN when the socket is full, or has nothing to read). Nothing
//   blocks: every operation completes during the flush. The memory prepare pointed at must stay
//   put until done is called.
// - Both calls come from the batch's own event callback on the loop's thread, never from inside
//   queue(), so a client may queue itself again from done (that goes into the next flush, which
//   runs in the same loop turn).
// - A queued client that goes away is forgotten (the Writer and Reader destructors do it); done
//   of one client may destroy others of the same flush: they are skipped.
// - When io_uring cannot be set up (old kernel, seccomp, limits) or the config turns it off
//   (`io_uring off;`), current() is null and callers read and write directly. When a submission
//   fails, the flush makes each call directly and the ring is given up, so a batch never loses
//   an operation.
//
// Threading: one batch per worker thread, made current() for that thread by create(); not
// thread-safe.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/net/io_buffer.h"
#include "core/net/turn_coalescer.h"

struct event;
struct event_base;

namespace subgate {

class IoBatch {
 public:
  static constexpr int kMaxIov = 4;

  // What a queued operation belongs to; see Writer and Reader.
  class Client {
   protected:
    ~Client() {
      if (queued_ || in_flush_) forget(this);
    }
    bool queued_ = false;    // waits in the next flush
    bool in_flush_ = false;  // in the flush running now, its done not called yet
    bool receives_ = false;

   private:
    friend class IoBatch;
    virtual int prepareBatched(iovec* iov, int& fd) = 0;
    virtual void batchedSettle(ssize_t result) = 0;
    virtual void batchedDone(ssize_t result) = 0;
  };

  // Results come in two steps, both in queue order. First every client of the flush settles its
  // result: a writer drops the bytes that went out from its buffer, a reader counts the bytes
  // that came in, and nothing else happens (no call into other objects): so that when the
  // second step runs, where done may write or read directly, no buffer still holds bytes the
  // kernel has already taken or given. A client may queue itself again from done.
  class Writer : private Client {
   public:
    // Fills `iov` (at most kMaxIov pieces) with the bytes to send now and sets `fd`; returns the
    // number of pieces, 0 when there is nothing to send (settle and done are then not called).
    virtual int prepareBatchedSend(iovec* iov, int& fd) = 0;
    // The send's result: bytes written (> 0), or -errno. Settle drops the written bytes only.
    virtual void batchedSendSettle(ssize_t result) = 0;
    virtual void batchedSendDone(ssize_t result) = 0;
    bool sendQueued() const { return queued_; }

   protected:
    ~Writer() = default;

   private:
    friend class IoBatch;
    int prepareBatched(iovec* iov, int& fd) final { return prepareBatchedSend(iov, fd); }
    void batchedSettle(ssize_t result) final { batchedSendSettle(result); }
    void batchedDone(ssize_t result) final { batchedSendDone(result); }
  };

  class Reader : private Client {
   public:
    // Fills `iov` with the space to receive into and sets `fd`; returns the number of pieces, 0
    // when there is nothing to read (settle and done are then not called).
    virtual int prepareBatchedRecv(iovec* iov, int& fd) = 0;
    // The receive's result: bytes read (> 0), 0 at the peer's end, or -errno. Settle counts the
    // bytes in only.
    virtual void batchedRecvSettle(ssize_t result) = 0;
    virtual void batchedRecvDone(ssize_t result) = 0;
    bool recvQueued() const { return queued_; }

   protected:
    Reader() { receives_ = true; }
    ~Reader() = default;

   private:
    friend class IoBatch;
    int prepareBatched(iovec* iov, int& fd) final { return prepareBatchedRecv(iov, fd); }
    void batchedSettle(ssize_t result) final { batchedRecvSettle(result); }
    void batchedDone(ssize_t result) final { batchedRecvDone(result); }
  };

  // A result that only says the socket was full (or empty): not a failure, wait for its edge.
  static bool wouldBlock(ssize_t result) { return result == -EAGAIN || result == -EWOULDBLOCK; }
  // Settles a send prepared from the front of `out`: drops the bytes that went out; false when
  // some are left (the socket is full: the next write edge says when there is room).
  static bool dropSent(IoBuffer& out, ssize_t result) {
    size_t written = result > 0 ? static_cast<size_t>(result) : 0;
    const bool all = written >= out.readable();
    out.consume(written);
    return all;
  }

  // Creates the calling thread's batch on `base` (io_uring with `entries` submission slots),
  // enabled; null with `why` set when io_uring is not available.
  static std::unique_ptr<IoBatch> create(event_base* base, unsigned entries, std::string& why);
  // The calling thread's batch while it is enabled, else null: read and write directly.
  static IoBatch* current();
  // current(), but only when queueing pays: something else will run before the flush (other
  // active events of this loop turn, operations already queued, or the flush's own results
  // still to report), so that the operation can share a submission. Otherwise null: an
  // operation alone is cheaper as its own call than as a submission of one.
  static IoBatch* forThisTurn();
  // Turns batching on or off for new operations (queued ones are still flushed).
  void setEnabled(bool enabled) { enabled_ = enabled; }
  // `io_coalesce`: at the end of a turn that followed the previous one closely, the
  // worker pauses for `window` before it polls again (see TurnCoalescer); 0: never. Call on the
  // batch's thread (it sets that thread's timer slack, so that the pause lasts what it says).
  void setCoalesce(std::chrono::microseconds window);
  ~IoBatch();
  IoBatch(const IoBatch&) = delete;
  IoBatch& operator=(const IoBatch&) = delete;

  // Queues a send (a receive) for the end of this turn; one already queued stays queued once.
  void queue(Writer* writer) { queue(static_cast<Client*>(writer)); }
  void queue(Reader* reader) { queue(static_cast<Client*>(reader)); }

  // Counters for tests: submissions made and the operations they carried.
  uint64_t submissions() const { return submissions_; }
  uint64_t operations() const { return operations_; }
  // Pauses made at the end of turns (io_coalesce).
  uint64_t pauses() const { return coalescer_.pauses(); }
  // For tests of the fallback: the next submission is refused with -error, as the kernel may
  // refuse one (-EBUSY, -ENOMEM, ...), instead of being made.
  void refuseNextSubmissionForTest(int error) { refuse_next_submission_ = error; }

 private:
  struct Ring;
  IoBatch(event_base* base, std::unique_ptr<Ring> ring);
  static void onFlush(int fd, short what, void* arg);
  void queue(Client* client);
  // A queued client goes away: drop it from the thread's batch.
  static void forget(Client* client);
  void flush();
  // Issues the operations of flushing_[from, to) with one submission and fills their results_;
  // makes directly what the ring does not take.
  void submit(size_t from, size_t to);
  // After a flush: if the turn ends here, maybe pause (io_coalesce).
  void endOfFlush();

  std::unique_ptr<Ring> ring_;
  event_base* base_;
  event* flush_event_ = nullptr;
  bool flush_armed_ = false;
  size_t dones_left_ = 0;  // results of the running flush not reported yet
  bool enabled_ = true;
  std::vector<Client*> pending_;   // queued since the last flush
  std::vector<Client*> flushing_;  // the flush in progress (clients gone become null)
  std::vector<int> fds_;
  std::vector<iovec> iovs_;
  std::vector<msghdr> messages_;
  std::vector<ssize_t> results_;
  uint64_t submissions_ = 0;
  uint64_t operations_ = 0;
  int refuse_next_submission_ = 0;
  TurnCoalescer coalescer_;
};

}  // namespace subgate
