// `subgate status [URL]`: fetches the JSON of a `status;` location (default: the embedded
// config's, http://127.0.0.1:8081/status) and prints it indented: the isolate pool and the
// cluster counters (docs/cluster.md).
#pragma once

namespace subgate {

struct ServerOptions;

// `args` are the arguments after "status". Returns the process exit code: 0 on a 200 with JSON,
// 1 when the server cannot be reached or answers otherwise, 2 on bad arguments.
int runStatusCommand(const ServerOptions& options, int argc, char** args);

}  // namespace subgate
