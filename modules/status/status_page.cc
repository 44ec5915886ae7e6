#include "modules/status/status_page.h"

#include <openssl/evp.h>

#include <string>

#include "core/pipeline/content_negotiation.h"

namespace subgate {

extern const std::string_view kStatusPage;  // generated from status_page.html (CMakeLists.txt)

namespace {

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
  const double html = acceptQuality(accept, "text/html");
  return html > 0 && html > acceptQuality(accept, "application/json");
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
