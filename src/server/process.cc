#include "server/process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/log.h"

namespace cinch::server {

size_t ResidentBytes() {
  long pages_total = 0, pages_resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<size_t>(pages_resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

namespace {

ProcessStatus OsError(const std::string& what) {
  return {ProcessStatus::kOsError, what + ": " + std::strerror(errno)};
}

std::string Number(rlim_t v) {
  return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
}

// Reads a whole pipe: what the daemon child reported.
std::string ReadAll(int fd) {
  std::string data;
  char buf[512];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      data.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      return data;
    }
  }
}

}  // namespace

ProcessStatus EnsureFileLimit(uint64_t needed, int max_connections, uint64_t* granted) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return OsError("getrlimit(RLIMIT_NOFILE)");
  const rlim_t want = static_cast<rlim_t>(needed);
  *granted = rl.rlim_cur;
  if (rl.rlim_cur >= want) return {};
  const rlim_t hard = rl.rlim_max;
  rlimit raised{want, std::max(want, hard)};  // the hard limit too: root (CAP_SYS_RESOURCE) may
  if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
    *granted = want;
    return {};
  }
  const int refused = errno;
  // As memcached: enough if the hard limit admits -c itself (the caller lowers -c by the rest),
  // and there is room for one connection beside what the process needs.
  const uint64_t overhead = needed - static_cast<uint64_t>(max_connections);
  if (hard >= static_cast<rlim_t>(max_connections) && hard > overhead) {
    rl.rlim_cur = hard;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return OsError("setrlimit(RLIMIT_NOFILE)");
    *granted = hard;
    return {};
  }
  errno = refused;
  const std::string n = std::to_string(needed);
  const std::string what = "-c " + std::to_string(max_connections) + " needs " + n +
                           " open files (connections, listeners, event loops), more than the " +
                           "hard limit on open files of " + Number(hard) + " (" +
                           std::strerror(errno) + "). ";
  if (geteuid() == 0) {  // root, yet refused: the system-wide ceiling, or no CAP_SYS_RESOURCE
    return {ProcessStatus::kOsError,
            what + "Raise fs.nr_open (sysctl) or the hard limit (ulimit -Hn " + n +
                ", LimitNOFILE=" + n + " in a systemd unit), or lower -c."};
  }
  return {ProcessStatus::kOsError,
          what + "Raise the hard limit (ulimit -Hn " + n + ", LimitNOFILE=" + n +
              " in a systemd unit, nofile in /etc/security/limits.conf), start cinchd as root "
              "(it raises the limit, then -u drops root), or lower -c."};
}

ProcessStatus EnableCoreDumps() {
  rlimit rl{};
  if (getrlimit(RLIMIT_CORE, &rl) == 0) {
    rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (setrlimit(RLIMIT_CORE, &unlimited) != 0) {
      rl.rlim_cur = rl.rlim_max;  // at least up to the hard limit
      (void)setrlimit(RLIMIT_CORE, &rl);
    }
  }
  if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur == 0) {
    return {ProcessStatus::kOsError, "failed to ensure corefile creation (-r)"};
  }
  return {};
}

ProcessStatus DropRoot(const std::string& user) {
  if (getuid() != 0 && geteuid() != 0) return {};
  if (user.empty()) {
    return {ProcessStatus::kUsage,
            "can't run as root without the -u switch (-u <user> names the user to run as)"};
  }
  errno = 0;
  const passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) {
    return {ProcessStatus::kNoUser, "can't find the user " + user + " to switch to"};
  }
  // EPERM: already without the privilege to change groups, which is what this is for.
  if (setgroups(0, nullptr) != 0 && errno != EPERM) {
    return OsError("failed to drop supplementary groups");
  }
  if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
    return OsError("failed to assume identity of user " + user);
  }
  return {};
}

Daemon::~Daemon() {
  if (fd_ >= 0) close(fd_);
}

ProcessStatus Daemon::Start(bool keep_cwd, bool keep_stdio) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return OsError("pipe");
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return OsError("fork");
  }
  if (pid > 0) {  // the parent: wait for the child's word, exit with it
    close(pipe_fds[1]);
    std::string report = ReadAll(pipe_fds[0]);
    if (!report.empty() && report[0] == 'R') _exit(0);
    if (report.size() > 1) {
      CINCH_LOG_ERROR("%s", report.c_str() + 1);
    } else {
      CINCH_LOG_ERROR("the daemon exited before it was ready");
    }
    _exit(1);
  }
  close(pipe_fds[0]);
  fd_ = pipe_fds[1];
  if (setsid() < 0) return OsError("setsid");
  if (!keep_cwd && chdir("/") != 0) return OsError("chdir /");
  if (!keep_stdio) {
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) return OsError("open /dev/null");
    for (int fd = 0; fd <= 2; ++fd) {
      if (dup2(null_fd, fd) < 0) {
        close(null_fd);
        return OsError("dup2 /dev/null");
      }
    }
    close(null_fd);
  }
  return {};
}

void Daemon::Report(char outcome, const std::string& message) {
  if (fd_ < 0) return;
  std::string data = outcome + message;
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
  close(fd_);
  fd_ = -1;
}

void Daemon::Ready() { Report('R', ""); }
void Daemon::Failed(const std::string& message) { Report('F', message); }

ProcessStatus WritePidFile(const std::string& path) {
  if (FILE* old = std::fopen(path.c_str(), "r")) {
    long pid = 0;
    if (std::fscanf(old, "%ld", &pid) == 1 && pid > 0 && kill(static_cast<pid_t>(pid), 0) == 0) {
      CINCH_LOG_WARNING("the pid file %s names a running process (%ld)", path.c_str(), pid);
    }
    std::fclose(old);
  }
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return OsError("could not open the pid file " + tmp + " for writing");
  std::fprintf(f, "%ld\n", static_cast<long>(getpid()));
  if (std::fclose(f) != 0) return OsError("could not write the pid file " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return OsError("could not rename the pid file " + tmp + " to " + path);
  }
  return {};
}

void RemovePidFile(const std::string& path) {
  if (unlink(path.c_str()) != 0) {
    CINCH_LOG_WARNING("could not remove the pid file %s: %s", path.c_str(), std::strerror(errno));
  }
}

std::string AbsolutePath(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

bool NotifyServiceManager(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return true;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t length = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || length >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path, length);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // the abstract namespace
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const auto addr_length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
  const ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                              reinterpret_cast<const sockaddr*>(&addr), addr_length);
  close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

}  // namespace cinch::server
