#include "core/net/socket_address.h"

#include <gtest/gtest.h>

namespace subgate {
namespace {

TEST(SocketAddress, ParsesTheConfigForms) {
  std::string err;
  EXPECT_EQ(parseSocketAddress("127.0.0.1:8080", 0, err)->text, "127.0.0.1:8080");
  EXPECT_EQ(parseSocketAddress("8080", 0, err)->text, "0.0.0.0:8080");
  EXPECT_EQ(parseSocketAddress("*:81", 0, err)->text, "0.0.0.0:81");
  EXPECT_EQ(parseSocketAddress("localhost:9", 0, err)->text, "127.0.0.1:9");
  EXPECT_EQ(parseSocketAddress("[::1]:443", 0, err)->text, "[::1]:443");
  EXPECT_EQ(parseSocketAddress("10.1.2.3", 80, err)->text, "10.1.2.3:80");
  EXPECT_EQ(parseSocketAddress("unix:/tmp/x.sock", 0, err)->text, "unix:/tmp/x.sock");
}

TEST(SocketAddress, RejectsMalformedAddresses) {
  for (const char* bad : {"127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:", "host.example:80", "[::1",
                          "[::1]x", "127.0.0.1:8a", "unix:", "10.1.2.3"}) {
    std::string err;
    EXPECT_FALSE(parseSocketAddress(bad, 0, err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

}  // namespace
}  // namespace subgate
