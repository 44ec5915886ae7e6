// The main thread: loads the config, opens the listening sockets (one SO_REUSEPORT socket per
// worker per address), starts the workers, then waits for signals: SIGHUP reloads, SIGTERM and
// SIGINT drain and exit, SIGQUIT exits at once.
#pragma once

namespace subgate {

struct ServerOptions;  // core/pipeline/config_loader.h

// Returns the process exit code.
int runServer(const ServerOptions& options);

// `-t`: loads and checks the config; prints the result; returns the exit code.
int checkConfig(const ServerOptions& options);

}  // namespace subgate
