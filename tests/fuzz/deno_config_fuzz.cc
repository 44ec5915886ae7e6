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
  // Either a parse with a safe file name or a reason.
  if (ok) {
    if (code.entry_file.empty() || code.entry_file.find('/') != std::string::npos ||
        code.entry_file[0] == '.')
      abort();
  } else if (error.empty()) {
    abort();
  }
  return 0;
}
