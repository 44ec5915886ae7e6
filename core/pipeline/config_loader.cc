#include "core/pipeline/config_loader.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <thread>

#include "core/pipeline/request_counters.h"
#include "core/regex/regex.h"

namespace subgate {
namespace {

constexpr unsigned kAnyHttp = kMainContext | kServerContext | kLocationContext;

// Directives the core itself owns (modules declare theirs in Module::directives()).
constexpr DirectiveSpec kCoreDirectives[] = {
    {"workers", kMainContext},
    {"error_log", kMainContext, 1, 2},
    {"shutdown_timeout", kMainContext},
    {"io_uring", kMainContext},
    {"io_coalesce", kMainContext},
    {"server", kMainContext, 0, 0, true, true},
    {"listen", kServerContext, 1, 3, false, true},
    {"ssl_certificate", kServerContext},
    {"ssl_certificate_key", kServerContext},
    {"ssl_protocols", kServerContext, 1, 2},
    {"server_name", kServerContext, 1, -1},
    {"location", kServerContext, 1, 2, true, true},
    {"client_max_header_size", kMainContext | kServerContext},
    {"client_max_headers", kMainContext | kServerContext},
    {"client_max_uri_size", kMainContext | kServerContext},
    {"client_header_timeout", kMainContext | kServerContext},
    {"client_max_body_size", kAnyHttp},
    {"client_body_timeout", kAnyHttp},
    {"keepalive_timeout", kAnyHttp},
    {"keepalive_requests", kAnyHttp},
    {"send_timeout", kAnyHttp},
    {"request_id", kAnyHttp},
    {"trace_child_span", kAnyHttp},
};

using SpecTable = std::multimap<std::string_view, const DirectiveSpec*>;

SpecTable buildSpecTable() {
  SpecTable table;
  for (const DirectiveSpec& spec : kCoreDirectives) table.emplace(spec.name, &spec);
  for (const Module* module : allModules())
    for (const DirectiveSpec& spec : module->directives()) table.emplace(spec.name, &spec);
  return table;
}

Context childContext(const config::Node& block, Context parent) {
  if (parent == kMainContext && block.name == "server") return kServerContext;
  if (parent == kMainContext && block.name == "upstream") return kUpstreamContext;
  if (block.name == "location") return kLocationContext;
  return parent;
}

// Checks names, contexts, argument counts and duplicates of every directive in `block`.
bool validateBlock(const config::Node& block, Context context, const SpecTable& specs,
                   CompileContext& ctx) {
  std::map<std::string_view, int> seen;
  for (const config::Node& node : block.children) {
    auto [first, last] = specs.equal_range(node.name);
    if (first == last) return ctx.fail(node, "unknown directive \"" + node.name + "\"");
    const DirectiveSpec* spec = nullptr;
    for (auto it = first; it != last; ++it) {
      if (it->second->contexts & context) spec = it->second;
    }
    if (!spec) return ctx.fail(node, "\"" + node.name + "\" directive is not allowed here");
    int argc = static_cast<int>(node.args.size());
    if (argc < spec->min_args || (spec->max_args >= 0 && argc > spec->max_args))
      return ctx.fail(node, "invalid number of arguments in \"" + node.name + "\" directive");
    if (spec->block && !node.is_block)
      return ctx.fail(node, "directive \"" + node.name + "\" has no opening \"{\"");
    if (!spec->block && node.is_block)
      return ctx.fail(node, "directive \"" + node.name + "\" takes no block");
    if (!spec->repeatable && seen[node.name]++ > 0)
      return ctx.fail(node, "\"" + node.name + "\" directive is duplicate");
    Context inner = spec->child_context ? static_cast<Context>(spec->child_context)
                                        : childContext(node, context);
    if (node.is_block && !validateBlock(node, inner, specs, ctx)) return false;
  }
  return true;
}

// Core settings visible from a scope (location → server → main).
bool compileCore(const Scope& scope, CompileContext& ctx, CoreConf& core) {
  uint64_t value = 0;
  if (const auto* n = scope.find("client_max_header_size")) {
    if (!ctx.sizeArg(*n, value)) return false;
    if (value < 256) return ctx.fail(*n, "\"client_max_header_size\" must be at least 256");
    core.head_limits.max_head_bytes = value;
  }
  if (const auto* n = scope.find("client_max_headers")) {
    if (!ctx.countArg(*n, 1, 10000, value)) return false;
    core.head_limits.max_headers = value;
  }
  if (const auto* n = scope.find("client_max_uri_size")) {
    if (!ctx.sizeArg(*n, value)) return false;
    if (value < 16) return ctx.fail(*n, "\"client_max_uri_size\" must be at least 16");
    core.head_limits.max_uri_bytes = value;
  }
  if (const auto* n = scope.find("client_max_body_size")) {
    if (!ctx.sizeArg(*n, core.max_body_bytes)) return false;
  }
  // The body limit depends on the location, known only after the head is parsed: the request
  // checks it (Request::run), not the head parser.
  core.head_limits.max_body_bytes = UINT64_MAX;
  if (const auto* n = scope.find("keepalive_requests")) {
    if (!ctx.countArg(*n, 1, UINT32_MAX, value)) return false;
    core.keepalive_requests = static_cast<uint32_t>(value);
  }
  if (const auto* n = scope.find("request_id")) {
    if (!ctx.flagArg(*n, core.request_id)) return false;
  }
  if (const auto* n = scope.find("trace_child_span")) {
    if (!ctx.flagArg(*n, core.trace_child_span)) return false;
  }
  struct {
    const char* name;
    milliseconds* field;
  } timeouts[] = {
      {"client_header_timeout", &core.client_header_timeout},
      {"client_body_timeout", &core.client_body_timeout},
      {"keepalive_timeout", &core.keepalive_timeout},
      {"send_timeout", &core.send_timeout},
  };
  for (auto& t : timeouts) {
    if (const auto* n = scope.find(t.name)) {
      if (!ctx.durationArg(*n, *t.field)) return false;
    }
  }
  return true;
}

// Compiles every module for one scope and sorts the results into phase hooks.
// True when `block` itself (not an outer level) holds a content directive of `module`.
bool setsContentIn(const Module* module, const config::Node* block) {
  if (!block) return false;
  for (const DirectiveSpec& spec : module->directives())
    if (spec.selects_content && block->child(spec.name)) return true;
  return false;
}

bool compileHooks(const Scope& scope, CompileContext& ctx, LocationConf& loc, bool need_content) {
  const Module* content_owner = nullptr;
  for (const Module* module : allModules()) {
    std::shared_ptr<const ModuleConf> conf = module->compileLocation(scope, ctx);
    if (!ctx.error.empty()) return false;
    if (!conf) continue;
    HookEntry entry{module, conf};
    if (module->hasAccess()) loc.access.push_back(entry);
    if (module->hasRoute()) loc.route.push_back(entry);
    if (module->isContentHandler()) {
      if (content_owner) {
        // The nearest level decides: a location's own handler beats an inherited one.
        bool mine = setsContentIn(module, scope.location());
        bool theirs = setsContentIn(content_owner, scope.location());
        if (mine == theirs) {
          const config::Node& where = scope.location() ? *scope.location() : *scope.server();
          return ctx.fail(where, "more than one content handler (" +
                                     std::string(content_owner->name()) + " and " +
                                     std::string(module->name()) + ")");
        }
        if (!mine) continue;
      }
      content_owner = module;
      loc.content = entry;
    }
    if (module->hasReplyFilter()) loc.reply.push_back(entry);
    if (module->hasHeadFilter()) loc.head_filter.push_back(entry);
    if (module->hasLog()) loc.log.push_back(entry);
  }
  if (need_content && !content_owner) {
    return ctx.fail(*scope.location(), "location \"" + loc.pattern +
                                           "\" has no content handler (return or proxy_pass)");
  }
  return true;
}

bool compileLocation(const config::Node& main, const config::Node& server_node,
                     const config::Node& node, const ServerConf& server, CompileContext& ctx,
                     LocationConf& loc) {
  loc.where = node.where();
  if (node.args.size() == 2) {
    const std::string& op = node.args[0];
    loc.pattern = node.args[1];
    if (op == "=") {
      loc.match = LocationConf::Match::kExact;
    } else if (op == "~" || op == "~*") {
      loc.match = op == "~" ? LocationConf::Match::kRegex : LocationConf::Match::kRegexCaseless;
      std::string err;
      loc.regex = Regex::compile(loc.pattern, op == "~*", err);
      if (!loc.regex) return ctx.fail(node, "invalid regex \"" + loc.pattern + "\": " + err);
    } else if (op == "^~") {
      loc.match = LocationConf::Match::kPrefix;
    } else {
      return ctx.fail(node, "invalid location modifier \"" + op + "\"");
    }
  } else {
    loc.match = LocationConf::Match::kPrefix;
    loc.pattern = node.args[0];
  }
  if (loc.match != LocationConf::Match::kRegex &&
      loc.match != LocationConf::Match::kRegexCaseless && loc.pattern.empty())
    return ctx.fail(node, "empty location path");
  loc.core = server.core;
  Scope scope(&main, &server_node, &node);
  if (!compileCore(scope, ctx, loc.core)) return false;
  return compileHooks(scope, ctx, loc, true);
}

// ssl_certificate, ssl_certificate_key and ssl_protocols of a server block.
bool compileTls(const Scope& scope, CompileContext& ctx, ServerConf& server) {
  const config::Node* cert = scope.find("ssl_certificate");
  const config::Node* key = scope.find("ssl_certificate_key");
  const config::Node* protocols = scope.find("ssl_protocols");
  if (!cert && !key) {
    if (protocols) return ctx.fail(*protocols, "ssl_protocols without ssl_certificate");
    return true;
  }
  if (!cert || !key)
    return ctx.fail(cert ? *cert : *key, "ssl_certificate and ssl_certificate_key go together");
  tls::Options options;
  std::string error;
  if (protocols &&
      !tls::parseProtocols(protocols->args.data(), protocols->args.size(), options, error))
    return ctx.fail(*protocols, error);
  server.tls = tls::ServerContext::load(ctx.resolvePath(cert->args[0]),
                                        ctx.resolvePath(key->args[0]), options, error);
  if (!server.tls) return ctx.fail(*cert, error);
  return true;
}

bool compileServer(const config::Node& main, const config::Node& node, CompileContext& ctx,
                   ServerConf& server,
                   std::vector<std::pair<SocketAddress, const config::Node*>>& listens) {
  const size_t first_listen = listens.size();
  Scope server_scope(&main, &node, nullptr);
  if (!compileCore(server_scope, ctx, server.core)) return false;
  if (!compileTls(server_scope, ctx, server)) return false;
  for (const config::Node& child : node.children) {
    if (child.name == "server_name") {
      for (const std::string& name : child.args) {
        std::string lower = name;
        std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
        server.names.push_back(lower);
      }
    } else if (child.name == "listen") {
      std::string err;
      auto address = parseSocketAddress(child.args[0], 0, err);
      if (!address) return ctx.fail(child, err);
      bool ssl = false;
      bool http2 = false;
      for (size_t i = 1; i < child.args.size(); ++i) {
        bool& flag = child.args[i] == "ssl" ? ssl : http2;
        if ((child.args[i] != "ssl" && child.args[i] != "http2") || flag)
          return ctx.fail(
              child, "invalid listen parameter \"" + child.args[i] + "\" (expected ssl or http2)");
        flag = true;
      }
      if (ssl && !server.tls)
        return ctx.fail(child, "listen " + child.args[0] +
                                   " ssl needs ssl_certificate and "
                                   "ssl_certificate_key in its server");
      for (size_t i = first_listen; i < listens.size(); ++i)
        if (listens[i].first.text == address->text)
          return ctx.fail(child, "duplicate listen " + address->text);
      listens.emplace_back(*address, &child);
    }
  }
  for (const config::Node& child : node.children) {
    if (child.name != "location") continue;
    auto loc = std::make_unique<LocationConf>();
    if (!compileLocation(main, node, child, server, ctx, *loc)) return false;
    switch (loc->match) {
      case LocationConf::Match::kExact:
        if (!server.exact.emplace(loc->pattern, loc.get()).second)
          return ctx.fail(child, "duplicate location \"= " + loc->pattern + "\"");
        break;
      case LocationConf::Match::kPrefix:
        for (const LocationConf* other : server.prefixes)
          if (other->pattern == loc->pattern)
            return ctx.fail(child, "duplicate location \"" + loc->pattern + "\"");
        server.prefixes.push_back(loc.get());
        break;
      default: server.regexes.push_back(loc.get());
    }
    server.locations.push_back(std::move(loc));
  }
  std::stable_sort(server.prefixes.begin(), server.prefixes.end(),
                   [](const LocationConf* a, const LocationConf* b) {
                     return a->pattern.size() > b->pattern.size();
                   });
  // Requests no location matches are answered by the server-level content handler, if one is
  // configured there, else 404 NOT_FOUND; server-level access and log hooks still apply.
  server.unmatched.where = node.where();
  server.unmatched.core = server.core;
  return compileHooks(server_scope, ctx, server.unmatched, false);
}

bool compileMainSettings(const config::Node& root, CompileContext& ctx, RuntimeConfig& config) {
  if (const auto* n = root.child("workers")) {
    if (n->args[0] == "auto") {
      config.workers = std::max(1u, std::thread::hardware_concurrency());
    } else {
      uint64_t value = 0;
      if (!ctx.countArg(*n, 1, 256, value)) return false;
      config.workers = static_cast<int>(value);
    }
  }
  if (const auto* n = root.child("error_log")) {
    config.error_log = n->args[0] == "stderr" ? "stderr" : ctx.resolvePath(n->args[0]);
    if (n->args.size() > 1 && !parseLogLevel(n->args[1], config.log_level))
      return ctx.fail(*n, "invalid log level \"" + n->args[1] + "\"");
  }
  if (const auto* n = root.child("shutdown_timeout")) {
    if (!ctx.durationArg(*n, config.shutdown_timeout)) return false;
  }
  if (const auto* n = root.child("io_uring")) {
    if (!ctx.flagArg(*n, config.io_uring)) return false;
  }
  if (const auto* n = root.child("io_coalesce")) {
    using std::chrono::microseconds;
    const std::string& text = n->args[0];
    const auto window = text == "off" ? microseconds(0) : config::parseFineDuration(text);
    if (!window || (text != "off" && (*window < microseconds(1) || *window > microseconds(1000))))
      return ctx.fail(*n, "invalid value \"" + text +
                              "\" in \"io_coalesce\" directive (off, or 1us to 1000us)");
    config.io_coalesce = *window;
  }
  return true;
}

}  // namespace

bool CompileContext::fail(const config::Node& node, std::string_view message) {
  if (error.empty()) error = node.where() + ": " + std::string(message);
  return false;
}

bool CompileContext::sizeArg(const config::Node& node, uint64_t& out, uint64_t min) {
  auto value = config::parseSize(node.args[0]);
  if (!value || *value < min)
    return fail(node, "invalid size \"" + node.args[0] + "\" in \"" + node.name + "\" directive");
  out = *value;
  return true;
}

bool CompileContext::durationArg(const config::Node& node, milliseconds& out, bool positive) {
  auto value = config::parseDuration(node.args[0]);
  if (!value || (positive && value->count() <= 0))
    return fail(node,
                "invalid duration \"" + node.args[0] + "\" in \"" + node.name + "\" directive");
  out = *value;
  return true;
}

bool CompileContext::countArg(const config::Node& node, uint64_t min, uint64_t max, uint64_t& out) {
  const std::string& text = node.args[0];
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < min || value > max)
    return fail(node, "invalid number \"" + text + "\" in \"" + node.name + "\" directive");
  out = value;
  return true;
}

bool CompileContext::flagArg(const config::Node& node, bool& out) {
  auto value = config::parseFlag(node.args[0]);
  if (!value)
    return fail(node, "invalid value \"" + node.args[0] + "\" in \"" + node.name +
                          "\" directive, it must be \"on\" or \"off\"");
  out = *value;
  return true;
}

RouteTargets CompileContext::routeTargets(const Scope& scope) {
  RouteTargets targets;
  for (const Module* module : allModules()) {
    for (auto& [name, conf] : module->routeTargets(scope, *this))
      targets.emplace(std::move(name), HookEntry{module, std::move(conf)});
    if (!error.empty()) return {};
  }
  return targets;
}

std::string CompileContext::resolvePath(const std::string& path) const {
  if (path.empty() || path[0] == '/' || config.prefix.empty()) return path;
  return config.prefix + "/" + path;
}

extern const std::string_view kEmbeddedConfig;  // generated from conf/subgate.conf

std::shared_ptr<const RuntimeConfig> loadServerConfig(const ServerOptions& options,
                                                      std::string& err,
                                                      const RuntimeConfig* previous) {
  ConfigSource source;
  source.previous = previous;
  source.path = options.config_path;
  source.text = kEmbeddedConfig;
  source.prefix = options.prefix;
  return loadConfig(source, err);
}

std::shared_ptr<const RuntimeConfig> loadConfig(const ConfigSource& source, std::string& err) {
  assignModuleIndexes();
  auto config = std::make_shared<RuntimeConfig>();
  config->prefix = source.prefix;
  config->file = source.path.empty() ? "<embedded>" : source.path;
  config::ConfigError parse_error;
  std::optional<config::Node> root =
      source.path.empty() ? config::parseText(source.text, config->file, source.prefix, parse_error)
                          : config::parseFile(source.path, source.prefix, parse_error);
  if (!root) {
    err = parse_error.message;
    return nullptr;
  }
  config->root = std::move(*root);
  CompileContext ctx{*config, source.previous, {}};
  SpecTable specs = buildSpecTable();
  if (!validateBlock(config->root, kMainContext, specs, ctx) ||
      !compileMainSettings(config->root, ctx, *config)) {
    err = ctx.error;
    return nullptr;
  }
  for (const Module* module : allModules()) {
    if (!module->compileMain(config->root, ctx)) {
      err = ctx.error;
      return nullptr;
    }
  }
  std::vector<std::pair<SocketAddress, const config::Node*>> listens;
  for (const config::Node& node : config->root.children) {
    if (node.name != "server") continue;
    auto server = std::make_unique<ServerConf>();
    size_t first_listen = listens.size();
    if (!compileServer(config->root, node, ctx, *server, listens)) {
      err = ctx.error;
      return nullptr;
    }
    if (listens.size() == first_listen) {
      std::string parse_err;
      listens.emplace_back(*parseSocketAddress("0.0.0.0:8080", 0, parse_err), nullptr);
    }
    server->metrics_slot = RequestCounters::slotFor(
        server->names.empty() ? listens[first_listen].first.text : server->names.front());
    for (size_t i = first_listen; i < listens.size(); ++i) {
      const config::Node* listen_node = listens[i].second;
      bool ssl = false;
      bool http2 = false;
      if (listen_node) {
        for (size_t a = 1; a < listen_node->args.size(); ++a) {
          ssl |= listen_node->args[a] == "ssl";
          http2 |= listen_node->args[a] == "http2";
        }
      }
      ListenConf* listen = nullptr;
      for (ListenConf& existing : config->listens)
        if (existing.address.text == listens[i].first.text) listen = &existing;
      if (!listen) {
        config->listens.emplace_back();
        listen = &config->listens.back();
        listen->address = listens[i].first;
        listen->ssl = ssl;
        listen->http2 = http2;
      } else if (listen->ssl != ssl || listen->http2 != http2) {
        ctx.fail(*listen_node, "listen " + listen->address.text + " is used with and without " +
                                   (listen->ssl != ssl ? "ssl" : "http2"));
        err = ctx.error;
        return nullptr;
      }
      listen->servers.push_back(server.get());
    }
    config->servers.push_back(std::move(server));
  }
  if (config->servers.empty()) {
    err = config->file + ": no \"server\" block";
    return nullptr;
  }
  return config;
}

}  // namespace subgate
