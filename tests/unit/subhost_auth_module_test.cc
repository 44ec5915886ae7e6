// modules/subhost_auth through the pipeline in memory: relay tokens (x-deno-subhost) signed here
// with the project's JWT code, as `subgate token` signs them, against `subhoster` blocks; what a
// verified token puts in the route decision, and every refusal as the client sees it.
#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "core/jwt/jwt.h"
#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::configError;
using test_support::PipelineHarness;

constexpr const char* kAcmeSecret = "acme-secret-0123456789";
constexpr const char* kOpenSecret = "open-secret-0123456789";
constexpr const char* kAcmeRoot = "https://origin.example.com/rpc/";

constexpr const char* kConfig = R"(
subhoster acme {
    secret acme-secret-0123456789;
    rpc_root_allow https://origin.example.com/rpc/ https://backup.example.com/;
}
subhoster open { secret open-secret-0123456789; }
server {
    listen 127.0.0.1:8080;
    subhost_auth on;
    location / { return 200 "ok"; }
    location /pass { subhost_pass_token on; return 200 "pass"; }
    location /strict { subhost_leeway 0s; return 200 "strict"; }
    location /tiny { subhost_max_token_size 64; return 200 "tiny"; }
    location /public { subhost_auth off; return 200 "public"; }
}
)";

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

// The claims `subgate token` writes (modules/subhost_auth/token_command.cc).
std::string claims(int64_t iat, int64_t exp, std::string_view deployment_id,
                   std::string_view rpc_root) {
  return "{\"iat\":" + std::to_string(iat) + ",\"exp\":" + std::to_string(exp) +
         ",\"deployment_id\":\"" + std::string(deployment_id) + "\",\"rpc_root\":\"" +
         std::string(rpc_root) + "\"}";
}

// A token valid for 15 minutes from now.
std::string token(std::string_view deployment_id = "dep-1", std::string_view rpc_root = kAcmeRoot,
                  std::string_view kid = "acme", std::string_view secret = kAcmeSecret) {
  return jwt::signHs256(kid, claims(now(), now() + 900, deployment_id, rpc_root), secret);
}

std::string subhostHeader(const std::string& value) { return "x-deno-subhost: " + value + "\r\n"; }

std::string invalid(std::string_view reason) {
  return R"({"code":"INVALID_XDENO_SUBHOST","message":"x-deno-subhost is invalid: )" +
         std::string(reason) + "\"}";
}

TEST(SubhostAuthModule, AMissingTokenAnswers401MissingXdenoSubhost) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto missing = harness.get("/");
  EXPECT_EQ(missing->transport.status, 401);
  EXPECT_EQ(missing->transport.header("x-deno-error"),
            R"({"code":"MISSING_XDENO_SUBHOST","message":"the x-deno-subhost header is missing; )"
            R"(subhosted requests must carry a signed token"})");
  EXPECT_EQ(missing->request.errorKind(), ErrorKind::kMissingSubhost);
  EXPECT_FALSE(missing->request.route().token);
}

TEST(SubhostAuthModule, AValidTokenNamesTheDeploymentInTheRouteDecision) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  const int64_t iat = now();
  std::string text =
      jwt::signHs256("acme", claims(iat, iat + 900, "dep-1", kAcmeRoot), kAcmeSecret);
  auto ok = harness.get("/", subhostHeader(text));
  EXPECT_EQ(ok->transport.status, 200);
  EXPECT_EQ(ok->transport.body, "ok");
  const auto& verified = ok->request.route().token;
  ASSERT_TRUE(verified);
  EXPECT_EQ(verified->subhoster->name, "acme");
  EXPECT_EQ(verified->subhoster, harness.config().subhosters->at("acme"));
  EXPECT_EQ(verified->deployment_id, "dep-1");
  EXPECT_EQ(verified->rpc_root, kAcmeRoot);
  EXPECT_EQ(verified->iat, iat);
  EXPECT_EQ(verified->exp, iat + 900);
  EXPECT_EQ(verified->claims_json, claims(iat, iat + 900, "dep-1", kAcmeRoot));
  EXPECT_EQ(verified->deployment_key, std::string("acme\n") + kAcmeRoot + "\ndep-1");
  // User code does not see the token by default.
  EXPECT_EQ(ok->request.route().drop_headers, std::vector<std::string>{"x-deno-subhost"});
  EXPECT_TRUE(ok->request.route().add_headers.empty());
}

TEST(SubhostAuthModule, PassTokenOnKeepsTheHeaderForUserCode) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto pass = harness.get("/pass", subhostHeader(token()));
  EXPECT_EQ(pass->transport.status, 200);
  ASSERT_TRUE(pass->request.route().token);
  EXPECT_EQ(pass->request.route().token->deployment_id, "dep-1");
  EXPECT_TRUE(pass->request.route().drop_headers.empty());
}

TEST(SubhostAuthModule, ABadSignatureAnswers401InvalidXdenoSubhost) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  // acme's kid, open's secret.
  auto forged = harness.get("/", subhostHeader(token("dep-1", kAcmeRoot, "acme", kOpenSecret)));
  EXPECT_EQ(forged->transport.status, 401);
  EXPECT_EQ(forged->transport.header("x-deno-error"), invalid("signature does not match"));
  EXPECT_EQ(forged->transport.body,
            "401 Unauthorized: x-deno-subhost is invalid: signature does not match "
            "(INVALID_XDENO_SUBHOST)\n");
  EXPECT_EQ(forged->request.errorKind(), ErrorKind::kInvalidSubhost);
  EXPECT_FALSE(forged->request.route().token);

  // One flipped character of a valid token's signature.
  std::string tampered = token();
  tampered.back() = tampered.back() == 'A' ? 'Q' : 'A';
  auto flipped = harness.get("/", subhostHeader(tampered));
  EXPECT_EQ(flipped->transport.status, 401);
  EXPECT_EQ(flipped->request.errorKind(), ErrorKind::kInvalidSubhost);
}

TEST(SubhostAuthModule, AnUnknownKidAnswers401InvalidXdenoSubhost) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto unknown =
      harness.get("/", subhostHeader(token("dep-1", kAcmeRoot, "nobody", "nobody-secret-01234")));
  EXPECT_EQ(unknown->transport.status, 401);
  EXPECT_EQ(unknown->transport.header("x-deno-error"),
            invalid(R"(unknown subhoster (kid) \"nobody\")"));
}

bool printableAscii(std::string_view text) {
  for (char c : text)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

// The kid is the one part of an unverified token that the refusal quotes. Whatever it holds,
// the x-deno-error value stays printable ASCII (a header value may not carry DEL or control
// characters, and a kid cut inside a UTF-8 sequence would make the JSON invalid UTF-8), the
// way core/jwt quotes token bytes in its own messages.
TEST(SubhostAuthModule, AnUnknownKidIsQuotedAsPrintableAscii) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto refuse = [&](const std::string& kid_json) {
    std::string text = jwt::base64UrlEncode(R"({"alg":"HS256","kid":")" + kid_json + "\"}") + "." +
                       jwt::base64UrlEncode("{}") + ".c2ln";
    return harness.get("/", subhostHeader(text));
  };
  std::string accents = "a";
  for (int i = 0; i < 40; ++i) accents += "\xc3\xa9";  // "a" and 40 two-byte characters
  for (const std::string& kid : {std::string(R"(del\u007f)"), std::string(R"(line\r\nbreak)"),
                                 std::string(R"(tab\there)"), accents}) {
    SCOPED_TRACE(kid);
    auto refused = refuse(kid);
    EXPECT_EQ(refused->transport.status, 401);
    std::optional<std::string> error = refused->transport.header("x-deno-error");
    ASSERT_TRUE(error);
    EXPECT_TRUE(printableAscii(*error)) << *error;
    EXPECT_TRUE(printableAscii(
        std::string_view(refused->transport.body).substr(0, refused->transport.body.size() - 1)))
        << refused->transport.body;
  }
  EXPECT_EQ(refuse(R"(a\u007fb)")->transport.header("x-deno-error"),
            invalid(R"(unknown subhoster (kid) \"a?b\")"));
  EXPECT_EQ(refuse(std::string(70, 'k'))->transport.header("x-deno-error"),
            invalid(R"(unknown subhoster (kid) \")" + std::string(64, 'k') + R"(...\")"));
}

TEST(SubhostAuthModule, ExpiredTokensAreRefusedBeyondTheLeeway) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  const int64_t t = now();
  std::string long_expired =
      jwt::signHs256("acme", claims(t - 900, t - 300, "dep-1", kAcmeRoot), kAcmeSecret);
  auto expired = harness.get("/", subhostHeader(long_expired));
  EXPECT_EQ(expired->transport.status, 401);
  // "token expired at EXP, now is NOW"
  const std::string reason =
      "x-deno-subhost is invalid: token expired at " + std::to_string(t - 300);
  EXPECT_NE(expired->transport.header("x-deno-error")->find(reason), std::string::npos)
      << *expired->transport.header("x-deno-error");
  EXPECT_EQ(expired->transport.body.rfind("401 Unauthorized: " + reason, 0), 0u)
      << expired->transport.body;

  // Expired 30 seconds ago: within the default 60s leeway, not within /strict's 0s.
  std::string just_expired =
      jwt::signHs256("acme", claims(t - 900, t - 30, "dep-2", kAcmeRoot), kAcmeSecret);
  EXPECT_EQ(harness.get("/strict", subhostHeader(just_expired))->transport.status, 401);
  auto lenient = harness.get("/", subhostHeader(just_expired));
  EXPECT_EQ(lenient->transport.status, 200);
  ASSERT_TRUE(lenient->request.route().token);
  EXPECT_EQ(lenient->request.route().token->deployment_id, "dep-2");
  // Once cached by "/", the token is still checked against /strict's leeway.
  EXPECT_EQ(harness.get("/strict", subhostHeader(just_expired))->transport.status, 401);
}

TEST(SubhostAuthModule, TokensIssuedInTheFutureAreRefused) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  const int64_t t = now();
  std::string future =
      jwt::signHs256("acme", claims(t + 600, t + 1200, "dep-1", kAcmeRoot), kAcmeSecret);
  auto refused = harness.get("/", subhostHeader(future));
  EXPECT_EQ(refused->transport.status, 401);
  EXPECT_NE(refused->transport.header("x-deno-error")->find("token issued in the future"),
            std::string::npos);
}

TEST(SubhostAuthModule, ACachedTokenIsStillCheckedForTheFutureUnderEachLocationsLeeway) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  const int64_t t = now();
  // Issued 30 seconds ahead: within the default 60s leeway, not within /strict's 0s.
  std::string ahead =
      jwt::signHs256("acme", claims(t + 30, t + 900, "dep-3", kAcmeRoot), kAcmeSecret);
  EXPECT_EQ(harness.get("/", subhostHeader(ahead))->transport.status, 200);  // now cached
  auto strict = harness.get("/strict", subhostHeader(ahead));
  EXPECT_EQ(strict->transport.status, 401);
  EXPECT_NE(strict->transport.header("x-deno-error")->find("token issued in the future"),
            std::string::npos);
}

TEST(SubhostAuthModule, RpcRootAllowRefusesOtherOrigins) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto other = harness.get("/", subhostHeader(token("dep-1", "https://evil.example.com/rpc/")));
  EXPECT_EQ(other->transport.status, 401);
  EXPECT_EQ(other->transport.header("x-deno-error"),
            invalid(R"(rpc_root \"https://evil.example.com/rpc/\" is not allowed for )"
                    R"(subhoster \"acme\")"));
  EXPECT_FALSE(other->request.route().token);
  // Every listed prefix is allowed.
  auto backup = harness.get("/", subhostHeader(token("dep-1", "https://backup.example.com/x/")));
  EXPECT_EQ(backup->transport.status, 200);
  EXPECT_EQ(backup->request.route().token->rpc_root, "https://backup.example.com/x/");
  // A subhoster without rpc_root_allow takes any origin.
  auto open = harness.get(
      "/", subhostHeader(token("dep-9", "http://anywhere.example/", "open", kOpenSecret)));
  EXPECT_EQ(open->transport.status, 200);
  ASSERT_TRUE(open->request.route().token);
  EXPECT_EQ(open->request.route().token->subhoster->name, "open");
  EXPECT_EQ(open->request.route().token->rpc_root, "http://anywhere.example/");
}

// rpc_root_allow compares URLs: scheme, host (any case), port (80 / 443 applied) and a path
// prefix that ends on a segment boundary. A string prefix let "https://origin.example" allow
// "https://origin.example.evil.net/".
TEST(SubhostAuthModule, RpcRootAllowComparesSchemeHostPortAndPathSegments) {
  constexpr const char* kEdgeSecret = "edge-secret-0123456789";
  PipelineHarness harness(R"(
subhoster edge {
    secret edge-secret-0123456789;
    rpc_root_allow https://Origin.Example https://o.example:8443/v1 http://plain.example/;
}
server { listen 127.0.0.1:8080; subhost_auth on; location / { return 200 "ok"; } }
)");
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto status = [&](std::string_view rpc_root) {
    return harness.get("/", subhostHeader(token("dep-1", rpc_root, "edge", kEdgeSecret)))
        ->transport.status;
  };
  // (A token's rpc_root always ends in '/': core/jwt refuses it otherwise.)
  for (const char* allowed :
       {"https://origin.example/", "https://ORIGIN.example:443/rpc/", "https://o.example:8443/v1/",
        "https://o.example:8443/v1/a/", "http://plain.example:80/", "http://PLAIN.example/x/y/"})
    EXPECT_EQ(status(allowed), 200) << allowed;
  for (const char* refused :
       {"https://origin.example.evil.net/",  // a longer host
        "https://origin.example:444/",       // another port
        "http://origin.example/",            // another scheme (and so port)
        "https://o.example:8443/v10/",       // not on a segment boundary
        "https://o.example/v1/",             // the default port is not 8443
        "https://o.example:8443/v1/../admin/",
        "https://o.example:8443/v1/%2E%2e/admin/",  // dot segments, literal or encoded
        "https://user@origin.example/",             // user info is no URL subgate fetches
        "origin.example/", "https://plain.example/", "not a url"})
    EXPECT_EQ(status(refused), 401) << refused;
}

// An entry that is not an absolute http(s) URL is refused when the config loads.
TEST(SubhostAuthModule, RpcRootAllowEntriesMustBeAbsoluteHttpUrls) {
  auto entryError = [](std::string_view entry) {
    return configError("subhoster a {\n secret 0123456789abcdef;\n rpc_root_allow " +
                       std::string(entry) + ";\n}\nserver { return 200; }\n");
  };
  auto expected = [](std::string_view entry, std::string_view why) {
    return "<embedded>:3: rpc_root_allow \"" + std::string(entry) +
           "\" is not an absolute http:// or https:// URL: " + std::string(why);
  };
  EXPECT_EQ(entryError("origin.example/rpc/"),
            expected("origin.example/rpc/", "the scheme must be http:// or https://"));
  EXPECT_EQ(entryError("/rpc/"), expected("/rpc/", "the scheme must be http:// or https://"));
  EXPECT_EQ(entryError("https:///rpc/"), expected("https:///rpc/", "missing host"));
  EXPECT_EQ(entryError("https://o.example:99999/"),
            expected("https://o.example:99999/", "invalid port"));
  EXPECT_EQ(entryError("\"https://o.example/?a=b\""),
            expected("https://o.example/?a=b", "a query or fragment is not a path prefix"));
  EXPECT_EQ(entryError("https://o.example/v1/../x/"),
            expected("https://o.example/v1/../x/", "the path has a \".\" or \"..\" segment"));
}

TEST(SubhostAuthModule, MalformedRepeatedAndOversizedTokensAreRefused) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto garbage = harness.get("/", subhostHeader("not-a-token"));
  EXPECT_EQ(garbage->transport.status, 401);
  EXPECT_EQ(garbage->transport.header("x-deno-error"),
            invalid("token is not three dot-separated parts"));

  auto twice = harness.get("/", subhostHeader(token()) + subhostHeader(token()));
  EXPECT_EQ(twice->transport.status, 401);
  EXPECT_EQ(twice->transport.header("x-deno-error"), invalid("the header was sent more than once"));

  auto oversized = harness.get("/tiny", subhostHeader(token()));
  EXPECT_EQ(oversized->transport.status, 401);
  EXPECT_EQ(oversized->transport.header("x-deno-error"),
            invalid("the token is larger than subhost_max_token_size"));

  // A token without rpc_root is a boot token, not a relay token.
  std::string boot =
      jwt::signHs256("acme",
                     "{\"iat\":" + std::to_string(now()) +
                         ",\"exp\":" + std::to_string(now() + 60) + ",\"deployment_id\":\"dep-1\"}",
                     kAcmeSecret);
  auto no_root = harness.get("/", subhostHeader(boot));
  EXPECT_EQ(no_root->transport.status, 401);
  EXPECT_EQ(no_root->transport.header("x-deno-error"), invalid("claim rpc_root is missing"));
}

TEST(SubhostAuthModule, ARepeatedTokenIsServedFromTheCacheWithTheSameDecision) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  std::string text = token("dep-cached");
  auto first = harness.get("/", subhostHeader(text));
  auto second = harness.get("/", subhostHeader(text));
  ASSERT_TRUE(first->request.route().token);
  ASSERT_TRUE(second->request.route().token);
  EXPECT_EQ(first->request.route().token, second->request.route().token);
  // A hit still drops the header unless the location passes it on.
  EXPECT_EQ(second->request.route().drop_headers, std::vector<std::string>{"x-deno-subhost"});
  auto pass = harness.get("/pass", subhostHeader(text));
  EXPECT_EQ(pass->request.route().token, first->request.route().token);
  EXPECT_TRUE(pass->request.route().drop_headers.empty());
}

TEST(SubhostAuthModule, AReloadWithAnotherSecretRefusesTokensTheOldOneAccepted) {
  PipelineHarness before(kConfig);
  ASSERT_TRUE(before.ok()) << before.error();
  std::string text = token("dep-reload");
  EXPECT_EQ(before.get("/", subhostHeader(text))->transport.status, 200);
  std::string rotated = kConfig;
  rotated.replace(rotated.find(kAcmeSecret), std::string_view(kAcmeSecret).size(),
                  "rotated-secret-0123456789");
  PipelineHarness after(rotated);
  ASSERT_TRUE(after.ok()) << after.error();
  auto refused = after.get("/", subhostHeader(text));
  EXPECT_EQ(refused->transport.status, 401);
  EXPECT_EQ(refused->transport.header("x-deno-error"), invalid("signature does not match"));
}

TEST(SubhostAuthModule, OffAtALocationRequiresNoToken) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto open = harness.get("/public");
  EXPECT_EQ(open->transport.status, 200);
  EXPECT_EQ(open->transport.body, "public");
  EXPECT_FALSE(open->request.route().token);
  // Not verified either: a token there is ignored and stays in the request.
  auto ignored = harness.get("/public", subhostHeader("not-a-token"));
  EXPECT_EQ(ignored->transport.status, 200);
  EXPECT_TRUE(ignored->request.route().drop_headers.empty());
}

TEST(SubhostAuthModule, RefusesBadSubhosterBlocksAndSettings) {
  EXPECT_EQ(configError("server {\n listen 127.0.0.1:8080;\n subhost_auth on;\n return 200;\n}\n"),
            "<embedded>:3: subhost_auth is on but no subhoster block is configured");
  EXPECT_EQ(configError("subhoster a {\n secret short;\n}\nserver { return 200; }\n"),
            "<embedded>:2: the secret of subhoster \"a\" is shorter than 16 bytes");
  EXPECT_EQ(configError("subhoster a {\n rpc_root_allow https://x/;\n}\nserver { return 200; }\n"),
            "<embedded>:1: subhoster \"a\" has no secret or secret_file");
  EXPECT_EQ(configError("subhoster a {\n secret 0123456789abcdef;\n secret_file /nonexistent;\n}\n"
                        "server { return 200; }\n"),
            "<embedded>:3: subhoster \"a\" has more than one secret");
  EXPECT_EQ(
      configError("subhoster a {\n secret_file /nonexistent/secret;\n}\nserver { return 200; }\n"),
      "<embedded>:2: secret_file /nonexistent/secret: cannot open: No such file or directory");
  EXPECT_EQ(configError("subhoster a {\n secret 0123456789abcdef;\n rpc_root_allow ftp://x/;\n}\n"
                        "server { return 200; }\n"),
            "<embedded>:3: rpc_root_allow \"ftp://x/\" is not an absolute http:// or https:// "
            "URL: the scheme must be http:// or https://");
  EXPECT_EQ(configError("subhoster a { secret 0123456789abcdef; }\n"
                        "subhoster a { secret 0123456789abcdef; }\nserver { return 200; }\n"),
            "<embedded>:2: duplicate subhoster \"a\"");
  EXPECT_EQ(configError("subhoster a { secret 0123456789abcdef; }\nserver {\n subhost_auth on;\n"
                        " subhost_leeway soon;\n return 200;\n}\n"),
            "<embedded>:4: invalid duration \"soon\" in \"subhost_leeway\" directive");
  EXPECT_EQ(configError("subhoster a { secret 0123456789abcdef; }\nserver {\n subhost_auth on;\n"
                        " subhost_max_token_size 10;\n return 200;\n}\n"),
            "<embedded>:4: invalid size \"10\" in \"subhost_max_token_size\" directive");
}

}  // namespace
}  // namespace subgate
