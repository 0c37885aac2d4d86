#include "server/server.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "buildcache/build_cache.h"
#include "cinch/clock.h"
#include "cinch/store.h"
#include "common/log.h"
#include "common/units.h"
#include "http/http_session.h"
#include "net/connection.h"
#include "net/fixed_budget.h"
#include "net/listener.h"
#include "net/server_loop.h"
#include "reapi/plugin.h"
#include "server/http_access.h"
#include "server/memcache_session.h"
#include "server/memory_governor.h"
#include "server/memory_sources.h"
#include "server/metrics.h"
#include "server/process.h"
#include "server/server_context.h"
#include "server/tier_promoter.h"
#include "server/users.h"

namespace cinch::server {

namespace {

// What the process holds besides the store and connection buffers: what it holds now (code,
// libraries, heap so far), the part of each worker's stack it will touch, each worker's
// io_uring, and slack for the allocator's own pages (its arenas keep some freed memory).
size_t ProcessReserve(const ServerOptions& o) {
  const size_t tier_threads = o.store.tier_files.empty() ? 0 : TierPromoter::kThreads;
  if (o.process_reserve != 0) return o.process_reserve;
  constexpr size_t kStackTouched = 256 * 1024;
  constexpr size_t kAllocatorSlack = 3 << 20;
  // gRPC's library state and threads: its baseline, measured (RSS at start rose 3.2 MiB with
  // --grpc-port at -m 64), is not resident yet when the rest is measured.
  constexpr size_t kGrpcBaseline = 4 << 20;
  const size_t workers = static_cast<size_t>(o.loop.threads) * (o.http_port != 0 ? 2 : 1);
  return ResidentBytes() + (workers + 2 + tier_threads) * kStackTouched +
         workers * net::IoUringBytes(o.loop) + kAllocatorSlack +
         (o.grpc_port != 0 ? kGrpcBaseline : 0);
}

// Smallest segments and store a small -m falls back to (see SizeStore).
constexpr size_t kMinSegmentSize = 64 * 1024;
constexpr size_t kMinStoreBytes = 2 << 20;

// Without the file tier: whatever the tier's own conditions, the memory it leaves must hold this.
size_t MinimumStore(const Options& o) {
  Options memory = o;
  memory.tier_files.clear();
  size_t m = Store::MinimumMemoryLimit(memory);
  return m == 0 ? SIZE_MAX : m;
}

// Sets o->store.memory_limit (and, for a small -m, segment_size) from -m less the process's own
// `reserve` and the connections' budget. Where that leaves less than the smallest store at the
// segment size, segments halve (down to 64 KiB) while that helps. Where even that does not fit,
// or -m is below the process's own baseline (several MiB: -m 1 cannot bound the process), the
// store gets its smallest size (at least 2 MiB) anyway, and the process's bound is
// reserve + connections + store rather than -m: returns the one-line warning to print then.
std::string SizeStore(ServerOptions* o, size_t reserve, size_t connections) {
  Options& store = o->store;
  size_t fixed = reserve + connections;
  size_t left = o->memory_limit > fixed ? o->memory_limit - fixed : 0;
  store.memory_limit = left;
  if (left >= MinimumStore(store)) return "";
  size_t target = std::max(left, kMinStoreBytes);
  while (store.segment_size > kMinSegmentSize && MinimumStore(store) > target) {
    size_t before = MinimumStore(store);
    store.segment_size /= 2;
    if (MinimumStore(store) < before) continue;
    store.segment_size *= 2;  // smaller segments no longer help: the item size binds
    break;
  }
  size_t minimum = MinimumStore(store);
  if (minimum == SIZE_MAX) return "";  // Open will say why
  store.memory_limit = std::max(target, minimum);
  if (store.memory_limit <= left) return "";
  return "-m " + Mib(o->memory_limit) + " is below what the process needs for itself (" +
         Mib(reserve) + ") and its connections (" + Mib(connections) + ") plus the smallest " +
         "store (" + Mib(store.memory_limit) + " in " + std::to_string(store.segment_size >> 10) +
         " KiB segments): resident memory may reach " + Mib(fixed + store.memory_limit);
}

// Each file of the tier can be created (the store truncates it to its size): a path in a
// missing directory or without write permission is named here, before the store opens.
Status CheckTierFiles(const Options& o) {
  for (const TierFile& f : o.tier_files) {
    int fd = open(f.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status::InvalidArgument("-o ext_path=" + f.path + ": cannot create the file (" +
                                     std::strerror(errno) + ")");
    }
    close(fd);
  }
  return Status::Ok();
}

}  // namespace

namespace {

// What -c connections take idle: their objects, set aside so that none is ever refused. The
// HTTP loop, when on, may hold -c connections of its own.
size_t ConnectionObjects(const ServerOptions& o) {
  size_t per_connection = net::kConnectionOverhead + sizeof(MemcacheSession);
  if (o.http_port != 0) per_connection += net::kConnectionOverhead + sizeof(http::HttpSession);
  return static_cast<size_t>(o.loop.max_connections) * per_connection;
}

// The HTTP loop's options: the memcached loop's, on the same -l hosts at the HTTP port (an
// address's own port, "host:port", is the memcached port), without the unix socket.
Status HttpLoopOptions(const ServerOptions& o, net::LoopOptions* out) {
  *out = o.loop;
  out->port = o.http_port;
  out->unix_socket.clear();
  out->listen.clear();
  for (const std::string& spec : o.loop.listen) {
    net::ListenAddress a;
    Status s = net::ParseListenAddress(spec, o.loop.port, &a);
    if (!s.ok()) return s;
    if (a.host.empty()) {
      out->listen.push_back("*");
    } else if (a.host.find(':') != std::string::npos) {
      out->listen.push_back("[" + a.host + "]");
    } else {
      out->listen.push_back(a.host);
    }
  }
  // HTTP bodies stream through the session: a read buffer never needs more than one head.
  out->read_buffer_max = std::max(out->read_buffer_initial, http::HttpSession::kMaxInput);
  out->idle_timeout_s = 0;  // -o idle_timeout is memcached's, for the memcached port
  return Status::Ok();
}

constexpr size_t kMinBufferMemory = size_t{2} << 20;

// gRPC listens on every -l host at --grpc-port (a port an -l address names is memcached's).
Status GrpcAddresses(const ServerOptions& o, std::vector<std::string>* out) {
  for (const std::string& spec : o.loop.listen) {
    net::ListenAddress a;
    Status s = net::ParseListenAddress(spec, o.grpc_port, &a);
    if (!s.ok()) return s;
    if (a.host.empty()) {
      out->push_back("[::]:" + std::to_string(o.grpc_port));  // IPv4 and IPv6
    } else if (a.host.find(':') != std::string::npos) {
      out->push_back("[" + a.host + "]:" + std::to_string(o.grpc_port));
    } else {
      out->push_back(a.host + ":" + std::to_string(o.grpc_port));
    }
  }
  if (out->empty()) return Status::InvalidArgument("--grpc-port needs a TCP -l address");
  return Status::Ok();
}

size_t GrpcMemory(const ServerOptions& o) {
  if (o.grpc_port == 0) return 0;
  return o.grpc_memory != 0 ? o.grpc_memory : DefaultGrpcMemory(o);
}

// gRPC's share of -m is its grpc::ResourceQuota; from it follow one concurrent call per
// connection for each MiB (4 to 64: a ByteStream read holds a 1 MiB chunk) and batches of at
// most a quarter of it (up to 4 MiB). Under memory pressure gRPC resets streams
// (ENHANCE_YOUR_CALM): with 8 MiB, 2 of 30 back-to-back 4 MB batches were refused, none of 60
// of 2 MB; with 16 MiB none of 60 of 4 MB; with 4 MiB none of 60 of 1 or 2 MB. See
// docs/grpc-cache.md for what that bounds.
reapi::GrpcOptions GrpcLimits(size_t grpc_memory) {
  reapi::GrpcOptions g;
  g.memory = grpc_memory;
  g.max_concurrent_calls = static_cast<int>(std::clamp<size_t>(grpc_memory >> 20, 4, 64));
  g.max_batch_total_bytes = std::min(reapi::kMaxBatchTotalBytes, grpc_memory / 4);
  return g;
}

}  // namespace

size_t DefaultConnectionMemory(const ServerOptions& o) {
  const size_t buffers = std::clamp(o.memory_limit / 16, kMinBufferMemory, size_t{1} << 30);
  return ConnectionObjects(o) + buffers;
}

// The REAPI plugin (reapi/plugin.h): beside the executable (the build tree), where
// `cmake --install` puts it relative to the executable (bin/../lib/cinch), else where the build
// put it (tests and bench binaries live elsewhere in the build tree).
std::vector<std::string> PluginPaths() {
  std::vector<std::string> paths;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string path(exe, static_cast<size_t>(n));
    const std::string dir = path.substr(0, path.rfind('/') + 1);
    paths.push_back(dir + reapi::kPluginFile);
    paths.push_back(dir + CINCH_REAPI_PLUGIN_FROM_BIN + "/" + reapi::kPluginFile);
  }
  paths.push_back(std::string(CINCH_REAPI_PLUGIN_DIR) + "/" + reapi::kPluginFile);
  return paths;
}

size_t DefaultGrpcMemory(const ServerOptions& o) {
  return std::clamp(o.memory_limit / 16, size_t{4} << 20, size_t{1} << 30);
}

class Server::Impl {
 public:
  explicit Impl(const ServerOptions& options) : options_(options) {}

  Status Start() {
    // Buffers of 64 KiB and more come straight from mmap and go back on free; the heap is
    // trimmed eagerly, so freed connection memory does not stay resident uncounted.
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024);
    mallopt(M_ARENA_MAX, 2);
    // Before measuring the process: the plugin's libraries are part of it from now on.
    if (options_.grpc_port != 0 || (options_.http_port != 0 && options_.ac_check)) {
      if (Status s = LoadPlugin(); !s.ok()) return s;
    }
    if (Status s = LoadUsers(); !s.ok()) return s;
    context_.process_reserve = ProcessReserve(options_);
    // The budgets that scale with -m scale with the limit the process starts under: inside a
    // cgroup smaller than -m, connections do not set aside 1/16 of a -m it will never have.
    // The store still reserves what -m leaves it, and grows to it if the cgroup's limit rises.
    ServerOptions sizing = options_;
    if (std::optional<uint64_t> cgroup = MemorySources({}).CgroupLimit()) {
      sizing.memory_limit = std::min(options_.memory_limit,
                                     std::max(MemoryGovernor::CgroupShare(*cgroup), size_t{1}));
    }
    grpc_memory_ = GrpcMemory(sizing);
    context_.connection_memory = options_.connection_memory != 0 ? options_.connection_memory
                                                                 : DefaultConnectionMemory(sizing);
    if (context_.connection_memory < ConnectionObjects(options_) + kMinBufferMemory) {
      return Status::InvalidArgument(
          "conn_memory " + std::to_string(context_.connection_memory >> 10) +
          " KiB is too small for -c " + std::to_string(options_.loop.max_connections) + ": " +
          std::to_string(ConnectionObjects(options_) >> 10) + " KiB for the connections and " +
          std::to_string(kMinBufferMemory >> 10) + " KiB for their buffers at least");
    }
    if (Status s = CheckTierFiles(options_.store); !s.ok()) return s;
    std::string warning =
        SizeStore(&options_, context_.process_reserve, context_.connection_memory + grpc_memory_);
    if (!warning.empty()) CINCH_LOG_WARNING("%s", warning.c_str());
    options_.store.clock = &clock_;
    Status s = OpenStore();
    if (!s.ok() && store_ != nullptr) return s;  // the memory file, not the options
    if (!s.ok() && !options_.store.tier_files.empty() &&
        options_.store.memory_limit >= MinimumStore(options_.store)) {
      return Status::InvalidArgument("the file tier (-o ext_path): " + s.message());
    }
    if (!s.ok()) {
      return Status::InvalidArgument(
          "memory limit " + std::to_string(options_.memory_limit >> 20) + " MiB leaves " +
          std::to_string(options_.store.memory_limit >> 10) + " KiB for the store after " +
          std::to_string(context_.process_reserve >> 10) + " KiB for the process itself and " +
          std::to_string(context_.connection_memory >> 10) + " KiB for connections (" +
          s.message() + "); raise -m or lower -I");
    }
    context_.store = store_.get();
    StartGovernor();
    if (users_ != nullptr) {
      ApplyQuotas(users_->Quotas());
      DropOrphanKeyspaces();
    }
    context_.options = &options_;
    context_.clock = &clock_;
    context_.started_at = clock_.NowSeconds();
    if (!options_.store.tier_files.empty()) {
      promoter_ = std::make_unique<TierPromoter>(store_.get());
      context_.promoter = promoter_.get();
    }
    build_cache_ = std::make_unique<buildcache::BuildCache>(
        store_.get(), options_.ac_check && front_end_ ? front_end_->checker() : nullptr);
    if (options_.http_port != 0 || options_.grpc_port != 0)
      context_.build_cache = build_cache_.get();
    factory_ = std::make_unique<MemcacheSessionFactory>(&context_);
    budget_ = std::make_unique<net::FixedBudget>(context_.connection_memory -
                                                 ConnectionObjects(options_));
    loop_ = std::make_unique<net::ServerLoop>(options_.loop, factory_.get(), budget_.get());
    context_.loop = loop_.get();
    if (options_.grpc_port != 0) {
      if (s = StartGrpc(grpc_memory_); !s.ok()) return s;
      context_.grpc = front_end_.get();
    }
    // Everything the sessions read through context_ is set before any worker runs.
    if (options_.http_port != 0) {
      if (s = PrepareHttp(); !s.ok()) return s;
    }
    s = loop_->Start();
    if (!s.ok() || http_loop_ == nullptr) return s;
    return http_loop_->Start();
  }

  Status ReloadUsers() {
    if (users_ == nullptr) return Status::InvalidArgument("no auth file (-Y)");
    Status s = users_->LoadFile(options_.auth_file);
    if (!s.ok()) return s;
    ApplyQuotas(users_->Quotas());
    loop_->RecheckSessions();
    return Status::Ok();
  }

  int port() const { return loop_ ? loop_->port() : 0; }
  int http_port() const { return http_loop_ ? http_loop_->port() : 0; }
  int grpc_port() const { return front_end_ ? front_end_->grpc_port() : 0; }
  void Stop() {
    if (governor_) governor_->Stop();
    if (front_end_) front_end_->StopGrpc();
    if (loop_) loop_->Stop();
    if (http_loop_) http_loop_->Stop();
  }
  void Wait() {
    if (loop_) loop_->Wait();
    if (http_loop_) http_loop_->Wait();
    // Only now: stopping workers wait for the resumes of the connections that wait for it.
    if (promoter_) promoter_->Stop();
  }

  Status SaveMemoryFile() {
    const std::string& path = options_.memory_file;
    if (path.empty() || store_ == nullptr) return Status::Ok();
    if (users_ != nullptr) {
      // Before the items: a memory file whose tenants' ids are not known is not trusted with
      // them at the next start (DropOrphanKeyspaces).
      if (Status s = SaveTenantIdsFile(TenantIdsPath(), users_->GetTenantIds()); !s.ok()) {
        CINCH_LOG_ERROR("memory file %s: not saved: %s", path.c_str(), s.message().c_str());
        return s;
      }
    }
    const StoreStats stats = store_->GetStats();
    const auto start = std::chrono::steady_clock::now();
    Status s = store_->SaveTo(path, Snapshot());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!s.ok()) {
      CINCH_LOG_ERROR("memory file %s: not saved: %s", path.c_str(), s.ToString().c_str());
      return s;
    }
    CINCH_LOG_NOTICE("memory file %s: saved %llu items (%s of keys and values) in %.3f s",
                     path.c_str(), static_cast<unsigned long long>(stats.items),
                     Mib(stats.key_value_bytes).c_str(), seconds);
    return Status::Ok();
  }

 private:
  // The memory file is tied to -m (the store's own limit is -m less what the process measured
  // for itself at start, which differs a little from one start to the next).
  SnapshotOptions Snapshot() const { return SnapshotOptions{options_.memory_limit}; }

  // Opens the store, from the memory file (-e) when there is one. A file that is there but is
  // not a memory file at all is refused (it would be overwritten at shutdown); any other file
  // that cannot be loaded leaves the store empty, with a line in the log saying why. Fails
  // with the store opened when the memory file is the problem.
  Status OpenStore() {
    const std::string& path = options_.memory_file;
    if (path.empty()) return Store::Open(options_.store, &store_);
    RestoreReport report;
    const auto start = std::chrono::steady_clock::now();
    Status s = Store::OpenFrom(options_.store, path, Snapshot(), &store_, &report);
    if (!s.ok()) return s;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    using Result = RestoreReport::Result;
    if (report.result == Result::kNotSnapshot) {
      return Status::InvalidArgument("memory file " + path + ": " + report.message +
                                     "; refusing to overwrite it (remove it, or name another)");
    }
    if (report.loaded()) {
      CINCH_LOG_NOTICE("memory file %s: %s in %.3f s", path.c_str(), report.message.c_str(),
                       seconds);
    } else {
      CINCH_LOG_WARNING("memory file %s: %s: starting empty", path.c_str(), report.message.c_str());
    }
    // Written at shutdown: find out now if it cannot be.
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status::IoError("memory file " + path +
                             ": cannot be written: " + std::strerror(errno));
    }
    close(fd);
    return Status::Ok();
  }

  // The memory governor: from now on the store's limit follows cache_memlimit, the cgroup and
  // memory pressure (docs/memory-pressure.md). Its first decision (the cgroup's limit) is
  // applied before the server serves.
  void StartGovernor() {
    MemoryGovernor::Config g;
    g.ceiling = options_.memory_limit;
    g.fixed = context_.process_reserve + context_.connection_memory + grpc_memory_;
    g.pressure = options_.memory_pressure;
    governor_ = std::make_unique<MemoryGovernor>(g, store_.get());
    governor_->Start();
    context_.governor = governor_.get();
  }

  Status StartGrpc(size_t grpc_memory) {
    reapi::GrpcOptions g = GrpcLimits(grpc_memory);
    if (Status s = GrpcAddresses(options_, &g.addresses); !s.ok()) return s;
    return front_end_->StartGrpc(build_cache_.get(), g);
  }

  Status LoadPlugin() {
    std::string errors;
    for (const std::string& path : PluginPaths()) {
      void* plugin = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (plugin == nullptr) {
        errors += std::string(dlerror()) + "; ";
        continue;
      }
      // A plugin of another interface version (built before) has no such entry: passed over.
      auto entry = reinterpret_cast<reapi::NewFrontEndFn>(dlsym(plugin, reapi::kPluginEntry));
      if (entry == nullptr) {
        errors += path + ": no " + reapi::kPluginEntry + " (another version); ";
        dlclose(plugin);
        continue;
      }
      plugin_ = plugin;
      front_end_.reset(entry());
      return Status::Ok();
    }
    return Status::InvalidArgument("the build cache's REAPI module did not load (" + errors +
                                   "it is needed by --grpc-port, and by --http-port unless "
                                   "-o ac_check=0)");
  }

  ServerOptions options_;
  OffsetClock clock_;
  std::unique_ptr<Store> store_;
  // After the store: stopped (its thread joined) before the store goes.
  std::unique_ptr<MemoryGovernor> governor_;
  size_t grpc_memory_ = 0;  // gRPC's share, 0 without --grpc-port
  // The REAPI plugin, loaded when a build-cache port needs it: the checker (an action result
  // whose outputs were evicted is a miss) and the gRPC front end. Never closed: gRPC's
  // library state (threads, exit handlers) outlives the FrontEnd.
  void* plugin_ = nullptr;
  std::unique_ptr<reapi::FrontEnd> front_end_;
  // The build cache every front end serves (HTTP, gRPC).
  std::unique_ptr<buildcache::BuildCache> build_cache_;
  ServerContext context_;
  std::unique_ptr<UserTable> users_;          // -Y; outlives the loops' sessions
  std::vector<KeyspaceQuota> tenant_quotas_;  // as last applied
  TenantIds seeded_tenants_;                  // read from TenantIdsPath() at start
  std::unique_ptr<MemcacheSessionFactory> factory_;
  std::unique_ptr<net::FixedBudget> budget_;
  std::unique_ptr<net::ServerLoop> loop_;
  http::HttpStats http_stats_;
  std::unique_ptr<ServerMetrics> metrics_;   // GET /metrics on the HTTP port
  std::unique_ptr<UserAccess> http_access_;  // -Y: the HTTP port's Basic authentication
  std::unique_ptr<http::HttpSessionFactory> http_factory_;
  std::unique_ptr<net::ServerLoop> http_loop_;
  // After the loops: destroyed (its threads joined) before them.
  std::unique_ptr<TierPromoter> promoter_;

  // -Y: the users, loaded before anything else starts (a bad file stops the start).
  Status LoadUsers() {
    if (options_.auth_file.empty()) return Status::Ok();
    users_ = std::make_unique<UserTable>();
    if (!options_.memory_file.empty()) {
      // The tenants' keyspace ids of the run that saved the memory file, so that each tenant
      // finds its own items again whatever the order of the auth file's lines now.
      Status s = LoadTenantIdsFile(TenantIdsPath(), &seeded_tenants_);
      if (s.ok()) s = users_->SeedTenantIds(seeded_tenants_);
      if (!s.ok()) {
        CINCH_LOG_WARNING("%s: ignored: %s", TenantIdsPath().c_str(), s.message().c_str());
        seeded_tenants_.clear();
      }
    }
    if (Status s = users_->LoadFile(options_.auth_file); !s.ok()) return s;
    context_.users = users_.get();
    return Status::Ok();
  }

  std::string TenantIdsPath() const { return options_.memory_file + ".tenants"; }

  // After a warm restart: the items of a tenant keyspace are served only to the tenant that
  // had that keyspace when they were saved (the ids of <memory file>.tenants). Every other
  // tenant keyspace holding items (a tenant removed while the server was down, or ids that
  // were not saved) is flushed, so that no tenant ever reads another's items.
  void DropOrphanKeyspaces() {
    if (options_.memory_file.empty()) return;
    // Trusted: the keyspaces of tenants both named in the file (seeded) and in the auth file.
    std::unordered_set<uint16_t> seeded;
    for (const auto& [name, id] : seeded_tenants_) seeded.insert(id);
    std::unordered_set<uint16_t> trusted;
    for (const KeyspaceQuota& q : users_->Quotas()) {
      if (seeded.contains(q.keyspace.id)) trusted.insert(q.keyspace.id);
    }
    int dropped = 0;
    for (const Keyspace ks : store_->Keyspaces()) {
      if (ks.id < kFirstTenantKeyspace || trusted.contains(ks.id) ||
          store_->GetKeyspaceStats(ks).items == 0) {
        continue;
      }
      store_->FlushAll(ks, 0);
      ++dropped;
    }
    if (dropped > 0) {
      CINCH_LOG_WARNING(
          "memory file %s: the items of %d tenant keyspaces whose tenant is not "
          "known (not in %s, or removed from the auth file) are dropped",
          options_.memory_file.c_str(), dropped, TenantIdsPath().c_str());
    }
  }

  // The tenants' quotas (users with a keyspace of their own), after each load of the auth
  // file, handed to the store (Store::SetKeyspaceQuota, docs/keyspaces.md). A keyspace whose
  // tenant is gone (removed, or left without a quota) is flushed and unbounded: its items could
  // never be read again, and its id is not reused.
  void ApplyQuotas(const std::vector<KeyspaceQuota>& quotas) {
    for (const KeyspaceQuota& q : quotas) store_->SetKeyspaceQuota(q.keyspace, q.quota);
    // Each tenant being written holds an open segment of its own (docs/keyspaces.md).
    const uint64_t heads = uint64_t{quotas.size()} * options_.store.segment_size;
    if (heads > options_.store.memory_limit / 4) {
      CINCH_LOG_WARNING(
          "%zu tenants with %zu KiB segments hold up to %s in open "
          "segments when all are written, more than a quarter of the store's %s; a "
          "smaller -o segment_size (e.g. 64k) wastes less",
          quotas.size(), options_.store.segment_size >> 10, Mib(heads).c_str(),
          Mib(options_.store.memory_limit).c_str());
    }
    std::unordered_set<uint16_t> kept;
    for (const KeyspaceQuota& q : quotas) kept.insert(q.keyspace.id);
    for (const KeyspaceQuota& old : tenant_quotas_) {
      if (kept.contains(old.keyspace.id)) continue;
      store_->FlushAll(old.keyspace, 0);
      store_->SetKeyspaceQuota(old.keyspace, 0);
    }
    tenant_quotas_ = quotas;
  }

  // The HTTP cache's loop (started by Start once memcached's is): its own sessions, the same
  // connection budget as memcached's.
  Status PrepareHttp() {
    net::LoopOptions loop;
    Status s = HttpLoopOptions(options_, &loop);
    if (!s.ok()) return s;
    // Values are written by reference from this size on, so that the output limit is reached
    // before the session's pins run out (http_session.h).
    http::HttpOptions http;
    http.zero_copy_min =
        std::max(options_.zero_copy_min, loop.output_limit / http::HttpSession::kMaxPins);
    metrics_ = std::make_unique<ServerMetrics>(&context_);
    if (users_ != nullptr) http_access_ = std::make_unique<UserAccess>(users_.get());
    http_factory_ = std::make_unique<http::HttpSessionFactory>(
        build_cache_.get(), http, &http_stats_, metrics_.get(), http_access_.get());
    http_loop_ = std::make_unique<net::ServerLoop>(loop, http_factory_.get(), budget_.get());
    context_.http_loop = http_loop_.get();
    context_.http_stats = &http_stats_;
    return Status::Ok();
  }
};

Server::Server(const ServerOptions& options) : impl_(std::make_unique<Impl>(options)) {}
Server::~Server() {
  if (impl_) {
    impl_->Stop();
    impl_->Wait();
  }
}
Status Server::Start() { return impl_->Start(); }
Status Server::SaveMemoryFile() { return impl_->SaveMemoryFile(); }
Status Server::ReloadUsers() { return impl_->ReloadUsers(); }
int Server::port() const { return impl_->port(); }
int Server::http_port() const { return impl_->http_port(); }
int Server::grpc_port() const { return impl_->grpc_port(); }
void Server::Stop() { impl_->Stop(); }
void Server::Wait() { impl_->Wait(); }

}  // namespace cinch::server
