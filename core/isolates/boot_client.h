// Fetches a deployment from its origin (protocol.md §3): `GET {rpc_root}boot?deployment_id=ID`
// with a short-lived HS256 bearer token signed with the subhoster's secret, and turns the
// answer into DeploymentCode or an error of the table (INTERNAL_BOOT_RPC_ERROR,
// ORIGIN_BOOT_RPC_ERROR, DEPLOYMENT_NOT_FOUND, ORIGIN_MISSING_XDENO_CONFIG,
// ORIGIN_INVALID_XDENO_CONFIG).
//
// Threading: blocking; called on a boot thread, never on a worker.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error/error_kind.h"
#include "core/http_client/http_client.h"
#include "core/ingress/ingress.h"
#include "core/isolates/code_assembly.h"
#include "core/isolates/deno_config.h"

namespace subgate {

struct BootOutcome {
  std::shared_ptr<const DeploymentCode> code;  // set on success
  ErrorKind error = ErrorKind::kInternalBootRpcError;
  std::string message;
};

// The code is assembled from the body and the layers (code_assembly.h): a layer other than the
// inline one is fetched with `GET {rpc_root}layer?deployment_id=ID&layer_id=LAYER` and the same
// token, a failed call giving INTERNAL_BOOT_RPC_ERROR and a non-2xx answer
// ORIGIN_BOOT_RPC_ERROR; what the code holds may give ORIGIN_INVALID_BUNDLE.
BootOutcome fetchDeployment(const Subhoster& subhoster, std::string_view rpc_root,
                            std::string_view deployment_id, const HttpClientOptions& options,
                            const BundleLimits& limits);

}  // namespace subgate
