#include "modules/metrics/prometheus_text.h"

#include <charconv>

#include "core/pipeline/content_negotiation.h"

namespace subgate {

PrometheusText::Format PrometheusText::negotiate(std::string_view accept) {
  return acceptQuality(accept, "application/openmetrics-text") > 0 ? Format::kOpenMetrics
                                                                   : Format::kText;
}

void PrometheusText::appendLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void PrometheusText::appendHelp(std::string& out, std::string_view help, bool quote) {
  for (char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '"':
        if (quote) {
          out += "\\\"";
        } else {
          out += c;
        }
        break;
      default: out += c;
    }
  }
}

void PrometheusText::appendSeconds(std::string& out, double seconds) {
  char buf[64];
  // The shortest digits that read back the same value, never in exponent form ("0.0005").
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, seconds, std::chars_format::fixed);
  std::string_view text(buf, ec == std::errc() ? static_cast<size_t>(end - buf) : 0);
  out += text;
  // Integral values as floats ("1.0"), as Prometheus's own clients write `le`.
  if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help,
                            std::string_view unit) {
  name_.assign(name);
  const bool om = format_ == Format::kOpenMetrics;
  // OpenMetrics names a counter's family without the `_total` of its samples.
  std::string_view family = name;
  if (om && type == "counter" && family.ends_with("_total"))
    family.remove_suffix(std::string_view("_total").size());
  text_ += "# HELP ";
  text_ += family;
  text_ += ' ';
  appendHelp(text_, help, om);
  text_ += "\n# TYPE ";
  text_ += family;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
  if (om && !unit.empty()) {
    text_ += "# UNIT ";
    text_ += family;
    text_ += ' ';
    text_ += unit;
    text_ += '\n';
  }
}

void PrometheusText::appendLabels(std::initializer_list<Label> labels, std::string_view le) {
  if (labels.size() == 0 && le.empty()) return;
  char separator = '{';
  for (const auto& [label, label_value] : labels) {
    text_ += separator;
    text_ += label;
    text_ += "=\"";
    appendLabelValue(text_, label_value);
    text_ += '"';
    separator = ',';
  }
  if (!le.empty()) {
    text_ += separator;
    text_ += "le=\"";
    text_ += le;
    text_ += '"';
  }
  text_ += '}';
}

void PrometheusText::sample(std::initializer_list<Label> labels, uint64_t value) {
  text_ += name_;
  appendLabels(labels);
  text_ += ' ';
  text_ += std::to_string(value);
  text_ += '\n';
}

void PrometheusText::single(std::string_view name, std::string_view type, std::string_view help,
                            uint64_t value, std::string_view unit) {
  family(name, type, help, unit);
  sample({}, value);
}

void PrometheusText::histogram(std::initializer_list<Label> labels, const LatencyHistogram& h) {
  uint64_t cumulative = 0;
  std::string le;
  for (size_t i = 0; i < LatencyBuckets::kBuckets; ++i) {
    cumulative += h.buckets[i];
    le.clear();
    if (i < LatencyBuckets::kBounds) {
      appendSeconds(le, LatencyBuckets::kSeconds[i]);
    } else {
      le = "+Inf";
    }
    text_ += name_;
    text_ += "_bucket";
    appendLabels(labels, le);
    text_ += ' ';
    text_ += std::to_string(cumulative);
    text_ += '\n';
  }
  text_ += name_;
  text_ += "_sum";
  appendLabels(labels);
  text_ += ' ';
  appendSeconds(text_, static_cast<double>(h.sum_nanos) / 1e9);
  text_ += '\n';
  text_ += name_;
  text_ += "_count";
  appendLabels(labels);
  text_ += ' ';
  text_ += std::to_string(cumulative);
  text_ += '\n';
}

std::string PrometheusText::take() {
  if (format_ == Format::kOpenMetrics) text_ += "# EOF\n";
  return std::move(text_);
}

}  // namespace subgate
