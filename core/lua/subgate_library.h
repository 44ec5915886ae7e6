// Internal to core/lua: the `subgate` table scripts see.
//
//   subgate.log(level, ...)        level "debug"|"info"|"notice"|"warn"|"error"; the other
//                                  arguments are tostring()ed and concatenated (no separator)
//                                  into one error-log line "lua NAME:LINE: message"; control
//                                  characters are escaped, the message is cut at 4 KiB
//   subgate.respond(status, body, headers)  status 100..599, body string (default ""), headers
//                                  {name = value} (strings or numbers); returns the marker that
//                                  access()/route() return to answer the request
//   subgate.now()                  wall-clock seconds since the epoch, with fractions
//   subgate.json.encode(v) / decode(s) / null   (see json_bridge.h)
//   subgate.re.match(s, pattern, flags)  captures table {[0]=whole, [1]=group 1, ..., name=...}
//                                  (false for unset groups) or nil; flags "imsx"
//   subgate.re.find(s, pattern, flags)   start, end (1-based, inclusive) or nil
//   subgate.hmac_sha256(key, data) raw 32 bytes; hmac_sha256_hex(key, data) 64 hex digits
//   subgate.shared.get(key)        string/number or nil
//   subgate.shared.set(key, value, ttl)  value nil deletes; returns true, evicted (whether live
//                                  entries were evicted for room) or nil, "too large"
//   subgate.shared.incr(key, by, init, ttl)  new number, or nil, "not found" | "not a number"
//   subgate.shared.delete(key)
#pragma once

#include <lua.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace subgate::lua {

class VmState;

// Pushes a new `subgate` table (the template every script environment copies) and creates the
// VM-wide metatables it needs (respond marker, JSON box), storing their refs in vm.refs().
void pushSubgateLibrary(lua_State* L, VmState& vm);

// Whether the value at `index` is a subgate.respond() marker.
bool isRespondMarker(lua_State* L, int index, VmState& vm);

// Checks a {name = value} header table at `index` (absolute), raising "what: ..." on a bad name
// or value. With `out`, appends the pairs, sorted by name.
void checkHeaderTable(lua_State* L, int index, const char* what,
                      std::vector<std::pair<std::string, std::string>>* out);

// Whether `s` is a valid header value (no CR, LF or NUL) / an HTTP token.
bool isHeaderValue(std::string_view s);
bool isToken(std::string_view s);

}  // namespace subgate::lua
