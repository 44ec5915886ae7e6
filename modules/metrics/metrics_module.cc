#include "modules/metrics/metrics_module.h"

#include "core/isolates/isolate_registry.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/deployment_counters.h"
#include "core/pipeline/request.h"
#include "modules/metrics/metrics_families.h"
#include "modules/metrics/prometheus_text.h"

namespace subgate {
namespace {

struct MetricsConf final : ModuleConf {};

constexpr DirectiveSpec kDirectives[] = {
    {"metrics", kServerContext | kLocationContext, 0, 0, false, false, true},
    {"metrics_deployments", kMainContext},
};

}  // namespace

std::span<const DirectiveSpec> MetricsModule::directives() const { return kDirectives; }

bool MetricsModule::compileMain(const config::Node& root, CompileContext& ctx) const {
  for (const config::Node& node : root.children) {
    if (node.name != "metrics_deployments") continue;
    uint64_t n = 0;
    // At most what one thread's table holds (core/pipeline/deployment_counters.h).
    if (!ctx.countArg(node, 0, DeploymentCounters::kCellsPerThread, n)) return false;
    ctx.config.metrics_deployments = static_cast<uint32_t>(n);
  }
  return true;
}

std::shared_ptr<const ModuleConf> MetricsModule::compileLocation(const Scope& scope,
                                                                 CompileContext&) const {
  if (!scope.find("metrics")) return nullptr;
  return std::make_shared<MetricsConf>();
}

void MetricsModule::content(Request& req, const ModuleConf&) const {
  MetricsSnapshot snapshot;
  const RuntimeConfig& config = req.config();
  if (config.isolates) snapshot.isolates = config.isolates->snapshot();
  snapshot.requests = RequestCounters::snapshot();
  snapshot.totals = RequestCounters::totals();
  for (const Module* module : allModules())
    for (const ModuleCounter& counter : module->counters()) snapshot.modules.push_back(counter);
  snapshot.deployments_shown = config.metrics_deployments;
  if (snapshot.deployments_shown > 0) {
    snapshot.deployments = DeploymentCounters::snapshot();
    if (config.isolates) snapshot.deployment_isolates = config.isolates->isolatesByDeployment();
  }
  const PrometheusText::Format format = PrometheusText::negotiate(req.head().find("accept"));
  LocalReply reply;
  reply.body = renderMetrics(snapshot, format);
  reply.content_type = std::string(format == PrometheusText::Format::kOpenMetrics
                                       ? PrometheusText::kOpenMetricsContentType
                                       : PrometheusText::kContentType);
  reply.headers.emplace_back("cache-control", "no-store");
  req.respond(std::move(reply));
}

}  // namespace subgate
