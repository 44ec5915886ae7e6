#include "modules/subhost_auth/subhost_auth_module.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/container/string_map.h"
#include "core/files/read_file.h"
#include "core/http_client/http_client.h"
#include "core/jwt/jwt.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"
#include "modules/subhost_auth/token_command.h"

namespace subgate {
namespace {

struct AuthConf final : ModuleConf {
  std::shared_ptr<const SubhosterTable> subhosters;
  int64_t leeway_seconds = 60;
  size_t max_token_bytes = 8192;
  bool pass_token = false;
};

constexpr unsigned kScopes = kMainContext | kServerContext | kLocationContext;
constexpr DirectiveSpec kDirectives[] = {
    {"subhoster", kMainContext, 1, 1, true, true, false, kSubhosterContext},
    {"secret", kSubhosterContext},
    {"secret_file", kSubhosterContext},
    {"rpc_root_allow", kSubhosterContext, 1, -1, false, true},
    {"events", kSubhosterContext},
    {"subhost_auth", kScopes},
    {"subhost_leeway", kScopes},
    {"subhost_max_token_size", kScopes},
    {"subhost_pass_token", kScopes},
};

constexpr size_t kMinSecretBytes = 16;

// The secret is the file's bytes without trailing line ends.
bool readSecretFile(const std::string& path, std::string& secret, std::string& error) {
  if (!files::readRegularFile(path, secret, error)) {
    error = "secret_file " + error;
    return false;
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  return true;
}

// A path with a "." or ".." segment, literal or percent-encoded: the origin would resolve it to
// another path than the one the allow rule compared.
bool hasDotSegment(std::string_view path) {
  for (size_t start = 0; start <= path.size();) {
    size_t end = std::min(path.find('/', start), path.size());
    std::string segment;
    for (size_t i = start; i < end; ++i) {
      std::string_view rest = path.substr(i, end - i);
      bool encoded_dot = rest.starts_with("%2e") || rest.starts_with("%2E");
      segment += encoded_dot ? '.' : path[i];
      if (encoded_dot) i += 2;
    }
    if (segment == "." || segment == "..") return true;
    start = end + 1;
  }
  return false;
}

// The path of a parsed URL without its query.
std::string_view pathOf(const HttpUrl& url) {
  return std::string_view(url.path_and_query).substr(0, url.path_and_query.find('?'));
}

// An rpc_root_allow entry: an absolute http(s) URL without query or dot segments.
bool compileRpcRootRule(const config::Node& node, const std::string& text, CompileContext& ctx,
                        RpcRootRule& rule) {
  auto bad = [&](std::string_view why) {
    return ctx.fail(node, "rpc_root_allow \"" + text +
                              "\" is not an absolute http:// or https:// URL: " + std::string(why));
  };
  std::string error;
  auto url = parseHttpUrl(text, error);
  if (!url) return bad(error.substr(error.find("\": ") + 3));
  if (url->path_and_query.find('?') != std::string::npos || text.find('#') != std::string::npos)
    return bad("a query or fragment is not a path prefix");
  if (hasDotSegment(pathOf(*url))) return bad("the path has a \".\" or \"..\" segment");
  rule.tls = url->tls;
  rule.host = url->host;
  rule.port = url->port;
  rule.path = std::string(pathOf(*url));
  return true;
}

bool compileSubhoster(const config::Node& block, CompileContext& ctx, Subhoster& out) {
  out.name = block.args[0];
  bool has_secret = false;
  for (const config::Node& node : block.children) {
    if (node.name == "secret" || node.name == "secret_file") {
      if (has_secret)
        return ctx.fail(node, "subhoster \"" + out.name + "\" has more than one secret");
      has_secret = true;
      if (node.name == "secret") {
        out.secret = node.args[0];
      } else {
        std::string error;
        if (!readSecretFile(ctx.resolvePath(node.args[0]), out.secret, error))
          return ctx.fail(node, error);
      }
      if (out.secret.size() < kMinSecretBytes)
        return ctx.fail(node,
                        "the secret of subhoster \"" + out.name + "\" is shorter than 16 bytes");
    } else if (node.name == "rpc_root_allow") {
      for (const std::string& prefix : node.args) {
        RpcRootRule rule;
        if (!compileRpcRootRule(node, prefix, ctx, rule)) return false;
        out.rpc_root_allow.push_back(prefix);
        out.rpc_root_rules.push_back(std::move(rule));
      }
    } else if (node.name == "events") {
      if (!ctx.flagArg(node, out.events)) return false;
    }
  }
  if (!has_secret)
    return ctx.fail(block, "subhoster \"" + out.name + "\" has no secret or secret_file");
  return true;
}

// One worker's count of cache hits, on a cache line of its own: only its worker writes it,
// tokenCacheHits() reads them all.
struct alignas(64) HitCounter {
  std::atomic<uint64_t> hits{0};
};

// Every worker's counter, kept after its thread exits (a deque does not move its elements).
// Never destroyed: a worker may still count while the process exits.
struct HitCounters {
  std::mutex mu;
  std::deque<HitCounter> counters;
};

HitCounters& hitCounters() {
  static HitCounters* all = new HitCounters;
  return *all;
}

HitCounter& newHitCounter() {
  HitCounters& all = hitCounters();
  std::lock_guard<std::mutex> lock(all.mu);
  return all.counters.emplace_back();
}

// Per-worker cache of verified tokens. Bounded: cleared when full (relays reuse a handful of
// tokens, so a full cache means an unusual load where clearing is as good as any policy).
struct TokenCache {
  static constexpr size_t kMaxEntries = 4096;
  StringMap<std::shared_ptr<const VerifiedToken>> entries;  // by the token's text
  HitCounter& hits = newHitCounter();
};

thread_local TokenCache t_token_cache;

HookResult reject(Request& req, std::string_view message) {
  req.fail(ErrorKind::kInvalidSubhost, std::string("x-deno-subhost is invalid: ").append(message));
  return HookResult::kDone;
}

// `path` starts with `prefix` on a segment boundary: "/v1" and "/v1/" allow "/v1/x", never
// "/v10".
bool pathWithin(std::string_view path, std::string_view prefix) {
  if (!path.starts_with(prefix)) return false;
  return prefix.ends_with('/') || path.size() == prefix.size() || path[prefix.size()] == '/';
}

// The token's rpc_root against the subhoster's rules, compared as URLs (scheme, host, port,
// path prefix), never as strings: "https://o.example" must not allow "https://o.example.evil/".
bool rpcRootAllowed(const Subhoster& subhoster, std::string_view rpc_root) {
  if (subhoster.rpc_root_rules.empty()) return true;
  std::string error;
  auto url = parseHttpUrl(rpc_root, error);
  if (!url || hasDotSegment(pathOf(*url))) return false;
  for (const RpcRootRule& rule : subhoster.rpc_root_rules)
    if (url->tls == rule.tls && url->host == rule.host && url->port == rule.port &&
        pathWithin(pathOf(*url), rule.path))
      return true;
  return false;
}

// The kid of a token that failed to name a subhoster, as the refusal quotes it: printable ASCII
// (others become '?') and at most 64 bytes, like the token bytes core/jwt quotes. It comes from
// an unverified token, and the message goes into a header value and its JSON.
std::string quotedKid(std::string_view kid) {
  constexpr size_t kMax = 64;
  std::string out;
  for (char c : kid.substr(0, kMax)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (kid.size() > kMax) out += "...";
  return out;
}

}  // namespace

std::span<const DirectiveSpec> SubhostAuthModule::directives() const { return kDirectives; }

std::span<const SubcommandSpec> SubhostAuthModule::subcommands() const {
  static constexpr SubcommandSpec kCommands[] = {
      {"token",
       "--subhoster NAME --deployment ID [--rpc-root URL] [--ttl 15m]   print a relay token",
       runTokenCommand},
  };
  return kCommands;
}

std::vector<ModuleCounter> SubhostAuthModule::counters() const {
  HitCounters& all = hitCounters();
  std::lock_guard<std::mutex> lock(all.mu);
  uint64_t sum = 0;
  for (const HitCounter& counter : all.counters)
    sum += counter.hits.load(std::memory_order_relaxed);
  return {{"token_cache_hits", sum,
           "Requests whose relay token the cache of verified tokens answered (all workers)."}};
}

bool SubhostAuthModule::compileMain(const config::Node& root, CompileContext& ctx) const {
  auto table = std::make_shared<SubhosterTable>();
  for (const config::Node& node : root.children) {
    if (node.name != "subhoster") continue;
    auto subhoster = std::make_shared<Subhoster>();
    if (!compileSubhoster(node, ctx, *subhoster)) return false;
    if (!table->emplace(subhoster->name, subhoster).second)
      return ctx.fail(node, "duplicate subhoster \"" + subhoster->name + "\"");
  }
  ctx.config.subhosters = std::move(table);
  return true;
}

std::shared_ptr<const ModuleConf> SubhostAuthModule::compileLocation(const Scope& scope,
                                                                     CompileContext& ctx) const {
  const config::Node* node = scope.find("subhost_auth");
  if (!node) return nullptr;
  bool on = false;
  if (!ctx.flagArg(*node, on) || !on) return nullptr;
  auto conf = std::make_shared<AuthConf>();
  conf->subhosters = ctx.config.subhosters;
  if (conf->subhosters->empty()) {
    ctx.fail(*node, "subhost_auth is on but no subhoster block is configured");
    return nullptr;
  }
  std::chrono::milliseconds leeway{60000};
  uint64_t max_token = conf->max_token_bytes;
  const config::Node* n = nullptr;
  if (((n = scope.find("subhost_leeway")) && !ctx.durationArg(*n, leeway)) ||
      ((n = scope.find("subhost_max_token_size")) && !ctx.sizeArg(*n, max_token, 64)) ||
      ((n = scope.find("subhost_pass_token")) && !ctx.flagArg(*n, conf->pass_token)))
    return nullptr;
  conf->leeway_seconds = std::chrono::duration_cast<std::chrono::seconds>(leeway).count();
  conf->max_token_bytes = max_token;
  return conf;
}

HookResult SubhostAuthModule::access(Request& req, const ModuleConf& module_conf) const {
  const auto& conf = static_cast<const AuthConf&>(module_conf);
  std::string_view token;
  int count = 0;
  for (const http1::HeaderField& field : req.head().headers) {
    if (field.name.size() == 14 && http1::iequals(field.name, "x-deno-subhost")) {
      token = field.value;
      ++count;
    }
  }
  if (count == 0) {
    req.fail(ErrorKind::kMissingSubhost,
             "the x-deno-subhost header is missing; subhosted requests must carry a signed token");
    return HookResult::kDone;
  }
  if (count > 1) return reject(req, "the header was sent more than once");
  if (token.size() > conf.max_token_bytes)
    return reject(req, "the token is larger than subhost_max_token_size");
  if (!conf.pass_token) req.route().drop_headers.push_back("x-deno-subhost");

  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  TokenCache& cache = t_token_cache;
  if (auto it = cache.entries.find(token); it != cache.entries.end()) {
    const VerifiedToken& cached = *it->second;
    auto current = conf.subhosters->find(cached.subhoster->name);
    // A hit re-checks the time claims under this location's leeway: another location may have
    // verified the token with a larger one.
    if (current != conf.subhosters->end() && current->second == cached.subhoster &&
        cached.exp >= now - conf.leeway_seconds && cached.iat <= now + conf.leeway_seconds) {
      req.route().token = it->second;
      cache.hits.hits.fetch_add(1, std::memory_order_relaxed);
      return HookResult::kContinue;
    }
    cache.entries.erase(it);
  }

  std::string error;
  auto header = jwt::peekHeader(token, error);
  if (!header) return reject(req, error);
  auto subhoster = conf.subhosters->find(header->kid);
  if (subhoster == conf.subhosters->end())
    return reject(req, "unknown subhoster (kid) \"" + quotedKid(header->kid) + "\"");
  jwt::VerifyOptions options;
  options.now = now;
  options.leeway_seconds = conf.leeway_seconds;
  options.max_token_bytes = conf.max_token_bytes;
  jwt::Claims claims;
  if (!jwt::verifyHs256(token, subhoster->second->secret, options, jwt::VerifyMode::kSubhost,
                        claims, error))
    return reject(req, error);
  if (!rpcRootAllowed(*subhoster->second, claims.rpc_root))
    return reject(req, "rpc_root \"" + claims.rpc_root + "\" is not allowed for subhoster \"" +
                           subhoster->second->name + "\"");
  auto verified = std::make_shared<VerifiedToken>();
  verified->subhoster = subhoster->second;
  verified->iat = claims.iat;
  verified->exp = claims.exp;
  verified->deployment_id = std::move(claims.deployment_id);
  verified->rpc_root = std::move(claims.rpc_root);
  verified->claims_json = std::move(claims.json);
  verified->deployment_key =
      verified->subhoster->name + '\n' + verified->rpc_root + '\n' + verified->deployment_id;
  if (cache.entries.size() >= TokenCache::kMaxEntries) cache.entries.clear();
  cache.entries.emplace(std::string(token), verified);
  req.route().token = std::move(verified);
  return HookResult::kContinue;
}

}  // namespace subgate
