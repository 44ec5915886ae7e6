#include "modules/origin_local/origin_local_module.h"

#include <jansson.h>
#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "core/bundle/eszip.h"
#include "core/bundle/eszip_writer.h"
#include "core/files/read_file.h"
#include "core/jwt/jwt.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"
#include "modules/origin_local/origin_local_events.h"

namespace subgate {
namespace {

struct OriginLocalConf final : ModuleConf {
  std::string dir;
  std::shared_ptr<const SubhosterTable> subhosters;
  std::shared_ptr<OriginEventStore> events;  // POST/GET .../events (origin_local_events.h)
};

constexpr DirectiveSpec kDirectives[] = {
    {"origin_local", kServerContext | kLocationContext, 1, 1, false, false, true},
};

// A deployment's file; false when it is missing, unreadable or not a regular file (a FIFO
// named main.ts must not block the worker serving /boot).
bool readFile(const std::string& path, std::string& out) {
  std::string error;
  return files::readRegularFile(path, out, error);
}

bool isDeploymentId(std::string_view id) {
  if (id.empty() || id.size() > 128 || id[0] == '.') return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.'))
      return false;
  return true;
}

void answer(Request& req, int status, std::string body) {
  LocalReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.body += '\n';
  req.respond(std::move(reply));
}

// x-deno-config for a deployment folder: entrypoint, and envs / permissions from config.json.
bool buildDenoConfig(const std::string& folder, const std::string& entry, std::string& out,
                     std::string& error) {
  json_t* config = json_object();
  json_object_set_new(config, "entrypoint", json_string(("file:///src/" + entry).c_str()));
  std::string text;
  if (readFile(folder + "/config.json", text)) {
    json_error_t json_error;
    json_t* user = json_loadb(text.data(), text.size(), 0, &json_error);
    if (!json_is_object(user)) {
      error = folder + "/config.json is not a JSON object: " + json_error.text;
      json_decref(user);
      json_decref(config);
      return false;
    }
    for (const char* field : {"envs", "permissions"})
      if (json_t* value = json_object_get(user, field)) json_object_set(config, field, value);
    json_decref(user);
  }
  char* dumped = json_dumps(config, JSON_COMPACT);
  out = dumped ? dumped : "{}";
  free(dumped);
  json_decref(config);
  return true;
}

// The module files of a deployment folder, relative to it ("lib/greet.ts"), config.json and
// dotfiles aside; bounded (kMaxModules files, kMaxDepth folders down), links not followed.
constexpr size_t kMaxModules = 1000;
constexpr int kMaxDepth = 8;

bool isModuleFile(const std::filesystem::path& path) {
  static constexpr std::string_view kExtensions[] = {".ts",  ".js",  ".mjs", ".mts",  ".tsx",
                                                     ".jsx", ".cjs", ".cts", ".json", ".wasm"};
  const std::string extension = path.extension().string();
  for (std::string_view known : kExtensions)
    if (extension == known) return true;
  return false;
}

std::vector<std::string> moduleFiles(const std::string& folder) {
  std::vector<std::string> files;
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(folder, ec), end;
  for (; !ec && it != end && files.size() < kMaxModules; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with(".") || it.depth() >= kMaxDepth) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec) || it->is_symlink(ec) || !isModuleFile(it->path())) continue;
    std::string relative = std::filesystem::relative(it->path(), folder, ec).generic_string();
    if (!ec && relative != "config.json") files.push_back(std::move(relative));
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The folder as an ESZIP of every module file under file:///src/ (TypeScript as it is: subgate
// transpiles when it loads), or "" when a file cannot be read.
std::string folderEszip(const std::string& folder, const std::vector<std::string>& files) {
  bundle::Eszip eszip;
  for (const std::string& relative : files) {
    bundle::EszipModule module;
    module.specifier = "file:///src/" + relative;
    module.kind = relative.ends_with(".json")   ? bundle::EszipModuleKind::kJson
                  : relative.ends_with(".wasm") ? bundle::EszipModuleKind::kWasm
                                                : bundle::EszipModuleKind::kJavaScript;
    if (!readFile(folder + "/" + relative, module.source)) return {};
    eszip.modules.push_back(std::move(module));
  }
  return bundle::writeEszip(eszip);
}

}  // namespace

std::span<const DirectiveSpec> OriginLocalModule::directives() const { return kDirectives; }

std::shared_ptr<const ModuleConf> OriginLocalModule::compileLocation(const Scope& scope,
                                                                     CompileContext& ctx) const {
  const config::Node* node = scope.find("origin_local");
  if (!node) return nullptr;
  auto conf = std::make_shared<OriginLocalConf>();
  conf->dir = ctx.resolvePath(node->args[0]);
  struct stat st;
  if (stat(conf->dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    ctx.fail(*node, "origin_local folder \"" + conf->dir + "\" does not exist");
    return nullptr;
  }
  conf->subhosters = ctx.config.subhosters;
  conf->events = std::make_shared<OriginEventStore>();
  if (conf->subhosters->empty()) {
    ctx.fail(*node,
             "origin_local needs a subhoster block: /boot tokens are verified with its secret");
    return nullptr;
  }
  return conf;
}

void OriginLocalModule::content(Request& req, const ModuleConf& module_conf) const {
  const auto& conf = static_cast<const OriginLocalConf&>(module_conf);
  if (req.path().ends_with("/events")) return serveOriginEvents(req, conf.subhosters, conf.events);
  if (!req.path().ends_with("/boot"))
    return answer(req, 404, "not found: this origin serves GET .../boot and .../events");
  if (req.method() != "GET" && req.method() != "HEAD")
    return answer(req, 405, "method not allowed");
  std::string_view id = queryParam(req.query(), "deployment_id");
  if (!isDeploymentId(id)) return answer(req, 400, "missing or malformed deployment_id");

  std::string_view authorization = req.header("authorization");
  if (!authorization.starts_with("Bearer ")) return answer(req, 401, "missing bearer token");
  std::string_view token = authorization.substr(7);
  std::string error;
  auto header = jwt::peekHeader(token, error);
  if (!header) return answer(req, 401, "invalid token: " + error);
  auto subhoster = conf.subhosters->find(header->kid);
  if (subhoster == conf.subhosters->end()) return answer(req, 401, "invalid token: unknown kid");
  jwt::VerifyOptions options;
  options.now = static_cast<int64_t>(std::time(nullptr));
  jwt::Claims claims;
  if (!jwt::verifyHs256(token, subhoster->second->secret, options, jwt::VerifyMode::kBoot, claims,
                        error))
    return answer(req, 401, "invalid token: " + error);
  if (claims.deployment_id != id) return answer(req, 403, "the token is for another deployment");

  const std::string folder = conf.dir + "/" + std::string(id);
  std::string code;
  std::string entry;
  for (const char* name : {"main.ts", "main.js"}) {
    if (readFile(folder + "/" + name, code)) {
      entry = name;
      break;
    }
  }
  if (entry.empty()) return answer(req, 404, "no deployment \"" + std::string(id) + "\"");
  std::string deno_config;
  if (!buildDenoConfig(folder, entry, deno_config, error)) return answer(req, 500, error);

  LocalReply reply;
  reply.status = 200;
  // A folder of several modules is served as one ESZIP (subgate tells it by its magic).
  const std::vector<std::string> files = moduleFiles(folder);
  if (files.size() > 1) {
    reply.body = folderEszip(folder, files);
    if (reply.body.empty()) return answer(req, 500, "cannot read the modules of " + folder);
    reply.content_type = "application/vnd.denoland.eszip";
  } else {
    reply.body = std::move(code);
    reply.content_type = "application/typescript; charset=utf-8";
  }
  reply.headers.emplace_back("x-deno-config", std::move(deno_config));
  req.respond(std::move(reply));
}

}  // namespace subgate
