#include "core/http2/request_head.h"

#include <charconv>

namespace subgate::http2 {

void RequestHeadBuilder::reset() {
  storage_.clear();
  fields_.clear();
  bytes_ = 0;
  regular_ = 0;
  overflow_ = HeadError::kNone;
  head_ = http1::MessageHead();
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
  Field field{storage_.size(), name.size(), storage_.size() + name.size(), value.size()};
  storage_.append(name);
  storage_.append(value);
  fields_.push_back(field);
}

HeadError RequestHeadBuilder::fail(HeadError error, const char* message) {
  error_message_ = message;
  head_ = http1::MessageHead();
  return error;
}

HeadError RequestHeadBuilder::finish(bool end_stream) {
  if (overflow_ == HeadError::kHeaderTooLarge)
    return fail(overflow_, "the request headers are larger than client_max_header_size");
  if (overflow_ == HeadError::kTooManyHeaders)
    return fail(overflow_, "the request has more header fields than client_max_headers");
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
  // From here on storage_ does not change: views into it stay valid.
  const std::string_view all(storage_);
  std::string_view method, path, authority, scheme;
  bool has_authority = false;
  head_ = http1::MessageHead();
  head_.headers.reserve(fields_.size() + 1);
  size_t cookie_seen = 0;
  for (const Field& f : fields_) {
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
      } else {
        return fail(HeadError::kBadRequest, "unknown pseudo-header");
      }
      continue;
    }
    if (name == "cookie" && cookies > 1 && ++cookie_seen <= cookies) continue;  // the parts
    if (name == "host" && has_authority) continue;  // :authority wins (RFC 9113 §8.3.1)
    head_.headers.push_back({name, value});
  }
  if (method.empty()) return fail(HeadError::kBadRequest, "missing :method");
  if (method == "CONNECT") return fail(HeadError::kBadRequest, "CONNECT is not supported");
  if (scheme.empty()) return fail(HeadError::kBadRequest, "missing :scheme");
  if (path.empty()) return fail(HeadError::kBadRequest, "missing :path");
  if (path[0] != '/' && !(path == "*" && method == "OPTIONS"))
    return fail(HeadError::kBadRequest, "invalid :path");
  if (path.size() > limits_.max_uri_bytes) return fail(HeadError::kUriTooLong, "the request target is too long");
  if (has_authority) {
    // The host header goes first, as an HTTP/1.1 client would send it.
    head_.headers.insert(head_.headers.begin(), http1::HeaderField{"host", authority});
  }
  head_.method = method;
  head_.target = path;
  size_t question = path.find('?');
  head_.path = path.substr(0, question);
  head_.query = question == std::string_view::npos ? std::string_view() : path.substr(question + 1);
  head_.version_minor = 1;
  head_.keep_alive = true;
  std::string_view length = head_.find("content-length");
  if (!length.empty()) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), value);
    if (ec != std::errc() || end != length.data() + length.size())
      return fail(HeadError::kBadRequest, "invalid content-length");
    for (const http1::HeaderField& h : head_.headers)
      if (h.name == "content-length" && h.value != length)
        return fail(HeadError::kBadRequest, "conflicting content-length");
    if (end_stream && value != 0) return fail(HeadError::kBadRequest, "content-length without a body");
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
