#include "server/server_stats.h"

namespace cinch::server {

namespace {
std::atomic<uint64_t> next_registry_id{1};
}  // namespace

CounterRegistry::CounterRegistry() : id_(next_registry_id.fetch_add(1)) {}

void ThreadCounters::AddTo(Counters* sum) const {
#define CINCH_SUM(name) sum->name += name.load(std::memory_order_relaxed);
  CINCH_SERVER_COUNTERS(CINCH_SUM)
#undef CINCH_SUM
}

void ThreadCounters::Reset() {
#define CINCH_ZERO(name) name.store(0, std::memory_order_relaxed);
  CINCH_SERVER_COUNTERS(CINCH_ZERO)
#undef CINCH_ZERO
}

ThreadCounters* CounterRegistry::ForThisThread() {
  // One registry per process in practice; the id (never reused, unlike an address) tells a
  // thread that met an earlier registry, e.g. in tests, to register again.
  thread_local uint64_t owner = 0;
  thread_local ThreadCounters* mine = nullptr;
  if (owner != id_) {
    std::lock_guard<std::mutex> lock(mu_);
    mine = &all_.emplace_back();
    owner = id_;
  }
  return mine;
}

Counters CounterRegistry::Sum() const {
  Counters sum;
  std::lock_guard<std::mutex> lock(mu_);
  for (const ThreadCounters& t : all_) t.AddTo(&sum);
  return sum;
}

std::array<LatencySnapshot, kCommandClasses> CounterRegistry::SumLatency() const {
  std::array<LatencySnapshot, kCommandClasses> sum;
  std::lock_guard<std::mutex> lock(mu_);
  for (const ThreadCounters& t : all_) {
    for (int i = 0; i < kCommandClasses; ++i) sum[i].Add(t.latency[i]);
  }
  return sum;
}

void CounterRegistry::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  for (ThreadCounters& t : all_) t.Reset();
}

KeyspaceStats TenantResets::Since(Keyspace keyspace, KeyspaceStats now) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = base_.find(keyspace.id);
  if (it == base_.end()) return now;
  now.get_hits -= it->second.get_hits;
  now.get_misses -= it->second.get_misses;
  now.evictions -= it->second.evictions;
  return now;
}

void TenantResets::Reset(Keyspace keyspace, const KeyspaceStats& now) {
  std::lock_guard<std::mutex> lock(mu_);
  base_[keyspace.id] = Base{now.get_hits, now.get_misses, now.evictions};
}

}  // namespace cinch::server
