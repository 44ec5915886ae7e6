// HS256 JSON Web Tokens (RFC 7519, compact JWS RFC 7515) for the x-deno-subhost header and the
// origin /boot and /events calls (protocol.md §1, §3).
//
// Contract
// - Stateless and reentrant: every function may be called from any thread at any time.
// - Only HS256 exists here. Finding the secret for a token is the caller's job: peekHeader()
//   gives the kid, the caller looks it up (unknown kid -> INVALID_XDENO_SUBHOST), then calls
//   verifyHs256() with that secret.
// - Error strings are single-line, printable ASCII, meant for logs and the x-deno-error
//   message (the caller still JSON-escapes them). They never contain the secret; the only
//   token bytes they may quote are a header's alg and a JSON parser diagnostic, both truncated
//   and stripped of non-printable characters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace subgate::jwt {

// base64url (RFC 4648 §5) without '=' padding.
std::string base64UrlEncode(std::string_view bytes);

// Strict inverse of base64UrlEncode(): rejects '=' padding, characters outside [A-Za-z0-9_-],
// lengths that no encoding produces (len % 4 == 1) and non-zero unused trailing bits, so every
// byte string has exactly one accepted encoding. The empty string decodes to "".
std::optional<std::string> base64UrlDecode(std::string_view text);

// A compact JWS: base64url({"alg":"HS256","typ":"JWT","kid":kid}) "." base64url(claims_json)
// "." base64url(HMAC-SHA256(secret, first two parts)). claims_json is used as given (not
// validated). Returns "" when kid is not valid UTF-8, the secret is empty, or OpenSSL fails.
std::string signHs256(std::string_view kid, std::string_view claims_json, std::string_view secret);

struct Header {
  std::string alg;  // as sent; verifyHs256() accepts only "HS256"
  std::string kid;  // the subhoster id, used by the caller to find the secret
};

// Decodes only the (unauthenticated) header of a token that has three dot-separated parts:
// it must be a JSON object with string "alg" and "kid". Does not check the alg value, the
// size or the signature. On failure returns nullopt and sets `error`.
std::optional<Header> peekHeader(std::string_view token, std::string& error);

struct VerifyOptions {
  int64_t now;                    // unix seconds
  int64_t leeway_seconds = 60;    // clock skew allowed for exp and iat; negative counts as 0
  size_t max_token_bytes = 8192;  // longer tokens are rejected before any decoding
};

struct Claims {
  int64_t iat = 0;
  int64_t exp = 0;
  std::string deployment_id;
  std::string rpc_root;  // empty when absent (kBoot only)
  std::string json;      // the raw claims JSON, as signed
};

enum class VerifyMode {
  kSubhost,  // iat, exp, deployment_id, rpc_root required (x-deno-subhost)
  kBoot,     // iat, exp, deployment_id required; rpc_root checked only when present (/boot)
  kEvents,   // iat, exp required; deployment_id refused; rpc_root checked when present (/events)
};

// Verifies `token` with `secret` and, on success, fills `out` and returns true. On failure
// returns false, sets `error` to what was wrong and leaves `out` unspecified.
//
// Checked in this order: size; three base64url parts; header is a JSON object without "crit";
// alg is exactly "HS256"; kid is a string; secret non-empty; signature is 32 bytes and matches
// (constant time); payload is a JSON object; iat and exp are integers (a JSON number with an
// integral value counts); deployment_id a non-empty string (absent in kEvents); rpc_root a string
// that is an absolute http:// or https:// URL with a non-empty host, no userinfo, query or
// fragment, and ending in '/'; not expired (exp < now - leeway); not issued in the future (iat >
// now + leeway). Other claims are ignored. Nothing from the payload is parsed before the signature
// matched.
bool verifyHs256(std::string_view token, std::string_view secret, const VerifyOptions& options,
                 VerifyMode mode, Claims& out, std::string& error);

}  // namespace subgate::jwt
