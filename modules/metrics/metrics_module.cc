#include "modules/metrics/metrics_module.h"

#include "core/isolates/isolate_registry.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"
#include "modules/metrics/metrics_families.h"
#include "modules/metrics/prometheus_text.h"

namespace subgate {
namespace {

struct MetricsConf final : ModuleConf {};

constexpr DirectiveSpec kDirectives[] = {
    {"metrics", kServerContext | kLocationContext, 0, 0, false, false, true},
};

}  // namespace

std::span<const DirectiveSpec> MetricsModule::directives() const { return kDirectives; }

std::shared_ptr<const ModuleConf> MetricsModule::compileLocation(const Scope& scope,
                                                                 CompileContext&) const {
  if (!scope.find("metrics")) return nullptr;
  return std::make_shared<MetricsConf>();
}

void MetricsModule::content(Request& req, const ModuleConf&) const {
  MetricsSnapshot snapshot;
  if (req.config().isolates) snapshot.isolates = req.config().isolates->snapshot();
  snapshot.requests = RequestCounters::snapshot();
  for (const Module* module : allModules())
    for (const ModuleCounter& counter : module->counters()) snapshot.modules.push_back(counter);
  LocalReply reply;
  reply.body = renderMetrics(snapshot);
  reply.content_type = std::string(PrometheusText::kContentType);
  reply.headers.emplace_back("cache-control", "no-store");
  req.respond(std::move(reply));
}

}  // namespace subgate
