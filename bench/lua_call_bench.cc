// Vm::call of a typical identify() (reads one header, returns it) against a request view with
// the headers a relay sends, timed in a loop: the Lua cost alone, without sockets. Run by
// bench/lua_bench.py; prints one line.
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "core/lua/script.h"
#include "core/lua/vm.h"

int main() {
  using namespace subgate::lua;
  std::string error;
  auto script = Script::fromText("function identify(req)\n  return req.headers[\"x-user\"]\nend\n",
                                 "identify.lua", error);
  if (!script) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::vector<std::pair<std::string_view, std::string_view>> headers = {
      {"Host", "127.0.0.1:8080"},
      {"User-Agent", "relay/1.0"},
      {"Accept", "*/*"},
      {"X-Forwarded-Host", "tenant.example"},
      {"X-Deno-Subhost", "eyJhbGciOi..."},
      {"X-Forwarded-For", "203.0.113.9"},
      {"X-User", "user-1234567890"},
      {"Accept-Encoding", "gzip"},
  };
  RequestView view;
  view.method = "GET";
  view.path = "/";
  view.host = "tenant.example";
  view.remote_addr = "127.0.0.1";
  view.deployment = "hello";
  view.claims_json = R"({"deployment_id":"hello","rpc_root":"http://127.0.0.1:8081/"})";
  view.headers = headers;
  Vm vm;
  Limits limits;
  constexpr int kWarm = 10000;
  constexpr int kCalls = 1000000;
  for (int i = 0; i < kWarm; ++i) vm.call(*script, Hook::kIdentify, view, limits);
  auto start = std::chrono::steady_clock::now();
  size_t total = 0;
  for (int i = 0; i < kCalls; ++i) {
    CallResult result = vm.call(*script, Hook::kIdentify, view, limits);
    total += result.identity ? result.identity->size() : 0;
  }
  double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      kCalls;
  std::printf("Vm::call identify(): %.0f ns per call (%d calls, %zu bytes returned)\n", ns, kCalls,
              total);
  return total == 0;
}
