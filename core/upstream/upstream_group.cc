#include "core/upstream/upstream_group.h"

#include <mutex>
#include <unordered_map>

namespace subgate {

PeerId internPeer(const std::string& address_text) {
  static std::mutex mutex;
  static std::unordered_map<std::string, PeerId> ids;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, inserted] = ids.try_emplace(address_text, static_cast<PeerId>(ids.size()));
  return it->second;
}

}  // namespace subgate
