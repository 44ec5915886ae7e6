#include "core/tls/tls_context.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace subgate::tls {
namespace {

bool parse(std::vector<std::string> words, Options& options, std::string& error) {
  return parseProtocols(words.data(), words.size(), options, error);
}

TEST(TlsProtocols, VersionsBecomeARange) {
  Options options;
  std::string error;
  ASSERT_TRUE(parse({"TLSv1.3"}, options, error));
  EXPECT_EQ(options.min_version, TLS1_3_VERSION);
  EXPECT_EQ(options.max_version, TLS1_3_VERSION);
  ASSERT_TRUE(parse({"TLSv1.3", "TLSv1.2"}, options, error));
  EXPECT_EQ(options.min_version, TLS1_2_VERSION);
  EXPECT_EQ(options.max_version, TLS1_3_VERSION);
  EXPECT_FALSE(parse({"TLSv1.1"}, options, error));
  EXPECT_NE(error.find("TLSv1.1"), std::string::npos);
  EXPECT_FALSE(parse({"SSLv3", "TLSv1.3"}, options, error));
}

TEST(TlsContext, MissingFilesAreNamed) {
  std::string error;
  EXPECT_EQ(ServerContext::load("/nonexistent/cert.pem", "/nonexistent/key.pem", Options(), error),
            nullptr);
  EXPECT_NE(error.find("cannot read the certificate \"/nonexistent/cert.pem\""), std::string::npos)
      << error;
}

}  // namespace
}  // namespace subgate::tls
