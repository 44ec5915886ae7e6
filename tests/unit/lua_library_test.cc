// The subgate.* libraries scripts use: json, re, hmac_sha256 and the shared dict, through the
// real Vm (every case runs twice in the same Vm) and, for the dict, directly.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/lua/hook_types.h"
#include "core/lua/shared_dict.h"
#include "tests/unit/lua_test_fixture.h"

namespace subgate::lua {
namespace {

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
