// Plain HTTP upstreams: `upstream NAME { server ADDR [max_conns=N]; keepalive N;
// keepalive_timeout D; keepalive_requests N; }` blocks (main) and `proxy_pass http://NAME;` or
// `proxy_pass http://ADDR:PORT;` (server, location) with `proxy_connect_timeout`,
// `proxy_read_timeout`, `proxy_send_timeout`. Content phase: least-connections choice among the
// servers (per worker), max_conns per worker, another server when a connect fails.
#pragma once

#include <utility>
#include <vector>

#include "core/pipeline/module.h"

namespace subgate {

class UpstreamModule final : public Module {
 public:
  std::string_view name() const override { return "upstream"; }
  std::span<const DirectiveSpec> directives() const override;
  bool compileMain(const config::Node& root, CompileContext& ctx) const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool isContentHandler() const override { return true; }
  void content(Request& req, const ModuleConf& conf) const override;

  // For modules that pick an upstream block per request (Lua route()): the content config of
  // every `upstream` block of the config being compiled, as `proxy_pass http://NAME;` would
  // compile at `scope` (its proxy_*_timeout directives apply). Empty with ctx.error set on a
  // bad timeout.
  std::vector<std::pair<std::string, std::shared_ptr<const ModuleConf>>> routeTargets(
      const Scope& scope, CompileContext& ctx) const override;
};

}  // namespace subgate
