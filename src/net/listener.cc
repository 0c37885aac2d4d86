#include "net/listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace cinch::net {

namespace {

Status Errno(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno));
}

Status ResolveIpv4(const std::string& address, in_addr* out) {
  if (address.empty() || address == "0.0.0.0") {
    out->s_addr = htonl(INADDR_ANY);
    return Status::Ok();
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(address.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    return Status::InvalidArgument("cannot resolve listen address '" + address +
                                   "': " + gai_strerror(rc));
  }
  *out = reinterpret_cast<sockaddr_in*>(result->ai_addr)->sin_addr;
  freeaddrinfo(result);
  return Status::Ok();
}

}  // namespace

Status OpenTcpListener(const std::string& address, int port, int backlog, int* fd,
                       int* bound_port) {
  if (port < -1 || port > 65535) return Status::InvalidArgument("bad TCP port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port < 0 ? 0 : port));
  Status s = ResolveIpv4(address, &addr.sin_addr);
  if (!s.ok()) return s;

  int sock = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sock < 0) return Errno("socket");
  int one = 1;
  std::string where = address + ":" + std::to_string(port);
  if (setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    s = Errno("setsockopt(SO_REUSEADDR)");
  } else if (bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    s = Errno("bind " + where);
  } else if (listen(sock, backlog) != 0) {
    s = Errno("listen " + where);
  } else {
    socklen_t len = sizeof(addr);
    if (getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      s = Errno("getsockname");
    }
  }
  if (!s.ok()) {
    close(sock);
    return s;
  }
  *fd = sock;
  *bound_port = ntohs(addr.sin_port);
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
