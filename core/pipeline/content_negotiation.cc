#include "core/pipeline/content_negotiation.h"

#include <algorithm>

#include "core/http1/http1_parser.h"

namespace subgate {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The q of one media range's parameters ("level=1;q=0.8"): 1 without one, 0 when malformed.
// RFC 9110 qvalue: 0, 0.xyz, 1, 1.000; parsed by hand, locale-free.
double qualityOf(std::string_view params) {
  while (!params.empty()) {
    const size_t semi = params.find(';');
    const std::string_view param = trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=') continue;
    const std::string_view value = trim(param.substr(2));
    if (value.empty() || (value[0] != '0' && value[0] != '1')) return 0;
    double q = value[0] - '0';
    if (value.size() > 1) {
      if (value[1] != '.' || value.size() > 5) return 0;
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

}  // namespace

double acceptQuality(std::string_view accept, std::string_view media_type) {
  double best = 0;
  while (!accept.empty()) {
    const size_t comma = accept.find(',');
    const std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    const size_t semi = range.find(';');
    if (!http1::iequals(trim(range.substr(0, semi)), media_type)) continue;
    best = std::max(best, semi == std::string_view::npos ? 1.0 : qualityOf(range.substr(semi + 1)));
  }
  return best;
}

}  // namespace subgate
