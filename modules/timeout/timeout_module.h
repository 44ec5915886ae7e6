// The response-head deadline (protocol.md §1, §2): `x-deno-timeout-ms` sets how long the
// upstream may take to start its response, clamped to `request_timeout_max`; without the
// header `request_timeout` applies. Passing it gives 504 REQUEST_TIMED_OUT (enforced by the
// proxy); a header value that is not a positive integer gives 400 BAD_REQUEST. Access phase.
//
// Directives (main, server, location): request_timeout D (default 60s),
// request_timeout_max D (default 300s).
#pragma once

#include "core/pipeline/module.h"

namespace subgate {

class TimeoutModule final : public Module {
 public:
  std::string_view name() const override { return "timeout"; }
  std::span<const DirectiveSpec> directives() const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool hasAccess() const override { return true; }
  HookResult access(Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
