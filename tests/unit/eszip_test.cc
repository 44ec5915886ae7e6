// core/bundle/eszip: the real @deno/eszip files of the fuzz corpus, round trips through the
// writer in every version, and one test per malformation and limit.
#include "core/bundle/eszip.h"

#include <gtest/gtest.h>
#include <jansson.h>
#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/bundle/eszip_writer.h"

namespace subgate::bundle {
namespace {

const std::string kCorpus = std::string(SUBGATE_SOURCE_DIR) + "/tests/fuzz/corpus/";

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

EszipLimits npmAllowed() {
  EszipLimits limits;
  limits.allow_npm = true;
  return limits;
}

// Parses and expects success; the error is shown otherwise.
Eszip mustParse(std::string_view bytes, const EszipLimits& limits = npmAllowed()) {
  std::string error;
  auto eszip = parseEszip(bytes, limits, error);
  EXPECT_TRUE(eszip.has_value()) << error;
  return eszip.value_or(Eszip{});
}

// Parses and expects failure with an error that contains `needle`.
void expectError(std::string_view bytes, std::string_view needle,
                 const EszipLimits& limits = EszipLimits{}) {
  std::string error;
  auto eszip = parseEszip(bytes, limits, error);
  EXPECT_FALSE(eszip.has_value()) << "parsed, expected: " << needle;
  EXPECT_NE(error.find(needle), std::string::npos) << "error: " << error;
}

void expectSame(const Eszip& a, const Eszip& b) {
  ASSERT_EQ(a.modules.size(), b.modules.size());
  for (size_t i = 0; i < a.modules.size(); ++i) {
    EXPECT_EQ(a.modules[i].specifier, b.modules[i].specifier);
    EXPECT_EQ(a.modules[i].kind, b.modules[i].kind) << a.modules[i].specifier;
    EXPECT_EQ(a.modules[i].source, b.modules[i].source) << a.modules[i].specifier;
    EXPECT_EQ(a.modules[i].source_map, b.modules[i].source_map) << a.modules[i].specifier;
  }
  ASSERT_EQ(a.redirects.size(), b.redirects.size());
  for (size_t i = 0; i < a.redirects.size(); ++i) {
    EXPECT_EQ(a.redirects[i].specifier, b.redirects[i].specifier);
    EXPECT_EQ(a.redirects[i].target, b.redirects[i].target);
  }
  ASSERT_EQ(a.npm_packages.size(), b.npm_packages.size());
  for (size_t i = 0; i < a.npm_packages.size(); ++i) {
    EXPECT_EQ(a.npm_packages[i].id, b.npm_packages[i].id);
    EXPECT_EQ(a.npm_packages[i].dependencies, b.npm_packages[i].dependencies);
  }
  ASSERT_EQ(a.npm_roots.size(), b.npm_roots.size());
  for (size_t i = 0; i < a.npm_roots.size(); ++i) {
    EXPECT_EQ(a.npm_roots[i].request, b.npm_roots[i].request);
    EXPECT_EQ(a.npm_roots[i].package, b.npm_roots[i].package);
  }
}

// Every kind, an empty source, a source map, a two-hop redirect chain.
Eszip sample(bool with_npm) {
  Eszip eszip;
  eszip.modules = {
      {"file:///app/main.ts", EszipModuleKind::kJavaScript,
       "import x from './data.json' with { type: 'json' };\nconst n: number = x.n;\n",
       R"({"version":3,"mappings":"AAAA"})"},
      {"file:///app/data.json", EszipModuleKind::kJson, R"({"n": 1})", ""},
      {"file:///app/deno.jsonc", EszipModuleKind::kJsonc, "{ // c\n}", ""},
      {"file:///app/empty.js", EszipModuleKind::kJavaScript, "", ""},
      {"npm:/x@1.0.0/package.json", EszipModuleKind::kOpaqueData, "{}", ""},
      {"file:///app/add.wasm", EszipModuleKind::kWasm, std::string("\0asm\1\0\0\0", 8), ""},
  };
  eszip.redirects = {{"https://example.com/latest.ts", "https://example.com/v1.ts"},
                     {"https://example.com/v1.ts", "file:///app/main.ts"}};
  if (with_npm) {
    eszip.npm_packages = {{"chalk@5.3.0", {{"ansi", 1}}}, {"ansi@1.0.0", {}}};
    eszip.npm_roots = {{"chalk@5", 0}};
  }
  return eszip;
}

// --- the corpus: files @deno/eszip 0.106 wrote (tests/fuzz/corpus/make_eszip_corpus.mjs) ---

TEST(EszipCorpus, EveryFileParsesAsDenoEszipReadsIt) {
  json_error_t json_error;
  json_t* manifest = json_load_file((kCorpus + "eszip.json").c_str(), 0, &json_error);
  ASSERT_NE(manifest, nullptr) << json_error.text;
  size_t files = 0;
  const char* name;
  json_t* expected;
  json_object_foreach(manifest, name, expected) {
    SCOPED_TRACE(name);
    ++files;
    const std::string bytes = readFile(kCorpus + "eszip/" + name);
    ASSERT_TRUE(looksLikeEszip(bytes));
    const Eszip eszip = mustParse(bytes, EszipLimits{});
    EXPECT_EQ(eszip.version, EszipVersion::kV2Dot3);
    EXPECT_EQ(eszip.checksum, EszipChecksum::kNone);
    EXPECT_FALSE(eszip.hasNpm());
    // The specifiers in file order: modules first, then redirects (how @deno/eszip writes).
    json_t* specifiers = json_object_get(expected, "specifiers");
    ASSERT_EQ(json_array_size(specifiers), eszip.modules.size() + eszip.redirects.size());
    for (size_t i = 0; i < json_array_size(specifiers); ++i) {
      const std::string specifier = json_string_value(json_array_get(specifiers, i));
      EXPECT_EQ(specifier, i < eszip.modules.size()
                               ? eszip.modules[i].specifier
                               : eszip.redirects[i - eszip.modules.size()].specifier);
      const EszipModule* module = eszip.find(specifier);
      ASSERT_NE(module, nullptr) << specifier;
      EXPECT_EQ(sha256Hex(module->source),
                json_string_value(
                    json_object_get(json_object_get(expected, "sources"), specifier.c_str())))
          << specifier;
    }
  }
  json_decref(manifest);
  EXPECT_EQ(files, 5u);
}

TEST(EszipCorpus, KindsAndRedirects) {
  const Eszip json = mustParse(readFile(kCorpus + "eszip/ts_json_remote"));
  ASSERT_EQ(json.modules.size(), 3u);
  EXPECT_EQ(json.modules[1].specifier, "file:///app/config.json");
  EXPECT_EQ(json.modules[1].kind, EszipModuleKind::kJson);
  EXPECT_TRUE(json.modules[1].source_map.empty());
  // @deno/eszip stores emitted JavaScript with a source map for TypeScript.
  EXPECT_EQ(json.modules[2].kind, EszipModuleKind::kJavaScript);
  EXPECT_EQ(json.modules[2].source.find(": string"), std::string::npos);
  EXPECT_FALSE(json.modules[2].source_map.empty());

  const Eszip redirects = mustParse(readFile(kCorpus + "eszip/redirects"));
  ASSERT_EQ(redirects.redirects.size(), 2u);
  EXPECT_EQ(redirects.redirects[0].specifier, "https://example.com/latest.ts");
  EXPECT_EQ(redirects.redirects[0].target, "https://example.com/v2/mod.ts");
  EXPECT_EQ(redirects.find("https://example.com/stable.ts"), &redirects.modules[1]);
  EXPECT_EQ(redirects.find("https://example.com/v2.ts"), nullptr);

  EXPECT_EQ(mustParse(readFile(kCorpus + "eszip/graph_50")).modules.size(), 52u);
}

TEST(EszipCorpus, RoundTripsThroughTheWriter) {
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus + "eszip")) {
    SCOPED_TRACE(entry.path().string());
    const Eszip original = mustParse(readFile(entry.path()));
    const Eszip again = mustParse(writeEszip(original));
    expectSame(original, again);
  }
}

// --- magic ---

TEST(EszipMagic, Sniffing) {
  for (std::string_view magic : {"ESZIP_V2", "ESZIP2.1", "ESZIP2.2", "ESZIP2.3"}) {
    EXPECT_TRUE(looksLikeEszip(std::string(magic) + "rest")) << magic;
    EXPECT_TRUE(looksLikeEszip(magic)) << magic;
  }
  EXPECT_FALSE(looksLikeEszip(""));
  EXPECT_FALSE(looksLikeEszip("ESZIP2."));
  EXPECT_FALSE(looksLikeEszip("ESZIP2.4"));
  // The v2 magic and "_1": there is no "ESZIP_V2_1" magic (2.1's is "ESZIP2.1"), so this
  // sniffs as version 2.
  EXPECT_TRUE(looksLikeEszip("ESZIP_V2_1"));
  EXPECT_FALSE(looksLikeEszip("{\"version\":1}"));  // ESZIP v1 was JSON
  expectError("ESZIP2.4xxxxxxxx", "not an ESZIP v2");
  expectError("ESZ", "not an ESZIP");
}

// --- the writer, every version ---

TEST(EszipWriter, RoundTripsEveryVersionAndChecksum) {
  struct Case {
    EszipVersion version;
    EszipChecksum checksum;
    std::string_view magic;
  };
  for (const Case& c : {Case{EszipVersion::kV2, EszipChecksum::kSha256, "ESZIP_V2"},
                        Case{EszipVersion::kV2Dot1, EszipChecksum::kSha256, "ESZIP2.1"},
                        Case{EszipVersion::kV2Dot2, EszipChecksum::kSha256, "ESZIP2.2"},
                        Case{EszipVersion::kV2Dot2, EszipChecksum::kNone, "ESZIP2.2"},
                        Case{EszipVersion::kV2Dot2, EszipChecksum::kXxHash3, "ESZIP2.2"},
                        Case{EszipVersion::kV2Dot3, EszipChecksum::kSha256, "ESZIP2.3"},
                        Case{EszipVersion::kV2Dot3, EszipChecksum::kNone, "ESZIP2.3"},
                        Case{EszipVersion::kV2Dot3, EszipChecksum::kXxHash3, "ESZIP2.3"}}) {
    SCOPED_TRACE(std::string(c.magic) + " checksum " +
                 std::to_string(static_cast<int>(c.checksum)));
    const Eszip original = sample(c.version != EszipVersion::kV2);
    const std::string bytes = writeEszip(original, {c.version, c.checksum});
    ASSERT_FALSE(bytes.empty());
    EXPECT_EQ(bytes.substr(0, 8), c.magic);
    const Eszip parsed = mustParse(bytes);
    EXPECT_EQ(parsed.version, c.version);
    EXPECT_EQ(parsed.checksum, c.checksum);
    expectSame(original, parsed);
    EXPECT_EQ(parsed.find("https://example.com/latest.ts"), &parsed.modules[0]);
    // Writing again is byte for byte the same: the writer is deterministic.
    EXPECT_EQ(writeEszip(parsed, {c.version, c.checksum}), bytes);
  }
}

TEST(EszipWriter, RefusesWhatTheFormatCannotHold) {
  EXPECT_EQ(writeEszip(sample(true), {EszipVersion::kV2, EszipChecksum::kSha256}), "");
  // Version 2 ignores the checksum asked for: it always has SHA-256.
  EXPECT_EQ(
      mustParse(writeEszip(sample(false), {EszipVersion::kV2, EszipChecksum::kNone})).checksum,
      EszipChecksum::kSha256);
  EXPECT_EQ(writeEszip(Eszip{}).size(), 8u + 4 + 4 + 32 + 4 + 32 + 4 + 32 + 4 + 4);
  EXPECT_TRUE(mustParse(writeEszip(Eszip{})).modules.empty());
}

// --- truncation and corruption, byte by byte ---

TEST(EszipMalformed, EveryTruncationFailsCleanly) {
  for (auto version : {EszipVersion::kV2, EszipVersion::kV2Dot1, EszipVersion::kV2Dot3}) {
    for (auto checksum : {EszipChecksum::kSha256, EszipChecksum::kNone}) {
      const std::string bytes = writeEszip(sample(false), {version, checksum});
      ASSERT_FALSE(bytes.empty());
      for (size_t length = 0; length < bytes.size(); ++length) {
        std::string error;
        // A copy of exactly `length` bytes, so ASan sees any read past it.
        const std::string cut = bytes.substr(0, length);
        EXPECT_FALSE(parseEszip(cut, npmAllowed(), error)) << "length " << length;
        EXPECT_FALSE(error.empty()) << "length " << length;
      }
      expectError(bytes + "x", "1 bytes after the source maps section");
    }
  }
}

TEST(EszipMalformed, EverySingleByteChangeOfAChecksummedFileFails) {
  for (auto [version, checksum] : {std::pair{EszipVersion::kV2, EszipChecksum::kSha256},
                                   std::pair{EszipVersion::kV2Dot1, EszipChecksum::kSha256},
                                   std::pair{EszipVersion::kV2Dot2, EszipChecksum::kSha256},
                                   std::pair{EszipVersion::kV2Dot3, EszipChecksum::kXxHash3}}) {
    const std::string bytes = writeEszip(sample(false), {version, checksum});
    for (size_t i = 0; i < bytes.size(); ++i) {
      // "ESZIP2.2" and "ESZIP2.3" differ in that bit and have the same layout.
      if (i == 7 && version >= EszipVersion::kV2Dot2) continue;
      std::string changed = bytes;
      changed[i] = static_cast<char>(changed[i] ^ 0x01);
      std::string error;
      EXPECT_FALSE(parseEszip(changed, npmAllowed(), error)) << "byte " << i;
      EXPECT_FALSE(error.empty()) << "byte " << i;
    }
  }
}

TEST(EszipMalformed, BadChecksumsNameTheirSection) {
  const Eszip eszip = sample(false);
  const std::string bytes = writeEszip(eszip, {EszipVersion::kV2Dot3, EszipChecksum::kSha256});
  // Layout: magic 8, options (4 + 4 + 32), header length 4, header ...
  std::string changed = bytes;
  changed[8 + 4 + 4] ^= 1;  // the first byte of the options' digest
  expectError(changed, "bad SHA-256 checksum of options");
  changed = bytes;
  changed[8 + 40 + 4 + 4 + 2] ^= 1;  // inside the first specifier's bytes
  expectError(changed, "bad SHA-256 checksum of modules header");
  changed = bytes;
  const size_t source_at = bytes.find("import x from");
  ASSERT_NE(source_at, std::string::npos);
  changed[source_at] = 'I';
  expectError(changed, "bad SHA-256 checksum of the source of \"file:///app/main.ts\"");
  changed = bytes;
  const size_t map_at = bytes.find("\"mappings\"");
  changed[map_at + 1] = 'M';
  expectError(changed, "bad SHA-256 checksum of the source map of \"file:///app/main.ts\"");
}

// --- hand-built files (no checksum, so every byte is ours to choose) ---

std::string u32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string str(std::string_view s) {
  return u32(static_cast<uint32_t>(s.size())) + std::string(s);
}
std::string moduleEntry(std::string_view specifier, uint32_t src_off, uint32_t src_len,
                        uint32_t map_off = 0, uint32_t map_len = 0, uint8_t kind = 0) {
  return str(specifier) + '\0' + u32(src_off) + u32(src_len) + u32(map_off) + u32(map_len) +
         static_cast<char>(kind);
}
std::string redirectEntry(std::string_view specifier, std::string_view target) {
  return str(specifier) + '\1' + str(target);
}
const std::string kNoChecksum = "ESZIP2.3" + u32(4) + std::string("\0\0\1\0", 4);
// A 2.3 file without checksums: options, header, npm section, sources, source maps.
std::string file(const std::string& header, const std::string& sources = "",
                 const std::string& maps = "", const std::string& npm = "") {
  return kNoChecksum + str(header) + str(npm) + str(sources) + str(maps);
}

TEST(EszipMalformed, HandBuiltFileParses) {
  const Eszip eszip = mustParse(
      file(moduleEntry("a.js", 0, 3, 0, 2) + moduleEntry("b.js", 3, 2) + redirectEntry("r", "a.js"),
           "aaabb", "mm"));
  ASSERT_EQ(eszip.modules.size(), 2u);
  EXPECT_EQ(eszip.modules[0].source, "aaa");
  EXPECT_EQ(eszip.modules[0].source_map, "mm");
  EXPECT_EQ(eszip.modules[1].source, "bb");
  // Sections may list sources in any order as long as they tile it.
  EXPECT_EQ(mustParse(file(moduleEntry("a.js", 2, 3) + moduleEntry("b.js", 0, 2), "bbaaa"))
                .modules[0]
                .source,
            "aaa");
}

TEST(EszipMalformed, Options) {
  expectError("ESZIP2.2" + u32(3) + "abc", "not (option, value) byte pairs");
  expectError("ESZIP2.2" + u32(2) + std::string("\0\7", 2), "unknown checksum kind 7");
  expectError("ESZIP2.2" + u32(4) + std::string("\0\1\1\10", 4), "checksum size 8 does not match");
  expectError("ESZIP2.2" + u32(100) + "ab", "truncated options");
  // Unknown options are skipped (forward compatibility); later pairs win.
  const std::string header = moduleEntry("a.js", 0, 1);
  Eszip eszip = mustParse("ESZIP2.2" + u32(6) + std::string("\x09\x01\0\1\0\0", 6) + str(header) +
                          str("") + str("a") + str(""));
  EXPECT_EQ(eszip.checksum, EszipChecksum::kNone);
}

TEST(EszipMalformed, BadXxHash3Checksums) {
  const std::string bytes =
      writeEszip(sample(false), {EszipVersion::kV2Dot3, EszipChecksum::kXxHash3});
  std::string changed = bytes;
  changed[bytes.find("const n")] = 'C';
  expectError(changed, "bad xxHash3 checksum of the source of \"file:///app/main.ts\"");
  // Digests that are not XXH3-64 of anything here.
  const std::string digest(8, 'x');
  expectError("ESZIP2.2" + str(std::string("\0\2", 2)) + digest, "bad xxHash3 checksum of options");
}

TEST(EszipMalformed, HeaderEntries) {
  expectError(file(moduleEntry("a.js", 0, 0) + std::string("\0\0", 2)), "truncated specifier");
  expectError(file(str("a.js") + '\7'), "unknown entry kind 7 for \"a.js\"");
  expectError(file(moduleEntry("a.js", 0, 0, 0, 0, 9)), "unknown module kind 9 of \"a.js\"");
  expectError(file(moduleEntry("", 0, 0)), "empty specifier");
  expectError(file(moduleEntry("a\xff", 0, 0)), "specifier at byte 20 is not UTF-8");
  expectError(file(moduleEntry("\xc0\xaf", 0, 0)), "not UTF-8");      // overlong '/'
  expectError(file(moduleEntry("\xed\xa0\x80", 0, 0)), "not UTF-8");  // a surrogate
  EXPECT_EQ(mustParse(file(moduleEntry("caf\xc3\xa9", 0, 0))).modules[0].specifier, "caf\xc3\xa9");
  expectError(file(moduleEntry("a.js", 0, 0) + moduleEntry("a.js", 0, 0)),
              "duplicate specifier \"a.js\"");
  expectError(file(moduleEntry("a.js", 0, 0) + redirectEntry("a.js", "b")),
              "duplicate specifier \"a.js\"");
  expectError(file(str("a.js") + '\0' + u32(0)), "truncated source length");
  // A specifier length that points far past the header.
  expectError(file(u32(0xffffffff) + "a"), "over the limit");
  EszipLimits big;
  big.max_specifier_bytes = SIZE_MAX;
  expectError(file(u32(0xffffffff) + "a"), "truncated specifier", big);
}

TEST(EszipMalformed, Redirects) {
  expectError(file(redirectEntry("r", "nowhere")), R"(redirect "r" leads to "nowhere")");
  expectError(file(redirectEntry("r1", "r2") + redirectEntry("r2", "r1")), "part of a loop");
  expectError(file(redirectEntry("r", "r")), "part of a loop");
  expectError(file(moduleEntry("a", 0, 0) + redirectEntry("r1", "r2") + redirectEntry("r2", "r3") +
                   redirectEntry("r3", "r2")),
              "part of a loop");
  // A long chain ending at a module is fine.
  std::string header = moduleEntry("m", 0, 0);
  // Names built piece by piece: `"literal" + string` trips a -Wrestrict false positive of GCC 12
  // at -O3.
  auto name = [](int i) {
    std::string text(1, 'r');
    text += std::to_string(i);
    return text;
  };
  for (int i = 0; i < 500; ++i) header += redirectEntry(name(i), i == 499 ? "m" : name(i + 1));
  const Eszip chain = mustParse(file(header));
  EXPECT_EQ(chain.find("r0"), &chain.modules[0]);
}

TEST(EszipMalformed, SourcesMustTileTheirSection) {
  expectError(file(moduleEntry("a", 0, 3), "aa"), "ends past the sources section of 2 bytes");
  expectError(file(moduleEntry("a", 1, 2), "xaa"), "leaves a gap after byte 0");
  expectError(file(moduleEntry("a", 0, 2) + moduleEntry("b", 1, 2), "aaa"), "overlaps");
  expectError(file(moduleEntry("a", 0, 2) + moduleEntry("b", 0, 2), "aa"), "overlaps");
  expectError(file(moduleEntry("a", 0, 2), "aaextra"), "5 bytes that belong to no module");
  expectError(file(moduleEntry("a", 0, 0, 0, 4), "", "mm"), "ends past the source maps section");
  expectError(file(moduleEntry("a", 0xfffffff0, 0x20), "aa"), "gap");
  expectError(kNoChecksum + str("") + str("") + u32(1000) + "ab", "truncated sources");
  expectError(kNoChecksum + str("") + str("") + str("") + u32(5), "truncated source maps");
  expectError(kNoChecksum + str("") + str(""), "truncated sources");
}

TEST(EszipMalformed, Npm) {
  const std::string root = str("chalk@5") + '\2' + u32(0);
  const std::string package = str("chalk@5.3.0") + u32(0);
  expectError(file(root, "", "", package), "npm packages are not supported: npm specifier");
  expectError(file("", "", "", package), "npm packages are not supported: the file carries");
  Eszip eszip = mustParse(file(root, "", "", package));
  ASSERT_EQ(eszip.npm_packages.size(), 1u);
  EXPECT_EQ(eszip.npm_packages[0].id, "chalk@5.3.0");
  EXPECT_EQ(eszip.npm_roots[0].request, "chalk@5");
  EXPECT_TRUE(eszip.hasNpm());
  expectError(file(str("chalk@5") + '\2' + u32(3), "", "", package), "names package 3 of 1",
              npmAllowed());
  expectError(file("", "", "", str("a@1") + u32(1) + str("b") + u32(4)), "names package 4 of 1",
              npmAllowed());
  expectError(file("", "", "", str("a@1") + u32(0x10000000)), "claims 268435456 dependencies",
              npmAllowed());
  expectError(file(root + root, "", "", package), "duplicate npm specifier", npmAllowed());
}

TEST(EszipLimits, EachLimitIsAnError) {
  const std::string bytes = writeEszip(sample(false));
  EszipLimits limits;
  limits.max_total_bytes = bytes.size() - 1;
  expectError(bytes, "over the limit of " + std::to_string(bytes.size() - 1), limits);
  limits = EszipLimits{};
  limits.max_entries = 7;  // 6 modules and 2 redirects
  expectError(bytes, "more than 7 entries", limits);
  limits.max_entries = 8;
  mustParse(bytes, limits);
  limits = EszipLimits{};
  limits.max_module_bytes = 20;
  expectError(bytes, "module \"file:///app/main.ts\" has 74 bytes", limits);
  limits = EszipLimits{};
  limits.max_specifier_bytes = 10;
  expectError(bytes, "specifier at byte 52 is 19 bytes, over the limit of 10", limits);
}

}  // namespace
}  // namespace subgate::bundle
