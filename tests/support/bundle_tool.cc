// A test-only command line over core/bundle, for the integration tests (they run it through
// the BUNDLE_TOOL environment variable, which tests/CMakeLists.txt sets):
//
//   bundle_tool write OUT < manifest.json   writes an ESZIP with writeEszip(); the manifest is
//       {"version": "2"|"2.1"|"2.2"|"2.3", "checksum": "none"|"sha256"|"xxhash3",
//        "modules": [{"specifier", "kind": "javascript"|"json"|..., "source", "source_map"}],
//        "redirects": [{"specifier", "target"}]}            (everything but modules optional)
//   bundle_tool dump FILE                   parses FILE with parseEszip() (npm allowed) and
//       prints the same shape as JSON, plus "npm" (true or false); exit 1 and the error on stderr
//       when it does not parse
//   bundle_tool cache DENO_DIR < entries.json   writes denoCacheEntry()/denoCacheRedirect()
//       files below DENO_DIR; entries are [{"url", "content_type", "body"} | {"url", "location"}]
//
// Sources are JSON strings, so this tool handles text modules only (enough for the tests).
#include <jansson.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include "core/bundle/deno_cache.h"
#include "core/bundle/eszip.h"
#include "core/bundle/eszip_writer.h"

namespace {

using namespace subgate::bundle;

struct JsonDeleter {
  void operator()(json_t* json) const { json_decref(json); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

int usage() {
  std::cerr << "usage: bundle_tool write OUT < manifest.json | dump FILE | cache DENO_DIR < "
               "entries.json\n";
  return 2;
}

JsonPtr readStdinJson() {
  json_error_t error;
  JsonPtr json(json_loadf(stdin, 0, &error));
  if (!json) std::cerr << "bad JSON on stdin: " << error.text << "\n";
  return json;
}

std::string text(json_t* object, const char* key) {
  json_t* value = json_object_get(object, key);
  return json_is_string(value) ? std::string(json_string_value(value), json_string_length(value))
                               : std::string();
}

int write(const char* out_path) {
  JsonPtr manifest = readStdinJson();
  if (!manifest) return 1;
  Eszip eszip;
  EszipWriteOptions options;
  const std::string version = text(manifest.get(), "version");
  for (auto v :
       {EszipVersion::kV2, EszipVersion::kV2Dot1, EszipVersion::kV2Dot2, EszipVersion::kV2Dot3})
    if (version == eszipVersionName(v)) options.version = v;
  const std::string checksum = text(manifest.get(), "checksum");
  if (checksum == "none") options.checksum = EszipChecksum::kNone;
  if (checksum == "xxhash3") options.checksum = EszipChecksum::kXxHash3;
  size_t i;
  json_t* item;
  json_array_foreach(json_object_get(manifest.get(), "modules"), i, item) {
    EszipModule module{text(item, "specifier"), EszipModuleKind::kJavaScript, text(item, "source"),
                       text(item, "source_map")};
    const std::string kind = text(item, "kind");
    for (uint8_t k = 0; k <= static_cast<uint8_t>(EszipModuleKind::kWasm); ++k)
      if (kind == eszipModuleKindName(static_cast<EszipModuleKind>(k)))
        module.kind = static_cast<EszipModuleKind>(k);
    eszip.modules.push_back(std::move(module));
  }
  json_array_foreach(json_object_get(manifest.get(), "redirects"), i, item) {
    eszip.redirects.push_back({text(item, "specifier"), text(item, "target")});
  }
  const std::string bytes = writeEszip(eszip, options);
  if (bytes.empty()) {
    std::cerr << "writeEszip failed\n";
    return 1;
  }
  std::ofstream out(out_path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out ? 0 : 1;
}

int dump(const char* path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EszipLimits limits;
  limits.allow_npm = true;
  std::string error;
  auto eszip = parseEszip(bytes, limits, error);
  if (!eszip) {
    std::cerr << error << "\n";
    return 1;
  }
  JsonPtr modules(json_array()), redirects(json_array());
  for (const auto& module : eszip->modules) {
    json_array_append_new(modules.get(),
                          json_pack("{s:s#, s:s, s:s#, s:s#}", "specifier", module.specifier.data(),
                                    module.specifier.size(), "kind",
                                    std::string(eszipModuleKindName(module.kind)).c_str(), "source",
                                    module.source.data(), module.source.size(), "source_map",
                                    module.source_map.data(), module.source_map.size()));
  }
  for (const auto& redirect : eszip->redirects) {
    json_array_append_new(redirects.get(),
                          json_pack("{s:s, s:s}", "specifier", redirect.specifier.c_str(), "target",
                                    redirect.target.c_str()));
  }
  JsonPtr result(json_pack("{s:s, s:i, s:O, s:O, s:b}", "version",
                           std::string(eszipVersionName(eszip->version)).c_str(), "checksum",
                           static_cast<int>(eszip->checksum), "modules", modules.get(), "redirects",
                           redirects.get(), "npm", eszip->hasNpm()));
  if (!result) {
    std::cerr << "a source is not UTF-8\n";
    return 1;
  }
  std::unique_ptr<char, decltype(&free)> out(json_dumps(result.get(), JSON_INDENT(1)), &free);
  std::cout << out.get() << "\n";
  return 0;
}

int cache(const char* deno_dir) {
  JsonPtr entries = readStdinJson();
  if (!entries) return 1;
  size_t i;
  json_t* item;
  json_array_foreach(entries.get(), i, item) {
    std::string error;
    const std::string url = text(item, "url");
    auto entry = json_object_get(item, "location")
                     ? denoCacheRedirect(url, text(item, "location"), error)
                     : denoCacheEntry(url, text(item, "content_type"), text(item, "body"), error);
    if (!entry) {
      std::cerr << error << "\n";
      return 1;
    }
    const std::filesystem::path path = std::filesystem::path(deno_dir) / entry->relative_path;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(entry->bytes.data(), static_cast<std::streamsize>(entry->bytes.size()));
    if (!out) return 1;
    std::cout << entry->relative_path << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return usage();
  if (std::strcmp(argv[1], "write") == 0) return write(argv[2]);
  if (std::strcmp(argv[1], "dump") == 0) return dump(argv[2]);
  if (std::strcmp(argv[1], "cache") == 0) return cache(argv[2]);
  return usage();
}
