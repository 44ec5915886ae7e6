// Internal to core/lua: JSON <-> Lua through jansson (subgate.json and req.claims).
//
// decode: objects -> tables, arrays -> tables 1..n, integers -> Lua integers, reals -> floats,
//   null -> subgate.json.null (a light userdata, so nulls survive inside tables). Any JSON
//   value is accepted at the top level; invalid JSON raises "json.decode: <reason> at line L
//   column C".
// encode: tables whose keys are exactly 1..n (n >= 1) -> arrays, other tables -> objects
//   (string keys; integer keys become decimal strings); the empty table -> {}; keys sorted;
//   compact. Raises on functions, userdata, NaN/inf, invalid UTF-8, other key types, and
//   nesting deeper than 128 (which includes cycles).
// jansson's own memory is outside the VM's memory cap; the Lua values on both sides count.
#pragma once

#include <cstddef>
#include <lua.hpp>

namespace subgate::lua {

class VmState;

// Creates the JSON box metatable (frees jansson trees a raised error left behind) in vm.refs().
void installJsonBox(lua_State* L, VmState& vm);

// Pushes the Lua value of JSON `text`; raises "<what>: <reason>" when it is not valid JSON.
void pushDecodedJson(lua_State* L, VmState& vm, const char* text, size_t size, const char* what);

int luaJsonEncode(lua_State* L);
int luaJsonDecode(lua_State* L);

}  // namespace subgate::lua
