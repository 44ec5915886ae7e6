// `subgate token --subhoster NAME --deployment ID [--rpc-root URL] [--ttl 15m]`: prints a relay
// token (the x-deno-subhost value) signed with the secret of a subhoster from the config, so
// that a working request can be made with curl. The rpc_root defaults to the subhoster's first
// rpc_root_allow prefix.
#pragma once

#include "core/pipeline/config_loader.h"

namespace subgate {

// `args` are the arguments after "token". Returns the process exit code.
int runTokenCommand(const ServerOptions& options, int argc, char** args);

}  // namespace subgate
