// core/bundle/deno_cache: paths and bytes of Deno's HTTP cache entries, pinned to what deno 2.9.6
// wrote in an experiment (core/bundle/deno_cache.h). tests/integration/test_bundle.py runs deno
// on such entries.
#include "core/bundle/deno_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace subgate::bundle {
namespace {

std::string pathOf(std::string_view url) {
  std::string error;
  auto entry = denoCacheEntry(url, "application/typescript", "x", error);
  EXPECT_TRUE(entry.has_value()) << url << ": " << error;
  return entry ? entry->relative_path : std::string();
}

void expectRefused(std::string_view url, std::string_view needle) {
  std::string error;
  EXPECT_FALSE(denoCacheEntry(url, "", "", error).has_value()) << url;
  EXPECT_NE(error.find(needle), std::string::npos) << url << ": " << error;
}

TEST(DenoCache, PathsAsDenoWroteThem) {
  // `deno cache http://127.0.0.1:18731/a.ts` wrote these three files.
  EXPECT_EQ(pathOf("http://127.0.0.1:18731/a.ts"),
            "remote/http/127.0.0.1_PORT18731/"
            "d9d5d46de3e217f3b12e9c70d76a3765005bdb3ee5ad8d444fd35d8ed1254a6a");
  EXPECT_EQ(pathOf("http://127.0.0.1:18731/b.ts"),
            "remote/http/127.0.0.1_PORT18731/"
            "a81fb2301a2cdf1ef8fdb40c803266f0169f8f347d4f5ac9238aec8ad225d0c1");
  // The query is hashed with the path, "?" included.
  EXPECT_EQ(pathOf("http://127.0.0.1:18732/r.ts?q=1"),
            "remote/http/127.0.0.1_PORT18732/"
            "3b51d89d2fcc18b778a7b3457acaa2e1aa8b69522052aa8dea98ac6b15aae530");
}

TEST(DenoCache, Normalization) {
  const std::string a = pathOf("https://example.invalid/a.ts");
  EXPECT_EQ(a.rfind("remote/https/example.invalid/", 0), 0u) << a;
  EXPECT_EQ(pathOf("HTTPS://Example.INVALID/a.ts"), a);
  EXPECT_EQ(pathOf("https://example.invalid:443/a.ts"), a);
  EXPECT_EQ(pathOf("https://example.invalid:/a.ts"), a);
  EXPECT_EQ(pathOf("https://example.invalid/a.ts#fragment"), a);
  EXPECT_NE(pathOf("https://example.invalid/a.ts?"), a);
  EXPECT_EQ(pathOf("https://example.invalid:8443/a.ts")
                .rfind("remote/https/example.invalid_PORT8443/", 0),
            0u);
  EXPECT_EQ(
      pathOf("http://example.invalid:443/a.ts").rfind("remote/http/example.invalid_PORT443/", 0),
      0u);
  EXPECT_EQ(pathOf("https://example.invalid"), pathOf("https://example.invalid/"));
  EXPECT_EQ(pathOf("http://10.0.0.1:8000/a.ts").rfind("remote/http/10.0.0.1_PORT8000/", 0), 0u);
  EXPECT_EQ(pathOf("http://v1.example/a.ts").rfind("remote/http/v1.example/", 0), 0u);
}

TEST(DenoCache, RefusesWhatDenoWouldHashDifferently) {
  expectRefused("ftp://example.invalid/a.ts", "not an http or https URL");
  expectRefused("file:///a.ts", "not an http or https URL");
  expectRefused("https://user@example.invalid/a.ts", "host");
  expectRefused("https://[::1]/a.ts", "host");
  expectRefused("https:///a.ts", "no host");
  expectRefused("http://127.1/a.ts", "IPv4");
  expectRefused("http://0x7f.0.0.1/a.ts", "IPv4");
  expectRefused("http://127.0.0.01/a.ts", "IPv4");
  expectRefused("http://256.0.0.1/a.ts", "IPv4");
  expectRefused("http://example.123/a.ts", "IPv4");
  expectRefused("https://example.invalid:99999/a.ts", "bad port");
  expectRefused("https://example.invalid:8x/a.ts", "bad port");
  expectRefused("https://example.invalid/a b.ts", "encode");
  expectRefused("https://example.invalid/a\\b.ts", "encode");
  expectRefused("https://example.invalid/caf\xc3\xa9.ts", "encode");
  expectRefused("https://example.invalid/?q='", "encode");
  expectRefused("https://example.invalid/x/../a.ts", "dot segment");
  expectRefused("https://example.invalid/x/%2E/a.ts", "dot segment");
  expectRefused("https://example.invalid/x/..", "dot segment");
}

TEST(DenoCache, EntryBytes) {
  std::string error;
  auto entry = denoCacheEntry("https://example.invalid/a.ts", "application/typescript",
                              "export const a = 1;\n", error);
  ASSERT_TRUE(entry) << error;
  EXPECT_EQ(entry->bytes,
            "export const a = 1;\n\n// denoCacheMetadata="
            R"({"headers":{"content-type":"application/typescript"},)"
            R"("url":"https://example.invalid/a.ts"})");
  // The metadata is the file's last line whatever the body ends with; JSON escapes newlines.
  entry = denoCacheEntry("https://example.invalid/a.ts", "text/plain\n", "no newline", error);
  ASSERT_TRUE(entry) << error;
  EXPECT_EQ(entry->bytes.substr(entry->bytes.rfind('\n')),
            "\n// denoCacheMetadata="
            R"({"headers":{"content-type":"text/plain\n"},"url":"https://example.invalid/a.ts"})");
  entry = denoCacheEntry("https://example.invalid/a.ts", "", "", error);
  ASSERT_TRUE(entry) << error;
  EXPECT_EQ(entry->bytes,
            R"(
// denoCacheMetadata={"headers":{},"url":"https://example.invalid/a.ts"})");
  EXPECT_FALSE(denoCacheEntry("https://example.invalid/a.ts", "\xff", "", error));
}

TEST(DenoCache, RedirectBytes) {
  std::string error;
  auto entry = denoCacheRedirect("https://example.invalid/latest.ts", "/v1/a.ts", error);
  ASSERT_TRUE(entry) << error;
  EXPECT_EQ(entry->relative_path, pathOf("https://example.invalid/latest.ts"));
  EXPECT_EQ(entry->bytes,
            "\n// denoCacheMetadata="
            R"({"headers":{"location":"/v1/a.ts"},"url":"https://example.invalid/latest.ts"})");
  EXPECT_FALSE(denoCacheRedirect("https://example.invalid/latest.ts", "", error));
}

}  // namespace
}  // namespace subgate::bundle
