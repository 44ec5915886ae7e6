#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/lua/pattern_cache.h"

#include <pcre2.h>

#include <cstdio>
#include <utility>

namespace subgate::lua {

PatternCache::PatternCache() {
  auto* context = pcre2_match_context_create(nullptr);
  if (context) {
    pcre2_set_match_limit(context, kMatchLimit);
    pcre2_set_depth_limit(context, kMatchLimit / 10);
  }
  // Without a context (out of memory) matches run with PCRE2's defaults, which are also bounded.
  match_context_ = context;
}

PatternCache::~PatternCache() {
  for (Entry& entry : patterns_) release(entry.pattern);
  pcre2_match_context_free(static_cast<pcre2_match_context*>(match_context_));
}

void PatternCache::release(Pattern& pattern) {
  pcre2_match_data_free(static_cast<pcre2_match_data*>(pattern.match_data));
  pcre2_code_free(static_cast<pcre2_code*>(pattern.code));
  pattern = Pattern();
}

bool PatternCache::parseFlags(std::string_view flags, uint32_t& options) {
  options = 0;
  for (char c : flags) {
    switch (c) {
      case 'i': options |= PCRE2_CASELESS; break;
      case 'm': options |= PCRE2_MULTILINE; break;
      case 's': options |= PCRE2_DOTALL; break;
      case 'x': options |= PCRE2_EXTENDED; break;
      default: return false;
    }
  }
  return true;
}

void PatternCache::setError(const char* what, int code) {
  PCRE2_UCHAR message[200];
  if (pcre2_get_error_message(code, message, sizeof message) < 0) {
    std::snprintf(reinterpret_cast<char*>(message), sizeof message, "error %d", code);
  }
  std::snprintf(error_, sizeof error_, "%s%s", what, reinterpret_cast<char*>(message));
}

const PatternCache::Pattern* PatternCache::get(std::string_view pattern, uint32_t options) {
  if (pattern.size() > kMaxPatternBytes) {
    std::snprintf(error_, sizeof error_, "pattern longer than %zu bytes", kMaxPatternBytes);
    return nullptr;
  }
  std::string key;
  key.reserve(pattern.size() + 4);
  key.append(reinterpret_cast<const char*>(&options), sizeof options);
  key.append(pattern);
  auto found = index_.find(key);
  if (found != index_.end()) {
    patterns_.splice(patterns_.begin(), patterns_, found->second);
    return &found->second->pattern;
  }

  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error_code, &error_offset, nullptr);
  if (!code) {
    char where[48];
    std::snprintf(where, sizeof where,
                  "bad pattern at offset %zu: ", static_cast<size_t>(error_offset));
    setError(where, error_code);
    return nullptr;
  }
  // JIT is only an optimization: the interpreter matches the same way when it is unavailable.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  if (!data) {
    pcre2_code_free(code);
    std::snprintf(error_, sizeof error_, "out of memory");
    return nullptr;
  }
  uint32_t groups = 0;
  pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);

  patterns_.push_front(Entry{std::move(key), Pattern{code, data, groups}});
  index_.emplace(std::string_view(patterns_.front().key), patterns_.begin());
  while (patterns_.size() > kCapacity) {
    Entry& victim = patterns_.back();
    index_.erase(std::string_view(victim.key));
    release(victim.pattern);
    patterns_.pop_back();
  }
  return &patterns_.front().pattern;
}

int PatternCache::match(const Pattern& pattern, std::string_view subject) {
  int rc = pcre2_match(static_cast<pcre2_code*>(pattern.code),
                       reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0,
                       static_cast<pcre2_match_data*>(pattern.match_data),
                       static_cast<pcre2_match_context*>(match_context_));
  if (rc == PCRE2_ERROR_NOMATCH) return 0;
  if (rc < 0) {
    setError("", rc);
    return -1;
  }
  // rc == 0 means the ovector was too small, which match data from the pattern rules out.
  return rc == 0 ? static_cast<int>(pattern.groups) + 1 : rc;
}

bool PatternCache::group(const Pattern& pattern, uint32_t i, size_t& start, size_t& end) const {
  auto* data = static_cast<pcre2_match_data*>(pattern.match_data);
  if (i >= pcre2_get_ovector_count(data)) return false;
  PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
  if (ovector[2 * i] == PCRE2_UNSET) return false;
  start = ovector[2 * i];
  end = ovector[2 * i + 1];
  return true;
}

void PatternCache::nameTable(const Pattern& pattern, uint32_t& count, uint32_t& entry_size,
                             const unsigned char*& table) const {
  auto* code = static_cast<const pcre2_code*>(pattern.code);
  count = 0;
  if (pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &count) != 0 || count == 0) return;
  PCRE2_SPTR names = nullptr;
  if (pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &entry_size) != 0 ||
      pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &names) != 0) {
    count = 0;
    return;
  }
  table = names;
}

}  // namespace subgate::lua
