#include "core/jwt/jwt.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <memory>

namespace subgate::jwt {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kSignatureBytes = 32;  // SHA-256

constexpr std::array<int8_t, 256> kDecodeTable = [] {
  std::array<int8_t, 256> table{};
  table.fill(-1);
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return table;
}();

struct JsonDeleter {
  void operator()(json_t* json) const { json_decref(json); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

// Token bytes quoted in an error message: printable ASCII only, bounded.
std::string printable(std::string_view text, size_t max = 40) {
  std::string out;
  for (char c : text.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > max) out += "...";
  return out;
}

// Parses `bytes` as a JSON object; `what` names the part in the error.
JsonPtr parseObject(const std::string& bytes, const char* what, std::string& error) {
  json_error_t json_error;
  JsonPtr json(json_loadb(bytes.data(), bytes.size(), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                          &json_error));
  if (!json) {
    error = std::string(what) + " is not valid JSON: " + printable(json_error.text, 80);
  } else if (!json_is_object(json.get())) {
    error = std::string(what) + " is not a JSON object";
    json.reset();
  }
  return json;
}

struct Parts {
  std::string_view header, payload, signature, signing_input;
};

std::optional<Parts> splitToken(std::string_view token, std::string& error) {
  size_t first = token.find('.');
  size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    error = "token is not three dot-separated parts";
    return std::nullopt;
  }
  return Parts{token.substr(0, first), token.substr(first + 1, second - first - 1),
               token.substr(second + 1), token.substr(0, second)};
}

// Decodes the header part; the alg value itself is left to the caller.
std::optional<Header> decodeHeader(std::string_view header_b64, JsonPtr* keep, std::string& error) {
  std::optional<std::string> bytes = base64UrlDecode(header_b64);
  if (!bytes) {
    error = "header is not valid base64url";
    return std::nullopt;
  }
  JsonPtr json = parseObject(*bytes, "header", error);
  if (!json) return std::nullopt;
  json_t* alg = json_object_get(json.get(), "alg");
  json_t* kid = json_object_get(json.get(), "kid");
  if (!alg)
    error = "header has no alg";
  else if (!json_is_string(alg))
    error = "header alg is not a string";
  else if (!kid)
    error = "header has no kid";
  else if (!json_is_string(kid))
    error = "header kid is not a string";
  else {
    Header header{std::string(json_string_value(alg), json_string_length(alg)),
                  std::string(json_string_value(kid), json_string_length(kid))};
    if (keep) *keep = std::move(json);
    return header;
  }
  return std::nullopt;
}

bool hmacSha256(std::string_view secret, std::string_view data, unsigned char* mac) {
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length) ||
      length != kSignatureBytes) {
    ERR_clear_error();
    return false;
  }
  return true;
}

// A JSON integer, or a real with an integral value that fits in int64.
bool integerClaim(json_t* claims, const char* name, int64_t& value, std::string& error) {
  json_t* json = json_object_get(claims, name);
  if (!json) {
    error = std::string("claim ") + name + " is missing";
    return false;
  }
  if (json_is_integer(json)) {
    value = json_integer_value(json);
    return true;
  }
  double real = json_is_real(json) ? json_real_value(json) : 0;
  if (!json_is_real(json) || std::trunc(real) != real || real < -0x1p63 || real >= 0x1p63) {
    error = std::string("claim ") + name + " is not an integer";
    return false;
  }
  value = static_cast<int64_t>(real);
  return true;
}

// Empty when `url` is a usable rpc_root, else what is wrong with it.
std::string rpcRootProblem(std::string_view url) {
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return "rpc_root contains whitespace or control characters";
  }
  size_t scheme_end = url.find("://");
  std::string scheme(url.substr(0, scheme_end == std::string_view::npos ? 0 : scheme_end));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https")
    return "rpc_root is not an absolute http:// or https:// URL";
  std::string_view rest = url.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) return "rpc_root has a query or fragment";
  std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.find('@') != std::string_view::npos) return "rpc_root contains userinfo";
  std::string_view host, after;  // after: "" or ":port"
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return "rpc_root has an unterminated [IPv6] host";
    host = authority.substr(1, close - 1);
    after = authority.substr(close + 1);
  } else {
    host = authority.substr(0, authority.find(':'));
    after = authority.substr(host.size());
  }
  if (host.empty()) return "rpc_root has an empty host";
  if (!after.empty()) {
    std::string_view port = after.substr(1);
    if (after[0] != ':' || port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::atoi(std::string(port).c_str()) > 65535)
      return "rpc_root has an invalid port";
  }
  if (!url.ends_with('/')) return "rpc_root does not end in '/'";
  return "";
}

int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? INT64_MAX : INT64_MIN;
}

}  // namespace

std::string base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  auto byte = [&](size_t at) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[at]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(n >> shift) & 63];
  }
  size_t left = bytes.size() - i;
  if (left > 0) {
    uint32_t n = byte(i) << 16 | (left == 2 ? byte(i + 1) << 8 : 0);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    if (left == 2) out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    int8_t value = kDecodeTable[static_cast<unsigned char>(c)];
    if (value < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  // The 2 or 4 bits left over belong to no byte; a canonical encoding leaves them zero.
  if ((bits & ((1u << count) - 1)) != 0) return std::nullopt;
  return out;
}

std::string signHs256(std::string_view kid, std::string_view claims_json, std::string_view secret) {
  if (secret.empty()) return "";
  JsonPtr header(json_object());
  if (!header || json_object_set_new(header.get(), "alg", json_string("HS256")) != 0 ||
      json_object_set_new(header.get(), "typ", json_string("JWT")) != 0 ||
      json_object_set_new(header.get(), "kid", json_stringn(kid.data(), kid.size())) != 0) {
    return "";
  }
  std::unique_ptr<char, decltype(&std::free)> text(json_dumps(header.get(), JSON_COMPACT),
                                                   &std::free);
  if (!text) return "";
  std::string token = base64UrlEncode(text.get()) + "." + base64UrlEncode(claims_json);
  unsigned char mac[kSignatureBytes];
  if (!hmacSha256(secret, token, mac)) return "";
  return token + "." + base64UrlEncode(std::string_view(reinterpret_cast<char*>(mac), sizeof mac));
}

std::optional<Header> peekHeader(std::string_view token, std::string& error) {
  std::optional<Parts> parts = splitToken(token, error);
  if (!parts) return std::nullopt;
  return decodeHeader(parts->header, nullptr, error);
}

bool verifyHs256(std::string_view token, std::string_view secret, const VerifyOptions& options,
                 VerifyMode mode, Claims& out, std::string& error) {
  auto fail = [&](std::string message) {
    error = std::move(message);
    return false;
  };
  if (token.size() > options.max_token_bytes)
    return fail("token is " + std::to_string(token.size()) + " bytes, over the limit of " +
                std::to_string(options.max_token_bytes));
  std::optional<Parts> parts = splitToken(token, error);
  if (!parts) return false;
  JsonPtr header_json;
  std::optional<Header> header = decodeHeader(parts->header, &header_json, error);
  if (!header) return false;
  // RFC 7515 §4.1.11: extensions named in "crit" must be understood; we understand none.
  if (json_object_get(header_json.get(), "crit"))
    return fail("header has a crit parameter, no extensions are supported");
  if (header->alg != "HS256")
    return fail("unsupported alg \"" + printable(header->alg) + "\", only HS256 is accepted");
  if (secret.empty()) return fail("the secret for this kid is empty");
  std::optional<std::string> signature = base64UrlDecode(parts->signature);
  if (!signature) return fail("signature is not valid base64url");
  if (signature->size() != kSignatureBytes)
    return fail("signature is " + std::to_string(signature->size()) + " bytes, HS256 needs 32");
  unsigned char mac[kSignatureBytes];
  if (!hmacSha256(secret, parts->signing_input, mac)) return fail("HMAC-SHA256 computation failed");
  if (CRYPTO_memcmp(mac, signature->data(), kSignatureBytes) != 0)
    return fail("signature does not match");

  std::optional<std::string> payload = base64UrlDecode(parts->payload);
  if (!payload) return fail("payload is not valid base64url");
  JsonPtr claims = parseObject(*payload, "payload", error);
  if (!claims) return false;
  if (!integerClaim(claims.get(), "iat", out.iat, error) ||
      !integerClaim(claims.get(), "exp", out.exp, error)) {
    return false;
  }
  json_t* deployment_id = json_object_get(claims.get(), "deployment_id");
  out.deployment_id.clear();
  out.rpc_root.clear();
  if (mode == VerifyMode::kEvents) {
    // Not scoped to one deployment: a /boot token (which is) must not pass for one.
    if (deployment_id) return fail("claim deployment_id is not expected in an events token");
  } else if (!deployment_id) {
    return fail("claim deployment_id is missing");
  }
  if (deployment_id) {
    if (!json_is_string(deployment_id) || json_string_length(deployment_id) == 0)
      return fail("claim deployment_id is not a non-empty string");
    out.deployment_id.assign(json_string_value(deployment_id), json_string_length(deployment_id));
  }
  json_t* rpc_root = json_object_get(claims.get(), "rpc_root");
  if (!rpc_root && mode == VerifyMode::kSubhost) return fail("claim rpc_root is missing");
  if (rpc_root) {
    if (!json_is_string(rpc_root)) return fail("claim rpc_root is not a string");
    out.rpc_root.assign(json_string_value(rpc_root), json_string_length(rpc_root));
    error = rpcRootProblem(out.rpc_root);
    if (!error.empty()) return false;
  }
  int64_t leeway = options.leeway_seconds > 0 ? options.leeway_seconds : 0;
  if (out.exp < saturatingAdd(options.now, -leeway))
    return fail("token expired at " + std::to_string(out.exp) + ", now is " +
                std::to_string(options.now));
  if (out.iat > saturatingAdd(options.now, leeway))
    return fail("token issued in the future (iat " + std::to_string(out.iat) + ", now is " +
                std::to_string(options.now) + ")");
  out.json = std::move(*payload);
  return true;
}

}  // namespace subgate::jwt
