// Response headers set by the config, on every final response of a location: local replies,
// proxied responses and isolate responses alike (the response-head phase).
//
// Directive (main, server, location; repeatable):
//   add_header NAME VALUE [always];
// adds NAME: VALUE to responses with status 200, 201, 204, 206, 301, 302, 303, 304, 307 or 308,
// or to every final response with `always` (errors included). As in nginx, a level inherits the
// add_header directives of the outer level only when it has none of its own, and the header is
// added beside any the producer set (no replacement); an empty VALUE adds nothing. Framing and
// hop-by-hop names (content-length, transfer-encoding, connection, ...) are config errors.
#pragma once

#include "core/pipeline/module.h"

namespace subgate {

class HeadersModule final : public Module {
 public:
  std::string_view name() const override { return "headers"; }
  std::span<const DirectiveSpec> directives() const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool hasHeadFilter() const override { return true; }
  void filterHead(const Request& req, const ModuleConf& conf,
                  ResponseHeadEdit& edit) const override;
};

}  // namespace subgate
