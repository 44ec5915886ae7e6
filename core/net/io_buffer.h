// A growable byte buffer with a read and a write position, for socket I/O.
//
// Bytes are appended at the write end (writePtr()/commit() for reading from a socket straight
// into the buffer) and consumed from the read end. Memory is allocated once and reused; it
// grows only when a caller reserves more than fits. Blocks come from the thread's buffer pool
// (core/net/buffer_pool.h), except the exact-size copy shrinkToFit() keeps. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "core/net/buffer_pool.h"

namespace subgate {

class IoBuffer {
 public:
  IoBuffer() = default;
  ~IoBuffer() { buffer_pool::give(data_, capacity_); }
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;

  const char* readPtr() const { return data_ + start_; }
  size_t readable() const { return end_ - start_; }
  std::string_view view() const { return {data_ + start_, end_ - start_}; }
  void consume(size_t n) {
    start_ += n;
    if (start_ == end_) start_ = end_ = 0;
  }

  char* writePtr() { return data_ + end_; }
  size_t writable() const { return capacity_ - end_; }
  void commit(size_t n) { end_ += n; }

  // Makes at least `n` bytes writable, moving unread bytes to the front or growing. An empty
  // buffer without memory starts at `first` bytes (or more, if `n` needs it).
  void reserve(size_t n, size_t first = 4096) {
    if (writable() >= n) return;
    if (start_ > 0) {
      std::memmove(data_, data_ + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
      if (writable() >= n) return;
    }
    size_t want = capacity_ ? capacity_ : first;
    while (want - end_ < n) want *= 2;
    want = buffer_pool::blockSize(want);
    char* grown = buffer_pool::take(want);
    if (end_ > 0) std::memcpy(grown, data_, end_);
    buffer_pool::give(data_, capacity_);
    data_ = grown;
    capacity_ = want;
  }

  // For socket reads: a buffer without memory reads `first` bytes at most (most reads on a new
  // or idle connection are small: a request head, a WebSocket frame); one that has memory, up to
  // `chunk`. Touching 16 KiB per connection for a 300-byte head would leave pages resident
  // that small long-lived objects later fragment (see docs/performance.md, idle WebSockets).
  void reserveForRead(size_t chunk, size_t first = kFirstRead) {
    if (capacity_ == 0) {
      reserve(first < chunk ? first : chunk, first < chunk ? first : chunk);
    } else {
      reserve(chunk);
    }
  }
  static constexpr size_t kFirstRead = 1024;

  void append(std::string_view bytes) {
    if (bytes.empty()) return;  // an empty view may have a null data pointer
    reserve(bytes.size());
    std::memcpy(data_ + end_, bytes.data(), bytes.size());
    end_ += bytes.size();
  }

  void clear() { start_ = end_ = 0; }
  // Moves the unread bytes to the front and gives back the memory beyond them (a buffer that
  // will sit untouched for long, e.g. the request head of a WebSocket tunnel). The bytes may
  // move: views into them must be re-pointed from the old readPtr() to the new one.
  void shrinkToFit() {
    if (readable() == 0) {
      shrinkIfEmpty(0);
      return;
    }
    if (start_ > 0) {
      std::memmove(data_, data_ + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
    }
    // An exact-size copy from malloc: kept long, it should not hold a whole pool block.
    if (char* exact = static_cast<char*>(std::malloc(end_))) {
      std::memcpy(exact, data_, end_);
      buffer_pool::give(data_, capacity_);
      data_ = exact;
      capacity_ = end_;
    }
  }
  size_t capacity() const { return capacity_; }
  // Releases the memory of an empty buffer above `keep` bytes (idle connections stay small).
  void shrinkIfEmpty(size_t keep) {
    if (readable() == 0 && capacity_ > keep) {
      buffer_pool::give(data_, capacity_);
      data_ = nullptr;
      capacity_ = start_ = end_ = 0;
    }
  }

 private:
  char* data_ = nullptr;
  size_t capacity_ = 0;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace subgate
