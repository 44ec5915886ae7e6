// A server TLS session that never touches the socket itself: the ciphertext it reads comes from
// wireIn(), which the connection fills from the socket, and what it writes goes to wireOut(),
// which the connection sends.
//
// Why: the connection's socket reads and writes are then the same plain ones as on a plaintext
// connection, so they join the worker's end-of-turn io_uring batch (core/net/io_batch.h) and its
// pause (io_coalesce); and OpenSSL makes no system call of its own (over a socket it reads each
// record's header and body with two calls). The cost is a copy of the ciphertext, which is
// small next to the encryption.
//
// Contract:
// - handshake(), read() and write() never block: output room never runs out (wireOut() grows);
//   the caller bounds it by encrypting no more while wireOut() holds a lot.
// - After any call, wireOut() may hold bytes to send: handshake messages, TLS 1.3 session
//   tickets, the answer to a KeyUpdate, close_notify after closeNotify().
// - A read returns at most one record's plaintext; call it again until kNeedInput.
// - kFailed leaves OpenSSL's error queue for lastError() (tls_context.h).
//
// Threading: one connection's, on its worker thread.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string_view>

#include "core/net/io_buffer.h"
#include "core/tls/tls_context.h"

namespace subgate::tls {

class Channel {
 public:
  enum class Status {
    kDone,       // the handshake is complete; a read returned bytes
    kNeedInput,  // no whole record in wireIn(): receive more from the socket
    kClosed,     // a read met the peer's close_notify: no more data comes
    kFailed,     // a TLS error: plaintext on a TLS port, a bad record, no common protocol
  };

  // A session in accept state with `context`'s certificate (SNI may switch it through
  // `resolver`, which must outlive the handshake); nullptr when OpenSSL is out of memory.
  static std::unique_ptr<Channel> accept(const ServerContext& context, const SniResolver* resolver);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  Status handshake();
  // Decrypts into data[0, size): `count` bytes with kDone.
  Status read(char* data, size_t size, size_t& count);
  // Encrypts all of data[0, size) into wireOut() (records of up to 16 KiB); false on a TLS error.
  bool write(const char* data, size_t size);
  // write() of all of `plain`'s bytes, which are then consumed (on failure: left).
  bool writeFrom(IoBuffer& plain) {
    if (plain.readable() > 0 && !write(plain.readPtr(), plain.readable())) return false;
    plain.clear();
    return true;
  }
  // Queues close_notify in wireOut(), once, and only after the handshake (else nothing).
  void closeNotify();

  // Whether read() may give bytes without more input: ciphertext waits in wireIn() (perhaps not
  // yet a whole record) or plaintext in OpenSSL's buffer.
  bool hasBufferedInput() const;
  // The protocol ALPN selected ("h2", "http/1.1"), empty without ALPN.
  std::string_view alpn() const;

  IoBuffer& wireIn() { return in_; }
  IoBuffer& wireOut() { return out_; }
  // Gives back the memory of empty wire buffers: an idle connection holds none.
  void shrinkIfEmpty() {
    in_.shrinkIfEmpty(0);
    out_.shrinkIfEmpty(0);
  }

 private:
  explicit Channel(SSL* ssl) : ssl_(ssl) {}
  Status statusOf(int result) const;

  SSL* ssl_;
  IoBuffer in_;
  IoBuffer out_;
};

}  // namespace subgate::tls
