#include <gtest/gtest.h>

#include <string>

#include "core/http2/request_head.h"

namespace subgate::http2 {
namespace {

TEST(Http2RequestHead, PseudoHeadersBecomeTheRequestLine) {
  RequestHeadBuilder b;
  b.add(":method", "GET");
  b.add(":scheme", "https");
  b.add(":authority", "example.com");
  b.add(":path", "/a/b?x=1&y");
  b.add("host", "ignored.example");
  b.add("accept", "*/*");
  ASSERT_EQ(b.finish(true), HeadError::kNone);
  const http1::MessageHead& h = b.head();
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/a/b?x=1&y");
  EXPECT_EQ(h.path, "/a/b");
  EXPECT_EQ(h.query, "x=1&y");
  EXPECT_EQ(h.find("host"), "example.com");
  EXPECT_EQ(h.headers.size(), 2u);  // host (from :authority) and accept
  EXPECT_EQ(h.headers[0].name, "host");
  EXPECT_EQ(h.framing, http1::BodyFraming::kNone);
  EXPECT_EQ(h.version_minor, 1);
}

TEST(Http2RequestHead, HostHeaderKeptWithoutAuthority) {
  RequestHeadBuilder b;
  b.add(":method", "GET");
  b.add(":scheme", "http");
  b.add(":path", "/");
  b.add("host", "h.example");
  ASSERT_EQ(b.finish(true), HeadError::kNone);
  EXPECT_EQ(b.head().find("host"), "h.example");
  EXPECT_EQ(b.head().query, "");
}

TEST(Http2RequestHead, Framing) {
  RequestHeadBuilder b;
  for (auto [n, v] : {std::pair{":method", "POST"},
                      {":scheme", "http"},
                      {":path", "/"},
                      {"content-length", "12"}})
    b.add(n, v);
  ASSERT_EQ(b.finish(false), HeadError::kNone);
  EXPECT_EQ(b.head().framing, http1::BodyFraming::kContentLength);
  EXPECT_EQ(b.head().content_length, 12u);

  b.reset();
  for (auto [n, v] : {std::pair{":method", "POST"}, {":scheme", "http"}, {":path", "/"}})
    b.add(n, v);
  ASSERT_EQ(b.finish(false), HeadError::kNone);
  EXPECT_EQ(b.head().framing, http1::BodyFraming::kChunked);  // until END_STREAM

  b.reset();
  for (auto [n, v] :
       {std::pair{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {"content-length", "x"}})
    b.add(n, v);
  EXPECT_EQ(b.finish(false), HeadError::kBadRequest);
}

TEST(Http2RequestHead, CookiesAreJoined) {
  RequestHeadBuilder b;
  for (auto [n, v] : {std::pair{":method", "GET"},
                      {":scheme", "http"},
                      {":path", "/"},
                      {"cookie", "a=1"},
                      {"x", "y"},
                      {"cookie", "b=2"},
                      {"cookie", "c=3"}})
    b.add(n, v);
  ASSERT_EQ(b.finish(true), HeadError::kNone);
  int cookies = 0;
  for (const auto& f : b.head().headers) cookies += f.name == "cookie";
  EXPECT_EQ(cookies, 1);
  EXPECT_EQ(b.head().find("cookie"), "a=1; b=2; c=3");
  EXPECT_EQ(b.head().find("x"), "y");
}

TEST(Http2RequestHead, Errors) {
  RequestHeadBuilder b;
  b.add(":scheme", "http");
  b.add(":path", "/");
  EXPECT_EQ(b.finish(true), HeadError::kBadRequest);  // no :method

  b.reset();
  for (auto [n, v] : {std::pair{":method", "CONNECT"}, {":authority", "a:443"}}) b.add(n, v);
  EXPECT_EQ(b.finish(false), HeadError::kBadRequest);

  b.reset();
  for (auto [n, v] : {std::pair{":method", "GET"}, {":scheme", "http"}, {":path", "relative"}})
    b.add(n, v);
  EXPECT_EQ(b.finish(true), HeadError::kBadRequest);
}

// RFC 8441: an extended CONNECT becomes the HTTP/1.1 WebSocket upgrade the upstream expects.
TEST(Http2RequestHead, ExtendedConnectBecomesAWebSocketUpgrade) {
  RequestHeadBuilder b;
  b.setExtendedConnect(true);
  for (auto [n, v] : {std::pair{":method", "CONNECT"},
                      {":protocol", "websocket"},
                      {":scheme", "https"},
                      {":path", "/chat?room=1"},
                      {":authority", "ws.example"},
                      {"sec-websocket-protocol", "chat, v2"},
                      {"sec-websocket-extensions", "permessage-deflate"},
                      {"sec-websocket-key", "from-client"},
                      {"Sec-WebSocket-Key", "also-from-client"},  // nghttp2 would refuse it
                      {"origin", "https://ws.example"}})
    b.add(n, v);
  ASSERT_EQ(b.finish(false), HeadError::kNone) << b.errorMessage();
  EXPECT_TRUE(b.webSocket());
  const http1::MessageHead& h = b.head();
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/chat?room=1");
  EXPECT_EQ(h.query, "room=1");
  EXPECT_TRUE(h.upgrade);
  EXPECT_EQ(h.framing, http1::BodyFraming::kNone);  // DATA is tunnel bytes, not a body
  EXPECT_EQ(h.find("host"), "ws.example");
  EXPECT_EQ(h.find("upgrade"), "websocket");
  EXPECT_EQ(h.find("sec-websocket-version"), "13");
  EXPECT_EQ(h.find("sec-websocket-protocol"), "chat, v2");
  EXPECT_EQ(h.find("sec-websocket-extensions"), "permessage-deflate");
  EXPECT_EQ(h.find("origin"), "https://ws.example");
  // One key, ours: 16 random bytes in base64.
  int keys = 0;
  for (const auto& f : h.headers) keys += http1::iequals(f.name, "sec-websocket-key");
  EXPECT_EQ(keys, 1);
  std::string_view key = h.find("sec-websocket-key");
  EXPECT_EQ(key.size(), 24u);
  EXPECT_EQ(key.substr(22), "==");
  EXPECT_NE(key, "from-client");

  // Another stream gets another key; a version the client sent is kept.
  std::string first(key);
  b.reset();
  for (auto [n, v] : {std::pair{":method", "CONNECT"},
                      {":protocol", "websocket"},
                      {":scheme", "http"},
                      {":path", "/"},
                      {":authority", "a"},
                      {"sec-websocket-version", "8"}})
    b.add(n, v);
  ASSERT_EQ(b.finish(false), HeadError::kNone);
  EXPECT_NE(b.head().find("sec-websocket-key"), first);
  int versions = 0;
  for (const auto& f : b.head().headers) versions += f.name == "sec-websocket-version";
  EXPECT_EQ(versions, 1);
  EXPECT_EQ(b.head().find("sec-websocket-version"), "8");
}

TEST(Http2RequestHead, ExtendedConnectErrors) {
  auto build = [](bool enabled, std::initializer_list<std::pair<const char*, const char*>> fields,
                  std::string* message = nullptr) {
    RequestHeadBuilder b;
    b.setExtendedConnect(enabled);
    for (auto [n, v] : fields) b.add(n, v);
    HeadError error = b.finish(false);
    if (message) *message = b.errorMessage();
    EXPECT_FALSE(b.webSocket());
    return error;
  };
  std::string message;
  // Without SETTINGS_ENABLE_CONNECT_PROTOCOL.
  EXPECT_EQ(build(false,
                  {{":method", "CONNECT"},
                   {":protocol", "websocket"},
                   {":scheme", "http"},
                   {":path", "/"},
                   {":authority", "a"}},
                  &message),
            HeadError::kBadRequest);
  EXPECT_NE(message.find("SETTINGS_ENABLE_CONNECT_PROTOCOL"), std::string::npos);
  // Another protocol.
  EXPECT_EQ(build(true,
                  {{":method", "CONNECT"},
                   {":protocol", "connect-udp"},
                   {":scheme", "http"},
                   {":path", "/"},
                   {":authority", "a"}},
                  &message),
            HeadError::kBadRequest);
  EXPECT_NE(message.find("unsupported :protocol"), std::string::npos);
  // :protocol on another method.
  EXPECT_EQ(
      build(true,
            {{":method", "GET"}, {":protocol", "websocket"}, {":scheme", "http"}, {":path", "/"}}),
      HeadError::kBadRequest);
  // Plain CONNECT stays refused, with or without the setting.
  EXPECT_EQ(build(true, {{":method", "CONNECT"}, {":authority", "a:443"}}, &message),
            HeadError::kBadRequest);
  EXPECT_NE(message.find("CONNECT is not supported"), std::string::npos);
  // Extended CONNECT needs :path and :scheme like any request, and has no body length.
  EXPECT_EQ(build(true, {{":method", "CONNECT"},
                         {":protocol", "websocket"},
                         {":scheme", "http"},
                         {":authority", "a"}}),
            HeadError::kBadRequest);
  EXPECT_EQ(build(true, {{":method", "CONNECT"},
                         {":protocol", "websocket"},
                         {":scheme", "http"},
                         {":path", "/"},
                         {":authority", "a"},
                         {"content-length", "5"}}),
            HeadError::kBadRequest);
}

TEST(Http2RequestHead, Limits) {
  http1::Limits limits;
  limits.max_head_bytes = 256;
  limits.max_headers = 3;
  limits.max_uri_bytes = 16;
  {
    RequestHeadBuilder b(limits);
    for (auto [n, v] :
         {std::pair{":method", "GET"}, {":scheme", "http"}, {":path", "/0123456789abcdefghij"}})
      b.add(n, v);
    EXPECT_EQ(b.finish(true), HeadError::kUriTooLong);
  }
  {
    RequestHeadBuilder b(limits);
    for (auto [n, v] : {std::pair{":method", "GET"}, {":scheme", "http"}, {":path", "/"}})
      b.add(n, v);
    for (int i = 0; i < 4; ++i) b.add("h", "v");
    EXPECT_EQ(b.finish(true), HeadError::kTooManyHeaders);
  }
  {
    RequestHeadBuilder b(limits);
    for (auto [n, v] : {std::pair{":method", "GET"}, {":scheme", "http"}, {":path", "/"}})
      b.add(n, v);
    b.add("big", std::string(300, 'a'));
    EXPECT_EQ(b.finish(true), HeadError::kHeaderTooLarge);
  }
}

}  // namespace
}  // namespace subgate::http2
