// Who the tenants are: the configured subhosters and the relay tokens verified against them
// (protocol.md §1). The per-request decision that uses them is core/pipeline/route.h.
//
// Threading: Subhoster and VerifiedToken are immutable and shared (across workers, and across
// reloads while a request that started under the old config is in flight).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace subgate {

// One `rpc_root_allow` entry, parsed at config load: a token's rpc_root is allowed when its
// scheme, host (lower-cased) and port (80 / 443 when absent) are these and its path starts with
// `path` on a segment boundary (modules/subhost_auth).
struct RpcRootRule {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string path;  // "/" at least
};

// One `subhoster NAME { ... }` block.
struct Subhoster {
  std::string name;                         // the JWT `kid`
  std::string secret;                       // the shared HS256 secret
  std::vector<std::string> rpc_root_allow;  // allowed rpc_root prefixes as written; empty = any
  std::vector<RpcRootRule> rpc_root_rules;  // the same, parsed (one per entry)
  bool events = false;  // `events on`: its isolates' events go to {rpc_root}events (core/events)
};

// Every `subhoster` block of a config by name (the JWT `kid`).
using SubhosterTable = std::map<std::string, std::shared_ptr<const Subhoster>, std::less<>>;

// A relay token that passed verification. Cached per worker while it is valid.
struct VerifiedToken {
  std::shared_ptr<const Subhoster> subhoster;
  int64_t iat = 0;
  int64_t exp = 0;
  std::string deployment_id;
  std::string rpc_root;
  std::string claims_json;  // the whole claims object, for Lua (req.claims)
  // subhoster, rpc_root and deployment_id joined: what identifies a deployment's code and
  // isolates (protocol.md §3: boot results are cached per (kid, rpc_root, deployment_id)).
  std::string deployment_key;
};

}  // namespace subgate
