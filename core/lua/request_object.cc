#include "core/lua/request_object.h"

#include <cstdint>
#include <string_view>

#include "core/lua/json_bridge.h"
#include "core/lua/vm_state.h"

namespace subgate::lua {
namespace {

constexpr const char* kStale = "req used after its call returned";

// The Lua side of req.headers: which call it belongs to.
struct HeadersBox {
  uint64_t serial;
};

std::string_view toView(lua_State* L, int index) {
  size_t size = 0;
  const char* data = lua_tolstring(L, index, &size);
  return std::string_view(data, size);
}

void pushView(lua_State* L, std::string_view s) { lua_pushlstring(L, s.data(), s.size()); }

// pushView as the result of a lua_CFunction.
int returnString(lua_State* L, std::string_view s) {
  pushView(L, s);
  return 1;
}

int returnFunction(lua_State* L, lua_CFunction f) {
  lua_pushcfunction(L, f);
  return 1;
}

bool equalsCaseless(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned x = static_cast<unsigned char>(a[i]);
    unsigned y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    if (x - 'A' < 26) x += 'a' - 'A';
    if (y - 'A' < 26) y += 'a' - 'A';
    if (x != y) return false;
  }
  return true;
}

// --- query decoding ---

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The decoded byte at raw[i] ('+' is a space, %XX a byte; a '%' without two hex digits stays
// as it is), advancing i past what it consumed.
char decodeNext(std::string_view raw, size_t& i) {
  char c = raw[i++];
  if (c == '+') return ' ';
  if (c == '%' && i + 2 <= raw.size()) {
    int high = hexDigit(raw[i]);
    int low = hexDigit(raw[i + 1]);
    if (high >= 0 && low >= 0) {
      i += 2;
      return static_cast<char>(high * 16 + low);
    }
  }
  return c;
}

bool decodedEquals(std::string_view raw, std::string_view want) {
  size_t j = 0;
  for (size_t i = 0; i < raw.size();) {
    if (j == want.size() || decodeNext(raw, i) != want[j]) return false;
    ++j;
  }
  return j == want.size();
}

void pushDecoded(lua_State* L, std::string_view raw) {
  // Decoding never lengthens, so the raw size bounds the buffer.
  char small[256];
  if (raw.size() <= sizeof small) {
    size_t n = 0;
    for (size_t i = 0; i < raw.size();) small[n++] = decodeNext(raw, i);
    lua_pushlstring(L, small, n);
    return;
  }
  luaL_Buffer buffer;
  char* out = luaL_buffinitsize(L, &buffer, raw.size());
  size_t n = 0;
  for (size_t i = 0; i < raw.size();) out[n++] = decodeNext(raw, i);
  luaL_pushresultsize(&buffer, n);
}

// Calls fn(raw name, raw value) for each "name[=value]" between '&'s, skipping empty ones.
template <typename Fn>
void forEachParam(std::string_view query, Fn fn) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.empty()) continue;
    size_t eq = param.find('=');
    if (eq == std::string_view::npos) {
      fn(param, std::string_view());
    } else {
      fn(param.substr(0, eq), param.substr(eq + 1));
    }
  }
}

// --- the running request ---

const RequestView& runningRequest(lua_State* L, VmState& vm) {
  if (!vm.request()) luaL_error(L, kStale);
  return *vm.request();
}

// The request behind the req table at `index`, raising when that req is not the current one.
const RequestView& checkReq(lua_State* L, VmState& vm, int index) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm.refs().current_req);
  bool current = lua_rawequal(L, index, -1);
  lua_pop(L, 1);
  if (!current) luaL_error(L, kStale);
  return runningRequest(L, vm);
}

const RequestView& checkHeaders(lua_State* L, VmState& vm, int index) {
  auto* box = static_cast<HeadersBox*>(lua_touserdata(L, index));
  if (!box || box->serial != vm.callSerial()) luaL_error(L, kStale);
  return runningRequest(L, vm);
}

// The name argument of query_all/header_all, also accepting the method-call form req:f(name).
std::string_view nameArgument(lua_State* L) {
  int arg = lua_gettop(L) >= 2 && lua_type(L, 1) == LUA_TTABLE ? 2 : 1;
  size_t size = 0;
  const char* name = luaL_checklstring(L, arg, &size);
  return std::string_view(name, size);
}

int queryAll(lua_State* L) {
  std::string_view name = nameArgument(L);
  const RequestView& req = runningRequest(L, VmState::of(L));
  lua_newtable(L);
  int list = lua_gettop(L);
  lua_Integer n = 0;
  forEachParam(req.query, [&](std::string_view key, std::string_view value) {
    if (!decodedEquals(key, name)) return;
    pushDecoded(L, value);
    lua_rawseti(L, list, ++n);
  });
  return 1;
}

int headerAll(lua_State* L) {
  std::string_view name = nameArgument(L);
  const RequestView& req = runningRequest(L, VmState::of(L));
  lua_newtable(L);
  lua_Integer n = 0;
  for (const auto& [key, value] : req.headers) {
    if (!equalsCaseless(key, name)) continue;
    pushView(L, value);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

void buildQuery(lua_State* L, const RequestView& req) {
  lua_newtable(L);
  int table = lua_gettop(L);
  // Later values overwrite earlier ones: a repeated name keeps its last value.
  forEachParam(req.query, [L, table](std::string_view key, std::string_view value) {
    pushDecoded(L, key);
    pushDecoded(L, value);
    lua_rawset(L, table);
  });
}

void buildHeaders(lua_State* L, VmState& vm) {
  auto* box = static_cast<HeadersBox*>(lua_newuserdatauv(L, sizeof(HeadersBox), 0));
  box->serial = vm.callSerial();
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm.refs().headers_meta);
  lua_setmetatable(L, -2);
}

// Pushes the field cached in registry slot `ref`, building and caching it first when needed.
template <typename Build>
int pushCached(lua_State* L, int ref, Build build) {
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, ref) != LUA_TBOOLEAN) return 1;
  lua_pop(L, 1);
  build();
  lua_pushvalue(L, -1);
  lua_rawseti(L, LUA_REGISTRYINDEX, ref);
  return 1;
}

int pushStringOrNil(lua_State* L, std::string_view s) {
  if (s.empty()) {
    lua_pushnil(L);
  } else {
    pushView(L, s);
  }
  return 1;
}

// req.__index(req, key).
int reqIndex(lua_State* L) {
  VmState& vm = VmState::of(L);
  const RequestView& req = checkReq(L, vm, 1);
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  std::string_view key = toView(L, 2);
  switch (key.size()) {
    case 4:
      if (key == "path") return returnString(L, req.path);
      if (key == "host") return returnString(L, req.host);
      break;
    case 5:
      if (key == "query") {
        return pushCached(L, vm.refs().req_query, [L, &req] { buildQuery(L, req); });
      }
      break;
    case 6:
      if (key == "method") return returnString(L, req.method);
      if (key == "claims") {
        if (req.claims_json.empty()) return 0;
        return pushCached(L, vm.refs().req_claims, [L, &vm, &req] {
          pushDecodedJson(L, vm, req.claims_json.data(), req.claims_json.size(), "req.claims");
        });
      }
      break;
    case 7:
      if (key == "headers") {
        return pushCached(L, vm.refs().req_headers, [L, &vm] { buildHeaders(L, vm); });
      }
      break;
    case 9:
      if (key == "query_all") return returnFunction(L, queryAll);
      break;
    case 10:
      if (key == "deployment") return pushStringOrNil(L, req.deployment);
      if (key == "header_all") return returnFunction(L, headerAll);
      break;
    case 11:
      if (key == "remote_addr") return returnString(L, req.remote_addr);
      if (key == "instance_id") return pushStringOrNil(L, req.instance_id);
      break;
    default: break;
  }
  return 0;
}

// req.headers.__index(headers, name): the first value, compared case-insensitively in place.
int headersIndex(lua_State* L) {
  const RequestView& req = checkHeaders(L, VmState::of(L), 1);
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  std::string_view name = toView(L, 2);
  for (const auto& [key, value] : req.headers) {
    if (equalsCaseless(key, name)) return returnString(L, value);
  }
  return 0;
}

// The iterator pairs() returns; upvalue 1 is the next position, upvalue 2 the headers object.
int headersNext(lua_State* L) {
  const RequestView& req = checkHeaders(L, VmState::of(L), lua_upvalueindex(2));
  lua_Integer position = lua_tointeger(L, lua_upvalueindex(1));
  if (position < 0 || static_cast<size_t>(position) >= req.headers.size()) return 0;
  lua_pushinteger(L, position + 1);
  lua_replace(L, lua_upvalueindex(1));
  const auto& [key, value] = req.headers[static_cast<size_t>(position)];
  pushView(L, key);
  pushView(L, value);
  return 2;
}

// The generic for's control variable is the name, which may repeat, so the position lives in
// the iterator closure instead.
int headersPairs(lua_State* L) {
  checkHeaders(L, VmState::of(L), 1);
  lua_pushinteger(L, 0);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, headersNext, 2);
  return 1;
}

int headersLen(lua_State* L) {
  const RequestView& req = checkHeaders(L, VmState::of(L), 1);
  lua_pushinteger(L, static_cast<lua_Integer>(req.headers.size()));
  return 1;
}

int headersNewindex(lua_State* L) { return luaL_error(L, "req.headers is read-only"); }

// Metatables are VM-wide: __metatable keeps one script from changing them under another.
int makeMetatable(lua_State* L, const luaL_Reg* functions) {
  lua_newtable(L);
  luaL_setfuncs(L, functions, 0);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

int makeSlot(lua_State* L) {
  lua_pushboolean(L, 0);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

}  // namespace

void installRequestObject(lua_State* L, VmState& vm) {
  VmState::Refs& refs = vm.refs();
  const luaL_Reg req_functions[] = {{"__index", reqIndex}, {nullptr, nullptr}};
  refs.req_meta = makeMetatable(L, req_functions);
  const luaL_Reg headers_functions[] = {{"__index", headersIndex},
                                        {"__pairs", headersPairs},
                                        {"__len", headersLen},
                                        {"__newindex", headersNewindex},
                                        {nullptr, nullptr}};
  refs.headers_meta = makeMetatable(L, headers_functions);
  // Slots hold false rather than nil between calls, so resetting them never allocates.
  refs.current_req = makeSlot(L);
  refs.req_headers = makeSlot(L);
  refs.req_query = makeSlot(L);
  refs.req_claims = makeSlot(L);
}

void pushRequest(lua_State* L, VmState& vm) {
  lua_createtable(L, 0, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm.refs().req_meta);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawseti(L, LUA_REGISTRYINDEX, vm.refs().current_req);
}

void releaseRequest(lua_State* L, VmState& vm) {
  const VmState::Refs& refs = vm.refs();
  for (int ref : {refs.current_req, refs.req_headers, refs.req_query, refs.req_claims}) {
    lua_pushboolean(L, 0);
    lua_rawseti(L, LUA_REGISTRYINDEX, ref);
  }
}

}  // namespace subgate::lua
