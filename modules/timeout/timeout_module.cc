#include "modules/timeout/timeout_module.h"

#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"
#include "modules/timeout/timeout_header.h"

namespace subgate {
namespace {

struct TimeoutConf final : ModuleConf {
  std::chrono::milliseconds timeout{60000};
  std::chrono::milliseconds max{300000};
};

constexpr unsigned kScopes = kMainContext | kServerContext | kLocationContext;
constexpr DirectiveSpec kDirectives[] = {
    {"request_timeout", kScopes},
    {"request_timeout_max", kScopes},
};

}  // namespace

std::span<const DirectiveSpec> TimeoutModule::directives() const { return kDirectives; }

std::shared_ptr<const ModuleConf> TimeoutModule::compileLocation(const Scope& scope,
                                                                 CompileContext& ctx) const {
  auto conf = std::make_shared<TimeoutConf>();
  for (auto [name, field] : {std::pair{"request_timeout", &conf->timeout},
                             std::pair{"request_timeout_max", &conf->max}}) {
    if (const config::Node* node = scope.find(name)) {
      auto value = config::parseDuration(node->args[0]);
      if (!value || value->count() <= 0) {
        ctx.fail(*node, "invalid duration \"" + node->args[0] + "\" in \"" + name + "\" directive");
        return nullptr;
      }
      *field = *value;
    }
  }
  conf->timeout = std::min(conf->timeout, conf->max);
  return conf;
}

HookResult TimeoutModule::access(Request& req, const ModuleConf& conf) const {
  const auto& timeouts = static_cast<const TimeoutConf&>(conf);
  std::chrono::milliseconds timeout = timeouts.timeout;
  const http1::MessageHead& head = req.head();
  for (const http1::HeaderField& field : head.headers) {
    if (!http1::iequals(field.name, "x-deno-timeout-ms")) continue;
    auto value = parseTimeoutHeader(field.value);
    if (!value) {
      req.fail(ErrorKind::kBadRequest,
               "x-deno-timeout-ms must be a positive integer of milliseconds");
      return HookResult::kDone;
    }
    timeout = std::min(*value, timeouts.max);
  }
  req.setResponseDeadline(steadyNow() + timeout);
  return HookResult::kContinue;
}

}  // namespace subgate
