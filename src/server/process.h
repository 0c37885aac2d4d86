// What memcached does to its own process before it serves, in the order main() calls it: the
// core and open-file limits, the switch away from root, the daemon fork, the pid file.
//
// Thread safety: call from main() before any thread starts (fork() and setuid() affect only
// the calling thread's view otherwise); Daemon::Ready/Failed may be called later, from the
// thread that called Start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cinch::server {

// The process's resident memory now (/proc/self/statm), in bytes; 0 if it cannot be read.
size_t ResidentBytes();

// A failed step: the message for stderr and the exit status memcached uses for it (sysexits).
struct [[nodiscard]] ProcessStatus {
  static constexpr int kUsage = 64;    // EX_USAGE
  static constexpr int kNoUser = 67;   // EX_NOUSER
  static constexpr int kOsError = 71;  // EX_OSERR
  int exit_code = 0;
  std::string message;
  bool ok() const { return exit_code == 0; }
};

// -c: makes the soft RLIMIT_NOFILE at least `needed` (never lowers it). When the hard limit is
// below `needed` too, raises both, which needs CAP_SYS_RESOURCE (root). Failing that, if the
// hard limit is still at least `max_connections` (all memcached requires of it), the soft limit
// is raised to the hard one: the caller fits -c to *granted. Below that, an error that says
// which limit to raise. On success *granted is the soft limit now in force.
ProcessStatus EnsureFileLimit(uint64_t needed, int max_connections, uint64_t* granted);

// -r: raises RLIMIT_CORE to unlimited, or to its hard limit; fails if it stays 0.
ProcessStatus EnableCoreDumps();

// -u: when running as root (real or effective uid 0), becomes `user`: supplementary groups
// dropped, then its gid, then its uid. Running as root without a user is refused, as memcached
// does. Not root: nothing to do, `user` is ignored.
ProcessStatus DropRoot(const std::string& user);

// -d: detaches from the terminal. Start() forks; the parent waits until the child reports
// Ready() or Failed(message), or exits, and then exits itself: 0 after Ready(), 1 otherwise
// (printing the child's message on its stderr). Only the child returns from Start(): in a new
// session, in "/" unless keep_cwd, with stdin/stdout/stderr on /dev/null unless keep_stdio.
class Daemon {
 public:
  Daemon() = default;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon();

  ProcessStatus Start(bool keep_cwd, bool keep_stdio);
  void Ready();
  void Failed(const std::string& message);

 private:
  void Report(char outcome, const std::string& message);
  int fd_ = -1;  // the child's end of the pipe to the waiting parent
};

// -P: writes "<pid>\n" to a temporary file beside `path` and renames it over `path`, so a
// reader never sees it empty (memcached's way); warns on stderr if `path` names a running
// process already.
ProcessStatus WritePidFile(const std::string& path);
void RemovePidFile(const std::string& path);

// `path` made absolute against the current directory (before Daemon::Start leaves it).
std::string AbsolutePath(const std::string& path);

// systemd's readiness protocol (sd_notify(3), spoken without libsystemd): when $NOTIFY_SOCKET
// names a unix datagram socket (a path, or "@name" in the abstract namespace), sends `state`
// to it: "READY=1" once the server listens, "STOPPING=1" when it starts to stop (a Type=notify
// unit, packaging/cinchd.service.in). Without $NOTIFY_SOCKET, does nothing and returns true;
// false when the message could not be sent.
bool NotifyServiceManager(std::string_view state);

}  // namespace cinch::server
