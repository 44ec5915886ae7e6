// libFuzzer target: x-deno-config values, the untrusted JSON an origin's /boot answer carries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/isolates/deno_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  subgate::DeploymentCode code;
  std::string error;
  const bool ok = subgate::parseDenoConfig(
      std::string_view(reinterpret_cast<const char*>(data), size), code, error);
  // Either a parse with a safe path (absolute, no '.' or '..' segment) or a reason.
  if (ok) {
    const std::string& path = code.entry_path;
    if (path.empty() || path[0] != '/' || path.find("/./") != std::string::npos ||
        path.find("/../") != std::string::npos || path.ends_with("/..") || path.ends_with("/.") ||
        path.find("//") != std::string::npos)
      abort();
  } else if (error.empty()) {
    abort();
  }
  return 0;
}
