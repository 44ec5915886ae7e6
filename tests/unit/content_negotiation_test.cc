#include "core/pipeline/content_negotiation.h"

#include <gtest/gtest.h>

namespace subgate {
namespace {

TEST(AcceptQuality, NamedRangesOnly) {
  EXPECT_EQ(acceptQuality("", "text/html"), 0);
  EXPECT_EQ(acceptQuality("*/*", "text/html"), 0);
  EXPECT_EQ(acceptQuality("text/*", "text/html"), 0);
  EXPECT_EQ(acceptQuality("text/html", "text/html"), 1);
  EXPECT_EQ(acceptQuality("application/json, Text/HTML ;level=1", "text/html"), 1);
  EXPECT_EQ(acceptQuality("text/htmlx, xtext/html", "text/html"), 0);
}

TEST(AcceptQuality, QValues) {
  EXPECT_DOUBLE_EQ(acceptQuality("text/html;q=0.8", "text/html"), 0.8);
  EXPECT_DOUBLE_EQ(acceptQuality("text/html; Q=0.25 ", "text/html"), 0.25);
  EXPECT_DOUBLE_EQ(acceptQuality("text/html;q=0.2, text/html;q=0.9", "text/html"), 0.9);
  EXPECT_EQ(acceptQuality("text/html;q=0", "text/html"), 0);
  EXPECT_EQ(acceptQuality("text/html;q=0.000", "text/html"), 0);
  EXPECT_EQ(acceptQuality("text/html;q=1.000", "text/html"), 1);
  // Malformed q values count as 0: never chosen.
  for (const char* bad : {"q=", "q=2", "q=1.5", "q=0.0001", "q=abc", "q=0,5", "q=.5"})
    EXPECT_EQ(acceptQuality(std::string("text/html;").append(bad), "text/html"), 0) << bad;
}

}  // namespace
}  // namespace subgate
