#include "modules/upstream/upstream_module.h"

#include <charconv>
#include <map>

#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"
#include "core/server/worker.h"
#include "core/upstream/proxy_session.h"

namespace subgate {
namespace {

using GroupTable = std::map<std::string, std::shared_ptr<const UpstreamGroup>, std::less<>>;

struct ProxyConf final : ModuleConf {
  std::shared_ptr<const UpstreamGroup> group;
  ProxyOptions options;
};

constexpr unsigned kHttpScopes = kMainContext | kServerContext | kLocationContext;
constexpr DirectiveSpec kDirectives[] = {
    {"upstream", kMainContext, 1, 1, true, true},
    {"server", kUpstreamContext, 1, 2, false, true},
    {"keepalive", kUpstreamContext},
    {"keepalive_timeout", kUpstreamContext},
    {"keepalive_requests", kUpstreamContext},
    {"proxy_pass", kServerContext | kLocationContext, 1, 1, false, false, true},
    {"proxy_connect_timeout", kHttpScopes},
    {"proxy_read_timeout", kHttpScopes},
    {"proxy_send_timeout", kHttpScopes},
};

bool parseCount(const std::string& text, uint64_t max, uint64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && out <= max;
}

bool addServer(const config::Node& node, std::string_view address_text, UpstreamGroup& group,
               CompileContext& ctx) {
  std::string err;
  auto address = parseSocketAddress(address_text, 80, err);
  if (!address) return ctx.fail(node, err);
  UpstreamServer server;
  server.address = *address;
  server.peer = internPeer(address->text);
  for (size_t i = 1; i < node.args.size(); ++i) {
    const std::string& arg = node.args[i];
    uint64_t value = 0;
    if (arg.starts_with("max_conns=") && parseCount(arg.substr(10), UINT32_MAX, value)) {
      server.max_conns = static_cast<uint32_t>(value);
    } else {
      return ctx.fail(node, "invalid server parameter \"" + arg + "\"");
    }
  }
  group.servers.push_back(std::move(server));
  return true;
}

bool compileGroup(const config::Node& block, CompileContext& ctx, UpstreamGroup& group) {
  group.name = block.args[0];
  for (const config::Node& node : block.children) {
    uint64_t value = 0;
    if (node.name == "server") {
      if (!addServer(node, node.args[0], group, ctx)) return false;
    } else if (node.name == "keepalive") {
      if (!ctx.countArg(node, 0, 100000, value)) return false;
      group.keepalive = static_cast<uint32_t>(value);
    } else if (node.name == "keepalive_requests") {
      if (!ctx.countArg(node, 1, UINT32_MAX, value)) return false;
      group.keepalive_requests = static_cast<uint32_t>(value);
    } else if (node.name == "keepalive_timeout") {
      if (!ctx.durationArg(node, group.keepalive_timeout)) return false;
    }
  }
  if (group.servers.empty())
    return ctx.fail(block, "upstream \"" + group.name + "\" has no servers");
  return true;
}

// Least connections among the servers not tried yet and under max_conns (per worker); ties go
// round-robin so that idle servers share the load.
class LeastConnSelector final : public PeerSelector {
 public:
  explicit LeastConnSelector(const UpstreamGroup& group) : group_(group) {}

  ConnectionPool* next(Request& req) override {
    Worker& worker = req.worker();
    const size_t count = group_.servers.size();
    thread_local uint32_t rotation = 0;
    const size_t start = count > 1 ? rotation++ % count : 0;
    ConnectionPool* best = nullptr;
    size_t best_index = 0;
    for (size_t k = 0; k < count; ++k) {
      size_t i = (start + k) % count;
      if (tried_ & (1ull << (i % 64))) continue;
      const UpstreamServer& server = group_.servers[i];
      ConnectionPool& pool = worker.pool(server, group_);
      if (server.max_conns && pool.active() >= server.max_conns) continue;
      if (!best || pool.active() < best->active()) {
        best = &pool;
        best_index = i;
      }
    }
    if (!best) return nullptr;
    tried_ |= 1ull << (best_index % 64);
    return best;
  }

  ErrorKind noPeerError() const override { return ErrorKind::kUpstreamError; }

 private:
  const UpstreamGroup& group_;
  uint64_t tried_ = 0;  // servers beyond 64 share bits: they are then tried at most once per bit
};

// The proxy_*_timeout directives visible at `scope`.
bool compileOptions(const Scope& scope, CompileContext& ctx, ProxyOptions& options) {
  struct {
    const char* name;
    std::chrono::milliseconds* field;
  } timeouts[] = {
      {"proxy_connect_timeout", &options.connect_timeout},
      {"proxy_read_timeout", &options.read_timeout},
      {"proxy_send_timeout", &options.send_timeout},
  };
  for (auto& t : timeouts) {
    if (const config::Node* n = scope.find(t.name); n && !ctx.durationArg(*n, *t.field, true))
      return false;
  }
  return true;
}

}  // namespace

std::span<const DirectiveSpec> UpstreamModule::directives() const { return kDirectives; }

bool UpstreamModule::compileMain(const config::Node& root, CompileContext& ctx) const {
  auto groups = std::make_shared<GroupTable>();
  for (const config::Node& node : root.children) {
    if (node.name != "upstream") continue;
    auto group = std::make_shared<UpstreamGroup>();
    if (!compileGroup(node, ctx, *group)) return false;
    if (!groups->emplace(group->name, group).second)
      return ctx.fail(node, "duplicate upstream \"" + group->name + "\"");
  }
  ctx.config.module_main.emplace_back(this, groups);
  return true;
}

std::shared_ptr<const ModuleConf> UpstreamModule::compileLocation(const Scope& scope,
                                                                  CompileContext& ctx) const {
  const config::Node* node = scope.find("proxy_pass");
  if (!node) return nullptr;
  auto conf = std::make_shared<ProxyConf>();
  std::string_view url = node->args[0];
  if (url.starts_with("https://")) {
    ctx.fail(*node, "proxy_pass to https:// upstreams is not supported yet");
    return nullptr;
  }
  if (!url.starts_with("http://")) {
    ctx.fail(*node, "invalid URL prefix in \"" + node->args[0] + "\" (expected http://)");
    return nullptr;
  }
  std::string_view authority = url.substr(7);
  if (size_t slash = authority.find('/'); slash != std::string_view::npos) {
    if (slash + 1 != authority.size()) {
      ctx.fail(*node,
               "proxy_pass with a URI path is not supported; the request URI is passed as is");
      return nullptr;
    }
    authority = authority.substr(0, slash);
  }
  auto groups = ctx.config.mainOf<GroupTable>(this);
  if (auto it = groups->find(authority); it != groups->end()) {
    conf->group = it->second;
  } else if (authority.find(':') != std::string_view::npos) {
    auto group = std::make_shared<UpstreamGroup>();
    if (!addServer(*node, authority, *group, ctx)) return nullptr;
    conf->group = group;
  } else {
    ctx.fail(*node,
             "no upstream \"" + std::string(authority) + "\" (and not an address with a port)");
    return nullptr;
  }
  if (!compileOptions(scope, ctx, conf->options)) return nullptr;
  return conf;
}

std::vector<std::pair<std::string, std::shared_ptr<const ModuleConf>>> UpstreamModule::routeTargets(
    const Scope& scope, CompileContext& ctx) const {
  std::vector<std::pair<std::string, std::shared_ptr<const ModuleConf>>> targets;
  ProxyOptions options;
  if (!compileOptions(scope, ctx, options)) return targets;
  for (const auto& [name, group] : *ctx.config.mainOf<GroupTable>(this)) {
    auto conf = std::make_shared<ProxyConf>();
    conf->group = group;
    conf->options = options;
    targets.emplace_back(name, std::move(conf));
  }
  return targets;
}

void UpstreamModule::content(Request& req, const ModuleConf& conf) const {
  const auto& proxy = static_cast<const ProxyConf&>(conf);
  auto session = std::make_unique<ProxySession>(
      req, std::make_unique<LeastConnSelector>(*proxy.group), proxy.options);
  ProxySession* raw = session.get();
  req.setTask(std::move(session));
  raw->start();
}

}  // namespace subgate
