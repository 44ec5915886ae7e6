// A Lua hook script compiled at config load: immutable, shared by all worker threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/lua/hook_types.h"

namespace subgate::lua {

class Script {
 public:
  // Main thread, at config load (also for `subgate -t`). Reads `path`, checks the syntax (text
  // chunks only) and runs the top level once in a throwaway sandboxed VM under `limits` to learn
  // which of identify/route/access it defines as global functions. Returns nullptr with `error`
  // set ("path:line: message", or "path: reason" when the file cannot be read) when the file
  // does not compile or its top level raises an error or runs out of its limits.
  static std::shared_ptr<const Script> load(const std::string& path, std::string& error,
                                            const Limits& limits = Limits());

  // The same from source text; `name` stands for the path in error messages (tests, inline
  // scripts).
  static std::shared_ptr<const Script> fromText(std::string_view text, const std::string& name,
                                                std::string& error,
                                                const Limits& limits = Limits());

  // Whether the top level defined the global function for `hook`.
  bool has(Hook hook) const { return (hooks_ & (1u << static_cast<unsigned>(hook))) != 0; }
  // The path (or name) given at load, as error messages show it.
  const std::string& name() const { return name_; }
  // Unique per loaded Script in this process: a reload yields new ids, so a Vm can cache the
  // script's compiled state by id.
  uint64_t id() const { return id_; }
  const std::string& text() const { return text_; }
  // "@" + name: the chunk name Lua puts before ":line:" in messages.
  const std::string& chunkName() const { return chunk_name_; }

 private:
  Script(std::string text, std::string name);

  std::string text_;
  std::string name_;
  std::string chunk_name_;
  uint64_t id_;
  unsigned hooks_ = 0;  // bit (1 << Hook)
};

}  // namespace subgate::lua
