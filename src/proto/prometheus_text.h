// Prometheus's text exposition format, version 0.0.4 (what GET /metrics answers): families of
// samples, each family opened by its "# HELP" and "# TYPE" lines, written into a string.
//
//   # HELP cinch_items Items stored.
//   # TYPE cinch_items gauge
//   cinch_items 1234
//   # HELP cinch_request_duration_seconds Time from a request parsed to its reply queued.
//   # TYPE cinch_request_duration_seconds histogram
//   cinch_request_duration_seconds_bucket{command="get",le="1e-06"} 10
//   ...
//   cinch_request_duration_seconds_bucket{command="get",le="+Inf"} 12
//   cinch_request_duration_seconds_sum{command="get"} 0.000021
//   cinch_request_duration_seconds_count{command="get"} 12
//
// The writer escapes what the format says to escape (HELP text: backslash and newline; label
// values: backslash, double quote and newline) and formats numbers (integers exactly; other
// values in the shortest text that reads back to the same double; "+Inf", "-Inf", "NaN").
// Metric and label names come from the program, not from clients: a name the format does not
// allow is a programming error (CINCH_CHECK).
//
// Thread safety: none; one writer per rendering. Pure: no I/O.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace cinch::proto {

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kCounter, kGauge, kHistogram };

struct MetricLabel {
  std::string_view name;
  std::string_view value;  // any bytes; escaped by the writer
};
using MetricLabels = std::initializer_list<MetricLabel>;

class PrometheusWriter {
 public:
  // Appends to *out, which outlives the writer.
  explicit PrometheusWriter(std::string* out) : out_(out) {}

  // Opens a family: its HELP and TYPE lines. The samples that follow belong to it.
  // REQUIRES: `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*, and no family of that name was opened
  // before in this exposition (the format allows each once).
  void Family(std::string_view name, MetricType type, std::string_view help);

  // A sample of the open counter or gauge family.
  void Sample(uint64_t value, MetricLabels labels = {});
  void Sample(double value, MetricLabels labels = {});

  // A histogram of the open histogram family: `bounds` are the buckets' upper bounds in
  // increasing order, `counts` the observations in each bucket (not cumulative), with one more
  // entry than `bounds` for those above the last bound; `sum` is the observations' sum.
  // Writes the cumulative _bucket lines (the last one le="+Inf"), _sum and _count.
  void Histogram(std::span<const double> bounds, std::span<const uint64_t> counts, double sum,
                 MetricLabels labels = {});

 private:
  void SampleName(std::string_view suffix, MetricLabels labels, const MetricLabel* extra);
  void Value(uint64_t value);
  void Value(double value);

  std::string* out_;
  std::string family_;
  MetricType type_ = MetricType::kGauge;
};

// The escapes of the format, exposed for tests.
void AppendEscapedHelp(std::string_view text, std::string* out);
void AppendEscapedLabelValue(std::string_view value, std::string* out);
void AppendMetricValue(double value, std::string* out);
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);

}  // namespace cinch::proto
