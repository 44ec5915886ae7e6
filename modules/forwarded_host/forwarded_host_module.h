// `forwarded_host on;` (main, server, location): every request must carry a valid
// `x-forwarded-host` (protocol.md §1). It becomes the `Host` the isolate or upstream receives, so
// user code sees it as the host of request.url; `x-forwarded-proto: http` makes the scheme
// http (https otherwise). Access phase; runs before subhost auth.
//
// Errors: 400 MISSING_XFORWARDED_HOST (absent or empty), 400 INVALID_HOST_HEADER (not a host with
// an optional port, or sent twice with different values).
#pragma once

#include "core/pipeline/module.h"

namespace subgate {

class ForwardedHostModule final : public Module {
 public:
  std::string_view name() const override { return "forwarded_host"; }
  std::span<const DirectiveSpec> directives() const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool hasAccess() const override { return true; }
  HookResult access(Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
