#include "modules/status/status_page.h"

#include <openssl/evp.h>

#include <algorithm>
#include <string>

namespace subgate {

extern const std::string_view kStatusPage;  // generated from status_page.html (CMakeLists.txt)

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool equalsCaseless(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// The q of one media range ("text/html;level=1;q=0.8"): 1 without one, 0 when malformed.
double qualityOf(std::string_view params) {
  while (!params.empty()) {
    const size_t semi = params.find(';');
    std::string_view param = trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=') continue;
    std::string_view value = trim(param.substr(2));
    // RFC 9110 qvalue: 0, 0.xyz, 1, 1.000; parsed by hand (from_chars for double is locale-free
    // but not in every libstdc++ this builds with).
    if (value.empty() || (value[0] != '0' && value[0] != '1')) return 0;
    double q = value[0] - '0';
    if (value.size() > 1) {
      if (value[1] != '.') return 0;
      double scale = 0.1;
      for (char c : value.substr(2)) {
        if (c < '0' || c > '9') return 0;
        q += (c - '0') * scale;
        scale /= 10;
      }
    }
    return q > 1 ? 0 : q;
  }
  return 1;
}

std::string base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(written > 0 ? static_cast<size_t>(written) : 0);
  return out;
}

// 'sha256-...' of the text of the page's inline script, as CSP Level 2 hashes it.
std::string scriptHashSource() {
  const std::string_view page = kStatusPage;
  const size_t open = page.find("<script>");
  const size_t close = page.find("</script>", open);
  if (open == std::string_view::npos || close == std::string_view::npos) return "'none'";
  const std::string_view script = page.substr(open + 8, close - open - 8);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(script.data(), script.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    return "'none'";
  std::string source = "'sha256-";
  source += base64(digest, length);
  source += '\'';
  return source;
}

}  // namespace

bool prefersHtml(std::string_view accept) {
  double html = 0;
  double json = 0;
  while (!accept.empty()) {
    const size_t comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    const size_t semi = range.find(';');
    const std::string_view type = trim(range.substr(0, semi));
    const double q = semi == std::string_view::npos ? 1 : qualityOf(range.substr(semi + 1));
    if (equalsCaseless(type, "text/html")) html = std::max(html, q);
    if (equalsCaseless(type, "application/json")) json = std::max(json, q);
  }
  return html > 0 && html > json;
}

std::string_view statusPageHtml() { return kStatusPage; }

const std::string& statusPagePolicy() {
  static const std::string policy = [] {
    std::string p = "default-src 'none'; script-src ";
    p += scriptHashSource();
    p += "; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; "
         "form-action 'none'; frame-ancestors 'none'";
    return p;
  }();
  return policy;
}

}  // namespace subgate
