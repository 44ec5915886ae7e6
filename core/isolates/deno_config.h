// The deployment an origin's /boot answer describes (protocol.md §3): the code and the parsed
// `x-deno-config` header.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace subgate {

// One file of a deployment's code in an isolate (code_assembly.h).
struct DeploymentModule {
  std::string specifier;  // its URL: what Deno loads it as and what its import.meta.url is
  // A local module: its path in the isolate's root folder ("/src/main.ts"). A remote module or
  // redirect: its Deno cache file below the isolate's DENO_DIR ("remote/https/host/<sha256>").
  std::string path;
  bool in_deno_dir = false;
  std::string bytes;  // the file's content
};

// One layer of a deployment's code (x-deno-config "layers"): a module graph stacked over the
// layers before it (docs/origin.md, "Layers").
struct CodeLayer {
  enum class Kind { kEszip, kBundle } kind = Kind::kEszip;
  std::string id;         // the origin's name for it: the inline layer, or fetched by its id
  std::string specifier;  // kBundle: the one module's specifier (default: the entrypoint)
};

// What an isolate needs to run a deployment. Immutable once fetched.
struct DeploymentCode {
  std::vector<DeploymentModule> modules;  // the module graph; the entrypoint is one of them
  size_t bytes = 0;                       // the /boot body's size (for logs)
  std::string entrypoint;                 // x-deno-config "entrypoint": the module the isolate runs
  std::string entry_path;                 // its path in the isolate's root folder (module_path.h)
  std::string envs_json = "{}";           // JSON object of string values
  enum class Net { kAll, kNone, kList } net = Net::kAll;
  std::vector<std::string> net_allow;  // for kList: "host[:port]"
  std::vector<CodeLayer> layers;       // empty: the /boot body is the code (a module or an ESZIP)
  std::string inline_layer;            // the id of the layer the /boot body is ("": none)
};

constexpr size_t kMaxLayers = 16;

// Parses an x-deno-config value into `code` (everything but the modules). False with `error`
// saying which field is wrong. Unknown fields are ignored. `layers` is a list of at most
// kMaxLayers objects {kind: "eszip" | "bundle", id, specifier?} with distinct printable ids, and
// `inline_layer` names one of them. The
// entrypoint (default file:///src/main.ts) must be a local module (module_path.h) whose name
// ends in a JavaScript or TypeScript extension, as Deno decides a file's language by it.
bool parseDenoConfig(std::string_view value, DeploymentCode& code, std::string& error);

}  // namespace subgate
