#include "server/metrics.h"

#include <algorithm>
#include <array>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/latency_histogram.h"
#include "common/version.h"
#include "proto/prometheus_text.h"
#include "server/stats_figures.h"
#include "server/users.h"

namespace cinch::server {

namespace {

using proto::MetricType;
using proto::PrometheusWriter;
constexpr MetricType kCounter = MetricType::kCounter;
constexpr MetricType kGauge = MetricType::kGauge;

// One "stats" figure as a Prometheus family. A figure "stats" does not show (the file tier's
// without -o ext_path, the HTTP cache's without --http-port) gives no family.
struct Metric {
  std::string_view stat;
  std::string_view name;
  MetricType type;
  std::string_view help;
};

// The operator's "stats" (GeneralFigures).
constexpr Metric kGeneral[] = {
    {"uptime", "cinch_uptime_seconds", kGauge, "Seconds since the server started."},
    {"rusage_user", "cinch_cpu_user_seconds_total", kCounter, "User CPU time of the process."},
    {"rusage_system", "cinch_cpu_system_seconds_total", kCounter,
     "System CPU time of the process."},
    {"threads", "cinch_threads", kGauge, "Worker threads (-t)."},
    {"limit_maxbytes", "cinch_memory_limit_bytes", kGauge,
     "The limit on the whole process's resident memory now (stats limit_maxbytes)."},
    {"memory_cgroup_limit", "cinch_memory_cgroup_limit_bytes", kGauge,
     "The memory limit of cinchd's cgroup, if it has one (0: none)."},
    {"pressure_shrinks", "cinch_memory_pressure_shrinks_total", kCounter,
     "Times memory pressure lowered the memory limit."},
    {"pressure_grows", "cinch_memory_pressure_grows_total", kCounter,
     "Times the memory limit grew back once pressure was gone."},
    {"curr_items", "cinch_items", kGauge, "Items stored (stats curr_items)."},
    {"bytes", "cinch_item_bytes", kGauge,
     "Bytes of the items stored: keys, values and item headers (stats bytes)."},
    {"total_items", "cinch_items_stored_total", kCounter, "Items stored since the start."},
    {"evictions", "cinch_evictions_total", kCounter,
     "Items evicted to make room (stats evictions)."},
    {"reclaimed", "cinch_expirations_total", kCounter,
     "Expired items whose memory was reclaimed (stats reclaimed)."},
    {"max_connections", "cinch_connections_max", kGauge, "Connections allowed (-c)."},
    {"curr_connections", "cinch_current_connections", kGauge, "Open memcached connections."},
    {"total_connections", "cinch_connections_total", kCounter,
     "memcached connections accepted since the start."},
    {"rejected_connections", "cinch_connections_refused_total", kCounter,
     "memcached connections refused (over -c, or no memory for them)."},
    {"idle_kicks", "cinch_connections_idle_closed_total", kCounter,
     "memcached connections closed by -o idle_timeout (with it only)."},
    {"cmd_get", "cinch_gets_total", kCounter, "Keys asked for by get, gets, gat, gats, mg."},
    {"get_hits", "cinch_get_hits_total", kCounter, "Keys asked for and found."},
    {"get_misses", "cinch_get_misses_total", kCounter, "Keys asked for and not found."},
    {"get_expired", "cinch_get_expired_total", kCounter, "Misses on an expired item."},
    {"get_flushed", "cinch_get_flushed_total", kCounter, "Misses on a flushed item."},
    {"cmd_set", "cinch_sets_total", kCounter,
     "Storage commands: set, add, replace, append, prepend, cas, ms."},
    {"cmd_touch", "cinch_touches_total", kCounter, "touch, gat and gats commands."},
    {"cmd_flush", "cinch_flushes_total", kCounter, "flush_all commands."},
    {"delete_hits", "cinch_delete_hits_total", kCounter, "Deletes of a present key."},
    {"delete_misses", "cinch_delete_misses_total", kCounter, "Deletes of a missing key."},
    {"incr_hits", "cinch_incr_hits_total", kCounter, "incr of a present key."},
    {"incr_misses", "cinch_incr_misses_total", kCounter, "incr of a missing key."},
    {"decr_hits", "cinch_decr_hits_total", kCounter, "decr of a present key."},
    {"decr_misses", "cinch_decr_misses_total", kCounter, "decr of a missing key."},
    {"cas_hits", "cinch_cas_hits_total", kCounter, "cas that stored."},
    {"cas_misses", "cinch_cas_misses_total", kCounter, "cas of a missing key."},
    {"cas_badval", "cinch_cas_badval_total", kCounter, "cas refused: the item changed."},
    {"touch_hits", "cinch_touch_hits_total", kCounter, "Touches of a present key."},
    {"touch_misses", "cinch_touch_misses_total", kCounter, "Touches of a missing key."},
    {"store_too_large", "cinch_store_too_large_total", kCounter, "Writes refused: over -I."},
    {"store_no_memory", "cinch_store_no_memory_total", kCounter,
     "Writes refused: the store is full and does not evict (-M)."},
    {"auth_cmds", "cinch_auth_commands_total", kCounter, "Authentications tried (-Y)."},
    {"auth_errors", "cinch_auth_errors_total", kCounter, "Authentications failed (-Y)."},
    {"bytes_read", "cinch_read_bytes_total", kCounter, "Bytes read from memcached clients."},
    {"bytes_written", "cinch_written_bytes_total", kCounter, "Bytes written to memcached clients."},
    // The file tier (-o ext_path, docs/file-tier.md).
    {"tier_capacity_bytes", "cinch_tier_capacity_bytes", kGauge, "Size of the tier's files."},
    {"tier_used_bytes", "cinch_tier_used_bytes", kGauge, "Bytes of the tier's files in use."},
    {"tier_items", "cinch_tier_items", kGauge, "Items on the file tier."},
    {"tier_item_bytes", "cinch_tier_item_bytes", kGauge, "Bytes of the items on the file tier."},
    {"tier_reads", "cinch_tier_reads_total", kCounter, "Reads from the tier's files."},
    {"tier_read_bytes", "cinch_tier_read_bytes_total", kCounter, "Bytes read from the tier."},
    {"tier_writes", "cinch_tier_writes_total", kCounter, "Segments written to the tier."},
    {"tier_write_bytes", "cinch_tier_written_bytes_total", kCounter, "Bytes written to the tier."},
    {"tier_promotions", "cinch_tier_promotions_total", kCounter,
     "Items brought back into memory from the tier."},
    {"tier_compactions", "cinch_tier_compactions_total", kCounter, "Tier segments compacted."},
    {"tier_evictions", "cinch_tier_evictions_total", kCounter,
     "Items evicted from the tier (the file full)."},
    {"tier_io_errors", "cinch_tier_io_errors_total", kCounter, "Failed tier reads or writes."},
    {"tier_read_oom", "cinch_tier_read_oom_total", kCounter,
     "Reads of items on the tier that found no memory to read them into (the items kept)."},
    {"tier_unmarked_reads", "cinch_tier_unmarked_reads_total", kCounter,
     "First reads of items being written to the tier that could not mark them read."},
    {"tier_waits", "cinch_tier_waits_total", kCounter,
     "Requests that waited for the tier's I/O threads."},
    {"tier_sync_reads", "cinch_tier_sync_reads_total", kCounter,
     "Requests that read the tier on their worker."},
    {"tier_io_queue", "cinch_tier_io_queue", kGauge, "Requests waiting for the tier's I/O."},
    // The HTTP build cache (--http-port, docs/http-cache.md).
    {"http_curr_connections", "cinch_http_current_connections", kGauge, "Open HTTP connections."},
    {"http_total_connections", "cinch_http_connections_total", kCounter,
     "HTTP connections accepted."},
    {"http_rejected_connections", "cinch_http_connections_refused_total", kCounter,
     "HTTP connections refused."},
    {"http_bytes_read", "cinch_http_read_bytes_total", kCounter, "Bytes read from HTTP clients."},
    {"http_bytes_written", "cinch_http_written_bytes_total", kCounter,
     "Bytes written to HTTP clients."},
    {"http_requests", "cinch_http_requests_total", kCounter, "HTTP requests, /metrics included."},
    {"http_get_hits", "cinch_http_get_hits_total", kCounter,
     "HTTP cache GET and HEAD answered 200."},
    {"http_get_misses", "cinch_http_get_misses_total", kCounter,
     "HTTP cache GET and HEAD answered 404."},
    {"http_puts", "cinch_http_puts_total", kCounter, "HTTP cache PUTs stored (200)."},
    {"http_put_errors", "cinch_http_put_errors_total", kCounter,
     "HTTP cache PUTs refused (400, 411, 413, 507)."},
    {"http_errors", "cinch_http_errors_total", kCounter,
     "Other HTTP requests answered 4xx (bad paths, methods, syntax)."},
    {"grpc_curr_calls", "cinch_grpc_current_calls", kGauge, "gRPC calls open now."},
    {"grpc_calls", "cinch_grpc_calls_total", kCounter, "gRPC calls ended, any RPC."},
    {"grpc_not_found", "cinch_grpc_not_found_total", kCounter,
     "gRPC calls answered NOT_FOUND (action results and blobs that missed)."},
    {"grpc_errors", "cinch_grpc_errors_total", kCounter,
     "gRPC calls answered another status than OK and NOT_FOUND."},
    // The build cache, whichever front end asked (--http-port, --grpc-port).
    {"buildcache_cas_hits", "cinch_buildcache_cas_hits_total", kCounter,
     "CAS blobs read and found."},
    {"buildcache_cas_misses", "cinch_buildcache_cas_misses_total", kCounter,
     "CAS blobs read and not found."},
    {"buildcache_ac_hits", "cinch_buildcache_ac_hits_total", kCounter,
     "Action results read and served."},
    {"buildcache_ac_misses", "cinch_buildcache_ac_misses_total", kCounter,
     "Action results read and answered as missing (absent, or an output evicted)."},
    {"buildcache_ac_incomplete", "cinch_buildcache_ac_incomplete_total", kCounter,
     "Action results stored but answered as missing: an output was evicted."},
    {"buildcache_cas_stored", "cinch_buildcache_cas_stored_total", kCounter,
     "CAS blobs written (or already present)."},
    {"buildcache_ac_stored", "cinch_buildcache_ac_stored_total", kCounter,
     "Action results written."},
    {"buildcache_refused", "cinch_buildcache_refused_total", kCounter,
     "Writes refused: digest or size mismatch, too large, no memory."},
};

// "stats cinch" (CinchFigures): memory.
constexpr Metric kMemory[] = {
    {"process_resident_bytes", "cinch_resident_memory_bytes", kGauge,
     "Resident memory of the whole process (RSS)."},
    {"memory_limit", "cinch_store_memory_limit_bytes", kGauge,
     "The store's share of the memory limit."},
    {"resident_bytes", "cinch_store_resident_bytes", kGauge,
     "Resident memory of the store: segments, index, metadata."},
    {"index_bytes", "cinch_index_bytes", kGauge, "Memory of the hash index."},
    {"connection_buffer_bytes", "cinch_connection_buffer_bytes", kGauge,
     "Memory of the connections' buffers (both loops)."},
    {"segments_compacted", "cinch_segments_compacted_total", kCounter,
     "Segments compacted by the cleaner."},
    {"bytes_released_to_os", "cinch_released_bytes_total", kCounter,
     "Bytes of freed segments given back to the operating system."},
    {"out_of_memory", "cinch_store_out_of_memory_total", kCounter,
     "Writes the store could not make room for."},
};

// A tenant's keyspace (KeyspaceFigures), labelled tenant="<name>".
constexpr Metric kTenant[] = {
    {"curr_items", "cinch_tenant_items", kGauge, "Items in the tenant's keyspace."},
    {"bytes", "cinch_tenant_item_bytes", kGauge, "Bytes of the tenant's items."},
    {"limit_maxbytes", "cinch_tenant_limit_bytes", kGauge, "The tenant's quota."},
    {"cmd_get", "cinch_tenant_gets_total", kCounter, "Keys the tenant asked for."},
    {"get_hits", "cinch_tenant_get_hits_total", kCounter, "Keys the tenant asked for and found."},
    {"get_misses", "cinch_tenant_get_misses_total", kCounter,
     "Keys the tenant asked for and did not find."},
    {"evictions", "cinch_tenant_evictions_total", kCounter,
     "Items of the tenant evicted (at its quota or the server's limit)."},
};

std::optional<double> Find(const StatFigures& figures, std::string_view stat) {
  for (const auto& [name, value] : figures) {
    if (name == stat) return value;
  }
  return std::nullopt;
}

void WriteTable(std::span<const Metric> table, const StatFigures& figures, PrometheusWriter* w) {
  for (const Metric& m : table) {
    std::optional<double> v = Find(figures, m.stat);
    if (!v) continue;
    w->Family(m.name, m.type, m.help);
    w->Sample(*v);
  }
}

// Current tenants (users with a keyspace of their own) by name, sorted by name.
std::vector<std::pair<std::string, Keyspace>> Tenants(const UserTable& users) {
  std::vector<std::pair<std::string, Keyspace>> tenants;
  const std::vector<KeyspaceQuota> quotas = users.Quotas();
  for (const auto& [name, id] : users.GetTenantIds()) {
    for (const KeyspaceQuota& q : quotas) {
      if (q.keyspace.id == id) tenants.emplace_back(name, q.keyspace);
    }
  }
  std::sort(tenants.begin(), tenants.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return tenants;
}

// Raw keyspace counters, not those since a tenant's own "stats reset": a Prometheus counter
// only grows, and one tenant's reset is not the operator's.
void WriteTenants(const ServerContext& ctx, PrometheusWriter* w) {
  if (ctx.users == nullptr) return;
  const auto tenants = Tenants(*ctx.users);
  if (tenants.empty()) return;
  std::vector<StatFigures> figures;
  for (const auto& t : tenants) {
    figures.push_back(KeyspaceFigures(ctx, ctx.store->GetKeyspaceStats(t.second)));
  }
  for (const Metric& m : kTenant) {
    w->Family(m.name, m.type, m.help);
    for (size_t i = 0; i < tenants.size(); ++i) {
      w->Sample(Find(figures[i], m.stat).value_or(0), {{"tenant", tenants[i].first}});
    }
  }
}

void WriteLatency(const ServerContext& ctx, PrometheusWriter* w) {
  static constexpr std::string_view kClasses[kCommandClasses] = {"get", "set", "other"};
  std::array<double, LatencyHistogram::kBounds> bounds;
  for (int i = 0; i < LatencyHistogram::kBounds; ++i) bounds[i] = LatencyHistogram::BoundSeconds(i);
  const auto latency = ctx.counters.SumLatency();
  w->Family("cinch_request_duration_seconds", MetricType::kHistogram,
            "memcached requests: time from the request parsed to its reply queued (the "
            "network and the wait for a worker not included), by command class.");
  for (int c = 0; c < kCommandClasses; ++c) {
    w->Histogram(bounds, latency[c].counts, static_cast<double>(latency[c].sum_nanos) / 1e9,
                 {{"command", kClasses[c]}});
  }
}

}  // namespace

void ServerMetrics::Render(std::string* out) const {
  const ServerContext& ctx = *context_;
  PrometheusWriter w(out);
  w.Family("cinch_info", kGauge, "The server's version, as a label; always 1.");
  w.Sample(uint64_t{1}, {{"version", kServerVersion}});
  WriteTable(kGeneral, GeneralFigures(ctx), &w);
  WriteTable(kMemory, CinchFigures(ctx), &w);
  WriteLatency(ctx, &w);
  WriteTenants(ctx, &w);
}

}  // namespace cinch::server
