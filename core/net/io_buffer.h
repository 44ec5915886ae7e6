// A growable byte buffer with a read and a write position, for socket I/O.
//
// Bytes are appended at the write end (writePtr()/commit() for reading from a socket straight
// into the buffer) and consumed from the read end. Memory is allocated once and reused; it
// grows only when a caller reserves more than fits. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace subgate {

class IoBuffer {
 public:
  IoBuffer() = default;
  ~IoBuffer() { std::free(data_); }
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

  // Makes at least `n` bytes writable, moving unread bytes to the front or growing.
  void reserve(size_t n) {
    if (writable() >= n) return;
    if (start_ > 0) {
      std::memmove(data_, data_ + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
      if (writable() >= n) return;
    }
    size_t want = capacity_ ? capacity_ : 4096;
    while (want - end_ < n) want *= 2;
    data_ = static_cast<char*>(std::realloc(data_, want));
    if (!data_) std::abort();  // out of memory: nothing sensible to do on the data path
    capacity_ = want;
  }

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
    if (char* smaller = static_cast<char*>(std::realloc(data_, end_))) {
      data_ = smaller;
      capacity_ = end_;
    }
  }
  size_t capacity() const { return capacity_; }
  // Releases the memory of an empty buffer above `keep` bytes (idle connections stay small).
  void shrinkIfEmpty(size_t keep) {
    if (readable() == 0 && capacity_ > keep) {
      std::free(data_);
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
