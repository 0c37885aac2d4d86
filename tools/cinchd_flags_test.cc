// The command-line table: memcached's forms are read as memcached reads them, ignored flags
// warn once, refused ones fail, and the cross-flag rules (-s turns TCP off) hold.
#include "cinchd_flags.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace cinch::tools {
namespace {

struct Parsed {
  Status status;
  CommandLine cl;
};

Parsed Parse(std::initializer_list<const char*> args) {
  std::vector<std::string> storage = {"cinchd"};
  for (const char* a : args) storage.emplace_back(a);
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  Parsed p;
  p.status = ParseCommandLine(static_cast<int>(storage.size()), argv.data(), &p.cl);
  return p;
}

TEST(CinchdFlags, DefaultsListenOnLoopback) {
  Parsed p = Parse({});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.cl.server.loop.listen, std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(p.cl.server.loop.port, 11211);
  EXPECT_EQ(p.cl.server.memory_limit, size_t{64} << 20);
  EXPECT_TRUE(p.cl.warnings.empty());
}

TEST(CinchdFlags, DebianMemcachedConf) {
  Parsed p = Parse({"-d", "-P", "/run/memcached/memcached.pid", "-u", "memcache", "-m", "64", "-p",
                    "11211", "-l", "127.0.0.1", "-c", "1024", "-o", "modern"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_TRUE(p.cl.daemonize);
  EXPECT_EQ(p.cl.pid_file, "/run/memcached/memcached.pid");
  EXPECT_EQ(p.cl.user, "memcache");
  EXPECT_EQ(p.cl.server.loop.max_connections, 1024);
  ASSERT_EQ(p.cl.warnings.size(), 1u);
  EXPECT_NE(p.cl.warnings[0].find("-o modern ignored"), std::string::npos) << p.cl.warnings[0];
}

TEST(CinchdFlags, MemoryLimitFormsMemcachedReads) {
  EXPECT_EQ(Parse({"-m", "64"}).cl.server.memory_limit, size_t{64} << 20);
  EXPECT_EQ(Parse({"-m", "64m"}).cl.server.memory_limit, size_t{64} << 20);
  EXPECT_EQ(Parse({"-m", "64M"}).cl.server.memory_limit, size_t{64} << 20);
  EXPECT_EQ(Parse({"--memory-limit=2g"}).cl.server.memory_limit, size_t{2} << 30);
  EXPECT_EQ(Parse({"-m", "1048576", "-I", "1m"}).cl.server.memory_limit, size_t{1} << 40);
  for (const char* bad : {"0", "-5", "64k", "x", "", "1.5", "1048577", "1025g"}) {
    EXPECT_FALSE(Parse({"-m", bad}).status.ok()) << bad;
  }
}

TEST(CinchdFlags, SmallMemoryLimitLowersTheDefaultItemSize) {
  Parsed one = Parse({"-m", "1"});
  ASSERT_TRUE(one.status.ok()) << one.status.ToString();
  EXPECT_EQ(one.cl.server.memory_limit, size_t{1} << 20);
  EXPECT_EQ(one.cl.server.store.max_item_size, size_t{512} << 10);
  ASSERT_EQ(one.cl.warnings.size(), 1u);
  EXPECT_NE(one.cl.warnings[0].find("512 KiB"), std::string::npos) << one.cl.warnings[0];
  Parsed two = Parse({"-m", "2"});
  ASSERT_TRUE(two.status.ok()) << two.status.ToString();
  EXPECT_EQ(two.cl.server.store.max_item_size, size_t{1} << 20);
  EXPECT_TRUE(two.cl.warnings.empty());
  EXPECT_TRUE(Parse({"-m", "1", "-I", "512k"}).status.ok());
}

TEST(CinchdFlags, ListenRepeatedCommaAndIpv6) {
  Parsed p = Parse({"-l", "127.0.0.1", "-l", "::1,[::1]:11311;*:11400", "-l", "127.0.0.1"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.cl.server.loop.listen,
            (std::vector<std::string>{"127.0.0.1", "::1", "[::1]:11311", "*:11400"}));
  EXPECT_FALSE(Parse({"-l", "[::1"}).status.ok());
  EXPECT_FALSE(Parse({"-l", "127.0.0.1:http"}).status.ok());
}

TEST(CinchdFlags, UnixSocketTurnsTcpOff) {
  Parsed p = Parse({"-s", "/tmp/cinch.sock", "-a", "600", "-p", "11311", "-l", "127.0.0.1"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_TRUE(p.cl.server.loop.listen.empty());
  EXPECT_EQ(p.cl.server.loop.unix_socket, "/tmp/cinch.sock");
  EXPECT_EQ(p.cl.server.loop.unix_mask, 0600);
  EXPECT_FALSE(Parse({"-a", "800"}).status.ok());
}

TEST(CinchdFlags, HonouredFlags) {
  Parsed p = Parse({"-b", "77", "-t", "3", "-U", "0", "-vv", "-M", "-C", "-F", "-r", "-B", "ascii",
                    "-X", "-W", "-I", "2m"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  const server::ServerOptions& o = p.cl.server;
  EXPECT_EQ(o.loop.backlog, 77);
  EXPECT_EQ(o.loop.threads, 3);
  EXPECT_EQ(o.verbosity, 2);
  EXPECT_FALSE(o.store.eviction);
  EXPECT_FALSE(o.cas_enabled);
  EXPECT_FALSE(o.flush_enabled);
  EXPECT_TRUE(p.cl.core_dumps);
  EXPECT_EQ(o.store.max_item_size, size_t{2} << 20);
  EXPECT_EQ(o.protocol, server::ServerOptions::Protocol::kAscii);
  EXPECT_TRUE(p.cl.warnings.empty());
  EXPECT_EQ(Parse({"-B", "binary"}).cl.server.protocol, server::ServerOptions::Protocol::kBinary);
  EXPECT_EQ(Parse({}).cl.server.protocol, server::ServerOptions::Protocol::kAuto);
}

TEST(CinchdFlags, IgnoredFlagsWarnOnceEach) {
  Parsed p =
      Parse({"-k", "-n", "48", "-f", "1.25", "-L", "-D", ":", "-R", "20", "-A", "-N", "2", "-U",
             "11211", "-o", "slab_chunk_max=512,hashpower=20,lru_crawler,ext_threads=4", "-o",
             "slab_chunk_max=256"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.cl.warnings.size(), 13u);
  for (const std::string& w : p.cl.warnings) {
    EXPECT_NE(w.find(" ignored: "), std::string::npos) << w;
    EXPECT_EQ(w.find('\n'), std::string::npos) << w;
  }
}

TEST(CinchdFlags, UnsafeOrUnknownOptionsFail) {
  for (auto args : {std::vector<const char*>{"-Z"},
                    {"-S"},
                    {"-Y", ""},
                    {"-Y", "/tmp/auth", "--grpc-port", "9092"},
                    {"-B", "nonsense"},
                    {"-o", "proxy_config=x"},
                    {"-o", "no_such_key=1"},
                    {"--no-such-option"},
                    {"-p"},
                    {"stray"},
                    {"-c", "0"},
                    {"-m", "1", "-I", "1m"}}) {
    std::vector<std::string> storage = {"cinchd"};
    for (const char* a : args) storage.emplace_back(a);
    std::vector<char*> argv;
    for (std::string& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);
    CommandLine cl;
    Status s = ParseCommandLine(static_cast<int>(storage.size()), argv.data(), &cl);
    EXPECT_FALSE(s.ok()) << args[0];
    EXPECT_FALSE(s.message().empty());
  }
}

TEST(CinchdFlags, CinchExtendedKeys) {
  Parsed p = Parse(
      {"-o", "segment_size=256k,debugtime=1,io_uring=0,zero_copy_min=8k", "-o", "maxconns_fast"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.cl.server.store.segment_size, size_t{256} << 10);
  EXPECT_TRUE(p.cl.server.debugtime_enabled);
  EXPECT_FALSE(p.cl.server.loop.io_uring);
  EXPECT_EQ(p.cl.server.zero_copy_min, size_t{8} << 10);
  EXPECT_TRUE(p.cl.warnings.empty());
  EXPECT_FALSE(Parse({"-o", "io_uring=2"}).status.ok());
  EXPECT_EQ(Parse({"-o", "conn_memory=8m"}).cl.server.connection_memory, size_t{8} << 20);
}

// memcached's extstore syntax: PATH:SIZE with a unit, several files, one -o or many.
TEST(CinchdFlags, ExtPathFileTier) {
  Parsed p = Parse({"-o", "ext_path=/tmp/a:64m,ext_path=/tmp/b:2G", "-o", "ext_path=/t/c:1t", "-o",
                    "ext_path=/t/d:4096k"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  const std::vector<TierFile>& files = p.cl.server.store.tier_files;
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0].path, "/tmp/a");
  EXPECT_EQ(files[0].size, uint64_t{64} << 20);
  EXPECT_EQ(files[1].size, uint64_t{2} << 30);
  EXPECT_EQ(files[2].size, uint64_t{1} << 40);
  EXPECT_EQ(files[3].size, uint64_t{4} << 20);
  EXPECT_TRUE(p.cl.warnings.empty());
  EXPECT_TRUE(Parse({}).cl.server.store.tier_files.empty());
  for (const char* bad :
       {"ext_path=/tmp/a", "ext_path=:64m", "ext_path=/tmp/a:", "ext_path=/tmp/a:64",
        "ext_path=/tmp/a:m", "ext_path=/tmp/a:1.5g", "ext_path=/tmp/a:64x", "ext_path=/tmp/a:2t",
        "ext_path=/tmp/a:1p", "ext_path=/tmp/a:64m:compact", "ext_path=/tmp/a:0m",
        "ext_path=/tmp/a:64m,ext_path=/tmp/a:1g"}) {
    Parsed q = Parse({"-o", bad});
    EXPECT_FALSE(q.status.ok()) << bad;
    EXPECT_NE(q.status.message().find("ext_path"), std::string::npos) << q.status.message();
  }
  // Smaller than one segment.
  Parsed small = Parse({"-o", "ext_path=/tmp/a:512k"});
  EXPECT_FALSE(small.status.ok());
  EXPECT_NE(small.status.message().find("less than one segment"), std::string::npos);
  EXPECT_TRUE(Parse({"-o", "segment_size=256k,ext_path=/tmp/a:512k"}).status.ok());
  // Extstore's tuning keys are still accepted with a warning.
  Parsed tuned = Parse({"-o", "ext_path=/tmp/a:1g,ext_page_size=8"});
  ASSERT_TRUE(tuned.status.ok());
  EXPECT_EQ(tuned.cl.warnings.size(), 1u);
}

TEST(CinchdFlags, AcCheck) {
  EXPECT_TRUE(Parse({}).cl.server.ac_check);
  EXPECT_FALSE(Parse({"-o", "ac_check=0"}).cl.server.ac_check);
  EXPECT_TRUE(Parse({"-o", "ac_check=1"}).cl.server.ac_check);
  EXPECT_FALSE(Parse({"-o", "ac_check=2"}).status.ok());
}

TEST(CinchdFlags, IdleTimeout) {
  EXPECT_EQ(Parse({}).cl.server.loop.idle_timeout_s, 0);
  Parsed set = Parse({"-o", "idle_timeout=30"});
  ASSERT_TRUE(set.status.ok());
  EXPECT_EQ(set.cl.server.loop.idle_timeout_s, 30);
  EXPECT_TRUE(set.cl.warnings.empty());  // honoured, no longer "ignored"
  EXPECT_FALSE(Parse({"-o", "idle_timeout=-1"}).status.ok());
  EXPECT_FALSE(Parse({"-o", "idle_timeout=x"}).status.ok());
}

TEST(CinchdFlags, HttpPort) {
  EXPECT_EQ(Parse({}).cl.server.http_port, 0);
  Parsed p = Parse({"--http-port", "8080"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.cl.server.http_port, 8080);
  EXPECT_EQ(Parse({"--http-port=9090"}).cl.server.http_port, 9090);
  // With -Y the HTTP port asks for the auth file's credentials (HTTP Basic).
  EXPECT_TRUE(Parse({"-Y", "/tmp/auth", "--http-port", "8080"}).status.ok());
  EXPECT_EQ(Parse({"-o", "http_port=7070"}).cl.server.http_port, 7070);
  EXPECT_FALSE(Parse({"--http-port", "65536"}).status.ok());
  EXPECT_FALSE(Parse({"--http-port", "x"}).status.ok());
  EXPECT_FALSE(Parse({"--http-port"}).status.ok());
  EXPECT_FALSE(Parse({"--http-port", "11211"}).status.ok());  // the memcached port
  EXPECT_FALSE(Parse({"--http-port", "8080", "-s", "/tmp/cinch.sock"}).status.ok());
  // Long only: no short option stands for it.
  EXPECT_FALSE(Parse({"-\x01", "8080"}).status.ok());
}

TEST(CinchdFlags, GrpcPortLongOnlyAndExtendedKey) {
  EXPECT_EQ(Parse({}).cl.server.grpc_port, 0);
  EXPECT_EQ(Parse({"--grpc-port", "9092"}).cl.server.grpc_port, 9092);
  EXPECT_EQ(Parse({"--grpc-port=9093"}).cl.server.grpc_port, 9093);
  EXPECT_EQ(Parse({"-o", "grpc_port=9094"}).cl.server.grpc_port, 9094);
  EXPECT_EQ(Parse({"-o", "grpc_memory=16m"}).cl.server.grpc_memory, size_t{16} << 20);
  EXPECT_FALSE(Parse({"--grpc-port", "70000"}).status.ok());
  EXPECT_FALSE(Parse({"--grpc-port", "x"}).status.ok());
  EXPECT_FALSE(Parse({"--grpc-port", "11211"}).status.ok());  // the memcached port
  EXPECT_FALSE(Parse({"--grpc-port", "8080", "--http-port", "8080"}).status.ok());
  EXPECT_FALSE(Parse({"--grpc-port", "8080", "-s", "/tmp/cinch.sock"}).status.ok());
  EXPECT_TRUE(Parse({"--grpc-port", "9092", "--http-port", "8080"}).status.ok());
}

TEST(CinchdFlags, HelpAndVersion) {
  EXPECT_TRUE(Parse({"-h"}).cl.print_help);
  EXPECT_TRUE(Parse({"--version"}).cl.print_version);
  EXPECT_TRUE(Parse({"-i"}).cl.print_license);
}

}  // namespace
TEST(CinchdFlags, AuthFileAndSasl) {
  Parsed p = Parse({"-Y", "/etc/cinch/users"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.cl.server.auth_file, "/etc/cinch/users");
  EXPECT_FALSE(p.cl.server.require_sasl);
  p = Parse({"-S", "--auth-file=/etc/cinch/users"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_TRUE(p.cl.server.require_sasl);
  EXPECT_EQ(p.cl.server.auth_file, "/etc/cinch/users");
  p = Parse({"-S"});
  EXPECT_FALSE(p.status.ok());
  EXPECT_NE(p.status.message().find("-Y"), std::string::npos) << p.status.message();
}

}  // namespace cinch::tools
