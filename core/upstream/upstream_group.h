// Compiled `upstream NAME { server ...; keepalive N; }` blocks and the peers they name.
// Immutable after config load; shared by all workers. Per-worker connection state lives in
// ConnectionPool (connection_pool.h), found by PeerId.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/net/socket_address.h"

namespace subgate {

// A process-wide small integer for a peer address, stable across reloads, so that a worker's
// pools (and their idle keep-alive connections) survive a config reload.
using PeerId = uint32_t;
PeerId internPeer(const std::string& address_text);  // thread-safe; config time only

struct UpstreamServer {
  SocketAddress address;
  PeerId peer = 0;
  uint32_t max_conns = 0;  // active connections per worker; 0 = unlimited
  // A unix socket served by a child: the process whose tree must hold the listener
  // (SO_PEERCRED), so that a path the child controls cannot lead to another one's socket.
  // 0: any.
  pid_t owner = 0;
};

struct UpstreamGroup {
  std::string name;  // "" for an address written directly in proxy_pass
  std::vector<UpstreamServer> servers;
  uint32_t keepalive = 32;  // idle connections kept per worker per server
  std::chrono::milliseconds keepalive_timeout{60000};
  uint32_t keepalive_requests = 10000;  // requests per upstream connection before it is closed
};

}  // namespace subgate
