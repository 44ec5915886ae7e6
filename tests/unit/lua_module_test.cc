// modules/lua (`lua_script FILE;`) through the pipeline in memory, with a script written to a
// temp folder: access() answering, route() writing the route decision (instance, path, headers,
// deployment), identify() setting the identity, and failing hooks answering 500. The VM and the
// req API alone are tested in lua_vm_test.cc, lua_request_test.cc and lua_library_test.cc.
//
// Not here: route() choosing an `upstream` block. The request then goes to the upstream
// module's content handler, which needs a worker (its connection pools) that the harness does
// not have; tests/integration/test_lua_hooks.py covers it over real sockets.
#include <gtest/gtest.h>

#include <ctime>
#include <string>
#include <vector>

#include "core/jwt/jwt.h"
#include "core/log/log.h"
#include "tests/support/pipeline_harness.h"
#include "tests/support/temp_dir.h"

namespace subgate {
namespace {

using test_support::PipelineHarness;
using test_support::TempDir;

// Hooks keyed by the last segment of the path, so one script serves every test.
constexpr const char* kScript = R"(
local function leaf(req) return req.path:match("([^/]*)$") end

function access(req)
  local what = leaf(req)
  if what == "denied" then
    return subgate.respond(403, "no entry for " .. req.host,
                           { ["content-type"] = "application/json", ["x-reason"] = "blocked",
                             ["connection"] = "close" })
  end
  if what == "access-error" then error("access broke") end
  if what == "claims" then
    return subgate.respond(200, req.claims.deployment_id .. " " .. tostring(req.deployment))
  end
  return nil
end

function route(req)
  local what = leaf(req)
  if req.path:sub(1, 9) == "/rewrite/" then
    return { instance = "inst-7", path = req.path:sub(9),
             set_headers = { ["x-routed-by"] = "lua", ["x-tenant"] = "t1" },
             remove_headers = { "cookie" } }
  end
  if what == "route-respond" then return subgate.respond(451, "unavailable") end
  if what == "route-error" then error("route broke") end
  if what == "unknown-upstream" then return { upstream = "nope" } end
  if what == "query-in-path" then return { path = "/x?y=1" } end
  if what == "framing" then return { set_headers = { ["transfer-encoding"] = "chunked" } } end
  if what == "long-instance" then return { instance = string.rep("i", 257) } end
  if what == "not-a-table" then return 42 end
  if what == "deployment" then return { deployment = req.headers["x-deployment"] } end
  if what == "host" then return { set_headers = { host = "other.example" } } end
  return nil
end

function identify(req)
  local what = leaf(req)
  if what == "identify-error" then error("identify broke") end
  if what == "long-identity" then return string.rep("x", 4097) end
  local user = req.headers["x-user"]
  if user == nil then return nil end
  return user .. "@" .. tostring(req.instance_id) .. "@" .. tostring(req.deployment)
end
)";

constexpr const char* kAcmeSecret = "acme-secret-0123456789";

class LuaModuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    script_ = dir_.write("hooks.lua", kScript);
    harness_ = std::make_unique<PipelineHarness>(config(script_));
    ASSERT_TRUE(harness_->ok()) << harness_->error();
  }

  static std::string config(const std::string& script) {
    return R"(
subhoster acme {
    secret acme-secret-0123456789;
    rpc_root_allow https://origin.example.com/rpc/ https://other.example.com/;
}
server {
    listen 127.0.0.1:8080;
    lua_script )" +
           script + R"(;
    location / { return 200 "ok"; }
    location /forwarded/ { forwarded_host on; return 200 "forwarded"; }
    location /auth/ { subhost_auth on; return 200 "auth"; }
}
)";
  }

  PipelineHarness& harness() { return *harness_; }

  TempDir dir_;
  std::string script_;
  std::unique_ptr<PipelineHarness> harness_;
};

std::string relayToken(std::string_view deployment_id) {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  return jwt::signHs256("acme",
                        "{\"iat\":" + std::to_string(now) +
                            ",\"exp\":" + std::to_string(now + 600) + ",\"deployment_id\":\"" +
                            std::string(deployment_id) +
                            "\",\"rpc_root\":\"https://origin.example.com/rpc/\"}",
                        kAcmeSecret);
}

constexpr const char* kHookFailed =
    R"json({"code":"INTERNAL_SERVER_ERROR","message":"a Lua hook failed (see the error log)"})json";

TEST_F(LuaModuleTest, AccessAnswersWithSubgateRespond) {
  auto denied = harness().get("/denied");
  EXPECT_EQ(denied->transport.status, 403);
  EXPECT_EQ(denied->transport.body, "no entry for example.com");
  EXPECT_EQ(denied->transport.header("content-type"), "application/json");
  EXPECT_EQ(denied->transport.count("content-type"), 1u);
  EXPECT_EQ(denied->transport.header("x-reason"), "blocked");
  EXPECT_FALSE(denied->transport.header("connection"));    // framing stays subgate's
  EXPECT_FALSE(denied->transport.header("x-deno-error"));  // the script's answer, not a failure
  EXPECT_FALSE(denied->request.errorKind());
  // Nothing else ran: route() and identify() would have written the decision.
  EXPECT_EQ(denied->request.route().identity, "");

  auto allowed = harness().get("/allowed");
  EXPECT_EQ(allowed->transport.status, 200);
  EXPECT_EQ(allowed->transport.body, "ok");
}

TEST_F(LuaModuleTest, AccessSeesTheForwardedHostAsReqHost) {
  auto denied = harness().get("/forwarded/denied", "x-forwarded-host: app.example.com\r\n");
  EXPECT_EQ(denied->transport.status, 403);
  EXPECT_EQ(denied->transport.body, "no entry for app.example.com");
  // forwarded_host runs first: without the header the script is never called.
  auto missing = harness().get("/forwarded/denied");
  EXPECT_EQ(missing->transport.status, 400);
}

TEST_F(LuaModuleTest, RouteCanAnswerToo) {
  auto unavailable = harness().get("/route-respond");
  EXPECT_EQ(unavailable->transport.status, 451);
  EXPECT_EQ(unavailable->transport.body, "unavailable");
  EXPECT_EQ(unavailable->transport.header("content-type"), "text/plain; charset=utf-8");
}

TEST_F(LuaModuleTest, RouteWritesInstancePathAndHeadersIntoTheDecision) {
  auto routed = harness().get("/rewrite/items/1?a=1&b=2", "cookie: c=1\r\nx-user: alice\r\n");
  EXPECT_EQ(routed->transport.status, 200);
  EXPECT_EQ(routed->transport.body, "ok");  // the location's handler still answers
  const RouteDecision& decision = routed->request.route();
  EXPECT_EQ(decision.instance_id, "inst-7");
  EXPECT_TRUE(decision.instance_routed);
  EXPECT_EQ(decision.target, "/items/1?a=1&b=2");  // the client's query stays
  EXPECT_EQ(decision.drop_headers,
            (std::vector<std::string>{"cookie", "x-routed-by", "x-tenant"}));  // set replaces
  using Header = std::pair<std::string, std::string>;
  EXPECT_EQ(decision.add_headers,
            (std::vector<Header>{{"x-routed-by", "lua"}, {"x-tenant", "t1"}}));
  EXPECT_EQ(decision.handler, nullptr);  // no upstream chosen: the location's handler
  EXPECT_FALSE(decision.token);
  // identify() runs after route() and sees its instance.
  EXPECT_EQ(decision.identity, "alice@inst-7@nil");

  // Without a route() answer the decision stays empty.
  auto plain = harness().get("/plain?x=1");
  EXPECT_EQ(plain->request.route().instance_id, "");
  EXPECT_FALSE(plain->request.route().instance_routed);
  EXPECT_EQ(plain->request.route().target, "");
  EXPECT_TRUE(plain->request.route().add_headers.empty());
}

TEST_F(LuaModuleTest, IdentifySetsTheIdentity) {
  auto alice = harness().get("/page", "x-user: alice\r\n");
  EXPECT_EQ(alice->transport.status, 200);
  EXPECT_EQ(alice->request.route().identity, "alice@nil@nil");
  auto anonymous = harness().get("/page");
  EXPECT_EQ(anonymous->transport.status, 200);
  EXPECT_EQ(anonymous->request.route().identity, "");
}

TEST_F(LuaModuleTest, RouteNamesADeploymentWhereThereIsNoSubhostAuth) {
  auto routed = harness().get("/deployment", "x-deployment: dep-7\r\nx-user: carol\r\n");
  EXPECT_EQ(routed->transport.status, 200);
  const auto& token = routed->request.route().token;
  ASSERT_TRUE(token);
  EXPECT_EQ(token->deployment_id, "dep-7");
  EXPECT_EQ(token->subhoster, harness().config().subhosters->at("acme"));
  EXPECT_EQ(token->rpc_root, "https://origin.example.com/rpc/");  // the first rpc_root_allow
  EXPECT_EQ(token->deployment_key, "acme\nhttps://origin.example.com/rpc/\ndep-7");
  EXPECT_EQ(routed->request.route().identity, "carol@nil@dep-7");
  // The same deployment again is the same description.
  auto again = harness().get("/deployment", "x-deployment: dep-7\r\n");
  EXPECT_EQ(again->request.route().token, token);
}

TEST_F(LuaModuleTest, WithSubhostAuthTheTokenNamesTheDeployment) {
  auto claims = harness().get("/auth/claims", "x-deno-subhost: " + relayToken("dep-1") + "\r\n");
  EXPECT_EQ(claims->transport.status, 200);
  EXPECT_EQ(claims->transport.body, "dep-1 dep-1");  // req.claims and req.deployment
  auto identified =
      harness().get("/auth/page", "x-deno-subhost: " + relayToken("dep-1") + "\r\nx-user: bob\r\n");
  EXPECT_EQ(identified->transport.status, 200);
  EXPECT_EQ(identified->request.route().identity, "bob@nil@dep-1");
  // route() may not choose another deployment there.
  auto changed = harness().get(
      "/auth/deployment", "x-deno-subhost: " + relayToken("dep-1") + "\r\nx-deployment: dep-2\r\n");
  EXPECT_EQ(changed->transport.status, 500);
  EXPECT_EQ(changed->transport.header("x-deno-error"), kHookFailed);
  EXPECT_EQ(changed->request.route().token->deployment_id, "dep-1");
}

TEST_F(LuaModuleTest, AHostHeaderFromRouteReplacesTheForwardedHost) {
  auto routed = harness().get("/forwarded/host", "x-forwarded-host: app.example.com\r\n");
  EXPECT_EQ(routed->transport.status, 200);
  EXPECT_EQ(routed->request.route().forwarded_host, "other.example");
  EXPECT_TRUE(routed->request.route().add_headers.empty());
  // Without a forwarded host it is an ordinary header replacing the client's Host.
  auto plain = harness().get("/host");
  EXPECT_EQ(plain->request.route().forwarded_host, "");
  using Header = std::pair<std::string, std::string>;
  EXPECT_EQ(plain->request.route().add_headers, (std::vector<Header>{{"host", "other.example"}}));
  EXPECT_EQ(plain->request.route().drop_headers, std::vector<std::string>{"host"});
}

TEST_F(LuaModuleTest, FailingHooksAndInvalidAnswersAnswer500InternalServerError) {
  for (const char* path :
       {"/access-error", "/route-error", "/identify-error", "/unknown-upstream", "/query-in-path",
        "/framing", "/long-instance", "/long-identity", "/not-a-table"}) {
    SCOPED_TRACE(path);
    auto failed = harness().get(path);
    EXPECT_EQ(failed->transport.status, 500);
    EXPECT_EQ(failed->transport.header("x-deno-error"), kHookFailed);
    EXPECT_EQ(failed->transport.body,
              "500 Internal Server Error: a Lua hook failed (see the error log) "
              "(INTERNAL_SERVER_ERROR)\n");
    EXPECT_EQ(failed->request.errorKind(), ErrorKind::kInternalServerError);
  }
  // The VM goes on serving.
  EXPECT_EQ(harness().get("/fine")->transport.status, 200);
}

TEST_F(LuaModuleTest, AFailingHookIsLoggedWithTheScriptsFileAndLine) {
  std::string log_path = dir_.path() + "/error.log";
  std::string error;
  ASSERT_TRUE(setErrorLog(log_path, LogLevel::kInfo, error)) << error;
  auto failed = harness().get("/route-error");
  auto upstream = harness().get("/unknown-upstream");
  ASSERT_TRUE(setErrorLog("stderr", LogLevel::kInfo, error)) << error;
  EXPECT_EQ(failed->transport.status, 500);
  std::string log = dir_.read("error.log");
  // "lua FILE:LINE: message" for the script's errors, "lua FILE: message" for the module's.
  EXPECT_NE(log.find("lua " + script_ + ":26: route broke\n"), std::string::npos) << log;
  EXPECT_NE(log.find("lua " + script_ + ": route() named an unknown upstream \"nope\""),
            std::string::npos)
      << log;
}

TEST_F(LuaModuleTest, TheInstructionBudgetEndsARunawayHook) {
  std::string script = dir_.write("budget.lua", "function access(req) while true do end end\n");
  PipelineHarness budget(R"(
server {
    listen 127.0.0.1:8080;
    lua_instructions 10000;
    lua_script )" + script +
                         R"(;
    location / { return 200 "ok"; }
}
)");
  ASSERT_TRUE(budget.ok()) << budget.error();
  auto stopped = budget.get("/");
  EXPECT_EQ(stopped->transport.status, 500);
  EXPECT_EQ(stopped->transport.header("x-deno-error"), kHookFailed);
}

TEST_F(LuaModuleTest, ALocationWithoutTheDirectiveRunsNoScript) {
  std::string script =
      dir_.write("deny.lua", "function access(req) return subgate.respond(403) end\n");
  PipelineHarness harness(R"(
server {
    listen 127.0.0.1:8080;
    location /scripted { lua_script )" +
                          script + R"(; return 200 "scripted"; }
    location / { return 200 "plain"; }
}
)");
  ASSERT_TRUE(harness.ok()) << harness.error();
  EXPECT_EQ(harness.get("/scripted")->transport.status, 403);
  auto plain = harness.get("/other");
  EXPECT_EQ(plain->transport.status, 200);
  EXPECT_EQ(plain->transport.body, "plain");
}

TEST_F(LuaModuleTest, RefusesScriptsThatDoNotLoadOrDefineNoHook) {
  auto errorOf = [&](const std::string& script, std::string_view extra = {}) {
    PipelineHarness harness("server {\n listen 127.0.0.1:8080;\n " + std::string(extra) +
                            "lua_script " + script + ";\n location / { return 200; }\n}\n");
    EXPECT_FALSE(harness.ok()) << script;
    return harness.error();
  };
  std::string missing = dir_.path() + "/missing.lua";
  EXPECT_EQ(errorOf(missing),
            "<embedded>:3: lua_script: " + missing + ": cannot open: No such file or directory");
  std::string syntax = dir_.write("syntax.lua", "function route(req)\n  return {\nend\n");
  EXPECT_EQ(errorOf(syntax).rfind("<embedded>:3: lua_script: " + syntax + ":3: ", 0), 0u)
      << errorOf(syntax);
  std::string top = dir_.write("top.lua", "local x = nil\nx.y = 1\n");
  EXPECT_EQ(errorOf(top).rfind("<embedded>:3: lua_script: " + top + ":2: ", 0), 0u) << errorOf(top);
  std::string none = dir_.write("none.lua", "function helper() end\n");
  EXPECT_EQ(errorOf(none), "<embedded>:3: lua_script " + none +
                               " defines none of the hooks access(), route() and identify()");
  EXPECT_EQ(errorOf(script_, "lua_instructions 10;\n "),
            "<embedded>:3: invalid number \"10\" in \"lua_instructions\" directive");
  EXPECT_EQ(errorOf(script_, "lua_memory 1k;\n "),
            "<embedded>:3: invalid size \"1k\" in \"lua_memory\" directive");
}

}  // namespace
}  // namespace subgate
