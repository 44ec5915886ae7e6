#include "core/lua/re_library.h"

#include <string_view>

#include "core/lua/pattern_cache.h"
#include "core/lua/vm_state.h"

namespace subgate::lua {
namespace {

// Checks the arguments, compiles (or finds) the pattern and runs it against argument 1. Returns
// the number of groups set (> 0) or 0 for no match, with `pattern` pointing at the cache entry
// (valid until the next PatternCache::get, which nothing below calls). Raises on bad input.
int runMatch(lua_State* L, const char* what, const PatternCache::Pattern*& pattern) {
  size_t subject_len = 0;
  size_t pattern_len = 0;
  size_t flags_len = 0;
  const char* subject = luaL_checklstring(L, 1, &subject_len);
  const char* text = luaL_checklstring(L, 2, &pattern_len);
  const char* flags = luaL_optlstring(L, 3, "", &flags_len);
  uint32_t options = 0;
  if (!PatternCache::parseFlags(std::string_view(flags, flags_len), options)) {
    return luaL_error(L, "%s: unknown flag in \"%s\" (expected any of \"imsx\")", what, flags);
  }
  PatternCache& cache = VmState::of(L).patterns();
  pattern = cache.get(std::string_view(text, pattern_len), options);
  if (!pattern) return luaL_error(L, "%s: %s", what, cache.error());
  int rc = cache.match(*pattern, std::string_view(subject, subject_len));
  if (rc < 0) return luaL_error(L, "%s: %s", what, cache.error());
  return rc;
}

int reMatch(lua_State* L) {
  const PatternCache::Pattern* pattern = nullptr;
  int set = runMatch(L, "re.match", pattern);
  if (set == 0) {
    lua_pushnil(L);
    return 1;
  }
  const char* subject = lua_tostring(L, 1);
  const PatternCache& cache = VmState::of(L).patterns();
  lua_createtable(L, static_cast<int>(pattern->groups), 0);
  int captures = lua_gettop(L);
  for (uint32_t i = 0; i <= pattern->groups; ++i) {
    size_t start = 0;
    size_t end = 0;
    // Groups past the highest one set may hold stale offsets from an earlier match.
    if (i < static_cast<uint32_t>(set) && cache.group(*pattern, i, start, end)) {
      lua_pushlstring(L, subject + start, end - start);
    } else {
      lua_pushboolean(L, 0);
    }
    lua_rawseti(L, captures, static_cast<lua_Integer>(i));
  }
  // Named groups point at the same values as their numbers. forEachName does not raise, so the
  // Lua calls inside the callback are the only ones that may longjmp, and nothing here has a
  // destructor.
  cache.forEachName(*pattern, [L, captures](const char* name, uint32_t number) {
    lua_rawgeti(L, captures, static_cast<lua_Integer>(number));
    lua_setfield(L, captures, name);
  });
  return 1;
}

int reFind(lua_State* L) {
  const PatternCache::Pattern* pattern = nullptr;
  if (runMatch(L, "re.find", pattern) == 0) {
    lua_pushnil(L);
    return 1;
  }
  size_t start = 0;
  size_t end = 0;
  VmState::of(L).patterns().group(*pattern, 0, start, end);
  lua_pushinteger(L, static_cast<lua_Integer>(start) + 1);
  lua_pushinteger(L, static_cast<lua_Integer>(end));
  return 2;
}

const luaL_Reg kFunctions[] = {{"match", reMatch}, {"find", reFind}, {nullptr, nullptr}};

}  // namespace

const luaL_Reg* reFunctions() { return kFunctions; }

}  // namespace subgate::lua
