// Internal to core/lua: the sandboxed environment scripts run in.
//
// What a script can reach (everything else of the Lua standard library is absent):
//   assert error getmetatable ipairs next pairs pcall rawequal rawget rawlen rawset select
//   setmetatable tonumber tostring type xpcall _VERSION _G
//   collectgarbage    only collectgarbage("count")
//   load              text chunks only; the environment defaults to the script's own
//   string (no dump), table, math, utf8, os.time/os.clock/os.date, subgate
// setmetatable refuses metatables with __gc (finalizers would run outside any call's budget);
// pcall/xpcall re-raise when the call is being aborted (budget, memory cap); the string
// metatable is hidden (getmetatable("") is false) so one script cannot change string methods
// under another.
#pragma once

#include <lua.hpp>

namespace subgate::lua {

class VmState;

// Once per lua_State, in protected mode (raises on out-of-memory): opens and strips the
// libraries, builds the template environment and stores it as vm.refs().env_template. Also
// empties the state's real global table, which no script environment points at.
void installSandbox(lua_State* L, VmState& vm);

// Pushes a fresh environment for one script: its own copies of the template's tables, _G
// pointing at itself and a load() bound to it. May raise.
void pushScriptEnv(lua_State* L, VmState& vm);

}  // namespace subgate::lua
