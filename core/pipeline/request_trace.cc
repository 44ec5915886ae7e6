#include "core/pipeline/request_trace.h"

#include <sys/random.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

namespace subgate {
namespace {

// xoshiro256** (Blackman and Vigna): fast, good enough for ids that only need to be unlikely to
// collide; seeded once per thread so a request costs no syscall.
class RandomSource {
 public:
  RandomSource() {
    if (getrandom(state_, sizeof state_, 0) != static_cast<ssize_t>(sizeof state_)) {
      // No entropy source (very early boot, seccomp): time and thread still differ per worker.
      uint64_t seed =
          static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
      seed ^= std::hash<std::thread::id>()(std::this_thread::get_id());
      for (uint64_t& word : state_) word = splitMix(seed);
    }
    if ((state_[0] | state_[1] | state_[2] | state_[3]) == 0) state_[0] = 1;
  }

  uint64_t next() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitMix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t state_[4];
};

constexpr char kHexDigits[] = "0123456789abcdef";

bool isLowerHex(std::string_view text) {
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool allZeros(std::string_view text) {
  return text.find_first_not_of('0') == std::string_view::npos;
}

}  // namespace

bool isValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void randomHex(char* out, size_t n) {
  thread_local RandomSource source;
  while (n > 0) {
    uint64_t bits = source.next();
    for (int i = 0; i < 16 && n > 0; ++i, --n) {
      *out++ = kHexDigits[bits & 0xf];
      bits >>= 4;
    }
  }
}

void newRequestId(std::string& out) {
  out.resize(32);
  randomHex(out.data(), out.size());
}

bool parseTraceParent(std::string_view text, TraceParent& out) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2.
  if (text.size() != 55 || text[2] != '-' || text[35] != '-' || text[52] != '-') return false;
  if (text.substr(0, 2) != "00") return false;
  const std::string_view trace_id = text.substr(3, 32);
  const std::string_view parent_id = text.substr(36, 16);
  const std::string_view flags = text.substr(53, 2);
  if (!isLowerHex(trace_id) || !isLowerHex(parent_id) || !isLowerHex(flags)) return false;
  if (allZeros(trace_id) || allZeros(parent_id)) return false;
  out.trace_id = trace_id;
  out.parent_id = parent_id;
  out.flags = flags;
  return true;
}

void childTraceParent(const TraceParent& parent, std::string& out) {
  char span[16];
  do {
    randomHex(span, sizeof span);
  } while (allZeros(std::string_view(span, sizeof span)));
  out.assign("00-");
  out.append(parent.trace_id);
  out += '-';
  out.append(span, sizeof span);
  out += '-';
  out.append(parent.flags);
}

}  // namespace subgate
