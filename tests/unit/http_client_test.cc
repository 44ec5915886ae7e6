#include "core/http_client/http_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace subgate {
namespace {

using std::chrono::milliseconds;

// ---- URL parsing -------------------------------------------------------------------------

TEST(HttpUrl, ParsesSchemesHostsPortsAndPaths) {
  std::string err;
  auto url = parseHttpUrl("https://Origin.Example/v1/boot?deployment_id=abc#frag", err);
  ASSERT_TRUE(url) << err;
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "origin.example");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->path_and_query, "/v1/boot?deployment_id=abc");
  EXPECT_EQ(url->text, "https://origin.example/v1/boot?deployment_id=abc");

  url = parseHttpUrl("HTTP://127.0.0.1:8080", err);
  ASSERT_TRUE(url) << err;
  EXPECT_FALSE(url->tls);
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->path_and_query, "/");
  EXPECT_EQ(url->text, "http://127.0.0.1:8080/");

  url = parseHttpUrl("https://[::1]:8443/boot", err);
  ASSERT_TRUE(url) << err;
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 8443);
  EXPECT_EQ(url->text, "https://[::1]:8443/boot");

  url = parseHttpUrl("http://[2001:db8::1]?x=1", err);
  ASSERT_TRUE(url) << err;
  EXPECT_EQ(url->host, "2001:db8::1");
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->path_and_query, "/?x=1");

  url = parseHttpUrl("http://origin_1.internal:80/", err);
  ASSERT_TRUE(url) << err;
  EXPECT_EQ(url->text, "http://origin_1.internal/");
}

TEST(HttpUrl, RejectsMalformedOrUnsupportedUrls) {
  for (const char* bad : {"",
                          "origin.example/boot",
                          "ftp://origin.example/",
                          "http:/origin.example",
                          "http://",
                          "http:///path",
                          "http://:80/",
                          "http://user@origin.example/",
                          "http://origin.example:/",
                          "http://origin.example:0/",
                          "http://origin.example:65536/",
                          "http://origin.example:8a/",
                          "http://[::1/",
                          "http://[::1]x/",
                          "http://[not-v6]/",
                          "http://[::1]:/",
                          "http://999.1.1.1/",
                          "http://orig in.example/",
                          "http://origin.example/a b",
                          "http://origin.example/\x01"}) {
    std::string err;
    EXPECT_FALSE(parseHttpUrl(bad, err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

TEST(HttpResponse, HeaderLookupIsCaseInsensitiveFirstMatch) {
  HttpResponse response;
  response.headers = {{"X-Deno-Config", "{}"}, {"Set-Cookie", "a"}, {"set-cookie", "b"}};
  EXPECT_EQ(response.header("x-deno-config"), "{}");
  EXPECT_EQ(response.header("SET-COOKIE"), "a");
  EXPECT_FALSE(response.header("content-length"));
}

// ---- Loopback exchanges ------------------------------------------------------------------
// The one place unit tests use sockets: a server thread on 127.0.0.1, port 0.

class LoopbackServer {
 public:
  // Accepts one connection, reads the request head, writes `pieces` one send() each and closes.
  // With `answer` false it reads the request and then holds the connection open until destroyed.
  explicit LoopbackServer(std::vector<std::string> pieces, bool answer = true)
      : pieces_(std::move(pieces)), answer_(answer) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(listen_fd_, 4) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || pipe(stop_) != 0)
      ADD_FAILURE() << "cannot set up the loopback server";
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~LoopbackServer() {
    char stop = 'x';
    EXPECT_EQ(write(stop_[1], &stop, 1), 1);
    thread_.join();
    close(listen_fd_);
    close(stop_[0]);
    close(stop_[1]);
  }

  uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/boot") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string request() {
    std::lock_guard lock(mutex_);
    return request_;
  }

 private:
  // Waits for `fd` to be readable or for the stop signal; true when `fd` is readable.
  bool waitReadable(int fd) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_[0], POLLIN, 0}};
    for (;;) {
      if (poll(p, 2, 10'000) <= 0) return false;  // bounded: a stuck test fails, not hangs
      if (p[1].revents) return false;
      if (p[0].revents) return true;
    }
  }

  void serve() {
    if (!waitReadable(listen_fd_)) return;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    std::string head;
    while (head.find("\r\n\r\n") == std::string::npos && waitReadable(fd)) {
      char buf[4096];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      head.append(buf, static_cast<size_t>(n));
    }
    {
      std::lock_guard lock(mutex_);
      request_ = head;
    }
    if (answer_) {
      for (const std::string& piece : pieces_)
        if (send(fd, piece.data(), piece.size(), MSG_NOSIGNAL) < 0) break;
    } else {
      waitReadable(stop_[0]);
    }
    close(fd);
  }

  std::vector<std::string> pieces_;
  bool answer_;
  int listen_fd_ = -1;
  int stop_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::string request_;
};

HttpResult get(const std::string& text, const HttpClientOptions& options = {},
               const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  std::string err;
  auto url = parseHttpUrl(text, err);
  if (!url) {
    HttpResult result;
    result.error = HttpClientError::kProtocol;
    result.message = err;
    return result;
  }
  return httpGet(*url, headers, options);
}

TEST(HttpClientLoopback, ContentLengthBodyAndRequestHead) {
  LoopbackServer server(
      {"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Deno-Config: {\"a\":1}\r\n\r\n", "console.log"});
  HttpResult result =
      get(server.url("/boot?deployment_id=d1"), {}, {{"Authorization", "Bearer t"}});
  ASSERT_EQ(result.error, HttpClientError::kNone) << result.message;
  EXPECT_TRUE(result.message.empty());
  EXPECT_EQ(result.response.status, 200);
  EXPECT_EQ(result.response.body, "console.log");
  EXPECT_EQ(result.response.header("x-deno-config"), "{\"a\":1}");
  EXPECT_EQ(result.response.header("CONTENT-LENGTH"), "11");
  EXPECT_EQ(server.request(), "GET /boot?deployment_id=d1 HTTP/1.1\r\nHost: 127.0.0.1:" +
                                  std::to_string(server.port()) +
                                  "\r\nConnection: close\r\nUser-Agent: subgate\r\n"
                                  "Authorization: Bearer t\r\n\r\n");
}

TEST(HttpClientLoopback, PostSendsItsBodyWithAContentLength) {
  LoopbackServer server({"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"});
  std::string err;
  auto url = parseHttpUrl(server.url("/v1/events"), err);
  ASSERT_TRUE(url) << err;
  HttpResult result = httpPost(*url, {{"Content-Encoding", "gzip"}}, "hello", {});
  ASSERT_EQ(result.error, HttpClientError::kNone) << result.message;
  EXPECT_EQ(result.response.status, 200);
  EXPECT_EQ(server.request(),
            "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port()) +
                "\r\nConnection: close\r\nUser-Agent: subgate\r\n"
                "Content-Length: 5\r\nContent-Encoding: gzip\r\n\r\nhello");
}

TEST(HttpClientLoopback, ChunkedBodyAfterAnInterimResponse) {
  LoopbackServer server({"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n",
                         "Transfer-Encoding: chunked\r\n\r\n5\r\nhel",
                         "lo\r\n6;ext=1\r\n world\r\n", "0\r\nX-Trailer: t\r\n\r\n"});
  HttpResult result = get(server.url());
  ASSERT_EQ(result.error, HttpClientError::kNone) << result.message;
  EXPECT_EQ(result.response.status, 200);
  EXPECT_EQ(result.response.body, "hello world");
}

TEST(HttpClientLoopback, CloseDelimitedBody) {
  LoopbackServer server({"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst ", "second"});
  HttpResult result = get(server.url());
  ASSERT_EQ(result.error, HttpClientError::kNone) << result.message;
  EXPECT_EQ(result.response.body, "first second");
}

TEST(HttpClientLoopback, ErrorStatusIsPassedBack) {
  LoopbackServer server({"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno deploy"});
  HttpResult result = get(server.url());
  ASSERT_EQ(result.error, HttpClientError::kNone) << result.message;
  EXPECT_EQ(result.response.status, 404);
  EXPECT_EQ(result.response.body, "no deploy");
}

TEST(HttpClientLoopback, ResponsesOverTheCapAreRejected) {
  HttpClientOptions options;
  options.max_response_bytes = 10;
  const std::vector<std::vector<std::string>> responses = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n01234567890"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: "
       "chunked\r\n\r\n6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n"},
      {"HTTP/1.1 200 OK\r\n\r\n012345", "678901"},
  };
  for (const auto& pieces : responses) {
    LoopbackServer server(pieces);
    HttpResult result = get(server.url(), options);
    EXPECT_EQ(result.error, HttpClientError::kTooLarge) << pieces[0] << ": " << result.message;
    EXPECT_NE(result.message.find("127.0.0.1:" + std::to_string(server.port())), std::string::npos);
  }
  options.max_head_bytes = 64;
  LoopbackServer server({"HTTP/1.1 200 OK\r\nX-Big: " + std::string(100, 'x') + "\r\n\r\n"});
  EXPECT_EQ(get(server.url(), options).error, HttpClientError::kTooLarge);
}

TEST(HttpClientLoopback, SilentServerTimesOutWithinTheDeadline) {
  LoopbackServer server({}, /*answer=*/false);
  HttpClientOptions options;
  options.total_timeout = milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  HttpResult result = get(server.url(), options);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.error, HttpClientError::kTimeout) << result.message;
  EXPECT_EQ(result.message, "timed out after 300 ms reading response from 127.0.0.1:" +
                                std::to_string(server.port()));
  EXPECT_GE(elapsed, milliseconds(290));
  EXPECT_LT(elapsed, milliseconds(1500));
}

TEST(HttpClientLoopback, ConnectionRefused) {
  // A bound socket that does not listen: connecting to its port is refused, and the port stays
  // ours for the length of the test.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string where = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  HttpResult result = get("http://" + where + "/boot");
  close(fd);
  EXPECT_EQ(result.error, HttpClientError::kConnect);
  EXPECT_EQ(result.message, "connect to " + where + " failed: Connection refused");
}

TEST(HttpClientLoopback, ResolvesNamesAndTriesEachAddress) {
  // "localhost" may resolve to ::1 first; the server listens on 127.0.0.1 only.
  LoopbackServer server({"HTTP/1.1 204 No Content\r\n\r\n"});
  HttpResult result = get("http://localhost:" + std::to_string(server.port()) + "/");
  ASSERT_EQ(result.error, HttpClientError::kNone) << result.message;
  EXPECT_EQ(result.response.status, 204);
  EXPECT_NE(server.request().find("\r\nHost: localhost:"), std::string::npos);
}

TEST(HttpClientLoopback, TruncatedAndMalformedResponses) {
  struct Case {
    std::string response;
    HttpClientError error;
  };
  const std::vector<Case> cases = {
      {"", HttpClientError::kReset},
      {"HTTP/1.1 200 OK\r\nContent-Le", HttpClientError::kReset},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", HttpClientError::kReset},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", HttpClientError::kReset},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", HttpClientError::kProtocol},
      {"SMTP ready\r\n\r\n", HttpClientError::kProtocol},
  };
  for (const Case& c : cases) {
    LoopbackServer server({c.response});
    HttpResult result = get(server.url());
    EXPECT_EQ(result.error, c.error) << c.response << ": " << result.message;
  }
}

TEST(HttpClientLoopback, RejectsHeaderInjection) {
  HttpUrl url{false, "127.0.0.1", 9, "/", "http://127.0.0.1:9/"};
  HttpResult result = httpGet(url, {{"X-A", "b\r\nX-Evil: 1"}}, {});
  EXPECT_EQ(result.error, HttpClientError::kProtocol);
}

}  // namespace
}  // namespace subgate
