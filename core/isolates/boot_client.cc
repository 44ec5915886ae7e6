#include "core/isolates/boot_client.h"

#include <jansson.h>

#include <ctime>

#include "core/jwt/jwt.h"
#include "core/log/log.h"

namespace subgate {
namespace {

constexpr int64_t kBootTokenSeconds = 60;

void appendPercentEncoded(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

BootOutcome failure(ErrorKind kind, std::string message) {
  BootOutcome outcome;
  outcome.error = kind;
  outcome.message = std::move(message);
  return outcome;
}

}  // namespace

BootOutcome fetchDeployment(const Subhoster& subhoster, std::string_view rpc_root,
                            std::string_view deployment_id, const HttpClientOptions& options) {
  std::string url_text(rpc_root);
  url_text += "boot?deployment_id=";
  appendPercentEncoded(url_text, deployment_id);
  std::string error;
  auto url = parseHttpUrl(url_text, error);
  if (!url)
    return failure(ErrorKind::kInternalBootRpcError,
                   "invalid origin URL " + url_text + ": " + error);

  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  json_t* object = json_object();
  json_object_set_new(object, "iat", json_integer(now));
  json_object_set_new(object, "exp", json_integer(now + kBootTokenSeconds));
  json_object_set_new(object, "deployment_id",
                      json_stringn(deployment_id.data(), deployment_id.size()));
  char* claims_text = json_dumps(object, JSON_COMPACT);
  json_decref(object);
  std::string token =
      jwt::signHs256(subhoster.name, claims_text ? claims_text : "{}", subhoster.secret);
  free(claims_text);

  HttpResult result = httpGet(
      *url, {{"authorization", "Bearer " + token}, {"accept", "application/javascript"}}, options);
  if (result.error != HttpClientError::kNone)
    return failure(ErrorKind::kInternalBootRpcError,
                   "the /boot call to " + url->text + " failed: " + result.message);
  const HttpResponse& response = result.response;
  if (response.status == 404)
    return failure(ErrorKind::kDeploymentNotFound,
                   "the origin does not know deployment \"" + std::string(deployment_id) + "\"");
  if (response.status < 200 || response.status > 299)
    return failure(ErrorKind::kOriginBootRpcError,
                   "the origin answered /boot with status " + std::to_string(response.status));
  auto config = response.header("x-deno-config");
  if (!config)
    return failure(ErrorKind::kOriginMissingConfig,
                   "the origin's /boot answer has no x-deno-config header");
  auto code = std::make_shared<DeploymentCode>();
  if (!parseDenoConfig(*config, *code, error))
    return failure(ErrorKind::kOriginInvalidConfig, error);
  if (!code->layers.empty())
    return failure(ErrorKind::kOriginInvalidConfig,
                   "x-deno-config describes layers, which subgate does not load yet");
  code->bytes = result.response.body.size();
  code->modules.push_back({code->entrypoint, std::move(result.response.body)});
  BootOutcome outcome;
  outcome.code = std::move(code);
  return outcome;
}

}  // namespace subgate
