// cinchd: a memcached-compatible cache server on the cinch engine.
// Flag parsing and main() only; everything else is src/server.
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "common/version.h"
#include "server/server.h"

namespace {

constexpr int kUsageError = 64;  // EX_USAGE
constexpr long long kMaxMemoryMib = 1LL << 20;  // 1 TiB: the store's 40-bit item locations

void Usage(FILE* f) {
  std::fprintf(f, "cinchd %s: a memcached-compatible cache that holds -m as a hard limit\n",
               cinch::kCinchVersion.data());
  std::fprintf(
      f,
      "usage: cinchd [options]\n"
      "  -p, --port=<num>          TCP port to listen on (default 11211; 0 = off)\n"
      "  -l, --listen=<addr>       interface to listen on (default 127.0.0.1)\n"
      "  -s, --unix-socket=<file>  UNIX socket to listen on\n"
      "  -a, --unix-mask=<mask>    access mask for the UNIX socket, octal (default 700)\n"
      "  -U, --udp-port=<num>      accepted for compatibility; UDP is NOT supported\n"
      "  -m, --memory-limit=<MiB>  hard limit on the process's resident memory (64; 1 .. 1048576)\n"
      "  -M, --disable-evictions   return an error when memory is full\n"
      "  -c, --conn-limit=<num>    max simultaneous connections (default 1024)\n"
      "  -t, --threads=<num>       worker threads (default: number of cores)\n"
      "  -I, --max-item-size=<sz>  largest item, e.g. 1m, 64m, 512k (default 1m)\n"
      "  -C, --disable-cas         disable compare-and-swap\n"
      "  -F, --disable-flush-all   disable flush_all\n"
      "  -u, --user=<name>         accepted for compatibility; ignored\n"
      "  -v, --verbose             verbose (repeat for more)\n"
      "  -V, --version             print version and exit\n"
      "  -h, --help                print this help and exit\n"
      "  -o, --extended=<k=v,...>  cinch settings:\n"
      "        segment_size=<sz>        log segment size (default 1m)\n"
      "        debugtime=1              enable the 'debugtime p|r|<seconds>' test command\n"
      "        cleaner_interval_ms=<n>  background cleaner period (default 100)\n"
      "        space_wait_ms=<n>        longest a write waits for memory (default 100)\n"
      "        compact_max_live=<pct>   compact segments at most this %% live (default 95)\n"
      "        zero_copy_min=<sz>       values this large are sent without a copy\n"
      "        io_uring=0|1             workers use io_uring, not epoll (default 1 where\n"
      "                                 the kernel allows it)\n"
      "        process_reserve=<sz>     memory kept for the process itself (0 = measure)\n"
      "        conn_memory=<sz>         memory for connections (default: 3.6k per -c\n"
      "                                 connection + 1/16 of -m, 2m..1g, for buffers)\n");
}

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "cinchd: %s\n", message.c_str());
  std::fprintf(stderr, "try 'cinchd -h' for help\n");
  std::exit(kUsageError);
}

bool ParseInt(std::string_view s, long long min, long long max, long long* out) {
  std::string str(s);
  if (str.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(str.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

// "1048576", "1024k", "1m", "1g" -> bytes.
bool ParseSize(std::string_view s, size_t* out) {
  if (s.empty()) return false;
  size_t unit = 1;
  char last = static_cast<char>(std::tolower(static_cast<unsigned char>(s.back())));
  if (last == 'k' || last == 'm' || last == 'g') {
    unit = last == 'k' ? 1024 : last == 'm' ? 1024 * 1024 : size_t{1} << 30;
    s.remove_suffix(1);
  }
  long long v = 0;
  if (!ParseInt(s, 1, 1LL << 40, &v)) return false;
  *out = static_cast<size_t>(v) * unit;
  return true;
}

void ParseExtended(std::string_view list, cinch::server::ServerOptions* o) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "1" : item.substr(eq + 1);
    size_t size = 0;
    long long n = 0;
    if (key == "segment_size" && ParseSize(value, &size)) {
      o->store.segment_size = size;
    } else if (key == "debugtime" && ParseInt(value, 0, 1, &n)) {
      o->debugtime_enabled = n == 1;
    } else if (key == "cleaner_interval_ms" && ParseInt(value, 1, 60000, &n)) {
      o->store.cleaner_interval_ms = static_cast<uint32_t>(n);
    } else if (key == "compact_max_live" && ParseInt(value, 1, 99, &n)) {
      o->store.compact_max_live = static_cast<double>(n) / 100;
    } else if (key == "space_wait_ms" && ParseInt(value, 0, 60000, &n)) {
      o->store.space_wait_ms = static_cast<uint32_t>(n);
    } else if (key == "zero_copy_min" && ParseSize(value, &size)) {
      o->zero_copy_min = size;
    } else if (key == "io_uring" && ParseInt(value, 0, 1, &n)) {
      o->loop.io_uring = n == 1;
    } else if (key == "process_reserve" && ParseSize(value, &size)) {
      o->process_reserve = size;
    } else if (key == "conn_memory" && ParseSize(value, &size)) {
      o->connection_memory = size;
    } else {
      Fail("invalid -o setting '" + std::string(item) + "'");
    }
  }
}

cinch::server::ServerOptions ParseFlags(int argc, char** argv) {
  cinch::server::ServerOptions o;
  unsigned cores = std::thread::hardware_concurrency();
  o.loop.threads = cores == 0 ? 4 : static_cast<int>(cores);
  static const option kLong[] = {
      {"port", required_argument, nullptr, 'p'},
      {"listen", required_argument, nullptr, 'l'},
      {"unix-socket", required_argument, nullptr, 's'},
      {"unix-mask", required_argument, nullptr, 'a'},
      {"udp-port", required_argument, nullptr, 'U'},
      {"memory-limit", required_argument, nullptr, 'm'},
      {"disable-evictions", no_argument, nullptr, 'M'},
      {"conn-limit", required_argument, nullptr, 'c'},
      {"threads", required_argument, nullptr, 't'},
      {"max-item-size", required_argument, nullptr, 'I'},
      {"disable-cas", no_argument, nullptr, 'C'},
      {"disable-flush-all", no_argument, nullptr, 'F'},
      {"user", required_argument, nullptr, 'u'},
      {"verbose", no_argument, nullptr, 'v'},
      {"version", no_argument, nullptr, 'V'},
      {"help", no_argument, nullptr, 'h'},
      {"extended", required_argument, nullptr, 'o'},
      {nullptr, 0, nullptr, 0},
  };
  long long n = 0;
  size_t size = 0;
  long long memory_mib = 64;
  bool item_size_given = false;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":p:l:s:a:U:m:Mc:t:I:CFu:vVho:", kLong, nullptr)) != -1) {
    std::string arg = optarg != nullptr ? optarg : "";
    switch (c) {
      case 'p':
        if (!ParseInt(arg, 0, 65535, &n)) Fail("invalid port '" + arg + "'");
        o.loop.port = static_cast<int>(n);
        break;
      case 'l':
        o.loop.listen_address = arg;
        break;
      case 's':
        o.loop.unix_socket = arg;
        break;
      case 'a':
        n = std::strtol(arg.c_str(), nullptr, 8);
        o.loop.unix_mask = static_cast<int>(n);
        break;
      case 'U':
        if (!ParseInt(arg, 0, 65535, &n)) Fail("invalid UDP port '" + arg + "'");
        if (n != 0)
          std::fprintf(stderr, "cinchd: UDP is not supported; -U %s ignored\n", arg.c_str());
        break;
      case 'm':
        if (!ParseInt(arg, 1, kMaxMemoryMib, &memory_mib)) {
          Fail("invalid memory limit '" + arg + "' (1 .. 1048576 MiB: 1 TiB)");
        }
        break;
      case 'M':
        o.store.eviction = false;
        break;
      case 'c':
        if (!ParseInt(arg, 1, 1 << 20, &n)) Fail("invalid connection limit '" + arg + "'");
        o.loop.max_connections = static_cast<int>(n);
        break;
      case 't':
        if (!ParseInt(arg, 1, 256, &n)) Fail("invalid thread count '" + arg + "'");
        o.loop.threads = static_cast<int>(n);
        break;
      case 'I':
        if (!ParseSize(arg, &size) || size < 1024 || size > (size_t{1} << 30)) {
          Fail("invalid max item size '" + arg + "' (1k .. 1g)");
        }
        o.store.max_item_size = size;
        item_size_given = true;
        break;
      case 'C':
        o.cas_enabled = false;
        break;
      case 'F':
        o.flush_enabled = false;
        break;
      case 'u':
        break;
      case 'v':
        ++o.verbosity;
        break;
      case 'V':
        std::printf("cinchd %s (memcached %s compatible)\n", cinch::kCinchVersion.data(),
                    cinch::kMemcachedVersion.data());
        std::exit(0);
      case 'h':
        Usage(stdout);
        std::exit(0);
      case 'o':
        ParseExtended(arg, &o);
        break;
      case ':':
        Fail(std::string("option '") + argv[optind - 1] + "' requires an argument");
      default:
        Fail(std::string("unknown option '") + argv[optind - 1] + "'");
    }
  }
  if (optind < argc) Fail(std::string("unexpected argument '") + argv[optind] + "'");
  o.memory_limit = static_cast<size_t>(memory_mib) << 20;
  if (o.store.max_item_size > o.memory_limit / 2) {
    if (item_size_given) Fail("max item size (-I) cannot exceed half of the memory limit (-m)");
    o.store.max_item_size = o.memory_limit / 2;  // -m 1: memcached refuses its own default
    std::fprintf(stderr,
                 "cinchd: warning: -m %lld lowers the default item size limit (-I) to %zu KiB\n",
                 memory_mib, o.store.max_item_size >> 10);
  }
  o.loop.read_buffer_max = o.store.max_item_size + 4096;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  // No transparent huge pages for this process (heap, thread stacks, buffers), before anything is
  // mapped: a page touched must cost one page of -m, not 2 MiB (docs/memory-accounting.md).
  prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  cinch::server::ServerOptions options = ParseFlags(argc, argv);
  // Signals are taken synchronously by this thread; workers never see them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  cinch::server::Server server(options);
  cinch::Status s = server.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "cinchd: %s\n", s.ToString().c_str());
    return 1;
  }
  if (options.verbosity > 0) {
    std::fprintf(stderr, "cinchd: listening on %s:%d, -m %zu MiB, %d threads\n",
                 options.loop.listen_address.c_str(), server.port(), options.memory_limit >> 20,
                 options.loop.threads);
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  server.Stop();
  server.Wait();
  return 0;
}
