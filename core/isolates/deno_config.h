// The deployment an origin's /boot answer describes (protocol.md §3): the code and the parsed
// `x-deno-config` header.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace subgate {

// What an isolate needs to run a deployment. Immutable once fetched.
struct DeploymentCode {
  std::string bundle;            // one JavaScript/TypeScript module
  std::string entry_file;        // file name the bundle is saved as ("main.ts")
  std::string entrypoint;        // x-deno-config "entrypoint" as given
  std::string envs_json = "{}";  // JSON object of string values
  enum class Net { kAll, kNone, kList } net = Net::kAll;
  std::vector<std::string> net_allow;  // for kList: "host[:port]"
};

// Parses an x-deno-config value into `code` (everything but the bundle). False with `error`
// saying which field is wrong. Unknown fields are ignored; ESZIP fields are refused.
bool parseDenoConfig(std::string_view value, DeploymentCode& code, std::string& error);

}  // namespace subgate
