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

using Counter = std::atomic<uint64_t>;

// The only writer of a counter is its thread: a load and a store, no read-modify-write across
// cores.
inline void bump(Counter& counter, uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// One server's counts on one thread (about half a KiB).
struct SlotCounters {
  std::array<Counter, RequestCounters::kClasses> by_class{};
  std::array<Counter, RequestCounters::kErrorKinds> errors{};
  Counter request_body_bytes{0};
  Counter response_body_bytes{0};
  ThreadLatencyHistogram duration;
  ThreadLatencyHistogram first_byte;
};

struct Chunk {
  std::array<SlotCounters, kChunkSlots> slots{};
};

// One thread's counters. Only its thread writes them; the scrape reads them. Never freed: a
// thread's counts stay in the sums after it exits.
struct alignas(64) ThreadBlock {
  std::array<std::atomic<Chunk*>, kChunks> chunks{};
  std::array<Counter, static_cast<size_t>(RequestCounters::Event::kCount)> events{};
  ThreadLatencyHistogram isolate_wait;
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

ThreadBlock& threadBlock() {
  if (!t_block) t_block = &newBlock();
  return *t_block;
}

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

void RequestCounters::count(uint32_t slot, const RequestSample& sample) {
  const int status = sample.status;
  if (status < 100 || status > 599 || slot >= kMaxSlots) return;
  threadBlock();
  std::atomic<Chunk*>& chunk_ptr = t_block->chunks[slot / kChunkSlots];
  Chunk* chunk = chunk_ptr.load(std::memory_order_relaxed);
  if (!chunk) {
    chunk = new Chunk;
    chunk_ptr.store(chunk, std::memory_order_release);
  }
  SlotCounters& counters = chunk->slots[slot % kChunkSlots];
  bump(counters.by_class[status / 100 - 1]);
  if (sample.error) bump(counters.errors[static_cast<size_t>(*sample.error)]);
  if (sample.request_body_bytes) bump(counters.request_body_bytes, sample.request_body_bytes);
  if (sample.response_body_bytes) bump(counters.response_body_bytes, sample.response_body_bytes);
  counters.duration.add(sample.duration_nanos);
  if (sample.first_byte_nanos) counters.first_byte.add(*sample.first_byte_nanos);
  if (sample.isolate_wait_nanos) t_block->isolate_wait.add(*sample.isolate_wait_nanos);
}

void RequestCounters::note(Event event) { bump(threadBlock().events[static_cast<size_t>(event)]); }

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
        const SlotCounters& from = chunk->slots[i];
        Row& row = rows[slot];
        for (size_t k = 0; k < kClasses; ++k)
          row.by_class[k] += from.by_class[k].load(std::memory_order_relaxed);
        for (size_t k = 0; k < kErrorKinds; ++k)
          row.errors[k] += from.errors[k].load(std::memory_order_relaxed);
        row.request_body_bytes += from.request_body_bytes.load(std::memory_order_relaxed);
        row.response_body_bytes += from.response_body_bytes.load(std::memory_order_relaxed);
        from.duration.addTo(row.duration);
        from.first_byte.addTo(row.first_byte);
      }
    }
  }
  return rows;
}

RequestCounters::Totals RequestCounters::totals() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  Totals totals;
  for (const ThreadBlock& block : r.blocks) {
    for (size_t k = 0; k < totals.events.size(); ++k)
      totals.events[k] += block.events[k].load(std::memory_order_relaxed);
    block.isolate_wait.addTo(totals.isolate_wait);
  }
  return totals;
}

}  // namespace subgate
