// `access_log off | stderr | PATH [combined | json | NAME];` (main, server, location): one line
// per request after its response, written with one write(2). Log phase. The file is opened when
// the config loads (so a reload reopens it; SIGUSR1 reopens it in place).
// `log_format NAME [escape=default|json|none] STRING...;` (main, repeatable): a format of the
// operator's, compiled at load (log_format.h) and named by access_log.
#pragma once

#include "core/pipeline/module.h"

namespace subgate {

class AccessLogModule final : public Module {
 public:
  std::string_view name() const override { return "access_log"; }
  std::span<const DirectiveSpec> directives() const override;
  bool compileMain(const config::Node& root, CompileContext& ctx) const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool hasLog() const override { return true; }
  void log(const Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
