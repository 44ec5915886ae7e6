// XXH3-64 (xxHash 0.8, seed 0, default secret): the checksum kind 2 of ESZIP 2.2+, which stores
// it as 8 big-endian bytes. Written from the algorithm description in xxHash's
// doc/xxhash_spec.md (v0.2.0); tests/unit/xxh3_test.cc compares it with the system's libxxhash.
//
// Contract: a pure function, any thread. Portable scalar code: a few hundred MB/s, far from
// xxHash's SIMD speed, which is plenty for checking a bundle once when it arrives.
#pragma once

#include <cstdint>
#include <string_view>

namespace subgate::bundle {

uint64_t xxh3Hash64(std::string_view bytes);

}  // namespace subgate::bundle
