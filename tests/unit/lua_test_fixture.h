// Shared by the Lua unit tests (lua_vm_test.cc, lua_request_test.cc, lua_library_test.cc): the
// request the hooks are called with and the fixture that calls them through one real Vm.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/lua/hook_types.h"
#include "core/lua/script.h"
#include "core/lua/vm.h"

namespace subgate::lua {

using Header = std::pair<std::string_view, std::string_view>;

inline RequestView makeRequest(std::span<const Header> headers = {}) {
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

}  // namespace subgate::lua
