// The modules of this build, listed explicitly (no static self-registration: linkers drop it
// from static libraries). The order is the order hooks run in within each phase.
#include "core/pipeline/module.h"
#include "modules/access_log/access_log_module.h"
#include "modules/error_header/error_header_module.h"
#include "modules/forwarded_host/forwarded_host_module.h"
#include "modules/headers/headers_module.h"
#include "modules/isolates/isolates_module.h"
#include "modules/lua/lua_module.h"
#include "modules/metrics/metrics_module.h"
#include "modules/origin_local/origin_local_module.h"
#include "modules/return/return_module.h"
#include "modules/status/status_module.h"
#include "modules/subhost_auth/subhost_auth_module.h"
#include "modules/timeout/timeout_module.h"
#include "modules/upstream/upstream_module.h"

namespace subgate {

std::span<const Module* const> allModules() {
  static const ForwardedHostModule forwarded_host;
  static const SubhostAuthModule subhost_auth;
  static const LuaModule lua;  // after auth: scripts see req.claims
  static const TimeoutModule timeout;
  static const UpstreamModule upstream;
  static const IsolatesModule isolates;
  static const OriginLocalModule origin_local;
  static const ReturnModule return_module;
  static const StatusModule status;
  static const MetricsModule metrics;
  static const ErrorHeaderModule error_header;
  static const HeadersModule headers;
  static const AccessLogModule access_log;
  static const Module* const kModules[] = {
      &forwarded_host, &subhost_auth, &lua,     &timeout,      &upstream, &isolates,  &origin_local,
      &return_module,  &status,       &metrics, &error_header, &headers,  &access_log};
  return kModules;
}

}  // namespace subgate
