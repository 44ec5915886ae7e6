// The digests of eszip_internal.h: what the reader checks and the writer appends.
#include <openssl/err.h>
#include <openssl/evp.h>

#include "core/bundle/eszip_internal.h"
#include "core/bundle/xxh3.h"

namespace subgate::bundle::internal {

bool sha256(std::string_view bytes, std::array<unsigned char, kSha256Bytes>& out) {
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), out.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != kSha256Bytes) {
    ERR_clear_error();
    return false;
  }
  return true;
}

std::string digestOf(EszipChecksum checksum, std::string_view bytes) {
  switch (checksum) {
    case EszipChecksum::kNone: return {};
    case EszipChecksum::kSha256: {
      std::array<unsigned char, kSha256Bytes> hash;
      if (!sha256(bytes, hash)) return {};
      return std::string(reinterpret_cast<const char*>(hash.data()), hash.size());
    }
    case EszipChecksum::kXxHash3: {
      const uint64_t hash = xxh3Hash64(bytes);
      std::string out;
      appendU32(out, static_cast<uint32_t>(hash >> 32));
      appendU32(out, static_cast<uint32_t>(hash));
      return out;
    }
  }
  return {};
}

}  // namespace subgate::bundle::internal
