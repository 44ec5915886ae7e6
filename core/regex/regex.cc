#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/regex/regex.h"

#include <pcre2.h>

namespace subgate {
namespace {

// One match-data block per thread, sized for the captures we use (none beyond the whole match).
pcre2_match_data* threadMatchData() {
  thread_local struct Holder {
    pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
    ~Holder() { pcre2_match_data_free(data); }
  } holder;
  return holder.data;
}

}  // namespace

std::shared_ptr<const Regex> Regex::compile(std::string_view pattern, bool caseless,
                                            std::string& err) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  // Paths are bytes, not necessarily UTF-8: match them as such.
  uint32_t options = caseless ? PCRE2_CASELESS : 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error_code, &error_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof message);
    err = "offset " + std::to_string(error_offset) + ": " + reinterpret_cast<char*>(message);
    return nullptr;
  }
  // JIT is an optimization: when it is unavailable the interpreter still matches correctly.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::shared_ptr<const Regex>(new Regex(code));
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

bool Regex::matches(std::string_view subject) const {
  int rc =
      pcre2_match(static_cast<pcre2_code*>(code_), reinterpret_cast<PCRE2_SPTR>(subject.data()),
                  subject.size(), 0, 0, threadMatchData(), nullptr);
  return rc >= 0;
}

}  // namespace subgate
