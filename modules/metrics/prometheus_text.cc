#include "modules/metrics/prometheus_text.h"

namespace subgate {

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

void PrometheusText::appendHelp(std::string& out, std::string_view help) {
  for (char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  name_.assign(name);
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  appendHelp(text_, help);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void PrometheusText::sample(std::initializer_list<Label> labels, uint64_t value) {
  text_ += name_;
  if (labels.size() > 0) {
    char separator = '{';
    for (const auto& [label, label_value] : labels) {
      text_ += separator;
      text_ += label;
      text_ += "=\"";
      appendLabelValue(text_, label_value);
      text_ += '"';
      separator = ',';
    }
    text_ += '}';
  }
  text_ += ' ';
  text_ += std::to_string(value);
  text_ += '\n';
}

void PrometheusText::single(std::string_view name, std::string_view type, std::string_view help,
                            uint64_t value) {
  family(name, type, help);
  sample({}, value);
}

}  // namespace subgate
