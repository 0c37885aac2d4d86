// What GET /metrics on the HTTP port answers: the server's figures in Prometheus's text
// format. src/http serves the path; src/server, which alone knows the store and the counters,
// implements the source (server/metrics.h), so this module never includes the store's stats.
//
// Thread safety: Render is called from any HTTP worker thread, concurrently.
#pragma once

#include <string>

namespace cinch::http {

class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  // Appends the whole exposition (proto/prometheus_text.h) to *out.
  virtual void Render(std::string* out) const = 0;
};

}  // namespace cinch::http
