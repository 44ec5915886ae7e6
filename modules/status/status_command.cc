#include "modules/status/status_command.h"

#include <jansson.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/http_client/http_client.h"

namespace subgate {

int runStatusCommand(const ServerOptions&, int argc, char** args) {
  if (argc > 1) {
    std::fputs("usage: subgate status [URL]   (default http://127.0.0.1:8081/status)\n", stderr);
    return 2;
  }
  std::string error;
  auto url = parseHttpUrl(argc == 1 ? args[0] : "http://127.0.0.1:8081/status", error);
  if (!url) {
    std::fprintf(stderr, "subgate status: %s\n", error.c_str());
    return 2;
  }
  HttpClientOptions options;
  options.connect_timeout = std::chrono::seconds(2);
  options.total_timeout = std::chrono::seconds(5);
  HttpResult result = httpGet(*url, {}, options);
  if (result.error != HttpClientError::kNone) {
    std::fprintf(stderr, "subgate status: %s\n", result.message.c_str());
    return 1;
  }
  json_error_t parse_error;
  json_t* status =
      json_loadb(result.response.body.data(), result.response.body.size(), 0, &parse_error);
  if (result.response.status != 200 || !status) {
    std::fprintf(stderr, "subgate status: %s answered %d%s\n%s", url->text.c_str(),
                 result.response.status, status ? "" : " without JSON",
                 result.response.body.c_str());
    json_decref(status);
    return 1;
  }
  char* text = json_dumps(status, JSON_INDENT(2) | JSON_SORT_KEYS);
  std::printf("%s\n", text ? text : "{}");
  free(text);
  json_decref(status);
  return 0;
}

}  // namespace subgate
