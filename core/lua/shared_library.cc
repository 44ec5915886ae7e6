#include "core/lua/shared_library.h"

#include <string_view>

#include "core/lua/shared_dict.h"
#include "core/lua/vm_state.h"

// Every function here takes its Lua arguments first (those calls may raise), then works on the
// dictionary with C++ objects that are gone again before the results are pushed: see the
// longjmp rule in vm_state.h.

namespace subgate::lua {
namespace {

using Value = SharedDict::Value;

std::string_view checkKey(lua_State* L) {
  size_t size = 0;
  const char* key = luaL_checklstring(L, 1, &size);
  return std::string_view(key, size);
}

// Pushes `value` (a number or a string). May raise (out of memory) once nothing needs freeing.
void pushValue(lua_State* L, const Value& value) {
  switch (value.type) {
    case Value::Type::kInteger: lua_pushinteger(L, value.integer); break;
    case Value::Type::kNumber: lua_pushnumber(L, value.number); break;
    case Value::Type::kString: lua_pushlstring(L, value.string.data(), value.string.size()); break;
  }
}

// A numeric Lua argument as plain data, so no Value (which owns a std::string) has to live
// across the argument checks.
struct Number {
  bool integer;
  lua_Integer i;
  lua_Number n;
};

Number checkNumber(lua_State* L, int arg) {
  luaL_checknumber(L, arg);
  if (lua_isinteger(L, arg)) return Number{true, lua_tointeger(L, arg), 0};
  return Number{false, 0, lua_tonumber(L, arg)};
}

void toValue(const Number& number, Value& out) {
  out.string.clear();
  if (number.integer) {
    out.type = Value::Type::kInteger;
    out.integer = number.i;
  } else {
    out.type = Value::Type::kNumber;
    out.number = number.n;
  }
}

int sharedGet(lua_State* L) {
  std::string_view key = checkKey(L);
  Value& value = VmState::of(L).scratchValue();
  if (!SharedDict::instance().get(key, value, SharedDict::Clock::now())) {
    lua_pushnil(L);
    return 1;
  }
  pushValue(L, value);
  return 1;
}

int sharedSet(lua_State* L) {
  std::string_view key = checkKey(L);
  int type = lua_type(L, 2);
  if (type == LUA_TNIL || type == LUA_TNONE) {
    SharedDict::instance().remove(key, SharedDict::Clock::now());
    lua_pushboolean(L, 1);
    lua_pushboolean(L, 0);
    return 2;
  }
  luaL_argexpected(L, type == LUA_TSTRING || type == LUA_TNUMBER, 2, "string, number or nil");
  lua_Number ttl = luaL_optnumber(L, 3, 0);
  Value& value = VmState::of(L).scratchValue();
  if (type == LUA_TSTRING) {
    size_t size = 0;
    const char* data = lua_tolstring(L, 2, &size);
    value.type = Value::Type::kString;
    value.string.assign(data, size);
  } else {
    toValue(checkNumber(L, 2), value);
  }
  SharedDict::SetStatus status =
      SharedDict::instance().set(key, value, ttl, SharedDict::Clock::now());
  // A big string is not kept alive in every VM's scratch value until the next call.
  value.string.clear();
  value.string.shrink_to_fit();
  if (status == SharedDict::SetStatus::kTooLarge) {
    lua_pushnil(L);
    lua_pushliteral(L, "too large");
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_pushboolean(L, status == SharedDict::SetStatus::kStoredEvicting);
  return 2;
}

// The dictionary part of incr, on plain arguments; the Values live only in this frame, which
// makes no Lua calls.
SharedDict::IncrStatus doIncr(std::string_view key, const Number& by, const Number* init,
                              double ttl, Value& out) {
  Value by_value;
  toValue(by, by_value);
  Value init_value;
  if (init) toValue(*init, init_value);
  return SharedDict::instance().incr(key, by_value, init ? &init_value : nullptr, ttl,
                                     SharedDict::Clock::now(), out);
}

int sharedIncr(lua_State* L) {
  std::string_view key = checkKey(L);
  Number by = lua_isnoneornil(L, 2) ? Number{true, 1, 0} : checkNumber(L, 2);
  bool has_init = !lua_isnoneornil(L, 3);
  Number init = has_init ? checkNumber(L, 3) : Number{true, 0, 0};
  lua_Number ttl = luaL_optnumber(L, 4, 0);
  Value& out = VmState::of(L).scratchValue();
  SharedDict::IncrStatus status = doIncr(key, by, has_init ? &init : nullptr, ttl, out);
  switch (status) {
    case SharedDict::IncrStatus::kOk: pushValue(L, out); return 1;
    case SharedDict::IncrStatus::kNotFound:
      lua_pushnil(L);
      lua_pushliteral(L, "not found");
      return 2;
    case SharedDict::IncrStatus::kNotANumber:
      lua_pushnil(L);
      lua_pushliteral(L, "not a number");
      return 2;
    case SharedDict::IncrStatus::kTooLarge: break;
  }
  lua_pushnil(L);
  lua_pushliteral(L, "too large");
  return 2;
}

int sharedDelete(lua_State* L) {
  std::string_view key = checkKey(L);
  SharedDict::instance().remove(key, SharedDict::Clock::now());
  return 0;
}

const luaL_Reg kFunctions[] = {{"get", sharedGet},
                               {"set", sharedSet},
                               {"incr", sharedIncr},
                               {"delete", sharedDelete},
                               {nullptr, nullptr}};

}  // namespace

const luaL_Reg* sharedFunctions() { return kFunctions; }

}  // namespace subgate::lua
