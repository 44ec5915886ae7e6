// Which server and location serve a request: server_name against the Host (and SNI), and the
// location by nginx's rules. Methods of the compiled config (config_model.h), run per request.
#include <string>

#include "core/pipeline/config_model.h"
#include "core/regex/regex.h"

namespace subgate {

const LocationConf& ServerConf::match(std::string_view path) const {
  if (!exact.empty()) {
    auto it = exact.find(std::string(path));
    if (it != exact.end()) return *it->second;
  }
  const LocationConf* prefix = nullptr;
  for (const LocationConf* loc : prefixes) {
    if (path.starts_with(loc->pattern)) {
      prefix = loc;
      break;
    }
  }
  for (const LocationConf* loc : regexes) {
    if (loc->regex->matches(path)) return *loc;
  }
  return prefix ? *prefix : unmatched;
}

const tls::ServerContext* ListenConf::resolveServerName(std::string_view name) const {
  const ServerConf& server = findServer(name);
  return server.tls ? server.tls.get() : nullptr;
}

const ServerConf& ListenConf::findServer(std::string_view host) const {
  if (servers.size() > 1 && !host.empty()) {
    std::string_view name = host;
    // Strip the port; keep IPv6 brackets intact.
    size_t colon = name.rfind(':');
    if (colon != std::string_view::npos && name.find(']') == std::string_view::npos)
      name = name.substr(0, colon);
    for (const ServerConf* server : servers) {
      for (const std::string& candidate : server->names) {
        if (http1::iequals(candidate, name)) return *server;
      }
    }
  }
  return *servers.front();
}

const ListenConf* RuntimeConfig::findListen(std::string_view address_text) const {
  for (const ListenConf& listen : listens)
    if (listen.address.text == address_text) return &listen;
  return nullptr;
}

}  // namespace subgate
