// Listen addresses in memcached's -l forms, and listeners bound from them.
#include "net/listener.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace cinch::net {
namespace {

ListenAddress Parsed(const std::string& spec, int default_port = 11211) {
  ListenAddress a;
  Status s = ParseListenAddress(spec, default_port, &a);
  EXPECT_TRUE(s.ok()) << spec << ": " << s.ToString();
  return a;
}

TEST(ListenAddress, MemcachedForms) {
  struct Case {
    const char* spec;
    const char* host;
    int port;
  };
  for (const Case& c : std::vector<Case>{{"127.0.0.1", "127.0.0.1", 11211},
                                         {"127.0.0.1:11311", "127.0.0.1", 11311},
                                         {"localhost:0", "localhost", 0},
                                         {"::1", "::1", 11211},
                                         {"fe80::1:11311", "fe80::1:11311", 11211},  // bare IPv6
                                         {"[::1]", "::1", 11211},
                                         {"[::1]:11311", "::1", 11311},
                                         {"*", "", 11211},
                                         {"*:11311", "", 11311},
                                         {"[*]:-1", "", -1}}) {
    ListenAddress a = Parsed(c.spec);
    EXPECT_EQ(a.host, c.host) << c.spec;
    EXPECT_EQ(a.port, c.port) << c.spec;
  }
  for (const char* bad : {"[::1", "[::1]11311", "host:", "host:http", "host:70000", "[::1]:"}) {
    ListenAddress a;
    EXPECT_FALSE(ParseListenAddress(bad, 11211, &a).ok()) << bad;
  }
}

TEST(ListenAddress, SplitsAtCommasAndSemicolons) {
  EXPECT_EQ(SplitListenList("a,b;c,,d;"), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_TRUE(SplitListenList("").empty());
}

bool HasIpv6Loopback() {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

TEST(OpenTcpListeners, BindsIpv4AndIpv6OnOneFreePort) {
  if (!HasIpv6Loopback()) GTEST_SKIP() << "no IPv6 loopback on this host";
  std::vector<int> fds;
  int port = 0;
  ASSERT_TRUE(OpenTcpListeners(Parsed("127.0.0.1", -1), 16, &fds, &port).ok());
  ASSERT_EQ(fds.size(), 1u);
  ASSERT_GT(port, 0);
  int first_port = port;
  // The IPv6 socket is V6ONLY, so the same port is free for it.
  ASSERT_TRUE(OpenTcpListeners(Parsed("[::1]:" + std::to_string(port)), 16, &fds, &port).ok());
  ASSERT_EQ(fds.size(), 2u);
  EXPECT_EQ(port, first_port);
  int client = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  addr.sin6_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(client);
  // Taken: binding it again fails and leaves nothing open.
  std::vector<int> more;
  EXPECT_FALSE(OpenTcpListeners(Parsed("[::1]:" + std::to_string(port)), 16, &more, &port).ok());
  EXPECT_TRUE(more.empty());
  for (int fd : fds) close(fd);
}

TEST(OpenTcpListeners, UnresolvableHostFails) {
  std::vector<int> fds;
  int port = 0;
  Status s = OpenTcpListeners(Parsed("no-such-host.invalid", -1), 16, &fds, &port);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no-such-host.invalid"), std::string::npos) << s.message();
  EXPECT_TRUE(fds.empty());
}

}  // namespace
}  // namespace cinch::net
