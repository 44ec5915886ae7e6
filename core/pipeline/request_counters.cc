#include "core/pipeline/request_counters.h"

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace subgate {
namespace {

// Slots are allocated in chunks by the thread that first counts into one, so that a thread
// serving two servers holds a few KiB, not kMaxSlots of them.
constexpr uint32_t kChunkSlots = 64;
constexpr uint32_t kChunks = RequestCounters::kMaxSlots / kChunkSlots;

struct Chunk {
  std::array<std::array<std::atomic<uint64_t>, RequestCounters::kClasses>, kChunkSlots> slots{};
};

// One thread's counters. Only its thread writes them; the scrape reads them. Never freed: a
// thread's counts stay in the sums after it exits.
struct alignas(64) ThreadBlock {
  std::array<std::atomic<Chunk*>, kChunks> chunks{};
};

struct Registry {
  std::mutex mu;
  std::unordered_map<std::string, uint32_t> slots;
  std::vector<std::string> labels;  // by slot
  std::deque<ThreadBlock> blocks;   // a deque does not move its elements
};

Registry& registry() {
  static Registry* all = new Registry;  // never destroyed: workers may count during exit
  return *all;
}

ThreadBlock& newBlock() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.blocks.emplace_back();
}

thread_local ThreadBlock* t_block = nullptr;

}  // namespace

uint32_t RequestCounters::slotFor(std::string_view label) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto found = r.slots.find(std::string(label));
  if (found != r.slots.end()) return found->second;
  if (r.labels.size() + 1 >= kMaxSlots) {
    if (r.labels.size() + 1 == kMaxSlots) r.labels.emplace_back(kOverflowLabel);
    return kMaxSlots - 1;
  }
  const auto slot = static_cast<uint32_t>(r.labels.size());
  r.labels.emplace_back(label);
  r.slots.emplace(std::string(label), slot);
  return slot;
}

void RequestCounters::count(uint32_t slot, int status) {
  if (status < 100 || status > 599 || slot >= kMaxSlots) return;
  if (!t_block) t_block = &newBlock();
  std::atomic<Chunk*>& chunk_ptr = t_block->chunks[slot / kChunkSlots];
  Chunk* chunk = chunk_ptr.load(std::memory_order_relaxed);
  if (!chunk) {
    chunk = new Chunk;
    chunk_ptr.store(chunk, std::memory_order_release);
  }
  // The only writer: a load and a store, no read-modify-write across cores.
  std::atomic<uint64_t>& counter = chunk->slots[slot % kChunkSlots][status / 100 - 1];
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

std::vector<RequestCounters::Row> RequestCounters::snapshot() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<Row> rows(r.labels.size());
  for (size_t slot = 0; slot < rows.size(); ++slot) rows[slot].label = r.labels[slot];
  for (const ThreadBlock& block : r.blocks) {
    for (uint32_t c = 0; c < kChunks; ++c) {
      const Chunk* chunk = block.chunks[c].load(std::memory_order_acquire);
      if (!chunk) continue;
      for (uint32_t i = 0; i < kChunkSlots; ++i) {
        const size_t slot = static_cast<size_t>(c) * kChunkSlots + i;
        if (slot >= rows.size()) break;
        for (size_t k = 0; k < kClasses; ++k)
          rows[slot].by_class[k] += chunk->slots[i][k].load(std::memory_order_relaxed);
      }
    }
  }
  return rows;
}

}  // namespace subgate
