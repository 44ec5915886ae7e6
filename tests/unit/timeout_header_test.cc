#include "modules/timeout/timeout_header.h"

#include <gtest/gtest.h>

namespace subgate {
namespace {

TEST(TimeoutHeader, AcceptsPositiveIntegers) {
  EXPECT_EQ(parseTimeoutHeader("1")->count(), 1);
  EXPECT_EQ(parseTimeoutHeader("250")->count(), 250);
  EXPECT_EQ(parseTimeoutHeader("9999999999")->count(), 9999999999);
}

TEST(TimeoutHeader, RejectsEverythingElse) {
  for (const char* bad : {"", "0", "-5", "abc", "1.5", "+5", " 5", "5 ", "12345678901", "1e3"}) {
    EXPECT_FALSE(parseTimeoutHeader(bad)) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace subgate
