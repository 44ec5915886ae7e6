// libFuzzer target for the HS256 verifier: any bytes are either accepted with sane claims or
// rejected with a message, never crash, and never leak the secret. The same bytes also drive
// base64url (decoding must be canonical) and, as claims, a sign-then-verify round trip.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/jwt/jwt.h"

namespace {

constexpr std::string_view kSecret = "fuzz-secret-0123456789";

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace subgate::jwt;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  VerifyOptions options{.now = 1700000000, .leeway_seconds = 60, .max_token_bytes = 8192};

  for (VerifyMode mode : {VerifyMode::kSubhost, VerifyMode::kBoot, VerifyMode::kEvents}) {
    Claims claims;
    std::string error;
    if (verifyHs256(input, kSecret, options, mode, claims, error)) {
      check(!claims.json.empty());
      check((mode == VerifyMode::kEvents) == claims.deployment_id.empty());
      check(mode != VerifyMode::kSubhost || !claims.rpc_root.empty());
    } else {
      // Errors may quote token bytes, so the secret shows only if the input holds it.
      check(!error.empty() && (error.find(kSecret) == std::string::npos ||
                               input.find(kSecret) != std::string_view::npos));
    }
  }
  std::string error;
  if (!peekHeader(input, error)) check(!error.empty());

  // Strict decoding: whatever decodes is the one canonical encoding of its bytes.
  if (auto decoded = base64UrlDecode(input)) check(base64UrlEncode(*decoded) == input);
  check(base64UrlDecode(base64UrlEncode(input)) == std::string(input));

  // Signed by us, the input as claims can fail on its content but never on the signature.
  std::string token = signHs256("kid", input, kSecret);
  if (!token.empty() && token.size() <= options.max_token_bytes) {
    Claims claims;
    if (verifyHs256(token, kSecret, options, VerifyMode::kBoot, claims, error)) {
      check(claims.json == input);
    } else {
      check(error.starts_with("payload ") || error.starts_with("claim ") ||
            error.starts_with("rpc_root ") || error.starts_with("token expired") ||
            error.starts_with("token issued"));
    }
  }
  return 0;
}
