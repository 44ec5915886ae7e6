// A built-in origin (protocol.md §3) serving deployments from a folder, so that subgate runs
// real isolates with nothing else installed (the embedded default config uses it).
//
//   origin_local DIR;   (server, location) content handler
//
// `GET .../boot?deployment_id=ID` with `Authorization: Bearer <JWT>` signed by a configured
// subhoster (HS256, kid = subhoster name, claims iat, exp, deployment_id matching the query)
// answers with DIR/ID/main.ts (or main.js) as the body and `x-deno-config` built from the
// optional DIR/ID/config.json ({"envs": {...}, "permissions": {"net": ...}}).
// Answers: 401 bad or missing token, 403 token for another deployment, 404 unknown deployment
// or path, 400 malformed deployment id, 500 unreadable files or invalid config.json.
//
// Files are read on the worker thread when asked: /boot is called once per deployment boot.
#pragma once

#include "core/pipeline/module.h"

namespace subgate {

class OriginLocalModule final : public Module {
 public:
  std::string_view name() const override { return "origin_local"; }
  std::span<const DirectiveSpec> directives() const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool isContentHandler() const override { return true; }
  void content(Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
