// The Prometheus text exposition format 0.0.4, written family by family: what the `metrics`
// handler answers (https://prometheus.io/docs/instrumenting/exposition_formats/). Pure text
// building, no I/O: unit-tested on its own (tests/unit/metrics_module_test.cc).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace subgate {

class PrometheusText {
 public:
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  using Label = std::pair<std::string_view, std::string_view>;  // name (valid as is), value

  // Starts the family `name` (a valid metric name) of `type` ("counter", "gauge"): its # HELP
  // and # TYPE lines. Every sample after it, until the next family, belongs to it.
  void family(std::string_view name, std::string_view type, std::string_view help);
  // One sample of the current family, named as it is.
  void sample(std::initializer_list<Label> labels, uint64_t value);
  // A family with one unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help, uint64_t value);

  const std::string& text() const { return text_; }
  std::string take() { return std::move(text_); }

  // A label value as the format quotes it: backslash, double quote and line feed escaped.
  static void appendLabelValue(std::string& out, std::string_view value);
  // HELP text: backslash and line feed escaped.
  static void appendHelp(std::string& out, std::string_view help);

 private:
  std::string text_;
  std::string name_;  // the current family
};

}  // namespace subgate
