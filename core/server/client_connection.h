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
};

}  // namespace subgate
