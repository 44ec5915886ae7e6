// The HTTP/2 request head builder over untrusted decoded fields: input lines "name\tvalue";
// a line "!" ends the field list with END_STREAM; a line "+" turns on extended CONNECT
// (RFC 8441). Checks that a built head is self-consistent.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/http2/request_head.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace subgate;
  http1::Limits limits;
  limits.max_head_bytes = 4096;
  limits.max_headers = 32;
  limits.max_uri_bytes = 1024;
  http2::RequestHeadBuilder builder(limits);
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  bool end_stream = false;
  for (int lines = 0; !rest.empty() && lines < 256; ++lines) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (line == "!") {
      end_stream = true;
      continue;
    }
    if (line == "+") {
      builder.setExtendedConnect(true);
      continue;
    }
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos) continue;
    builder.add(line.substr(0, tab), line.substr(tab + 1));
  }
  if (builder.finish(end_stream) == http2::HeadError::kNone) {
    const http1::MessageHead& head = builder.head();
    if (head.path.size() + (head.query.empty() ? 0 : head.query.size() + 1) > head.target.size())
      __builtin_trap();
    (void)head.find("host");
    // A WebSocket upgrade carries exactly the key subgate generated and no body framing.
    if (builder.webSocket() &&
        (head.method != "GET" || head.find("sec-websocket-key").size() != 24 ||
         head.framing != http1::BodyFraming::kNone))
      __builtin_trap();
  }
  return 0;
}
