// Internal to core/lua: subgate.shared, the process-wide SharedDict::instance() seen from Lua.
//
//   shared.get(key)                  string/number or nil (absent or expired)
//   shared.set(key, value, ttl)      value string/number, or nil to delete; ttl seconds (> 0
//                                    expires, default never); returns true, evicted or
//                                    nil, "too large"
//   shared.incr(key, by, init, ttl)  by defaults to 1; returns the new number, or
//                                    nil, "not found" | "not a number" | "too large"; without
//                                    init a missing key is "not found", with it the key starts at
//                                    init (expiring after ttl when > 0)
//   shared.delete(key)               returns nothing
// Keys are strings (numbers are converted). Integers stay integers, floats stay floats.
#pragma once

#include <lua.hpp>

namespace subgate::lua {

// {get, set, incr, delete}, terminated by {nullptr, nullptr}.
const luaL_Reg* sharedFunctions();

}  // namespace subgate::lua
