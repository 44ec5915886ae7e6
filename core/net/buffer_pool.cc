#include "core/net/buffer_pool.h"

#include <bit>
#include <cstdlib>
#include <vector>

namespace subgate::buffer_pool {
namespace {

constexpr int kClasses = std::countr_zero(kMaxBlock) - std::countr_zero(kMinBlock) + 1;

struct Cache {
  std::vector<char*> lists[kClasses];
  ~Cache();
};

// Trivially destructible, so it can still be read while other thread_locals are destroyed.
thread_local bool cache_gone = false;
thread_local Cache cache;

Cache::~Cache() {
  cache_gone = true;
  for (auto& list : lists)
    for (char* block : list) std::free(block);
}

int classOf(size_t size) {
  if (size < kMinBlock || size > kMaxBlock || !std::has_single_bit(size)) return -1;
  return std::countr_zero(size) - std::countr_zero(kMinBlock);
}

}  // namespace

size_t blockSize(size_t n) {
  if (n > kMaxBlock) return n;
  return n <= kMinBlock ? kMinBlock : std::bit_ceil(n);
}

char* take(size_t n) {
  const size_t size = blockSize(n);
  const int c = classOf(size);
  if (c >= 0 && !cache_gone && !cache.lists[c].empty()) {
    char* block = cache.lists[c].back();
    cache.lists[c].pop_back();
    return block;
  }
  char* block = static_cast<char*>(std::malloc(size));
  if (!block) std::abort();  // out of memory: nothing sensible to do on the data path
  return block;
}

void give(char* block, size_t size) {
  if (!block) return;
  const int c = classOf(size);
  if (c < 0 || cache_gone || cache.lists[c].size() * size >= kMaxCachedBytes) {
    std::free(block);
    return;
  }
  cache.lists[c].push_back(block);
}

size_t cachedBytes() {
  if (cache_gone) return 0;
  size_t bytes = 0;
  for (int c = 0; c < kClasses; ++c) bytes += cache.lists[c].size() * (kMinBlock << c);
  return bytes;
}

}  // namespace subgate::buffer_pool
