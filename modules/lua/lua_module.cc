#include "modules/lua/lua_module.h"

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/ingress/instance_id.h"
#include "core/log/log.h"
#include "core/lua/script.h"
#include "core/lua/vm.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"
#include "core/upstream/proxy_session.h"

namespace subgate {
namespace {

struct LuaConf final : ModuleConf {
  std::shared_ptr<const lua::Script> script;
  lua::Limits limits;
  RouteTargets upstreams;                            // route()'s `upstream` names
  std::shared_ptr<const SubhosterTable> subhosters;  // route()'s `subhoster` names
};

// Scripts of one config load by path and limits, so that locations sharing a script (the usual
// case: lua_script at server level) compile it once.
struct ScriptCache {
  std::map<std::string, std::shared_ptr<const lua::Script>> scripts;
};

constexpr unsigned kScopes = kMainContext | kServerContext | kLocationContext;
constexpr DirectiveSpec kDirectives[] = {
    {"lua_script", kScopes},
    {"lua_instructions", kScopes},
    {"lua_memory", kScopes},
    {"lua_memory_total", kScopes},
};

constexpr size_t kMaxIdentity = 4096;

// A worker's VM and the scratch the request view is built in (reused: no allocation per call
// once warm). Destroyed with its thread.
struct WorkerLua {
  lua::Vm vm;
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string instance_id;  // the request's instance id (the view's), empty when absent or invalid
  // Deployments route() chose on servers without subhost auth, as the token the isolates
  // module expects; keyed by deployment key, checked against the subhoster object (reloads).
  std::unordered_map<std::string, std::shared_ptr<const VerifiedToken>> routed;
};
thread_local std::unique_ptr<WorkerLua> t_lua;

WorkerLua& workerLua() {
  if (!t_lua) t_lua = std::make_unique<WorkerLua>();
  return *t_lua;
}

// Failed calls, per worker, kept after its thread exits (a deque does not move its elements).
// Only its worker writes one; counters() sums them. Never destroyed: a worker may still count
// while the process exits.
struct alignas(64) FailureCounter {
  std::atomic<uint64_t> errors{0};  // every failed call (500 INTERNAL_SERVER_ERROR)
  std::atomic<uint64_t> aborts{0};  // of which the instruction budget or a memory cap stopped
};
struct FailureCounters {
  std::mutex mu;
  std::deque<FailureCounter> counters;
};
FailureCounters& failureCounters() {
  static FailureCounters* all = new FailureCounters;
  return *all;
}
thread_local FailureCounter* t_failures = nullptr;

void countFailure(bool aborted) {
  if (!t_failures) {
    FailureCounters& all = failureCounters();
    std::lock_guard<std::mutex> lock(all.mu);
    t_failures = &all.counters.emplace_back();
  }
  auto bump = [](std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  };
  bump(t_failures->errors);
  if (aborted) bump(t_failures->aborts);
}

HookResult fail(Request& req, const lua::Script& script, std::string_view error,
                bool aborted = false) {
  countFailure(aborted);
  // The VM's messages already start with the script's name ("file:line: ..."); ours do not.
  if (error.starts_with(script.name())) {
    LOG_ERROR("lua %.*s", static_cast<int>(error.size()), error.data());
  } else {
    LOG_ERROR("lua %s: %.*s", script.name().c_str(), static_cast<int>(error.size()), error.data());
  }
  req.fail(ErrorKind::kInternalServerError, "a Lua hook failed (see the error log)");
  return HookResult::kDone;
}

HookResult respond(Request& req, lua::RespondAction action) {
  LocalReply reply;
  reply.status = action.status;
  reply.body = std::move(action.body);
  for (auto& [name, value] : action.headers) {
    if (http1::iequals(name, "content-type")) {
      reply.content_type = std::move(value);
    } else if (!http1::isHopByHopHeader(name)) {  // framing is subgate's
      reply.headers.emplace_back(std::move(name), std::move(value));
    }
  }
  req.respond(std::move(reply));
  return HookResult::kDone;
}

// The VM checked that route()'s path starts with '/' and has no spaces or control characters;
// the query is the client's, so the path may not bring its own.
bool pathWithoutQuery(std::string_view path) {
  return path.find_first_of("?#") == std::string_view::npos;
}

// The token-shaped description of a deployment route() chose on a server without subhost auth.
std::shared_ptr<const VerifiedToken> routedDeployment(WorkerLua& lua, const LuaConf& conf,
                                                      const lua::RouteAction& route,
                                                      std::string& error) {
  const SubhosterTable& table = *conf.subhosters;
  std::shared_ptr<const Subhoster> subhoster;
  if (route.subhoster) {
    auto it = table.find(*route.subhoster);
    if (it == table.end()) {
      error = "route() named an unknown subhoster \"" + route.subhoster->substr(0, 64) + "\"";
      return nullptr;
    }
    subhoster = it->second;
  } else if (table.size() == 1) {
    subhoster = table.begin()->second;
  } else {
    error = "route() chose a deployment but no subhoster (" + std::to_string(table.size()) +
            " are configured)";
    return nullptr;
  }
  if (!route.deployment || route.deployment->empty() || route.deployment->size() > 256) {
    error = "route() must name a deployment of 1 to 256 bytes together with a subhoster";
    return nullptr;
  }
  if (subhoster->rpc_root_allow.empty()) {
    error = "subhoster \"" + subhoster->name +
            "\" has no rpc_root_allow: route() has no origin to boot its deployments from";
    return nullptr;
  }
  const std::string& rpc_root = subhoster->rpc_root_allow.front();
  std::string key = subhoster->name + '\n' + rpc_root + '\n' + *route.deployment;
  if (auto it = lua.routed.find(key); it != lua.routed.end() && it->second->subhoster == subhoster)
    return it->second;
  auto token = std::make_shared<VerifiedToken>();
  token->subhoster = subhoster;
  token->deployment_id = *route.deployment;
  token->rpc_root = rpc_root;
  token->deployment_key = key;
  if (lua.routed.size() >= 1024) lua.routed.clear();
  lua.routed[std::move(key)] = token;
  return token;
}

// Applies route()'s table. False with `error` when it asks for something this request cannot do.
bool applyRoute(Request& req, const LuaConf& conf, WorkerLua& lua, lua::RouteAction& route,
                std::string& error) {
  RouteDecision& decision = req.route();
  if (route.deployment || route.subhoster) {
    if (decision.token) {
      error = "route() cannot change the deployment on a server with subhost_auth";
      return false;
    }
    decision.token = routedDeployment(lua, conf, route, error);
    if (!decision.token) return false;
  }
  if (route.upstream) {
    auto it = conf.upstreams.find(*route.upstream);
    if (it == conf.upstreams.end()) {
      error = "route() named an unknown upstream \"" + route.upstream->substr(0, 64) + "\"";
      return false;
    }
    decision.handler = it->second.module;
    decision.handler_conf = it->second.conf.get();
  }
  if (route.instance_id) {
    if (route.instance_id->size() > kMaxInstanceId) {
      error = "route() returned an instance id longer than 256 bytes";
      return false;
    }
    decision.instance_id = std::move(*route.instance_id);
    decision.instance_routed = true;
  }
  if (route.path) {
    if (!pathWithoutQuery(*route.path)) {
      error = "route() returned a path with '?' or '#' (the query stays the client's)";
      return false;
    }
    decision.target = std::move(*route.path);
    if (!req.query().empty()) {
      decision.target += '?';
      decision.target += req.query();
    }
  }
  for (std::string& name : route.remove_headers) decision.drop_headers.push_back(std::move(name));
  for (auto& [name, value] : route.set_headers) {
    if (http1::isHopByHopHeader(name)) {
      error = "route() cannot set the framing header \"" + name + "\"";
      return false;
    }
    if (http1::iequals(name, "host") && !decision.forwarded_host.empty()) {
      decision.forwarded_host = std::move(value);  // replaces Host on the way out
      continue;
    }
    decision.drop_headers.push_back(name);
    decision.add_headers.emplace_back(std::move(name), std::move(value));
  }
  return true;
}

}  // namespace

std::span<const DirectiveSpec> LuaModule::directives() const { return kDirectives; }

std::vector<ModuleCounter> LuaModule::counters() const {
  FailureCounters& all = failureCounters();
  std::lock_guard<std::mutex> lock(all.mu);
  uint64_t errors = 0;
  uint64_t aborts = 0;
  for (const FailureCounter& counter : all.counters) {
    errors += counter.errors.load(std::memory_order_relaxed);
    aborts += counter.aborts.load(std::memory_order_relaxed);
  }
  return {{"lua_errors", errors,
           "Lua hook calls that failed (error, budget, memory cap, bad return): answered 500."},
          {"lua_budget_hits", aborts,
           "Lua hook calls stopped by the instruction budget or a memory cap (also lua_errors)."}};
}

bool LuaModule::compileMain(const config::Node&, CompileContext& ctx) const {
  ctx.config.module_main.emplace_back(this, std::make_shared<ScriptCache>());
  return true;
}

std::shared_ptr<const ModuleConf> LuaModule::compileLocation(const Scope& scope,
                                                             CompileContext& ctx) const {
  const config::Node* node = scope.find("lua_script");
  if (!node) return nullptr;
  auto conf = std::make_shared<LuaConf>();
  uint64_t value = 0;
  const config::Node* n = nullptr;
  if ((n = scope.find("lua_instructions"))) {
    if (!ctx.countArg(*n, 1000, 1000000000, value)) return nullptr;
    conf->limits.instructions = value;
  }
  if ((n = scope.find("lua_memory"))) {
    if (!ctx.sizeArg(*n, value, 64 * 1024)) return nullptr;
    conf->limits.memory_bytes = value;
  }
  if ((n = scope.find("lua_memory_total"))) {
    if (!ctx.sizeArg(*n, value, 1024 * 1024)) return nullptr;
    conf->limits.total_bytes = value;
  }
  const std::string path = ctx.resolvePath(node->args[0]);
  // The cache is mutable only while this config compiles (one thread).
  auto& cache = const_cast<ScriptCache&>(*ctx.config.mainOf<ScriptCache>(this));
  const std::string cache_key = path + '\n' + std::to_string(conf->limits.instructions) + '\n' +
                                std::to_string(conf->limits.memory_bytes) + '\n' +
                                std::to_string(conf->limits.total_bytes);
  if (auto it = cache.scripts.find(cache_key); it != cache.scripts.end()) {
    conf->script = it->second;
  } else {
    std::string error;
    conf->script = lua::Script::load(path, error, conf->limits);
    if (!conf->script) {
      ctx.fail(*node, "lua_script: " + error);
      return nullptr;
    }
    cache.scripts.emplace(cache_key, conf->script);
  }
  if (!conf->script->has(lua::Hook::kAccess) && !conf->script->has(lua::Hook::kRoute) &&
      !conf->script->has(lua::Hook::kIdentify)) {
    ctx.fail(*node, "lua_script " + node->args[0] +
                        " defines none of the hooks access(), route() and identify()");
    return nullptr;
  }
  if (conf->script->has(lua::Hook::kRoute)) {
    conf->upstreams = ctx.routeTargets(scope);
    if (!ctx.error.empty()) return nullptr;
    conf->subhosters = ctx.config.subhosters;
  }
  return conf;
}

namespace {

// The request as the hooks see it, built in the worker's scratch (valid until the next hook call
// on this thread).
lua::RequestView requestView(Request& req, WorkerLua& lua) {
  lua.headers.clear();
  for (const http1::HeaderField& field : req.head().headers)
    lua.headers.emplace_back(field.name, field.value);
  const RouteDecision& decision = req.route();
  lua::RequestView view;
  view.method = req.method();
  view.path = req.path();
  view.query = req.query();
  view.host = decision.forwarded_host.empty() ? req.header("host")
                                              : std::string_view(decision.forwarded_host);
  view.remote_addr = req.remoteAddress();
  if (decision.token) {
    view.deployment = decision.token->deployment_id;
    view.claims_json = decision.token->claims_json;
  }
  lua.instance_id =
      requestInstanceId(req.header("x-deno-isolate-instance-id"), req.query()).value_or("");
  view.instance_id = lua.instance_id;
  view.headers = lua.headers;
  return view;
}

}  // namespace

HookResult LuaModule::access(Request& req, const ModuleConf& module_conf) const {
  const auto& conf = static_cast<const LuaConf&>(module_conf);
  const lua::Script& script = *conf.script;
  if (!script.has(lua::Hook::kAccess)) return HookResult::kContinue;
  WorkerLua& lua = workerLua();
  lua::RequestView view = requestView(req, lua);
  lua::CallResult result = lua.vm.call(script, lua::Hook::kAccess, view, conf.limits);
  if (!result.ok) return fail(req, script, result.error, result.aborted);
  if (result.respond) return respond(req, std::move(*result.respond));
  return HookResult::kContinue;
}

HookResult LuaModule::route(Request& req, const ModuleConf& module_conf) const {
  const auto& conf = static_cast<const LuaConf&>(module_conf);
  const lua::Script& script = *conf.script;
  if (!script.has(lua::Hook::kRoute) && !script.has(lua::Hook::kIdentify))
    return HookResult::kContinue;
  WorkerLua& lua = workerLua();
  lua::RequestView view = requestView(req, lua);
  RouteDecision& decision = req.route();
  bool to_upstream = false;
  if (script.has(lua::Hook::kRoute)) {
    lua::CallResult result = lua.vm.call(script, lua::Hook::kRoute, view, conf.limits);
    if (!result.ok) return fail(req, script, result.error, result.aborted);
    if (result.respond) return respond(req, std::move(*result.respond));
    if (result.route) {
      std::string error;
      if (!applyRoute(req, conf, lua, *result.route, error)) return fail(req, script, error);
      to_upstream = result.route->upstream.has_value();
      // identify() sees what route() decided.
      if (decision.token) view.deployment = decision.token->deployment_id;
      if (decision.instance_routed) view.instance_id = decision.instance_id;
    }
  }
  if (!to_upstream && script.has(lua::Hook::kIdentify)) {
    lua::CallResult result = lua.vm.call(script, lua::Hook::kIdentify, view, conf.limits);
    if (!result.ok) return fail(req, script, result.error, result.aborted);
    if (result.identity) {
      if (result.identity->size() > kMaxIdentity)
        return fail(req, script, "identify() returned more than 4096 bytes");
      decision.identity = std::move(*result.identity);
    }
  }
  return HookResult::kContinue;
}

}  // namespace subgate
