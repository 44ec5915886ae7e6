// Builds an http1::MessageHead (what the request pipeline reads) from the decoded header fields
// of an HTTP/2 request: pseudo-headers become the request line, :authority the host header,
// split cookie fields are joined, and the framing says whether a body follows.
//
// WebSockets over HTTP/2 (RFC 8441): when the connection advertised
// SETTINGS_ENABLE_CONNECT_PROTOCOL (setExtendedConnect), a `CONNECT` with `:protocol websocket`
// becomes the HTTP/1.1 upgrade request an upstream or isolate understands: `GET :path` with
// `upgrade: websocket`, a fresh `sec-websocket-key` and `sec-websocket-version: 13` (unless the
// client sent a version); sec-websocket-protocol / -extensions pass as sent. Its framing is kNone:
// what the client sends on the stream is tunnel data, not a request body.
//
// The fields are copied into one storage string; the head's string_views point into it and
// stay valid until reset() or the builder is destroyed. Not thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/http1/http1_parser.h"

namespace subgate::http2 {

enum class HeadError {
  kNone,
  kBadRequest,      // missing or malformed pseudo-headers, plain CONNECT, a :protocol other than
                    // websocket (or without the setting), a bad content-length
  kUriTooLong,      // :path longer than Limits::max_uri_bytes
  kHeaderTooLarge,  // all fields (as HTTP/1.1 lines) longer than Limits::max_head_bytes
  kTooManyHeaders,  // more than Limits::max_headers regular fields
};

class RequestHeadBuilder {
 public:
  explicit RequestHeadBuilder(const http1::Limits& limits = {}) : limits_(limits) {}

  // Whether the connection advertised SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (RFC 8441). Without it
  // a `:protocol` field is a bad request. Kept across reset().
  void setExtendedConnect(bool enabled) { extended_connect_ = enabled; }

  // One decoded field (names are lowercase, as HTTP/2 requires). Past a limit the fields are
  // no longer stored (memory stays bounded) and finish() reports the error.
  void add(std::string_view name, std::string_view value);
  // Builds the head. `end_stream`: the HEADERS frame ended the stream, so there is no body.
  // Without a content-length a body runs until END_STREAM: framing kChunked (no length known).
  HeadError finish(bool end_stream);
  const http1::MessageHead& head() const { return head_; }
  // finish() turned an extended CONNECT (`:protocol websocket`) into a WebSocket upgrade.
  bool webSocket() const { return websocket_; }
  const char* errorMessage() const { return error_message_; }
  void reset();

 private:
  HeadError fail(HeadError error, const char* message);
  // Extended CONNECT: appends the fields of the HTTP/1.1 upgrade (before views are taken).
  void addUpgradeFields();

  struct Field {
    size_t name_at, name_len, value_at, value_len;
  };
  http1::Limits limits_;
  std::string storage_;
  std::vector<Field> fields_;
  size_t bytes_ = 0;
  size_t regular_ = 0;
  HeadError overflow_ = HeadError::kNone;
  bool extended_connect_ = false;
  bool websocket_ = false;
  http1::MessageHead head_;
  const char* error_message_ = "";
};

}  // namespace subgate::http2
