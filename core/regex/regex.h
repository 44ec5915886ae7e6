// A PCRE2 pattern compiled (and JIT-compiled where available) once at config time, matched
// from any thread without allocation (match data is per thread).
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace subgate {

class Regex {
 public:
  // Returns nullptr with `err` set ("offset N: reason") when the pattern does not compile.
  static std::shared_ptr<const Regex> compile(std::string_view pattern, bool caseless,
                                              std::string& err);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  bool matches(std::string_view subject) const;

 private:
  explicit Regex(void* code) : code_(code) {}
  void* code_;  // pcre2_code_8*
};

}  // namespace subgate
