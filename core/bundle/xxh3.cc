#include "core/bundle/xxh3.h"

#include <cstddef>

namespace subgate::bundle {
namespace {

using U128 = unsigned __int128;

constexpr uint64_t kPrime32One = 0x9E3779B1U;
constexpr uint64_t kPrime32Two = 0x85EBCA77U;
constexpr uint64_t kPrime32Three = 0xC2B2AE3DU;
constexpr uint64_t kPrime64One = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime64Two = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime64Three = 0x165667B19E3779F9ULL;
constexpr uint64_t kPrime64Four = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kPrime64Five = 0x27D4EB2F165667C5ULL;
constexpr uint64_t kPrimeMx1 = 0x165667919E3779F9ULL;
constexpr uint64_t kPrimeMx2 = 0x9FB21C651E98DF25ULL;

// The default secret, a constant of the algorithm.
constexpr unsigned char kSecret[192] = {
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
};
constexpr size_t kSecretSize = sizeof(kSecret);
constexpr size_t kStripe = 64;
constexpr size_t kStripesPerBlock = (kSecretSize - kStripe) / 8;
constexpr size_t kBlock = kStripe * kStripesPerBlock;

// Little-endian reads, byte by byte: no alignment or host byte order assumed.
uint64_t read64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint32_t read32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
uint64_t secret64(size_t offset) { return read64(kSecret + offset); }

uint64_t rotl64(uint64_t v, int n) { return (v << n) | (v >> (64 - n)); }

uint64_t bswap64(uint64_t v) {
  uint64_t out = 0;
  for (int i = 0; i < 8; ++i, v >>= 8) out = (out << 8) | (v & 0xff);
  return out;
}

uint64_t fold(U128 v) { return static_cast<uint64_t>(v) ^ static_cast<uint64_t>(v >> 64); }

uint64_t avalanche(uint64_t x) {
  x ^= x >> 37;
  x *= kPrimeMx1;
  return x ^ (x >> 32);
}

uint64_t avalancheXxh64(uint64_t x) {
  x ^= x >> 33;
  x *= kPrime64Two;
  x ^= x >> 29;
  x *= kPrime64Three;
  return x ^ (x >> 32);
}

uint64_t upTo16(const unsigned char* in, size_t n) {
  if (n == 0) return avalancheXxh64(secret64(56) ^ secret64(64));
  if (n <= 3) {
    const uint32_t combined = static_cast<uint32_t>(in[n - 1]) | static_cast<uint32_t>(n) << 8 |
                              static_cast<uint32_t>(in[0]) << 16 |
                              static_cast<uint32_t>(in[n >> 1]) << 24;
    return avalancheXxh64(static_cast<uint64_t>(read32(kSecret) ^ read32(kSecret + 4)) ^ combined);
  }
  if (n <= 8) {
    const uint64_t combined =
        static_cast<uint64_t>(read32(in + n - 4)) | static_cast<uint64_t>(read32(in)) << 32;
    uint64_t v = (secret64(8) ^ secret64(16)) ^ combined;
    v ^= rotl64(v, 49) ^ rotl64(v, 24);
    v *= kPrimeMx2;
    v ^= (v >> 35) + n;
    v *= kPrimeMx2;
    return v ^ (v >> 28);
  }
  const uint64_t low = (secret64(24) ^ secret64(32)) ^ read64(in);
  const uint64_t high = (secret64(40) ^ secret64(48)) ^ read64(in + n - 8);
  return avalanche(n + bswap64(low) + high + fold(static_cast<U128>(low) * high));
}

// 16 bytes of input against 16 bytes of the secret.
uint64_t mix16(const unsigned char* in, size_t secret_offset) {
  return fold(static_cast<U128>(read64(in) ^ secret64(secret_offset)) *
              (read64(in + 8) ^ secret64(secret_offset + 8)));
}

uint64_t upTo240(const unsigned char* in, size_t n) {
  uint64_t acc = n * kPrime64One;
  if (n <= 128) {
    for (size_t round = (n - 1) / 32 + 1; round-- > 0;) {
      acc += mix16(in + round * 16, round * 32);
      acc += mix16(in + n - round * 16 - 16, round * 32 + 16);
    }
    return avalanche(acc);
  }
  for (size_t i = 0; i < 8; ++i) acc += mix16(in + i * 16, i * 16);
  acc = avalanche(acc);
  for (size_t i = 8; i < n / 16; ++i) acc += mix16(in + i * 16, (i - 8) * 16 + 3);
  acc += mix16(in + n - 16, 136 - 17);
  return avalanche(acc);
}

void accumulate(uint64_t (&acc)[8], const unsigned char* stripe, size_t secret_offset) {
  for (size_t i = 0; i < 8; ++i) {
    const uint64_t lane = read64(stripe + i * 8);
    const uint64_t value = lane ^ secret64(secret_offset + i * 8);
    acc[i ^ 1] += lane;
    acc[i] += (value & 0xffffffff) * (value >> 32);
  }
}

void scramble(uint64_t (&acc)[8]) {
  for (size_t i = 0; i < 8; ++i) {
    acc[i] ^= acc[i] >> 47;
    acc[i] ^= secret64(kSecretSize - kStripe + i * 8);
    acc[i] *= kPrime32One;
  }
}

uint64_t large(const unsigned char* in, size_t n) {
  uint64_t acc[8] = {kPrime32Three, kPrime64One, kPrime64Two,  kPrime64Three,
                     kPrime64Four,  kPrime32Two, kPrime64Five, kPrime32One};
  // Whole blocks, except that the last block (full or not) is left for below.
  const size_t blocks = (n - 1) / kBlock;
  for (size_t b = 0; b < blocks; ++b) {
    for (size_t s = 0; s < kStripesPerBlock; ++s)
      accumulate(acc, in + b * kBlock + s * kStripe, s * 8);
    scramble(acc);
  }
  const size_t last = blocks * kBlock;
  const size_t stripes = (n - last - 1) / kStripe;
  for (size_t s = 0; s < stripes; ++s) accumulate(acc, in + last + s * kStripe, s * 8);
  accumulate(acc, in + n - kStripe, kSecretSize - kStripe - 7);

  uint64_t result = n * kPrime64One;
  for (size_t i = 0; i < 4; ++i)
    result += fold(static_cast<U128>(acc[2 * i] ^ secret64(11 + 16 * i)) *
                   (acc[2 * i + 1] ^ secret64(11 + 16 * i + 8)));
  return avalanche(result);
}

}  // namespace

uint64_t xxh3Hash64(std::string_view bytes) {
  const auto* in = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  if (n <= 16) return upTo16(in, n);
  if (n <= 240) return upTo240(in, n);
  return large(in, n);
}

}  // namespace subgate::bundle
