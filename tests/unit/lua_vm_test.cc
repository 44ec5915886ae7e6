// The Lua hook runtime through the real Vm: every case runs twice in the same Vm, so state a
// call leaves behind (stack, cached req fields, limits, aborts) shows up in the second round.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/lua/hook_types.h"
#include "core/lua/script.h"
#include "core/lua/shared_dict.h"
#include "core/lua/vm.h"

namespace subgate::lua {
namespace {

using Header = std::pair<std::string_view, std::string_view>;

RequestView makeRequest(std::span<const Header> headers = {}) {
  RequestView req;
  req.method = "GET";
  req.path = "/items/1";
  req.host = "app.example.com";
  req.remote_addr = "192.0.2.7";
  req.headers = headers;
  return req;
}

class LuaVmTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Script> compile(std::string_view text, const std::string& name = "t.lua",
                                        const Limits& limits = Limits()) {
    std::string error;
    auto script = Script::fromText(text, name, error, limits);
    EXPECT_TRUE(script) << error;
    return script;
  }

  // identify() with one "x-mode" header (plus `extra`), expecting success.
  std::string identify(const Script& script, std::string_view mode,
                       const Limits& limits = Limits()) {
    Header headers[] = {{"x-mode", mode}};
    CallResult result = vm_.call(script, Hook::kIdentify, makeRequest(headers), limits);
    EXPECT_TRUE(result.ok) << result.error;
    return result.identity.value_or("<nil>");
  }

  CallResult callMode(const Script& script, Hook hook, std::string_view mode,
                      const Limits& limits = Limits()) {
    Header headers[] = {{"x-mode", mode}};
    return vm_.call(script, hook, makeRequest(headers), limits);
  }

  Vm vm_;
};

TEST_F(LuaVmTest, IdentifyFromHeaderClaimsAndRemoteAddr) {
  auto script = compile(R"(
    function identify(req)
      local mode = req.headers["x-mode"]
      if mode == "header" then return req.headers["X-User"] end
      if mode == "claims" then return req.claims.sub .. "@" .. req.claims.org.id end
      if mode == "addr" then return req.remote_addr end
      if mode == "nil" then return nil end
      if mode == "number" then return 5 end
      return table.concat({req.method, req.path, req.host, tostring(req.deployment),
                           tostring(req.instance_id), tostring(req.claims)}, " ")
    end)");
  ASSERT_TRUE(script);
  Header headers[] = {{"x-mode", "header"}, {"X-User", "alice"}};
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    CallResult result = vm_.call(*script, Hook::kIdentify, makeRequest(headers), Limits());
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.identity, "alice");

    Header claims_headers[] = {{"x-mode", "claims"}};
    RequestView req = makeRequest(claims_headers);
    req.claims_json = R"({"sub":"bob","org":{"id":42}})";
    result = vm_.call(*script, Hook::kIdentify, req, Limits());
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.identity, "bob@42");

    EXPECT_EQ(identify(*script, "addr"), "192.0.2.7");
    EXPECT_EQ(identify(*script, "nil"), "<nil>");
    EXPECT_EQ(identify(*script, "other"), "GET /items/1 app.example.com nil nil nil");

    Header other[] = {{"x-mode", "other"}};
    req = makeRequest(other);
    req.deployment = "dep-1";
    req.instance_id = "inst-2";
    req.claims_json = "{}";
    result = vm_.call(*script, Hook::kIdentify, req, Limits());
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.identity->substr(0, 43), "GET /items/1 app.example.com dep-1 inst-2 t");

    result = callMode(*script, Hook::kIdentify, "number");
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.error, "t.lua: identify() must return a string or nil, got number");
    EXPECT_FALSE(result.identity);
  }
}

TEST_F(LuaVmTest, QueryDecodingAndQueryAll) {
  auto script = compile(R"(
    function identify(req)
      req.query.extra = "mine"  -- the table is the script's to change within the call
      return subgate.json.encode({q = req.query, a = req.query_all("a"),
                                  m = req:query_all("missing"), same = req.query == req.query})
    end)");
  ASSERT_TRUE(script);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    RequestView req = makeRequest();
    req.query = "a=1&b=hello+world&a=2&&c=%41%2b%zz%4&empty=&flag&%61=3&sp%20ace=x%20y";
    CallResult result = vm_.call(*script, Hook::kIdentify, req, Limits());
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.identity,
              R"({"a":["1","2","3"],"m":{},"q":{"a":"3","b":"hello world","c":"A+%zz%4",)"
              R"("empty":"","extra":"mine","flag":"","sp ace":"x y"},"same":true})");
  }
  // A request without a query string: the cached table of the last call must not show up.
  RequestView req = makeRequest();
  CallResult result = vm_.call(*script, Hook::kIdentify, req, Limits());
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.identity, R"({"a":{},"m":{},"q":{"extra":"mine"},"same":true})");
}

TEST_F(LuaVmTest, HeadersCaseInsensitiveMultiValuedAndOrdered) {
  auto script = compile(R"(
    function identify(req)
      local h = req.headers
      local seen = {}
      for name, value in pairs(h) do seen[#seen + 1] = name .. "=" .. value end
      local ok, err = pcall(function() h.foo = "x" end)
      return table.concat({h["x-MULTI"], h.accept, tostring(h.missing), tostring(h[1]), #h,
                           table.concat(req.header_all("X-Multi"), "+"),
                           #req.header_all("nope"), table.concat(seen, ";"),
                           tostring(ok), tostring(req.headers == h)}, "|")
    end)");
  ASSERT_TRUE(script);
  Header headers[] = {{"Host", "h"}, {"X-Multi", "1"}, {"Accept", "*/*"}, {"x-multi", "2"}};
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    CallResult result = vm_.call(*script, Hook::kIdentify, makeRequest(headers), Limits());
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.identity,
              "1|*/*|nil|nil|4|1+2|0|Host=h;X-Multi=1;Accept=*/*;x-multi=2|false|true");
  }
}

TEST_F(LuaVmTest, AccessDeniesWithRespond) {
  auto script = compile(R"(
    function access(req)
      local mode = req.headers["x-mode"]
      if mode == "deny" then
        return subgate.respond(403, "go away", {["X-Reason"] = "blocked", ["Retry-After"] = 5})
      end
      if mode == "bad-header" then return subgate.respond(403, "", {["bad name"] = "x"}) end
      if mode == "bad-value" then return subgate.respond(403, "", {["X-A"] = "a\r\nb"}) end
      if mode == "bad-status" then return subgate.respond(99) end
      if mode == "string" then return "deny" end
      if mode == "tampered" then
        local r = subgate.respond(401)
        r.headers = {["X-Ok"] = {}}
        return r
      end
      return nil
    end)");
  ASSERT_TRUE(script);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    CallResult result = callMode(*script, Hook::kAccess, "deny");
    ASSERT_TRUE(result.ok) << result.error;
    ASSERT_TRUE(result.respond);
    EXPECT_EQ(result.respond->status, 403);
    EXPECT_EQ(result.respond->body, "go away");
    std::vector<std::pair<std::string, std::string>> expected = {{"Retry-After", "5"},
                                                                 {"X-Reason", "blocked"}};
    EXPECT_EQ(result.respond->headers, expected);

    result = callMode(*script, Hook::kAccess, "allow");
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_FALSE(result.respond);

    result = callMode(*script, Hook::kAccess, "bad-header");
    EXPECT_FALSE(result.ok);
    EXPECT_NE(result.error.find("t.lua:7: subgate.respond: invalid header name \"bad name\""),
              std::string::npos)
        << result.error;
    result = callMode(*script, Hook::kAccess, "bad-value");
    EXPECT_FALSE(result.ok);
    EXPECT_NE(result.error.find("CR, LF or NUL"), std::string::npos) << result.error;
    result = callMode(*script, Hook::kAccess, "bad-status");
    EXPECT_FALSE(result.ok);
    EXPECT_NE(result.error.find("100..599"), std::string::npos) << result.error;
    result = callMode(*script, Hook::kAccess, "string");
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.error, "t.lua: access() must return nil or subgate.respond(...), got string");
    result = callMode(*script, Hook::kAccess, "tampered");
    EXPECT_FALSE(result.ok);
    EXPECT_FALSE(result.respond);
    EXPECT_NE(result.error.find("t.lua: access() response: header X-Ok must be a string"),
              std::string::npos)
        << result.error;
  }
}

TEST_F(LuaVmTest, RouteTableConversionAndInvalidValues) {
  auto script = compile(R"(
    local cases = {
      full = {upstream = "api", instance = "i-1", deployment = "d-1", subhoster = "acme",
              path = "/v2/items?x=1", set_headers = {["X-B"] = "2", ["X-A"] = 1},
              remove_headers = {"Cookie", "X-Drop"}},
      partial = {path = "/only"},
      relative = {path = "items"},
      spaced = {path = "/a b"},
      number = {upstream = 5},
      empty = {instance = ""},
      unknown = {upstreem = "api"},
      badset = {set_headers = {["bad name"] = "x"}},
      badremove = {remove_headers = {"ok", 3}},
      notable = {set_headers = "X-A: 1"},
    }
    function route(req)
      local mode = req.headers["x-mode"]
      if mode == "respond" then return subgate.respond(307, "", {Location = "/elsewhere"}) end
      if mode == "string" then return "api" end
      return cases[mode]
    end)");
  ASSERT_TRUE(script);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    CallResult result = callMode(*script, Hook::kRoute, "full");
    ASSERT_TRUE(result.ok) << result.error;
    ASSERT_TRUE(result.route);
    EXPECT_EQ(result.route->upstream, "api");
    EXPECT_EQ(result.route->instance_id, "i-1");
    EXPECT_EQ(result.route->deployment, "d-1");
    EXPECT_EQ(result.route->subhoster, "acme");
    EXPECT_EQ(result.route->path, "/v2/items?x=1");
    std::vector<std::pair<std::string, std::string>> set = {{"X-A", "1"}, {"X-B", "2"}};
    EXPECT_EQ(result.route->set_headers, set);
    EXPECT_EQ(result.route->remove_headers, (std::vector<std::string>{"Cookie", "X-Drop"}));

    result = callMode(*script, Hook::kRoute, "partial");
    ASSERT_TRUE(result.ok) << result.error;
    ASSERT_TRUE(result.route);
    EXPECT_EQ(result.route->path, "/only");
    EXPECT_FALSE(result.route->upstream);
    EXPECT_TRUE(result.route->set_headers.empty());

    result = callMode(*script, Hook::kRoute, "none");
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_FALSE(result.route);
    EXPECT_FALSE(result.respond);

    result = callMode(*script, Hook::kRoute, "respond");
    ASSERT_TRUE(result.ok) << result.error;
    ASSERT_TRUE(result.respond);
    EXPECT_EQ(result.respond->status, 307);
    EXPECT_FALSE(result.route);

    const std::pair<const char*, const char*> invalid[] = {
        {"relative", "t.lua: route() path must start with '/'"},
        {"spaced", "t.lua: route() path must start with '/'"},
        {"number", "t.lua: route() field upstream must be a string, got number"},
        {"empty", "t.lua: route() field instance must be a non-empty string"},
        {"unknown", "t.lua: route() returned unknown field \"upstreem\""},
        {"badset", "t.lua: route() set_headers: invalid header name \"bad name\""},
        {"badremove", "t.lua: route() remove_headers[2] is not a header name"},
        {"notable", "t.lua: route() set_headers must be a table"},
        {"string", "t.lua: route() must return nil, a table or subgate.respond(...), got string"},
    };
    for (const auto& [mode, message] : invalid) {
      result = callMode(*script, Hook::kRoute, mode);
      EXPECT_FALSE(result.ok) << mode;
      EXPECT_FALSE(result.route) << mode;
      EXPECT_EQ(result.error.rfind(message, 0), 0u) << mode << ": " << result.error;
    }
  }
}

TEST_F(LuaVmTest, RuntimeErrorNamesScriptAndLineAndNextCallWorks) {
  auto script = compile(R"(function identify(req)
  if req.headers["x-mode"] == "fail" then
    error("boom")
  elseif req.headers["x-mode"] == "table" then
    error({})
  elseif req.headers["x-mode"] == "index" then
    return req.nothing.here
  end
  return "fine"
end)",
                        "scripts/err.lua");
  ASSERT_TRUE(script);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    CallResult result = callMode(*script, Hook::kIdentify, "fail");
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.error, "scripts/err.lua:3: boom");
    result = callMode(*script, Hook::kIdentify, "table");
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.error, "scripts/err.lua: error object is a table value");
    result = callMode(*script, Hook::kIdentify, "index");
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.error.rfind("scripts/err.lua:7: attempt to index", 0), 0u) << result.error;
    EXPECT_EQ(identify(*script, "ok"), "fine");

    result = callMode(*script, Hook::kAccess, "ok");
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.error, "scripts/err.lua: access() is not defined");
  }
}

TEST_F(LuaVmTest, LongScriptPathIsKeptWholeInMessages) {
  std::string name = "/srv/" + std::string(80, 'd') + "/hooks.lua";
  auto script = compile("function identify(req)\n  error('long')\nend", name);
  ASSERT_TRUE(script);
  for (int round = 0; round < 2; ++round) {
    CallResult result = callMode(*script, Hook::kIdentify, "x");
    EXPECT_EQ(result.error, name + ":2: long");
  }
}

TEST_F(LuaVmTest, InstructionBudgetCannotBeSwallowed) {
  auto script = compile(R"(function identify(req)
  local mode = req.headers["x-mode"]
  if mode == "loop" then
    while true do end
  elseif mode == "pcall" then
    local ok = pcall(function() while true do end end)
    return "swallowed"
  elseif mode == "xpcall" then
    xpcall(function() while true do end end, function(e) while true do end end)
    return "swallowed"
  elseif mode == "handler" then
    xpcall(error, function(e) while true do end end)
    return "swallowed"
  elseif mode == "retry" then
    for i = 1, 100 do pcall(function() while true do end end) end
    return "swallowed"
  end
  return "done"
end)",
                        "loop.lua");
  ASSERT_TRUE(script);
  Limits limits;
  limits.instructions = 100000;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    CallResult result = callMode(*script, Hook::kIdentify, "loop", limits);
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.error, "loop.lua:4: instruction budget exhausted (100000 instructions)");
    for (const char* mode : {"pcall", "xpcall", "handler", "retry"}) {
      result = callMode(*script, Hook::kIdentify, mode, limits);
      EXPECT_FALSE(result.ok) << mode;
      EXPECT_FALSE(result.identity) << mode;
      EXPECT_NE(result.error.find("instruction budget exhausted"), std::string::npos)
          << mode << ": " << result.error;
    }
    EXPECT_EQ(identify(*script, "ok", limits), "done");
  }
}

TEST_F(LuaVmTest, MemoryCapDropsScriptStateAndNextCallWorks) {
  auto script = compile(R"(
    hoard = {}
    function identify(req)
      local mode = req.headers["x-mode"]
      if mode == "bomb" then
        for i = 1, 1e9 do hoard[#hoard + 1] = string.rep("x", 4096) .. i end
      elseif mode == "pcall" then
        pcall(function()
          local t = {}
          for i = 1, 1e9 do t[i] = string.rep("y", 4096) .. i end
        end)
        return "swallowed"
      elseif mode == "rep" then
        return string.rep("z", 1 << 30)
      end
      hoard[#hoard + 1] = "kept"
      return tostring(#hoard)
    end)",
                        "mem.lua");
  ASSERT_TRUE(script);
  Limits limits;
  limits.memory_bytes = 2u << 20;
  limits.instructions = 100000000;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    // Round 1 finds the fresh globals the last failure of round 0 left.
    EXPECT_EQ(identify(*script, "count", limits), round == 0 ? "1" : "2");
    size_t before = vm_.memoryInUse();
    for (const char* mode : {"bomb", "pcall", "rep"}) {
      CallResult result = callMode(*script, Hook::kIdentify, mode, limits);
      EXPECT_FALSE(result.ok) << mode;
      EXPECT_EQ(result.error, "mem.lua: memory limit exceeded (2097152 bytes)") << mode;
      EXPECT_LT(vm_.memoryInUse(), before + (64u << 10)) << mode;
      // The script's globals were dropped: hoard starts over.
      EXPECT_EQ(identify(*script, "count", limits), "1") << mode;
    }
  }
}

TEST_F(LuaVmTest, TheVmWideCapBoundsWhatAScriptPilesUpAcrossCalls) {
  auto script = compile(R"(
    hoard = {}
    function identify(req)
      hoard[#hoard + 1] = string.rep("x", 100000) .. #hoard  -- 100 kB more each call
      return tostring(#hoard)
    end)",
                        "grow.lua");
  ASSERT_TRUE(script);
  Limits limits;
  limits.memory_bytes = 16u << 20;  // each call stays far below its own cap
  limits.total_bytes = 2u << 20;
  int calls = 0;
  CallResult result;
  for (; calls < 100; ++calls) {
    result = callMode(*script, Hook::kIdentify, "", limits);
    if (!result.ok) break;
  }
  ASSERT_LT(calls, 100) << "the VM-wide cap never bit";
  EXPECT_GE(calls, 5);
  EXPECT_EQ(result.error, "grow.lua: the Lua VM's memory limit exceeded (2097152 bytes)");
  EXPECT_LT(vm_.memoryInUse(), 1u << 20);
  EXPECT_EQ(identify(*script, "", limits), "1") << "its globals were dropped";
}

TEST_F(LuaVmTest, SandboxHidesDangerousFunctions) {
  auto script = compile(R"(
    function identify(req)
      local r = {
        io == nil, os.execute == nil, os.getenv == nil, os.exit == nil, require == nil,
        package == nil, debug == nil, string.dump == nil, ("").dump == nil, dofile == nil,
        loadfile == nil, rawget(_G, "loadlib") == nil, coroutine == nil,
        getmetatable("") == false, os.time ~= nil, string.format("%d", 7) == "7",
      }
      local f, err = load("\27Lua\84\0\25\147\13\10\26\10\4\8\8x")
      r[#r + 1] = f == nil and err:find("binary chunk") ~= nil
      local ok, msg = pcall(setmetatable, {}, {__gc = function() end})
      r[#r + 1] = not ok and msg:find("__gc") ~= nil
      r[#r + 1] = not pcall(collectgarbage, "stop")
      r[#r + 1] = type(collectgarbage("count")) == "number"
      local g = load("x_from_load = 1; return x_from_load")
      r[#r + 1] = g() == 1 and x_from_load == 1
      for i, v in ipairs(r) do r[i] = v and "y" or ("n" .. i) end
      return table.concat(r)
    end)");
  ASSERT_TRUE(script);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    EXPECT_EQ(identify(*script, ""), std::string(21, 'y'));
  }
}

TEST_F(LuaVmTest, StaleReqRaises) {
  auto script = compile(R"(
    function identify(req)
      if req.headers["x-mode"] == "stash" then
        saved, saved_headers, saved_method = req, req.headers, req.method
        local _ = req.query, req.claims
        return "stashed"
      end
      local results = {}
      for _, f in ipairs({function() return saved.method end,
                          function() return saved.query end,
                          function() return saved_headers["x-mode"] end,
                          function() for k in pairs(saved_headers) do end end}) do
        local ok, err = pcall(f)
        results[#results + 1] = ok and "ok" or err:match("req used after its call returned")
      end
      return table.concat(results, ",") .. "," .. saved_method
    end)");
  ASSERT_TRUE(script);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    EXPECT_EQ(identify(*script, "stash"), "stashed");
    std::string stale = "req used after its call returned";
    EXPECT_EQ(identify(*script, "check"), stale + "," + stale + "," + stale + "," + stale + ",GET");
  }
}

TEST_F(LuaVmTest, JsonRoundTripAndNull) {
  auto script = compile(R"(
    function identify(req)
      local j = subgate.json
      local text = '{"a":[1,2.5,"x",null,true],"b":{"c":null},"e":{}}'
      local v = j.decode(text)
      assert(v.a[4] == j.null and v.b.c == j.null)
      assert(math.type(v.a[1]) == "integer" and math.type(v.a[2]) == "float")
      local ok, err = pcall(j.decode, "{bad")
      assert(not ok and err:find("json.decode:"), err)
      assert(not pcall(j.encode, {f = function() end}))
      return j.encode(v) .. " " .. j.encode({j.null, "é"})
    end)");
  ASSERT_TRUE(script);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    EXPECT_EQ(identify(*script, ""),
              R"({"a":[1,2.5,"x",null,true],"b":{"c":null},"e":{}} [null,"é"])");
  }
}

TEST_F(LuaVmTest, RegexMatchFindAndErrors) {
  auto script = compile(R"(
    function identify(req)
      local re = subgate.re
      local m = re.match("user=alice id=42", [[user=(?<name>\w+) id=(\d+)(x)?]])
      local parts = {m[0], m[1], m.name, m[2], tostring(m[3]), tostring(re.match("abc", "z"))}
      parts[#parts + 1] = re.match("ABC", "^abc$", "i")[0]
      parts[#parts + 1] = table.concat({re.find("hello world", "wor")}, "-")
      parts[#parts + 1] = tostring(re.find("hello", "^world"))
      local ok, err = pcall(re.match, "x", "(unclosed")
      parts[#parts + 1] = tostring(not ok and err:find("re.match: bad pattern at offset 9") ~= nil)
      ok, err = pcall(re.find, "x", "x", "q")
      parts[#parts + 1] = tostring(not ok and err:find("re.find: unknown flag") ~= nil)
      return table.concat(parts, "|")
    end)");
  ASSERT_TRUE(script);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    EXPECT_EQ(identify(*script, ""),
              "user=alice id=42|alice|alice|42|false|nil|ABC|7-9|nil|true|true");
  }
}

TEST_F(LuaVmTest, HmacSha256KnownVector) {
  // RFC 4231 test case 2.
  auto script = compile(R"(
    function identify(req)
      assert(#subgate.hmac_sha256("Jefe", "what do ya want for nothing?") == 32)
      return subgate.hmac_sha256_hex("Jefe", "what do ya want for nothing?")
    end)");
  ASSERT_TRUE(script);
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(identify(*script, ""),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }
}

TEST_F(LuaVmTest, SharedDictThroughLua) {
  auto script = compile(R"(
    function identify(req)
      local s = subgate.shared
      for _, k in ipairs({"k", "n", "c", "f"}) do s.delete("lua_vm_test:" .. k) end
      local r = {}
      local function add(...) local t = table.pack(...) for i = 1, t.n do r[#r + 1] = tostring(t[i]) end end
      add(s.get("lua_vm_test:k"))
      add(s.set("lua_vm_test:k", "v1"))
      add(s.get("lua_vm_test:k"))
      add(s.set("lua_vm_test:n", 5))
      add(s.incr("lua_vm_test:n", 2))
      add(math.type(s.get("lua_vm_test:n")))
      add(s.incr("lua_vm_test:missing", 1))
      add(s.incr("lua_vm_test:k", 1))
      add(s.incr("lua_vm_test:c", 1, 10))
      add(s.incr("lua_vm_test:c"))
      add(s.set("lua_vm_test:f", 1.5))
      add(s.get("lua_vm_test:f"))
      add(s.set("lua_vm_test:big", string.rep("x", 8 << 20)))
      add(s.set("lua_vm_test:k", nil))
      add(s.get("lua_vm_test:k"))
      s.delete("lua_vm_test:n")
      add(s.get("lua_vm_test:n"))
      return table.concat(r, ",")
    end)");
  ASSERT_TRUE(script);
  Limits limits;
  limits.memory_bytes = 64u << 20;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    EXPECT_EQ(identify(*script, "", limits),
              "nil,true,false,v1,true,false,7,integer,nil,not found,nil,not a number,11,12,"
              "true,false,1.5,nil,too large,true,false,nil,nil");
  }
}

TEST_F(LuaVmTest, GlobalsPersistPerScriptAndReloadChangesBehaviour) {
  auto first =
      compile("count = 0\nfunction identify(req) count = count + 1 return 'one' .. count end");
  auto second =
      compile("count = 100\nfunction identify(req) count = count + 1 return 'two' .. count end");
  ASSERT_TRUE(first && second);
  EXPECT_NE(first->id(), second->id());
  EXPECT_EQ(identify(*first, ""), "one1");
  EXPECT_EQ(identify(*first, ""), "one2");
  EXPECT_EQ(identify(*second, ""), "two101");
  EXPECT_EQ(identify(*second, ""), "two102");
  EXPECT_EQ(identify(*first, ""), "one3");
}

TEST_F(LuaVmTest, EvictedScriptStartsOverWithFreshGlobals) {
  auto counter = compile("n = 0\nfunction identify(req) n = n + 1 return tostring(n) end");
  ASSERT_TRUE(counter);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    EXPECT_EQ(identify(*counter, ""), "1");
    EXPECT_EQ(identify(*counter, ""), "2");
    // 64 other scripts push it out of the cache.
    std::vector<std::shared_ptr<const Script>> others;
    for (int i = 0; i < 64; ++i) {
      others.push_back(compile("function identify(req) return 'other' end"));
      EXPECT_EQ(identify(*others.back(), ""), "other");
    }
    EXPECT_EQ(identify(*counter, ""), "1");
    // Touching it keeps it: 63 more scripts do not evict it.
    for (int i = 0; i < 63; ++i) identify(*others[static_cast<size_t>(i)], "");
    EXPECT_EQ(identify(*counter, ""), "2");
    others.clear();
    for (int i = 0; i < 64; ++i) {
      auto other = compile("function identify(req) return 'x' end");
      identify(*other, "");
    }
  }
}

class ScriptTest : public ::testing::Test {
 protected:
  std::string writeFile(const std::string& name, const std::string& text) {
    std::string path = ::testing::TempDir() + "subgate_lua_" + name;
    std::ofstream(path) << text;
    paths_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const std::string& path : paths_) std::remove(path.c_str());
  }
  std::vector<std::string> paths_;
};

TEST_F(ScriptTest, LoadReportsSyntaxErrorWithPathAndLine) {
  std::string path = writeFile("syntax.lua", "function identify(req)\n  return 1 +\nend\n");
  std::string error;
  EXPECT_FALSE(Script::load(path, error));
  EXPECT_EQ(error.rfind(path + ":3: unexpected symbol near 'end'", 0), 0u) << error;
}

TEST_F(ScriptTest, LoadReportsMissingFile) {
  std::string path = ::testing::TempDir() + "subgate_lua_does_not_exist.lua";
  std::string error;
  EXPECT_FALSE(Script::load(path, error));
  EXPECT_EQ(error, path + ": No such file or directory");
}

TEST_F(ScriptTest, LoadRunsTopLevelUnderLimits) {
  std::string error;
  EXPECT_FALSE(Script::fromText("local x = 1\nerror('top')", "top.lua", error));
  EXPECT_EQ(error, "top.lua:2: top");
  Limits limits;
  limits.instructions = 5000;
  EXPECT_FALSE(Script::fromText("\nwhile true do end", "spin.lua", error, limits));
  EXPECT_EQ(error, "spin.lua:2: instruction budget exhausted (5000 instructions)");
  EXPECT_FALSE(Script::fromText("\x1bLua", "binary.lua", error));
  EXPECT_NE(error.find("binary chunk"), std::string::npos) << error;
}

TEST_F(ScriptTest, HasReflectsDefinedHooks) {
  std::string path = writeFile("hooks.lua",
                               "function identify(req) end\nfunction access(req) end\n"
                               "route = 'not a function'\n");
  std::string error;
  auto script = Script::load(path, error);
  ASSERT_TRUE(script) << error;
  EXPECT_TRUE(script->has(Hook::kIdentify));
  EXPECT_TRUE(script->has(Hook::kAccess));
  EXPECT_FALSE(script->has(Hook::kRoute));
  EXPECT_EQ(script->name(), path);
  EXPECT_EQ(script->chunkName(), "@" + path);
  EXPECT_STREQ(hookName(Hook::kRoute), "route");

  auto none = Script::fromText("local function identify() end", "none.lua", error);
  ASSERT_TRUE(none) << error;
  EXPECT_FALSE(none->has(Hook::kIdentify));
}

TEST_F(ScriptTest, ReloadedScriptChangesBehaviourInSameVm) {
  std::string path = writeFile("reload.lua", "function identify(req) return 'v1' end");
  std::string error;
  auto v1 = Script::load(path, error);
  ASSERT_TRUE(v1) << error;
  Vm vm;
  EXPECT_EQ(vm.call(*v1, Hook::kIdentify, makeRequest(), Limits()).identity, "v1");
  writeFile("reload.lua", "function identify(req) return 'v2' end");
  auto v2 = Script::load(path, error);
  ASSERT_TRUE(v2) << error;
  EXPECT_NE(v1->id(), v2->id());
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(vm.call(*v2, Hook::kIdentify, makeRequest(), Limits()).identity, "v2");
  }
}

using Clock = SharedDict::Clock;

TEST(SharedDictTest, TtlWithInjectedClock) {
  SharedDict dict(100, 1u << 20);
  Clock::time_point now = Clock::time_point() + std::chrono::hours(1);
  SharedDict::Value value;
  value.string = "v";
  EXPECT_EQ(dict.set("k", value, 10, now), SharedDict::SetStatus::kStored);
  EXPECT_EQ(dict.set("forever", value, 0, now), SharedDict::SetStatus::kStored);
  SharedDict::Value out;
  EXPECT_TRUE(dict.get("k", out, now + std::chrono::seconds(9)));
  EXPECT_EQ(out.string, "v");
  EXPECT_FALSE(dict.get("k", out, now + std::chrono::seconds(10)));
  EXPECT_TRUE(dict.get("forever", out, now + std::chrono::hours(10000)));
  EXPECT_EQ(dict.size(), 1u);

  // incr keeps the expiry; init_ttl applies to a new key.
  SharedDict::Value one;
  one.type = SharedDict::Value::Type::kInteger;
  one.integer = 1;
  SharedDict::Value zero = one;
  zero.integer = 0;
  EXPECT_EQ(dict.incr("n", one, &zero, 5, now, out), SharedDict::IncrStatus::kOk);
  EXPECT_EQ(out.integer, 1);
  EXPECT_EQ(dict.incr("n", one, nullptr, 0, now + std::chrono::seconds(4), out),
            SharedDict::IncrStatus::kOk);
  EXPECT_EQ(out.integer, 2);
  EXPECT_EQ(dict.incr("n", one, nullptr, 0, now + std::chrono::seconds(5), out),
            SharedDict::IncrStatus::kNotFound);
  EXPECT_FALSE(dict.remove("n", now));
}

TEST(SharedDictTest, BoundsEvictLeastRecentlyUsed) {
  SharedDict dict(2, 1u << 20);
  Clock::time_point now = Clock::now();
  SharedDict::Value value;
  value.string = "v";
  EXPECT_EQ(dict.set("a", value, 0, now), SharedDict::SetStatus::kStored);
  EXPECT_EQ(dict.set("b", value, 0, now), SharedDict::SetStatus::kStored);
  SharedDict::Value out;
  EXPECT_TRUE(dict.get("a", out, now));  // b is now the least recently used
  EXPECT_EQ(dict.set("c", value, 0, now), SharedDict::SetStatus::kStoredEvicting);
  EXPECT_FALSE(dict.get("b", out, now));
  EXPECT_TRUE(dict.get("a", out, now));
  value.string.assign(200000, 'x');
  EXPECT_EQ(dict.set("big", value, 0, now), SharedDict::SetStatus::kTooLarge);
  EXPECT_EQ(dict.size(), 2u);
}

TEST(SharedDictTest, ConcurrentIncrLosesNoUpdates) {
  SharedDict dict(100, 1u << 20);
  constexpr int kThreads = 8;
  constexpr int kIncrements = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&dict] {
      SharedDict::Value one;
      one.type = SharedDict::Value::Type::kInteger;
      one.integer = 1;
      SharedDict::Value zero = one;
      zero.integer = 0;
      SharedDict::Value out;
      for (int i = 0; i < kIncrements; ++i) {
        dict.incr("counter", one, &zero, 0, Clock::now(), out);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  SharedDict::Value out;
  ASSERT_TRUE(dict.get("counter", out, Clock::now()));
  EXPECT_EQ(out.type, SharedDict::Value::Type::kInteger);
  EXPECT_EQ(out.integer, kThreads * kIncrements);
}

}  // namespace
}  // namespace subgate::lua
