#include "modules/status/status_module.h"

#include "core/isolates/isolate_registry.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"
#include "modules/status/status_command.h"
#include "modules/status/status_history.h"
#include "modules/status/status_json.h"
#include "modules/status/status_page.h"
#include "modules/status/status_sampler.h"

namespace subgate {
namespace {

struct StatusConf final : ModuleConf {};

constexpr DirectiveSpec kDirectives[] = {
    {"status", kServerContext | kLocationContext, 0, 0, false, false, true},
};

bool servesStatus(const RuntimeConfig& config, const Module* status) {
  for (const auto& server : config.servers) {
    if (server->unmatched.content.module == status) return true;
    for (const auto& location : server->locations)
      if (location->content.module == status) return true;
  }
  return false;
}

}  // namespace

std::span<const DirectiveSpec> StatusModule::directives() const { return kDirectives; }

std::span<const SubcommandSpec> StatusModule::subcommands() const {
  static constexpr SubcommandSpec kCommands[] = {
      {"status",
       "[--watch [--interval SECONDS] [--count N]] [URL]   print a status location (default "
       "http://127.0.0.1:8081/status); --watch redraws a table of it",
       runStatusCommand},
  };
  return kCommands;
}

std::shared_ptr<const ModuleConf> StatusModule::compileLocation(const Scope& scope,
                                                                CompileContext&) const {
  if (!scope.find("status")) return nullptr;
  return std::make_shared<StatusConf>();
}

bool StatusModule::activate(const RuntimeConfig& config, std::string&) const {
  if (servesStatus(config, this)) {
    statusSampler().start(statusHistory(), config.isolates);
  } else {
    statusSampler().stop();
  }
  return true;
}

void StatusModule::deactivate(const RuntimeConfig&) const { statusSampler().stop(); }

void StatusModule::content(Request& req, const ModuleConf&) const {
  LocalReply reply;
  reply.headers.emplace_back("cache-control", "no-store");
  reply.headers.emplace_back("vary", "Accept");
  if (prefersHtml(req.header("accept"))) {
    reply.body = std::string(statusPageHtml());
    reply.content_type = "text/html; charset=utf-8";
    reply.headers.emplace_back("content-security-policy", statusPagePolicy());
    reply.headers.emplace_back("x-content-type-options", "nosniff");
    reply.headers.emplace_back("referrer-policy", "no-referrer");
    req.respond(std::move(reply));
    return;
  }
  const IsolateRegistry* registry = req.config().isolates.get();
  const int64_t now = unixMillisNow();
  // A read takes a sample when the sampler thread has not lately (none runs in a process whose
  // config has no status location yet, nor in the in-memory tests).
  statusHistory().sampleIfDue(now, [registry] { return takeStatusSample(registry); });
  reply.body = renderStatusJson(registry, statusHistory(), now);
  reply.body += '\n';
  reply.content_type = "application/json";
  req.respond(std::move(reply));
}

}  // namespace subgate
