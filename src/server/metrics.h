// GET /metrics (on --http-port): the server's figures in Prometheus's text format 0.0.4,
// docs/metrics.md. The figures are those of "stats" (stats_figures.h), renamed to Prometheus's
// conventions by one table in metrics.cc (cinch_*, counters ending _total, units in names), plus
// what only Prometheus shows: the request latency histograms, and per-tenant series labelled
// with the tenant's name.
//
// Thread safety: Render may run on several HTTP workers at once; the context outlives this.
#pragma once

#include <string>

#include "http/metrics_source.h"
#include "server/server_context.h"

namespace cinch::server {

class ServerMetrics final : public http::MetricsSource {
 public:
  explicit ServerMetrics(const ServerContext* context) : context_(context) {}
  void Render(std::string* out) const override;

 private:
  const ServerContext* const context_;
};

}  // namespace cinch::server
