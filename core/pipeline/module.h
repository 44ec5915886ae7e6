// The module contract: how a module declares its directives, compiles its config once at load
// time, and hooks into the request phases.
//
// Phases run in this order for every request (docs/architecture.md "Phases"):
//   access         modules that may reject the request or set per-request values (timeout, auth)
//   route          modules that decide where the request goes (Lua route() and identify()):
//                  they write the route decision (core/pipeline/route.h)
//   content        exactly one handler per location produces the response (return, proxy_pass,
//                  isolates, ...); a local reply (return, errors) passes the reply filters first
//                  (error_header renders failures)
//   response head  filters over every final response head, local, proxied or from an isolate
//                  alike, that may add or remove headers (add_header)
//   log            after the response ended (access_log)
// A module's compiled config (ModuleConf) is immutable and shared by all workers; per-request
// state lives in the Request. Hooks run on worker threads and must not block.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config/config_ast.h"

namespace subgate {

class Request;
struct LocalReply;
class ResponseHeadEdit;
struct CompileContext;
struct RuntimeConfig;
struct ServerOptions;

// A number a module counts (requests it answered from a cache, ...), shown by `status;` and
// named there as it is here, and by `metrics;` as subgate_NAME_total with `help` as its HELP.
struct ModuleCounter {
  std::string_view name;
  uint64_t value = 0;
  std::string_view help;  // one line: what it counts
};

// A `subgate NAME ARGS...` command a module adds to the command line (`token`, `status`).
struct SubcommandSpec {
  std::string_view name;
  std::string_view usage;  // the arguments after NAME and what it does, for `subgate -h`
  // `options` holds -c and -p as given before NAME; `args` are the arguments after it. Returns
  // the process exit code.
  int (*run)(const ServerOptions& options, int argc, char** args);
};

// Where a directive may appear (bit set).
enum Context : unsigned {
  kMainContext = 1u << 0,
  kServerContext = 1u << 1,
  kLocationContext = 1u << 2,
  kUpstreamContext = 1u << 3,
  kSubhosterContext = 1u << 4,  // inside `subhoster NAME { }`
  kRuntimeContext = 1u << 5,    // inside `runtime deno { }`
};

struct DirectiveSpec {
  std::string_view name;
  unsigned contexts;  // Context bits
  int min_args = 1;
  int max_args = 1;         // -1: no upper bound
  bool block = false;       // takes a { } block instead of ';'
  bool repeatable = false;  // may appear more than once in one block
  // Names the content handler (return, proxy_pass, ...). When a location inherits one from its
  // server and sets another itself, the location's own wins.
  bool selects_content = false;
  // For blocks: the context their directives are checked in (0: the default rules, where
  // `server`, `upstream` and `location` open their own contexts and others inherit).
  unsigned child_context = 0;
};

// A module's config compiled for one location. Subclassed by each module.
class ModuleConf {
 public:
  virtual ~ModuleConf() = default;
};

// The directives visible from one location: its own, then its server's, then main's.
class Scope {
 public:
  Scope(const config::Node* main, const config::Node* server, const config::Node* location)
      : levels_{location, server, main} {}
  // The nearest directive called `name` (location before server before main), or nullptr.
  const config::Node* find(std::string_view name) const;
  // Every directive called `name` at the nearest level that has any.
  std::vector<const config::Node*> findAll(std::string_view name) const;
  const config::Node* location() const { return levels_[0]; }
  const config::Node* server() const { return levels_[1]; }
  const config::Node* main() const { return levels_[2]; }

 private:
  const config::Node* levels_[3];
};

enum class HookResult {
  kContinue,  // go on with the next hook / phase
  kDone,      // the hook has answered the request (e.g. an error reply): skip to the end
  kSuspend,   // async work started; the module calls Request::resume() or answers later
};

class Module {
 public:
  virtual ~Module() = default;
  virtual std::string_view name() const = 0;
  virtual std::span<const DirectiveSpec> directives() const { return {}; }
  virtual std::span<const SubcommandSpec> subcommands() const { return {}; }
  // Any thread: the module's counters now (summed over the workers).
  virtual std::vector<ModuleCounter> counters() const { return {}; }

  // Once per config load, before any location: compile main-level blocks (e.g. upstreams).
  // Returns false with ctx.error set (as "file:line: message") on a bad config.
  virtual bool compileMain(const config::Node& root, CompileContext& ctx) const;

  // Once per location: this module's config there, or nullptr when the module is inactive.
  // On a bad config return nullptr and set ctx.error.
  virtual std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                            CompileContext& ctx) const;

  // The content configs this module offers for other modules to route a request to at `scope`
  // (Lua route() naming an upstream block), by name; see CompileContext::routeTargets. On a bad
  // config set ctx.error.
  virtual std::vector<std::pair<std::string, std::shared_ptr<const ModuleConf>>> routeTargets(
      const Scope& scope, CompileContext& ctx) const;

  // Main thread, when a config starts serving (startup and each reload, never for `-t`): start
  // or retune process-wide machinery (e.g. the isolate supervisor). False with `error` refuses
  // the config.
  virtual bool activate(const RuntimeConfig& config, std::string& error) const;
  // Main thread, once at exit after the workers stopped, with the last config served.
  virtual void deactivate(const RuntimeConfig& config) const;

  // Which phases the module hooks where it is active.
  virtual bool hasAccess() const { return false; }
  virtual bool hasRoute() const { return false; }
  virtual bool isContentHandler() const { return false; }
  virtual bool hasReplyFilter() const { return false; }
  virtual bool hasHeadFilter() const { return false; }
  virtual bool hasLog() const { return false; }

  virtual HookResult access(Request& req, const ModuleConf& conf) const;
  virtual HookResult route(Request& req, const ModuleConf& conf) const;
  // Takes over the request: must eventually answer it (or the request is cancelled).
  virtual void content(Request& req, const ModuleConf& conf) const;
  virtual void filterReply(Request& req, const ModuleConf& conf, LocalReply& reply) const;
  // Runs once per request on the final response head (not on 1xx), whoever produced it.
  virtual void filterHead(const Request& req, const ModuleConf& conf, ResponseHeadEdit& edit) const;
  virtual void log(const Request& req, const ModuleConf& conf) const;

  // The module's position in allModules(), fixed when the first config is compiled: the index of
  // its per-request slot (Request::state), like nginx's ctx_index.
  size_t index() const { return index_; }

 private:
  friend void assignModuleIndexes();
  mutable size_t index_ = 0;
};

// Numbers the modules of allModules() (Module::index()), once. The config loader calls it.
void assignModuleIndexes();

// The modules of this build, in phase order. Defined in modules/module_list.cc.
std::span<const Module* const> allModules();

}  // namespace subgate
