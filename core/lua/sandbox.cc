#include "core/lua/sandbox.h"

#include "core/lua/subgate_library.h"
#include "core/lua/vm_state.h"

namespace subgate::lua {
namespace {

constexpr const char* kBaseNames[] = {
    "assert", "error",  "getmetatable", "ipairs", "next",     "pairs",    "rawequal",
    "rawget", "rawlen", "rawset",       "select", "tonumber", "tostring", "type",
};
constexpr const char* kOsNames[] = {"time", "clock", "date"};

// Mirrors luaB_pcall/luaB_xpcall's result handling (Lua 5.4 lbaselib.c). Scripts cannot yield
// (no coroutine library), so no continuation is needed.
int finishProtected(lua_State* L, int status, int extra) {
  VmState::of(L).afterProtectedCall(L, status);
  if (status != LUA_OK) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - extra;
}

int safePcall(lua_State* L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
  return finishProtected(L, status, 0);
}

// The message handler safeXpcall installs in place of the script's (upvalue 1). Lua runs a
// message handler before unwinding, and when the error was raised by the count hook it runs it
// with hooks still disabled, so the script's handler could loop forever unbudgeted: during an
// abort it is skipped and the error passes through unchanged.
int abortAwareHandler(lua_State* L) {
  if (VmState::of(L).aborting()) return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

int safeXpcall(lua_State* L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, abortAwareHandler, 1);
  lua_replace(L, 2);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  int status = lua_pcall(L, n - 2, LUA_MULTRET, 2);
  return finishProtected(L, status, 2);
}

// luaB_setmetatable plus the __gc refusal. Lua 5.4 marks an object for finalization only when
// the metatable has __gc at setmetatable time, so checking here is enough.
int safeSetmetatable(lua_State* L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    bool has_gc = lua_rawget(L, 2) != LUA_TNIL;
    lua_pop(L, 1);
    if (has_gc) return luaL_error(L, "setmetatable: __gc metamethods are not allowed");
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) {
    return luaL_error(L, "cannot change a protected metatable");
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

// Stopping or tuning the collector would let one script starve every other script in the VM.
int safeCollectgarbage(lua_State* L) {
  const char* option = luaL_optstring(L, 1, "collect");
  if (std::string_view(option) != "count") {
    return luaL_error(L, "collectgarbage: only \"count\" is allowed");
  }
  int kb = lua_gc(L, LUA_GCCOUNT);
  int bytes = lua_gc(L, LUA_GCCOUNTB);
  lua_pushnumber(L, static_cast<lua_Number>(kb) + static_cast<lua_Number>(bytes) / 1024);
  return 1;
}

// load(chunk [, chunkname [, mode [, env]]]): mode is forced to "t" (binary chunks can break
// the VM), and the environment defaults to the calling script's (upvalue 1), never the real
// globals.
int safeLoad(lua_State* L) {
  size_t size = 0;
  const char* chunk = luaL_checklstring(L, 1, &size);
  const char* chunk_name = luaL_optstring(L, 2, "=(load)");
  bool has_env = !lua_isnone(L, 4);
  int status = luaL_loadbufferx(L, chunk, size, chunk_name, "t");
  VmState::of(L).afterProtectedCall(L, status);
  if (status != LUA_OK) {
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushvalue(L, has_env ? 4 : lua_upvalueindex(1));
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  return 1;
}

// Copies `src` (absolute index) into a new table on top; nested tables are copied too (the
// template is a small acyclic tree).
void pushCopy(lua_State* L, int src) {
  luaL_checkstack(L, 4, "sandbox copy");
  lua_newtable(L);
  int dst = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, src) != 0) {
    lua_pushvalue(L, -2);
    if (lua_type(L, -2) == LUA_TTABLE) {
      pushCopy(L, lua_absindex(L, -2));
    } else {
      lua_pushvalue(L, -2);
    }
    lua_rawset(L, dst);
    lua_pop(L, 1);
  }
}

// Opens library `name` without making it a global and leaves it on the stack.
int openLibrary(lua_State* L, const char* name, lua_CFunction open) {
  luaL_requiref(L, name, open, 0);
  return lua_gettop(L);
}

}  // namespace

void installSandbox(lua_State* L, VmState& vm) {
  int globals = openLibrary(L, "_G", luaopen_base);
  int string = openLibrary(L, "string", luaopen_string);
  int table = openLibrary(L, "table", luaopen_table);
  int math = openLibrary(L, "math", luaopen_math);
  int utf8 = openLibrary(L, "utf8", luaopen_utf8);
  int os = openLibrary(L, "os", luaopen_os);

  // The string metatable's __index is this very table, so dump must go from it, not a copy.
  lua_pushnil(L);
  lua_setfield(L, string, "dump");
  lua_pushliteral(L, "");
  if (lua_getmetatable(L, -1)) {
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  lua_newtable(L);
  int env = lua_gettop(L);
  for (const char* name : kBaseNames) {
    lua_getfield(L, globals, name);
    lua_setfield(L, env, name);
  }
  lua_getfield(L, globals, "_VERSION");
  lua_setfield(L, env, "_VERSION");
  const luaL_Reg overrides[] = {{"pcall", safePcall},
                                {"xpcall", safeXpcall},
                                {"setmetatable", safeSetmetatable},
                                {"collectgarbage", safeCollectgarbage},
                                {nullptr, nullptr}};
  luaL_setfuncs(L, overrides, 0);

  const struct {
    const char* name;
    int index;
  } libraries[] = {{"string", string}, {"table", table}, {"math", math}, {"utf8", utf8}};
  for (const auto& library : libraries) {
    pushCopy(L, library.index);
    lua_setfield(L, env, library.name);
  }
  lua_newtable(L);
  for (const char* name : kOsNames) {
    lua_getfield(L, os, name);
    lua_setfield(L, -2, name);
  }
  lua_setfield(L, env, "os");
  pushSubgateLibrary(L, vm);
  lua_setfield(L, env, "subgate");
  vm.refs().env_template = luaL_ref(L, LUA_REGISTRYINDEX);

  // Nothing points scripts at the real globals; emptying them is defense in depth.
  lua_pushnil(L);
  while (lua_next(L, globals) != 0) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, globals);
  }
  lua_settop(L, globals - 1);
}

void pushScriptEnv(lua_State* L, VmState& vm) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm.refs().env_template);
  pushCopy(L, lua_gettop(L));
  lua_remove(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "_G");
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, safeLoad, 1);
  lua_setfield(L, -2, "load");
}

}  // namespace subgate::lua
