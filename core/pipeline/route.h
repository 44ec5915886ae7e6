// The route decision: where a request goes, decided by the access and route phases and read by
// the content handlers and the upstream request they send. Core owns it so that no module needs
// another; each field names the one module (or phase) that writes it, everyone else only reads.
// A module's private per-request values live in its own slot instead (Request::state<T>()).
//
// Threading: lives in its Request, on the request's worker thread.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/ingress/ingress.h"

namespace subgate {

class Module;
class ModuleConf;

struct RouteDecision {
  // forwarded_host (access): the validated x-forwarded-host, which replaces Host on the way out;
  // empty when not required here. Lua route() may change it (a `host` header in set_headers).
  std::string forwarded_host;
  // forwarded_host (access): false when the relay sent x-forwarded-proto: http.
  bool https = true;
  // The tenant and deployment: subhost_auth (access) from the relay token, or Lua route() on a
  // server without subhost auth. Null: no deployment chosen.
  std::shared_ptr<const VerifiedToken> token;
  // The isolate instance: Lua route() (instance_routed set), else the isolates module (content)
  // from the header or query parameter.
  std::string instance_id;
  bool instance_routed = false;
  // Lua identify() (route): a client name whose requests go back to one isolate while it has room.
  std::string identity;
  // Lua route() (route): the content handler that serves the request instead of the location's
  // (an upstream block). Null: the location's.
  const Module* handler = nullptr;
  const ModuleConf* handler_conf = nullptr;

  // Edits to the head the upstream or isolate receives: names dropped (any case) and headers
  // added, from subhost_auth (the token), Lua route() and the isolates module (its markers).
  std::vector<std::string> drop_headers;
  std::vector<std::pair<std::string, std::string>> add_headers;
  // Lua route(): the rewritten request target; empty: the client's.
  std::string target;

  void clear() {
    forwarded_host.clear();
    https = true;
    token.reset();
    instance_id.clear();
    instance_routed = false;
    identity.clear();
    handler = nullptr;
    handler_conf = nullptr;
    drop_headers.clear();
    add_headers.clear();
    target.clear();
  }
};

}  // namespace subgate
