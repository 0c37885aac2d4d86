#include "proto/prometheus_text.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace cinch::proto {
namespace {

TEST(PrometheusWriter, FamilyHasHelpAndTypeThenSamples) {
  std::string out;
  PrometheusWriter w(&out);
  w.Family("cinch_items", MetricType::kGauge, "Items stored.");
  w.Sample(uint64_t{42});
  w.Family("cinch_get_hits_total", MetricType::kCounter, "Gets that found their key.");
  w.Sample(uint64_t{7});
  EXPECT_EQ(out,
            "# HELP cinch_items Items stored.\n"
            "# TYPE cinch_items gauge\n"
            "cinch_items 42\n"
            "# HELP cinch_get_hits_total Gets that found their key.\n"
            "# TYPE cinch_get_hits_total counter\n"
            "cinch_get_hits_total 7\n");
}

TEST(PrometheusWriter, CountersAreExactUpTo64Bits) {
  std::string out;
  PrometheusWriter w(&out);
  w.Family("c_total", MetricType::kCounter, "h");
  w.Sample(std::numeric_limits<uint64_t>::max());
  EXPECT_NE(out.find("\nc_total 18446744073709551615\n"), std::string::npos) << out;
}

TEST(PrometheusWriter, LabelsAreEscaped) {
  std::string out;
  PrometheusWriter w(&out);
  w.Family("cinch_tenant_items", MetricType::kGauge, "per tenant");
  w.Sample(uint64_t{1}, {{"tenant", "a\"b\\c\nd"}, {"kind", "x"}});
  EXPECT_NE(out.find("cinch_tenant_items{tenant=\"a\\\"b\\\\c\\nd\",kind=\"x\"} 1\n"),
            std::string::npos)
      << out;
}

TEST(PrometheusWriter, HelpIsEscaped) {
  std::string out;
  PrometheusWriter w(&out);
  w.Family("m", MetricType::kGauge, "back\\slash\nnew \"quotes\" stay");
  EXPECT_EQ(out.substr(0, out.find('\n')), "# HELP m back\\\\slash\\nnew \"quotes\" stay");
}

TEST(PrometheusWriter, DoublesReadBackEqual) {
  std::string out;
  AppendMetricValue(0.5, &out);
  out += ' ';
  AppendMetricValue(1e-6, &out);
  out += ' ';
  AppendMetricValue(0.1 + 0.2, &out);
  out += ' ';
  AppendMetricValue(std::numeric_limits<double>::infinity(), &out);
  out += ' ';
  AppendMetricValue(-std::numeric_limits<double>::infinity(), &out);
  out += ' ';
  AppendMetricValue(std::numeric_limits<double>::quiet_NaN(), &out);
  EXPECT_EQ(out, "0.5 1e-06 0.30000000000000004 +Inf -Inf NaN");
}

TEST(PrometheusWriter, HistogramIsCumulativeWithInfSumAndCount) {
  std::string out;
  PrometheusWriter w(&out);
  w.Family("d_seconds", MetricType::kHistogram, "latency");
  const std::vector<double> bounds = {0.001, 0.002, 0.004};
  const std::vector<uint64_t> counts = {3, 0, 2, 1};
  w.Histogram(bounds, counts, 0.0125, {{"command", "get"}});
  EXPECT_EQ(out,
            "# HELP d_seconds latency\n"
            "# TYPE d_seconds histogram\n"
            "d_seconds_bucket{command=\"get\",le=\"0.001\"} 3\n"
            "d_seconds_bucket{command=\"get\",le=\"0.002\"} 3\n"
            "d_seconds_bucket{command=\"get\",le=\"0.004\"} 5\n"
            "d_seconds_bucket{command=\"get\",le=\"+Inf\"} 6\n"
            "d_seconds_sum{command=\"get\"} 0.0125\n"
            "d_seconds_count{command=\"get\"} 6\n");
}

TEST(PrometheusWriter, HistogramWithoutLabels) {
  std::string out;
  PrometheusWriter w(&out);
  w.Family("h", MetricType::kHistogram, "x");
  const std::vector<double> bounds = {1};
  const std::vector<uint64_t> counts = {0, 0};
  w.Histogram(bounds, counts, 0);
  EXPECT_NE(out.find("\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n"),
            std::string::npos)
      << out;
}

TEST(PrometheusNames, MetricAndLabelNamesFollowTheFormat) {
  EXPECT_TRUE(IsValidMetricName("cinch_items"));
  EXPECT_TRUE(IsValidMetricName("a:b_c9"));
  EXPECT_TRUE(IsValidMetricName("_x"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("9a"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName("a b"));
  EXPECT_TRUE(IsValidLabelName("tenant"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName(""));
}

TEST(PrometheusWriterDeath, InvalidNameIsAProgrammingError) {
  std::string out;
  PrometheusWriter w(&out);
  EXPECT_DEATH(w.Family("bad-name", MetricType::kGauge, "x"), "CINCH_CHECK");
}

}  // namespace
}  // namespace cinch::proto
