// Lua hooks (issue: Lua hooks and the gateway model): a server or location names a script whose
// global functions decide what happens to each request.
//
//   lua_script FILE;        (main, server, location) the script; compiled when the config loads
//   lua_instructions N;     (default 1000000) instruction budget per call
//   lua_memory SIZE;        (default 16m) memory one call may add to its VM
//   lua_memory_total SIZE;  (default 256m) memory the VM may hold in all during a call
//
// The script's hooks run in this order, each only if defined; access() in the access phase after
// forwarded_host and subhost_auth (so req.host and req.claims are set), route() and identify()
// in the route phase, where they write the route decision (core/pipeline/route.h):
//   access(req)    may answer: `return subgate.respond(403, "no")`
//   route(req)     may answer, or return a table: upstream (an `upstream` block to proxy to
//                  instead of the location's handler), instance (isolate instance id), path
//                  (rewritten path; the query stays), set_headers, remove_headers, and on servers
//                  without subhost_auth deployment and subhoster (booted from the subhoster's
//                  first rpc_root_allow)
//   identify(req)  the request's identifier for sticky isolate placement (protocol.md §6);
//                  skipped when route() chose an upstream
// One VM per worker thread. A failing call (error, instruction budget, memory cap, a bad return
// value) answers 500 INTERNAL_SERVER_ERROR and logs the script's file:line; the worker goes on.
#pragma once

#include "core/pipeline/module.h"

namespace subgate {

class LuaModule final : public Module {
 public:
  std::string_view name() const override { return "lua"; }
  std::span<const DirectiveSpec> directives() const override;
  // lua_errors (failed calls) and lua_budget_hits (of which the budget or a memory cap).
  std::vector<ModuleCounter> counters() const override;
  bool compileMain(const config::Node& root, CompileContext& ctx) const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool hasAccess() const override { return true; }
  bool hasRoute() const override { return true; }
  HookResult access(Request& req, const ModuleConf& conf) const override;
  HookResult route(Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
