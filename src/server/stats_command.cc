// "stats", "stats settings", "stats cinch" (the store's memory breakdown) and "stats reset";
// and the same figures as numbers for GET /metrics (stats_figures.h): each figure is computed
// here once, whichever way it is shown.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "common/log.h"
#include "common/version.h"
#include "proto/errors.h"
#include "reapi/plugin.h"
#include "server/memcache_session.h"
#include "server/memory_governor.h"
#include "server/process.h"
#include "server/reply_format.h"
#include "server/stats_figures.h"
#include "server/tier_promoter.h"
#include "server/users.h"

namespace cinch::server {

namespace {

// Writes stat lines to a connection, or collects the numeric ones (names are literals).
class StatWriter {
 public:
  explicit StatWriter(net::Output* out) : out_(out) {}
  explicit StatWriter(StatFigures* figures) : figures_(figures) {}
  template <typename V>
  void Add(std::string_view name, V value) {
    if (figures_ != nullptr) {
      if constexpr (!std::is_convertible_v<V, std::string_view>) {
        figures_->emplace_back(name, static_cast<double>(value));
      }
      return;
    }
    LineBuilder line;
    line.Append(proto::reply::kStatPrefix).Append(name).Char(' ');
    if constexpr (std::is_convertible_v<V, std::string_view>) {
      line.Append(value);
    } else {
      line.Number(value);
    }
    line.Append(proto::reply::kCrlf);
    out_->Append(line.view());
  }
  void Seconds(std::string_view name, const timeval& tv) {
    if (figures_ != nullptr) {
      figures_->emplace_back(name, static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6);
      return;
    }
    LineBuilder line;
    line.Append(proto::reply::kStatPrefix).Append(name).Char(' ').Number(tv.tv_sec).Char('.');
    char micros[7];
    std::snprintf(micros, sizeof(micros), "%06ld", static_cast<long>(tv.tv_usec));
    line.Append(micros).Append(proto::reply::kCrlf);
    out_->Append(line.view());
  }

 private:
  net::Output* out_ = nullptr;
  StatFigures* figures_ = nullptr;
};

// The HTTP cache's connections and requests (--http-port; docs/http-cache.md).
void HttpStats(const ServerContext& ctx, StatWriter* w) {
  net::LoopStats loop = ctx.http_loop->GetStats();
  const http::HttpStats& h = *ctx.http_stats;
  w->Add("http_curr_connections", loop.curr_connections);
  w->Add("http_total_connections", loop.total_connections);
  w->Add("http_rejected_connections", loop.rejected_connections);
  w->Add("http_bytes_read", loop.bytes_read);
  w->Add("http_bytes_written", loop.bytes_written);
#define CINCH_STAT(name) w->Add("http_" #name, h.name.load(std::memory_order_relaxed))
  CINCH_STAT(requests);
  CINCH_STAT(get_hits);
  CINCH_STAT(get_misses);
  CINCH_STAT(puts);
  CINCH_STAT(put_errors);
  CINCH_STAT(errors);
#undef CINCH_STAT
}

// The gRPC front end's calls (docs/grpc-cache.md, "Counters").
void GrpcLines(const reapi::FrontEnd& grpc, StatWriter* w) {
  const reapi::GrpcStats g = grpc.grpc_stats();
  w->Add("grpc_curr_calls", g.curr_calls);
  w->Add("grpc_calls", g.calls);
  w->Add("grpc_not_found", g.not_found);
  w->Add("grpc_errors", g.errors);
}

// The build cache's reads and writes, from both front ends (docs/http-cache.md).
void BuildCacheLines(const buildcache::BuildCache& cache, StatWriter* w) {
  const buildcache::BuildCacheStats b = cache.GetStats();
#define CINCH_STAT(name) w->Add("buildcache_" #name, b.name)
  CINCH_STAT(cas_hits);
  CINCH_STAT(cas_misses);
  CINCH_STAT(ac_hits);
  CINCH_STAT(ac_misses);
  CINCH_STAT(ac_incomplete);
  CINCH_STAT(cas_stored);
  CINCH_STAT(ac_stored);
  CINCH_STAT(refused);
#undef CINCH_STAT
}

// The file tier's counters, by cinch's names (docs/file-tier.md).
void TierCounters(const StoreStats& st, StatWriter* w) {
#define CINCH_STAT(name) w->Add(#name, st.name)
  CINCH_STAT(tier_capacity_bytes);
  CINCH_STAT(tier_used_bytes);
  CINCH_STAT(tier_items);
  CINCH_STAT(tier_item_bytes);
  CINCH_STAT(tier_reads);
  CINCH_STAT(tier_read_bytes);
  CINCH_STAT(tier_writes);
  CINCH_STAT(tier_write_bytes);
  CINCH_STAT(tier_promotions);
  CINCH_STAT(tier_compactions);
  CINCH_STAT(tier_evictions);
  CINCH_STAT(tier_io_errors);
  CINCH_STAT(tier_read_oom);
  CINCH_STAT(tier_unmarked_reads);
#undef CINCH_STAT
}

// With a file tier (-o ext_path): its counters, then memcached's extstore names for those that
// mean the same thing (a file segment is extstore's page; cinch keeps no per-object write or
// compaction-rescue counts, so those names are left out rather than faked).
void TierStats(const ServerContext& ctx, const StoreStats& st, const Counters& c, StatWriter* w) {
  TierCounters(st, w);
  w->Add("tier_waits", c.tier_waits);            // requests that waited for the I/O threads
  w->Add("tier_sync_reads", c.tier_sync_reads);  // ran still needing the file: read in place
  w->Add("tier_io_queue", ctx.promoter->queued());
  const uint64_t page = st.segment_size == 0 ? 1 : st.segment_size;
  w->Add("recache_from_extstore", st.tier_promotions);
  w->Add("get_oom_extstore", st.tier_read_oom);
  w->Add("extstore_pages_free",
         (st.tier_capacity_bytes - std::min(st.tier_used_bytes, st.tier_capacity_bytes)) / page);
  w->Add("extstore_pages_used", st.tier_used_bytes / page);
  w->Add("extstore_objects_evicted", st.tier_evictions);
  w->Add("extstore_objects_used", st.tier_items);
  w->Add("extstore_bytes_written", st.tier_write_bytes);
  w->Add("extstore_bytes_read", st.tier_read_bytes);
  w->Add("extstore_bytes_used", st.tier_item_bytes);
  w->Add("extstore_limit_maxbytes", st.tier_capacity_bytes);
  w->Add("extstore_io_queue", ctx.promoter->queued());
}

// The process's memory limit now (docs/memory-pressure.md): -m until the governor changes it.
uint64_t ProcessLimit(const ServerContext& ctx) {
  return ctx.governor != nullptr ? ctx.governor->limit() : ctx.options->memory_limit;
}

// Where the limit comes from and what moved it.
void MemoryLimitStats(const ServerContext& ctx, StatWriter* w) {
  if (ctx.governor == nullptr) return;
  w->Add("memory_limit_source", std::string_view(ctx.governor->source()));
  w->Add("memory_cgroup_limit", ctx.governor->cgroup_limit());
  w->Add("pressure_shrinks", ctx.governor->pressure_shrinks());
  w->Add("pressure_grows", ctx.governor->pressure_grows());
}

void GeneralStats(const ServerContext& ctx, StatWriter* w) {
  const ServerOptions& o = *ctx.options;
  int64_t now = ctx.clock->NowSeconds();
  StoreStats st = ctx.store->GetStats();
  Counters c = ctx.counters.Sum();
  net::LoopStats loop = ctx.loop != nullptr ? ctx.loop->GetStats() : net::LoopStats{};
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  w->Add("pid", static_cast<int64_t>(getpid()));
  w->Add("uptime", now - ctx.started_at);
  w->Add("time", now);
  w->Add("version", kServerVersion);
  w->Add("pointer_size", 64);
  w->Seconds("rusage_user", usage.ru_utime);
  w->Seconds("rusage_system", usage.ru_stime);
  w->Add("max_connections", o.loop.max_connections);
  w->Add("curr_connections", loop.curr_connections);
  w->Add("total_connections", loop.total_connections);
  w->Add("rejected_connections", loop.rejected_connections);
  w->Add("revoked_connections", loop.revoked_connections);
#define CINCH_STAT(name) w->Add(#name, c.name)
  CINCH_STAT(cmd_get);
  CINCH_STAT(cmd_set);
  CINCH_STAT(cmd_flush);
  CINCH_STAT(cmd_touch);
  CINCH_STAT(cmd_meta);
  CINCH_STAT(get_hits);
  CINCH_STAT(get_misses);
  CINCH_STAT(get_expired);
  CINCH_STAT(get_flushed);
  CINCH_STAT(delete_misses);
  CINCH_STAT(delete_hits);
  CINCH_STAT(incr_misses);
  CINCH_STAT(incr_hits);
  CINCH_STAT(decr_misses);
  CINCH_STAT(decr_hits);
  CINCH_STAT(cas_misses);
  CINCH_STAT(cas_hits);
  CINCH_STAT(cas_badval);
  CINCH_STAT(touch_hits);
  CINCH_STAT(touch_misses);
  CINCH_STAT(auth_cmds);
  CINCH_STAT(auth_errors);
#undef CINCH_STAT
  if (o.loop.idle_timeout_s > 0) w->Add("idle_kicks", loop.idle_kicks);  // where memcached has it
  w->Add("bytes_read", loop.bytes_read);
  w->Add("bytes_written", loop.bytes_written);
  w->Add("limit_maxbytes", ProcessLimit(ctx));
  w->Add("threads", o.loop.threads);
  w->Add("bytes", st.key_value_bytes + st.item_header_bytes);
  w->Add("curr_items", st.items);
  w->Add("total_items", c.total_items);
  w->Add("evictions", st.evictions);
  w->Add("reclaimed", st.expirations_reclaimed);
  w->Add("expired_unfetched", st.expirations_reclaimed);
  w->Add("store_too_large", c.store_too_large);
  w->Add("store_no_memory", c.store_no_memory);
  MemoryLimitStats(ctx, w);
  if (ctx.promoter != nullptr) TierStats(ctx, st, c, w);
  if (ctx.http_stats != nullptr) HttpStats(ctx, w);
  if (ctx.grpc != nullptr) GrpcLines(*ctx.grpc, w);
  if (ctx.build_cache != nullptr) BuildCacheLines(*ctx.build_cache, w);
}

// A keyspace's own figures under memcached's names: a tenant's "stats", and /metrics's
// per-tenant series.
void KeyspaceLines(const ServerContext& ctx, const KeyspaceStats& ks, StatWriter* w) {
  w->Add("cmd_get", ks.get_hits + ks.get_misses);
  w->Add("get_hits", ks.get_hits);
  w->Add("get_misses", ks.get_misses);
  w->Add("limit_maxbytes", ks.quota != 0 ? ks.quota : ProcessLimit(ctx));
  w->Add("bytes", ks.item_bytes);
  w->Add("curr_items", ks.items);
  w->Add("evictions", ks.evictions);
}

// A tenant's "stats" (a user of the auth file with a quota): the figures of its own keyspace
// under memcached's names, and the server's identity; nothing of the other tenants'.
void TenantStats(const ServerContext& ctx, Keyspace keyspace, StatWriter* w) {
  const int64_t now = ctx.clock->NowSeconds();
  const KeyspaceStats ks = ctx.tenant_resets.Since(keyspace, ctx.store->GetKeyspaceStats(keyspace));
  w->Add("pid", static_cast<int64_t>(getpid()));
  w->Add("uptime", now - ctx.started_at);
  w->Add("time", now);
  w->Add("version", kServerVersion);
  w->Add("pointer_size", 64);
  KeyspaceLines(ctx, ks, w);
}

void SettingsStats(const ServerContext& ctx, StatWriter* w) {
  const ServerOptions& o = *ctx.options;
  std::string inter;  // memcached shows its -l arguments joined by commas
  for (const std::string& a : o.loop.listen) inter += (inter.empty() ? "" : ",") + a;
  w->Add("maxbytes", ProcessLimit(ctx));  // memcached's follows cache_memlimit too
  w->Add("maxconns", o.loop.max_connections);
  w->Add("tcpport", o.loop.port);
  if (ctx.http_loop != nullptr) w->Add("http_port", ctx.http_loop->port());
  w->Add("udpport", 0);
  w->Add("inter", std::string_view(inter.empty() ? "NULL" : inter));
  w->Add("verbosity", log::Verbosity());
  w->Add("evictions", std::string_view(o.store.eviction ? "on" : "off"));
  w->Add("domain_socket",
         std::string_view(o.loop.unix_socket.empty() ? "NULL" : o.loop.unix_socket));
  char umask[8];
  std::snprintf(umask, sizeof(umask), "%o", static_cast<unsigned>(o.loop.unix_mask));
  w->Add("umask", std::string_view(umask));
  w->Add("tcp_backlog", o.loop.backlog);
  w->Add("idle_timeout", o.loop.idle_timeout_s);
  w->Add("num_threads", o.loop.threads);
  w->Add("cas_enabled", std::string_view(o.cas_enabled ? "yes" : "no"));
  w->Add("item_size_max", o.store.max_item_size);
  w->Add("flush_enabled", std::string_view(o.flush_enabled ? "yes" : "no"));
  w->Add("binding_protocol",
         std::string_view(o.protocol == ServerOptions::Protocol::kAuto    ? "auto-negotiate"
                          : o.protocol == ServerOptions::Protocol::kAscii ? "ascii"
                                                                          : "binary"));
  w->Add("segment_size", o.store.segment_size);
  w->Add("store_memory_limit", o.store.memory_limit);
  w->Add("process_reserve", ctx.process_reserve);
  w->Add("connection_memory", ctx.connection_memory);
  w->Add("debugtime", std::string_view(o.debugtime_enabled ? "yes" : "no"));
  w->Add("auth_enabled_sasl", std::string_view(o.require_sasl ? "yes" : "no"));
  w->Add("auth_enabled_ascii", std::string_view(o.auth_file.empty() ? "no" : o.auth_file));
  // Workers on io_uring; fewer than num_threads when the kernel refused it (or -o io_uring=0).
  w->Add("io_uring_workers", ctx.loop != nullptr ? ctx.loop->GetStats().io_uring_workers : 0);
  w->Add("memory_ceiling", o.memory_limit);  // -m: the most the limit can be
  w->Add("memory_pressure", std::string_view(o.memory_pressure ? "yes" : "no"));
  MemoryLimitStats(ctx, w);
}

// cinch's own memory breakdown (see docs/memory-accounting.md).
void CinchStats(const ServerContext& ctx, StatWriter* w) {
  StoreStats st = ctx.store->GetStats();
  net::LoopStats loop = ctx.loop != nullptr ? ctx.loop->GetStats() : net::LoopStats{};
#define CINCH_STAT(name) w->Add(#name, st.name)
  CINCH_STAT(items);
  CINCH_STAT(key_value_bytes);
  CINCH_STAT(memory_limit);
  CINCH_STAT(resident_bytes);
  CINCH_STAT(segment_bytes);
  CINCH_STAT(jumbo_bytes);
  CINCH_STAT(index_bytes);
  CINCH_STAT(metadata_bytes);
  CINCH_STAT(external_bytes);
  CINCH_STAT(item_header_bytes);
  CINCH_STAT(overhead_bytes);
  CINCH_STAT(segment_size);
  CINCH_STAT(segments_total);
  CINCH_STAT(segments_used);
  CINCH_STAT(segments_free);
  CINCH_STAT(segments_released);
  CINCH_STAT(evictions);
  CINCH_STAT(expirations_reclaimed);
  CINCH_STAT(flushed_items);
  CINCH_STAT(relocated_items);
  CINCH_STAT(relocated_bytes);
  CINCH_STAT(segments_compacted);
  CINCH_STAT(segments_evicted);
  CINCH_STAT(bytes_released_to_os);
  CINCH_STAT(index_resizes);
  CINCH_STAT(out_of_memory);
  CINCH_STAT(writer_cleaner_passes);
  CINCH_STAT(writer_reclaims);
  CINCH_STAT(writer_space_waits);
#undef CINCH_STAT
  TierCounters(st, w);
  // Both loops charge the same budget.
  uint64_t http_buffers = ctx.http_loop != nullptr ? ctx.http_loop->GetStats().buffer_bytes : 0;
  w->Add("connection_buffer_bytes", loop.buffer_bytes + http_buffers);
  w->Add("connection_memory", ctx.connection_memory);
  w->Add("process_reserve", ctx.process_reserve);
  // -m, or more where -m is below the process's own needs plus the smallest store.
  w->Add("process_limit",
         ctx.process_reserve + ctx.connection_memory + ctx.options->store.memory_limit);
  w->Add("process_resident_bytes", ResidentBytes());
}

}  // namespace

StatFigures GeneralFigures(const ServerContext& ctx) {
  StatFigures f;
  StatWriter w(&f);
  GeneralStats(ctx, &w);
  return f;
}

StatFigures CinchFigures(const ServerContext& ctx) {
  StatFigures f;
  StatWriter w(&f);
  CinchStats(ctx, &w);
  return f;
}

StatFigures KeyspaceFigures(const ServerContext& ctx, const KeyspaceStats& ks) {
  StatFigures f;
  StatWriter w(&f);
  KeyspaceLines(ctx, ks, &w);
  return f;
}

void MemcacheSession::Stats(const proto::Request& r, net::Output* out) {
  StatWriter w(out);
  const bool tenant = keyspace_.id >= kFirstTenantKeyspace;
  if (r.stats_arg.empty() && tenant) {
    TenantStats(*context_, keyspace_, &w);
  } else if (r.stats_arg.empty()) {
    GeneralStats(*context_, &w);
  } else if ((r.stats_arg == "settings" || r.stats_arg == "cinch") && tenant) {
    // The server's settings (the auth file's path among them) and memory totals are the
    // operator's: a tenant gets an empty list, as for the slab groups.
  } else if (r.stats_arg == "settings") {
    SettingsStats(*context_, &w);
  } else if (r.stats_arg == "cinch") {
    CinchStats(*context_, &w);
  } else if (r.stats_arg == "reset" && tenant) {  // its own counters, not the server's
    context_->tenant_resets.Reset(keyspace_, context_->store->GetKeyspaceStats(keyspace_));
    return out->Append(proto::reply::kReset);
  } else if (r.stats_arg == "reset") {
    context_->counters.Reset();
    return out->Append(proto::reply::kReset);
  } else if (r.stats_arg == "sizes") {
    // memcached's answer without -o track_sizes: cinch keeps no histogram of item sizes.
    w.Add("sizes_status", std::string_view("disabled"));
  } else if (r.stats_arg == "items" || r.stats_arg == "slabs" || r.stats_arg == "conns") {
    // No slab classes: nothing to list, as memcached on an empty cache.
  } else {
    return out->Append(proto::reply::kError);
  }
  out->Append(proto::reply::kEnd);
}

}  // namespace cinch::server
