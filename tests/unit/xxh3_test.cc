// core/bundle/xxh3: XXH3-64 against the system's libxxhash (Debian's libxxhash0, loaded with
// dlopen when present: there is no -dev package to link against) for every length class, and
// against pinned values otherwise.
#include "core/bundle/xxh3.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

namespace subgate::bundle {
namespace {

std::string pattern(size_t n) {
  std::string bytes(n, '\0');
  uint32_t state = 2463534242u;  // xorshift32: a fixed, irregular byte sequence
  for (auto& c : bytes) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    c = static_cast<char>(state);
  }
  return bytes;
}

TEST(Xxh3, PinnedValues) {
  EXPECT_EQ(xxh3Hash64(""), 0x2D06800538D394C2ULL);
  // Values of libxxhash 0.8.1's XXH3_64bits, one per length class.
  EXPECT_EQ(xxh3Hash64(pattern(3)), 0xE06900CA2FE0CD71ULL);
  EXPECT_EQ(xxh3Hash64(pattern(8)), 0x41AB92B9308DFED2ULL);
  EXPECT_EQ(xxh3Hash64(pattern(16)), 0x58B2C60C19A5BCE8ULL);
  EXPECT_EQ(xxh3Hash64(pattern(100)), 0x861BECA317AE423AULL);
  EXPECT_EQ(xxh3Hash64(pattern(200)), 0x372F34916AE653ACULL);
  EXPECT_EQ(xxh3Hash64(pattern(5000)), 0xCCDD4D670D8B8055ULL);
}

TEST(Xxh3, SameAsLibxxhash) {
  void* library = dlopen("libxxhash.so.0", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) GTEST_SKIP() << "libxxhash.so.0 is not installed";
  using Fn = unsigned long long (*)(const void*, size_t);
  auto theirs = reinterpret_cast<Fn>(dlsym(library, "XXH3_64bits"));
  ASSERT_NE(theirs, nullptr);
  const std::string bytes = pattern(5000);
  // Every length up to three blocks and a bit (each small and medium case, block edges), and
  // every start offset for a few lengths (unaligned reads).
  for (size_t n = 0; n <= 3200; ++n)
    ASSERT_EQ(xxh3Hash64(std::string_view(bytes).substr(0, n)), theirs(bytes.data(), n)) << n;
  for (size_t offset = 1; offset < 8; ++offset) {
    for (size_t n : {5u, 12u, 77u, 199u, 1025u})
      ASSERT_EQ(xxh3Hash64(std::string_view(bytes).substr(offset, n)),
                theirs(bytes.data() + offset, n));
  }
  dlclose(library);
}

}  // namespace
}  // namespace subgate::bundle
