#include "server/process.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace cinch::server {
namespace {

// A datagram socket bound to `address` (a path, or "@name" in the abstract namespace) that
// stands in for systemd's notification socket; $NOTIFY_SOCKET names it while it lives.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& address) : address_(address) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    address.copy(addr.sun_path, address.size());
    if (address[0] == '@') addr.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), length) == 0;
    timeval timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setenv("NOTIFY_SOCKET", address.c_str(), 1);
  }
  ~NotifySocket() {
    unsetenv("NOTIFY_SOCKET");
    close(fd_);
    if (address_[0] == '/') unlink(address_.c_str());
  }

  bool bound() const { return bound_; }

  std::string Receive() {
    char buf[256];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n < 0 ? std::string("(nothing)") : std::string(buf, static_cast<size_t>(n));
  }

 private:
  std::string address_;
  int fd_ = -1;
  bool bound_ = false;
};

std::string TempPath(const char* name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name + "." + std::to_string(getpid());
}

TEST(NotifyServiceManager, WithoutNotifySocketDoesNothing) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(NotifyServiceManager("READY=1"));
}

TEST(NotifyServiceManager, SendsTheStateToASocketPath) {
  NotifySocket notify(TempPath("cinch-notify-test"));
  ASSERT_TRUE(notify.bound());
  EXPECT_TRUE(NotifyServiceManager("READY=1"));
  EXPECT_EQ(notify.Receive(), "READY=1");
  EXPECT_TRUE(NotifyServiceManager("STOPPING=1"));
  EXPECT_EQ(notify.Receive(), "STOPPING=1");
}

TEST(NotifyServiceManager, SendsTheStateToAnAbstractName) {
  NotifySocket notify("@cinch-notify-test-" + std::to_string(getpid()));
  ASSERT_TRUE(notify.bound());
  EXPECT_TRUE(NotifyServiceManager("READY=1"));
  EXPECT_EQ(notify.Receive(), "READY=1");
}

TEST(NotifyServiceManager, FailsWhereItCannotSend) {
  setenv("NOTIFY_SOCKET", "relative/notify", 1);
  EXPECT_FALSE(NotifyServiceManager("READY=1"));
  setenv("NOTIFY_SOCKET", ("/" + std::string(200, 'x')).c_str(), 1);  // beyond sun_path
  EXPECT_FALSE(NotifyServiceManager("READY=1"));
  setenv("NOTIFY_SOCKET", TempPath("cinch-notify-nobody").c_str(), 1);  // nothing bound
  EXPECT_FALSE(NotifyServiceManager("READY=1"));
  unsetenv("NOTIFY_SOCKET");
}

}  // namespace
}  // namespace cinch::server
