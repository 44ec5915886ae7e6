#include "core/lua/subgate_library.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>

#include <algorithm>
#include <climits>
#include <cstdio>

#include "core/log/log.h"
#include "core/lua/json_bridge.h"
#include "core/lua/re_library.h"
#include "core/lua/shared_library.h"
#include "core/lua/vm_state.h"

namespace subgate::lua {
namespace {

constexpr size_t kMaxLogMessage = 4096;

int luaLog(lua_State* L) {
  size_t level_len = 0;
  const char* level_text = luaL_checklstring(L, 1, &level_len);
  LogLevel level;
  if (!parseLogLevel(std::string_view(level_text, level_len), level)) {
    return luaL_argerror(L, 1, "expected \"debug\", \"info\", \"notice\", \"warn\" or \"error\"");
  }
  if (!logEnabled(level)) return 0;
  int n = lua_gettop(L);
  // Convert first (tostring may raise an error): nothing below raises, so the std::string
  // cannot be skipped over by Lua's longjmp.
  for (int i = 2; i <= n; ++i) {
    luaL_tolstring(L, i, nullptr);
    lua_replace(L, i);
  }
  // A script must not be able to forge log lines or write terminal escapes.
  std::string message;
  for (int i = 2; i <= n && message.size() < kMaxLogMessage; ++i) {
    size_t size = 0;
    const char* piece = lua_tolstring(L, i, &size);
    appendLogSafe(message, std::string_view(piece, std::min(size, kMaxLogMessage)));
  }
  if (message.size() > kMaxLogMessage) message.resize(kMaxLogMessage);
  lua_Debug ar;
  int line = 0;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar)) line = ar.currentline;
  const Script* script = VmState::of(L).script();
  logf(level, "lua %s:%d: %s", script ? script->name().c_str() : "?", line, message.c_str());
  return 0;
}

void checkHeaderPair(lua_State* L, const char* what, int key, int value) {
  if (lua_type(L, key) != LUA_TSTRING) {
    luaL_error(L, "%s: header names must be strings, got %s", what, luaL_typename(L, key));
  }
  size_t name_len = 0;
  const char* name = lua_tolstring(L, key, &name_len);
  if (!isToken(std::string_view(name, name_len))) {
    luaL_error(L, "%s: invalid header name \"%s\"", what, name);
  }
  int type = lua_type(L, value);
  if (type != LUA_TSTRING && type != LUA_TNUMBER) {
    luaL_error(L, "%s: header %s must be a string or number, got %s", what, name,
               luaL_typename(L, value));
  }
}

int luaRespond(lua_State* L) {
  lua_Integer status = luaL_checkinteger(L, 1);
  if (status < 100 || status > 599) return luaL_argerror(L, 1, "status must be 100..599");
  luaL_optlstring(L, 2, "", nullptr);
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    checkHeaderTable(L, 3, "subgate.respond", nullptr);
  }
  // Arguments 2 and 3 are read below by index, so absent ones must not alias the new table.
  lua_settop(L, 3);
  VmState& vm = VmState::of(L);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  if (lua_isnoneornil(L, 2)) {
    lua_pushliteral(L, "");
  } else {
    lua_pushvalue(L, 2);
  }
  lua_setfield(L, -2, "body");
  if (!lua_isnoneornil(L, 3)) {
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "headers");
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm.refs().respond_meta);
  lua_setmetatable(L, -2);
  return 1;
}

int luaNow(lua_State* L) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, static_cast<lua_Number>(ts.tv_sec) + static_cast<lua_Number>(ts.tv_nsec) / 1e9);
  return 1;
}

// Computes the MAC into `mac`; raises when OpenSSL fails (its error queue is drained so a later
// unrelated check does not see a stale error).
void hmacSha256(lua_State* L, unsigned char (&mac)[EVP_MAX_MD_SIZE], unsigned int& mac_len) {
  size_t key_len = 0;
  size_t data_len = 0;
  const char* key = luaL_checklstring(L, 1, &key_len);
  const char* data = luaL_checklstring(L, 2, &data_len);
  if (key_len > INT_MAX) luaL_argerror(L, 1, "key too long");
  if (!HMAC(EVP_sha256(), key, static_cast<int>(key_len),
            reinterpret_cast<const unsigned char*>(data), data_len, mac, &mac_len)) {
    unsigned long code = ERR_get_error();
    ERR_clear_error();
    char reason[160];
    ERR_error_string_n(code, reason, sizeof reason);
    luaL_error(L, "hmac_sha256: %s", reason);
  }
}

int luaHmacSha256(lua_State* L) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  hmacSha256(L, mac, mac_len);
  lua_pushlstring(L, reinterpret_cast<const char*>(mac), mac_len);
  return 1;
}

int luaHmacSha256Hex(lua_State* L) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  hmacSha256(L, mac, mac_len);
  static constexpr char kDigits[] = "0123456789abcdef";
  char hex[2 * EVP_MAX_MD_SIZE];
  for (unsigned int i = 0; i < mac_len; ++i) {
    hex[2 * i] = kDigits[mac[i] >> 4];
    hex[2 * i + 1] = kDigits[mac[i] & 15];
  }
  lua_pushlstring(L, hex, 2 * mac_len);
  return 1;
}

void setFunctions(lua_State* L, const char* table_name, const luaL_Reg* functions) {
  lua_newtable(L);
  luaL_setfuncs(L, functions, 0);
  if (table_name) lua_setfield(L, -2, table_name);
}

}  // namespace

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool isHeaderValue(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void checkHeaderTable(lua_State* L, int index, const char* what,
                      std::vector<std::pair<std::string, std::string>>* out) {
  size_t first = out ? out->size() : 0;
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    checkHeaderPair(L, what, -2, -1);
    size_t name_len = 0;
    size_t value_len = 0;
    const char* name = lua_tolstring(L, -2, &name_len);
    // Converts a number in the stack slot only: the key is untouched, so lua_next still works.
    const char* value = lua_tolstring(L, -1, &value_len);
    if (!isHeaderValue(std::string_view(value, value_len))) {
      luaL_error(L, "%s: header %s: value contains CR, LF or NUL", what, name);
    }
    if (out) out->emplace_back(std::string(name, name_len), std::string(value, value_len));
    lua_pop(L, 1);
  }
  if (out) std::sort(out->begin() + static_cast<std::ptrdiff_t>(first), out->end());
}

bool isRespondMarker(lua_State* L, int index, VmState& vm) {
  if (lua_type(L, index) != LUA_TTABLE || !lua_getmetatable(L, index)) return false;
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm.refs().respond_meta);
  bool marker = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return marker;
}

void pushSubgateLibrary(lua_State* L, VmState& vm) {
  installJsonBox(L, vm);
  lua_createtable(L, 0, 1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  vm.refs().respond_meta = luaL_ref(L, LUA_REGISTRYINDEX);

  const luaL_Reg top[] = {{"log", luaLog},
                          {"respond", luaRespond},
                          {"now", luaNow},
                          {"hmac_sha256", luaHmacSha256},
                          {"hmac_sha256_hex", luaHmacSha256Hex},
                          {nullptr, nullptr}};
  setFunctions(L, nullptr, top);
  const luaL_Reg json[] = {
      {"encode", luaJsonEncode}, {"decode", luaJsonDecode}, {nullptr, nullptr}};
  setFunctions(L, "json", json);
  lua_getfield(L, -1, "json");
  lua_pushlightuserdata(L, nullptr);
  lua_setfield(L, -2, "null");
  lua_pop(L, 1);
  setFunctions(L, "re", reFunctions());
  setFunctions(L, "shared", sharedFunctions());
}

}  // namespace subgate::lua
