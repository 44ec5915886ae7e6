// What a client connection and the worker that accepted it know of each other, whatever protocol
// the connection speaks. The protocol folders (core/http1, core/http2) implement ClientConnection
// and talk to their worker only through ConnectionHost, so that they sit below core/server (the
// worker, which creates them) in the include graph.
//
// Threading: a connection is owned by its host and used only on the host's thread. A connection
// deletes itself when closed (after telling the host through ConnectionHost::connectionClosed).
#pragma once

#include <event2/event.h>

#include <memory>
#include <string>
#include <string_view>

namespace subgate {
namespace tls {
class Channel;
}

class Worker;
struct ListenConf;
struct RuntimeConfig;

class ClientConnection {
 public:
  virtual ~ClientConnection() = default;
  // Graceful shutdown: close when idle; let requests in progress finish.
  virtual void drain() = 0;
  // The worker now serves a reloaded config (SIGHUP). Each request already picks the listener's
  // current config when it starts; a connection with more to do (HTTP/2: GOAWAY) overrides this.
  virtual void configReloaded() {}
};

// One listening socket of one worker, with the config it currently serves. Connections read
// `config` and `conf` at each request start, so a reload reaches them without a call.
struct ListenerSlot {
  std::string address;  // SocketAddress::text
  int fd = -1;          // owned by the main thread's listener set
  event* ev = nullptr;
  Worker* worker = nullptr;
  std::shared_ptr<const RuntimeConfig> config;
  const ListenConf* conf = nullptr;
};

// The worker as its connections see it (implemented by Worker).
class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  virtual event_base* loop() const = 0;
  // The worker is stopping: finish what is in progress, keep no connection alive.
  virtual bool stopping() const = 0;
  // What requests on this host's connections see as Request::worker().
  virtual Worker& requestWorker() = 0;
  // The connection closed and is about to delete itself.
  virtual void connectionClosed(ClientConnection* connection) = 0;
  // An HTTP/1.1 connection found HTTP/2 (ALPN h2 or the h2c preface): serve the rest of it with
  // an HTTP/2 connection that takes over `fd` and `tls`; `initial` holds bytes already read.
  virtual void startHttp2(int fd, std::unique_ptr<tls::Channel> tls, const std::string& remote_ip,
                          const ListenerSlot& slot, std::shared_ptr<const RuntimeConfig> config,
                          const ListenConf* listen, std::string_view initial) = 0;
};

}  // namespace subgate
