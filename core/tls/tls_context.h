// Server-side TLS with OpenSSL: one context per certificate (a `server` block's ssl_certificate
// and ssl_certificate_key), TLS 1.2 and 1.3, ALPN h2 (when the listener serves HTTP/2) and
// http/1.1, session resumption (a server-side session cache and tickets), and the certificate
// chosen by SNI per connection.
//
// Threading: a ServerContext is immutable once loaded and shared by every worker (OpenSSL
// contexts are safe to create sessions from concurrently). A reload loads new contexts; old ones
// live as long as connections that use them.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

namespace subgate::tls {

class ServerContext;

// Picks the context for the server name a client sent (SNI). Implemented by the listen
// configuration; nullptr keeps the context the connection started with.
class SniResolver {
 public:
  virtual ~SniResolver() = default;
  virtual const ServerContext* resolveServerName(std::string_view name) const = 0;
  // Whether ALPN may select h2 on this listener (else only http/1.1 is offered).
  virtual bool offersHttp2() const { return false; }
};

struct Options {
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
};

// Parses an `ssl_protocols` word list ("TLSv1.2 TLSv1.3") into versions; false on others.
bool parseProtocols(const std::string* words, size_t count, Options& options, std::string& error);

class ServerContext {
 public:
  // Reads the PEM certificate chain and private key and checks that they match. nullptr with
  // `error` ("cannot read ...", "... does not match ...") otherwise.
  static std::shared_ptr<const ServerContext> load(const std::string& certificate_file,
                                                   const std::string& key_file,
                                                   const Options& options, std::string& error);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // A server session in accept state without I/O (tls::Channel gives it its BIO), or nullptr
  // when OpenSSL is out of memory. SNI asks `resolver`, which must outlive the handshake.
  SSL* newSession(const SniResolver* resolver) const;

  SSL_CTX* native() const { return ctx_; }

 private:
  explicit ServerContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// The first queued OpenSSL error as text (and clears the queue), for logs.
std::string lastError();

}  // namespace subgate::tls
