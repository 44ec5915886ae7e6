#include "core/lua/vm.h"

#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/lua/request_object.h"
#include "core/lua/sandbox.h"
#include "core/lua/subgate_library.h"
#include "core/lua/vm_state.h"

namespace subgate::lua {

// --- Vm ---

Vm::Vm() : state_(std::make_unique<VmState>()) {}
Vm::~Vm() = default;

CallResult Vm::call(const Script& script, Hook hook, const RequestView& req, const Limits& limits) {
  return state_->call(script, hook, req, limits);
}

size_t Vm::memoryInUse() const { return state_->memoryInUse(); }

// --- VmState ---

namespace {

// Raised (preallocated, so raising needs no memory) to unwind an aborted call; endCall writes
// the real message.
constexpr const char* kAbortError = "subgate: call aborted";

// Script entry table layout: [1] = environment, [2 + hook] = the hook's function.
constexpr int kEntryEnv = 1;
int hookSlot(Hook hook) { return 2 + static_cast<int>(hook); }
constexpr Hook kHooks[] = {Hook::kIdentify, Hook::kRoute, Hook::kAccess};

// Lua shortens chunk names longer than LUA_IDSIZE to "...<tail>" in messages; put the whole
// name back so the message says "path:line:" as documented.
void restoreLongName(std::string& message, const std::string& name) {
  if (message.compare(0, 3, "...") != 0) return;
  for (size_t skip = 1; skip < name.size(); ++skip) {
    size_t tail = name.size() - skip;
    if (message.size() > 3 + tail && message[3 + tail] == ':' &&
        message.compare(3, tail, name, skip, tail) == 0) {
      message.replace(0, 3 + tail, name);
      return;
    }
  }
}

void raiseConversion(lua_State* L, const Script& script, Hook hook, const char* problem) {
  luaL_error(L, "%s: %s() %s", script.name().c_str(), hookName(hook), problem);
}

// A string field of a route table: non-empty, no CR, LF or NUL (these end up in headers and
// logs). Raises otherwise.
void checkRouteString(lua_State* L, const Script& script, const char* field, int value) {
  if (lua_type(L, value) != LUA_TSTRING) {
    luaL_error(L, "%s: route() field %s must be a string, got %s", script.name().c_str(), field,
               luaL_typename(L, value));
  }
  size_t size = 0;
  const char* text = lua_tolstring(L, value, &size);
  if (size == 0 || !isHeaderValue(std::string_view(text, size))) {
    luaL_error(L, "%s: route() field %s must be a non-empty string without CR, LF or NUL",
               script.name().c_str(), field);
  }
}

// Reads a subgate.respond() marker at `index` (absolute). The script could have changed the
// table since respond() checked it, so everything is checked again.
void toRespond(lua_State* L, const Script& script, Hook hook, int index, RespondAction& out) {
  lua_pushliteral(L, "status");
  lua_rawget(L, index);
  lua_Integer status = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
  if (status < 100 || status > 599)
    raiseConversion(L, script, hook, "response has no valid status");
  out.status = static_cast<int>(status);
  lua_pop(L, 1);

  lua_pushliteral(L, "body");
  lua_rawget(L, index);
  if (lua_type(L, -1) != LUA_TSTRING)
    raiseConversion(L, script, hook, "response body is not a string");
  size_t size = 0;
  const char* body = lua_tolstring(L, -1, &size);
  out.body.assign(body, size);
  lua_pop(L, 1);

  lua_pushliteral(L, "headers");
  int type = lua_rawget(L, index);
  if (type == LUA_TTABLE) {
    const char* what =
        lua_pushfstring(L, "%s: %s() response", script.name().c_str(), hookName(hook));
    checkHeaderTable(L, lua_gettop(L) - 1, what, &out.headers);
    lua_pop(L, 1);
  } else if (type != LUA_TNIL) {
    raiseConversion(L, script, hook, "response headers are not a table");
  }
  lua_pop(L, 1);
}

void toRoute(lua_State* L, const Script& script, int index, RouteAction& out) {
  const char* name = script.name().c_str();
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    int value = lua_gettop(L);
    if (lua_type(L, -2) != LUA_TSTRING) {
      luaL_error(L, "%s: route() table keys must be strings, got %s", name, luaL_typename(L, -2));
    }
    std::string_view key(lua_tostring(L, -2));
    size_t size = 0;
    if (key == "upstream" || key == "instance" || key == "deployment" || key == "subhoster") {
      checkRouteString(L, script, key.data(), value);
      const char* text = lua_tolstring(L, value, &size);
      std::optional<std::string>& field = key == "upstream"     ? out.upstream
                                          : key == "instance"   ? out.instance_id
                                          : key == "deployment" ? out.deployment
                                                                : out.subhoster;
      field.emplace(text, size);
    } else if (key == "path") {
      checkRouteString(L, script, "path", value);
      const char* text = lua_tolstring(L, value, &size);
      std::string_view path(text, size);
      // The path goes into the request line: no spaces or control characters either.
      bool clean = path.front() == '/';
      for (char c : path) clean = clean && static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
      if (!clean) {
        luaL_error(L,
                   "%s: route() path must start with '/' and contain no spaces or control "
                   "characters",
                   name);
      }
      out.path.emplace(path);
    } else if (key == "set_headers") {
      if (lua_type(L, value) != LUA_TTABLE) {
        luaL_error(L, "%s: route() set_headers must be a table {name = value}, got %s", name,
                   luaL_typename(L, value));
      }
      const char* what = lua_pushfstring(L, "%s: route() set_headers", name);
      checkHeaderTable(L, value, what, &out.set_headers);
      lua_pop(L, 1);
    } else if (key == "remove_headers") {
      if (lua_type(L, value) != LUA_TTABLE) {
        luaL_error(L, "%s: route() remove_headers must be a list of names, got %s", name,
                   luaL_typename(L, value));
      }
      lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, value));
      for (lua_Integer i = 1; i <= n; ++i) {
        lua_rawgeti(L, value, i);
        const char* header = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &size) : nullptr;
        if (!header || !isToken(std::string_view(header, size))) {
          luaL_error(L, "%s: route() remove_headers[%d] is not a header name", name,
                     static_cast<int>(i));
        }
        out.remove_headers.emplace_back(header, size);
        lua_pop(L, 1);
      }
    } else {
      // A misspelt field would otherwise be ignored without a trace.
      luaL_error(L, "%s: route() returned unknown field \"%s\"", name, key.data());
    }
    lua_pop(L, 1);
  }
}

// Converts the hook's return value (top of the stack) into `result`. Raises on a wrong value.
void convertResult(lua_State* L, VmState& vm, const Script& script, Hook hook, CallResult& result) {
  int index = lua_gettop(L);
  int type = lua_type(L, index);
  if (type == LUA_TNIL) return;
  switch (hook) {
    case Hook::kIdentify:
      if (type != LUA_TSTRING) {
        luaL_error(L, "%s: identify() must return a string or nil, got %s", script.name().c_str(),
                   luaL_typename(L, index));
      }
      {
        size_t size = 0;
        const char* identity = lua_tolstring(L, index, &size);
        result.identity.emplace(identity, size);
      }
      return;
    case Hook::kAccess:
      if (!isRespondMarker(L, index, vm)) {
        luaL_error(L, "%s: access() must return nil or subgate.respond(...), got %s",
                   script.name().c_str(), luaL_typename(L, index));
      }
      toRespond(L, script, hook, index, result.respond.emplace());
      return;
    case Hook::kRoute:
      if (isRespondMarker(L, index, vm)) {
        toRespond(L, script, hook, index, result.respond.emplace());
      } else if (type == LUA_TTABLE) {
        toRoute(L, script, index, result.route.emplace());
      } else {
        luaL_error(L, "%s: route() must return nil, a table or subgate.respond(...), got %s",
                   script.name().c_str(), luaL_typename(L, index));
      }
      return;
  }
}

}  // namespace

struct VmState::CallContext {
  const Script* script;
  Hook hook;
  CallResult* result;  // call()
  unsigned hooks;      // probe()
};

VmState::VmState() {
  L_ = lua_newstate(allocate, this);
  if (!L_) throw std::bad_alloc();
  *static_cast<VmState**>(lua_getextraspace(L_)) = this;
  lua_pushcfunction(L_, setupProtected);
  if (lua_pcall(L_, 0, 0, 0) != LUA_OK) {
    std::string message = lua_type(L_, -1) == LUA_TSTRING ? lua_tostring(L_, -1) : "unknown error";
    lua_close(L_);
    L_ = nullptr;
    throw std::runtime_error("lua: cannot set up the VM: " + message);
  }
  lua_settop(L_, 0);
}

VmState::~VmState() {
  if (L_) lua_close(L_);
}

int VmState::setupProtected(lua_State* L) {
  VmState& vm = of(L);
  installSandbox(L, vm);
  installRequestObject(L, vm);
  lua_pushstring(L, kAbortError);
  vm.refs_.abort_error = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

void* VmState::allocate(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* vm = static_cast<VmState*>(ud);
  // For a new block Lua passes the object type in osize.
  if (!ptr) osize = 0;
  if (nsize == 0) {
    std::free(ptr);
    vm->in_use_ -= osize;
    return nullptr;
  }
  // Only growth is refused: Lua does not expect shrinking to fail. On a refusal Lua runs an
  // emergency collection and retries once before raising LUA_ERRMEM.
  if (nsize > osize && vm->in_use_ - osize + nsize > vm->memory_limit_) {
    vm->memory_refused_ = true;
    return nullptr;
  }
  void* block = std::realloc(ptr, nsize);
  if (!block) return nullptr;
  vm->in_use_ = vm->in_use_ - osize + nsize;
  return block;
}

void VmState::countHook(lua_State* L, lua_Debug* ar) {
  VmState& vm = of(L);
  if (!vm.counting_) return;
  if (vm.abort_ == Abort::kNone) {
    vm.instructions_used_ += static_cast<uint64_t>(vm.hook_interval_);
    if (vm.instructions_used_ < vm.instruction_limit_) return;
    vm.noteBudgetExhausted(L, ar);
  }
  // Also reached when a script's error handler or __close method keeps running after the abort.
  vm.raiseAbort(L);
}

void VmState::noteBudgetExhausted(lua_State* L, lua_Debug* ar) {
  lua_getinfo(L, "Sl", ar);
  const char* source = script_ ? script_->name().c_str() : "?";
  // Code from load() has its own chunk name; the line number belongs to that chunk.
  if (script_ && ar->source && script_->chunkName() != ar->source) source = ar->short_src;
  char line[32];
  std::snprintf(line, sizeof line, ":%d", ar->currentline);
  abort_where_.assign(source);
  abort_where_.append(line);
  abort_ = Abort::kInstructions;
}

void VmState::raiseAbort(lua_State* L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, refs_.abort_error);
  lua_error(L);
  __builtin_unreachable();
}

void VmState::afterProtectedCall(lua_State* L, int status) {
  if (status == LUA_ERRMEM && memory_refused_ && counting_) abort_ = Abort::kMemory;
  if (abort_ != Abort::kNone) raiseAbort(L);
}

void VmState::beginCall(const Script& script, const RequestView* req, const Limits& limits) {
  ++call_serial_;
  request_ = req;
  script_ = &script;
  abort_ = Abort::kNone;
  memory_refused_ = false;
  instructions_used_ = 0;
  instruction_limit_ = limits.instructions;
  hook_interval_ = limits.instructions < static_cast<uint64_t>(kHookInterval)
                       ? static_cast<int>(limits.instructions > 0 ? limits.instructions : 1)
                       : kHookInterval;
  memory_limit_ =
      limits.memory_bytes > SIZE_MAX - in_use_ ? SIZE_MAX : in_use_ + limits.memory_bytes;
  // The VM-wide cap applies when it is the tighter one; the error names the cap that bit.
  limit_bytes_ = limits.memory_bytes;
  limit_is_total_ = limits.total_bytes < memory_limit_;
  if (limit_is_total_) {
    memory_limit_ = limits.total_bytes;
    limit_bytes_ = limits.total_bytes;
  }
  counting_ = true;
  // Setting the hook also restarts its countdown, so every call gets whole steps.
  lua_sethook(L_, countHook, LUA_MASKCOUNT, hook_interval_);
}

Abort VmState::endCall(int status, std::string& error) {
  lua_sethook(L_, nullptr, 0, 0);
  counting_ = false;
  memory_limit_ = SIZE_MAX;
  releaseRequest(L_, *this);
  request_ = nullptr;
  Abort abort = abort_;
  if (status == LUA_ERRMEM && memory_refused_) abort = Abort::kMemory;
  if (status != LUA_OK) {
    const std::string& name = script_->name();
    switch (abort) {
      case Abort::kInstructions:
        error = abort_where_ + ": instruction budget exhausted (" +
                std::to_string(instruction_limit_) + " instructions)";
        break;
      case Abort::kMemory:
        error = name +
                (limit_is_total_ ? ": the Lua VM's memory limit exceeded ("
                                 : ": memory limit exceeded (") +
                std::to_string(limit_bytes_) + " bytes)";
        break;
      case Abort::kNone:
        if (lua_type(L_, -1) == LUA_TSTRING) {
          size_t size = 0;
          const char* message = lua_tolstring(L_, -1, &size);
          error.assign(message, size);
          restoreLongName(error, name);
        } else {
          error = std::string("error object is a ") + luaL_typename(L_, -1) + " value";
        }
        // error("x", 0) and errors raised from C without a Lua caller carry no position.
        if (error.compare(0, name.size(), name) != 0 || error.size() <= name.size() ||
            error[name.size()] != ':') {
          error = name + ": " + error;
        }
        break;
    }
  }
  script_ = nullptr;
  abort_ = Abort::kNone;
  memory_refused_ = false;
  return abort;
}

CallResult VmState::call(const Script& script, Hook hook, const RequestView& req,
                         const Limits& limits) {
  CallResult result;
  CallContext context{&script, hook, &result, 0};
  beginCall(script, &req, limits);
  lua_pushcfunction(L_, callProtected);
  lua_pushlightuserdata(L_, &context);
  int status = lua_pcall(L_, 1, 0, 0);
  std::string error;
  Abort abort = endCall(status, error);
  lua_settop(L_, 0);
  if (status != LUA_OK) {
    result = CallResult();
    result.ok = false;
    result.error = std::move(error);
    result.aborted = abort != Abort::kNone;
    if (abort == Abort::kMemory) {
      // Whatever the script piled up in its globals goes with its environment.
      evictScript(script.id());
      lua_gc(L_, LUA_GCCOLLECT);
    }
  }
  return result;
}

int VmState::callProtected(lua_State* L) {
  auto* context = static_cast<CallContext*>(lua_touserdata(L, 1));
  VmState& vm = of(L);
  const Script& script = *context->script;
  vm.pushScriptEntry(L, script);
  if (lua_rawgeti(L, -1, hookSlot(context->hook)) != LUA_TFUNCTION) {
    return luaL_error(L, "%s: %s() is not defined", script.name().c_str(), hookName(context->hook));
  }
  pushRequest(L, vm);
  lua_call(L, 1, 1);
  convertResult(L, vm, script, context->hook, *context->result);
  return 0;
}

bool VmState::probe(const Script& script, const Limits& limits, unsigned& hooks,
                    std::string& error) {
  CallContext context{&script, Hook::kIdentify, nullptr, 0};
  beginCall(script, nullptr, limits);
  lua_pushcfunction(L_, probeProtected);
  lua_pushlightuserdata(L_, &context);
  int status = lua_pcall(L_, 1, 0, 0);
  endCall(status, error);
  lua_settop(L_, 0);
  if (status != LUA_OK) return false;
  hooks = context.hooks;
  return true;
}

int VmState::probeProtected(lua_State* L) {
  auto* context = static_cast<CallContext*>(lua_touserdata(L, 1));
  of(L).pushScriptEntry(L, *context->script);
  for (Hook hook : kHooks) {
    if (lua_rawgeti(L, -1, hookSlot(hook)) == LUA_TFUNCTION) {
      context->hooks |= 1u << static_cast<unsigned>(hook);
    }
    lua_pop(L, 1);
  }
  return 0;
}

void VmState::pushScriptEntry(lua_State* L, const Script& script) {
  auto found = scripts_by_id_.find(script.id());
  if (found != scripts_by_id_.end()) {
    scripts_.splice(scripts_.begin(), scripts_, found->second);
    lua_rawgeti(L, LUA_REGISTRYINDEX, found->second->entry_ref);
    return;
  }
  const std::string& text = script.text();
  int status = luaL_loadbufferx(L, text.data(), text.size(), script.chunkName().c_str(), "t");
  if (status != LUA_OK) {
    afterProtectedCall(L, status);
    lua_error(L);
  }
  int chunk = lua_gettop(L);
  pushScriptEnv(L, *this);
  int env = lua_gettop(L);
  // A main chunk's only upvalue is _ENV.
  lua_pushvalue(L, env);
  if (!lua_setupvalue(L, chunk, 1)) lua_pop(L, 1);
  lua_createtable(L, 4, 0);
  int entry = lua_gettop(L);
  lua_pushvalue(L, env);
  lua_rawseti(L, entry, kEntryEnv);
  lua_pushvalue(L, chunk);
  lua_call(L, 0, 0);
  for (Hook hook : kHooks) {
    lua_pushstring(L, hookName(hook));
    if (lua_rawget(L, env) == LUA_TFUNCTION) {
      lua_rawseti(L, entry, hookSlot(hook));
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pushvalue(L, entry);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  scripts_.push_front(CachedScript{script.id(), ref});
  scripts_by_id_[script.id()] = scripts_.begin();
  while (scripts_.size() > kScriptCacheSize) evictScript(scripts_.back().id);
  lua_replace(L, chunk);
  lua_settop(L, chunk);
}

void VmState::evictScript(uint64_t id) {
  auto found = scripts_by_id_.find(id);
  if (found == scripts_by_id_.end()) return;
  luaL_unref(L_, LUA_REGISTRYINDEX, found->second->entry_ref);
  scripts_.erase(found->second);
  scripts_by_id_.erase(found);
}

}  // namespace subgate::lua
