// What a Worker holds of each client connection, whatever protocol it speaks.
//
// Threading: owned by its Worker, used only on that worker's thread. A connection deletes itself
// when closed (after telling the worker through Worker::connectionClosed).
#pragma once

namespace subgate {

class ClientConnection {
 public:
  virtual ~ClientConnection() = default;
  // Graceful shutdown: close when idle; let requests in progress finish.
  virtual void drain() = 0;
  // The worker now serves a reloaded config (SIGHUP). Each request already picks the listener's
  // current config when it starts; a connection with more to do (HTTP/2: GOAWAY) overrides this.
  virtual void configReloaded() {}
};

}  // namespace subgate
