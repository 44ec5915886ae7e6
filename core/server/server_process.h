// The main thread: loads the config, opens the listening sockets (one SO_REUSEPORT socket per
// worker per address), starts the workers, then waits for signals: SIGHUP reloads, SIGTERM and
// SIGINT drain and exit, SIGQUIT exits at once.
#pragma once

#include <memory>
#include <string>

namespace subgate {

struct RuntimeConfig;

struct ServerOptions {
  std::string config_path;  // empty: the embedded default config
  std::string prefix;       // directory relative paths resolve against
};

// Loads the config the options name (the embedded default without -c).
std::shared_ptr<const RuntimeConfig> loadServerConfig(const ServerOptions& options,
                                                      std::string& err);

// Returns the process exit code.
int runServer(const ServerOptions& options);

// `-t`: loads and checks the config; prints the result; returns the exit code.
int checkConfig(const ServerOptions& options);

}  // namespace subgate
