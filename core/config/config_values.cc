#include <limits>

#include "core/config/config_ast.h"

namespace subgate::config {
namespace {

// Reads 1*DIGIT from the front of `text`; false on no digit or overflow.
bool takeNumber(std::string_view& text, uint64_t& value) {
  size_t i = 0;
  value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    value = value * 10 + digit;
    ++i;
  }
  text.remove_prefix(i);
  return i > 0;
}

bool multiply(uint64_t& value, uint64_t factor) {
  if (factor && value > std::numeric_limits<uint64_t>::max() / factor) return false;
  value *= factor;
  return true;
}

}  // namespace

std::string Node::where() const { return file + ":" + std::to_string(line); }

const Node* Node::child(std::string_view child_name) const {
  for (const Node& node : children)
    if (node.name == child_name) return &node;
  return nullptr;
}

std::optional<uint64_t> parseSize(std::string_view text) {
  uint64_t value = 0;
  if (!takeNumber(text, value)) return std::nullopt;
  if (text.empty()) return value;
  if (text.size() != 1) return std::nullopt;
  uint64_t factor = 0;
  switch (text[0]) {
    case 'k':
    case 'K': factor = 1ull << 10; break;
    case 'm':
    case 'M': factor = 1ull << 20; break;
    case 'g':
    case 'G': factor = 1ull << 30; break;
    default: return std::nullopt;
  }
  if (!multiply(value, factor)) return std::nullopt;
  return value;
}

std::optional<std::chrono::microseconds> parseFineDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  constexpr uint64_t kSecond = 1000 * 1000;
  uint64_t total = 0;
  bool bare = true;
  while (!text.empty()) {
    uint64_t value = 0;
    if (!takeNumber(text, value)) return std::nullopt;
    uint64_t factor = kSecond;  // a bare number means seconds
    if (text.starts_with("ms") || text.starts_with("us")) {
      factor = text[0] == 'm' ? 1000 : 1;
      text.remove_prefix(2);
      bare = false;
    } else if (!text.empty()) {
      switch (text[0]) {
        case 's': factor = kSecond; break;
        case 'm': factor = 60 * kSecond; break;
        case 'h': factor = 3600 * kSecond; break;
        case 'd': factor = 86400 * kSecond; break;
        default: return std::nullopt;
      }
      text.remove_prefix(1);
      bare = false;
    } else if (!bare) {
      return std::nullopt;  // "1m30" is ambiguous
    }
    if (!multiply(value, factor) || total > std::numeric_limits<int64_t>::max() - value)
      return std::nullopt;
    total += value;
  }
  if (total > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return std::chrono::microseconds(static_cast<int64_t>(total));
}

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  auto fine = parseFineDuration(text);
  if (!fine || fine->count() % 1000 != 0) return std::nullopt;  // "1500us": not whole ms
  return std::chrono::duration_cast<std::chrono::milliseconds>(*fine);
}

std::optional<bool> parseFlag(std::string_view text) {
  if (text == "on") return true;
  if (text == "off") return false;
  return std::nullopt;
}

}  // namespace subgate::config
