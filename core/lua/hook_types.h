// The values that cross between the request pipeline and a Lua hook: what a script sees of the
// request (RequestView), the limits of one call, and what the call decided (CallResult).
//
// Plain data with no Lua in it, so the pipeline glue can include this without <lua.hpp>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace subgate::lua {

// The global functions a script may define, one per hook point.
enum class Hook { kIdentify, kRoute, kAccess };

// "identify", "route" or "access": the global function name of the hook.
const char* hookName(Hook hook);

// Bounds on one Vm::call. Loading a script into a VM for the first time (running its top level)
// is charged to the call that triggers it.
struct Limits {
  // Lua VM instructions, counted in steps of up to 1000, so a call may overrun by < 1000.
  uint64_t instructions = 1000000;
  // Bytes the call may allocate above what the VM held when the call started.
  size_t memory_bytes = 16u << 20;
  // Bytes the whole VM (every script's globals and garbage) may hold during the call: what a
  // script piles up across calls is bounded too, not only what one call adds.
  size_t total_bytes = 256u << 20;
};

// What `req` shows a script. The caller fills it; every view must stay valid for the whole
// Vm::call. Inside Lua:
//   req.method, req.path, req.host, req.remote_addr   strings ("" when empty)
//   req.deployment, req.instance_id                    strings, or nil when empty
//   req.query        table name -> decoded value; a repeated name keeps its LAST value
//   req.query_all(n) list of every decoded value of name n, in order (empty table when absent)
//   req.headers[n]   first value of header n, case-insensitive, or nil; pairs() walks all
//                    headers in received order
//   req.header_all(n) list of every value of header n, in order (empty table when absent)
//   req.claims       table decoded from claims_json, or nil when claims_json is ""
// Fields are built on first access. A script may add its own fields to req; req is fresh for
// every call and using it after its call returned raises an error.
struct RequestView {
  std::string_view method;
  std::string_view path;
  std::string_view query;  // raw, without '?'
  std::string_view host;   // the forwarded host
  std::string_view remote_addr;
  std::string_view deployment;
  std::string_view instance_id;
  std::string_view claims_json;  // "" when the request carries no token
  std::span<const std::pair<std::string_view, std::string_view>> headers;  // as received
};

// `return subgate.respond(status, body, headers)` from access() or route(): answer the request
// with this response instead of proxying it. Header names are HTTP tokens and values carry no
// CR, LF or NUL (checked before they get here).
struct RespondAction {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// A table returned by route(). Unset fields keep what the pipeline would do anyway. Whether
// deployment and subhoster may be changed is the caller's decision (only on servers without
// subhost auth). Header names and values are validated like RespondAction's.
struct RouteAction {
  std::optional<std::string> upstream;     // route to this upstream block instead of isolates
  std::optional<std::string> instance_id;  // Lua field `instance`
  std::optional<std::string> deployment;
  std::optional<std::string> subhoster;
  std::optional<std::string> path;  // rewritten request path, starting with '/'
  std::vector<std::pair<std::string, std::string>> set_headers;  // sorted by name
  std::vector<std::string> remove_headers;
};

struct CallResult {
  bool ok = true;
  // When !ok: "path:line: message" for script errors; for aborted calls
  // "path:line: instruction budget exhausted (N instructions)" or
  // "path: memory limit exceeded (N bytes)". Meant for the error log; the client gets a 500.
  std::string error;
  // When !ok: the instruction budget or a memory cap stopped the call (not a script error).
  bool aborted = false;
  std::optional<std::string> identity;   // identify(): the returned string; nil -> nullopt
  std::optional<RespondAction> respond;  // access() or route() returned subgate.respond(...)
  std::optional<RouteAction> route;      // route() returned a table
};

}  // namespace subgate::lua
