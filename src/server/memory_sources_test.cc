#include "server/memory_sources.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace cinch::server {
namespace {

// /proc/self/cgroup of a host with v1 controllers and an empty v2 hierarchy (this CI machine's
// kind), and of a v2-only host (systemd service).
constexpr char kHybridCgroups[] =
    "9:name=systemd:/\n"
    "8:pids:/\n"
    "4:memory:/process_api/ef2b\n"
    "3:cpuset:/\n"
    "1:cpu,cpuacct:/\n"
    "0::/\n";
constexpr char kUnifiedCgroups[] = "0::/system.slice/cinchd.service\n";

constexpr char kMountInfo[] =
    "24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "31 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "35 31 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup "
    "cgroup rw,memory\n"
    "36 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:16 - cgroup cgroup "
    "rw,cpu,cpuacct\n"
    "32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
    "cgroup2 rw,nsdelegate\n";

TEST(MemorySourcesTest, ParsesProcSelfCgroup) {
  ProcCgroups hybrid = ParseProcCgroups(kHybridCgroups);
  ASSERT_TRUE(hybrid.v1_memory.has_value());
  EXPECT_EQ(*hybrid.v1_memory, "/process_api/ef2b");
  ASSERT_TRUE(hybrid.v2.has_value());
  EXPECT_EQ(*hybrid.v2, "/");
  ProcCgroups unified = ParseProcCgroups(kUnifiedCgroups);
  EXPECT_FALSE(unified.v1_memory.has_value());
  EXPECT_EQ(unified.v2.value_or(""), "/system.slice/cinchd.service");
  EXPECT_FALSE(ParseProcCgroups("").v2.has_value());
  // A path may hold ':'.
  EXPECT_EQ(ParseProcCgroups("5:memory:/a:b\n").v1_memory.value_or(""), "/a:b");
}

TEST(MemorySourcesTest, ParsesMountInfo) {
  CgroupMounts m = ParseMountInfo(kMountInfo);
  ASSERT_TRUE(m.v1_memory.has_value());
  EXPECT_EQ(m.v1_memory->mount_point, "/sys/fs/cgroup/memory");
  EXPECT_EQ(m.v1_memory->root, "/");
  ASSERT_TRUE(m.v2.has_value());
  EXPECT_EQ(m.v2->mount_point, "/sys/fs/cgroup/unified");
  // The cpu hierarchy is not the memory one.
  EXPECT_FALSE(ParseMountInfo("36 31 0:31 / /c rw - cgroup cgroup rw,cpu\n").v1_memory);
  EXPECT_FALSE(ParseMountInfo("garbage\n\n - \n").v2);
}

TEST(MemorySourcesTest, FindsTheCgroupsDirectoryUnderItsMount) {
  EXPECT_EQ(CgroupDirectory({"/sys/fs/cgroup", "/"}, "/a/b").value_or(""), "/sys/fs/cgroup/a/b");
  EXPECT_EQ(CgroupDirectory({"/sys/fs/cgroup", "/"}, "/").value_or(""), "/sys/fs/cgroup");
  // A container's own subtree mounted as the root.
  EXPECT_EQ(CgroupDirectory({"/sys/fs/cgroup", "/docker/abc"}, "/docker/abc").value_or(""),
            "/sys/fs/cgroup");
  EXPECT_EQ(CgroupDirectory({"/sys/fs/cgroup", "/docker/abc"}, "/docker/abc/x").value_or(""),
            "/sys/fs/cgroup/x");
  EXPECT_FALSE(CgroupDirectory({"/sys/fs/cgroup", "/docker/abc"}, "/docker/abcd"));
  EXPECT_FALSE(CgroupDirectory({"/sys/fs/cgroup", "/docker/abc"}, "/other"));
}

TEST(MemorySourcesTest, ParsesLimits) {
  EXPECT_EQ(ParseLimitFile("100663296\n").value_or(0), 100663296u);
  EXPECT_FALSE(ParseLimitFile("max\n"));
  EXPECT_FALSE(ParseLimitFile("9223372036854771712\n"));  // v1's "unlimited"
  EXPECT_FALSE(ParseLimitFile(""));
  EXPECT_FALSE(ParseLimitFile("12x\n"));
  EXPECT_EQ(ParseHierarchicalLimit("cache 0\nrss 4096\nhierarchical_memory_limit 100663296\n"
                                   "hierarchical_memsw_limit 9223372036854771712\n")
                .value_or(0),
            100663296u);
  EXPECT_FALSE(ParseHierarchicalLimit("hierarchical_memory_limit 9223372036854771712\n"));
}

TEST(MemorySourcesTest, ParsesPressureEventsAndMemInfo) {
  std::optional<PsiReading> psi = ParsePsi(
      "some avg10=12.50 avg60=3.00 avg300=0.70 total=4567890\n"
      "full avg10=1.00 avg60=0.00 avg300=0.00 total=12\n");
  ASSERT_TRUE(psi.has_value());
  EXPECT_DOUBLE_EQ(psi->some_avg10, 12.5);
  EXPECT_EQ(psi->some_total_us, 4567890u);
  EXPECT_FALSE(ParsePsi("full avg10=1.00 avg60=0.00 avg300=0.00 total=12\n"));
  EXPECT_FALSE(ParsePsi("some avg10=x total=1\n"));

  std::optional<MemoryEvents> events =
      ParseMemoryEvents("low 0\nhigh 17\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n");
  ASSERT_TRUE(events.has_value());
  EXPECT_EQ(events->high, 17u);
  EXPECT_EQ(events->max, 3u);
  EXPECT_EQ(events->oom_kill, 1u);
  EXPECT_FALSE(ParseMemoryEvents("low 0\n"));

  std::optional<MemInfo> info = ParseMemInfo(
      "MemTotal:       24683968 kB\nMemFree:        23000000 kB\nMemAvailable:   23622844 kB\n");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->total, uint64_t{24683968} * 1024);
  EXPECT_EQ(info->available, uint64_t{23622844} * 1024);
  EXPECT_FALSE(ParseMemInfo("MemTotal: 1 kB\n"));  // a kernel before 3.14
}

// A directory of fixture files standing for /proc and the cgroup filesystems.
class FixtureRoot {
 public:
  FixtureRoot() {
    char tmpl[] = "/tmp/cinch_memory_sources_XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~FixtureRoot() { std::filesystem::remove_all(root_); }
  void Write(const std::string& path, const std::string& text) {
    for (size_t at = 1; (at = path.find('/', at)) != std::string::npos; ++at) {
      mkdir((root_ + path.substr(0, at)).c_str(), 0755);
    }
    std::ofstream(root_ + path) << text;
  }
  MemorySources::Roots roots() const { return {root_ + "/proc", root_}; }

 private:
  std::string root_;
};

TEST(MemorySourcesTest, ReadsTheV1LimitOfTheProcesssCgroup) {
  FixtureRoot f;
  f.Write("/proc/self/cgroup", kHybridCgroups);
  f.Write("/proc/self/mountinfo", kMountInfo);
  f.Write("/sys/fs/cgroup/memory/process_api/ef2b/memory.limit_in_bytes", "100663296\n");
  f.Write("/sys/fs/cgroup/unified/cgroup.procs", "");
  f.Write("/proc/pressure/memory", "some avg10=0.00 avg60=0.00 avg300=0.00 total=10\n");
  MemorySources sources(f.roots());
  EXPECT_EQ(sources.CgroupLimit().value_or(0), 100663296u);
  EXPECT_EQ(sources.cgroup_name(), "cgroup v1 /process_api/ef2b");
  // The root of a hybrid host's empty v2 hierarchy has no memory.pressure: the host's PSI.
  EXPECT_EQ(sources.psi_path(), f.roots().proc + "/pressure/memory");
  EXPECT_EQ(sources.ReadPsi().value_or(PsiReading{}).some_total_us, 10u);
  EXPECT_FALSE(sources.ReadMemoryEvents());
  // memory.stat's hierarchical limit (a parent's lower limit) wins where the kernel has it.
  f.Write("/sys/fs/cgroup/memory/process_api/ef2b/memory.stat",
          "rss 0\nhierarchical_memory_limit 67108864\n");
  EXPECT_EQ(sources.CgroupLimit().value_or(0), 67108864u);
}

TEST(MemorySourcesTest, ReadsTheLeastV2LimitUpTheTree) {
  FixtureRoot f;
  f.Write("/proc/self/cgroup", "0::/a/b\n");
  f.Write("/proc/self/mountinfo", "30 24 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  f.Write("/sys/fs/cgroup/memory.max", "1\n");  // the root has none; a file here is ignored
  f.Write("/sys/fs/cgroup/a/memory.max", "max\n");
  f.Write("/sys/fs/cgroup/a/memory.high", "268435456\n");
  f.Write("/sys/fs/cgroup/a/b/memory.max", "536870912\n");
  f.Write("/sys/fs/cgroup/a/b/memory.high", "max\n");
  f.Write("/sys/fs/cgroup/a/b/memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n");
  f.Write("/sys/fs/cgroup/a/b/memory.events", "low 0\nhigh 2\nmax 0\noom 0\noom_kill 0\n");
  MemorySources sources(f.roots());
  EXPECT_EQ(sources.CgroupLimit().value_or(0), 268435456u);
  EXPECT_EQ(sources.cgroup_name(), "cgroup v2 /a/b");
  EXPECT_EQ(sources.psi_path(), f.roots().fs + "/sys/fs/cgroup/a/b/memory.pressure");
  EXPECT_EQ(sources.ReadMemoryEvents().value_or(MemoryEvents{}).high, 2u);
  f.Write("/sys/fs/cgroup/a/memory.high", "max\n");
  EXPECT_EQ(sources.CgroupLimit().value_or(0), 536870912u);
}

TEST(MemorySourcesTest, NoCgroupNoLimit) {
  FixtureRoot f;
  f.Write("/proc/self/cgroup", "0::/\n");
  f.Write("/proc/self/mountinfo", "");
  f.Write("/proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 10 kB\n");
  MemorySources sources(f.roots());
  EXPECT_FALSE(sources.CgroupLimit());
  EXPECT_TRUE(sources.psi_path().empty());
  EXPECT_EQ(sources.ReadMemInfo().value_or(MemInfo{}).available, 10u * 1024);
}

}  // namespace
}  // namespace cinch::server
