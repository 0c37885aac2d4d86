// Micro-benchmarks of single cinch::Store operations (Google Benchmark). The workload driver
// with memory and miss-ratio figures is cinch_bench.cc; this file times the hot paths alone.
//
//   build-bench/bench/cinch_micro_bench --benchmark_filter=Get

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "cinch/options.h"
#include "cinch/store.h"

namespace cinch::bench {
namespace {

constexpr int64_t kKeys = 1 << 20;

std::string KeyOf(int64_t id) {
  char buffer[24];
  int n = std::snprintf(buffer, sizeof(buffer), "key%012lld", static_cast<long long>(id));
  return std::string(buffer, n);
}

// One store of 256 MiB preloaded with kKeys keys, shared by every benchmark and thread.
struct Fixture {
  std::unique_ptr<Store> store;
  std::vector<std::string> keys;

  static Fixture& Instance() {
    static Fixture fixture;
    return fixture;
  }

 private:
  static constexpr size_t kValueSize = 32;

  Fixture() {
    Options options;
    options.memory_limit = size_t{256} << 20;
    if (!Store::Open(options, &store).ok()) std::abort();
    std::string value(kValueSize, 'v');
    for (int64_t id = 0; id < kKeys; ++id) {
      keys.push_back(KeyOf(id));
      (void)store->Set(keys.back(), value);
    }
  }
};

// Keys are visited with a stride coprime to kKeys, so successive ops touch unrelated buckets.
int64_t NextId(int64_t id) { return (id + 7919) & (kKeys - 1); }

void BM_GetHit(benchmark::State& state) {
  Fixture& f = Fixture::Instance();
  int64_t id = state.thread_index() * 104729;
  uint64_t sum = 0;
  for (auto _ : state) {
    ItemRef ref;
    if (f.store->Get(f.keys[id], &ref)) sum += static_cast<unsigned char>(ref.value()[0]);
    id = NextId(id);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GetHit)->Threads(1)->Threads(2);

void BM_GetMiss(benchmark::State& state) {
  Fixture& f = Fixture::Instance();
  std::string key = "absent-key-0000";
  uint64_t n = 0;
  for (auto _ : state) {
    key[11] = static_cast<char>('0' + n++ % 10);
    ItemRef ref;
    benchmark::DoNotOptimize(f.store->Get(key, &ref));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GetMiss);

void BM_SetOverwrite(benchmark::State& state) {
  Fixture& f = Fixture::Instance();
  std::string value(32, 'w');
  int64_t id = state.thread_index() * 104729;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.store->Set(f.keys[id], value));
    id = NextId(id);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * 32);
}
BENCHMARK(BM_SetOverwrite)->Threads(1)->Threads(2);

}  // namespace
}  // namespace cinch::bench

BENCHMARK_MAIN();
