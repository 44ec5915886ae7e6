// subgate: command line entry point.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/server/server_process.h"
#include "modules/status/status_command.h"
#include "modules/subhost_auth/token_command.h"

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: subgate [-c FILE] [-p PREFIX] [-t] [-v]\n"
      "       subgate [-c FILE] token --subhoster NAME --deployment ID [--rpc-root URL] [--ttl "
      "15m]\n"
      "       subgate status [URL]   print a status; location (default "
      "http://127.0.0.1:8081/status)\n"
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
  int token_at = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "token") {
      token_at = i + 1;
      break;
    }
    if (arg == "status") return subgate::runStatusCommand(argc - i - 1, argv + i + 1);
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
  if (token_at) return subgate::runTokenCommand(options, argc - token_at, argv + token_at);
  return test_only ? subgate::checkConfig(options) : subgate::runServer(options);
}
