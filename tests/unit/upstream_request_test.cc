#include <gtest/gtest.h>

#include "core/pipeline/request.h"
#include "core/upstream/proxy_session.h"

namespace subgate {
namespace {

// Parses `raw` as a client request and returns the head subgate sends upstream for it.
std::string upstreamHeadFor(const std::string& raw, std::string_view remote = "10.0.0.7") {
  http1::HeadParser parser(http1::HeadParser::Mode::kRequest);
  EXPECT_EQ(parser.parse(raw), http1::ParseStatus::kDone) << parser.errorMessage();
  ServerConf server;
  Request req;
  req.begin(nullptr, nullptr, nullptr, &server, &parser.head(), remote);
  IoBuffer out;
  buildUpstreamRequestHead(req, out);
  return std::string(out.view());
}

TEST(UpstreamRequest, KeepsEndToEndHeadersAndAddsForwardingOnes) {
  EXPECT_EQ(upstreamHeadFor("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"),
            "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
            "x-forwarded-for: 10.0.0.7\r\nvia: 1.1 subgate\r\n\r\n");
}

TEST(UpstreamRequest, RemovesHopByHopHeadersAndThoseNamedInConnection) {
  std::string head = upstreamHeadFor(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n"
      "Proxy-Connection: x\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: foo\r\nX-Secret: 1\r\n"
      "X-Kept: 2\r\n\r\n");
  EXPECT_EQ(head,
            "GET / HTTP/1.1\r\nHost: h\r\nX-Kept: 2\r\n"
            "x-forwarded-for: 10.0.0.7\r\nvia: 1.1 subgate\r\n\r\n");
}

TEST(UpstreamRequest, AppendsToForwardedForAndVia) {
  std::string head = upstreamHeadFor(
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\n"
      "Via: 1.1 edge\r\n\r\n");
  EXPECT_NE(head.find("x-forwarded-for: 1.1.1.1, 2.2.2.2, 10.0.0.7\r\n"), std::string::npos)
      << head;
  EXPECT_NE(head.find("via: 1.1 edge, 1.1 subgate\r\n"), std::string::npos) << head;
}

TEST(UpstreamRequest, ReframesBodies) {
  std::string fixed = upstreamHeadFor(
      "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_NE(fixed.find("content-length: 5\r\n"), std::string::npos);
  EXPECT_EQ(fixed.find("Expect"), std::string::npos);  // answered by subgate itself
  std::string chunked =
      upstreamHeadFor("POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_NE(chunked.find("transfer-encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(chunked.find("Transfer-Encoding"), std::string::npos);
}

TEST(UpstreamRequest, HttpOneZeroClientsAreMarkedInVia) {
  std::string head = upstreamHeadFor("GET / HTTP/1.0\r\n\r\n");
  EXPECT_NE(head.find("via: 1.0 subgate\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.rfind("GET / HTTP/1.1\r\n", 0), 0u);
}

TEST(UpstreamRequest, PassesAnUpgradeRequestOn) {
  std::string head = upstreamHeadFor(
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n\r\n");
  EXPECT_NE(head.find("connection: upgrade\r\nupgrade: websocket\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Sec-WebSocket-Key: abc\r\n"), std::string::npos) << head;
  // Upgrade without Connection: upgrade is no upgrade request: both stay hop-by-hop.
  head = upstreamHeadFor("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_EQ(head.find("pgrade"), std::string::npos) << head;
}

TEST(UpstreamRequest, AppliesIngressEdits) {
  http1::HeadParser parser(http1::HeadParser::Mode::kRequest);
  ASSERT_EQ(parser.parse("GET /old?q=1 HTTP/1.1\r\nHost: client\r\nX-Drop: 1\r\nX-Keep: 2\r\n\r\n"),
            http1::ParseStatus::kDone);
  ServerConf server;
  Request req;
  req.begin(nullptr, nullptr, nullptr, &server, &parser.head(), "10.0.0.7");
  req.route().target = "/new?q=1";
  req.route().forwarded_host = "tenant.example";
  req.route().drop_headers.push_back("x-drop");
  req.route().add_headers.emplace_back("x-added", "yes");
  IoBuffer out;
  buildUpstreamRequestHead(req, out);
  EXPECT_EQ(std::string(out.view()),
            "GET /new?q=1 HTTP/1.1\r\nX-Keep: 2\r\nhost: tenant.example\r\nx-added: yes\r\n"
            "x-forwarded-for: 10.0.0.7\r\nvia: 1.1 subgate\r\n\r\n");
}

TEST(UpstreamRequest, HopByHopNames) {
  for (const char* name : {"connection", "Keep-Alive", "proxy-connection", "TE", "trailer",
                           "Transfer-Encoding", "upgrade", "Content-Length"}) {
    EXPECT_TRUE(http1::isHopByHopHeader(name)) << name;
  }
  for (const char* name : {"host", "x-te", "content-type", "trailers", "via"}) {
    EXPECT_FALSE(http1::isHopByHopHeader(name)) << name;
  }
}

TEST(UpstreamRequest, RequestTrailersLoseFramingRoutingAndHopByHopFields) {
  std::string out;
  appendForwardedTrailers(
      "X-Checksum: abc\r\nContent-Length: 5\r\nHost: elsewhere\r\n"
      "TE: trailers\r\nTrailer: x\r\nConnection: close\r\n"
      "Transfer-Encoding: chunked\r\nx-part: 2\r\n",
      out);
  EXPECT_EQ(out, "X-Checksum: abc\r\nx-part: 2\r\n");
  out.clear();
  appendForwardedTrailers("", out);
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace subgate
