// One Lua VM per worker thread, running hook scripts against requests.
#pragma once

#include <cstddef>
#include <memory>

#include "core/lua/hook_types.h"
#include "core/lua/script.h"

namespace subgate::lua {

class VmState;

class Vm {
 public:
  // Builds the sandbox (a few hundred microseconds): at worker start, not per request.
  Vm();
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Runs `hook` of `script` against `req`. Not thread-safe: one thread owns a Vm. The first call
  // for a script in this Vm compiles it and runs its top level in a fresh environment (its own
  // globals, kept between calls in this Vm); the 64 most recently used scripts stay cached and
  // an evicted one starts over with fresh globals when next called.
  //
  // Never throws and never leaves the Vm unusable: a script error, an exhausted instruction
  // budget or memory cap, or a wrong return value gives ok=false with a message, and the next
  // call works. After a memory-limit failure the script's globals are dropped (so whatever it
  // piled up is freed) and a full GC runs. Calling a hook the script does not define is an
  // error; check Script::has() first.
  CallResult call(const Script& script, Hook hook, const RequestView& req, const Limits& limits);

  // Bytes the Lua state holds now (all scripts' state and garbage not collected yet).
  size_t memoryInUse() const;

 private:
  std::unique_ptr<VmState> state_;
};

}  // namespace subgate::lua
