#include <gtest/gtest.h>

#include <string>

#include "core/log/log.h"

namespace subgate {
namespace {

TEST(LogSafe, EscapesControlBytesAndKeepsTheRest) {
  EXPECT_EQ(logSafe("plain text, é and \"quotes\" \\ stay"),
            "plain text, é and \"quotes\" \\ stay");
  EXPECT_EQ(logSafe(std::string("a\nb\rc\td\0e\x1b[31mf\x7fg", 17)),
            "a\\x0ab\\x0dc\\x09d\\x00e\\x1b[31mf\\x7fg");
  EXPECT_EQ(logSafe(""), "");
  std::string out = "kept: ";
  appendLogSafe(out, "\x01");
  EXPECT_EQ(out, "kept: \\x01");
}

}  // namespace
}  // namespace subgate
