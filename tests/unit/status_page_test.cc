// modules/status: which Accept headers get the status page rather than the JSON.
#include "modules/status/status_page.h"

#include <gtest/gtest.h>

namespace subgate {
namespace {

TEST(StatusPage, BrowsersGetThePage) {
  // Chromium's and Firefox's navigation Accept headers.
  EXPECT_TRUE(
      prefersHtml("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                  "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"));
  EXPECT_TRUE(prefersHtml("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
  EXPECT_TRUE(prefersHtml("text/html"));
  EXPECT_TRUE(prefersHtml("TEXT/HTML"));
  EXPECT_TRUE(prefersHtml(" text/html ; level=1 ; q=0.5 , application/json;q=0.4"));
}

TEST(StatusPage, EverythingElseKeepsTheJson) {
  EXPECT_FALSE(prefersHtml(""));
  EXPECT_FALSE(prefersHtml("*/*"));  // curl
  EXPECT_FALSE(prefersHtml("text/*"));
  EXPECT_FALSE(prefersHtml("application/json"));
  EXPECT_FALSE(prefersHtml("application/json, text/html"));  // a tie goes to the JSON
  EXPECT_FALSE(prefersHtml("text/html;q=0.5, application/json"));
  EXPECT_FALSE(prefersHtml("text/html;q=0"));
  EXPECT_FALSE(prefersHtml("text/html;q=0.000"));
  EXPECT_FALSE(prefersHtml("text/html;q=bad"));
  EXPECT_FALSE(prefersHtml("text/html;q=2"));
  EXPECT_FALSE(prefersHtml("text/htmlx"));
  EXPECT_FALSE(prefersHtml("application/xhtml+xml"));
}

TEST(StatusPage, QualityValuesAreReadAsRfc9110Writes) {
  EXPECT_TRUE(prefersHtml("text/html;q=1.000, application/json;q=0.999"));
  EXPECT_TRUE(prefersHtml("text/html;Q=0.3"));
  EXPECT_TRUE(prefersHtml("text/html;charset=utf-8;q=0.2"));
  EXPECT_FALSE(prefersHtml("text/html;q=0.2, application/json;q=0.3"));
}

}  // namespace
}  // namespace subgate
