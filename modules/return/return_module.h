// `return CODE [TEXT|URL];` (server, location): answers with a fixed response, e.g. for health
// checks. For 301, 302, 303, 307 and 308 the argument is the Location URL; otherwise it is the
// body. Content phase.
#pragma once

#include "core/pipeline/module.h"

namespace subgate {

class ReturnModule final : public Module {
 public:
  std::string_view name() const override { return "return"; }
  std::span<const DirectiveSpec> directives() const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool isContentHandler() const override { return true; }
  void content(Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
