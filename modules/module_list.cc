// The modules of this build, listed explicitly (no static self-registration: linkers drop it
// from static libraries). The order is the order hooks run in within each phase.
#include "core/pipeline/module.h"
#include "modules/access_log/access_log_module.h"
#include "modules/error_header/error_header_module.h"
#include "modules/return/return_module.h"
#include "modules/timeout/timeout_module.h"
#include "modules/upstream/upstream_module.h"

namespace subgate {

std::span<const Module* const> allModules() {
  static const TimeoutModule timeout;
  static const UpstreamModule upstream;
  static const ReturnModule return_module;
  static const ErrorHeaderModule error_header;
  static const AccessLogModule access_log;
  static const Module* const kModules[] = {&timeout, &upstream, &return_module, &error_header,
                                           &access_log};
  return kModules;
}

}  // namespace subgate
