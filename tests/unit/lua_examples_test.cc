// The example scripts in lua/ load and do what docs/lua.md says, through the real VM.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/lua/script.h"
#include "core/lua/vm.h"

namespace subgate::lua {
namespace {

using Headers = std::vector<std::pair<std::string_view, std::string_view>>;

std::shared_ptr<const Script> loadExample(const char* name) {
  std::string error;
  auto script = Script::load(std::string(SUBGATE_SOURCE_DIR) + "/lua/" + name, error);
  EXPECT_TRUE(script) << error;
  return script;
}

CallResult call(Vm& vm, const Script& script, Hook hook, std::string_view path,
                const Headers& headers, std::string_view host = "") {
  RequestView req;
  req.method = "GET";
  req.path = path;
  req.host = host;
  req.remote_addr = "203.0.113.9";
  req.headers = headers;
  return vm.call(script, hook, req, Limits());
}

TEST(LuaExamples, IdentifyByBearerTokenElseAddress) {
  auto script = loadExample("identify.lua");
  ASSERT_TRUE(script);
  Vm vm;
  for (int round = 0; round < 2; ++round) {
    Headers bearer = {{"Authorization", "Bearer abc.def"}};
    CallResult a = call(vm, *script, Hook::kIdentify, "/", bearer);
    ASSERT_TRUE(a.ok) << a.error;
    ASSERT_TRUE(a.identity);
    EXPECT_TRUE(a.identity->starts_with("token:"));
    EXPECT_EQ(a.identity->size(), 6u + 64u);  // hashed, never the token itself
    EXPECT_EQ(a.identity->find("abc"), std::string::npos);
    CallResult b = call(vm, *script, Hook::kIdentify, "/", {});
    ASSERT_TRUE(b.ok) << b.error;
    EXPECT_EQ(b.identity, "addr:203.0.113.9");
  }
}

TEST(LuaExamples, RouteApiToAnUpstream) {
  auto script = loadExample("route.lua");
  ASSERT_TRUE(script);
  Vm vm;
  for (int round = 0; round < 2; ++round) {
    CallResult api = call(vm, *script, Hook::kRoute, "/api/users", {});
    ASSERT_TRUE(api.ok && api.route) << api.error;
    EXPECT_EQ(api.route->upstream, "api");
    EXPECT_EQ(api.route->path, "/users");
    CallResult other = call(vm, *script, Hook::kRoute, "/index.html", {});
    ASSERT_TRUE(other.ok) << other.error;
    EXPECT_FALSE(other.route);
  }
}

TEST(LuaExamples, TenantsMapHostsToDeployments) {
  auto script = loadExample("tenants.lua");
  ASSERT_TRUE(script);
  Vm vm;
  for (int round = 0; round < 2; ++round) {
    CallResult hello = call(vm, *script, Hook::kRoute, "/", {}, "Hello.localhost:8000");
    ASSERT_TRUE(hello.ok && hello.route) << hello.error;
    EXPECT_EQ(hello.route->deployment, "hello");
    CallResult unknown = call(vm, *script, Hook::kRoute, "/", {}, "nobody.example");
    ASSERT_TRUE(unknown.ok && unknown.respond) << unknown.error;
    EXPECT_EQ(unknown.respond->status, 404);
  }
}

TEST(LuaExamples, DemoDefinesEveryHook) {
  auto script = loadExample("demo.lua");
  ASSERT_TRUE(script);
  EXPECT_TRUE(script->has(Hook::kAccess));
  EXPECT_TRUE(script->has(Hook::kRoute));
  EXPECT_TRUE(script->has(Hook::kIdentify));
}

}  // namespace
}  // namespace subgate::lua
