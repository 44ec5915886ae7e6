// ESZIP v2 bundles (denoland/eszip): a deployment's module graph in one file, as an origin may
// serve it (issue 18). This is the reader; eszip_writer.h writes the same format.
//
// The format, as this code reads it (every integer is a big-endian u32):
//   magic (8)            "ESZIP_V2" | "ESZIP2.1" | "ESZIP2.2" | "ESZIP2.3"
//   [2.2+] options       len, len bytes of (option, value) byte pairs, digest of those bytes
//                        option 0: checksum (0 none, 1 SHA-256, 2 xxHash3-64); option 1: digest
//                        size. Without option 0, 2.2+ means no checksum; 2 and 2.1 are SHA-256.
//   modules header       len, entries, digest: each entry is specifier (len + UTF-8), then a
//                        kind byte: 0 module (source offset, source len, map offset, map len,
//                        module kind byte), 1 redirect (target len + UTF-8), 2 npm root
//                        specifier (package index; 2.1+)
//   [2.1+] npm section   len, packages (id string, dependency count, (name string, package
//                        index) per dependency), digest
//   sources              len, then each module's source bytes followed by their digest,
//                        back to back; a module's offset is where its bytes start here
//   source maps          len, the same for source maps
// A module whose offset and length are both 0 has no bytes in that section.
//
// Contract
// - Pure functions on memory: reentrant, any thread, no I/O.
// - parseEszip() never reads outside `bytes` and allocates at most a small multiple of
//   bytes.size() (every length is checked against the bytes that remain before it is used);
//   the limits are checked before the corresponding bytes are copied.
// - Error strings are single-line printable ASCII naming what is wrong and where (a byte offset
//   or a specifier, quoted and truncated); they may be logged and sent to the origin's operator.
// - Digests are verified: SHA-256 with OpenSSL, XXH3-64 (checksum 2, 8 big-endian bytes) with
//   xxh3.h. An unknown checksum value is an error (the reference reader would skip the digests
//   unverified). @deno/eszip 0.106 (npm) writes 2.3 without checksum; it reads SHA-256 files
//   but has no xxHash3 support; the Rust crate has it behind a feature.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subgate::bundle {

enum class EszipVersion : uint8_t { kV2, kV2Dot1, kV2Dot2, kV2Dot3 };

// The module kind byte of a module entry; the numbers are the format's.
enum class EszipModuleKind : uint8_t {
  kJavaScript = 0,  // also transpiled TypeScript, or TypeScript as-is from our writer
  kJson = 1,
  kJsonc = 2,       // a deno.jsonc used as an import map; not importable as a module
  kOpaqueData = 3,  // npm package files, import maps
  kWasm = 4,        // 2.3 adds it; like the reference reader, any version may carry it
};

// The checksum option's values.
enum class EszipChecksum : uint8_t { kNone = 0, kSha256 = 1, kXxHash3 = 2 };

struct EszipModule {
  std::string specifier;
  EszipModuleKind kind = EszipModuleKind::kJavaScript;
  std::string source;      // raw bytes (UTF-8 text except for kWasm); may be empty
  std::string source_map;  // raw bytes; empty when the file has none
};

struct EszipRedirect {
  std::string specifier;
  std::string target;  // a module's specifier, possibly through further redirects
};

// The npm resolution snapshot (2.1+), kept as the file carries it: packages by index.
struct EszipNpmPackage {
  std::string id;  // serialized package id, e.g. "chalk@5.3.0"
  std::vector<std::pair<std::string, uint32_t>> dependencies;  // name -> package index
};
struct EszipNpmRoot {
  std::string request;  // the header entry's specifier, e.g. "chalk@5"
  uint32_t package = 0;
};

struct Eszip {
  EszipVersion version = EszipVersion::kV2Dot3;
  EszipChecksum checksum = EszipChecksum::kNone;
  std::vector<EszipModule> modules;  // in file order
  std::vector<EszipRedirect> redirects;
  std::vector<EszipNpmPackage> npm_packages;
  std::vector<EszipNpmRoot> npm_roots;

  bool hasNpm() const { return !npm_packages.empty() || !npm_roots.empty(); }
  // The module `specifier` names, following redirects; nullptr if there is none. A parsed
  // Eszip's redirects always end at a module. Linear scans per hop: for a lookup now and then;
  // a caller that resolves every specifier should index the vectors itself.
  const EszipModule* find(std::string_view specifier) const;
};

struct EszipLimits {
  size_t max_total_bytes = 64u << 20;   // the whole file
  size_t max_entries = 10000;           // modules + redirects + npm root specifiers
  size_t max_module_bytes = 16u << 20;  // one source or one source map
  size_t max_specifier_bytes = 4096;    // one specifier or redirect target
  // npm packages cannot run in our isolates yet: a file with an npm snapshot or npm root
  // specifiers is refused unless this is set (the snapshot is then parsed and returned).
  bool allow_npm = false;
};

// True when `bytes` starts with one of the four v2 magics. Says nothing about the rest.
bool looksLikeEszip(std::string_view bytes);

// Parses a whole ESZIP v2 (any sub-version) held in memory. Returns nullopt and sets `error`
// on the first malformation or limit breach: short or over-long sections, lengths or offsets
// outside the file or their section, sources that do not tile their section exactly or share an
// offset, bad digests, an unknown entry, module or checksum kind, a specifier that is empty,
// not UTF-8 or repeated, a redirect to an unknown specifier or in a loop, npm data without
// `allow_npm`, and trailing bytes after the source maps.
std::optional<Eszip> parseEszip(std::string_view bytes, const EszipLimits& limits,
                                std::string& error);

std::string_view eszipVersionName(EszipVersion version);     // "2", "2.1", ...
std::string_view eszipModuleKindName(EszipModuleKind kind);  // "javascript", "json", ...

}  // namespace subgate::bundle
