#include "core/isolates/deno_config.h"

#include <jansson.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "core/isolates/module_path.h"

namespace subgate {
namespace {

// Deno tells a local module's language by its extension.
bool hasScriptExtension(std::string_view path) {
  static constexpr std::string_view kExtensions[] = {".ts",  ".js",  ".mjs", ".mts",
                                                     ".tsx", ".jsx", ".cjs", ".cts"};
  for (std::string_view ext : kExtensions)
    if (path.size() > ext.size() && path.ends_with(ext)) return true;
  return false;
}

struct JsonRef {
  json_t* value;
  explicit JsonRef(json_t* v) : value(v) {}
  ~JsonRef() { json_decref(value); }
};

// A layer id goes into a URL's query and into messages: printable ASCII, bounded.
bool validLayerId(const char* id) {
  const std::string_view text = id ? id : "";
  if (text.empty() || text.size() > 256) return false;
  for (char c : text)
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return false;
  return true;
}

bool parseLayers(json_t* root, DeploymentCode& code, std::string& error) {
  json_t* layers = json_object_get(root, "layers");
  json_t* inline_layer = json_object_get(root, "inline_layer");
  if (inline_layer && !json_is_null(inline_layer)) {
    if (!json_is_string(inline_layer) || !validLayerId(json_string_value(inline_layer))) {
      error =
          "x-deno-config field \"inline_layer\" must be a layer id (1 to 256 printable characters)";
      return false;
    }
    code.inline_layer = json_string_value(inline_layer);
  }
  if (!layers || json_is_null(layers)) {
    if (!code.inline_layer.empty()) {
      error = "x-deno-config field \"inline_layer\" names a layer, but there are no \"layers\"";
      return false;
    }
    return true;
  }
  if (!json_is_array(layers) || json_array_size(layers) == 0 ||
      json_array_size(layers) > kMaxLayers) {
    error = "x-deno-config field \"layers\" must be a list of 1 to " + std::to_string(kMaxLayers) +
            " layers";
    return false;
  }
  size_t index;
  json_t* item;
  json_array_foreach(layers, index, item) {
    const std::string where = "x-deno-config field \"layers\"[" + std::to_string(index) + "]";
    const char* kind = json_string_value(json_object_get(item, "kind"));
    const char* id = json_string_value(json_object_get(item, "id"));
    json_t* specifier = json_object_get(item, "specifier");
    CodeLayer layer;
    if (!json_is_object(item) || !kind) {
      error = where + " must be an object with a \"kind\" and an \"id\"";
      return false;
    }
    if (std::string_view(kind) == "eszip") {
      layer.kind = CodeLayer::Kind::kEszip;
    } else if (std::string_view(kind) == "bundle") {
      layer.kind = CodeLayer::Kind::kBundle;
    } else {
      error =
          where + ": unknown kind \"" + std::string(kind).substr(0, 64) + "\" (eszip or bundle)";
      return false;
    }
    if (!validLayerId(id)) {
      error = where + ": \"id\" must be 1 to 256 printable characters";
      return false;
    }
    layer.id = id;
    for (const CodeLayer& other : code.layers) {
      if (other.id == layer.id) {
        error = where + ": the id \"" + layer.id + "\" is used twice";
        return false;
      }
    }
    if (specifier && !json_is_null(specifier)) {
      if (!json_is_string(specifier) || layer.kind != CodeLayer::Kind::kBundle) {
        error = where + ": \"specifier\" must be a string, and only a bundle layer has one";
        return false;
      }
      layer.specifier = json_string_value(specifier);
    }
    code.layers.push_back(std::move(layer));
  }
  if (!code.inline_layer.empty() &&
      std::none_of(code.layers.begin(), code.layers.end(),
                   [&](const CodeLayer& layer) { return layer.id == code.inline_layer; })) {
    error = "x-deno-config field \"inline_layer\" names \"" + code.inline_layer +
            "\", which is not one of the layers";
    return false;
  }
  return true;
}

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
  if (!parseLayers(root.value, code, error)) return false;
  json_t* entrypoint = json_object_get(root.value, "entrypoint");
  if (entrypoint && !json_is_string(entrypoint)) {
    error = "x-deno-config field \"entrypoint\" must be a string";
    return false;
  }
  code.entrypoint = entrypoint ? json_string_value(entrypoint) : "file:///src/main.ts";
  std::string path_error;
  std::optional<std::string> path = localModulePath(code.entrypoint, path_error);
  if (!path) {
    error = "x-deno-config field \"entrypoint\": " + path_error;
    return false;
  }
  if (!hasScriptExtension(*path)) {
    error =
        "x-deno-config field \"entrypoint\" must end in .ts, .js, .mjs, .mts, .tsx, .jsx, "
        ".cjs or .cts (Deno tells a module's language by it)";
    return false;
  }
  code.entry_path = std::move(*path);

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
