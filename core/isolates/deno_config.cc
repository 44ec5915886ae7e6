#include "core/isolates/deno_config.h"

#include <jansson.h>

#include <cstdlib>

namespace subgate {
namespace {

// The file name the bundle is saved under: the entrypoint's last path segment when it is a
// plain script name, else main.ts. TypeScript or JavaScript is decided by the extension.
std::string entryFileName(std::string_view entrypoint) {
  std::string_view name = entrypoint.substr(entrypoint.rfind('/') + 1);
  static constexpr std::string_view kExtensions[] = {".ts", ".js", ".mjs", ".mts", ".tsx", ".jsx"};
  bool known = false;
  for (std::string_view ext : kExtensions)
    known = known || (name.size() > ext.size() && name.ends_with(ext));
  if (!known || name.size() > 100 || name[0] == '.') return "main.ts";  // no hidden or dot names
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return "main.ts";
  return std::string(name);
}

struct JsonRef {
  json_t* value;
  explicit JsonRef(json_t* v) : value(v) {}
  ~JsonRef() { json_decref(value); }
};

}  // namespace

bool parseDenoConfig(std::string_view value, DeploymentCode& code, std::string& error) {
  json_error_t json_error;
  JsonRef root(json_loadb(value.data(), value.size(), JSON_REJECT_DUPLICATES, &json_error));
  if (!root.value) {
    error = std::string("x-deno-config is not valid JSON: ") + json_error.text;
    return false;
  }
  if (!json_is_object(root.value)) {
    error = "x-deno-config is not a JSON object";
    return false;
  }
  if (json_object_get(root.value, "layers") || json_object_get(root.value, "inline_layer")) {
    error =
        "x-deno-config describes an ESZIP bundle (layers / inline_layer), which subgate does not "
        "load yet; send the code as one module";
    return false;
  }
  json_t* entrypoint = json_object_get(root.value, "entrypoint");
  if (entrypoint && !json_is_string(entrypoint)) {
    error = "x-deno-config field \"entrypoint\" must be a string";
    return false;
  }
  code.entrypoint = entrypoint ? json_string_value(entrypoint) : "file:///src/main.ts";
  code.entry_file = entryFileName(code.entrypoint);

  json_t* envs = json_object_get(root.value, "envs");
  if (envs && !json_is_null(envs)) {
    if (!json_is_object(envs)) {
      error = "x-deno-config field \"envs\" must be an object of strings";
      return false;
    }
    const char* key;
    json_t* item;
    json_object_foreach(envs, key, item) {
      if (!json_is_string(item)) {
        error = std::string("x-deno-config field \"envs\": the value of \"") + key +
                "\" is not a string";
        return false;
      }
      if (!*key || std::string_view(key).find_first_of("=\0", 0, 2) != std::string_view::npos) {
        error = std::string("x-deno-config field \"envs\": \"") + key +
                "\" is not a valid variable name";
        return false;
      }
    }
    char* text = json_dumps(envs, JSON_COMPACT);
    code.envs_json = text ? text : "{}";
    free(text);
  }

  json_t* permissions = json_object_get(root.value, "permissions");
  code.net = DeploymentCode::Net::kAll;
  if (permissions && !json_is_null(permissions)) {
    if (!json_is_object(permissions)) {
      error = "x-deno-config field \"permissions\" must be an object";
      return false;
    }
    json_t* net = json_object_get(permissions, "net");
    if (json_is_boolean(net)) {
      code.net = json_is_true(net) ? DeploymentCode::Net::kAll : DeploymentCode::Net::kNone;
    } else if (json_is_array(net)) {
      code.net = DeploymentCode::Net::kList;
      size_t index;
      json_t* item;
      json_array_foreach(net, index, item) {
        const char* host = json_string_value(item);
        if (!host || !*host ||
            std::string_view(host).find_first_of(", \t") != std::string_view::npos) {
          error =
              "x-deno-config field \"permissions.net\" must be true, false or a list of "
              "\"host[:port]\" strings";
          return false;
        }
        code.net_allow.emplace_back(host);
      }
      if (code.net_allow.empty()) code.net = DeploymentCode::Net::kNone;
    } else if (net && !json_is_null(net)) {
      error =
          "x-deno-config field \"permissions.net\" must be true, false or a list of "
          "\"host[:port]\" strings";
      return false;
    }
  }
  return true;
}

}  // namespace subgate
