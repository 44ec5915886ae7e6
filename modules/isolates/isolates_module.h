// Serves requests with Deno isolates (protocol.md §4, §5): finds or boots the isolate of the
// request's deployment (from the verified relay token) and proxies the request to it over its
// private unix socket, streaming both ways.
//
// Directives:
//   runtime deno { ... }      (main) process settings, see docs/config.md and RuntimeSettings
//   isolates;                 (server, location) content handler
//   isolate_limit N;          (main, server, location; default 50) active requests per isolate
//   isolate_read_timeout D;   (default 300s) idle time between reads from the isolate
//
// Per request: `x-deno-isolate-instance-id` (or query `deno_isolate_instance_id`) picks a
// dedicated isolate; `x-deno-prewarm: 1` boots or finds the isolate and answers 204; a request
// that carries the loop tag of its own deployment (an isolate calling itself) gets 508
// LOOP_DETECTED. Boot errors come from the origin client; a full pool queues the request up to
// queue_timeout (503 CAPACITY_EXCEEDED); an isolate that dies mid-request gives 502
// DEPLOYMENT_FAILED or MEMORY_LIMIT.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/pipeline/module.h"

namespace subgate {

class IsolatesModule final : public Module {
 public:
  std::string_view name() const override { return "isolates"; }
  std::span<const DirectiveSpec> directives() const override;
  bool compileMain(const config::Node& root, CompileContext& ctx) const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool activate(const RuntimeConfig& config, std::string& error) const override;
  void deactivate(const RuntimeConfig& config) const override;
  bool isContentHandler() const override { return true; }
  void content(Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
