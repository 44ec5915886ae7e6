#include "core/isolates/code_assembly.h"

#include <initializer_list>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/bundle/deno_cache.h"
#include "core/bundle/eszip.h"
#include "core/isolates/module_path.h"

namespace subgate {
namespace {

using bundle::EszipModuleKind;

// One specifier of the stacked graph: a module, or a redirect to another specifier.
struct Entry {
  std::string specifier;
  bool redirect = false;
  EszipModuleKind kind = EszipModuleKind::kJavaScript;
  std::string bytes;  // the module's source, or the redirect's target
};

class Graph {
 public:
  // Adds or replaces (a later layer wins) the entry of `entry.specifier`.
  void put(Entry entry) {
    auto [it, added] = index_.try_emplace(entry.specifier, entries_.size());
    if (added) {
      entries_.push_back(std::move(entry));
    } else {
      entries_[it->second] = std::move(entry);
    }
  }
  const Entry* find(const std::string& specifier) const {
    auto it = index_.find(specifier);
    return it == index_.end() ? nullptr : &entries_[it->second];
  }
  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<Entry>& entries() { return entries_; }

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

bool isRemote(std::string_view specifier) {
  return specifier.starts_with("https://") || specifier.starts_with("http://");
}

bool endsWith(std::string_view text, std::initializer_list<std::string_view> suffixes) {
  for (std::string_view suffix : suffixes)
    if (text.size() > suffix.size() && text.ends_with(suffix)) return true;
  return false;
}

// The Content-Type Deno decides a remote module's language by: its kind, then the extension of
// its path (a TypeScript module stays TypeScript, whether the bundle holds its source or what it
// was compiled to).
std::string_view contentType(const Entry& entry) {
  if (entry.kind == EszipModuleKind::kJson) return "application/json";
  if (entry.kind == EszipModuleKind::kWasm) return "application/wasm";
  std::string_view path = entry.specifier;
  path = path.substr(0, path.find_first_of("?#"));
  if (endsWith(path, {".tsx"})) return "text/tsx";
  if (endsWith(path, {".jsx"})) return "text/jsx";
  if (endsWith(path, {".ts", ".mts", ".cts"})) return "application/typescript";
  return "application/javascript";
}

// Messages are built by appending: GCC 12 at -O3 warns falsely on `"literal" + std::string&&`.
std::string join(std::initializer_list<std::string_view> parts) {
  std::string text;
  for (std::string_view part : parts) text.append(part);
  return text;
}

bool fail(CodeFailure& failure, std::string message) {
  failure.error = ErrorKind::kOriginInvalidBundle;
  failure.message = std::move(message);
  return false;
}

// `what` names the layer in messages: "the /boot body" or "layer \"ID\"".
bool addEszip(Graph& graph, std::string_view bytes, const std::string& what,
              const BundleLimits& limits, CodeFailure& failure) {
  bundle::EszipLimits eszip_limits;
  eszip_limits.max_total_bytes = limits.max_bytes;
  eszip_limits.max_entries = limits.max_modules;
  eszip_limits.max_module_bytes = limits.max_module_bytes;
  std::string error;
  std::optional<bundle::Eszip> eszip = bundle::parseEszip(bytes, eszip_limits, error);
  if (!eszip)
    return fail(failure, join({what, " is not a valid ESZIP within bundle_max_bytes, ",
                               "bundle_max_modules and bundle_max_module_size: ", error}));
  for (bundle::EszipModule& module : eszip->modules)
    graph.put({std::move(module.specifier), false, module.kind, std::move(module.source)});
  for (bundle::EszipRedirect& redirect : eszip->redirects)
    graph.put({std::move(redirect.specifier), true, EszipModuleKind::kJavaScript,
               std::move(redirect.target)});
  return true;
}

// The module `specifier` names, following redirects (at most as many as there are entries).
const Entry* resolve(const Graph& graph, const std::string& specifier) {
  const Entry* entry = graph.find(specifier);
  for (size_t hops = 0; entry && entry->redirect && hops <= graph.entries().size(); ++hops)
    entry = graph.find(entry->bytes);
  return entry && !entry->redirect ? entry : nullptr;
}

}  // namespace

bool assembleCode(DeploymentCode& code, std::string body, const LayerFetch& fetch_layer,
                  const BundleLimits& limits, CodeFailure& failure) {
  code.bytes = body.size();
  Graph graph;
  if (code.layers.empty()) {
    if (bundle::looksLikeEszip(body)) {
      if (!addEszip(graph, body, "the /boot body", limits, failure)) return false;
    } else {
      if (body.size() > limits.max_module_bytes)
        return fail(failure, join({"the /boot body (", std::to_string(body.size()),
                                   " bytes) is over bundle_max_module_size"}));
      graph.put({code.entrypoint, false, EszipModuleKind::kJavaScript, std::move(body)});
    }
  } else {
    size_t total = 0;
    for (const CodeLayer& layer : code.layers) {
      const std::string what = join({"layer \"", layer.id, "\""});
      std::string fetched;
      if (layer.id == code.inline_layer) {
        fetched = std::move(body);
      } else if (std::optional<std::string> bytes = fetch_layer(layer, failure)) {
        fetched = std::move(*bytes);
      } else {
        return false;
      }
      total += fetched.size();
      if (total > limits.max_bytes)
        return fail(failure, join({"the layers are over bundle_max_bytes (",
                                   std::to_string(limits.max_bytes), " bytes) at ", what}));
      if (layer.kind == CodeLayer::Kind::kEszip) {
        if (!addEszip(graph, fetched, what, limits, failure)) return false;
      } else {
        if (fetched.size() > limits.max_module_bytes)
          return fail(failure, join({what, " is over bundle_max_module_size"}));
        graph.put({layer.specifier.empty() ? code.entrypoint : layer.specifier, false,
                   EszipModuleKind::kJavaScript, std::move(fetched)});
      }
    }
    code.bytes = total;
  }
  if (graph.entries().size() > limits.max_modules)
    return fail(failure, join({"the code holds ", std::to_string(graph.entries().size()),
                               " modules and redirects, over bundle_max_modules (",
                               std::to_string(limits.max_modules), ")"}));
  if (!resolve(graph, code.entrypoint))
    return fail(failure, join({"the bundle has no module for the entrypoint ", code.entrypoint}));

  code.modules.clear();
  code.modules.reserve(graph.entries().size());
  for (Entry& entry : graph.entries()) {
    std::string error;
    DeploymentModule module;
    module.specifier = entry.specifier;
    if (isRemote(entry.specifier)) {
      if (entry.kind == EszipModuleKind::kJsonc || entry.kind == EszipModuleKind::kOpaqueData)
        continue;  // an import map or package data: nothing Deno imports by URL
      std::optional<bundle::DenoCacheEntry> cached =
          entry.redirect
              ? bundle::denoCacheRedirect(entry.specifier, entry.bytes, error)
              : bundle::denoCacheEntry(entry.specifier, contentType(entry), entry.bytes, error);
      if (!cached) return fail(failure, join({"module ", entry.specifier, ": ", error}));
      module.path = std::move(cached->relative_path);
      module.in_deno_dir = true;
      module.bytes = std::move(cached->bytes);
    } else if (entry.specifier.starts_with("file:")) {
      if (entry.redirect)
        return fail(failure, join({"the local module ", entry.specifier,
                                   " is a redirect, which Deno does not follow for files"}));
      std::optional<std::string> path = localModulePath(entry.specifier, error);
      if (!path) return fail(failure, error);
      if (entry.kind == EszipModuleKind::kJsonc || entry.kind == EszipModuleKind::kOpaqueData)
        continue;  // not importable; the deployment's own copy of an import map or package data
      module.path = std::move(*path);
      module.bytes = std::move(entry.bytes);
    } else {
      return fail(failure, join({"module ", std::string_view(entry.specifier).substr(0, 200),
                                 ": only file:, http: and https: modules can be loaded"}));
    }
    code.modules.push_back(std::move(module));
  }
  return true;
}

}  // namespace subgate
