#include "cinchd_flags.h"

#include <getopt.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/version.h"
#include "net/listener.h"

namespace cinch::tools {

namespace {

// What cinchd does with a memcached flag or -o key.
enum class Fate {
  kHonoured,  // applied
  kIgnored,   // no meaning for cinch: accepted with a one-line warning saying why
  kRefused,   // ignoring it would be unsafe (the user asked for security cinch lacks): an error
};

struct ParseState {
  CommandLine* out;
  bool listen_given = false;  // the first -l replaces the default address
  long long memory_mib = 64;
  bool item_size_given = false;  // -I: not lowered to fit a small -m
};

constexpr long long kMaxMemoryMib = 1LL << 20;  // 1 TiB: the store's 40-bit item locations

using Apply = Status (*)(std::string_view value, ParseState* st);

// One line per warning, whatever line breaks the help text has.
void Warn(ParseState* st, std::string line) {
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::vector<std::string>& w = st->out->warnings;
  if (std::find(w.begin(), w.end(), line) == w.end()) w.push_back(std::move(line));
}

enum class Arg { kNone, kRequired, kOptional };

// Flags of cinch's own that memcached has no letter for are long options only: their `name` is
// one of these codes (below ' ', so no short option), unique among the flags.
constexpr char kLongOnlyHttpPort = 1;
constexpr char kLongOnlyGrpcPort = 2;

bool LongOnly(char name) { return name < ' '; }

struct Flag {
  char name;
  const char* long_name;
  Arg arg;
  const char* arg_name;  // as -h shows it
  Fate fate;
  const char* help;  // honoured: what it does; ignored or refused: why
  Apply apply;       // honoured flags only
};

struct ExtendedKey {
  const char* key;
  const char* value_name;  // as -h shows it; nullptr for a switch
  Fate fate;
  const char* help;
  Apply apply;  // honoured keys only
};

// ----------------------------------------------------------------------------- value parsing

Status Invalid(std::string_view what, std::string_view value, std::string_view expected = "") {
  std::string m = "invalid " + std::string(what) + " '" + std::string(value) + "'";
  if (!expected.empty()) m += " (" + std::string(expected) + ")";
  return Status::InvalidArgument(m);
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

// -m: megabytes, as memcached reads it ("64"; memcached's atoi also takes "64m"), or "2g".
bool ParseMegabytes(std::string_view s, long long* mib) {
  long long scale = 1;
  if (!s.empty() && (s.back() == 'm' || s.back() == 'M')) {
    s.remove_suffix(1);
  } else if (!s.empty() && (s.back() == 'g' || s.back() == 'G')) {
    s.remove_suffix(1);
    scale = 1024;
  }
  long long v = 0;
  if (!ParseInt(s, 1, (1LL << 30) / scale, &v)) return false;
  *mib = v * scale;
  return true;
}

template <typename T>
Status SetInt(std::string_view value, std::string_view what, long long min, long long max,
              T* field) {
  long long n = 0;
  if (!ParseInt(value, min, max, &n)) {
    return Invalid(what, value, std::to_string(min) + " .. " + std::to_string(max));
  }
  *field = static_cast<T>(n);
  return Status::Ok();
}

server::ServerOptions& Options(ParseState* st) { return st->out->server; }

// ----------------------------------------------------------------------------- flags

Status ApplyGrpcPort(std::string_view v, ParseState* st) {
  return SetInt(v, "grpc port", 0, 65535, &Options(st).grpc_port);
}

Status ApplyPort(std::string_view v, ParseState* st) {
  return SetInt(v, "port", -1, 65535, &Options(st).loop.port);
}

Status ApplyHttpPort(std::string_view v, ParseState* st) {
  return SetInt(v, "http_port", -1, 65535, &Options(st).http_port);
}

Status ApplyListen(std::string_view v, ParseState* st) {
  std::vector<std::string>& listen = Options(st).loop.listen;
  if (!st->listen_given) listen.clear();
  st->listen_given = true;
  for (std::string& spec : net::SplitListenList(v)) {
    net::ListenAddress parsed;
    Status s = net::ParseListenAddress(spec, 0, &parsed);  // checked now, bound at start
    if (!s.ok()) return s;
    if (std::find(listen.begin(), listen.end(), spec) == listen.end()) {
      listen.push_back(std::move(spec));
    }
  }
  return Status::Ok();
}

Status ApplyUnixSocket(std::string_view v, ParseState* st) {
  if (v.empty()) return Invalid("unix socket path", v);
  Options(st).loop.unix_socket = std::string(v);
  return Status::Ok();
}

Status ApplyUnixMask(std::string_view v, ParseState* st) {
  std::string s(v);
  char* end = nullptr;
  long mask = std::strtol(s.c_str(), &end, 8);
  if (s.empty() || *end != '\0' || mask < 0 || mask > 0777) {
    return Invalid("unix socket mask", v, "octal, e.g. 700");
  }
  Options(st).loop.unix_mask = static_cast<int>(mask);
  return Status::Ok();
}

Status ApplyUdpPort(std::string_view v, ParseState* st) {
  long long port = 0;
  if (!ParseInt(v, 0, 65535, &port)) return Invalid("UDP port", v);
  if (port != 0) Warn(st, "-U " + std::string(v) + " ignored: UDP is not supported");
  return Status::Ok();
}

Status ApplyMemory(std::string_view v, ParseState* st) {
  if (!ParseMegabytes(v, &st->memory_mib) || st->memory_mib > kMaxMemoryMib) {
    return Invalid("memory limit", v, "megabytes: 64, 64m or 2g; 1 .. 1048576 (1 TiB)");
  }
  return Status::Ok();
}

Status ApplyNoEvictions(std::string_view, ParseState* st) {
  Options(st).store.eviction = false;
  return Status::Ok();
}

Status ApplyConnections(std::string_view v, ParseState* st) {
  return SetInt(v, "connection limit", 1, 1 << 20, &Options(st).loop.max_connections);
}

Status ApplyThreads(std::string_view v, ParseState* st) {
  return SetInt(v, "thread count", 1, 256, &Options(st).loop.threads);
}

Status ApplyBacklog(std::string_view v, ParseState* st) {
  return SetInt(v, "listen backlog", 1, 1 << 20, &Options(st).loop.backlog);
}

Status ApplyMaxItemSize(std::string_view v, ParseState* st) {
  size_t size = 0;
  if (!ParseSize(v, &size) || size < 1024 || size > (size_t{1} << 30)) {
    return Invalid("max item size", v, "1k .. 1g");
  }
  Options(st).store.max_item_size = size;
  st->item_size_given = true;
  return Status::Ok();
}

Status ApplyNoCas(std::string_view, ParseState* st) {
  Options(st).cas_enabled = false;
  return Status::Ok();
}

Status ApplyNoFlush(std::string_view, ParseState* st) {
  Options(st).flush_enabled = false;
  return Status::Ok();
}

Status ApplyProtocol(std::string_view v, ParseState* st) {
  using P = server::ServerOptions::Protocol;
  if (v == "auto") {
    Options(st).protocol = P::kAuto;
  } else if (v == "ascii") {
    Options(st).protocol = P::kAscii;
  } else if (v == "binary") {
    Options(st).protocol = P::kBinary;
  } else {
    return Invalid("protocol", v, "one of auto, binary or ascii");
  }
  return Status::Ok();
}

Status ApplyDaemon(std::string_view, ParseState* st) {
  st->out->daemonize = true;
  return Status::Ok();
}

Status ApplyPidFile(std::string_view v, ParseState* st) {
  st->out->pid_file = std::string(v);
  return Status::Ok();
}

Status ApplyMemoryFile(std::string_view v, ParseState* st) {
  if (v.empty()) return Status::InvalidArgument("-e needs a file name");
  Options(st).memory_file = std::string(v);
  return Status::Ok();
}

Status ApplyAuthFile(std::string_view v, ParseState* st) {
  if (v.empty()) return Status::InvalidArgument("-Y needs a file name");
  Options(st).auth_file = std::string(v);
  return Status::Ok();
}

Status ApplySasl(std::string_view, ParseState* st) {
  Options(st).require_sasl = true;
  return Status::Ok();
}

Status ApplyUser(std::string_view v, ParseState* st) {
  st->out->user = std::string(v);
  return Status::Ok();
}

Status ApplyCoreDumps(std::string_view, ParseState* st) {
  st->out->core_dumps = true;
  return Status::Ok();
}

Status ApplyVerbose(std::string_view, ParseState* st) {
  ++Options(st).verbosity;
  return Status::Ok();
}

Status ApplyVersion(std::string_view, ParseState* st) {
  st->out->print_version = true;
  return Status::Ok();
}

Status ApplyHelp(std::string_view, ParseState* st) {
  st->out->print_help = true;
  return Status::Ok();
}

Status ApplyLicense(std::string_view, ParseState* st) {
  st->out->print_license = true;
  return Status::Ok();
}

// -o ext_path=PATH:SIZE[:BUCKET], memcached's extstore syntax: SIZE is a whole number with a
// unit, k, m, g, t (memcached's own m, g, t and p; p is beyond the 1 TiB cinch can address),
// in any case. memcached accepts only its default bucket, and so does cinch.
Status ApplyExtPath(std::string_view v, ParseState* st) {
  const std::string_view usage = "ext_path=PATH:SIZE, e.g. ext_path=/var/tmp/cinch:2g";
  const size_t colon = v.find(':');
  if (colon == 0 || colon == std::string_view::npos) return Invalid("-o ext_path", v, usage);
  TierFile file;
  file.path = std::string(v.substr(0, colon));
  std::string_view size = v.substr(colon + 1);
  const size_t bucket = size.find(':');
  if (bucket != std::string_view::npos) {
    return Status::InvalidArgument("-o ext_path=" + std::string(v) +
                                   ": only the default bucket is supported (as in memcached)");
  }
  if (size.size() < 2) return Invalid("-o ext_path size", size, "a number and k, m, g or t");
  const char unit = static_cast<char>(std::tolower(static_cast<unsigned char>(size.back())));
  const int shift = unit == 'k' ? 10 : unit == 'm' ? 20 : unit == 'g' ? 30 : unit == 't' ? 40 : -1;
  long long n = 0;
  if (shift < 0 || !ParseInt(size.substr(0, size.size() - 1), 1, 1LL << 40, &n) ||
      static_cast<unsigned long long>(n) > (1ULL << 40) >> shift) {
    return Invalid("-o ext_path size", size, "a number and k, m, g or t, up to 1t");
  }
  file.size = static_cast<uint64_t>(n) << shift;
  for (const TierFile& f : Options(st).store.tier_files) {
    if (f.path == file.path) return Invalid("-o ext_path", v, "that file is given twice");
  }
  Options(st).store.tier_files.push_back(std::move(file));
  return Status::Ok();
}

Status ApplyNothing(std::string_view, ParseState*) { return Status::Ok(); }

Status ApplyExtended(std::string_view v, ParseState* st);

// Every flag of memcached 1.6.18 (memcached -h), in -h order.
const Flag kFlags[] = {
    {'p', "port", Arg::kRequired, "<num>", Fate::kHonoured,
     "TCP port to listen on (default 11211; 0: no TCP)", ApplyPort},
    {'l', "listen", Arg::kRequired, "<addr>", Fate::kHonoured,
     "interface to listen on (default 127.0.0.1); repeat it or list with ',':\n"
     "127.0.0.1, ::1, [::1]:11311, host:11311, * (every address)",
     ApplyListen},
    {'s', "unix-socket", Arg::kRequired, "<file>", Fate::kHonoured,
     "UNIX socket to listen on (disables TCP, as in memcached)", ApplyUnixSocket},
    {'a', "unix-mask", Arg::kRequired, "<mask>", Fate::kHonoured,
     "access mask for the UNIX socket, in octal (default 700)", ApplyUnixMask},
    {'U', "udp-port", Arg::kRequired, "<num>", Fate::kHonoured,
     "UDP port: 0 (UDP is not supported; others are ignored with a warning)", ApplyUdpPort},
    {'m', "memory-limit", Arg::kRequired, "<num>", Fate::kHonoured,
     "hard limit on the whole process's resident memory, in megabytes\n"
     "(default 64, 1 .. 1048576 = 1 TiB; 64m and 2g also read)",
     ApplyMemory},
    {'M', "disable-evictions", Arg::kNone, nullptr, Fate::kHonoured,
     "return an error on memory exhausted instead of evicting", ApplyNoEvictions},
    {'c', "conn-limit", Arg::kRequired, "<num>", Fate::kHonoured,
     "max simultaneous connections (default 1024); raises the soft limit\n"
     "on open files to fit, or refuses to start if the hard limit is lower",
     ApplyConnections},
    {'t', "threads", Arg::kRequired, "<num>", Fate::kHonoured,
     "worker threads (default: number of cores)", ApplyThreads},
    {'b', "listen-backlog", Arg::kRequired, "<num>", Fate::kHonoured,
     "backlog queue limit (default 1024)", ApplyBacklog},
    {'I', "max-item-size", Arg::kRequired, "<num>", Fate::kHonoured,
     "largest item, e.g. 512k, 1m, 64m (default 1m, min 1k, max 1g)", ApplyMaxItemSize},
    {'C', "disable-cas", Arg::kNone, nullptr, Fate::kHonoured, "disable use of CAS", ApplyNoCas},
    {'F', "disable-flush-all", Arg::kNone, nullptr, Fate::kHonoured, "disable flush_all command",
     ApplyNoFlush},
    {'B', "protocol", Arg::kRequired, "<name>", Fate::kHonoured,
     "auto (default: by the first byte), ascii or binary", ApplyProtocol},
    {'d', "daemon", Arg::kNone, nullptr, Fate::kHonoured,
     "run as a daemon; the command returns once the server listens", ApplyDaemon},
    {'P', "pidfile", Arg::kRequired, "<file>", Fate::kHonoured,
     "save the process id in <file> (removed on a clean exit)", ApplyPidFile},
    {'u', "user", Arg::kRequired, "<user>", Fate::kHonoured,
     "assume identity of <user>; required when started as root", ApplyUser},
    {'r', "enable-coredumps", Arg::kNone, nullptr, Fate::kHonoured, "maximize core file limit",
     ApplyCoreDumps},
    {'v', "verbose", Arg::kOptional, nullptr, Fate::kHonoured,
     "verbose: each refused connection logged (-vv: each connection too)", ApplyVerbose},
    {'V', "version", Arg::kNone, nullptr, Fate::kHonoured, "print version and exit", ApplyVersion},
    {'h', "help", Arg::kNone, nullptr, Fate::kHonoured, "print this help and exit", ApplyHelp},
    {'i', "license", Arg::kNone, nullptr, Fate::kHonoured,
     "print the version and exit (no separate license text)", ApplyLicense},
    {'X', "disable-dumping", Arg::kNone, nullptr, Fate::kHonoured,
     "accepted: cinch has no cachedump or metadump commands", ApplyNothing},
    {'W', "disable-watch", Arg::kNone, nullptr, Fate::kHonoured,
     "accepted: cinch has no watch command", ApplyNothing},
    {'o', "extended", Arg::kRequired, "<k=v,...>", Fate::kHonoured,
     "comma separated list of extended options (below)", ApplyExtended},
    {'k', "lock-memory", Arg::kNone, nullptr, Fate::kIgnored,
     "locked pages could not be given back to the OS, and -m counts on\n"
     "that; to keep cinch out of swap, run it in a cgroup with memory.swap.max=0",
     nullptr},
    {'f', "slab-growth-factor", Arg::kRequired, "<num>", Fate::kIgnored,
     "cinch has no slab classes", nullptr},
    {'n', "slab-min-size", Arg::kRequired, "<bytes>", Fate::kIgnored, "cinch has no slab classes",
     nullptr},
    {'L', "enable-largepages", Arg::kNone, nullptr, Fate::kIgnored,
     "cinch chooses its page sizes itself, to hold -m", nullptr},
    {'D', nullptr, Arg::kRequired, "<char>", Fate::kIgnored, "per-prefix stats are not supported",
     nullptr},
    {'R', "max-reqs-per-event", Arg::kRequired, "<num>", Fate::kIgnored,
     "a connection's turn is bounded by cinch's event loop itself", nullptr},
    {'A', "enable-shutdown", Arg::kNone, nullptr, Fate::kIgnored,
     "the shutdown command is not supported (stop cinchd with SIGTERM)", nullptr},
    {'e', "memory-file", Arg::kRequired, "<file>", Fate::kHonoured,
     "keep the items across restarts in <file>: loaded at start if it is\n"
     "there, written on SIGTERM or SIGUSR1 (docs/restart-format.md)",
     ApplyMemoryFile},
    {'N', "napi-ids", Arg::kRequired, "<num>", Fate::kIgnored,
     "NAPI-based thread selection is not supported", nullptr},
    {'S', "enable-sasl", Arg::kNone, nullptr, Fate::kHonoured,
     "require SASL: accepted with -Y, whose file SASL PLAIN is checked\n"
     "against (no libsasl2; docs/auth.md)",
     ApplySasl},
    {'Y', "auth-file", Arg::kRequired, "<file>", Fate::kHonoured,
     "every connection authenticates first, as user:password of <file>\n"
     "(text: memcached's set; binary: SASL PLAIN); user:password:QUOTA\n"
     "gives a user a keyspace of its own; SIGHUP reloads (docs/auth.md)",
     ApplyAuthFile},
    {'Z', "enable-ssl", Arg::kNone, nullptr, Fate::kRefused, "TLS is not supported", nullptr},
    // cinch's own (long options only).
    {kLongOnlyHttpPort, "http-port", Arg::kRequired, "<num>", Fate::kHonoured,
     "also serve Bazel's HTTP remote cache on this TCP port of every\n"
     "-l address (default 0: off; see docs/http-cache.md)",
     ApplyHttpPort},
    {kLongOnlyGrpcPort, "grpc-port", Arg::kRequired, "<num>", Fate::kHonoured,
     "also serve REAPI v2 (remote cache) and ByteStream over gRPC on this\n"
     "TCP port of every -l address (default 0: off; see docs/grpc-cache.md)",
     ApplyGrpcPort},
};

// ----------------------------------------------------------------------------- -o keys

Status ApplySegmentSize(std::string_view v, ParseState* st) {
  size_t size = 0;
  if (!ParseSize(v, &size)) return Invalid("segment_size", v);
  Options(st).store.segment_size = size;
  return Status::Ok();
}

Status ApplyDebugtime(std::string_view v, ParseState* st) {
  return SetInt(v, "debugtime", 0, 1, &Options(st).debugtime_enabled);
}

Status ApplyCleanerInterval(std::string_view v, ParseState* st) {
  return SetInt(v, "cleaner_interval_ms", 1, 60000, &Options(st).store.cleaner_interval_ms);
}

Status ApplySpaceWait(std::string_view v, ParseState* st) {
  return SetInt(v, "space_wait_ms", 0, 60000, &Options(st).store.space_wait_ms);
}

Status ApplyCompactMaxLive(std::string_view v, ParseState* st) {
  long long pct = 0;
  if (!ParseInt(v, 1, 99, &pct)) return Invalid("compact_max_live", v, "1 .. 99");
  Options(st).store.compact_max_live = static_cast<double>(pct) / 100;
  return Status::Ok();
}

Status ApplyZeroCopyMin(std::string_view v, ParseState* st) {
  if (!ParseSize(v, &Options(st).zero_copy_min)) return Invalid("zero_copy_min", v);
  return Status::Ok();
}

Status ApplyIoUring(std::string_view v, ParseState* st) {
  return SetInt(v, "io_uring", 0, 1, &Options(st).loop.io_uring);
}

Status ApplyAcCheck(std::string_view v, ParseState* st) {
  int on = 0;
  Status s = SetInt(v, "ac_check", 0, 1, &on);
  Options(st).ac_check = on != 0;
  return s;
}

Status ApplyProcessReserve(std::string_view v, ParseState* st) {
  if (!ParseSize(v, &Options(st).process_reserve)) return Invalid("process_reserve", v);
  return Status::Ok();
}

Status ApplyGrpcMemory(std::string_view v, ParseState* st) {
  if (!ParseSize(v, &Options(st).grpc_memory)) return Invalid("grpc_memory", v);
  return Status::Ok();
}

Status ApplyMemoryPressure(std::string_view v, ParseState* st) {
  int on = 0;
  Status s = SetInt(v, "memory_pressure", 0, 1, &on);
  Options(st).memory_pressure = on != 0;
  return s;
}

Status ApplyIdleTimeout(std::string_view v, ParseState* st) {
  return SetInt(v, "idle_timeout", 0, 1 << 30, &Options(st).loop.idle_timeout_s);
}

Status ApplyConnMemory(std::string_view v, ParseState* st) {
  if (!ParseSize(v, &Options(st).connection_memory)) return Invalid("conn_memory", v);
  return Status::Ok();
}

constexpr const char* kSlabs = "slab and LRU tuning: cinch has no slab classes or LRU lists";
constexpr const char* kHash = "hash table tuning: cinch's index sizes itself";
constexpr const char* kExtstore = "extstore tuning: cinch's file tier (ext_path) sizes itself";
constexpr const char* kTls = "TLS is not supported";
constexpr const char* kLogs = "watch logging is not supported";

// cinch's own keys, then every key memcached 1.6.18 accepts (memcached -h, storage.c).
const ExtendedKey kExtendedKeys[] = {
    {"segment_size", "<sz>", Fate::kHonoured, "log segment size (default 1m)", ApplySegmentSize},
    {"debugtime", "1", Fate::kHonoured, "enable the 'debugtime p|r|<seconds>' test command",
     ApplyDebugtime},
    {"cleaner_interval_ms", "<n>", Fate::kHonoured, "background cleaner period (default 100)",
     ApplyCleanerInterval},
    {"space_wait_ms", "<n>", Fate::kHonoured, "longest a write waits for memory (default 100)",
     ApplySpaceWait},
    {"compact_max_live", "<pct>", Fate::kHonoured,
     "compact segments at most this % live (default 95)", ApplyCompactMaxLive},
    {"zero_copy_min", "<sz>", Fate::kHonoured, "values this large are sent without a copy",
     ApplyZeroCopyMin},
    {"io_uring", "0|1", Fate::kHonoured,
     "workers use io_uring, not epoll (default 1 where the kernel allows it)", ApplyIoUring},
    {"process_reserve", "<sz>", Fate::kHonoured, "memory kept for the process itself (0 = measure)",
     ApplyProcessReserve},
    {"http_port", "<num>", Fate::kHonoured, "the same as --http-port", ApplyHttpPort},
    {"grpc_port", "<num>", Fate::kHonoured, "the same as --grpc-port", ApplyGrpcPort},
    {"ac_check", "0|1", Fate::kHonoured,
     "serve an action result only while its outputs are stored (default 1;\n"
     "0 when a proxy shards the cache by digest)",
     ApplyAcCheck},
    {"grpc_memory", "<sz>", Fate::kHonoured,
     "gRPC's share of -m, for its buffers (default 1/16 of -m, 4m..1g)", ApplyGrpcMemory},
    {"conn_memory", "<sz>", Fate::kHonoured,
     "memory for connections (default: 3.9k per -c connection\n"
     "+ 1/16 of -m, 2m..1g, for buffers)",
     ApplyConnMemory},
    {"memory_pressure", "0|1", Fate::kHonoured,
     "shrink the cache when the host or cgroup is short of memory\n"
     "(default 1; the cgroup's limit and cache_memlimit apply either way)",
     ApplyMemoryPressure},
    {"maxconns_fast", nullptr, Fate::kHonoured,
     "refuse connections beyond -c at once (cinch always does)", ApplyNothing},
    {"no_maxconns_fast", nullptr, Fate::kIgnored,
     "cinch always refuses connections beyond -c at once", nullptr},
    {"modern", nullptr, Fate::kIgnored, "memcached's future defaults; nothing to change in cinch",
     nullptr},
    {"no_modern", nullptr, Fate::kIgnored, "memcached 1.4 defaults; nothing to change in cinch",
     nullptr},
    {"idle_timeout", "<s>", Fate::kHonoured,
     "close a connection idle for longer than this many seconds\n"
     "(nothing read or written, no reply owed; default 0: never)",
     ApplyIdleTimeout},
    {"read_buf_mem_limit", "<mb>", Fate::kIgnored,
     "connection memory has a budget within -m; -o conn_memory= sets it", nullptr},
    {"resp_obj_mem_limit", "<mb>", Fate::kIgnored, "deprecated in memcached too", nullptr},
    {"inline_ascii_resp", nullptr, Fate::kIgnored, "no effect in memcached 1.6 either", nullptr},
    {"no_inline_ascii_resp", nullptr, Fate::kIgnored, "no effect in memcached 1.6 either", nullptr},
    {"drop_privileges", nullptr, Fate::kIgnored, "no seccomp sandbox", nullptr},
    {"no_drop_privileges", nullptr, Fate::kIgnored, "no seccomp sandbox", nullptr},
    {"sock_cookie_id", "<n>", Fate::kIgnored, "socket cookies are not supported", nullptr},
    {"hashpower", "<n>", Fate::kIgnored, kHash, nullptr},
    {"no_hashexpand", nullptr, Fate::kIgnored, kHash, nullptr},
    {"hash_algorithm", "<name>", Fate::kIgnored, kHash, nullptr},
    {"tail_repair_time", "<s>", Fate::kIgnored, kSlabs, nullptr},
    {"slab_reassign", nullptr, Fate::kIgnored, kSlabs, nullptr},
    {"no_slab_reassign", nullptr, Fate::kIgnored, kSlabs, nullptr},
    {"slab_automove", "<n>", Fate::kIgnored, kSlabs, nullptr},
    {"no_slab_automove", nullptr, Fate::kIgnored, kSlabs, nullptr},
    {"slab_automove_ratio", "<r>", Fate::kIgnored, kSlabs, nullptr},
    {"slab_automove_window", "<n>", Fate::kIgnored, kSlabs, nullptr},
    {"slab_automove_freeratio", "<r>", Fate::kIgnored, kSlabs, nullptr},
    {"slab_sizes", "<list>", Fate::kIgnored, kSlabs, nullptr},
    {"slab_chunk_max", "<kb>", Fate::kIgnored, kSlabs, nullptr},
    {"no_chunked_items", nullptr, Fate::kIgnored, kSlabs, nullptr},
    {"track_sizes", nullptr, Fate::kIgnored, kSlabs, nullptr},
    {"lru_crawler", nullptr, Fate::kIgnored, kSlabs, nullptr},
    {"no_lru_crawler", nullptr, Fate::kIgnored, kSlabs, nullptr},
    {"lru_crawler_sleep", "<us>", Fate::kIgnored, kSlabs, nullptr},
    {"lru_crawler_tocrawl", "<n>", Fate::kIgnored, kSlabs, nullptr},
    {"lru_maintainer", nullptr, Fate::kIgnored, kSlabs, nullptr},
    {"no_lru_maintainer", nullptr, Fate::kIgnored, kSlabs, nullptr},
    {"hot_lru_pct", "<pct>", Fate::kIgnored, kSlabs, nullptr},
    {"warm_lru_pct", "<pct>", Fate::kIgnored, kSlabs, nullptr},
    {"hot_max_factor", "<f>", Fate::kIgnored, kSlabs, nullptr},
    {"warm_max_factor", "<f>", Fate::kIgnored, kSlabs, nullptr},
    {"temporary_ttl", "<s>", Fate::kIgnored, kSlabs, nullptr},
    {"watcher_logbuf_size", "<kb>", Fate::kIgnored, kLogs, nullptr},
    {"worker_logbuf_size", "<kb>", Fate::kIgnored, kLogs, nullptr},
    {"ext_path", "<path:size>", Fate::kHonoured,
     "file tier: cold items move to this file (size: 512m, 2g, 1t...)\n"
     "instead of being evicted while it has room; repeat for more files.\n"
     "Scratch space: truncated at start, never synced",
     ApplyExtPath},
    {"ext_page_size", "<mb>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_wbuf_size", "<mb>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_threads", "<n>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_io_depth", "<n>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_item_size", "<n>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_item_age", "<s>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_low_ttl", "<s>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_recache_rate", "<n>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_compact_under", "<n>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_drop_under", "<n>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_max_sleep", "<us>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_max_frag", "<f>", Fate::kIgnored, kExtstore, nullptr},
    {"ext_drop_unread", nullptr, Fate::kIgnored, kExtstore, nullptr},
    {"ssl_chain_cert", "<file>", Fate::kIgnored, kTls, nullptr},
    {"ssl_key", "<file>", Fate::kIgnored, kTls, nullptr},
    {"ssl_keyformat", "<n>", Fate::kIgnored, kTls, nullptr},
    {"ssl_verify_mode", "<n>", Fate::kIgnored, kTls, nullptr},
    {"ssl_ciphers", "<list>", Fate::kIgnored, kTls, nullptr},
    {"ssl_ca_cert", "<file>", Fate::kIgnored, kTls, nullptr},
    {"ssl_wbuf_size", "<kb>", Fate::kIgnored, kTls, nullptr},
    {"ssl_session_cache", nullptr, Fate::kIgnored, kTls, nullptr},
    {"ssl_kernel_tls", nullptr, Fate::kIgnored, kTls, nullptr},
    {"ssl_min_version", "<n>", Fate::kIgnored, kTls, nullptr},
    {"proxy_config", "<file>", Fate::kRefused, "proxy mode is not supported", nullptr},
    {"proxy_uring", nullptr, Fate::kRefused, "proxy mode is not supported", nullptr},
};

Status ApplyExtendedItem(std::string_view item, ParseState* st) {
  size_t eq = item.find('=');
  std::string_view key = item.substr(0, eq);
  std::string_view value = eq == std::string_view::npos ? "1" : item.substr(eq + 1);
  for (const ExtendedKey& k : kExtendedKeys) {
    if (key != k.key) continue;
    switch (k.fate) {
      case Fate::kHonoured:
        return k.apply(value, st);
      case Fate::kIgnored:
        Warn(st, "-o " + std::string(key) + " ignored: " + k.help);
        return Status::Ok();
      case Fate::kRefused:
        return Status::InvalidArgument("-o " + std::string(key) + ": " + k.help);
    }
  }
  return Status::InvalidArgument("illegal -o option '" + std::string(item) + "'");
}

Status ApplyExtended(std::string_view list, ParseState* st) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.empty()) continue;
    Status s = ApplyExtendedItem(item, st);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// ----------------------------------------------------------------------------- the parser

const Flag* FindFlag(int name) {
  for (const Flag& f : kFlags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string FlagName(const Flag& f) {
  if (LongOnly(f.name)) return std::string("--") + f.long_name;
  std::string name = std::string("-") + f.name;
  if (f.long_name != nullptr) name += std::string(" (--") + f.long_name + ")";
  return name;
}

Status ApplyFlag(const Flag& f, std::string_view value, ParseState* st) {
  switch (f.fate) {
    case Fate::kHonoured:
      return f.apply(value, st);
    case Fate::kIgnored:
      Warn(st, FlagName(f) + " ignored: " + f.help);
      return Status::Ok();
    case Fate::kRefused:
      break;
  }
  return Status::InvalidArgument(FlagName(f) + ": " + f.help);
}

// The memcached rules that tie flags together, once all are read.
Status Finish(ParseState* st) {
  server::ServerOptions& o = Options(st);
  // memcached: a unix socket turns TCP (and UDP) off, whatever -p and -l say.
  if (!o.loop.unix_socket.empty()) o.loop.listen.clear();
  if (o.http_port != 0 && o.loop.listen.empty()) {
    return Status::InvalidArgument("--http-port needs TCP addresses (-s turns TCP off)");
  }
  if (o.http_port > 0 && o.http_port == o.loop.port) {
    return Status::InvalidArgument("--http-port must differ from the memcached port (-p)");
  }
  if (o.grpc_port != 0 && o.loop.listen.empty()) {
    return Status::InvalidArgument("--grpc-port needs TCP addresses (-s turns TCP off)");
  }
  if (o.grpc_port != 0 && (o.grpc_port == o.loop.port || o.grpc_port == o.http_port)) {
    return Status::InvalidArgument(
        "--grpc-port must differ from the memcached (-p) and HTTP ports");
  }
  if (o.require_sasl && o.auth_file.empty()) {
    return Status::InvalidArgument(
        "-S needs -Y <file>: cinch checks SASL PLAIN against the auth file (no libsasl2)");
  }
  // The HTTP port asks for Basic credentials of the auth file's users; gRPC has no such check.
  if (!o.auth_file.empty() && o.grpc_port != 0) {
    return Status::InvalidArgument(
        "-Y authenticates the memcached and HTTP ports only: the gRPC build cache "
        "(--grpc-port) would be open to anyone");
  }
  o.memory_limit = static_cast<size_t>(st->memory_mib) << 20;
  if (o.store.max_item_size > o.memory_limit / 2) {
    if (st->item_size_given) {
      return Status::InvalidArgument(
          "max item size (-I) cannot exceed half of the memory limit (-m)");
    }
    // -m 1: memcached refuses its own default -I there; cinchd lowers the default instead.
    o.store.max_item_size = o.memory_limit / 2;
    Warn(st, "-m " + std::to_string(st->memory_mib) +
                 " lowers the default item size limit (-I) to " +
                 std::to_string(o.store.max_item_size >> 10) + " KiB");
  }
  o.loop.read_buffer_max = o.store.max_item_size + 4096;
  for (const TierFile& f : o.store.tier_files) {
    if (f.size < o.store.segment_size) {
      return Status::InvalidArgument("-o ext_path=" + f.path + ": " + std::to_string(f.size >> 10) +
                                     " KiB is less than one segment (" +
                                     std::to_string(o.store.segment_size >> 10) +
                                     " KiB, -o segment_size)");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ParseCommandLine(int argc, char** argv, CommandLine* out) {
  *out = CommandLine();
  unsigned cores = std::thread::hardware_concurrency();
  out->server.loop.threads = cores == 0 ? 4 : static_cast<int>(cores);
  ParseState st{out};

  std::string short_options = ":";  // ':' first: a missing argument is reported as ':'
  std::vector<option> long_options;
  for (const Flag& f : kFlags) {
    if (!LongOnly(f.name)) {
      short_options += f.name;
      if (f.arg == Arg::kRequired) short_options += ':';
    }
    if (f.long_name == nullptr) continue;
    int has_arg = f.arg == Arg::kRequired   ? required_argument
                  : f.arg == Arg::kOptional ? optional_argument
                                            : no_argument;
    long_options.push_back({f.long_name, has_arg, nullptr, f.name});
  }
  long_options.push_back({nullptr, 0, nullptr, 0});

  optind = 0;  // full reinitialisation (GNU), so the parser can run more than once
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, short_options.c_str(), long_options.data(), nullptr)) != -1) {
    const Flag* flag = FindFlag(c);
    if (c == ':') {
      return Status::InvalidArgument(std::string("option '") + argv[optind - 1] +
                                     "' requires an argument");
    }
    if (flag == nullptr) {
      return Status::InvalidArgument(std::string("unknown option '") + argv[optind - 1] + "'");
    }
    Status s = ApplyFlag(*flag, optarg != nullptr ? optarg : "", &st);
    if (!s.ok()) return s;
  }
  if (optind < argc) {
    return Status::InvalidArgument(std::string("unexpected argument '") + argv[optind] + "'");
  }
  return Finish(&st);
}

void PrintUsage(std::FILE* f) {
  auto print_help = [f](const std::string& left, const char* help) {
    std::string text(help);
    size_t start = 0;
    bool first = true;
    while (start <= text.size()) {
      size_t nl = text.find('\n', start);
      std::string line = text.substr(start, nl == std::string::npos ? nl : nl - start);
      std::fprintf(f, "  %-30s %s\n", first ? left.c_str() : "", line.c_str());
      first = false;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  };
  auto flag_left = [](const Flag& flag) {
    std::string left =
        LongOnly(flag.name) ? std::string("    --") + flag.long_name : std::string("-") + flag.name;
    if (flag.long_name != nullptr && !LongOnly(flag.name)) {
      left += std::string(", --") + flag.long_name;
    }
    if (flag.arg == Arg::kRequired) {
      left += flag.long_name != nullptr ? '=' : ' ';
      left += flag.arg_name;
    }
    return left;
  };
  std::fprintf(f,
               "cinchd %s: a memcached-compatible cache that holds -m as a hard limit\n"
               "usage: cinchd [options]; memcached %s's options are all accepted\n",
               kCinchVersion.data(), kMemcachedVersion.data());
  for (const Flag& flag : kFlags) {
    if (flag.fate == Fate::kHonoured) print_help(flag_left(flag), flag.help);
  }
  std::fprintf(f, "\n-o settings of cinch:\n");
  for (const ExtendedKey& k : kExtendedKeys) {
    if (k.fate != Fate::kHonoured) continue;
    std::string left = std::string("   ") + k.key;
    if (k.value_name != nullptr) left += std::string("=") + k.value_name;
    print_help(left, k.help);
  }
  std::fprintf(f, "\nAccepted for memcached compatibility and ignored, with a warning:\n");
  for (const Flag& flag : kFlags) {
    if (flag.fate == Fate::kIgnored) print_help(flag_left(flag), flag.help);
  }
  std::fprintf(f, "  -o keys: memcached's slab, LRU, hash, extstore, TLS and logging tuning:\n");
  std::string keys;
  for (const ExtendedKey& k : kExtendedKeys) {
    if (k.fate != Fate::kIgnored) continue;
    if (keys.size() + std::strlen(k.key) > 90) {
      std::fprintf(f, "     %s\n", keys.c_str());
      keys.clear();
    }
    if (!keys.empty()) keys += ' ';
    keys += k.key;
  }
  if (!keys.empty()) std::fprintf(f, "     %s\n", keys.c_str());
  std::fprintf(f, "\nRefused (the server would be less safe than asked for):\n");
  for (const Flag& flag : kFlags) {
    if (flag.fate == Fate::kRefused) print_help(flag_left(flag), flag.help);
  }
  for (const ExtendedKey& k : kExtendedKeys) {
    if (k.fate == Fate::kRefused) print_help(std::string("-o ") + k.key, k.help);
  }
}

}  // namespace cinch::tools
