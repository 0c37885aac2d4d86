#include "server/memory_sources.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <vector>

namespace cinch::server {

namespace {

// v1 reports "no limit" as the largest page-aligned int64 (9223372036854771712); anything
// from 2^60 on (an exbibyte) is no limit in practice.
constexpr uint64_t kNoLimitFrom = uint64_t{1} << 60;

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r'))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "key value" lines (memory.stat, memory.events).
std::optional<uint64_t> KeyedValue(std::string_view text, std::string_view key) {
  for (std::string_view line : Split(text, '\n')) {
    std::vector<std::string_view> w = Words(line);
    if (w.size() == 2 && w[0] == key) return ParseU64(w[1]);
  }
  return std::nullopt;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::optional<uint64_t> Least(std::optional<uint64_t> a, std::optional<uint64_t> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

}  // namespace

ProcCgroups ParseProcCgroups(std::string_view text) {
  ProcCgroups out;
  for (std::string_view line : Split(text, '\n')) {
    // hierarchy-ID:controller-list:cgroup-path (the path may itself hold ':').
    const size_t a = line.find(':');
    if (a == std::string_view::npos) continue;
    const size_t b = line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    const std::string_view id = line.substr(0, a);
    const std::string_view controllers = line.substr(a + 1, b - a - 1);
    const std::string path(line.substr(b + 1));
    if (id == "0" && controllers.empty()) {
      out.v2 = path;
      continue;
    }
    for (std::string_view c : Split(controllers, ',')) {
      if (c == "memory") out.v1_memory = path;
    }
  }
  return out;
}

CgroupMounts ParseMountInfo(std::string_view text) {
  CgroupMounts out;
  for (std::string_view line : Split(text, '\n')) {
    std::vector<std::string_view> w = Words(line);
    // id parent major:minor root mount-point options [optional fields...] - fstype source super
    auto dash = std::find(w.begin(), w.end(), std::string_view("-"));
    if (w.size() < 5 || dash == w.end() || w.end() - dash < 4) continue;
    const std::string_view fstype = dash[1];
    CgroupMount m{std::string(w[4]), std::string(w[3])};
    if (fstype == "cgroup2" && !out.v2) {
      out.v2 = m;
    } else if (fstype == "cgroup" && !out.v1_memory) {
      for (std::string_view option : Split(dash[3], ',')) {
        if (option == "memory") out.v1_memory = m;
      }
    }
  }
  return out;
}

std::optional<std::string> CgroupDirectory(const CgroupMount& mount, std::string_view path) {
  std::string_view root = mount.root;
  if (root == "/") root = "";
  if (path.substr(0, root.size()) != root) return std::nullopt;
  std::string_view rest = path.substr(root.size());
  if (!rest.empty() && rest.front() != '/') return std::nullopt;  // "/a" is no root of "/ab"
  std::string dir = mount.mount_point;
  if (rest != "/") dir += rest;
  return dir;
}

std::optional<uint64_t> ParseLimitFile(std::string_view text) {
  std::optional<uint64_t> v = ParseU64(Trim(text));
  if (!v || *v >= kNoLimitFrom) return std::nullopt;
  return v;
}

std::optional<uint64_t> ParseHierarchicalLimit(std::string_view memory_stat) {
  std::optional<uint64_t> v = KeyedValue(memory_stat, "hierarchical_memory_limit");
  if (!v || *v >= kNoLimitFrom) return std::nullopt;
  return v;
}

std::optional<PsiReading> ParsePsi(std::string_view text) {
  // some avg10=0.00 avg60=0.00 avg300=0.00 total=0
  for (std::string_view line : Split(text, '\n')) {
    std::vector<std::string_view> w = Words(line);
    if (w.empty() || w[0] != "some") continue;
    PsiReading r;
    bool avg = false, total = false;
    for (std::string_view field : w) {
      if (field.starts_with("avg10=")) {
        std::string value(field.substr(6));
        char* end = nullptr;
        r.some_avg10 = std::strtod(value.c_str(), &end);
        avg = end != value.c_str() && *end == '\0';
      } else if (field.starts_with("total=")) {
        std::optional<uint64_t> t = ParseU64(field.substr(6));
        if (t) r.some_total_us = *t;
        total = t.has_value();
      }
    }
    if (avg && total) return r;
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<MemoryEvents> ParseMemoryEvents(std::string_view text) {
  std::optional<uint64_t> high = KeyedValue(text, "high"), max = KeyedValue(text, "max");
  if (!high || !max) return std::nullopt;
  return MemoryEvents{*high, *max, KeyedValue(text, "oom_kill").value_or(0)};
}

std::optional<MemInfo> ParseMemInfo(std::string_view text) {
  // "MemAvailable:   23622844 kB"
  std::optional<uint64_t> total, available;
  for (std::string_view line : Split(text, '\n')) {
    std::vector<std::string_view> w = Words(line);
    if (w.size() != 3 || w[2] != "kB") continue;
    if (w[0] == "MemTotal:") total = ParseU64(w[1]);
    if (w[0] == "MemAvailable:") available = ParseU64(w[1]);
  }
  if (!total || !available) return std::nullopt;
  return MemInfo{*total * 1024, *available * 1024};
}

std::optional<std::string> ReadSmallFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0 && text.size() < 65536) {
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (n < 0) return std::nullopt;
  return text;
}

MemorySources::MemorySources(Roots roots) : roots_(std::move(roots)) {
  const ProcCgroups groups =
      ParseProcCgroups(ReadSmallFile(roots_.proc + "/self/cgroup").value_or(""));
  const CgroupMounts mounts =
      ParseMountInfo(ReadSmallFile(roots_.proc + "/self/mountinfo").value_or(""));
  if (groups.v1_memory && mounts.v1_memory) {
    if (auto dir = CgroupDirectory(*mounts.v1_memory, *groups.v1_memory)) {
      if (IsDirectory(roots_.fs + *dir)) {
        v1_dir_ = roots_.fs + *dir;
        cgroup_name_ = "cgroup v1 " + *groups.v1_memory;
      }
    }
  }
  if (groups.v2 && mounts.v2) {
    if (auto dir = CgroupDirectory(*mounts.v2, *groups.v2)) {
      // A hybrid host mounts v2 without controllers (no memory.max): only its PSI file counts.
      if (IsDirectory(roots_.fs + *dir)) {
        v2_dir_ = roots_.fs + *dir;
        v2_mount_dir_ = roots_.fs + mounts.v2->mount_point;
        if (!v1_dir_) cgroup_name_ = "cgroup v2 " + *groups.v2;
      }
    }
  }
  if (v2_dir_ && *v2_dir_ != v2_mount_dir_ &&
      access((*v2_dir_ + "/memory.pressure").c_str(), R_OK) == 0) {
    psi_path_ = *v2_dir_ + "/memory.pressure";
  } else if (access((roots_.proc + "/pressure/memory").c_str(), R_OK) == 0) {
    psi_path_ = roots_.proc + "/pressure/memory";
  }
}

std::optional<uint64_t> MemorySources::CgroupLimit() const {
  std::optional<uint64_t> limit;
  if (v1_dir_) {
    std::optional<uint64_t> v1 =
        ParseHierarchicalLimit(ReadSmallFile(*v1_dir_ + "/memory.stat").value_or(""));
    if (!v1) v1 = ParseLimitFile(ReadSmallFile(*v1_dir_ + "/memory.limit_in_bytes").value_or(""));
    limit = Least(limit, v1);
  }
  if (v2_dir_) {
    // The cgroup and every parent up to the mount's root: a parent's limit binds its children.
    std::string dir = *v2_dir_;
    while (dir.size() > v2_mount_dir_.size()) {
      for (const char* file : {"/memory.max", "/memory.high"}) {
        limit = Least(limit, ParseLimitFile(ReadSmallFile(dir + file).value_or("")));
      }
      dir.resize(dir.rfind('/'));
    }
  }
  return limit;
}

std::optional<PsiReading> MemorySources::ReadPsi() const {
  if (psi_path_.empty()) return std::nullopt;
  return ParsePsi(ReadSmallFile(psi_path_).value_or(""));
}

std::optional<MemoryEvents> MemorySources::ReadMemoryEvents() const {
  if (!v2_dir_ || *v2_dir_ == v2_mount_dir_) return std::nullopt;
  return ParseMemoryEvents(ReadSmallFile(*v2_dir_ + "/memory.events").value_or(""));
}

std::optional<MemInfo> MemorySources::ReadMemInfo() const {
  return ParseMemInfo(ReadSmallFile(roots_.proc + "/meminfo").value_or(""));
}

}  // namespace cinch::server
