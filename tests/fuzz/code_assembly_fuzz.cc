// libFuzzer target: a /boot body as core/isolates/code_assembly.h turns it into the files of an
// isolate (one module, or an ESZIP whose specifiers become paths in the isolate's root and Deno
// cache entries). Each input either fails with a reason, or gives files whose paths cannot leave
// their folder: absolute local paths without '.' or '..' segments, cache paths under remote/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/isolates/code_assembly.h"

namespace {

bool safeLocal(const std::string& path) {
  if (path.empty() || path[0] != '/' || path.find("//") != std::string::npos) return false;
  size_t start = 1;
  while (start <= path.size()) {
    const size_t end = path.find('/', start);
    const std::string segment = path.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == ".." ||
        segment.find('\0') != std::string::npos)
      return false;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  subgate::DeploymentCode code;
  code.entrypoint = "file:///src/main.ts";
  code.entry_path = "/src/main.ts";
  subgate::BundleLimits limits;
  limits.max_bytes = 1 << 20;
  limits.max_modules = 200;
  limits.max_module_bytes = 256 << 10;
  subgate::CodeFailure failure;
  auto no_layers = [](const subgate::CodeLayer&, subgate::CodeFailure& f) {
    f.message = "no layers here";
    return std::optional<std::string>();
  };
  const bool ok = subgate::assembleCode(
      code, std::string(reinterpret_cast<const char*>(data), size), no_layers, limits, failure);
  if (!ok) {
    if (failure.message.empty()) abort();
    return 0;
  }
  for (const subgate::DeploymentModule& module : code.modules) {
    if (module.in_deno_dir
            ? !module.path.starts_with("remote/") || module.path.find("..") != std::string::npos
            : !safeLocal(module.path))
      abort();
  }
  return 0;
}
