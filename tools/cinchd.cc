// cinchd: a memcached-compatible cache server on the cinch engine.
// main() only: flags are tools/cinchd_flags.cc, the process steps src/server/process.h, the
// server src/server. The steps run in memcached's order: limits, leave root, daemon, serve,
// pid file.
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "cinchd_flags.h"
#include "common/log.h"
#include "common/version.h"
#include "net/server_loop.h"
#include "server/process.h"
#include "server/server.h"

namespace {

int Exit(const cinch::server::ProcessStatus& s) {
  CINCH_LOG_ERROR("%s", s.message.c_str());
  return s.exit_code;
}

// -c: the open-file limit raised to fit, or -c lowered to fit a hard limit memcached would
// accept (it needs only -c files), saying so. With --http-port the HTTP loop may hold -c
// connections of its own.
cinch::server::ProcessStatus FitFileLimit(cinch::server::ServerOptions* o) {
  cinch::net::LoopOptions* loop = &o->loop;
  const uint64_t loops = o->http_port != 0 ? 2 : 1;
  const uint64_t needed = loops * cinch::net::FilesNeeded(*loop);
  uint64_t files = 0;
  cinch::server::ProcessStatus s =
      cinch::server::EnsureFileLimit(needed, loop->max_connections, &files);
  if (s.ok() && files < needed) {  // one connection less for each file short
    const int fitted =
        loop->max_connections - static_cast<int>((needed - files + loops - 1) / loops);
    CINCH_LOG_WARNING(
        "-c %d lowered to %d: the hard limit on open files is %llu and the "
        "process needs %llu more (raise it with ulimit -Hn or LimitNOFILE=)",
        loop->max_connections, fitted, static_cast<unsigned long long>(files),
        static_cast<unsigned long long>(needed - static_cast<uint64_t>(loop->max_connections)));
    loop->max_connections = fitted;
  }
  return s;
}

// The start line: what the server listens on and the limits it runs under. Written once every
// listener is up (cinchd exits when one cannot bind), so a line naming a port says it is ready.
void LogStart(const cinch::server::ServerOptions& o, int port, int http_port, int grpc_port) {
  std::string tier;
  for (const cinch::TierFile& f : o.store.tier_files) {
    tier += (tier.empty() ? ", file tier " : " + ") + f.path + " (" + std::to_string(f.size >> 20) +
            " MiB)";
  }
  CINCH_LOG_NOTICE("cinchd %s started: -m %zu MiB, %d threads, -c %d%s",
                   cinch::kCinchVersion.data(), o.memory_limit >> 20, o.loop.threads,
                   o.loop.max_connections, tier.c_str());
  for (const std::string& address : o.loop.listen) {
    CINCH_LOG_NOTICE("listening on %s (port %d unless it names one)", address.c_str(), port);
  }
  if (!o.loop.unix_socket.empty()) {
    CINCH_LOG_NOTICE("listening on unix socket %s", o.loop.unix_socket.c_str());
  }
  if (http_port != 0) {
    CINCH_LOG_NOTICE("HTTP build cache and /metrics on port %d of the same hosts%s", http_port,
                     o.auth_file.empty() ? "" : " (Basic authentication, -Y users)");
  }
  if (grpc_port != 0) {
    CINCH_LOG_NOTICE("gRPC build cache (REAPI v2, ByteStream) on port %d of the same hosts",
                     grpc_port);
  }
}

}  // namespace

int main(int argc, char** argv) {
  namespace server = cinch::server;
  // No transparent huge pages for this process (heap, thread stacks, buffers), before anything is
  // mapped: a page touched must cost one page of -m, not 2 MiB (docs/memory-accounting.md).
  prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  cinch::tools::CommandLine cl;
  cinch::Status parsed = cinch::tools::ParseCommandLine(argc, argv, &cl);
  if (!parsed.ok()) {
    std::fprintf(stderr, "cinchd: %s\ntry 'cinchd -h' for help\n", parsed.message().c_str());
    return server::ProcessStatus::kUsage;
  }
  if (cl.print_help) {
    cinch::tools::PrintUsage(stdout);
    return 0;
  }
  if (cl.print_version || cl.print_license) {
    std::printf("cinchd %s (memcached %s compatible)\n", cinch::kCinchVersion.data(),
                cinch::kMemcachedVersion.data());
    return 0;
  }
  server::ServerOptions& options = cl.server;
  cinch::log::SetVerbosity(options.verbosity);
  for (const std::string& w : cl.warnings) CINCH_LOG_WARNING("%s", w.c_str());

  if (cl.core_dumps) {
    if (server::ProcessStatus s = server::EnableCoreDumps(); !s.ok()) return Exit(s);
  }
  server::ProcessStatus s = FitFileLimit(&options);
  if (!s.ok()) return Exit(s);
  if (s = server::DropRoot(cl.user); !s.ok()) return Exit(s);

  server::Daemon daemon;
  if (cl.daemonize) {
    // Paths are read after the daemon leaves the current directory.
    cl.pid_file = server::AbsolutePath(cl.pid_file);
    options.memory_file = server::AbsolutePath(options.memory_file);
    options.loop.unix_socket = server::AbsolutePath(options.loop.unix_socket);
    options.auth_file = server::AbsolutePath(options.auth_file);  // SIGHUP reads it again
    // memcached keeps the directory for core files (-r) and stderr for -v.
    if (s = daemon.Start(cl.core_dumps, options.verbosity > 0); !s.ok()) return Exit(s);
  }

  // Signals are taken synchronously by this thread; workers never see them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  // -e: SIGUSR1 is memcached's graceful stop that keeps the items; cinchd keeps them on
  // SIGTERM and SIGINT too. Without -e, SIGUSR1 keeps its default action.
  const bool keep_items = !options.memory_file.empty();
  if (keep_items) sigaddset(&stop_signals, SIGUSR1);
  // SIGHUP reloads the auth file (-Y), as in memcached; without one it is ignored (memcached
  // does not stop on it either).
  sigset_t waited = stop_signals;
  sigaddset(&waited, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &waited, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server::Server srv(options);
  cinch::Status started = srv.Start();
  if (!started.ok()) {
    CINCH_LOG_ERROR("%s", started.ToString().c_str());
    daemon.Failed(started.ToString());
    return 1;
  }
  if (!cl.pid_file.empty()) {
    // As memcached: a pid file that cannot be written is a warning, not a failure.
    if (s = server::WritePidFile(cl.pid_file); !s.ok()) {
      CINCH_LOG_WARNING("%s", s.message.c_str());
      cl.pid_file.clear();
    }
  }
  LogStart(options, srv.port(), srv.http_port(), srv.grpc_port());
  daemon.Ready();
  server::NotifyServiceManager("READY=1");

  int sig = 0;
  while (sigwait(&waited, &sig) == 0 && sig == SIGHUP) {
    if (options.auth_file.empty()) continue;
    cinch::Status reloaded = srv.ReloadUsers();
    if (reloaded.ok()) {
      CINCH_LOG_NOTICE("SIGHUP: reloaded %s", options.auth_file.c_str());
    } else {
      CINCH_LOG_ERROR("SIGHUP: %s; the users loaded before stay", reloaded.message().c_str());
    }
  }
  if (keep_items) {
    CINCH_LOG_NOTICE("%s: stopping, then saving the items to %s", strsignal(sig),
                     options.memory_file.c_str());
  } else {
    CINCH_LOG_NOTICE("%s: stopping", strsignal(sig));
  }
  server::NotifyServiceManager("STOPPING=1");
  srv.Stop();
  srv.Wait();
  const bool saved = srv.SaveMemoryFile().ok();
  if (!cl.pid_file.empty()) server::RemovePidFile(cl.pid_file);
  CINCH_LOG_NOTICE("stopped");
  return saved ? 0 : 1;
}
