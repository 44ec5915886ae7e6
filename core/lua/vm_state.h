// Internal to core/lua: the state behind a Vm, shared by the binding files (sandbox, req,
// subgate.*). Nothing outside core/lua includes this.
//
// Rules for every lua_CFunction in core/lua: Lua errors are longjmps (Debian's Lua is C), so a
// function must not hold a local with a destructor (std::string, std::optional<...>, a lock)
// across a Lua API call that may raise; C++ results go through members like scratch_value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <lua.hpp>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/lua/hook_types.h"
#include "core/lua/pattern_cache.h"
#include "core/lua/script.h"
#include "core/lua/shared_dict.h"

namespace subgate::lua {

// Why a call is being ended against the script's will. Once set it stays set until the call
// returns: the count hook and the sandbox's pcall/xpcall re-raise, so a script cannot swallow it.
enum class Abort { kNone, kInstructions, kMemory };

class VmState {
 public:
  VmState();
  ~VmState();
  VmState(const VmState&) = delete;
  VmState& operator=(const VmState&) = delete;

  // The VmState that owns `L` (kept in the state's extra space).
  static VmState& of(lua_State* L) { return **static_cast<VmState**>(lua_getextraspace(L)); }

  // See Vm::call.
  CallResult call(const Script& script, Hook hook, const RequestView& req, const Limits& limits);
  // Loads `script` under `limits` (compile + top level) and reports which hooks it defines as
  // bits (1 << Hook). Used by Script::load on a throwaway VmState.
  bool probe(const Script& script, const Limits& limits, unsigned& hooks, std::string& error);

  size_t memoryInUse() const { return in_use_; }

  // --- For the bindings, valid while a call runs ---
  // The request of the running call, or nullptr outside calls.
  const RequestView* request() const { return request_; }
  const Script* script() const { return script_; }
  // Increases with every call, so objects made for one request can tell they are stale.
  uint64_t callSerial() const { return call_serial_; }
  bool aborting() const { return abort_ != Abort::kNone; }
  // After a protected call inside the sandbox (pcall, xpcall, load) returned `status`: turns a
  // memory error caused by our cap into an abort, and re-raises if the call is aborting.
  void afterProtectedCall(lua_State* L, int status);

  // Registry references of VM-wide values (lua_rawgeti(L, LUA_REGISTRYINDEX, ref)).
  struct Refs {
    int env_template = LUA_NOREF;  // table: what each script environment is copied from
    int abort_error = LUA_NOREF;   // string raised to end an aborted call (preallocated)
    int current_req = LUA_NOREF;   // the running call's req table, false between calls
    // Fields of the running call's req built so far (false when not built, and between calls).
    int req_headers = LUA_NOREF;
    int req_query = LUA_NOREF;
    int req_claims = LUA_NOREF;
    int req_meta = LUA_NOREF;
    int headers_meta = LUA_NOREF;
    int respond_meta = LUA_NOREF;  // marks subgate.respond() results
    int json_box_meta = LUA_NOREF;
  };
  Refs& refs() { return refs_; }

  PatternCache& patterns() { return patterns_; }
  SharedDict::Value& scratchValue() { return scratch_value_; }

 private:
  // One script loaded in this VM: registry ref of the table {env, identify, route, access}.
  struct CachedScript {
    uint64_t id;
    int entry_ref;
  };
  struct CallContext;
  static constexpr size_t kScriptCacheSize = 64;
  static constexpr int kHookInterval = 1000;

  static void* allocate(void* ud, void* ptr, size_t osize, size_t nsize);
  static void countHook(lua_State* L, lua_Debug* ar);
  static int setupProtected(lua_State* L);
  static int callProtected(lua_State* L);
  static int probeProtected(lua_State* L);

  // Pushes the script's entry table, loading the script first if this VM has not got it.
  void pushScriptEntry(lua_State* L, const Script& script);
  void evictScript(uint64_t id);
  void beginCall(const Script& script, const RequestView* req, const Limits& limits);
  // Stops counting, lifts the memory cap and releases req. Sets `error` when the call failed
  // and returns why it was aborted, if it was.
  Abort endCall(int status, std::string& error);
  void noteBudgetExhausted(lua_State* L, lua_Debug* ar);
  [[noreturn]] void raiseAbort(lua_State* L);

  lua_State* L_ = nullptr;
  Refs refs_;

  // Allocation accounting: bytes held, and the cap while a call runs (SIZE_MAX otherwise).
  size_t in_use_ = 0;
  size_t memory_limit_ = SIZE_MAX;
  bool memory_refused_ = false;  // the cap refused an allocation during this call

  // The running call.
  bool counting_ = false;
  uint64_t instructions_used_ = 0;
  uint64_t instruction_limit_ = 0;
  int hook_interval_ = kHookInterval;
  size_t limit_bytes_ = 0;
  bool limit_is_total_ = false;  // this call's cap is Limits::total_bytes (the VM's)
  Abort abort_ = Abort::kNone;
  std::string abort_where_;  // "path:line" where the budget ran out
  const RequestView* request_ = nullptr;
  const Script* script_ = nullptr;
  uint64_t call_serial_ = 0;

  std::list<CachedScript> scripts_;  // most recently used first
  std::unordered_map<uint64_t, std::list<CachedScript>::iterator> scripts_by_id_;

  PatternCache patterns_;
  SharedDict::Value scratch_value_;
};

}  // namespace subgate::lua
