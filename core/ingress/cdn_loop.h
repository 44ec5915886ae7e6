// The loop count subgate keeps on requests its isolates send back to it (issue 17, point 8), in
// the CDN-Loop header of RFC 8586: every hop through one of this subgate's isolates is counted in
// one entry of its own, `subgate; hops=N`, next to the entries of CDNs in front (kept as they
// came: RFC 8586 forbids removing them).
//
// The round trip: a request enters an isolate with `subgate; hops=N+1` when it came with N (none:
// 0); the harness (core/isolates/harness.js) stamps the requests that isolate's code sends to
// this subgate's own listeners with the count of the request it serves; over the limit subgate
// answers 508 LOOP_DETECTED (modules/isolates, docs/errors.md).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace subgate {

// The cdn-id of subgate's entry (a pseudonym, RFC 8586 §2).
constexpr std::string_view kCdnLoopId = "subgate";

struct CdnLoop {
  // The largest `hops` of subgate's entries (an entry without a valid one counts 1); 0 when
  // there is none.
  uint32_t hops = 0;
  // The other entries, in order, joined with ", " (subgate's own are left out).
  std::string others;
};

// Reads every CDN-Loop field value of a request (a list may span several fields). Entries are
// split on commas outside quoted strings (a quote never closed opens none: the entries after it
// stay entries); a cdn-id is compared case-insensitively.
CdnLoop parseCdnLoop(std::span<const std::string_view> values);

// The CDN-Loop value to pass on: the others' entries, then subgate's with `hops`.
std::string cdnLoopValue(const CdnLoop& loop, uint32_t hops);

}  // namespace subgate
