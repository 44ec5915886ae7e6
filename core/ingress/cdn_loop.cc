#include "core/ingress/cdn_loop.h"

#include <algorithm>
#include <charconv>
#include <vector>

namespace subgate {
namespace {

constexpr std::string_view kWhitespace = " \t";

std::string_view trim(std::string_view text) {
  const size_t start = text.find_first_not_of(kWhitespace);
  if (start == std::string_view::npos) return {};
  return text.substr(start, text.find_last_not_of(kWhitespace) - start + 1);
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Splits `text` on `separator` outside quoted strings (a backslash escapes inside them). A quote
// that is never closed opens no string: from it on, every separator splits. Else a tenant's fetch
// with `CDN-Loop: x"` would hide the entry the harness appends after it, and with it the hop count
// that isolate_loop_limit checks.
std::vector<std::string_view> splitOutsideQuotes(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  size_t start = 0;
  size_t opened = 0;  // where the quoted string being scanned began
  for (size_t i = 0; i < text.size(); ++i) {
    if (quoted && text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      quoted = !quoted;
      opened = i;
    } else if (!quoted && text[i] == separator) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (quoted) {
    for (size_t i = opened + 1; i < text.size(); ++i) {
      if (text[i] != separator) continue;
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

// The hops parameter of subgate's entry (its parameters after the cdn-id); 1 without a valid
// one: the entry says the request went through a subgate isolate at least once.
uint32_t hopsOf(std::span<const std::string_view> parameters) {
  for (std::string_view parameter : parameters) {
    const size_t equals = parameter.find('=');
    if (equals == std::string_view::npos || !iequal(trim(parameter.substr(0, equals)), "hops"))
      continue;
    std::string_view value = trim(parameter.substr(equals + 1));
    uint32_t hops = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), hops);
    if (error == std::errc() && end == value.data() + value.size()) return std::max(hops, 1u);
    if (error == std::errc::result_out_of_range) return UINT32_MAX;
  }
  return 1;
}

}  // namespace

CdnLoop parseCdnLoop(std::span<const std::string_view> values) {
  CdnLoop loop;
  for (std::string_view value : values) {
    for (std::string_view entry : splitOutsideQuotes(value, ',')) {
      entry = trim(entry);
      if (entry.empty()) continue;
      std::vector<std::string_view> parts = splitOutsideQuotes(entry, ';');
      if (iequal(trim(parts[0]), kCdnLoopId)) {
        loop.hops = std::max(loop.hops, hopsOf(std::span(parts).subspan(1)));
        continue;
      }
      if (!loop.others.empty()) loop.others += ", ";
      loop.others += entry;
    }
  }
  return loop;
}

std::string cdnLoopValue(const CdnLoop& loop, uint32_t hops) {
  std::string out = loop.others;
  if (!out.empty()) out += ", ";
  out += kCdnLoopId;
  out += "; hops=";
  out += std::to_string(hops);
  return out;
}

}  // namespace subgate
