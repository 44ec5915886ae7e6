// Socket addresses as written in the config: "HOST:PORT", "[v6]:PORT", "PORT", "unix:/path".
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

namespace subgate {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // canonical form, e.g. "127.0.0.1:8080", "[::1]:80", "unix:/run/x.sock"

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

// Parses a numeric address (no DNS): "127.0.0.1:80", "[::1]:80", "*:80", "80" (all IPv4
// interfaces), "localhost:80" (127.0.0.1), "unix:/path". `default_port` is used when the text
// has no port (0 = a port is required). Returns nullopt with `err` set when malformed.
std::optional<SocketAddress> parseSocketAddress(std::string_view text, int default_port,
                                                std::string& err);

// "ip:port" of a peer address (for X-Forwarded-For and logs: the ip only when `with_port` is
// false).
std::string formatSocketAddress(const sockaddr* addr, bool with_port);

}  // namespace subgate
