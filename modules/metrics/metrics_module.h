// `metrics;` (server, location): a content handler answering the process's counters in the
// Prometheus text exposition format 0.0.4 (modules/metrics/metrics_families.h names them;
// docs/observability.md lists them). Like `status;`, put it on a listener bound to loopback:
//
//   server { listen 127.0.0.1:8081; location = /metrics { metrics; } }
//
// The requests by server and status class are counted by the pipeline itself, for every request
// of every server, whether or not a `metrics;` location exists (core/pipeline/request_counters.h).
#pragma once

#include "core/pipeline/module.h"

namespace subgate {

class MetricsModule final : public Module {
 public:
  std::string_view name() const override { return "metrics"; }
  std::span<const DirectiveSpec> directives() const override;
  // `metrics_deployments N` (main): RuntimeConfig::metrics_deployments.
  bool compileMain(const config::Node& root, CompileContext& ctx) const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool isContentHandler() const override { return true; }
  void content(Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
