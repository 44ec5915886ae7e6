#include "core/http2/request_head.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <chrono>
#include <cstring>

namespace subgate::http2 {
namespace {

// RFC 6455 §4.1: a base64-encoded 16-byte nonce. The upstream answers with a hash of it, which
// subgate drops (RFC 8441 clients do not use it), so the nonce protects nothing here; a weak
// fallback is acceptable when the RNG fails.
void appendWebSocketKey(std::string& out) {
  unsigned char nonce[16];
  if (RAND_bytes(nonce, sizeof nonce) != 1) {
    ERR_clear_error();
    static thread_local uint64_t counter = 0;
    uint64_t parts[2] = {
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()),
        ++counter};
    std::memcpy(nonce, parts, sizeof nonce);
  }
  unsigned char encoded[4 * ((sizeof nonce + 2) / 3) + 1];
  int n = EVP_EncodeBlock(encoded, nonce, sizeof nonce);
  out.append(reinterpret_cast<const char*>(encoded), static_cast<size_t>(n));
}

// Back to an empty head, keeping the header list's capacity (a builder serves stream after
// stream of a connection).
void clearHead(http1::MessageHead& head) {
  std::vector<http1::HeaderField> headers = std::move(head.headers);
  headers.clear();
  head = http1::MessageHead();
  head.headers = std::move(headers);
}

}  // namespace

void RequestHeadBuilder::reset() {
  storage_.clear();
  fields_.clear();
  bytes_ = 0;
  regular_ = 0;
  overflow_ = HeadError::kNone;
  websocket_ = false;
  clearHead(head_);
  error_message_ = "";
}

void RequestHeadBuilder::add(std::string_view name, std::string_view value) {
  if (overflow_ != HeadError::kNone) return;
  bytes_ += name.size() + value.size() + 4;  // "name: value\r\n"
  if (bytes_ > limits_.max_head_bytes) {
    overflow_ = HeadError::kHeaderTooLarge;
    return;
  }
  if (!name.empty() && name[0] != ':' && ++regular_ > limits_.max_headers) {
    overflow_ = HeadError::kTooManyHeaders;
    return;
  }
  if (fields_.empty()) {
    // One allocation each for a typical request instead of a doubling series (a builder
    // lives for one stream).
    storage_.reserve(512);
    fields_.reserve(16);
  }
  Field field{storage_.size(), name.size(), storage_.size() + name.size(), value.size()};
  storage_.append(name);
  storage_.append(value);
  fields_.push_back(field);
}

HeadError RequestHeadBuilder::fail(HeadError error, const char* message) {
  error_message_ = message;
  websocket_ = false;
  clearHead(head_);
  return error;
}

void RequestHeadBuilder::addUpgradeFields() {
  bool has_version = false;
  for (const Field& f : fields_)
    has_version |= http1::iequals(std::string_view(storage_).substr(f.name_at, f.name_len),
                                  "sec-websocket-version");
  auto add = [this](std::string_view name, std::string_view value) {
    fields_.push_back({storage_.size(), name.size(), storage_.size() + name.size(), value.size()});
    storage_.append(name);
    storage_.append(value);
  };
  add("upgrade", "websocket");
  if (!has_version) add("sec-websocket-version", "13");
  const size_t at = storage_.size();
  storage_.append("sec-websocket-key");
  appendWebSocketKey(storage_);
  fields_.push_back({at, 17, at + 17, storage_.size() - at - 17});
}

HeadError RequestHeadBuilder::finish(bool end_stream) {
  if (overflow_ == HeadError::kHeaderTooLarge)
    return fail(overflow_, "the request headers are larger than client_max_header_size");
  if (overflow_ == HeadError::kTooManyHeaders)
    return fail(overflow_, "the request has more header fields than client_max_headers");
  // The method and :protocol decide what the head becomes (RFC 8441 §4).
  {
    std::string_view method, protocol;
    bool has_protocol = false;
    for (const Field& f : fields_) {
      std::string_view name = std::string_view(storage_).substr(f.name_at, f.name_len);
      if (name == ":method") method = std::string_view(storage_).substr(f.value_at, f.value_len);
      if (name == ":protocol") {
        protocol = std::string_view(storage_).substr(f.value_at, f.value_len);
        has_protocol = true;
      }
    }
    if (method == "CONNECT" && !has_protocol)
      return fail(HeadError::kBadRequest,
                  "CONNECT is not supported (WebSockets use extended CONNECT, RFC 8441)");
    if (has_protocol) {
      if (!extended_connect_)
        return fail(HeadError::kBadRequest, ":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL");
      if (method != "CONNECT")
        return fail(HeadError::kBadRequest, ":protocol on a request that is not CONNECT");
      if (!http1::iequals(protocol, "websocket"))
        return fail(HeadError::kBadRequest,
                    "unsupported :protocol (subgate serves websocket only)");
      websocket_ = true;
    }
  }
  // Cookies may come split into several fields (RFC 9113 §8.2.3): one field for HTTP/1.1.
  size_t cookies = 0;
  for (const Field& f : fields_)
    if (std::string_view(storage_).substr(f.name_at, f.name_len) == "cookie") ++cookies;
  if (cookies > 1) {
    size_t total = 6;
    for (const Field& f : fields_) total += f.value_len + 2;
    storage_.reserve(storage_.size() + total);  // the parts are appended from storage_ itself
    Field joined{storage_.size(), 6, storage_.size() + 6, 0};
    storage_.append("cookie");
    bool first = true;
    for (const Field& f : fields_) {
      if (std::string_view(storage_).substr(f.name_at, f.name_len) != "cookie") continue;
      if (!first) storage_.append("; ");
      first = false;
      storage_.append(storage_.data() + f.value_at, f.value_len);
    }
    joined.value_len = storage_.size() - joined.value_at;
    fields_.push_back(joined);
  }
  const size_t generated_at = fields_.size();  // the client's fields (and joined cookies) before
  if (websocket_) addUpgradeFields();
  // From here on storage_ does not change: views into it stay valid.
  const std::string_view all(storage_);
  std::string_view method, path, authority, scheme;
  bool has_authority = false;
  clearHead(head_);
  head_.headers.reserve(fields_.size() + 1);
  size_t cookie_seen = 0;
  for (size_t i = 0; i < fields_.size(); ++i) {
    const Field& f = fields_[i];
    std::string_view name = all.substr(f.name_at, f.name_len);
    std::string_view value = all.substr(f.value_at, f.value_len);
    if (!name.empty() && name[0] == ':') {
      if (name == ":method") {
        method = value;
      } else if (name == ":path") {
        path = value;
      } else if (name == ":authority") {
        authority = value;
        has_authority = !value.empty();
      } else if (name == ":scheme") {
        scheme = value;
      } else if (name == ":protocol") {
        // Checked above; the upgrade fields stand for it.
      } else {
        return fail(HeadError::kBadRequest, "unknown pseudo-header");
      }
      continue;
    }
    if (name == "cookie" && cookies > 1 && ++cookie_seen <= cookies) continue;  // the parts
    if (name == "host" && has_authority) continue;  // :authority wins (RFC 9113 §8.3.1)
    // An RFC 8441 client sends no key (:protocol replaced it); if it did, the upstream gets ours.
    // Case-blind: nghttp2 refuses uppercase names, but the builder does not rely on it.
    if (websocket_ && i < generated_at && http1::iequals(name, "sec-websocket-key")) continue;
    head_.headers.push_back({name, value});
  }
  if (method.empty()) return fail(HeadError::kBadRequest, "missing :method");
  if (scheme.empty()) return fail(HeadError::kBadRequest, "missing :scheme");
  if (path.empty()) return fail(HeadError::kBadRequest, "missing :path");
  if (path[0] != '/' && !(path == "*" && method == "OPTIONS"))
    return fail(HeadError::kBadRequest, "invalid :path");
  if (path.size() > limits_.max_uri_bytes)
    return fail(HeadError::kUriTooLong, "the request target is too long");
  if (has_authority) {
    // The host header goes first, as an HTTP/1.1 client would send it.
    head_.headers.insert(head_.headers.begin(), http1::HeaderField{"host", authority});
  }
  head_.method = websocket_ ? std::string_view("GET") : method;
  head_.target = path;
  size_t question = path.find('?');
  head_.path = path.substr(0, question);
  head_.query = question == std::string_view::npos ? std::string_view() : path.substr(question + 1);
  head_.version_minor = 1;
  head_.keep_alive = true;
  std::string_view length = head_.find("content-length");
  if (websocket_) {
    if (!length.empty())
      return fail(HeadError::kBadRequest, "content-length on an extended CONNECT");
    head_.upgrade = true;  // framing stays kNone: the stream's DATA is tunnel bytes
    return HeadError::kNone;
  }
  if (!length.empty()) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), value);
    if (ec != std::errc() || end != length.data() + length.size())
      return fail(HeadError::kBadRequest, "invalid content-length");
    for (const http1::HeaderField& h : head_.headers)
      if (h.name == "content-length" && h.value != length)
        return fail(HeadError::kBadRequest, "conflicting content-length");
    if (end_stream && value != 0)
      return fail(HeadError::kBadRequest, "content-length without a body");
    if (!end_stream) {
      head_.framing = http1::BodyFraming::kContentLength;
      head_.content_length = value;
    }
  } else if (!end_stream) {
    head_.framing = http1::BodyFraming::kChunked;
  }
  return HeadError::kNone;
}

}  // namespace subgate::http2
