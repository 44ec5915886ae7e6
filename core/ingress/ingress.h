// What the subhosting modules learn about a request and hand to the later phases: the forwarded
// host (forwarded_host module), the verified relay token (auth module), the instance id and the
// prewarm flag (isolates module), and edits to the head the isolate or upstream receives.
//
// Threading: a Request's Ingress lives on the request's worker thread. Subhoster and
// VerifiedToken are immutable and shared (across workers, and across reloads while a request
// that started under the old config is in flight).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace subgate {

// One `subhoster NAME { ... }` block.
struct Subhoster {
  std::string name;                         // the JWT `kid`
  std::string secret;                       // the shared HS256 secret
  std::vector<std::string> rpc_root_allow;  // allowed rpc_root prefixes; empty = any
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

struct Ingress {
  std::string forwarded_host;  // validated x-forwarded-host; empty when not required here
  bool https = true;           // false when the relay sent x-forwarded-proto: http
  std::shared_ptr<const VerifiedToken> token;  // null when no subhost auth ran
  std::string instance_id;       // from the header or the query parameter, or route()'s choice
  bool instance_routed = false;  // route() chose instance_id: the header and query do not count
  std::string identity;          // identify()'s answer: requests with one go back to one isolate
  bool prewarm = false;

  // Edits applied to the head sent to the isolate or upstream: names dropped (any case) and
  // headers added. The `Host` header is replaced by forwarded_host when that is set.
  std::vector<std::string> drop_headers;
  std::vector<std::pair<std::string, std::string>> add_headers;
  std::string target;  // route()'s rewritten request target; empty: the client's

  void clear() {
    forwarded_host.clear();
    https = true;
    token.reset();
    instance_id.clear();
    instance_routed = false;
    identity.clear();
    prewarm = false;
    drop_headers.clear();
    add_headers.clear();
    target.clear();
  }
};

}  // namespace subgate
