#include "core/lua/json_bridge.h"

#include <jansson.h>

#include <climits>
#include <cmath>
#include <cstdio>

#include "core/lua/vm_state.h"

namespace subgate::lua {
namespace {

constexpr int kMaxEncodeDepth = 128;
constexpr size_t kDumpFlags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS;

// A jansson tree parked in a Lua userdata while Lua values are built from it or it is built
// from Lua values: if a Lua error (e.g. the memory cap) unwinds the C function, the collector
// frees the tree through __gc instead of leaking it.
struct JsonBox {
  json_t* root;
};

int freeBox(lua_State* L) {
  auto* box = static_cast<JsonBox*>(lua_touserdata(L, 1));
  if (box && box->root) {
    json_decref(box->root);
    box->root = nullptr;
  }
  return 0;
}

JsonBox* pushBox(lua_State* L, VmState& vm) {
  auto* box = static_cast<JsonBox*>(lua_newuserdatauv(L, sizeof(JsonBox), 0));
  box->root = nullptr;
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm.refs().json_box_meta);
  lua_setmetatable(L, -2);
  return box;
}

void pushValue(lua_State* L, json_t* value) {
  luaL_checkstack(L, 3, "json.decode: nesting too deep");
  switch (json_typeof(value)) {
    case JSON_OBJECT: {
      size_t size = json_object_size(value);
      lua_createtable(L, 0, size > INT_MAX ? INT_MAX : static_cast<int>(size));
      for (void* it = json_object_iter(value); it; it = json_object_iter_next(value, it)) {
        lua_pushlstring(L, json_object_iter_key(it), json_object_iter_key_len(it));
        pushValue(L, json_object_iter_value(it));
        lua_rawset(L, -3);
      }
      break;
    }
    case JSON_ARRAY: {
      size_t size = json_array_size(value);
      lua_createtable(L, size > INT_MAX ? INT_MAX : static_cast<int>(size), 0);
      for (size_t i = 0; i < size; ++i) {
        pushValue(L, json_array_get(value, i));
        lua_rawseti(L, -2, static_cast<lua_Integer>(i) + 1);
      }
      break;
    }
    case JSON_STRING:
      lua_pushlstring(L, json_string_value(value), json_string_length(value));
      break;
    case JSON_INTEGER: lua_pushinteger(L, json_integer_value(value)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(value)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    case JSON_NULL: lua_pushlightuserdata(L, nullptr); break;
  }
}

// Where an encoded value goes: the box root, appended to an array, or under a key.
struct Slot {
  JsonBox* box;
  json_t* parent;   // nullptr: the root
  const char* key;  // nullptr: append to the parent array
  size_t key_len;
};

// Attaches `value` at once, so every node already made is reachable from the box when the next
// Lua call raises. jansson's *_new functions take the reference even when they fail.
void attach(lua_State* L, const Slot& slot, json_t* value) {
  if (!value) luaL_error(L, "json.encode: out of memory");
  if (!slot.parent) {
    slot.box->root = value;
  } else if (!slot.key) {
    if (json_array_append_new(slot.parent, value) != 0) luaL_error(L, "json.encode: out of memory");
  } else if (json_object_setn_new(slot.parent, slot.key, slot.key_len, value) != 0) {
    luaL_error(L, "json.encode: object key is not valid UTF-8");
  }
}

// True when the table's keys are exactly 1..n with n >= 1.
bool isArray(lua_State* L, int index, size_t& n) {
  n = lua_rawlen(L, index);
  if (n == 0) return false;
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    lua_pop(L, 1);
    lua_Integer key = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
    if (key < 1 || static_cast<size_t>(key) > n) {
      lua_pop(L, 1);
      return false;
    }
    ++count;
  }
  return count == n;
}

void encodeValue(lua_State* L, int index, const Slot& slot, int depth);

void encodeTable(lua_State* L, int index, const Slot& slot, int depth) {
  if (depth > kMaxEncodeDepth) luaL_error(L, "json.encode: nesting too deep (or a cycle)");
  luaL_checkstack(L, 4, "json.encode: nesting too deep");
  size_t n = 0;
  if (isArray(L, index, n)) {
    json_t* array = json_array();
    attach(L, slot, array);
    for (size_t i = 1; i <= n; ++i) {
      lua_rawgeti(L, index, static_cast<lua_Integer>(i));
      encodeValue(L, lua_gettop(L), Slot{slot.box, array, nullptr, 0}, depth + 1);
      lua_pop(L, 1);
    }
    return;
  }
  json_t* object = json_object();
  attach(L, slot, object);
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    char number[32];
    const char* key = nullptr;
    size_t key_len = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      key = lua_tolstring(L, -2, &key_len);
    } else if (lua_isinteger(L, -2)) {
      int length = std::snprintf(number, sizeof number, "%lld",
                                 static_cast<long long>(lua_tointeger(L, -2)));
      key = number;
      key_len = static_cast<size_t>(length);
    } else {
      luaL_error(L, "json.encode: object keys must be strings or integers, got %s",
                 luaL_typename(L, -2));
    }
    encodeValue(L, lua_gettop(L), Slot{slot.box, object, key, key_len}, depth + 1);
    lua_pop(L, 1);
  }
}

void encodeValue(lua_State* L, int index, const Slot& slot, int depth) {
  switch (lua_type(L, index)) {
    case LUA_TNIL: attach(L, slot, json_null()); return;
    case LUA_TBOOLEAN: attach(L, slot, json_boolean(lua_toboolean(L, index))); return;
    case LUA_TNUMBER: {
      if (lua_isinteger(L, index)) {
        attach(L, slot, json_integer(lua_tointeger(L, index)));
        return;
      }
      lua_Number number = lua_tonumber(L, index);
      if (!std::isfinite(number)) luaL_error(L, "json.encode: cannot encode NaN or infinity");
      attach(L, slot, json_real(number));
      return;
    }
    case LUA_TSTRING: {
      size_t size = 0;
      const char* text = lua_tolstring(L, index, &size);
      json_t* string = json_stringn(text, size);
      if (!string) luaL_error(L, "json.encode: string is not valid UTF-8");
      attach(L, slot, string);
      return;
    }
    case LUA_TTABLE: encodeTable(L, index, slot, depth); return;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, index) == nullptr) {
        attach(L, slot, json_null());
        return;
      }
      break;
    default: break;
  }
  luaL_error(L, "json.encode: cannot encode a %s", luaL_typename(L, index));
}

}  // namespace

void installJsonBox(lua_State* L, VmState& vm) {
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, freeBox);
  lua_setfield(L, -2, "__gc");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  vm.refs().json_box_meta = luaL_ref(L, LUA_REGISTRYINDEX);
}

void pushDecodedJson(lua_State* L, VmState& vm, const char* text, size_t size, const char* what) {
  JsonBox* box = pushBox(L, vm);
  int box_index = lua_gettop(L);
  json_error_t error;
  box->root = json_loadb(text, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
  if (!box->root) {
    luaL_error(L, "%s: %s at line %d column %d", what, error.text, error.line, error.column);
  }
  pushValue(L, box->root);
  json_decref(box->root);
  box->root = nullptr;
  lua_remove(L, box_index);
}

int luaJsonEncode(lua_State* L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  JsonBox* box = pushBox(L, VmState::of(L));
  encodeValue(L, 1, Slot{box, nullptr, nullptr, 0}, 0);
  size_t size = json_dumpb(box->root, nullptr, 0, kDumpFlags);
  if (size == 0) return luaL_error(L, "json.encode: cannot serialize");
  luaL_Buffer buffer;
  char* out = luaL_buffinitsize(L, &buffer, size);
  json_dumpb(box->root, out, size, kDumpFlags);
  luaL_pushresultsize(&buffer, size);
  json_decref(box->root);
  box->root = nullptr;
  return 1;
}

int luaJsonDecode(lua_State* L) {
  size_t size = 0;
  const char* text = luaL_checklstring(L, 1, &size);
  pushDecodedJson(L, VmState::of(L), text, size, "json.decode");
  return 1;
}

}  // namespace subgate::lua
