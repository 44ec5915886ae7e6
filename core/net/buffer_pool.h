// Per-thread cache of I/O buffer blocks in power-of-two sizes from 1 KiB to 64 KiB, used by
// IoBuffer. Why: read and write buffers live for one exchange while connection objects live for
// the connection; from one malloc heap, each freed buffer leaves a hole that small long-lived
// allocations then split, so the heap grows and the touched pages stay resident (idle WebSockets
// cost ~3 KiB of such residue each). Blocks taken from here are recycled as whole blocks and
// never split.
//
// Threading: each thread has its own lists; a block may be returned on another thread than the
// one that took it (it then joins that thread's lists). Each list holds at most kMaxCachedBytes;
// beyond that, and after the thread's cache is gone (thread exit), blocks go back to free().
#pragma once

#include <cstddef>

namespace subgate::buffer_pool {

constexpr size_t kMinBlock = 1024;
constexpr size_t kMaxBlock = 64 * 1024;
constexpr size_t kMaxCachedBytes = 4u << 20;

// The block size that holds `n` bytes: a power of two in [kMinBlock, kMaxBlock], or `n` itself
// above kMaxBlock (such blocks are plain malloc()s).
size_t blockSize(size_t n);
// A block of blockSize(n) bytes (aborts when out of memory, like the data path's other
// allocations).
char* take(size_t n);
// Returns a block of `size` bytes from take() or from malloc(); blocks whose size is not a pool
// size are freed. `block` may be null.
void give(char* block, size_t size);
// The bytes in the calling thread's lists (for tests).
size_t cachedBytes();

}  // namespace subgate::buffer_pool
