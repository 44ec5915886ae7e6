#include "core/bundle/deno_cache.h"

#include <jansson.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <memory>

#include "core/bundle/eszip_internal.h"

namespace subgate::bundle {
namespace {

struct JsonDeleter {
  void operator()(json_t* json) const { json_decref(json); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

struct CacheKey {
  std::string folder;  // "<scheme>/<host>[_PORT<port>]"
  std::string hashed;  // path [ "?" query ]
  std::string url;     // without the fragment
};

// Characters that WHATWG URL parsing keeps as they are in a path or query; anything else
// (space, quotes, <>, `, {}, \, controls, non-ASCII) would be percent-encoded or changed, and
// Deno would then hash bytes that differ from ours.
bool keptAsIs(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  constexpr std::string_view kKept = "-._~!$&'()*+,;=:@/?%[]|^";
  return kKept.find(c) != std::string_view::npos;
}

// URL parsing reads a host whose last label is a number (decimal, 0x hex or octal) as IPv4 and
// rewrites it ("127.1" becomes "127.0.0.1"): only the form it leaves unchanged, four decimal
// parts of 0-255 without leading zeros, is accepted.
bool canonicalIpv4OrName(std::string_view host) {
  std::string_view last = host;
  if (!last.empty() && last.back() == '.') last.remove_suffix(1);
  last = last.substr(last.rfind('.') == std::string_view::npos ? 0 : last.rfind('.') + 1);
  const bool numeric =
      !last.empty() &&
      (std::all_of(last.begin(), last.end(),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
       last.rfind("0x", 0) == 0);
  if (!numeric) return true;
  size_t parts = 0;
  size_t start = 0;
  while (start <= host.size()) {
    size_t end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    const std::string_view part = host.substr(start, end - start);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0') ||
        !std::all_of(part.begin(), part.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
        std::stoi(std::string(part)) > 255)
      return false;
    ++parts;
    start = end + 1;
  }
  return parts == 4;
}

bool isDotSegment(std::string_view segment) {
  std::string lower;
  for (char c : segment) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "." || lower == ".." || lower == "%2e" || lower == ".%2e" || lower == "%2e." ||
         lower == "%2e%2e";
}

std::optional<CacheKey> splitUrl(std::string_view url, std::string& error) {
  CacheKey key;
  std::string_view rest;
  std::string scheme;
  for (std::string_view candidate : {"https", "http"}) {
    if (url.size() > candidate.size() + 3 &&
        std::equal(
            candidate.begin(), candidate.end(), url.begin(),
            [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }) &&
        url.substr(candidate.size(), 3) == "://") {
      scheme = candidate;
      rest = url.substr(candidate.size() + 3);
      break;
    }
  }
  if (scheme.empty()) {
    error = "not an http or https URL";
    return std::nullopt;
  }
  const size_t fragment = rest.find('#');
  if (fragment != std::string_view::npos) rest = rest.substr(0, fragment);
  const size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);

  std::string_view port;
  const size_t colon = authority.find(':');
  if (colon != std::string_view::npos) {
    port = authority.substr(colon + 1);
    authority = authority.substr(0, colon);
  }
  std::string host;
  for (char c : authority) {
    const auto u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && c != '-' && c != '.') {
      error = "the host must be a DNS name or IPv4 address (no user info, IPv6 or escapes)";
      return std::nullopt;
    }
    host += static_cast<char>(std::tolower(u));
  }
  if (host.empty()) {
    error = "the URL has no host";
    return std::nullopt;
  }
  if (!canonicalIpv4OrName(host)) {
    error = "a host ending in a number must be a dotted-decimal IPv4 address";
    return std::nullopt;
  }
  unsigned long port_number = 0;
  for (char c : port) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || port_number > 65535) {
      error = "bad port";
      return std::nullopt;
    }
    port_number = port_number * 10 + static_cast<unsigned long>(c - '0');
  }
  if (port_number > 65535) {
    error = "bad port";
    return std::nullopt;
  }
  // The URL parser drops the scheme's default port and an empty one; Deno names the folder
  // host_PORTn only for another port.
  const unsigned long default_port = scheme == "https" ? 443 : 80;
  const bool explicit_port = !port.empty() && port_number != default_port;

  const size_t question = tail.find('?');
  const std::string_view path = tail.substr(0, question);
  for (size_t i = 0; i < tail.size(); ++i) {
    // A query of an http(s) URL also has ' encoded (the "special-query" set).
    if (!keptAsIs(tail[i]) || (i > question && tail[i] == '\'')) {
      error = "the path or query has a character that URL parsing would encode";
      return std::nullopt;
    }
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (isDotSegment(path.substr(start, end - start))) {
      error = "the path has a dot segment";
      return std::nullopt;
    }
    start = end + 1;
  }

  key.folder = scheme + "/" + host + (explicit_port ? "_PORT" + std::to_string(port_number) : "");
  key.hashed = path.empty() ? "/" + std::string(tail) : std::string(tail);
  // The query, with its "?" even when empty, is part of the hash as Deno computes it.
  key.url =
      scheme + "://" + host + (explicit_port ? ":" + std::to_string(port_number) : "") + key.hashed;
  return key;
}

std::optional<DenoCacheEntry> build(std::string_view url, std::string_view body,
                                    std::string_view header, std::string_view value,
                                    std::string& error) {
  auto key = splitUrl(url, error);
  if (!key) {
    error = "cannot cache " + std::string(url.substr(0, 200)) + ": " + error;
    return std::nullopt;
  }
  std::array<unsigned char, internal::kSha256Bytes> hash;
  if (!internal::sha256(key->hashed, hash)) {
    error = "SHA-256 failed (OpenSSL)";
    return std::nullopt;
  }
  constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : hash) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }

  JsonPtr headers(json_object());
  JsonPtr metadata(json_object());
  if (!headers || !metadata) {
    error = "out of memory";
    return std::nullopt;
  }
  if (!value.empty() && json_object_set_new(headers.get(), std::string(header).c_str(),
                                            json_stringn(value.data(), value.size())) != 0) {
    error = std::string(header) + " is not UTF-8";
    return std::nullopt;
  }
  if (json_object_set(metadata.get(), "headers", headers.get()) != 0 ||
      json_object_set_new(metadata.get(), "url", json_string(key->url.c_str())) != 0) {
    error = "out of memory";
    return std::nullopt;
  }
  // Compact JSON has no newline: the reader takes the file's last line as the metadata.
  std::unique_ptr<char, decltype(&free)> text(json_dumps(metadata.get(), JSON_COMPACT), &free);
  if (!text) {
    error = "out of memory";
    return std::nullopt;
  }
  DenoCacheEntry entry;
  entry.relative_path = "remote/" + key->folder + "/" + hex;
  entry.bytes.reserve(body.size() + 64);
  entry.bytes.append(body);
  entry.bytes.append("\n// denoCacheMetadata=");
  entry.bytes.append(text.get());
  return entry;
}

}  // namespace

std::optional<DenoCacheEntry> denoCacheEntry(std::string_view url, std::string_view content_type,
                                             std::string_view body, std::string& error) {
  return build(url, body, "content-type", content_type, error);
}

std::optional<DenoCacheEntry> denoCacheRedirect(std::string_view url, std::string_view location,
                                                std::string& error) {
  if (location.empty()) {
    error = "a redirect needs a location";
    return std::nullopt;
  }
  return build(url, "", "location", location, error);
}

}  // namespace subgate::bundle
