#include "core/pipeline/deployment_counters.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "core/container/string_map.h"

namespace subgate {
namespace {

using Counter = std::atomic<uint64_t>;

// The only writer of a counter is its thread: a load and a store, no read-modify-write.
inline void bump(Counter& counter, uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// One deployment's counts on one thread. The names are written before the cell is published
// and never after, so a scrape reads them without a lock.
struct Cell {
  std::string subhoster;
  std::string deployment_id;
  std::string key;  // subhoster '\0' deployment_id: the thread's index key
  std::array<Counter, RequestCounters::kClasses> by_class{};
  std::array<Counter, RequestCounters::kErrorKinds> errors{};
  ThreadLatencyHistogram duration;

  void add(const RequestSample& sample) {
    bump(by_class[sample.status / 100 - 1]);
    if (sample.error) bump(errors[static_cast<size_t>(*sample.error)]);
    duration.add(sample.duration_nanos);
  }
  uint64_t requests() const {
    uint64_t n = 0;
    for (const Counter& c : by_class) n += c.load(std::memory_order_relaxed);
    return n;
  }
  // Adds this cell's counts to `out` (the owning thread, folding an evicted cell).
  void foldInto(Cell& out) const {
    for (size_t i = 0; i < by_class.size(); ++i)
      bump(out.by_class[i], by_class[i].load(std::memory_order_relaxed));
    for (size_t i = 0; i < errors.size(); ++i)
      bump(out.errors[i], errors[i].load(std::memory_order_relaxed));
    for (size_t i = 0; i < duration.buckets.size(); ++i)
      bump(out.duration.buckets[i], duration.buckets[i].load(std::memory_order_relaxed));
    bump(out.duration.sum_nanos, duration.sum_nanos.load(std::memory_order_relaxed));
  }
  void addTo(DeploymentCounters::Row& row) const {
    for (size_t i = 0; i < by_class.size(); ++i)
      row.by_class[i] += by_class[i].load(std::memory_order_relaxed);
    for (size_t i = 0; i < errors.size(); ++i)
      row.errors[i] += errors[i].load(std::memory_order_relaxed);
    duration.addTo(row.duration);
  }
};

// Odd while a scrape reads the tables. A writer that replaced a cell frees it at once when no
// scrape was running after the replacement (seq_cst on both sides: a scrape that starts later
// cannot load the old pointer), else once the counter moved past the value it saw.
std::atomic<uint64_t> g_scrape_seq{0};

// One thread's table. `cells` is what the scrape reads; the rest is the writer's alone.
struct ThreadTable {
  std::array<std::atomic<Cell*>, DeploymentCounters::kCellsPerThread> cells{};
  Cell other;  // folded counts of evicted cells
  StringMap<size_t> index;
  size_t used = 0;
  size_t hand = 0;                                  // where the next eviction starts sampling
  std::vector<std::pair<Cell*, uint64_t>> retired;  // cells a running scrape may still read
  std::string key;                                  // reused buffer for the lookup key

  void freeRetired() {
    const uint64_t now = g_scrape_seq.load(std::memory_order_seq_cst);
    std::erase_if(retired, [now](const std::pair<Cell*, uint64_t>& entry) {
      if (now <= entry.second) return false;
      delete entry.first;
      return true;
    });
  }

  // The index of a cell to reuse: a free one, else the least busy of a sample.
  size_t placeFor() {
    if (used < cells.size()) return used++;
    size_t victim = hand;
    uint64_t fewest = UINT64_MAX;
    for (size_t i = 0; i < DeploymentCounters::kEvictionSample; ++i) {
      const size_t at = (hand + i) % cells.size();
      const uint64_t n = cells[at].load(std::memory_order_relaxed)->requests();
      if (n < fewest) {
        fewest = n;
        victim = at;
      }
    }
    hand = (hand + DeploymentCounters::kEvictionSample) % cells.size();
    return victim;
  }

  Cell& cellFor(std::string_view subhoster, std::string_view deployment_id) {
    key.assign(subhoster);
    key.push_back('\0');
    key.append(deployment_id);
    if (auto found = index.find(std::string_view(key)); found != index.end())
      return *cells[found->second].load(std::memory_order_relaxed);
    const size_t at = placeFor();
    auto* cell = new Cell;
    cell->subhoster.assign(subhoster);
    cell->deployment_id.assign(deployment_id);
    cell->key = key;
    Cell* old = cells[at].exchange(cell, std::memory_order_seq_cst);
    if (old) {
      index.erase(old->key);
      old->foldInto(other);
      const uint64_t seq = g_scrape_seq.load(std::memory_order_seq_cst);
      if (seq % 2 == 0) {
        delete old;
      } else {
        retired.emplace_back(old, seq);
      }
      freeRetired();
    }
    index.emplace(cell->key, at);
    return *cell;
  }
};

struct Registry {
  std::mutex mu;  // guards `tables` and makes scrapes take turns
  std::deque<ThreadTable> tables;
};

Registry& registry() {
  static Registry* all = new Registry;  // never destroyed: workers may count during exit
  return *all;
}

thread_local ThreadTable* t_table = nullptr;

ThreadTable& threadTable() {
  if (!t_table) {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    t_table = &r.tables.emplace_back();
  }
  return *t_table;
}

}  // namespace

uint64_t DeploymentCounters::Row::requests() const {
  uint64_t n = 0;
  for (uint64_t c : by_class) n += c;
  return n;
}

void DeploymentCounters::Row::merge(const Row& other) {
  for (size_t i = 0; i < by_class.size(); ++i) by_class[i] += other.by_class[i];
  for (size_t i = 0; i < errors.size(); ++i) errors[i] += other.errors[i];
  duration.merge(other.duration);
}

void DeploymentCounters::count(std::string_view subhoster, std::string_view deployment_id,
                               const RequestSample& sample) {
  if (sample.status < 100 || sample.status > 599) return;
  threadTable().cellFor(subhoster, deployment_id).add(sample);
}

DeploymentCounters::Snapshot DeploymentCounters::snapshot() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  Snapshot out;
  std::unordered_map<std::string_view, size_t> rows;     // by key (the cells' own strings)
  g_scrape_seq.fetch_add(1, std::memory_order_seq_cst);  // odd: cells seen are not freed
  for (const ThreadTable& table : r.tables) {
    table.other.addTo(out.evicted);
    for (const std::atomic<Cell*>& slot : table.cells) {
      const Cell* cell = slot.load(std::memory_order_seq_cst);
      if (!cell) continue;
      auto [it, added] = rows.emplace(cell->key, out.rows.size());
      if (added) out.rows.push_back(Row{cell->subhoster, cell->deployment_id, {}, {}, {}});
      cell->addTo(out.rows[it->second]);
    }
  }
  g_scrape_seq.fetch_add(1, std::memory_order_seq_cst);
  return out;
}

}  // namespace subgate
