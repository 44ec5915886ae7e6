// core/isolates/module_path.h: where a deployment's local module lives in its isolate's root.
#include "core/isolates/module_path.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace subgate {
namespace {

TEST(ModulePath, ALocalSpecifierIsItsPath) {
  std::string error;
  EXPECT_EQ(localModulePath("file:///src/main.ts", error), "/src/main.ts");
  EXPECT_EQ(localModulePath("file:///main.js", error), "/main.js");
  EXPECT_EQ(localModulePath("file:///a/b%20c/%C3%A9.ts", error), "/a/b c/\xc3\xa9.ts");
  EXPECT_EQ(localModulePath("file:///a/..b/c..", error), "/a/..b/c..");
}

TEST(ModulePath, RefusesWhatCouldLeaveTheRootOrIsNotLocal) {
  for (const std::string& specifier :
       std::vector<std::string>{"",
                                "file://",
                                "file:///",
                                "file://host/a.ts",
                                "http://example.com/a.ts",
                                "FILE:///a.ts",
                                "/src/main.ts",
                                "file:///src/../x.ts",
                                "file:///src/./x.ts",
                                "file:///src//x.ts",
                                "file:///src/x/",
                                "file:///src/..",
                                "file:///a.ts?q",
                                "file:///a.ts#f",
                                "file:///a%2Fb.ts",
                                "file:///a%5cb.ts",
                                "file:///a%00.ts",
                                "file:///a%0a.ts",
                                "file:///a%zz.ts",
                                "file:///a%2",
                                "file:///a\x01.ts",
                                "file:///" + std::string(256, 'a'),
                                "file:///" + std::string(1100, 'a').replace(100, 1, "/")}) {
    std::string error;
    EXPECT_EQ(localModulePath(specifier, error), std::nullopt) << specifier;
    EXPECT_FALSE(error.empty()) << specifier;
  }
  std::string deep = "file://";
  for (int i = 0; i < 33; ++i) deep += "/d";
  std::string error;
  EXPECT_EQ(localModulePath(deep, error), std::nullopt);
  EXPECT_NE(localModulePath(deep.substr(0, deep.size() - 2), error), std::nullopt) << error;
}

TEST(ModulePath, PathWithinComparesWholeSegments) {
  EXPECT_TRUE(pathWithin("/usr/lib/x.so", "/usr/lib"));
  EXPECT_TRUE(pathWithin("/usr/lib", "/usr/lib"));
  EXPECT_TRUE(pathWithin("/usr/lib/x", "/usr/lib/"));
  EXPECT_FALSE(pathWithin("/usr/libx/a.ts", "/usr/lib"));
  EXPECT_FALSE(pathWithin("/usr", "/usr/lib"));
  EXPECT_TRUE(pathWithin("/anything", "/"));
  const std::vector<std::string> mounts = {"/proc", "/tmp", "/opt/deno/deno"};
  EXPECT_EQ(folderHolding("/src/main.ts", mounts), nullptr);
  ASSERT_NE(folderHolding("/tmp/a.ts", mounts), nullptr);
  EXPECT_EQ(*folderHolding("/tmp/a.ts", mounts), "/tmp");
  EXPECT_EQ(folderHolding("/opt/deno/main.ts", mounts), nullptr);
}

}  // namespace
}  // namespace subgate
