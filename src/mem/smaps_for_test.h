// Test helpers: what the kernel says about this process's own mappings (/proc/self/smaps).
// For tests only; not thread-safe against concurrent munmap of the mapping asked about.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

namespace cinch::mem {

// True when the kernel has transparent huge pages (and so reports VM_NOHUGEPAGE as "nh").
inline bool KernelHasThp() {
  return access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0;
}

// The VmFlags line ("rd wr mr mw me ac nh ...") of the mapping that holds `address`, or "" when
// no mapping holds it.
inline std::string VmFlagsAt(const void* address) {
  uintptr_t a = reinterpret_cast<uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's header line
      inside = lo <= a && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line.substr(8) + " ";
    }
  }
  return "";
}

// True when the mapping that holds `address` is marked MADV_NOHUGEPAGE.
inline bool NoHugePagesAt(const void* address) {
  return VmFlagsAt(address).find(" nh ") != std::string::npos;
}

}  // namespace cinch::mem
