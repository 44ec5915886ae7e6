#include "modules/subhost_auth/token_command.h"

#include <jansson.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "core/config/config_ast.h"
#include "core/jwt/jwt.h"
#include "core/pipeline/config_model.h"
#include "modules/subhost_auth/subhost_auth_module.h"

namespace subgate {

int runTokenCommand(const ServerOptions& options, int argc, char** args) {
  std::string subhoster_name, deployment, rpc_root, ttl_text = "15m";
  for (int i = 0; i < argc; ++i) {
    std::string arg = args[i];
    std::string* target = arg == "--subhoster"    ? &subhoster_name
                          : arg == "--deployment" ? &deployment
                          : arg == "--rpc-root"   ? &rpc_root
                          : arg == "--ttl"        ? &ttl_text
                                                  : nullptr;
    if (!target || i + 1 >= argc) {
      std::fprintf(stderr,
                   "usage: subgate [-c FILE] token --subhoster NAME --deployment ID [--rpc-root "
                   "URL] [--ttl 15m]\n");
      return 2;
    }
    *target = args[++i];
  }
  if (subhoster_name.empty() || deployment.empty()) {
    std::fprintf(stderr, "subgate token: --subhoster and --deployment are required\n");
    return 2;
  }
  auto ttl = config::parseDuration(ttl_text);
  if (!ttl || ttl->count() < 1000) {
    std::fprintf(stderr, "subgate token: invalid --ttl \"%s\"\n", ttl_text.c_str());
    return 2;
  }
  std::string err;
  auto config = loadServerConfig(options, err);
  if (!config) {
    std::fprintf(stderr, "subgate token: %s\n", err.c_str());
    return 1;
  }
  const auto& subhosters = config->subhosters;
  if (!subhosters->contains(subhoster_name)) {
    std::fprintf(stderr, "subgate token: no subhoster \"%s\" in the configuration\n",
                 subhoster_name.c_str());
    return 1;
  }
  const Subhoster& subhoster = *subhosters->at(subhoster_name);
  if (rpc_root.empty()) {
    if (subhoster.rpc_root_allow.empty()) {
      std::fprintf(stderr,
                   "subgate token: subhoster \"%s\" has no rpc_root_allow; pass --rpc-root\n",
                   subhoster_name.c_str());
      return 1;
    }
    rpc_root = subhoster.rpc_root_allow.front();
  }
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  json_t* claims = json_object();
  json_object_set_new(claims, "iat", json_integer(now));
  json_object_set_new(
      claims, "exp",
      json_integer(now + std::chrono::duration_cast<std::chrono::seconds>(*ttl).count()));
  json_object_set_new(claims, "deployment_id", json_string(deployment.c_str()));
  json_object_set_new(claims, "rpc_root", json_string(rpc_root.c_str()));
  char* text = json_dumps(claims, JSON_COMPACT);
  json_decref(claims);
  std::printf("%s\n", jwt::signHs256(subhoster.name, text ? text : "{}", subhoster.secret).c_str());
  free(text);
  return 0;
}

}  // namespace subgate
