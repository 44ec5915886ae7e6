// Subhost authentication (protocol.md §1): every request carries `x-deno-subhost`, a compact
// HS256 JWS whose header `kid` names a configured subhoster and whose claims name the deployment
// (`deployment_id`) and the origin (`rpc_root`). The verified token reaches later phases as
// the route decision's `token` (core/pipeline/route.h).
//
// Directives:
//   subhoster NAME { secret S; | secret_file PATH; rpc_root_allow URL...; }   (main, repeatable)
//   subhost_auth on|off;             (main, server, location) verify tokens here
//   subhost_leeway D;                (default 60s) clock skew allowed for iat and exp
//   subhost_max_token_size SIZE;     (default 8k)
//   subhost_pass_token on|off;       (default off) whether user code sees x-deno-subhost
//
// Verified tokens are cached per worker (relays reuse one token for minutes): a repeat costs
// one hash lookup and an expiry check. The cache is keyed by the token text and remembers the
// subhoster object it was verified against, so a reload that changes a secret misses it. Each
// worker counts its hits; `status;` shows their sum as "token_cache_hits".
//
// Errors: 401 MISSING_XDENO_SUBHOST (header absent), 401 INVALID_XDENO_SUBHOST (anything else,
// with a message that says what was wrong and never the secret).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/ingress/ingress.h"
#include "core/pipeline/module.h"

namespace subgate {

class SubhostAuthModule final : public Module {
 public:
  std::string_view name() const override { return "subhost_auth"; }
  std::span<const DirectiveSpec> directives() const override;
  std::span<const SubcommandSpec> subcommands() const override;
  // token_cache_hits: requests whose token the cache of verified tokens answered, since the
  // start, summed over the workers (those of workers that have exited still count).
  std::vector<ModuleCounter> counters() const override;
  bool compileMain(const config::Node& root, CompileContext& ctx) const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool hasAccess() const override { return true; }
  HookResult access(Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
