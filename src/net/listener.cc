#include "net/listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace cinch::net {

namespace {

Status Errno(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno));
}

bool ParsePort(std::string_view s, int* port) {
  if (s.empty() || s.size() > 6) return false;
  int v = 0;
  size_t i = s[0] == '-' ? 1 : 0;  // "-1": any free port, as with -p -1
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  v = s[0] == '-' ? -v : v;
  if (v < -1 || v > 65535) return false;
  *port = v;
  return true;
}

// One socket bound to `ai` and listening, or -1 with errno set.
int BindAndListen(const addrinfo* ai, int backlog) {
  int sock = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (sock < 0) return -1;
  int one = 1;
  bool ok = setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0;
  // An IPv6 socket takes IPv6 only, so "::" and "0.0.0.0" can both be bound on one port.
  if (ok && ai->ai_family == AF_INET6) {
    ok = setsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == 0;
  }
  ok = ok && bind(sock, ai->ai_addr, ai->ai_addrlen) == 0 && listen(sock, backlog) == 0;
  if (!ok) {
    int saved = errno;
    close(sock);
    errno = saved;
    return -1;
  }
  return sock;
}

int BoundPort(int sock) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

void SetPort(sockaddr* addr, int port) {
  if (addr->sa_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(addr)->sin6_port = htons(static_cast<uint16_t>(port));
  } else {
    reinterpret_cast<sockaddr_in*>(addr)->sin_port = htons(static_cast<uint16_t>(port));
  }
}

}  // namespace

Status ParseListenAddress(std::string_view spec, int default_port, ListenAddress* out) {
  std::string_view host = spec;
  std::string_view port;
  bool has_port = false;
  if (!spec.empty() && spec.front() == '[') {  // "[v6]" or "[v6]:port" (RFC 3986)
    size_t close_at = spec.find(']');
    if (close_at == std::string_view::npos) {
      return Status::InvalidArgument("invalid IPv6 address '" + std::string(spec) + "'");
    }
    host = spec.substr(1, close_at - 1);
    std::string_view rest = spec.substr(close_at + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return Status::InvalidArgument("invalid listen address '" + std::string(spec) + "'");
      }
      port = rest.substr(1);
      has_port = true;
    }
  } else if (size_t colon = spec.find(':'); colon != std::string_view::npos &&
                                            spec.find(':', colon + 1) == std::string_view::npos) {
    // One colon: host:port. More than one: a bare IPv6 address, without a port.
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
    has_port = true;
  }
  ListenAddress a;
  a.host = host == "*" ? "" : std::string(host);
  a.port = default_port;
  if (has_port && !ParsePort(port, &a.port)) {
    return Status::InvalidArgument("invalid port number in listen address '" + std::string(spec) +
                                   "'");
  }
  *out = std::move(a);
  return Status::Ok();
}

std::vector<std::string> SplitListenList(std::string_view list) {
  std::vector<std::string> parts;
  while (!list.empty()) {
    size_t end = list.find_first_of(",;");
    if (end != 0) parts.emplace_back(list.substr(0, end));
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
  return parts;
}

Status OpenTcpListeners(const ListenAddress& address, int backlog, std::vector<int>* fds,
                        int* bound_port) {
  if (address.port < -1 || address.port > 65535) return Status::InvalidArgument("bad TCP port");
  addrinfo hints{};
  hints.ai_flags = AI_PASSIVE;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const std::string port = std::to_string(address.port < 0 ? 0 : address.port);
  const std::string where = (address.host.empty() ? "*" : address.host) + ":" + port;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(), port.c_str(), &hints,
                       &result);
  if (rc != 0 || result == nullptr) {
    return Status::InvalidArgument("cannot resolve listen address '" + where +
                                   "': " + gai_strerror(rc));
  }
  Status s;
  int first_port = 0;
  size_t opened = 0;
  for (addrinfo* ai = result; ai != nullptr && s.ok(); ai = ai->ai_next) {
    if (first_port != 0 && address.port < 0) SetPort(ai->ai_addr, first_port);
    int sock = BindAndListen(ai, backlog);
    if (sock < 0) {
      // An address the name also resolved to but this host has no stack for: skip it.
      if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL) s = Errno("listen on " + where);
      continue;
    }
    fds->push_back(sock);
    ++opened;
    if (first_port == 0) first_port = BoundPort(sock);
  }
  freeaddrinfo(result);
  if (s.ok() && opened == 0) s = Status::IoError("no usable address to listen on for " + where);
  if (!s.ok()) {
    for (; opened > 0; --opened) {
      close(fds->back());
      fds->pop_back();
    }
    return s;
  }
  *bound_port = first_port;
  return Status::Ok();
}

Status OpenUnixListener(const std::string& path, int mask, int backlog, int* fd) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("unix socket path empty or too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());

  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sock < 0) return Errno("socket(AF_UNIX)");
  Status s;
  // chmod between bind and listen: nobody can connect before the mode is right.
  if (bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    s = Errno("bind " + path);
  } else if (chmod(path.c_str(), static_cast<mode_t>(mask)) != 0) {
    s = Errno("chmod " + path);
    unlink(path.c_str());
  } else if (listen(sock, backlog) != 0) {
    s = Errno("listen " + path);
    unlink(path.c_str());
  }
  if (!s.ok()) {
    close(sock);
    return s;
  }
  *fd = sock;
  return Status::Ok();
}

void Listeners::Close() {
  if (closed_.exchange(true)) return;
  for (const Entry& e : entries_) close(e.fd);
  if (!unix_path_.empty()) unlink(unix_path_.c_str());
}

}  // namespace cinch::net
