// The Lua VM through the real Vm: runtime errors, the instruction and memory limits, the sandbox,
// per-script globals and the script cache, and loading scripts. Every LuaVmTest case runs twice
// in the same Vm, so state a call leaves behind (stack, limits, aborts) shows up in the second
// round. The request API is in lua_request_test.cc, the subgate.* libraries in
// lua_library_test.cc.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/lua/hook_types.h"
#include "core/lua/script.h"
#include "core/lua/vm.h"
#include "tests/unit/lua_test_fixture.h"

namespace subgate::lua {
namespace {

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
  EXPECT_EQ(error, path + ": cannot open: No such file or directory");
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

}  // namespace
}  // namespace subgate::lua
