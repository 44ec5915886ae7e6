// The hooks' request object and results through the real Vm: req fields, query and headers,
// stale req use, and what identify(), access() and route() return. Every case runs twice in the
// same Vm, so state a call leaves behind (stack, cached req fields) shows up in the second round.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/lua/hook_types.h"
#include "core/lua/vm.h"
#include "tests/unit/lua_test_fixture.h"

namespace subgate::lua {
namespace {

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

}  // namespace
}  // namespace subgate::lua
