// Maps keyed by std::string that are searched with a std::string_view (C++20 heterogeneous
// lookup): a lookup hashes and compares the view, it never copies the key into a string.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace subgate {

// std::hash of the characters, for std::string and std::string_view alike.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

}  // namespace subgate
