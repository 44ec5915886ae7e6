// subgate: command line entry point. Runs the server, checks a config, or hands the rest of the
// command line to a module's subcommand (`subgate token ...`, `subgate status ...`): main knows
// the modules only through the module list.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/pipeline/config_loader.h"
#include "core/pipeline/module.h"
#include "core/server/server_process.h"

namespace {

const subgate::SubcommandSpec* findSubcommand(std::string_view name) {
  for (const subgate::Module* module : subgate::allModules())
    for (const subgate::SubcommandSpec& command : module->subcommands())
      if (command.name == name) return &command;
  return nullptr;
}

void usage(FILE* out) {
  std::fputs("usage: subgate [-c FILE] [-p PREFIX] [-t] [-v]\n", out);
  for (const subgate::Module* module : subgate::allModules()) {
    for (const subgate::SubcommandSpec& command : module->subcommands()) {
      std::fprintf(out, "       subgate [-c FILE] %.*s %.*s\n",
                   static_cast<int>(command.name.size()), command.name.data(),
                   static_cast<int>(command.usage.size()), command.usage.data());
    }
  }
  std::fputs(
      "  -c FILE    configuration file (default: the embedded conf/subgate.conf)\n"
      "  -p PREFIX  directory relative paths in the configuration resolve against (default: cwd)\n"
      "  -t         check the configuration and exit\n"
      "  -v         print the version and exit\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  subgate::ServerOptions options;
  bool test_only = false;
  const subgate::SubcommandSpec* command = nullptr;
  int command_at = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((command = findSubcommand(arg))) {
      command_at = i + 1;
      break;
    }
    if ((arg == "-c" || arg == "-p") && i + 1 < argc) {
      (arg == "-c" ? options.config_path : options.prefix) = argv[++i];
    } else if (arg == "-t") {
      test_only = true;
    } else if (arg == "-v" || arg == "--version") {
      std::printf("subgate 0.1.0\n");
      return 0;
    } else if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "subgate: unknown argument \"%s\"\n", arg.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (options.prefix.empty()) {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd)) options.prefix = cwd;
  }
  if (command) return command->run(options, argc - command_at, argv + command_at);
  return test_only ? subgate::checkConfig(options) : subgate::runServer(options);
}
