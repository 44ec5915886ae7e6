// Request ids and W3C trace context (https://www.w3.org/TR/trace-context/): validating what a
// client sent and making new ids. Pure functions plus a per-thread random source; the Request
// (request.h) calls them once per request and keeps the results.
//
// Threading: every function may be called from any thread; the random source is per thread,
// seeded on its first use with one getrandom(2) call, and needs no syscall afterwards.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace subgate {

// A usable x-request-id: 1 to 128 characters of [A-Za-z0-9._:-].
bool isValidRequestId(std::string_view id);

// Writes `n` random lowercase hex digits to `out` (not a cryptographic source: ids, span ids).
void randomHex(char* out, size_t n);

// Replaces `out` with a new request id: 32 random lowercase hex digits.
void newRequestId(std::string& out);

// The parts of a well-formed version-00 traceparent, pointing into the parsed text.
struct TraceParent {
  std::string_view trace_id;   // 32 lowercase hex digits, not all zeros
  std::string_view parent_id;  // 16 lowercase hex digits, not all zeros
  std::string_view flags;      // 2 lowercase hex digits
};

// Parses "00-<trace id>-<parent id>-<flags>"; false (and `out` untouched) for anything else.
bool parseTraceParent(std::string_view text, TraceParent& out);

// Replaces `out` with `parent` continued by a new span: same version, trace id and flags, a new
// random non-zero parent id.
void childTraceParent(const TraceParent& parent, std::string& out);

}  // namespace subgate
