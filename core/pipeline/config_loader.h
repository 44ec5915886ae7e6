// Turns a config file (or the embedded default) into a RuntimeConfig: validates every
// directive against the specs of the core and of every module (context, argument count,
// duplicates), compiles core settings, then lets each module compile its own.
// Runs on the main thread (at startup, `-t` and SIGHUP); never on a worker.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/pipeline/config_model.h"

namespace subgate {

struct ConfigSource {
  std::string path;       // file to read; empty = use `text`
  std::string_view text;  // embedded config text when path is empty
  std::string prefix;     // directory relative paths resolve against
  // The config serving now, when this load is a reload (CompileContext::previous).
  const RuntimeConfig* previous = nullptr;
};

// Returns nullptr and sets `err` to "file:line: message" when the config is invalid.
std::shared_ptr<const RuntimeConfig> loadConfig(const ConfigSource& source, std::string& err);

// Where the command line says the config is (-c, -p).
struct ServerOptions {
  std::string config_path;  // empty: the embedded default config (conf/subgate.conf)
  std::string prefix;       // directory relative paths resolve against
};

// Loads the config the options name (the embedded default without -c).
// `previous`: the config serving now, when this load is a reload.
std::shared_ptr<const RuntimeConfig> loadServerConfig(const ServerOptions& options,
                                                      std::string& err,
                                                      const RuntimeConfig* previous = nullptr);

}  // namespace subgate
