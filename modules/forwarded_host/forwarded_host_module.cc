#include "modules/forwarded_host/forwarded_host_module.h"

#include "core/ingress/host_syntax.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"

namespace subgate {
namespace {

struct ForwardedHostConf final : ModuleConf {};

constexpr DirectiveSpec kDirectives[] = {
    {"forwarded_host", kMainContext | kServerContext | kLocationContext},
};

}  // namespace

std::span<const DirectiveSpec> ForwardedHostModule::directives() const { return kDirectives; }

std::shared_ptr<const ModuleConf> ForwardedHostModule::compileLocation(const Scope& scope,
                                                                       CompileContext& ctx) const {
  const config::Node* node = scope.find("forwarded_host");
  if (!node) return nullptr;
  bool on = false;
  if (!ctx.flagArg(*node, on) || !on) return nullptr;
  static const auto conf = std::make_shared<ForwardedHostConf>();
  return conf;
}

HookResult ForwardedHostModule::access(Request& req, const ModuleConf&) const {
  std::string_view host;
  bool seen = false;
  for (const http1::HeaderField& field : req.head().headers) {
    if (field.name.size() != 16 || !http1::iequals(field.name, "x-forwarded-host")) continue;
    if (seen && field.value != host) {
      req.fail(ErrorKind::kInvalidHostHeader,
               "x-forwarded-host was sent more than once with different values");
      return HookResult::kDone;
    }
    host = field.value;
    seen = true;
  }
  if (host.empty()) {
    req.fail(ErrorKind::kMissingForwardedHost,
             "the x-forwarded-host header is missing; subhosted requests must carry it");
    return HookResult::kDone;
  }
  if (!isValidHostHeader(host)) {
    req.fail(ErrorKind::kInvalidHostHeader,
             "x-forwarded-host is not a valid host (a name, an IPv4 address or [IPv6], with an "
             "optional :port)");
    return HookResult::kDone;
  }
  RouteDecision& decision = req.route();
  decision.forwarded_host.assign(host);
  std::string_view proto = req.header("x-forwarded-proto");
  decision.https = !(proto.size() == 4 && http1::iequals(proto, "http"));
  return HookResult::kContinue;
}

}  // namespace subgate
