// A small blocking HTTP/1.1 client for control-plane calls to an origin (`GET {rpc_root}boot`,
// protocol.md §3) and `POST {rpc_root}events`. One request per connection (`Connection: close`),
// GET and POST (a body of known length), no redirects, no proxies, no HTTP/2.
//
// Threading: httpGet() and httpPost() block the calling thread, so it is meant for background
// threads, never for a worker's event loop. It is safe to call from several threads at once. Every
// step (name resolution, connect, TLS handshake, writing, reading) is bounded by
// HttpClientOptions::total_timeout; a resolution that outlives it is abandoned to finish on its
// own thread.
//
// TLS: the peer certificate is verified against `ca_file` (or the system CA store) and the URL's
// host (a DNS name, or an IP literal matched against IP SANs); SNI is sent for DNS names. The
// TLS code writes through OpenSSL's socket BIO, so the process must ignore SIGPIPE (the server
// process does); plain-text writes use MSG_NOSIGNAL.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace subgate {

struct HttpUrl {
  bool tls = false;            // https
  std::string host;            // lower-cased; an IPv6 literal without its brackets
  uint16_t port = 0;           // explicit, or 80 / 443
  std::string path_and_query;  // as sent on the request line; "/" when the URL has no path
  std::string text;            // canonical form "scheme://host[:port]/path?query" (no fragment)
};

// Parses an absolute "http://" or "https://" URL: host is a reg-name, an IPv4 address or an
// "[IPv6]" literal; the port is optional; a fragment is dropped. User info ("user@") is
// rejected. Returns nullopt with `error` set when the URL is malformed or unsupported.
std::optional<HttpUrl> parseHttpUrl(std::string_view url, std::string& error);

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5000};  // per address tried
  std::chrono::milliseconds total_timeout{10000};   // whole exchange deadline
  size_t max_response_bytes = 64 << 20;             // body cap
  size_t max_head_bytes = 64 << 10;                 // status line + headers
  std::string ca_file;  // empty: system default CA store (SSL_CTX_set_default_verify_paths)
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
  std::string body;                                          // decoded (chunked framing removed)

  // The first value of header `name`, case-insensitive; nullopt when absent. The view points
  // into `headers`.
  std::optional<std::string_view> header(std::string_view name) const;
};

enum class HttpClientError {
  kNone,
  kResolve,   // the host name did not resolve
  kConnect,   // no address accepted a connection
  kTls,       // TLS setup, handshake or certificate verification failed
  kTimeout,   // a deadline passed (connect_timeout or total_timeout)
  kReset,     // the connection failed or closed before the response was complete
  kProtocol,  // the response is not valid HTTP/1.1
  kTooLarge,  // the head or the body is over its cap
};

// "kTimeout" style name for logs and tests.
const char* httpClientErrorName(HttpClientError error);

struct HttpResult {
  HttpClientError error = HttpClientError::kNone;
  std::string message;    // human-readable, names host:port; empty on success
  HttpResponse response;  // complete when error == kNone (any status, 4xx/5xx included)
};

// Sends `GET url.path_and_query` with Host, `Connection: close`, `User-Agent: subgate` and
// `headers` (added as given, after those), and reads the whole response.
HttpResult httpGet(const HttpUrl& url,
                   const std::vector<std::pair<std::string, std::string>>& headers,
                   const HttpClientOptions& options);

// Sends `POST url.path_and_query` with the same headers as httpGet(), `Content-Length` and
// `body`, and reads the whole response; bounded by `options` like httpGet().
HttpResult httpPost(const HttpUrl& url,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    std::string_view body, const HttpClientOptions& options);

}  // namespace subgate
