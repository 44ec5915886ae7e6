#include "core/ingress/instance_id.h"

namespace subgate {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> requestInstanceId(std::string_view header, std::string_view query) {
  if (!header.empty()) {
    if (header.size() > kMaxInstanceId) return std::nullopt;
    return std::string(header);
  }
  constexpr std::string_view kParam = "deno_isolate_instance_id=";
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (!pair.starts_with(kParam)) continue;
    std::string_view raw = pair.substr(kParam.size());
    std::string value;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '%') {
        int hi = i + 2 < raw.size() ? hexValue(raw[i + 1]) : -1;
        int lo = i + 2 < raw.size() ? hexValue(raw[i + 2]) : -1;
        if (hi < 0 || lo < 0) return std::nullopt;
        value += static_cast<char>(hi * 16 + lo);
        i += 2;
      } else {
        value += raw[i] == '+' ? ' ' : raw[i];
      }
    }
    if (value.empty() || value.size() > kMaxInstanceId) return std::nullopt;
    return value;
  }
  return std::string();
}

}  // namespace subgate
