// Renders every failure subgate answers itself (protocol.md §2): the status from the error
// table, a human-readable text body, and `x-deno-error: {"code":"…","message":"…"}`.
// Reply phase; always active, no directives.
#pragma once

#include "core/pipeline/module.h"

namespace subgate {

class ErrorHeaderModule final : public Module {
 public:
  std::string_view name() const override { return "error_header"; }
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool hasReplyFilter() const override { return true; }
  void filterReply(Request& req, const ModuleConf& conf, LocalReply& reply) const override;
};

}  // namespace subgate
