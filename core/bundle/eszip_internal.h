// What the ESZIP reader (eszip.cc) and writer (eszip_writer.cc) share: the magics, the entry
// kinds, digest sizes and SHA-256. Not for use outside core/bundle/.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/bundle/eszip.h"

namespace subgate::bundle::internal {

constexpr size_t kMagicBytes = 8;
constexpr std::array<std::string_view, 4> kMagics = {"ESZIP_V2", "ESZIP2.1", "ESZIP2.2",
                                                     "ESZIP2.3"};  // by EszipVersion

// The byte after a header entry's specifier.
enum class EntryKind : uint8_t { kModule = 0, kRedirect = 1, kNpmRoot = 2 };

// Option ids of the 2.2+ options section.
constexpr uint8_t kOptionChecksum = 0;
constexpr uint8_t kOptionChecksumSize = 1;

constexpr size_t kSha256Bytes = 32;
constexpr size_t kXxHash3Bytes = 8;

inline size_t digestSize(EszipChecksum checksum) {
  switch (checksum) {
    case EszipChecksum::kNone: return 0;
    case EszipChecksum::kSha256: return kSha256Bytes;
    case EszipChecksum::kXxHash3: return kXxHash3Bytes;
  }
  return 0;
}

// SHA-256 of `bytes` into `out`; false when OpenSSL fails (its error queue is cleared).
bool sha256(std::string_view bytes, std::array<unsigned char, kSha256Bytes>& out);

// The digest of `bytes` as the file stores it: nothing, SHA-256, or XXH3-64 big-endian. Empty
// when OpenSSL fails for SHA-256 (which never yields an empty digest otherwise).
std::string digestOf(EszipChecksum checksum, std::string_view bytes);

inline void appendU32(std::string& out, uint32_t value) {
  out.push_back(static_cast<char>(value >> 24));
  out.push_back(static_cast<char>(value >> 16));
  out.push_back(static_cast<char>(value >> 8));
  out.push_back(static_cast<char>(value));
}

}  // namespace subgate::bundle::internal
