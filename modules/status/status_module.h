// `status;` (server, location): a content handler answering the state of the process for
// operators and tests: JSON to programs, a live page to browsers (issue 19). Put it on a
// listener bound to loopback (it names deployments, origins and tenants' identifiers), e.g.
//
//   server { listen 127.0.0.1:8081; location = /status { status; } }
//
// A request whose Accept header prefers text/html (a browser: status_page.h, prefersHtml) gets
// the page (status_page.html: text/html, with a Content-Security-Policy that lets nothing load
// but its own script and its own JSON); anything else (curl's */*, no Accept) gets the JSON.
// Both are never cached and vary by Accept. The JSON (application/json; status_json.h), every
// field in docs/observability.md "Status page":
//   {"isolates": N, "spares": N, "sticky": N, "queued": N, "boots": N, "boot_failures": N,
//    "isolate_boot_failures": N, "processes": N, "ready": N, "evicted_idle": N, "evicted_lru": N,
//    "events_sent": N (and the other events_* counts of docs/origin.md), "cluster": {...},
//    "token_cache_hits": N (and every module's counters()),
//    "requests": {"1xx": N, ... "5xx": N}, "servers": [{"server": "...", "1xx": N, ...}],
//    "time_ms": N, "history": {"interval_ms": N, "samples": [{"time_ms": N, "requests": [5 N],
//                              "ready": N, "boot_failures": N, "isolates": N, "queued": N}]},
//    "recent_boots": [{"deployment_id", "instance_id", "isolate", "time_ms", "duration_ms",
//                      "outcome": "ready"|"failed", "error", "message"}],
//    "deployments": [{"deployment_id": "...", "subhoster": "...", "rpc_root": "...",
//                     "queued": N, "sticky": N, "warm_leases": N, "isolate_limit": N,
//                     "identifiers": [{"id": "...", "isolate": N, "open": N}],
//                     "cluster": {"members": N, ...},
//                     "isolates": [{"id": N, "instance_id": "...", "state": "ready",
//                                   "active": N, "pid": N}]}]}
// `active` is the isolate's open connections (requests until their response ended), the count
// isolate_limit bounds; `sticky` counts identify() entries; `token_cache_hits` the requests whose
// relay token subhost_auth's cache of verified tokens answered (all workers, since the start).
//
// While a served config has a `status;` location, the sampler thread (status_sampler.h) keeps
// the history; `subgate status [--watch]` (status_command.h) reads the JSON.
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
  // Starts the history's sampler thread when `config` has a `status;` location (and stops it
  // when a reload removed the last one).
  bool activate(const RuntimeConfig& config, std::string& error) const override;
  void deactivate(const RuntimeConfig& config) const override;
  bool isContentHandler() const override { return true; }
  void content(Request& req, const ModuleConf& conf) const override;
};

}  // namespace subgate
