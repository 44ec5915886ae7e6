#include "core/http2/request_head.h"

#include <gtest/gtest.h>

#include <string>

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
  for (auto [n, v] : {std::pair{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {"content-length", "12"}})
    b.add(n, v);
  ASSERT_EQ(b.finish(false), HeadError::kNone);
  EXPECT_EQ(b.head().framing, http1::BodyFraming::kContentLength);
  EXPECT_EQ(b.head().content_length, 12u);

  b.reset();
  for (auto [n, v] : {std::pair{":method", "POST"}, {":scheme", "http"}, {":path", "/"}}) b.add(n, v);
  ASSERT_EQ(b.finish(false), HeadError::kNone);
  EXPECT_EQ(b.head().framing, http1::BodyFraming::kChunked);  // until END_STREAM

  b.reset();
  for (auto [n, v] : {std::pair{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {"content-length", "x"}})
    b.add(n, v);
  EXPECT_EQ(b.finish(false), HeadError::kBadRequest);
}

TEST(Http2RequestHead, CookiesAreJoined) {
  RequestHeadBuilder b;
  for (auto [n, v] : {std::pair{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"cookie", "a=1"},
                      {"x", "y"}, {"cookie", "b=2"}, {"cookie", "c=3"}})
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
  for (auto [n, v] : {std::pair{":method", "GET"}, {":scheme", "http"}, {":path", "relative"}}) b.add(n, v);
  EXPECT_EQ(b.finish(true), HeadError::kBadRequest);
}

TEST(Http2RequestHead, Limits) {
  http1::Limits limits;
  limits.max_head_bytes = 256;
  limits.max_headers = 3;
  limits.max_uri_bytes = 16;
  {
    RequestHeadBuilder b(limits);
    for (auto [n, v] : {std::pair{":method", "GET"}, {":scheme", "http"}, {":path", "/0123456789abcdefghij"}})
      b.add(n, v);
    EXPECT_EQ(b.finish(true), HeadError::kUriTooLong);
  }
  {
    RequestHeadBuilder b(limits);
    for (auto [n, v] : {std::pair{":method", "GET"}, {":scheme", "http"}, {":path", "/"}}) b.add(n, v);
    for (int i = 0; i < 4; ++i) b.add("h", "v");
    EXPECT_EQ(b.finish(true), HeadError::kTooManyHeaders);
  }
  {
    RequestHeadBuilder b(limits);
    for (auto [n, v] : {std::pair{":method", "GET"}, {":scheme", "http"}, {":path", "/"}}) b.add(n, v);
    b.add("big", std::string(300, 'a'));
    EXPECT_EQ(b.finish(true), HeadError::kHeaderTooLarge);
  }
}

}  // namespace
}  // namespace subgate::http2
