#include "modules/status/status_module.h"

#include <jansson.h>

#include <cstdlib>

#include "core/isolates/isolate_registry.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"
#include "modules/status/status_command.h"

namespace subgate {
namespace {

struct StatusConf final : ModuleConf {};

constexpr DirectiveSpec kDirectives[] = {
    {"status", kServerContext | kLocationContext, 0, 0, false, false, true},
};

}  // namespace

std::span<const DirectiveSpec> StatusModule::directives() const { return kDirectives; }

std::span<const SubcommandSpec> StatusModule::subcommands() const {
  static constexpr SubcommandSpec kCommands[] = {
      {"status", "[URL]   print a status location (default http://127.0.0.1:8081/status)",
       runStatusCommand},
  };
  return kCommands;
}

std::shared_ptr<const ModuleConf> StatusModule::compileLocation(const Scope& scope,
                                                                CompileContext&) const {
  if (!scope.find("status")) return nullptr;
  return std::make_shared<StatusConf>();
}

void StatusModule::content(Request& req, const ModuleConf&) const {
  LocalReply reply;
  reply.body = req.config().isolates ? req.config().isolates->statusJson() : "{}";
  // The counters every module keeps (Module::counters(): token_cache_hits, ...) at the top level.
  if (json_t* root = json_loadb(reply.body.data(), reply.body.size(), 0, nullptr)) {
    for (const Module* module : allModules())
      for (const ModuleCounter& counter : module->counters())
        json_object_set_new(root, std::string(counter.name).c_str(),
                            json_integer(static_cast<json_int_t>(counter.value)));
    if (char* text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS)) {
      reply.body = text;
      free(text);
    }
    json_decref(root);
  }
  reply.body += '\n';
  reply.content_type = "application/json";
  reply.headers.emplace_back("cache-control", "no-store");
  req.respond(std::move(reply));
}

}  // namespace subgate
