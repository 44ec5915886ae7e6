// The PCRE2 patterns one Lua VM has compiled for subgate.re, by pattern text and flags.
//
// core/regex (subgate::Regex) only answers "does it match", and re.match/re.find need capture
// offsets, names and a per-VM match limit, so this talks to PCRE2 itself (same options: bytes,
// not UTF; JIT when available). Not thread-safe: owned by one VmState.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace subgate::lua {

class PatternCache {
 public:
  struct Pattern {
    void* code = nullptr;        // pcre2_code_8*
    void* match_data = nullptr;  // pcre2_match_data_8*, sized for the pattern's groups
    uint32_t groups = 0;         // capture groups, not counting the whole match
  };

  static constexpr size_t kCapacity = 128;
  static constexpr size_t kMaxPatternBytes = 8192;
  // Bounds backtracking, so a pathological pattern fails instead of burning the worker.
  static constexpr uint32_t kMatchLimit = 1000000;

  PatternCache();
  ~PatternCache();
  PatternCache(const PatternCache&) = delete;
  PatternCache& operator=(const PatternCache&) = delete;

  // Parses flags ("i" caseless, "m" multiline, "s" dot-all, "x" extended); false on others.
  static bool parseFlags(std::string_view flags, uint32_t& options);

  // The compiled pattern (cached; least recently used ones are freed beyond kCapacity), or
  // nullptr with error() set. The Pattern stays valid until the next get().
  const Pattern* get(std::string_view pattern, uint32_t options);

  // Matches from byte 0. Returns the number of ovector pairs set (> 0) on a match, 0 on no match,
  // -1 on a matching error (error() set, e.g. the match limit).
  int match(const Pattern& pattern, std::string_view subject);
  // After match(): byte offsets of group i (0 = whole match); false when the group is unset.
  bool group(const Pattern& pattern, uint32_t i, size_t& start, size_t& end) const;
  // Calls fn(name, group number) for each named group.
  template <typename Fn>
  void forEachName(const Pattern& pattern, Fn fn) const;

  const char* error() const { return error_; }
  size_t size() const { return patterns_.size(); }

 private:
  struct Entry {
    std::string key;  // options byte + pattern
    Pattern pattern;
  };
  void setError(const char* what, int code);
  void nameTable(const Pattern& pattern, uint32_t& count, uint32_t& entry_size,
                 const unsigned char*& table) const;
  static void release(Pattern& pattern);

  void* match_context_ = nullptr;  // pcre2_match_context_8*
  std::list<Entry> patterns_;      // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
  char error_[256] = {};
};

template <typename Fn>
void PatternCache::forEachName(const Pattern& pattern, Fn fn) const {
  uint32_t count = 0;
  uint32_t entry_size = 0;
  const unsigned char* table = nullptr;
  nameTable(pattern, count, entry_size, table);
  for (uint32_t i = 0; i < count; ++i) {
    const unsigned char* entry = table + static_cast<size_t>(i) * entry_size;
    // PCRE2 name table entries: 2-byte big-endian group number, then the NUL-terminated name.
    uint32_t number = (static_cast<uint32_t>(entry[0]) << 8) | entry[1];
    fn(reinterpret_cast<const char*>(entry + 2), number);
  }
}

}  // namespace subgate::lua
