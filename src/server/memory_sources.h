// What the kernel says about the memory cinchd may use: the cgroup's limit (v1
// memory.limit_in_bytes, v2 memory.max and memory.high) and signs of memory pressure (PSI,
// cgroup v2 memory.events, /proc/meminfo's MemAvailable). See docs/memory-pressure.md.
//
// The Parse* functions are pure (file text in, figures out) so that tests feed them fixtures;
// MemorySources reads the files, under roots a test may point at a directory of its own.
//
// Thread safety: the functions are pure; a MemorySources is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cinch::server {

// The process's own cgroups, from /proc/self/cgroup ("hierarchy:controllers:path" lines).
struct ProcCgroups {
  std::optional<std::string> v1_memory;  // path in the v1 memory hierarchy
  std::optional<std::string> v2;         // path in the unified (v2) hierarchy ("0::/path")
};
ProcCgroups ParseProcCgroups(std::string_view text);

// Where the cgroup filesystems are mounted, from /proc/self/mountinfo: the mount point and
// the hierarchy path it shows (its root, "/" unless a container mounts its own subtree).
struct CgroupMount {
  std::string mount_point;
  std::string root;
};
struct CgroupMounts {
  std::optional<CgroupMount> v1_memory;  // fstype cgroup with the memory controller
  std::optional<CgroupMount> v2;         // fstype cgroup2
};
CgroupMounts ParseMountInfo(std::string_view text);

// The directory of cgroup `path` under `mount`, or nullopt when the mount does not show it.
std::optional<std::string> CgroupDirectory(const CgroupMount& mount, std::string_view path);

// A limit file: a byte count, or no limit ("max"; v1's "unlimited" is a number near 2^63).
// nullopt for no limit or text that is not one.
std::optional<uint64_t> ParseLimitFile(std::string_view text);
// v1 memory.stat's hierarchical_memory_limit: the least limit of the cgroup and its parents.
std::optional<uint64_t> ParseHierarchicalLimit(std::string_view memory_stat);

// PSI (/proc/pressure/memory, a v2 cgroup's memory.pressure): the "some" line's avg10
// (percent of the last 10 s some task stalled on memory) and total (microseconds).
struct PsiReading {
  double some_avg10 = 0;
  uint64_t some_total_us = 0;
};
std::optional<PsiReading> ParsePsi(std::string_view text);

// A v2 cgroup's memory.events: times the cgroup went over memory.high (throttled and
// reclaimed) and hit memory.max (reclaim to stay under it), and OOM kills.
struct MemoryEvents {
  uint64_t high = 0;
  uint64_t max = 0;
  uint64_t oom_kill = 0;
};
std::optional<MemoryEvents> ParseMemoryEvents(std::string_view text);

// /proc/meminfo: MemTotal and MemAvailable, in bytes.
struct MemInfo {
  uint64_t total = 0;
  uint64_t available = 0;
};
std::optional<MemInfo> ParseMemInfo(std::string_view text);

// Reads the files above for this process. Roots: "/proc" and "/" (for mount points named in
// mountinfo) normally; a test points them at a directory of fixtures.
class MemorySources {
 public:
  struct Roots {
    std::string proc = "/proc";
    std::string fs = "";  // prefixed to mount points from mountinfo
  };
  explicit MemorySources(Roots roots);

  // The cgroup's limit on the process's memory: the least of v1 hierarchical_memory_limit
  // (or memory.limit_in_bytes), v2 memory.max and memory.high of the cgroup and each parent.
  // nullopt: no cgroup limit (or none readable). Read anew on every call: limits change.
  std::optional<uint64_t> CgroupLimit() const;
  // Where the cgroup limit comes from, for the log ("cgroup v1 /a/b", "cgroup v2 /a/b").
  const std::string& cgroup_name() const { return cgroup_name_; }

  // The file whose PSI trigger or averages to use: the v2 cgroup's memory.pressure, else
  // /proc/pressure/memory; empty when neither exists.
  const std::string& psi_path() const { return psi_path_; }
  std::optional<PsiReading> ReadPsi() const;
  // The v2 cgroup's memory.events, nullopt without one.
  std::optional<MemoryEvents> ReadMemoryEvents() const;
  std::optional<MemInfo> ReadMemInfo() const;

 private:
  Roots roots_;
  std::optional<std::string> v1_dir_;  // the memory cgroup's directory (v1)
  std::optional<std::string> v2_dir_;  // the unified cgroup's directory (v2)
  std::string v2_mount_dir_;           // the v2 mount point: the walk up stops there
  std::string cgroup_name_;
  std::string psi_path_;
};

// The whole text of a small file (at most 64 KiB), or nullopt when it cannot be read.
std::optional<std::string> ReadSmallFile(const std::string& path);

}  // namespace cinch::server
