#include "modules/isolates/isolates_module.h"

#include <event2/event.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "core/config/config_ast.h"
#include "core/http1/http1_parser.h"
#include "core/ingress/cdn_loop.h"
#include "core/ingress/instance_id.h"
#include "core/isolates/isolate_registry.h"
#include "core/log/log.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"
#include "core/server/worker.h"
#include "core/upstream/proxy_session.h"
#include "modules/isolates/runtime_directives.h"

namespace subgate {
namespace {

struct RuntimeMain {
  RuntimeSettings settings;
  bool present = false;       // a runtime block is configured
  mutable bool used = false;  // some location serves isolates
};

struct IsolatesConf final : ModuleConf {
  const Module* module = nullptr;  // whose request slot holds IsolatesRequestState
  uint32_t limit = 50;
  uint32_t loop_limit = 8;  // isolate_loop_limit: isolate hops a request may have made
  ProxyOptions options;
};

// What this module keeps per request (its slot, Request::state).
struct IsolatesRequestState final : ModuleRequestState {
  bool prewarm = false;  // x-deno-prewarm: 1: boot or find the isolate, answer 204
  void clear() override { prewarm = false; }
};

constexpr unsigned kScopes = kMainContext | kServerContext | kLocationContext;
constexpr DirectiveSpec kDirectives[] = {
    {"runtime", kMainContext, 1, 1, true, false, false, kRuntimeContext},
    {"deno_path", kRuntimeContext},
    {"dir", kRuntimeContext},
    {"spare", kRuntimeContext},
    {"idle_timeout", kRuntimeContext},
    {"boot_timeout", kRuntimeContext},
    {"queue_timeout", kRuntimeContext},
    {"stop_timeout", kRuntimeContext},
    {"memory_limit", kRuntimeContext},
    {"v8_flags", kRuntimeContext, 0, -1},
    {"process_memory_limit", kRuntimeContext},
    {"cpu_block_limit", kRuntimeContext},
    {"cpu_limit", kRuntimeContext, 1, 3},
    {"max_files", kRuntimeContext},
    {"max_processes", kRuntimeContext},
    {"max_isolates", kRuntimeContext},
    {"max_isolates_per_deployment", kRuntimeContext},
    {"max_instances_per_deployment", kRuntimeContext},
    {"boot_cache", kRuntimeContext},
    {"boot_failure_backoff", kRuntimeContext, 1, 2},
    {"bundle_max_bytes", kRuntimeContext},
    {"bundle_max_modules", kRuntimeContext},
    {"bundle_max_module_size", kRuntimeContext},
    {"sticky_ttl", kRuntimeContext},
    {"sticky_max", kRuntimeContext},
    {"cluster_timeout", kRuntimeContext},
    {"region", kRuntimeContext},
    {"events_batch_events", kRuntimeContext},
    {"events_batch_bytes", kRuntimeContext},
    {"events_flush_interval", kRuntimeContext},
    {"events_queue", kRuntimeContext},
    {"events_retry", kRuntimeContext, 3, 3},
    {"events_timeout", kRuntimeContext},
    {"events_log_rate", kRuntimeContext, 1, 2},
    {"isolate_log_level", kRuntimeContext},
    {"origin_connect_timeout", kRuntimeContext},
    {"origin_timeout", kRuntimeContext},
    {"origin_max_response", kRuntimeContext},
    {"origin_ca_file", kRuntimeContext},
    {"sandbox", kRuntimeContext},
    {"sandbox_uids", kRuntimeContext, 2, 2},
    {"sandbox_bwrap", kRuntimeContext},
    {"egress_allow", kRuntimeContext, 1, -1, false, true},
    {"egress_deny", kRuntimeContext, 1, -1, false, true},
    {"isolates", kServerContext | kLocationContext, 0, 0, false, false, true},
    {"isolate_limit", kScopes},
    {"isolate_read_timeout", kScopes},
    {"isolate_loop_limit", kScopes},
};

// Where this subgate can be reached, as the harness compares the targets of user code's fetches
// ("host:port", the host lower-cased, IPv6 in brackets; "*:port" for a wildcard listener, which
// the harness matches with any IP literal or localhost): the TCP listeners' addresses, localhost
// for loopback ones, and the server_names of their servers. Only requests to these carry the
// loop markers (x-subgate-loop, CDN-Loop): other hosts never see them.
std::vector<std::string> ownHosts(const RuntimeConfig& config) {
  std::set<std::string> hosts;
  for (const ListenConf& listen : config.listens) {
    const SocketAddress& address = listen.address;
    if (address.family() != AF_INET && address.family() != AF_INET6) continue;
    const size_t colon = address.text.rfind(':');
    const std::string host = address.text.substr(0, colon);
    const std::string port = address.text.substr(colon + 1);
    const bool wildcard = host == "0.0.0.0" || host == "[::]";
    hosts.insert(wildcard ? "*:" + port : address.text);
    if (host.starts_with("127.") || host == "[::1]") hosts.insert("localhost:" + port);
    for (const ServerConf* server : listen.servers)
      for (const std::string& name : server->names) hosts.insert(name + ":" + port);
  }
  return {hosts.begin(), hosts.end()};
}

// The request's CDN-Loop entries (every field of that name).
CdnLoop requestCdnLoop(const Request& req) {
  std::vector<std::string_view> values;
  for (const http1::HeaderField& field : req.head().headers)
    if (http1::iequals(field.name, "cdn-loop")) values.push_back(field.value);
  return parseCdnLoop(values);
}

// Proxies to the one isolate the request holds a lease on; no second try elsewhere.
class IsolateSelector final : public PeerSelector {
 public:
  explicit IsolateSelector(std::unique_ptr<IsolateLease> lease) : lease_(std::move(lease)) {}

  ConnectionPool* next(Request& req) override {
    if (used_) return nullptr;
    used_ = true;
    return &req.worker().pool(lease_->server(), lease_->group());
  }
  ErrorKind noPeerError() const override { return ErrorKind::kDeploymentFailed; }
  ErrorKind mapFailure(ErrorKind kind, std::string& message) override {
    if (kind != ErrorKind::kUpstreamError) return kind;
    return lease_->registry().failureOf(lease_->isolate(), message);
  }

 private:
  std::unique_ptr<IsolateLease> lease_;
  bool used_ = false;
};

void serveWithLease(Request& req, const IsolatesConf& conf, std::unique_ptr<IsolateLease> lease) {
  char name[32] = "iso-";
  auto [end, ec] = std::to_chars(name + 4, name + sizeof(name), lease->isolateId());
  req.setIsolateName(std::string_view(name, static_cast<size_t>(end - name)));
  if (req.state<IsolatesRequestState>(*conf.module).prewarm) {
    LocalReply reply;
    reply.status = 204;
    reply.content_type.clear();
    req.respond(std::move(reply));
    return;
  }
  auto session = std::make_unique<ProxySession>(
      req, std::make_unique<IsolateSelector>(std::move(lease)), conf.options);
  ProxySession* raw = session.get();
  req.setTask(std::move(session));
  raw->start();
}

// A request waiting for its isolate to boot, or for room in a full pool.
class IsolateWait final : public RequestTask {
 public:
  IsolateWait(Request& req, std::shared_ptr<bool> alive) : req_(req), alive_(std::move(alive)) {}

  ~IsolateWait() override {
    *alive_ = false;
    if (timer_) event_free(timer_);
    if (waiting_) req_.config().isolates->cancel(ticket_);
  }

  void begin(uint64_t ticket, bool queued) {
    ticket_ = ticket;
    waiting_ = true;
    const SteadyTime now = steadyNow();
    started_ = now;
    std::optional<SteadyTime> due = req_.responseDeadline();
    if (queued) {
      const SteadyTime queue_due = now + req_.config().isolates->queueTimeout();
      if (!due || queue_due < *due) {
        due = queue_due;
        queue_timer_ = true;
      }
    }
    if (!due) return;
    timer_ = evtimer_new(req_.worker().base(), onTimer, this);
    auto wait = std::chrono::duration_cast<std::chrono::microseconds>(
        std::max(*due - now, SteadyTime::duration::zero()));
    timeval tv{static_cast<time_t>(wait.count() / 1000000),
               static_cast<suseconds_t>(wait.count() % 1000000)};
    evtimer_add(timer_, &tv);
  }

  // The registry's answer, on this worker. Replaces this task (destroying it) on success.
  static void granted(Request& req, const IsolatesConf& conf, IsolateGrant grant) {
    auto* wait = static_cast<IsolateWait*>(req.task());
    wait->waiting_ = false;
    req.setIsolateWait(steadyNow() - wait->started_);
    if (!grant.lease) {
      req.fail(grant.error, grant.message);
      return;
    }
    serveWithLease(req, conf, std::move(grant.lease));
  }

 private:
  static void onTimer(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<IsolateWait*>(arg);
    // A grant already on its way wins over the timeout.
    if (!self->req_.config().isolates->cancel(self->ticket_)) return;
    self->waiting_ = false;
    self->req_.setIsolateWait(steadyNow() - self->started_);  // waited in vain, still waited
    // Which deadline the timer was armed for decides the error; comparing clocks here would
    // not, because libevent measures the wait from its cached loop time.
    if (self->queue_timer_) {
      self->req_.fail(ErrorKind::kCapacityExceeded,
                      "every isolate this deployment may use is at its limit and the queue wait "
                      "(queue_timeout) expired");
    } else {
      self->req_.fail(ErrorKind::kRequestTimedOut,
                      "the isolate did not start before the request deadline");
    }
  }

  Request& req_;
  std::shared_ptr<bool> alive_;
  event* timer_ = nullptr;
  uint64_t ticket_ = 0;
  bool waiting_ = false;
  bool queue_timer_ = false;  // the timer is the queue_timeout, not the request deadline
  SteadyTime started_{};      // when the request began to wait (Request::isolateWait)
};

constexpr std::string_view kUidHeader = "x-subgate-uid";

// identify()'s answer as a header value: bytes outside printable ASCII, '%' and spaces
// percent-encoded (the harness decodes it as UTF-8).
std::string uidHeaderValue(std::string_view identity) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(identity.size());
  for (unsigned char c : identity) {
    if (c > 0x20 && c < 0x7f && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

std::span<const DirectiveSpec> IsolatesModule::directives() const { return kDirectives; }

bool IsolatesModule::compileMain(const config::Node& root, CompileContext& ctx) const {
  auto main = std::make_shared<RuntimeMain>();
  for (const config::Node& node : root.children) {
    if (node.name != "runtime") continue;
    main->present = true;
    if (!compileRuntime(node, ctx, main->settings)) return false;
  }
  if (main->settings.deno_path.empty())
    main->settings.deno_path = defaultDenoPath(ctx.config.prefix);
  ctx.config.module_main.emplace_back(this, main);
  // The runtime and its isolates live on across reloads: the next config takes them over.
  ctx.config.isolates =
      ctx.previous && ctx.previous->isolates ? ctx.previous->isolates : IsolateRegistry::create();
  return true;
}

std::shared_ptr<const ModuleConf> IsolatesModule::compileLocation(const Scope& scope,
                                                                  CompileContext& ctx) const {
  if (!scope.find("isolates")) return nullptr;
  ctx.config.mainOf<RuntimeMain>(this)->used = true;
  auto conf = std::make_shared<IsolatesConf>();
  conf->module = this;
  conf->options.read_timeout = std::chrono::seconds(300);
  conf->options.send_timeout = std::chrono::seconds(300);
  if (const config::Node* node = scope.find("isolate_limit")) {
    uint64_t n = 0;
    if (!ctx.countArg(*node, 1, 1000000, n)) return nullptr;
    conf->limit = static_cast<uint32_t>(n);
  }
  if (const config::Node* node = scope.find("isolate_read_timeout")) {
    if (!ctx.durationArg(*node, conf->options.read_timeout, true)) return nullptr;
  }
  if (const config::Node* node = scope.find("isolate_loop_limit")) {
    uint64_t n = 0;
    if (!ctx.countArg(*node, 1, 1000, n)) return nullptr;
    conf->loop_limit = static_cast<uint32_t>(n);
  }
  return conf;
}

bool IsolatesModule::activate(const RuntimeConfig& config, std::string& error) const {
  auto main = config.mainOf<RuntimeMain>(this);
  if (!main || (!main->present && !main->used)) return true;
  RuntimeSettings settings = main->settings;
  settings.own_hosts = ownHosts(config);
  return config.isolates->configure(settings, error);
}

void IsolatesModule::deactivate(const RuntimeConfig& config) const { config.isolates->shutdown(); }

void IsolatesModule::content(Request& req, const ModuleConf& module_conf) const {
  const auto& conf = static_cast<const IsolatesConf&>(module_conf);
  RouteDecision& decision = req.route();
  if (!decision.token) {
    req.fail(ErrorKind::kInternalServerError,
             "this location serves isolates but no deployment was chosen (enable subhost_auth)");
    return;
  }
  if (!decision.instance_routed) {
    auto instance = requestInstanceId(req.header("x-deno-isolate-instance-id"), req.query());
    if (!instance) {
      req.fail(ErrorKind::kBadRequest,
               "the isolate instance id must be 1 to 256 bytes (percent-encoded in the query)");
      return;
    }
    decision.instance_id = std::move(*instance);
  }
  // Loops through other deployments: the count of isolate hops the request made (CDN-Loop,
  // core/ingress/cdn_loop.h), one more on the way in.
  const CdnLoop loop = requestCdnLoop(req);
  if (loop.hops >= conf.loop_limit) {
    req.fail(ErrorKind::kLoopDetected,
             "the request already went through " + std::to_string(loop.hops) +
                 " isolates of this subgate (isolate_loop_limit " +
                 std::to_string(conf.loop_limit) + "): a loop between deployments");
    return;
  }
  decision.drop_headers.push_back("cdn-loop");
  decision.add_headers.emplace_back("cdn-loop", cdnLoopValue(loop, loop.hops + 1));
  req.state<IsolatesRequestState>(*this).prewarm = req.header("x-deno-prewarm") == "1";
  // Internal markers never reach user code. x-subgate-uid names the connection's identifier
  // in the cluster (cluster_hub.h): only subgate may set it, from identify().
  decision.drop_headers.push_back("x-subgate-loop");
  decision.drop_headers.push_back("x-deno-prewarm");
  decision.drop_headers.emplace_back(kUidHeader);
  if (!decision.identity.empty())
    decision.add_headers.emplace_back(kUidHeader, uidHeaderValue(decision.identity));
  if (decision.forwarded_host.empty()) {
    // No relay in front (forwarded_host off, e.g. the demo listener): the scheme user code
    // sees is the one the client used on this listener.
    decision.drop_headers.push_back("x-forwarded-proto");
    decision.add_headers.emplace_back("x-forwarded-proto", req.secure() ? "https" : "http");
  }

  IsolateRequest request;
  request.token = decision.token.get();
  request.instance_id = decision.instance_id;
  request.limit = conf.limit;
  request.loop_tag = req.header("x-subgate-loop");
  request.identity = decision.identity;

  IsolateRegistry& registry = *req.config().isolates;
  if (std::optional<IsolateGrant> warm = registry.acquireWarm(request)) {
    if (warm->lease) {
      serveWithLease(req, conf, std::move(warm->lease));
    } else {
      req.fail(warm->error, warm->message);
    }
    return;
  }
  // Not warm: the registry may answer later, on this worker, by when the request may be gone.
  auto alive = std::make_shared<bool>(true);
  Request* req_ptr = &req;
  const IsolatesConf* conf_ptr = &conf;
  auto callback = [weak = std::weak_ptr<bool>(alive), req_ptr, conf_ptr](IsolateGrant grant) {
    // The request may have ended (client gone) while the boot ran: the grant's lease is then
    // simply dropped, which returns the slot.
    auto live = weak.lock();
    if (!live || !*live) return;
    IsolateWait::granted(*req_ptr, *conf_ptr, std::move(grant));
  };
  IsolateRegistry::Placement placed = registry.acquire(request, &req.worker(), std::move(callback));
  if (placed.grant.lease) {
    serveWithLease(req, conf, std::move(placed.grant.lease));
    return;
  }
  if (!placed.waiting) {
    req.fail(placed.grant.error, placed.grant.message);
    return;
  }
  auto wait = std::make_unique<IsolateWait>(req, std::move(alive));
  IsolateWait* raw = wait.get();
  req.setTask(std::move(wait));
  raw->begin(placed.ticket, placed.queued);
}

}  // namespace subgate
