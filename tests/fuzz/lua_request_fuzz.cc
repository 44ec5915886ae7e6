// The `req` object's parsers over untrusted input: query decoding (%XX, '+', repeated names),
// case-insensitive header lookup and iteration, and claims JSON -> Lua tables (json_bridge).
// Input: line 1 the raw query, line 2 the claims JSON, then "name:value" header lines. A script
// touches every field; a Lua error is fine (ok=false), a crash, leak or UB report is not.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/lua/script.h"
#include "core/lua/vm.h"

namespace {

constexpr std::string_view kScript = R"(
function identify(req)
  local n = 0
  for k, v in pairs(req.query) do n = n + #k + #v end
  for _, v in ipairs(req.query_all("a")) do n = n + #v end
  for k, v in pairs(req.headers) do n = n + #k + #v end
  for _, v in ipairs(req.header_all("x-a")) do n = n + #v end
  local h = req.headers["X-A"]
  local ok, claims = pcall(function() return req.claims end)
  if ok and type(claims) == "table" then
    pcall(subgate.json.encode, claims)
  end
  return tostring(n) .. (h or "")
end
)";

std::string_view nextLine(std::string_view& rest) {
  size_t end = rest.find('\n');
  std::string_view line = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace subgate::lua;
  static Vm* vm = new Vm();
  static std::shared_ptr<const Script> script = [] {
    std::string error;
    return Script::fromText(kScript, "fuzz.lua", error);
  }();
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  RequestView view;
  view.method = "GET";
  view.path = "/";
  view.query = nextLine(rest);
  view.claims_json = nextLine(rest);
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  while (!rest.empty() && headers.size() < 64) {
    std::string_view line = nextLine(rest);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  view.headers = headers;
  Limits limits;
  limits.instructions = 200000;
  vm->call(*script, Hook::kIdentify, view, limits);
  return 0;
}
