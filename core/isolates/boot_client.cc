#include "core/isolates/boot_client.h"

#include <jansson.h>

#include <ctime>
#include <optional>

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

// A bearer token for the origin's RPCs about one deployment: HS256 with the subhoster's secret,
// short-lived.
std::string deploymentToken(const Subhoster& subhoster, std::string_view deployment_id) {
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
  return token;
}

// `GET {rpc_root}{rpc}?deployment_id=ID[&layer_id=LAYER]`: the answer, or a failure for a
// call that did not complete (INTERNAL_BOOT_RPC_ERROR).
std::optional<HttpResponse> originGet(std::string_view rpc_root, std::string_view rpc,
                                      std::string_view deployment_id, std::string_view layer_id,
                                      const std::string& token, const HttpClientOptions& options,
                                      BootOutcome& failed) {
  std::string url_text(rpc_root);
  url_text.append(rpc);
  url_text += "?deployment_id=";
  appendPercentEncoded(url_text, deployment_id);
  if (!layer_id.empty()) {
    url_text += "&layer_id=";
    appendPercentEncoded(url_text, layer_id);
  }
  std::string error;
  auto url = parseHttpUrl(url_text, error);
  if (!url) {
    failed =
        failure(ErrorKind::kInternalBootRpcError, "invalid origin URL " + url_text + ": " + error);
    return std::nullopt;
  }
  HttpResult result = httpGet(*url, {{"authorization", "Bearer " + token}}, options);
  if (result.error != HttpClientError::kNone) {
    std::string message = "the /";
    message.append(rpc);
    message += " call to " + url->text + " failed: " + result.message;
    failed = failure(ErrorKind::kInternalBootRpcError, std::move(message));
    return std::nullopt;
  }
  return std::move(result.response);
}

}  // namespace

BootOutcome fetchDeployment(const Subhoster& subhoster, std::string_view rpc_root,
                            std::string_view deployment_id, const HttpClientOptions& options,
                            const BundleLimits& limits) {
  const std::string token = deploymentToken(subhoster, deployment_id);
  BootOutcome failed;
  std::optional<HttpResponse> answer =
      originGet(rpc_root, "boot", deployment_id, {}, token, options, failed);
  if (!answer) return failed;
  HttpResponse& response = *answer;
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
  std::string error;
  if (!parseDenoConfig(*config, *code, error))
    return failure(ErrorKind::kOriginInvalidConfig, error);
  // Layers other than the inline one: `GET {rpc_root}layer?deployment_id=ID&layer_id=LAYER`
  // with the same token (docs/origin.md, "Layers").
  auto fetch_layer = [&](const CodeLayer& layer, CodeFailure& layer_failure) {
    BootOutcome layer_failed;
    std::optional<HttpResponse> layer_answer =
        originGet(rpc_root, "layer", deployment_id, layer.id, token, options, layer_failed);
    std::optional<std::string> bytes;
    if (!layer_answer) {
      layer_failure = {layer_failed.error, layer_failed.message};
    } else if (layer_answer->status < 200 || layer_answer->status > 299) {
      layer_failure = {ErrorKind::kOriginBootRpcError, "the origin answered /layer for layer \"" +
                                                           layer.id + "\" with status " +
                                                           std::to_string(layer_answer->status)};
    } else {
      bytes = std::move(layer_answer->body);
    }
    return bytes;
  };
  CodeFailure code_failure;
  if (!assembleCode(*code, std::move(response.body), fetch_layer, limits, code_failure))
    return failure(code_failure.error, std::move(code_failure.message));
  BootOutcome outcome;
  outcome.code = std::move(code);
  return outcome;
}

}  // namespace subgate
