// Internal to core/lua: the `req` object a hook receives (see RequestView in hook_types.h for
// what scripts see).
//
// req is a fresh, empty table per call whose metatable (VM-wide, hidden from scripts) builds
// fields on access from the running call's RequestView. Nothing request-derived is stored in req
// itself, so every access after the call returned goes through __index and raises. Strings are
// pushed on each access; tables (query, claims) and the headers object are built once per call
// and kept in registry slots that releaseRequest() empties. req.headers is a userdata stamped
// with the call serial whose __index scans the header span case-insensitively, so a lookup
// allocates nothing but the value string.
#pragma once

#include <lua.hpp>

namespace subgate::lua {

class VmState;

// Once per lua_State, in protected mode: creates the req and headers metatables and the registry
// slots for the running call's req and its cached fields, storing their refs in vm.refs().
void installRequestObject(lua_State* L, VmState& vm);

// Pushes a new req for the running call (vm.request() must be set) and makes it the current
// one. May raise (out of memory).
void pushRequest(lua_State* L, VmState& vm);

// After a call: forgets the current req and the fields built for it. Never raises.
void releaseRequest(lua_State* L, VmState& vm);

}  // namespace subgate::lua
