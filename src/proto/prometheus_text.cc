#include "proto/prometheus_text.h"

#include <charconv>
#include <cmath>

#include "common/check.h"

namespace cinch::proto {

namespace {

bool IsNameStart(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

bool IsName(std::string_view name, bool colon) {
  if (name.empty() || !IsNameStart(name[0], colon)) return false;
  for (char c : name) {
    if (!IsNameStart(c, colon) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

bool IsValidMetricName(std::string_view name) { return IsName(name, /*colon=*/true); }

// Label names starting with "__" are reserved for Prometheus's own use.
bool IsValidLabelName(std::string_view name) {
  return IsName(name, /*colon=*/false) && !name.starts_with("__");
}

void AppendEscapedHelp(std::string_view text, std::string* out) {
  for (char c : text) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

void AppendEscapedLabelValue(std::string_view value, std::string* out) {
  for (char c : value) {
    if (c == '"') {
      out->append("\\\"");
    } else if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

void AppendMetricValue(double value, std::string* out) {
  if (std::isnan(value)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out->append(value > 0 ? "+Inf" : "-Inf");
    return;
  }
  char text[32];
  auto r = std::to_chars(text, text + sizeof text, value);  // shortest that reads back equal
  out->append(text, r.ptr);
}

void PrometheusWriter::Family(std::string_view name, MetricType type, std::string_view help) {
  CINCH_CHECK(IsValidMetricName(name));
  family_.assign(name);
  type_ = type;
  out_->append("# HELP ").append(name).push_back(' ');
  AppendEscapedHelp(help, out_);
  out_->append("\n# TYPE ").append(name).push_back(' ');
  out_->append(TypeName(type)).push_back('\n');
}

void PrometheusWriter::Sample(uint64_t value, MetricLabels labels) {
  CINCH_CHECK(!family_.empty() && type_ != MetricType::kHistogram);
  SampleName("", labels, nullptr);
  Value(value);
}

void PrometheusWriter::Sample(double value, MetricLabels labels) {
  CINCH_CHECK(!family_.empty() && type_ != MetricType::kHistogram);
  SampleName("", labels, nullptr);
  Value(value);
}

void PrometheusWriter::Histogram(std::span<const double> bounds, std::span<const uint64_t> counts,
                                 double sum, MetricLabels labels) {
  CINCH_CHECK(!family_.empty() && type_ == MetricType::kHistogram);
  CINCH_CHECK(counts.size() == bounds.size() + 1);
  uint64_t cumulative = 0;
  std::string le;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    le.clear();
    if (i < bounds.size()) {
      CINCH_CHECK(i == 0 || bounds[i - 1] < bounds[i]);
      AppendMetricValue(bounds[i], &le);
    } else {
      le = "+Inf";
    }
    const MetricLabel bound{"le", le};
    SampleName("_bucket", labels, &bound);
    Value(cumulative);
  }
  SampleName("_sum", labels, nullptr);
  Value(sum);
  SampleName("_count", labels, nullptr);
  Value(cumulative);
}

void PrometheusWriter::SampleName(std::string_view suffix, MetricLabels labels,
                                  const MetricLabel* extra) {
  out_->append(family_).append(suffix);
  if (labels.size() == 0 && extra == nullptr) {
    out_->push_back(' ');
    return;
  }
  char separator = '{';
  auto label = [&](const MetricLabel& l) {
    CINCH_CHECK(IsValidLabelName(l.name));
    out_->push_back(separator);
    out_->append(l.name).append("=\"");
    AppendEscapedLabelValue(l.value, out_);
    out_->push_back('"');
    separator = ',';
  };
  for (const MetricLabel& l : labels) label(l);
  if (extra != nullptr) label(*extra);
  out_->append("} ");
}

void PrometheusWriter::Value(uint64_t value) {
  char text[24];
  auto r = std::to_chars(text, text + sizeof text, value);
  out_->append(text, r.ptr).push_back('\n');
}

void PrometheusWriter::Value(double value) {
  AppendMetricValue(value, out_);
  out_->push_back('\n');
}

}  // namespace cinch::proto
