#include "core/http_client/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "core/http1/http1_parser.h"

namespace subgate {
namespace {

using Clock = std::chrono::steady_clock;
using AddrInfoList = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;

bool isIpLiteral(const std::string& host) {
  unsigned char scratch[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), scratch) == 1 ||
         inet_pton(AF_INET6, host.c_str(), scratch) == 1;
}

// "host:port", with brackets around an IPv6 literal.
std::string hostPort(const HttpUrl& url) {
  bool v6 = url.host.find(':') != std::string::npos;
  return (v6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
}

// Everything in this thread's OpenSSL error queue, reasons joined by "; "; empties the queue.
std::string drainOpensslErrors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    const char* reason = ERR_reason_error_string(code);
    if (!reason) {
      ERR_error_string_n(code, buf, sizeof buf);
      reason = buf;
    }
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out;
}

// One client SSL_CTX per CA file, created on first use and kept for the process lifetime
// (SSL_CTX is safe to share between threads once configured). Failures are not cached.
SSL_CTX* clientContext(const std::string& ca_file, std::string& error) {
  static std::mutex mutex;
  static auto* cache =
      new std::map<std::string, SSL_CTX*>;  // never destroyed: threads may outlive exit
  std::lock_guard lock(mutex);
  if (auto it = cache->find(ca_file); it != cache->end()) return it->second;
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    error = "cannot create a TLS context: " + drainOpensslErrors();
    return nullptr;
  }
  // ALPN pins HTTP/1.1: this client speaks nothing else.
  static const unsigned char kAlpn[] = "\x08http/1.1";
  bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
            SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn - 1) == 0;  // 0 is success here
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (ok && ca_file.empty() && SSL_CTX_set_default_verify_paths(ctx) != 1) {
    error = "cannot load the system CA store: " + drainOpensslErrors();
  } else if (ok && !ca_file.empty() &&
             SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    error = "cannot load CA file " + ca_file + ": " + drainOpensslErrors();
  } else if (!ok) {
    error = "cannot configure a TLS context: " + drainOpensslErrors();
  } else {
    cache->emplace(ca_file, ctx);
    return ctx;
  }
  SSL_CTX_free(ctx);
  return nullptr;
}

// A getaddrinfo() call that the caller may stop waiting for: the lookup runs on its own thread,
// which frees the result itself if nobody is waiting any more.
struct Lookup {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  bool abandoned = false;
  int rc = 0;
  addrinfo* list = nullptr;
};

// One request/response over one connection; every wait is bounded by `deadline_`.
class Exchange {
 public:
  Exchange(const HttpUrl& url, const HttpClientOptions& options)
      : url_(url),
        options_(options),
        where_(hostPort(url)),
        deadline_(Clock::now() + options.total_timeout) {}
  ~Exchange() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) close(fd_);
  }

  // `body` is sent with a Content-Length when `method` is not GET.
  HttpResult run(std::string_view method,
                 const std::vector<std::pair<std::string, std::string>>& headers,
                 std::string_view body) {
    std::string request;
    AddrInfoList addresses(nullptr, freeaddrinfo);
    // Each step sets result_'s error on failure; the chain stops at the first one.
    (void)(buildRequest(method, headers, body, request) && resolve(addresses) &&
           connectAny(addresses.get()) && (!url_.tls || handshake()) && send(request) &&
           readResponse());
    return std::move(result_);
  }

 private:
  bool fail(HttpClientError error, std::string message) {
    result_.error = error;
    result_.message = std::move(message);
    return false;
  }
  ssize_t readFailed(HttpClientError error, std::string message) {
    fail(error, std::move(message));
    return -1;
  }
  bool timedOut(const std::string& doing) {
    return fail(
        HttpClientError::kTimeout,
        "timed out after " + std::to_string(options_.total_timeout.count()) + " ms " + doing);
  }

  bool buildRequest(std::string_view method,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    std::string_view body, std::string& out) {
    bool default_port = url_.port == (url_.tls ? 443 : 80);
    std::string host = default_port ? where_.substr(0, where_.rfind(':')) : where_;
    out.assign(method);
    out.append(" ").append(url_.path_and_query).append(" HTTP/1.1\r\nHost: ").append(host);
    out += "\r\nConnection: close\r\nUser-Agent: subgate\r\n";
    if (method != "GET")
      out.append("Content-Length: ").append(std::to_string(body.size()) + "\r\n");
    for (const auto& [name, value] : headers) {
      // Refuse what would split the head: a caller's mistake must not become header injection.
      if (name.empty() || name.find_first_of(":\r\n \t") != std::string::npos ||
          value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
        return fail(HttpClientError::kProtocol,
                    "invalid request header \"" + name + "\" for " + where_);
      out.append(name).append(": ").append(value).append("\r\n");
    }
    out += "\r\n";
    out.append(body);
    return true;
  }

  bool resolve(AddrInfoList& out) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    std::string service = std::to_string(url_.port);
    if (isIpLiteral(url_.host)) {  // no lookup, no thread
      hints.ai_flags |= AI_NUMERICHOST;
      addrinfo* list = nullptr;
      int rc = getaddrinfo(url_.host.c_str(), service.c_str(), &hints, &list);
      if (rc != 0)
        return fail(HttpClientError::kResolve,
                    "cannot use address " + where_ + ": " + gai_strerror(rc));
      out.reset(list);
      return true;
    }
    auto lookup = std::make_shared<Lookup>();
    try {
      std::thread([lookup, host = url_.host, service, hints] {
        addrinfo* list = nullptr;
        int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
        std::lock_guard lock(lookup->mutex);
        if (lookup->abandoned) {
          if (list) freeaddrinfo(list);
          return;
        }
        lookup->rc = rc;
        lookup->list = list;
        lookup->done = true;
        lookup->done_cv.notify_one();
      }).detach();
    } catch (const std::system_error& e) {
      return fail(HttpClientError::kResolve,
                  "cannot start resolving " + url_.host + ": " + e.what());
    }
    std::unique_lock lock(lookup->mutex);
    if (!lookup->done_cv.wait_until(lock, deadline_, [&] { return lookup->done; })) {
      lookup->abandoned = true;
      return timedOut("resolving " + url_.host);
    }
    if (lookup->rc != 0)
      return fail(HttpClientError::kResolve,
                  "cannot resolve " + url_.host + ": " + gai_strerror(lookup->rc));
    out.reset(lookup->list);
    return true;
  }

  // Waits until fd_ is ready for `events` (or has an error to report). False when `until` passed.
  bool waitFor(short events, Clock::time_point until) {
    for (;;) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, events, 0};
      int n = poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return true;  // let the next socket call report it
    }
  }

  bool connectAny(const addrinfo* list) {
    HttpClientError error = HttpClientError::kConnect;
    std::string message = "no address for " + where_;
    bool named = !isIpLiteral(url_.host);
    for (const addrinfo* ai = list; ai; ai = ai->ai_next) {
      char ip[INET6_ADDRSTRLEN] = "?";
      const void* raw = ai->ai_family == AF_INET6
                            ? static_cast<const void*>(
                                  &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr)
                            : static_cast<const void*>(
                                  &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr);
      inet_ntop(ai->ai_family, raw, ip, sizeof ip);
      std::string target = "connect to " + where_ + (named ? std::string(" (") + ip + ")" : "");

      if (fd_ >= 0) close(fd_);
      fd_ = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd_ < 0) {
        message = target + " failed: cannot create a socket: " + std::strerror(errno);
        continue;
      }
      int err = 0;
      if (connect(fd_, ai->ai_addr, ai->ai_addrlen) != 0) {
        err = errno;
        if (err == EINPROGRESS || err == EINTR) {
          Clock::time_point until = std::min(deadline_, Clock::now() + options_.connect_timeout);
          if (!waitFor(POLLOUT, until)) {
            if (Clock::now() >= deadline_) return timedOut("connecting to " + where_);
            error = HttpClientError::kTimeout;
            message = target + " timed out after " +
                      std::to_string(options_.connect_timeout.count()) + " ms";
            continue;
          }
          socklen_t len = sizeof err;
          if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
      }
      if (err == 0) return true;
      error = HttpClientError::kConnect;
      message = target + " failed: " + std::strerror(err);
    }
    return fail(error, message);
  }

  // After a failed SSL call: the certificate verdict if that was the cause, else OpenSSL's reasons.
  std::string tlsReason(int ssl_error, int saved_errno) {
    long verdict = SSL_get_verify_result(ssl_);
    std::string queued = drainOpensslErrors();
    if (verdict != X509_V_OK)
      return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verdict);
    if (!queued.empty()) return queued;
    if (ssl_error == SSL_ERROR_SYSCALL && saved_errno != 0) return std::strerror(saved_errno);
    return "connection closed by the peer";
  }

  bool handshake() {
    std::string error;
    SSL_CTX* ctx = clientContext(options_.ca_file, error);
    if (!ctx) return fail(HttpClientError::kTls, "TLS setup for " + where_ + " failed: " + error);
    ERR_clear_error();
    ssl_ = SSL_new(ctx);
    bool ok = ssl_ && SSL_set_fd(ssl_, fd_) == 1;
    if (ok && isIpLiteral(url_.host)) {
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), url_.host.c_str()) == 1;
    } else if (ok) {
      ok = SSL_set_tlsext_host_name(ssl_, url_.host.c_str()) == 1 &&
           SSL_set1_host(ssl_, url_.host.c_str()) == 1;
      SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    if (!ok)
      return fail(HttpClientError::kTls,
                  "TLS setup for " + where_ + " failed: " + drainOpensslErrors());
    for (;;) {
      ERR_clear_error();
      errno = 0;
      int rc = SSL_connect(ssl_);
      if (rc == 1) return true;
      int saved_errno = errno;
      int e = SSL_get_error(ssl_, rc);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        return fail(HttpClientError::kTls,
                    "TLS handshake with " + where_ + " failed: " + tlsReason(e, saved_errno));
      if (!waitFor(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline_))
        return timedOut("in the TLS handshake with " + where_);
    }
  }

  bool send(std::string_view data) {
    while (!data.empty()) {
      ERR_clear_error();
      errno = 0;
      ssize_t n = ssl_ ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                       : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      int saved_errno = errno;
      short wait = 0;
      if (ssl_) {
        int e = SSL_get_error(ssl_, static_cast<int>(n));
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
          wait = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        } else {
          return fail(HttpClientError::kReset,
                      "sending request to " + where_ + " failed: " + tlsReason(e, saved_errno));
        }
      } else if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == EINTR) {
        wait = POLLOUT;
      } else {
        return fail(HttpClientError::kReset,
                    "sending request to " + where_ + " failed: " + std::strerror(saved_errno));
      }
      if (!waitFor(wait, deadline_)) return timedOut("sending request to " + where_);
    }
    return true;
  }

  // Appends what arrives next to `out`. Returns the byte count, 0 at end of stream, -1 on failure.
  ssize_t receive(std::string& out) {
    char buf[16384];
    for (;;) {
      ERR_clear_error();
      errno = 0;
      ssize_t n = ssl_ ? SSL_read(ssl_, buf, sizeof buf) : recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        return n;
      }
      int saved_errno = errno;
      short wait = POLLIN;
      if (!ssl_) {
        if (n == 0) return 0;
        if (saved_errno != EAGAIN && saved_errno != EWOULDBLOCK && saved_errno != EINTR)
          return readFailed(HttpClientError::kReset, "reading response from " + where_ +
                                                         " failed: " + std::strerror(saved_errno));
      } else {
        int e = SSL_get_error(ssl_, static_cast<int>(n));
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (e == SSL_ERROR_WANT_WRITE) wait = POLLOUT;
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          // A TCP close without close_notify: fine where the framing proves the body complete.
          if ((e == SSL_ERROR_SYSCALL && saved_errno == 0) ||
              ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            unclean_eof_ = true;
            return 0;
          }
          return readFailed(HttpClientError::kReset, "reading response from " + where_ +
                                                         " failed: " + tlsReason(e, saved_errno));
        }
      }
      if (!waitFor(wait, deadline_)) {
        timedOut("reading response from " + where_);
        return -1;
      }
    }
  }

  bool closedEarly(const std::string& when) {
    return fail(HttpClientError::kReset, "connection closed by " + where_ + " " + when);
  }
  bool tooLarge() {
    return fail(HttpClientError::kTooLarge, "response body from " + where_ + " is larger than " +
                                                std::to_string(options_.max_response_bytes) +
                                                " bytes");
  }

  bool readResponse() {
    http1::Limits limits;
    limits.max_head_bytes = options_.max_head_bytes;
    http1::HeadParser parser(http1::HeadParser::Mode::kResponse, limits);
    HttpResponse& response = result_.response;
    std::string in;
    for (;;) {
      http1::ParseStatus status = in.empty() ? http1::ParseStatus::kIncomplete : parser.parse(in);
      if (status == http1::ParseStatus::kError) {
        if (parser.error() == http1::ParseError::kHeaderTooLarge)
          return fail(HttpClientError::kTooLarge,
                      "response head from " + where_ + " is larger than " +
                          std::to_string(options_.max_head_bytes) + " bytes");
        return fail(HttpClientError::kProtocol,
                    "invalid response from " + where_ + ": " + parser.errorMessage());
      }
      if (status == http1::ParseStatus::kDone) {
        int code = parser.head().status;
        if (code >= 200) break;
        if (code == 101)
          return fail(HttpClientError::kProtocol, "unexpected 101 response from " + where_);
        in.erase(0, parser.head().head_bytes);  // an interim 1xx: the real response follows
        parser.reset();
        continue;
      }
      ssize_t n = receive(in);
      if (n < 0) return false;
      if (n == 0)
        return closedEarly(in.empty() ? "before sending a response"
                                      : "in the middle of the response head");
    }
    const http1::MessageHead& head = parser.head();
    response.status = head.status;
    for (const http1::HeaderField& field : head.headers)
      response.headers.emplace_back(field.name, field.value);
    std::string rest = in.substr(head.head_bytes);

    switch (head.framing) {
      case http1::BodyFraming::kNone: return true;
      case http1::BodyFraming::kContentLength: {
        if (head.content_length > options_.max_response_bytes) return tooLarge();
        auto length = static_cast<size_t>(head.content_length);
        response.body = rest.substr(0, length);
        while (response.body.size() < length) {
          ssize_t n = receive(response.body);
          if (n < 0) return false;
          if (n == 0)
            return closedEarly("after " + std::to_string(response.body.size()) + " of " +
                               std::to_string(length) + " body bytes");
        }
        response.body.resize(length);  // bytes after the body are ignored (Connection: close)
        return true;
      }
      case http1::BodyFraming::kChunked: {
        http1::ChunkedDecoder decoder(options_.max_response_bytes);
        for (;;) {
          std::string_view pending = rest;
          while (!pending.empty()) {
            http1::ChunkedDecoder::Step step = decoder.next(pending);
            response.body.append(step.data);
            pending.remove_prefix(step.consumed);
            if (step.state == http1::ChunkedDecoder::State::kDone) return true;
            if (step.state == http1::ChunkedDecoder::State::kError) {
              if (decoder.bodyTooLarge()) return tooLarge();
              return fail(HttpClientError::kProtocol,
                          "invalid chunked body from " + where_ + ": " + decoder.errorMessage());
            }
            if (step.consumed == 0) break;
          }
          rest.erase(0, rest.size() - pending.size());
          ssize_t n = receive(rest);
          if (n < 0) return false;
          if (n == 0) return closedEarly("in the middle of the chunked body");
        }
      }
      case http1::BodyFraming::kUntilClose: {
        response.body = std::move(rest);
        for (;;) {
          if (response.body.size() > options_.max_response_bytes) return tooLarge();
          ssize_t n = receive(response.body);
          if (n < 0) return false;
          if (n > 0) continue;
          // Only close_notify proves that a close-delimited body over TLS was not cut short.
          if (unclean_eof_)
            return closedEarly("without a TLS close_notify; the body may be truncated");
          return true;
        }
      }
    }
    return true;
  }

  const HttpUrl& url_;
  const HttpClientOptions& options_;
  const std::string where_;  // host:port for messages
  const Clock::time_point deadline_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool unclean_eof_ = false;
  HttpResult result_;
};

bool isDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::optional<HttpUrl> parseHttpUrl(std::string_view url, std::string& error) {
  auto bad = [&](std::string why) {
    error = "invalid URL \"" + std::string(url) + "\": " + std::move(why);
    return std::nullopt;
  };
  HttpUrl out;
  size_t colon = url.find("://");
  std::string scheme(url.substr(0, colon == std::string_view::npos ? 0 : colon));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (scheme != "http" && scheme != "https") return bad("the scheme must be http:// or https://");
  out.tls = scheme == "https";
  std::string_view rest = url.substr(colon + 3);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");

  std::string_view host, port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':'))
      return bad("unexpected text after the IPv6 literal");
    if (!after.empty()) port = after.substr(1);
    unsigned char scratch[sizeof(in6_addr)];
    if (inet_pton(AF_INET6, std::string(host).c_str(), scratch) != 1)
      return bad("invalid IPv6 address");
    if (!after.empty() && port.empty()) return bad("empty port");
  } else {
    size_t sep = authority.find(':');
    host = authority.substr(0, sep);
    if (sep != std::string_view::npos) {
      port = authority.substr(sep + 1);
      if (port.empty()) return bad("empty port");
    }
    if (host.empty()) return bad("missing host");
    for (char c : host)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_')
        return bad("invalid character in the host");
    unsigned char scratch[sizeof(in_addr)];
    if (host.find_first_not_of("0123456789.") == std::string_view::npos &&
        inet_pton(AF_INET, std::string(host).c_str(), scratch) != 1)
      return bad("invalid IPv4 address");
  }
  out.host = std::string(host);
  std::transform(out.host.begin(), out.host.end(), out.host.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  uint16_t default_port = out.tls ? 443 : 80;
  out.port = default_port;
  if (!port.empty()) {
    if (!isDigits(port) || port.size() > 5 || std::stoi(std::string(port)) == 0 ||
        std::stoi(std::string(port)) > 65535)
      return bad("invalid port");
    out.port = static_cast<uint16_t>(std::stoi(std::string(port)));
  }

  rest = rest.substr(0, rest.find('#'));
  for (char c : rest)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return bad("invalid character in the path");
  out.path_and_query =
      rest.empty() || rest.front() == '?' ? "/" + std::string(rest) : std::string(rest);
  bool v6 = out.host.find(':') != std::string::npos;
  out.text = scheme + "://" + (v6 ? "[" + out.host + "]" : out.host) +
             (out.port == default_port ? "" : ":" + std::to_string(out.port)) + out.path_and_query;
  return out;
}

std::optional<std::string_view> HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (http1::iequals(key, name)) return std::string_view(value);
  return std::nullopt;
}

const char* httpClientErrorName(HttpClientError error) {
  switch (error) {
    case HttpClientError::kNone: return "kNone";
    case HttpClientError::kResolve: return "kResolve";
    case HttpClientError::kConnect: return "kConnect";
    case HttpClientError::kTls: return "kTls";
    case HttpClientError::kTimeout: return "kTimeout";
    case HttpClientError::kReset: return "kReset";
    case HttpClientError::kProtocol: return "kProtocol";
    case HttpClientError::kTooLarge: return "kTooLarge";
  }
  return "unknown";
}

HttpResult httpGet(const HttpUrl& url,
                   const std::vector<std::pair<std::string, std::string>>& headers,
                   const HttpClientOptions& options) {
  return Exchange(url, options).run("GET", headers, {});
}

HttpResult httpPost(const HttpUrl& url,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    std::string_view body, const HttpClientOptions& options) {
  return Exchange(url, options).run("POST", headers, body);
}

}  // namespace subgate
