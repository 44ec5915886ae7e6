#include "core/net/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>

namespace subgate {
namespace {

bool parsePort(std::string_view text, int& port) {
  if (text.empty() || text.size() > 5) return false;
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < 1 || value > 65535)
    return false;
  port = value;
  return true;
}

}  // namespace

std::optional<SocketAddress> parseSocketAddress(std::string_view text, int default_port,
                                                std::string& err) {
  SocketAddress out;
  if (text.starts_with("unix:")) {
    std::string_view path = text.substr(5);
    auto* un = reinterpret_cast<sockaddr_un*>(&out.storage);
    if (path.empty() || path.size() >= sizeof un->sun_path) {
      err = "invalid unix socket path in \"" + std::string(text) + "\"";
      return std::nullopt;
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    out.text = std::string(text);
    return out;
  }
  std::string_view host;
  std::string_view port_text;
  if (text.starts_with("[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      err = "invalid address \"" + std::string(text) + "\"";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        err = "invalid address \"" + std::string(text) + "\"";
        return std::nullopt;
      }
      port_text = rest.substr(1);
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      // Only a port, or only a host.
      bool all_digits =
          !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
      if (all_digits) {
        port_text = text;
        host = "*";
      } else {
        host = text;
      }
    } else {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
    }
  }
  int port = default_port;
  if (!port_text.empty() || default_port == 0) {
    if (!parsePort(port_text, port)) {
      err = "invalid port in \"" + std::string(text) + "\"";
      return std::nullopt;
    }
  }
  std::string host_str(host);
  if (host_str == "localhost") host_str = "127.0.0.1";
  if (host_str == "*" || host_str.empty()) host_str = "0.0.0.0";
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET, host_str.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in);
    out.text = host_str + ":" + std::to_string(port);
  } else if (inet_pton(AF_INET6, host_str.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in6);
    out.text = "[" + host_str + "]:" + std::to_string(port);
  } else {
    err = "host \"" + host_str + "\" is not a numeric address (name resolution is not supported)";
    return std::nullopt;
  }
  return out;
}

std::string formatSocketAddress(const sockaddr* addr, bool with_port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (addr->sa_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    if (!with_port) return buf;
    return std::string(buf) + ":" + std::to_string(ntohs(v4->sin_port));
  }
  if (addr->sa_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    if (!with_port) return buf;
    std::string out;
    out.reserve(sizeof buf + 8);
    out.append("[").append(buf).append("]:").append(std::to_string(ntohs(v6->sin6_port)));
    return out;
  }
  if (addr->sa_family == AF_UNIX) return "unix:";
  return "-";
}

}  // namespace subgate
