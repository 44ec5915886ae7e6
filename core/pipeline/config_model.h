// The compiled, immutable configuration that workers serve from. Built by config_loader from
// the parsed AST; shared (shared_ptr<const RuntimeConfig>) by every worker and every request
// that started under it, so a reload never changes a request in flight.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/config/config_ast.h"
#include "core/http1/http1_parser.h"
#include "core/ingress/ingress.h"
#include "core/log/log.h"
#include "core/net/socket_address.h"
#include "core/pipeline/module.h"
#include "core/tls/tls_context.h"

namespace subgate {

using std::chrono::milliseconds;

// Core settings of a server, inherited by its locations and overridable there.
struct CoreConf {
  http1::Limits head_limits;          // client_max_header_size / _headers / _uri_size
  uint64_t max_body_bytes = 1 << 20;  // client_max_body_size (0 = unlimited)
  milliseconds client_header_timeout{60000};
  milliseconds client_body_timeout{60000};
  milliseconds keepalive_timeout{75000};
  milliseconds send_timeout{60000};
  uint32_t keepalive_requests = 10000;
  bool request_id = true;         // request_id: x-request-id kept or made, sent on, logged
  bool trace_child_span = false;  // trace_child_span: a new parent id in a forwarded traceparent
};

struct HookEntry {
  const Module* module = nullptr;
  std::shared_ptr<const ModuleConf> conf;
};

class Regex;            // core/regex/regex.h
class IsolateRegistry;  // core/isolates/isolate_registry.h (a higher layer: held, never used here)

struct LocationConf {
  enum class Match { kExact, kPrefix, kRegex, kRegexCaseless, kNone };
  Match match = Match::kNone;
  std::string pattern;
  std::shared_ptr<const Regex> regex;
  std::string where;  // "file:line" of the location block
  CoreConf core;
  std::vector<HookEntry> access;
  std::vector<HookEntry> route;
  HookEntry content;  // module == nullptr only for the "no location matched" fallback
  std::vector<HookEntry> reply;
  std::vector<HookEntry> head_filter;
  std::vector<HookEntry> log;
};

struct ServerConf {
  std::vector<std::string> names;                 // server_name (lowercase)
  std::shared_ptr<const tls::ServerContext> tls;  // ssl_certificate + ssl_certificate_key
  CoreConf core;
  std::vector<std::unique_ptr<LocationConf>> locations;
  std::unordered_map<std::string, const LocationConf*> exact;
  std::vector<const LocationConf*> prefixes;  // longest first
  std::vector<const LocationConf*> regexes;   // config order
  LocationConf unmatched;                     // serves the 404 NOT_FOUND reply when nothing matches
  // Where its requests are counted (core/pipeline/request_counters.h): the slot of its first
  // server_name, else of its first listen address.
  uint32_t metrics_slot = 0;

  // nginx order: exact, then regexes in order (unless no regex), then the longest prefix.
  const LocationConf& match(std::string_view path) const;
};

struct ListenConf final : tls::SniResolver {
  SocketAddress address;
  std::vector<const ServerConf*> servers;  // the first is the default server
  bool ssl = false;  // `listen ADDR ssl`: TLS with the default server's certificate, SNI picks
  // `listen ADDR ... http2`: on ssl, ALPN offers h2 (preferred) and http/1.1; plaintext, a
  // client that opens with the HTTP/2 preface gets h2c (prior knowledge), others HTTP/1.1.
  bool http2 = false;
  bool offersHttp2() const override { return http2; }
  const ServerConf& findServer(std::string_view host) const;
  // SNI: the certificate of the server whose server_name matches, else the default server's.
  const tls::ServerContext* resolveServerName(std::string_view name) const override;
};

struct RuntimeConfig {
  std::string file;  // path of the config file, or "<embedded>"
  std::string prefix;
  config::Node root;
  int workers = 1;
  std::string error_log = "stderr";
  LogLevel log_level = LogLevel::kInfo;
  milliseconds shutdown_timeout{30000};
  // Small socket writes of one loop turn go out in one io_uring submission (core/net/io_batch.h).
  bool io_uring = true;
  // A busy worker's pause at the end of a turn (core/net/turn_coalescer.h); 0: off.
  std::chrono::microseconds io_coalesce{20};
  std::vector<std::unique_ptr<ServerConf>> servers;
  std::vector<ListenConf> listens;
  // The `subhoster` blocks (never null; empty without any). Written by the subhost_auth module's
  // compileMain; read by every module that verifies or mints tokens (lua, origin_local, token).
  std::shared_ptr<const SubhosterTable> subhosters = std::make_shared<SubhosterTable>();
  // The isolate runtime. Written by the isolates module's compileMain, which hands the previous
  // config's on (CompileContext::previous) so that isolates outlive reloads; read by the
  // isolates and status modules. Null only in a build without the isolates module.
  std::shared_ptr<IsolateRegistry> isolates;
  // `metrics_deployments N`: requests are counted per deployment (deployment_counters.h) and
  // the scrape shows the N busiest; 0: not counted. Written by the metrics module's compileMain.
  uint32_t metrics_deployments = 100;
  // Main-level compiled data of modules (e.g. upstream groups), by module.
  std::vector<std::pair<const Module*, std::shared_ptr<const void>>> module_main;

  const ListenConf* findListen(std::string_view address_text) const;
  template <class T>
  std::shared_ptr<const T> mainOf(const Module* module) const {
    for (const auto& [m, data] : module_main)
      if (m == module) return std::static_pointer_cast<const T>(data);
    return nullptr;
  }
};

// A content handler that a module may choose per request instead of the location's own (Lua
// route() naming an upstream block), by name.
using RouteTargets = std::map<std::string, HookEntry, std::less<>>;

// Handed to modules while compiling.
struct CompileContext {
  RuntimeConfig& config;
  // The config serving now when this one is compiled for a reload (else null): what must live
  // across reloads (the isolate runtime) is taken from it.
  const RuntimeConfig* previous = nullptr;
  std::string error;  // "file:line: message" of the first error

  // Records an error at `node` and returns false (or nullptr, by conversion in callers).
  bool fail(const config::Node& node, std::string_view message);
  // Every content handler another module may route a request to at `scope`, from every module's
  // Module::routeTargets (upstream blocks). Empty with `error` set when one fails to compile.
  RouteTargets routeTargets(const Scope& scope);
  // Resolves a relative path against the prefix.
  std::string resolvePath(const std::string& path) const;

  // The first argument of `node` as a value; false with an error naming the directive when it is
  // malformed or out of range.
  bool sizeArg(const config::Node& node, uint64_t& out, uint64_t min = 0);
  bool durationArg(const config::Node& node, milliseconds& out, bool positive = false);
  bool countArg(const config::Node& node, uint64_t min, uint64_t max, uint64_t& out);
  bool flagArg(const config::Node& node, bool& out);  // "on" | "off"
};

}  // namespace subgate
