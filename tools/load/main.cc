// cinch_load: a load generator for memcached-protocol and RESP servers (cinchd, memcached,
// Redis). Flag parsing, the run's frame (flush, RSS sampling) and the report only; the
// workloads are in mixed.cc and churn.cc.
//
// Output: one JSON line (machine-readable, starts with '{') and one human line on stdout.
// Exit status: 0 ok; 1 a value read back was wrong; 2 bad flags; 3 the run failed (connect,
// protocol, server gone).
#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "load/churn.h"
#include "load/connection_set.h"
#include "load/mixed.h"
#include "load/rss_sampler.h"

namespace cinch::load {
namespace {

constexpr int kExitWrong = 1;
constexpr int kExitUsage = 2;
constexpr int kExitFailed = 3;

void Usage(FILE* f) {
  std::fprintf(
      f,
      "cinch_load: load generator for memcached (text and binary protocols) and Redis (RESP)\n"
      "usage: cinch_load [options]\n"
      "  -s, --server=HOST:PORT       server (default 127.0.0.1:11211)\n"
      "  -P, --protocol=NAME          memcache (default), memcache-binary or resp\n"
      "  -w, --workload=NAME          mixed (default), churn (RAMCloud W1-W8), fill or\n"
      "                               shift (a cache whose values change size)\n"
      " mixed:\n"
      "  -t, --threads=N              generator threads (default 1)\n"
      "  -c, --connections=N          connections in total (default 16)\n"
      "  -d, --pipeline=N             closed loop: requests in flight per connection (1)\n"
      "  -r, --ratio=GET:SET          get/set mix, e.g. 90:10 (default) or 50:50\n"
      "  -k, --keys=N                 key space (default 100000)\n"
      "  -K, --key-dist=SPEC          uniform (default) or zipf:<theta>, e.g. zipf:0.99\n"
      "  -v, --value-size=SPEC        fixed:<n>, uniform:<min>-<max> (default 32-128) or\n"
      "                               mixed (<= 4 KiB: 60%% 32-256, 30%% 257-1024, 10%% -4096)\n"
      "  -D, --duration=SECONDS       measured time (default 5)\n"
      "      --warmup=SECONDS         unmeasured time before it (default 1)\n"
      "  -R, --rate=OPS               open loop at this total rate (Poisson arrivals);\n"
      "                               latency counts from the scheduled send time\n"
      "      --max-inflight=N         open loop: cap per connection (default 1024)\n"
      "      --no-preload             do not set every key once before the warm-up\n"
      " churn, shift and fill:\n"
      "  -v, --value-size=SPEC        sizes of phase A (churn, shift: 'before')\n"
      "      --after-size=SPEC        churn, shift: sizes of phase C (default: as -v)\n"
      "      --delete-fraction=F      churn: live keys deleted after phase A (default 0)\n"
      "      --limit-mib=N            the server's memory limit: churn's live target is\n"
      "                               --live-fraction of it (default 0.8) and writes total\n"
      "                               --write-factor times it (default 3); RSS/limit uses it;\n"
      "                               shift writes --write-factor times it per phase, then\n"
      "                               reads phase C back (retained bytes / limit)\n"
      "  -k, --keys=N                 fill: keys written (then all read back)\n"
      "  -c, --connections=N          (default 8)  -d, --pipeline=N (default 32)\n"
      " all:\n"
      "      --no-flush               do not flush the server first\n"
      "      --server-pid=PID         sample the server's VmRSS every --rss-period-ms (50)\n"
      "      --rss-log=FILE           write the RSS samples (seconds,rss_bytes) to FILE\n"
      "      --flush-after=SECONDS    at the end flush, wait, and report the RSS\n"
      "      --label=TEXT             copied into the JSON line\n"
      "      --seed=N                 randomness and the values' nonce (default 1)\n"
      "      --io=NAME                uring (default: one system call per round of replies;\n"
      "                               epoll if the kernel refuses io_uring) or epoll\n"
      "  -h, --help\n");
}

struct Flags {
  std::string server = "127.0.0.1:11211";
  Protocol protocol = Protocol::kMemcache;
  IoMode io = IoMode::kUring;
  std::string workload = "mixed";
  int threads = 1;
  int connections = -1;
  long pipeline = -1;
  double get_fraction = 0.9;
  uint64_t keys = 100000;
  std::string key_dist = "uniform";
  std::string value_size = "uniform:32-128";
  std::string after_size;
  double delete_fraction = 0;
  double limit_mib = 0;
  double live_fraction = 0.8;
  double write_factor = 3;
  double duration = 5, warmup = 1, rate = 0;
  uint32_t max_inflight = 1024;
  bool preload = true, flush = true;
  long server_pid = 0;
  int rss_period_ms = 50;
  std::string rss_log;
  double flush_after = -1;
  std::string label;
  uint64_t seed = 1;
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "cinch_load: %s\ntry 'cinch_load -h' for help\n", message.c_str());
  std::exit(kExitUsage);
}

double ToDouble(const char* name, const char* s, double min, double max) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)) {
    Die(std::string("invalid --") + name + " '" + s + "'");
  }
  return v;
}

double ParseRatio(const char* s) {
  std::string_view v(s);
  size_t colon = v.find(':');
  double get = 0, set = 0;
  if (colon == std::string_view::npos) Die("invalid --ratio (GET:SET, e.g. 90:10)");
  get = ToDouble("ratio", std::string(v.substr(0, colon)).c_str(), 0, 1e9);
  set = ToDouble("ratio", std::string(v.substr(colon + 1)).c_str(), 0, 1e9);
  if (get + set <= 0) Die("invalid --ratio: both parts are 0");
  return get / (get + set);
}

Flags ParseFlags(int argc, char** argv) {
  enum {
    kWarmup = 256, kMaxInflight, kNoPreload, kAfterSize, kDeleteFraction, kLimitMib,
    kLiveFraction, kWriteFactor, kNoFlush, kServerPid, kRssLog, kRssPeriod, kFlushAfter,
    kLabel, kSeed, kIo,
  };
  static const option kLong[] = {
      {"server", required_argument, nullptr, 's'},
      {"protocol", required_argument, nullptr, 'P'},
      {"workload", required_argument, nullptr, 'w'},
      {"threads", required_argument, nullptr, 't'},
      {"connections", required_argument, nullptr, 'c'},
      {"pipeline", required_argument, nullptr, 'd'},
      {"ratio", required_argument, nullptr, 'r'},
      {"keys", required_argument, nullptr, 'k'},
      {"key-dist", required_argument, nullptr, 'K'},
      {"value-size", required_argument, nullptr, 'v'},
      {"duration", required_argument, nullptr, 'D'},
      {"rate", required_argument, nullptr, 'R'},
      {"warmup", required_argument, nullptr, kWarmup},
      {"max-inflight", required_argument, nullptr, kMaxInflight},
      {"no-preload", no_argument, nullptr, kNoPreload},
      {"after-size", required_argument, nullptr, kAfterSize},
      {"delete-fraction", required_argument, nullptr, kDeleteFraction},
      {"limit-mib", required_argument, nullptr, kLimitMib},
      {"live-fraction", required_argument, nullptr, kLiveFraction},
      {"write-factor", required_argument, nullptr, kWriteFactor},
      {"no-flush", no_argument, nullptr, kNoFlush},
      {"server-pid", required_argument, nullptr, kServerPid},
      {"rss-log", required_argument, nullptr, kRssLog},
      {"rss-period-ms", required_argument, nullptr, kRssPeriod},
      {"flush-after", required_argument, nullptr, kFlushAfter},
      {"label", required_argument, nullptr, kLabel},
      {"seed", required_argument, nullptr, kSeed},
      {"io", required_argument, nullptr, kIo},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  Flags f;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":s:P:w:t:c:d:r:k:K:v:D:R:h", kLong, nullptr)) != -1) {
    const char* a = optarg;
    switch (c) {
      case 's': f.server = a; break;
      case 'P':
        if (std::strcmp(a, "memcache") == 0) {
          f.protocol = Protocol::kMemcache;
        } else if (std::strcmp(a, "memcache-binary") == 0) {
          f.protocol = Protocol::kMemcacheBinary;
        } else if (std::strcmp(a, "resp") == 0) {
          f.protocol = Protocol::kResp;
        } else {
          Die("--protocol must be memcache, memcache-binary or resp");
        }
        break;
      case 'w': f.workload = a; break;
      case 't': f.threads = static_cast<int>(ToDouble("threads", a, 1, 256)); break;
      case 'c': f.connections = static_cast<int>(ToDouble("connections", a, 1, 65536)); break;
      case 'd': f.pipeline = static_cast<long>(ToDouble("pipeline", a, 1, 65536)); break;
      case 'r': f.get_fraction = ParseRatio(a); break;
      case 'k': f.keys = static_cast<uint64_t>(ToDouble("keys", a, 1, 4e9)); break;
      case 'K': f.key_dist = a; break;
      case 'v': f.value_size = a; break;
      case 'D': f.duration = ToDouble("duration", a, 0.001, 86400); break;
      case 'R': f.rate = ToDouble("rate", a, 0, 1e9); break;
      case kWarmup: f.warmup = ToDouble("warmup", a, 0, 86400); break;
      case kMaxInflight:
        f.max_inflight = static_cast<uint32_t>(ToDouble("max-inflight", a, 1, 1 << 20));
        break;
      case kNoPreload: f.preload = false; break;
      case kAfterSize: f.after_size = a; break;
      case kDeleteFraction: f.delete_fraction = ToDouble("delete-fraction", a, 0, 1); break;
      case kLimitMib: f.limit_mib = ToDouble("limit-mib", a, 0, 1 << 24); break;
      case kLiveFraction: f.live_fraction = ToDouble("live-fraction", a, 0.001, 10); break;
      case kWriteFactor: f.write_factor = ToDouble("write-factor", a, 0, 1000); break;
      case kNoFlush: f.flush = false; break;
      case kServerPid: f.server_pid = static_cast<long>(ToDouble("server-pid", a, 1, 1e9)); break;
      case kRssLog: f.rss_log = a; break;
      case kRssPeriod: f.rss_period_ms = static_cast<int>(ToDouble("rss-period-ms", a, 1, 1e5)); break;
      case kFlushAfter: f.flush_after = ToDouble("flush-after", a, 0, 3600); break;
      case kLabel: f.label = a; break;
      case kIo:
        if (std::strcmp(a, "uring") != 0 && std::strcmp(a, "epoll") != 0) {
          Die("--io must be uring or epoll");
        }
        f.io = std::strcmp(a, "epoll") == 0 ? IoMode::kEpoll : IoMode::kUring;
        break;
      case kSeed: f.seed = static_cast<uint64_t>(ToDouble("seed", a, 0, 1e18)); break;
      case 'h': Usage(stdout); std::exit(0);
      case ':': Die(std::string("option needs a value: ") + argv[optind - 1]);
      default: Die(std::string("unknown option: ") + argv[optind - 1]);
    }
  }
  if (optind < argc) Die(std::string("unexpected argument: ") + argv[optind]);
  if (f.workload != "mixed" && f.workload != "churn" && f.workload != "fill" &&
      f.workload != "shift") {
    Die("--workload must be mixed, churn, fill or shift");
  }
  if ((f.workload == "churn" || f.workload == "shift") && f.limit_mib <= 0) {
    Die(f.workload + " needs --limit-mib");
  }
  if (f.keys > 0xfffffff0ULL) Die("--keys must be below 2^32 - 16");
  return f;
}

sockaddr_in Resolve(const std::string& server) {
  size_t colon = server.rfind(':');
  if (colon == std::string::npos) Die("--server must be HOST:PORT");
  std::string host = server.substr(0, colon), port = server.substr(colon + 1);
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    Die("cannot resolve " + server);
  }
  sockaddr_in a = *reinterpret_cast<sockaddr_in*>(res->ai_addr);
  freeaddrinfo(res);
  return a;
}

// Sends one flush and waits for its reply. Returns "" or an error message.
std::string FlushServer(const sockaddr_in& address, Protocol protocol) {
  ConnectionSet set;
  std::string e = set.Open(address, protocol, 1, 1, 0);
  if (!e.empty()) return e;
  set[0].QueueFlush(NowNs());
  bool ok = false;
  uint64_t deadline = NowNs() + 10000000000ULL;
  while (e.empty() && set.Inflight() > 0 && NowNs() < deadline) {
    e = set.SendAll();
    if (e.empty()) {
      e = set.Poll(10000000, [&ok](const Pending&, const Reply& r, uint64_t) {
        ok = r.outcome == Outcome::kOk;
        return true;
      });
    }
  }
  if (e.empty() && !ok) e = "flush failed or timed out";
  return e;
}

const char* IoName(IoMode m) { return m == IoMode::kUring ? "uring" : "epoll"; }

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kResp:
      return "resp";
    case Protocol::kMemcacheBinary:
      return "memcache-binary";
    default:
      return "memcache";
  }
}

// "key":{"p50":..,"p99":..,"p999":..,"max":..,"mean":..} in microseconds.
std::string LatencyJson(const char* key, const Histogram& h) {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "\"%s\":{\"count\":%llu,\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,"
                "\"mean\":%.1f}",
                key, static_cast<unsigned long long>(h.count()), h.Percentile(0.5) / 1e3,
                h.Percentile(0.99) / 1e3, h.Percentile(0.999) / 1e3, h.max() / 1e3,
                h.Mean() / 1e3);
  return buf;
}

std::string Field(const char* key, double v) {
  char buf[96];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "\"%s\":%.0f", key, v);
  } else {
    std::snprintf(buf, sizeof(buf), "\"%s\":%.6g", key, v);
  }
  return buf;
}

std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) out += ch;
  }
  return out + "\"";
}

struct Report {
  std::string json;   // fields without braces
  std::string human;
  uint64_t wrong = 0;
  std::string error;
};

void Add(Report* r, const std::string& field) {
  if (!r->json.empty()) r->json += ",";
  r->json += field;
}

Report RunMixedReport(const Flags& f, const sockaddr_in& address) {
  MixedOptions o;
  o.protocol = f.protocol;
  o.io = f.io;
  o.address = address;
  o.threads = f.threads;
  o.connections = f.connections > 0 ? f.connections : 16;
  o.pipeline = static_cast<uint32_t>(f.pipeline > 0 ? f.pipeline : 1);
  o.max_inflight = f.max_inflight;
  o.get_fraction = f.get_fraction;
  o.rate = f.rate;
  o.warmup_s = f.warmup;
  o.duration_s = f.duration;
  o.preload = f.preload;
  o.nonce = static_cast<uint32_t>(Mix64(f.seed));
  std::string e = KeyDistribution::Parse(f.key_dist, static_cast<uint32_t>(f.keys), &o.keys);
  if (e.empty()) e = SizeDistribution::Parse(f.value_size, &o.sizes);
  if (!e.empty()) Die(e);
  MixedResult m = RunMixed(o);
  const Counters& c = m.counters;
  Report r;
  r.error = m.error;
  r.wrong = c.wrong;
  double ops = static_cast<double>(c.gets + c.sets) / m.seconds;
  Add(&r, "\"io\":" + Quoted(IoName(m.io)));
  Add(&r, "\"mode\":" + Quoted(o.rate > 0 ? "open" : "closed"));
  Add(&r, Field("threads", o.threads));
  Add(&r, Field("connections", o.connections));
  Add(&r, Field("pipeline", o.pipeline));
  Add(&r, Field("get_fraction", o.get_fraction));
  Add(&r, Field("rate", o.rate));
  Add(&r, "\"key_dist\":" + Quoted(o.keys.Describe()));
  Add(&r, Field("keys", o.keys.count()));
  Add(&r, "\"value_size\":" + Quoted(o.sizes.Describe()));
  Add(&r, Field("seconds", m.seconds));
  Add(&r, Field("ops_per_s", std::round(ops)));
  Add(&r, Field("gets", c.gets));
  Add(&r, Field("hits", c.hits));
  Add(&r, Field("misses", c.misses));
  Add(&r, Field("hit_ratio", c.gets ? static_cast<double>(c.hits) / c.gets : 0));
  Add(&r, Field("sets", c.sets));
  Add(&r, Field("not_stored", c.not_stored));
  Add(&r, Field("wrong", c.wrong));
  Add(&r, Field("errors", c.errors));
  Add(&r, Field("late", c.late));
  Add(&r, Field("sets_as_gets", c.sets_as_gets));
  Add(&r, Field("preload_keys", m.preload_keys));
  Add(&r, Field("preload_stored", m.preload_stored));
  Add(&r, Field("preload_bytes", m.preload_bytes));
  Add(&r, Field("preload_s", m.preload_seconds));
  Add(&r, LatencyJson("lat_us", m.all));
  Add(&r, LatencyJson("get_us", m.get));
  Add(&r, LatencyJson("set_us", m.set));
  char human[512];
  std::snprintf(human, sizeof(human),
                "%.0f ops/s (%s, %d conns, depth %u), latency us p50 %.1f p99 %.1f p99.9 %.1f "
                "max %.1f; hits %.2f %%, not stored %llu, wrong %llu, errors %llu, late %llu",
                ops, o.rate > 0 ? "open loop" : "closed loop", o.connections, o.pipeline,
                m.all.Percentile(0.5) / 1e3, m.all.Percentile(0.99) / 1e3,
                m.all.Percentile(0.999) / 1e3, m.all.max() / 1e3,
                c.gets ? 100.0 * c.hits / c.gets : 0.0,
                static_cast<unsigned long long>(c.not_stored),
                static_cast<unsigned long long>(c.wrong), static_cast<unsigned long long>(c.errors),
                static_cast<unsigned long long>(c.late));
  r.human = human;
  return r;
}

Report RunChurnReport(const Flags& f, const sockaddr_in& address) {
  ChurnOptions o;
  o.protocol = f.protocol;
  o.io = f.io;
  o.address = address;
  o.connections = f.connections > 0 ? f.connections : 8;
  o.pipeline = static_cast<uint32_t>(f.pipeline > 0 ? f.pipeline : 32);
  o.delete_fraction = f.delete_fraction;
  o.limit_bytes = static_cast<uint64_t>(f.limit_mib * 1048576.0);
  o.live_fraction = f.live_fraction;
  o.write_factor = f.write_factor;
  o.fill_keys = f.workload == "fill" ? f.keys : 0;
  o.shift = f.workload == "shift";
  o.nonce = static_cast<uint32_t>(Mix64(f.seed));
  o.seed = f.seed;
  std::string e = SizeDistribution::Parse(f.value_size, &o.before);
  if (e.empty()) {
    e = SizeDistribution::Parse(f.after_size.empty() ? f.value_size : f.after_size, &o.after);
  }
  if (!e.empty()) Die(e);
  ChurnResult c = RunChurn(o);
  Report r;
  r.error = c.error;
  r.wrong = c.wrong;
  uint64_t live_checked = c.kept + c.missing + (c.wrong - c.deleted_present);
  double kept = live_checked ? static_cast<double>(c.kept) / live_checked : 0;
  Add(&r, "\"io\":" + Quoted(IoName(c.io)));
  Add(&r, "\"before\":" + Quoted(o.before.Describe()));
  Add(&r, "\"after\":" + Quoted(o.after.Describe()));
  Add(&r, Field("delete_fraction", o.delete_fraction));
  Add(&r, Field("keys_written", c.keys_written));
  Add(&r, Field("live_keys", c.live_keys));
  Add(&r, Field("live_bytes", c.live_bytes));
  Add(&r, Field("kept", c.kept));
  Add(&r, Field("missing", c.missing));
  Add(&r, Field("kept_fraction", kept));
  Add(&r, Field("wrong", c.wrong));
  Add(&r, Field("deleted_present", c.deleted_present));
  Add(&r, Field("not_stored", c.not_stored));
  Add(&r, Field("errors", c.errors));
  Add(&r, Field("sets", c.sets));
  Add(&r, Field("deletes", c.deletes));
  Add(&r, Field("bytes_written", c.bytes_written));
  if (o.shift) {
    Add(&r, Field("retained_bytes", c.retained_bytes));
    Add(&r, Field("retained_over_limit",
                  static_cast<double>(c.retained_bytes) / static_cast<double>(o.limit_bytes)));
  }
  Add(&r, Field("seconds_a", c.seconds_a));
  Add(&r, Field("seconds_b", c.seconds_b));
  Add(&r, Field("seconds_c", c.seconds_c));
  Add(&r, Field("seconds_verify", c.seconds_verify));
  char human[512];
  std::snprintf(human, sizeof(human),
                "live %llu keys (%.1f MiB): kept %.2f %%, missing %llu, wrong %llu; %llu sets "
                "(%llu not stored), %llu deletes in %.1f s",
                static_cast<unsigned long long>(c.live_keys), c.live_bytes / 1048576.0,
                100 * kept, static_cast<unsigned long long>(c.missing),
                static_cast<unsigned long long>(c.wrong), static_cast<unsigned long long>(c.sets),
                static_cast<unsigned long long>(c.not_stored),
                static_cast<unsigned long long>(c.deletes),
                c.seconds_a + c.seconds_b + c.seconds_c);
  if (o.shift) {
    std::snprintf(human, sizeof(human),
                  "phase C (%s) retained %.1f MiB of key + value = %.1f %% of the limit; "
                  "%llu of %llu phase C keys kept, wrong %llu; %llu sets (%llu not stored) in "
                  "%.1f s",
                  o.after.Describe().c_str(), c.retained_bytes / 1048576.0,
                  100.0 * static_cast<double>(c.retained_bytes) /
                      static_cast<double>(o.limit_bytes),
                  static_cast<unsigned long long>(c.kept),
                  static_cast<unsigned long long>(c.kept + c.missing),
                  static_cast<unsigned long long>(c.wrong),
                  static_cast<unsigned long long>(c.sets),
                  static_cast<unsigned long long>(c.not_stored), c.seconds_a + c.seconds_c);
  }
  r.human = human;
  return r;
}

int Main(int argc, char** argv) {
  Flags f = ParseFlags(argc, argv);
  sockaddr_in address = Resolve(f.server);
  auto pid = static_cast<pid_t>(f.server_pid);
  if (f.flush) {
    std::string e = FlushServer(address, f.protocol);
    if (!e.empty()) {
      std::fprintf(stderr, "cinch_load: flush before the run: %s\n", e.c_str());
      return kExitFailed;
    }
  }
  uint64_t rss_start = pid > 0 ? ReadRss(pid) : 0;
  RssSampler sampler;
  sampler.Start(pid, f.rss_period_ms);
  Report r = f.workload == "mixed" ? RunMixedReport(f, address) : RunChurnReport(f, address);
  sampler.Stop();
  uint64_t rss_end = pid > 0 ? ReadRss(pid) : 0;
  double limit = f.limit_mib * 1048576.0;
  Add(&r, "\"workload\":" + Quoted(f.workload));
  Add(&r, "\"protocol\":" + Quoted(ProtocolName(f.protocol)));
  Add(&r, "\"server\":" + Quoted(f.server));
  if (!f.label.empty()) Add(&r, "\"label\":" + Quoted(f.label));
  if (pid > 0) {
    Add(&r, Field("rss_start", rss_start));
    Add(&r, Field("rss_end", rss_end));
    Add(&r, Field("rss_peak", std::max(sampler.peak(), rss_end)));
    if (limit > 0) Add(&r, Field("rss_peak_over_limit", std::max(sampler.peak(), rss_end) / limit));
    if (!f.rss_log.empty()) {
      std::string e = sampler.WriteCsv(f.rss_log);
      if (!e.empty()) std::fprintf(stderr, "cinch_load: %s\n", e.c_str());
    }
  }
  if (limit > 0) Add(&r, Field("limit_bytes", limit));
  if (f.flush_after >= 0 && r.error.empty()) {
    std::string e = FlushServer(address, f.protocol);
    if (!e.empty()) r.error = "flush after the run: " + e;
    std::this_thread::sleep_for(std::chrono::duration<double>(f.flush_after));
    if (pid > 0) Add(&r, Field("rss_after_flush", ReadRss(pid)));
  }
  Add(&r, "\"error\":" + Quoted(r.error));
  std::printf("{%s}\n", r.json.c_str());
  std::printf("cinch_load %s %s %s%s%s: %s%s\n", f.workload.c_str(), ProtocolName(f.protocol),
              f.server.c_str(), f.label.empty() ? "" : " ", f.label.c_str(), r.human.c_str(),
              r.error.empty() ? "" : (" ERROR: " + r.error).c_str());
  std::fflush(stdout);
  if (!r.error.empty()) {
    std::fprintf(stderr, "cinch_load: %s\n", r.error.c_str());
    return kExitFailed;
  }
  return r.wrong > 0 ? kExitWrong : 0;
}

}  // namespace
}  // namespace cinch::load

int main(int argc, char** argv) { return cinch::load::Main(argc, argv); }
