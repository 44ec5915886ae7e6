// libFuzzer target for the config language: any text either parses or fails with a
// "file:line: message" error, never crashes. Includes are refused: they would read the host's
// files (`include /dev/zero;`, `include /*/*/*/*/*;`), which is the operator's choice, not input.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/config/config_ast.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  subgate::config::ConfigError err;
  auto root = subgate::config::parseText(text, "fuzz.conf", "/nonexistent-fuzz-prefix", err,
                                         subgate::config::IncludeMode::kRefuse);
  if (!root && err.message.rfind("fuzz.conf:", 0) != 0 &&
      err.message.find(": ") == std::string::npos)
    std::abort();
  if (root) {
    for (const auto& node : root->children) (void)node.where();
    (void)subgate::config::parseSize(text);
    (void)subgate::config::parseDuration(text);
  }
  return 0;
}
