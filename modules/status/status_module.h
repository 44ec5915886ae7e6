// `status;` (server, location): a content handler answering a JSON snapshot of the isolate pool,
// for operators and tests (issue: gateway model). Put it on a listener bound to loopback, e.g.
//
//   server { listen 127.0.0.1:8081; location = /status { status; } }
//
// The answer (application/json):
//   {"isolates": N, "spares": N, "sticky": N, "boots": N, "processes": N, "ready": N,
//    "evicted_idle": N, "evicted_lru": N, "events_sent": N (and the other events_* counts of
//    docs/origin.md), "token_cache_hits": N (and every module's counters()),
//    "deployments": [{"deployment_id": "...", "subhoster": "...", "rpc_root": "...",
//                     "queued": N, "sticky": N, "warm_leases": N,
//                     "isolates": [{"id": N, "instance_id": "...", "state": "ready",
//                                   "active": N, "pid": N}]}]}
// `active` is the isolate's open connections (requests until their response ended), the count
// isolate_limit bounds; `sticky` counts identify() entries; `token_cache_hits` the requests whose
// relay token subhost_auth's cache of verified tokens answered (all workers, since the start).
#pragma once

#include "core/pipeline/module.h"

namespace subgate {

class StatusModule final : public Module {
 public:
  std::string_view name() const override { return "status"; }
  std::span<const DirectiveSpec> directives() const override;
  std::span<const SubcommandSpec> subcommands() const override;
  std::shared_ptr<const ModuleConf> compileLocation(const Scope& scope,
                                                    CompileContext& ctx) const override;
  bool isContentHandler() const override { return true; }
  void content(Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
