// The Prometheus text exposition format 0.0.4, or OpenMetrics 1.0.0 when the scraper asks for
// it, written family by family: what the `metrics` handler answers
// (https://prometheus.io/docs/instrumenting/exposition_formats/, https://openmetrics.io). Pure
// text building, no I/O: unit-tested on its own (tests/unit/metrics_module_test.cc).
//
// Families are named as the text format names them (counters end in `_total`); in OpenMetrics
// a counter's family drops the `_total` its samples keep, a family with a unit gets a # UNIT
// line (its name ends in `_UNIT`), HELP escapes double quotes too, and take() ends the text
// with `# EOF`.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "core/pipeline/latency_histogram.h"

namespace subgate {

class PrometheusText {
 public:
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";
  static constexpr std::string_view kOpenMetricsContentType =
      "application/openmetrics-text; version=1.0.0; charset=utf-8";

  enum class Format { kText, kOpenMetrics };
  // OpenMetrics when `accept` (an Accept header) lists application/openmetrics-text with a q
  // above zero; the text format otherwise.
  static Format negotiate(std::string_view accept);

  explicit PrometheusText(Format format = Format::kText) : format_(format) {}
  Format format() const { return format_; }

  using Label = std::pair<std::string_view, std::string_view>;  // name (valid as is), value

  // Starts the family `name` (a valid metric name) of `type` ("counter", "gauge",
  // "histogram"): its # HELP and # TYPE lines (and # UNIT in OpenMetrics when `unit` is set).
  // Every sample after it, until the next family, belongs to it.
  void family(std::string_view name, std::string_view type, std::string_view help,
              std::string_view unit = {});
  // One sample of the current family, named as it is.
  void sample(std::initializer_list<Label> labels, uint64_t value);
  // A family with one unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help, uint64_t value,
              std::string_view unit = {});
  // One histogram of the current (histogram) family: its cumulative `_bucket`s with `le`, then
  // `_sum` (seconds) and `_count`.
  void histogram(std::initializer_list<Label> labels, const LatencyHistogram& h);

  const std::string& text() const { return text_; }
  // The text, ended with `# EOF` in OpenMetrics.
  std::string take();

  // A label value as the format quotes it: backslash, double quote and line feed escaped.
  static void appendLabelValue(std::string& out, std::string_view value);
  // HELP text: backslash and line feed escaped (and double quote, in OpenMetrics).
  static void appendHelp(std::string& out, std::string_view help, bool quote = false);
  // A number of seconds as both formats write floats ("0.0005", "1.0", "2.5").
  static void appendSeconds(std::string& out, double seconds);

 private:
  void appendLabels(std::initializer_list<Label> labels, std::string_view le = {});

  Format format_;
  std::string text_;
  std::string name_;  // the current family, as its samples are named
};

}  // namespace subgate
