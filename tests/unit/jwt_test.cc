#include "core/jwt/jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>
#include <string>

namespace subgate::jwt {
namespace {

constexpr std::string_view kSecret = "s3cr3t-key";
constexpr int64_t kNow = 1700000000;
const std::string kGoodClaims = R"({"iat":1700000000,"exp":1700003600,"deployment_id":"dep-1",)"
                                R"("rpc_root":"https://origin.example.com/rpc/"})";

// Appends "." and the HMAC-SHA256 of `input`, computed with OpenSSL directly (not through the
// code under test).
std::string signInput(const std::string& input, std::string_view secret = kSecret) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &length);
  return input + "." + base64UrlEncode(std::string_view(reinterpret_cast<char*>(mac), length));
}

// A token from raw header and payload JSON, so headers the signer would never write can be
// tested.
std::string rawToken(std::string_view header_json, std::string_view payload_json,
                     std::string_view secret = kSecret) {
  return signInput(base64UrlEncode(header_json) + "." + base64UrlEncode(payload_json), secret);
}

std::string withClaims(std::string_view payload_json) {
  return rawToken(R"({"alg":"HS256","typ":"JWT","kid":"acme"})", payload_json);
}

// A payload with the four claims; pass "" to leave one out, or raw JSON values.
std::string claims(const std::string& iat, const std::string& exp, const std::string& deployment_id,
                   const std::string& rpc_root) {
  std::string out;
  auto add = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    // Appended piece by piece: `"literal" + string` trips a -Wrestrict false positive of GCC 12
    // at -O3.
    out += out.empty() ? '{' : ',';
    out.append(1, '"').append(name).append("\":").append(value);
  };
  add("iat", iat);
  add("exp", exp);
  add("deployment_id", deployment_id);
  add("rpc_root", rpc_root);
  return out.empty() ? "{}" : out + "}";
}

VerifyOptions options(int64_t now = kNow, int64_t leeway = 60) {
  VerifyOptions o;
  o.now = now;
  o.leeway_seconds = leeway;
  return o;
}

::testing::AssertionResult accepted(const std::string& token,
                                    VerifyMode mode = VerifyMode::kSubhost,
                                    VerifyOptions opts = options(), Claims* out = nullptr) {
  Claims claims;
  std::string error;
  if (verifyHs256(token, kSecret, opts, mode, out ? *out : claims, error))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "rejected: " << error;
}

// Rejected, the message names the cause, and it never leaks the secret.
::testing::AssertionResult rejected(const std::string& token, std::string_view cause,
                                    VerifyMode mode = VerifyMode::kSubhost,
                                    VerifyOptions opts = options()) {
  Claims claims;
  std::string error;
  if (verifyHs256(token, kSecret, opts, mode, claims, error))
    return ::testing::AssertionFailure() << "accepted " << token;
  if (error.find(cause) == std::string::npos)
    return ::testing::AssertionFailure() << "error \"" << error << "\" lacks \"" << cause << "\"";
  if (error.find(kSecret) != std::string::npos)
    return ::testing::AssertionFailure() << "error leaks the secret: " << error;
  return ::testing::AssertionSuccess();
}

TEST(JwtBase64Url, Rfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},
      {"f", "Zg"},
      {"fo", "Zm8"},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg"},
      {"fooba", "Zm9vYmE"},
      {"foobar", "Zm9vYmFy"},
      {"\xfb\xff", "-_8"},  // the two characters where base64url differs from base64
  };
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(base64UrlEncode(bytes), text);
    EXPECT_EQ(base64UrlDecode(text), std::string(bytes)) << text;
  }
}

TEST(JwtBase64Url, EveryByteRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t length = 0; length <= all.size(); length += 37) {
    std::string bytes = all.substr(0, length);
    EXPECT_EQ(base64UrlDecode(base64UrlEncode(bytes)), bytes) << length;
  }
}

TEST(JwtBase64Url, RejectsPadding) {
  for (std::string_view text : {"Zg==", "Zg=", "Zm8=", "Zm9v=", "Zm9v===="})
    EXPECT_EQ(base64UrlDecode(text), std::nullopt) << text;
}

TEST(JwtBase64Url, RejectsInvalidCharacters) {
  using namespace std::string_view_literals;
  for (std::string_view text : {"Zm9+"sv, "Zm9/"sv, "Zm 9"sv, "Zm9v\n"sv, "Zm\0v"sv, "Zm.v"sv,
                                "\xc3\xa9Zm"sv, "Zm9v\x80"sv})
    EXPECT_EQ(base64UrlDecode(text), std::nullopt) << text;
}

TEST(JwtBase64Url, RejectsImpossibleLengths) {
  for (std::string_view text : {"Z", "Zm9vY", "Zm9vYmFyZ"})
    EXPECT_EQ(base64UrlDecode(text), std::nullopt) << text;
}

TEST(JwtBase64Url, RejectsNonZeroTrailingBits) {
  // "Zg" is "f"; "Zh".."Zv" carry the same byte with unused bits set. Likewise "Zm8" / "Zm9".
  for (std::string_view text : {"Zh", "Zv", "Z_", "Zm9", "Zm-", "Zm9vYh"})
    EXPECT_EQ(base64UrlDecode(text), std::nullopt) << text;
}

TEST(Jwt, SignVerifyRoundTrip) {
  std::string token = signHs256("acme", kGoodClaims, kSecret);
  Claims out;
  ASSERT_TRUE(accepted(token, VerifyMode::kSubhost, options(), &out));
  EXPECT_EQ(out.iat, 1700000000);
  EXPECT_EQ(out.exp, 1700003600);
  EXPECT_EQ(out.deployment_id, "dep-1");
  EXPECT_EQ(out.rpc_root, "https://origin.example.com/rpc/");
  EXPECT_EQ(out.json, kGoodClaims);
}

TEST(Jwt, KnownVectorFromOpensslCli) {
  // Computed with: H=$(printf '%s' '{"alg":"HS256","typ":"JWT","kid":"acme"}' | basenc
  // --base64url -w0 | tr -d =), P likewise from kGoodClaims, then
  // printf '%s' "$H.$P" | openssl dgst -sha256 -hmac 's3cr3t-key' -binary | basenc --base64url.
  const std::string expected =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImFjbWUifQ."
      "eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMCwiZGVwbG95bWVudF9pZCI6ImRlcC0xIiwicnBjX3Jvb3"
      "QiOiJodHRwczovL29yaWdpbi5leGFtcGxlLmNvbS9ycGMvIn0."
      "2ytL2sB6nChHJDGVzAjOfytY3PNJaH44aJowvUVc4fc";
  EXPECT_EQ(signHs256("acme", kGoodClaims, kSecret), expected);
  EXPECT_EQ(rawToken(R"({"alg":"HS256","typ":"JWT","kid":"acme"})", kGoodClaims), expected);
  EXPECT_TRUE(accepted(expected));
}

TEST(Jwt, SignEscapesKid) {
  const std::string kid = "we\"ird\\kid\n\xc3\xa9";
  std::string token = signHs256(kid, kGoodClaims, kSecret);
  std::string error;
  std::optional<Header> header = peekHeader(token, error);
  ASSERT_TRUE(header) << error;
  EXPECT_EQ(header->kid, kid);
  EXPECT_TRUE(accepted(token));
}

TEST(Jwt, SignFailsOnEmptySecretOrNonUtf8Kid) {
  EXPECT_EQ(signHs256("acme", kGoodClaims, ""), "");
  EXPECT_EQ(signHs256("\xff", kGoodClaims, kSecret), "");
}

TEST(Jwt, PeekHeaderReturnsAlgAndKid) {
  std::string error;
  std::optional<Header> header = peekHeader(signHs256("tenant-7", kGoodClaims, kSecret), error);
  ASSERT_TRUE(header) << error;
  EXPECT_EQ(header->alg, "HS256");
  EXPECT_EQ(header->kid, "tenant-7");

  // peekHeader reports the alg as sent; rejecting it is verifyHs256's job.
  header = peekHeader(rawToken(R"({"alg":"none","kid":"k"})", kGoodClaims), error);
  ASSERT_TRUE(header) << error;
  EXPECT_EQ(header->alg, "none");
  EXPECT_EQ(header->kid, "k");
}

TEST(Jwt, PeekHeaderErrors) {
  const std::pair<std::string, std::string_view> cases[] = {
      {"abc", "three dot-separated parts"},
      {"a.b.c.d", "three dot-separated parts"},
      {"Zg==.e30.sig", "header is not valid base64url"},
      {base64UrlEncode("{") + ".e30.", "header is not valid JSON"},
      {base64UrlEncode("[]") + ".e30.", "header is not a JSON object"},
      {base64UrlEncode(R"({"kid":"k"})") + ".e30.", "header has no alg"},
      {base64UrlEncode(R"({"alg":"HS256"})") + ".e30.", "header has no kid"},
      {base64UrlEncode(R"({"alg":"HS256","kid":1})") + ".e30.", "header kid is not a string"},
  };
  for (const auto& [token, cause] : cases) {
    std::string error;
    EXPECT_FALSE(peekHeader(token, error)) << token;
    EXPECT_NE(error.find(cause), std::string::npos) << error;
  }
}

TEST(Jwt, RejectsOversizedToken) {
  std::string token = signHs256("acme", kGoodClaims, kSecret);
  VerifyOptions opts = options();
  opts.max_token_bytes = token.size();
  EXPECT_TRUE(accepted(token, VerifyMode::kSubhost, opts));
  opts.max_token_bytes = token.size() - 1;
  EXPECT_TRUE(rejected(token, "over the limit", VerifyMode::kSubhost, opts));

  std::string big = signHs256(
      "acme", claims("1700000000", "1700003600", "\"" + std::string(8192, 'd') + "\"", ""),
      kSecret);
  EXPECT_TRUE(rejected(big, "over the limit of 8192", VerifyMode::kBoot));
}

TEST(Jwt, RejectsWrongNumberOfParts) {
  std::string token = signHs256("acme", kGoodClaims, kSecret);
  size_t last_dot = token.rfind('.');
  for (const std::string& bad : {std::string(), std::string("abc"), token.substr(0, last_dot),
                                 token + ".", token + ".e30", std::string("...")})
    EXPECT_TRUE(rejected(bad, "three dot-separated parts")) << bad;
}

TEST(Jwt, RejectsInvalidBase64UrlParts) {
  std::string token = signHs256("acme", kGoodClaims, kSecret);
  size_t first = token.find('.'), last = token.rfind('.');
  std::string header = token.substr(0, first);
  std::string payload = token.substr(first + 1, last - first - 1);
  std::string signature = token.substr(last + 1);

  EXPECT_TRUE(rejected(header + "=." + payload + "." + signature, "header is not valid base64url"));
  // The payload is decoded only once the signature matched, so sign the broken one.
  EXPECT_TRUE(rejected(signInput(header + "." + payload + "+"), "payload is not valid base64url"));
  EXPECT_TRUE(
      rejected(header + "." + payload + "." + signature + "=", "signature is not valid base64url"));
  // Standard-base64 characters ('+', '/') are not base64url.
  std::string std_signature = signature;
  std_signature[0] = '+';
  std_signature[1] = '/';
  EXPECT_TRUE(
      rejected(header + "." + payload + "." + std_signature, "signature is not valid base64url"));
}

TEST(Jwt, RejectsHeaderThatIsNotAJsonObject) {
  EXPECT_TRUE(rejected(rawToken("[]", kGoodClaims), "header is not a JSON object"));
  EXPECT_TRUE(rejected(rawToken("\"HS256\"", kGoodClaims), "header is not a JSON object"));
  EXPECT_TRUE(rejected(rawToken("not json", kGoodClaims), "header is not valid JSON"));
  EXPECT_TRUE(rejected(rawToken("", kGoodClaims), "header is not valid JSON"));
  EXPECT_TRUE(
      rejected(rawToken(R"({"alg":"HS256","kid":"a","alg":"none"})", kGoodClaims), "duplicate"));
}

TEST(Jwt, RejectsOtherAlgs) {
  // alg "none" with an empty signature, as an attacker would send it.
  std::string none =
      base64UrlEncode(R"({"alg":"none","kid":"acme"})") + "." + base64UrlEncode(kGoodClaims) + ".";
  EXPECT_TRUE(rejected(none, "unsupported alg \"none\""));
  // Even correctly HMAC-SHA256-signed, another alg name is refused.
  for (const char* alg : {"none", "HS512", "RS256", "hs256", "HS256 ", "ES256", ""}) {
    std::string header = std::string(R"({"alg":")") + alg + R"(","kid":"acme"})";
    EXPECT_TRUE(
        rejected(rawToken(header, kGoodClaims), std::string("unsupported alg \"") + alg + "\""))
        << alg;
  }
  // The quoted alg is sanitized and bounded.
  Claims out;
  std::string error;
  std::string header = R"({"alg":"x\u0001)" + std::string(200, 'y') + R"(","kid":"acme"})";
  EXPECT_FALSE(verifyHs256(rawToken(header, kGoodClaims), kSecret, options(), VerifyMode::kSubhost,
                           out, error));
  EXPECT_EQ(error.find('\x01'), std::string::npos);
  EXPECT_LT(error.size(), 120u);
}

TEST(Jwt, RejectsMissingOrMistypedAlgAndKid) {
  EXPECT_TRUE(rejected(rawToken(R"({"kid":"acme"})", kGoodClaims), "header has no alg"));
  EXPECT_TRUE(rejected(rawToken(R"({"alg":null,"kid":"acme"})", kGoodClaims),
                       "header alg is not a string"));
  EXPECT_TRUE(rejected(rawToken(R"({"alg":["HS256"],"kid":"acme"})", kGoodClaims),
                       "header alg is not a string"));
  EXPECT_TRUE(rejected(rawToken(R"({"alg":"HS256"})", kGoodClaims), "header has no kid"));
  EXPECT_TRUE(
      rejected(rawToken(R"({"alg":"HS256","kid":7})", kGoodClaims), "header kid is not a string"));
}

TEST(Jwt, RejectsCriticalHeaderExtensions) {
  EXPECT_TRUE(rejected(
      rawToken(R"({"alg":"HS256","kid":"acme","crit":["b64"],"b64":false})", kGoodClaims), "crit"));
}

TEST(Jwt, RejectsSignatureOfWrongLength) {
  std::string input =
      base64UrlEncode(R"({"alg":"HS256","kid":"acme"})") + "." + base64UrlEncode(kGoodClaims) + ".";
  EXPECT_TRUE(rejected(input, "signature is 0 bytes, HS256 needs 32"));
  EXPECT_TRUE(rejected(input + base64UrlEncode(std::string(31, 'x')), "signature is 31 bytes"));
  EXPECT_TRUE(rejected(input + base64UrlEncode(std::string(64, 'x')), "signature is 64 bytes"));
}

TEST(Jwt, RejectsSignatureMismatch) {
  std::string token = signHs256("acme", kGoodClaims, kSecret);
  EXPECT_TRUE(
      rejected(signHs256("acme", kGoodClaims, "another-secret"), "signature does not match"));

  std::string flipped = token;
  char& c = flipped[flipped.rfind('.') + 1];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_TRUE(rejected(flipped, "signature does not match"));

  // Swapping in another payload keeps a valid-looking structure but breaks the MAC.
  std::string other = base64UrlEncode(
      claims("1700000000", "1700003600", "\"dep-2\"", "\"https://origin.example.com/rpc/\""));
  size_t first = token.find('.'), last = token.rfind('.');
  EXPECT_TRUE(rejected(token.substr(0, first + 1) + other + token.substr(last),
                       "signature does not match"));

  Claims out;
  std::string error;
  EXPECT_FALSE(verifyHs256(token, "", options(), VerifyMode::kSubhost, out, error));
  EXPECT_NE(error.find("secret"), std::string::npos) << error;
}

TEST(Jwt, RejectsPayloadThatIsNotAJsonObject) {
  EXPECT_TRUE(rejected(withClaims("[1]"), "payload is not a JSON object"));
  EXPECT_TRUE(rejected(withClaims("null"), "payload is not a JSON object"));
  EXPECT_TRUE(rejected(withClaims("{\"iat\":"), "payload is not valid JSON"));
  EXPECT_TRUE(rejected(withClaims("\xff"), "payload is not valid JSON"));
  EXPECT_TRUE(rejected(withClaims(R"({"iat":1,"iat":2})"), "payload is not valid JSON"));
}

TEST(Jwt, RejectsMissingClaims) {
  const std::string iat = "1700000000", exp = "1700003600", dep = "\"dep-1\"",
                    rpc = "\"https://origin.example.com/\"";
  EXPECT_TRUE(accepted(withClaims(claims(iat, exp, dep, rpc))));
  EXPECT_TRUE(rejected(withClaims(claims("", exp, dep, rpc)), "claim iat is missing"));
  EXPECT_TRUE(rejected(withClaims(claims(iat, "", dep, rpc)), "claim exp is missing"));
  EXPECT_TRUE(rejected(withClaims(claims(iat, exp, "", rpc)), "claim deployment_id is missing"));
  EXPECT_TRUE(rejected(withClaims(claims(iat, exp, dep, "")), "claim rpc_root is missing"));
}

TEST(Jwt, RejectsMistypedClaims) {
  const std::string iat = "1700000000", exp = "1700003600", dep = "\"dep-1\"",
                    rpc = "\"https://origin.example.com/\"";
  for (std::string bad : {"\"1700000000\"", "1700000000.5", "true", "null", "[]", "{}"}) {
    EXPECT_TRUE(rejected(withClaims(claims(bad, exp, dep, rpc)), "claim iat is not an integer"));
    EXPECT_TRUE(rejected(withClaims(claims(iat, bad, dep, rpc)), "claim exp is not an integer"));
  }
  EXPECT_TRUE(rejected(withClaims(claims(iat, "1e300", dep, rpc)), "claim exp is not an integer"));
  for (std::string bad : {"42", "\"\"", "null", "[\"dep\"]"})
    EXPECT_TRUE(rejected(withClaims(claims(iat, exp, bad, rpc)),
                         "claim deployment_id is not a non-empty string"));
  for (std::string bad : {"42", "null", "true", "[\"https://x/\"]"})
    EXPECT_TRUE(rejected(withClaims(claims(iat, exp, dep, bad)), "claim rpc_root is not a string"));
}

TEST(Jwt, AcceptsIntegralRealsForTimes) {
  Claims out;
  ASSERT_TRUE(accepted(withClaims(claims("1700000000.0", "1.7000036e9", "\"d\"", "\"http://o/\"")),
                       VerifyMode::kSubhost, options(), &out));
  EXPECT_EQ(out.iat, 1700000000);
  EXPECT_EQ(out.exp, 1700003600);
}

TEST(Jwt, RpcRootMustBeAnAbsoluteHttpUrlEndingInSlash) {
  auto token = [](std::string_view url) {
    return withClaims(claims("1700000000", "1700003600", "\"dep-1\"",
                             std::string(1, '"').append(url).append(1, '"')));
  };
  for (std::string_view good :
       {"http://o/", "https://origin.example.com/rpc/v1/", "http://localhost:8080/",
        "https://[::1]:8443/", "HTTPS://O.EXAMPLE/", "http://10.0.0.1/"})
    EXPECT_TRUE(accepted(token(good))) << good;

  const std::pair<std::string_view, std::string_view> bad[] = {
      {"", "not an absolute http:// or https:// URL"},
      {"/rpc/", "not an absolute http:// or https:// URL"},
      {"ftp://o/", "not an absolute http:// or https:// URL"},
      {"https:/o/", "not an absolute http:// or https:// URL"},
      {"//o/", "not an absolute http:// or https:// URL"},
      {"https:///", "empty host"},
      {"https://", "empty host"},
      {"https://:8080/", "empty host"},
      {"https://[]/", "empty host"},
      {"https://o", "does not end in '/'"},
      {"https://o/rpc", "does not end in '/'"},
      {"https://user:pw@o/", "userinfo"},
      {"https://trusted.example@evil.example/", "userinfo"},
      {"https://o/?x=/", "query or fragment"},
      {"https://o/#/", "query or fragment"},
      {"https://o /", "whitespace or control"},
      {"https://o/\\t/", "whitespace or control"},  // a JSON escape for a tab
      {"https://o:http/", "invalid port"},
      {"https://o:/", "invalid port"},
      {"https://o:99999/", "invalid port"},
      {"https://[::1/", "unterminated"},
      {"https://[::1]x/", "invalid port"},
  };
  for (const auto& [url, cause] : bad) EXPECT_TRUE(rejected(token(url), cause)) << url;
}

TEST(Jwt, LeewayBoundaries) {
  auto token = [](int64_t iat, int64_t exp) {
    return withClaims(claims(std::to_string(iat), std::to_string(exp), "\"d\"", "\"http://o/\""));
  };
  // exp may lie up to `leeway` seconds in the past, iat up to `leeway` seconds in the future.
  EXPECT_TRUE(accepted(token(kNow - 100, kNow - 60)));
  EXPECT_TRUE(rejected(token(kNow - 100, kNow - 61), "expired"));
  EXPECT_TRUE(accepted(token(kNow + 60, kNow + 100)));
  EXPECT_TRUE(rejected(token(kNow + 61, kNow + 100), "issued in the future"));

  VerifyOptions strict = options(kNow, 0);
  EXPECT_TRUE(accepted(token(kNow, kNow), VerifyMode::kSubhost, strict));
  EXPECT_TRUE(rejected(token(kNow, kNow - 1), "expired", VerifyMode::kSubhost, strict));
  EXPECT_TRUE(rejected(token(kNow + 1, kNow + 10), "future", VerifyMode::kSubhost, strict));
  // A negative leeway counts as none.
  VerifyOptions negative = options(kNow, -30);
  EXPECT_TRUE(accepted(token(kNow, kNow), VerifyMode::kSubhost, negative));
  EXPECT_TRUE(rejected(token(kNow, kNow - 1), "expired", VerifyMode::kSubhost, negative));
}

TEST(Jwt, ExtremeTimesDoNotOverflow) {
  auto token = [](int64_t iat, int64_t exp) {
    return withClaims(claims(std::to_string(iat), std::to_string(exp), "\"d\"", "\"http://o/\""));
  };
  EXPECT_TRUE(rejected(token(INT64_MIN, INT64_MIN), "expired"));
  EXPECT_TRUE(rejected(token(INT64_MAX, INT64_MAX), "future"));
  EXPECT_TRUE(accepted(token(INT64_MIN, INT64_MAX), VerifyMode::kSubhost, options(INT64_MAX)));
  EXPECT_TRUE(accepted(token(INT64_MIN, INT64_MAX), VerifyMode::kSubhost, options(INT64_MIN)));
  EXPECT_TRUE(accepted(token(kNow, kNow), VerifyMode::kSubhost, options(kNow, INT64_MAX)));
  EXPECT_TRUE(rejected(withClaims(claims("1e19", "1700003600", "\"d\"", "\"http://o/\"")),
                       "claim iat is not an integer"));
}

TEST(Jwt, BootModeMakesRpcRootOptional) {
  std::string token = withClaims(claims("1700000000", "1700003600", "\"dep-1\"", ""));
  Claims out;
  EXPECT_TRUE(accepted(token, VerifyMode::kBoot, options(), &out));
  EXPECT_EQ(out.deployment_id, "dep-1");
  EXPECT_EQ(out.rpc_root, "");
  EXPECT_TRUE(rejected(token, "claim rpc_root is missing", VerifyMode::kSubhost));

  // When present it is still checked, and deployment_id is still required.
  EXPECT_TRUE(rejected(withClaims(claims("1700000000", "1700003600", "\"dep-1\"", "\"x\"")),
                       "rpc_root is not an absolute", VerifyMode::kBoot));
  EXPECT_TRUE(rejected(withClaims(claims("1700000000", "1700003600", "", "")),
                       "claim deployment_id is missing", VerifyMode::kBoot));
}

TEST(Jwt, IgnoresUnknownHeaderFieldsAndClaims) {
  std::string token = rawToken(R"({"typ":"JWT","cty":"x","alg":"HS256","kid":"acme"})",
                               R"({"sub":"s","iat":1700000000,"exp":1700003600,"nbf":0,)"
                               R"("deployment_id":"d","rpc_root":"https://o/","extra":{"a":[1]}})");
  EXPECT_TRUE(accepted(token));
}

}  // namespace
}  // namespace subgate::jwt
