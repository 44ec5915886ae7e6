// Internal to core/lua: subgate.re (PCRE2 through the VM's PatternCache).
//
//   re.match(s, pattern, flags)  on a match a table {[0] = whole match, [1] = group 1, ...,
//                                name = group} with false for groups that did not take part;
//                                nil when there is no match
//   re.find(s, pattern, flags)   start, end of the whole match (1-based, inclusive, like
//                                string.find), or nil
// flags: any of "imsx" (caseless, multiline, dot-all, extended), default "". An unknown flag, a
// pattern that does not compile and a matching error (e.g. the backtracking limit) raise
// "re.match: <reason>" / "re.find: <reason>".
#pragma once

#include <lua.hpp>

namespace subgate::lua {

// {match, find}, terminated by {nullptr, nullptr}.
const luaL_Reg* reFunctions();

}  // namespace subgate::lua
