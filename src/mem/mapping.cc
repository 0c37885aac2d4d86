#include "mem/mapping.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

namespace cinch::mem {

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

size_t RoundUpToPage(size_t bytes) { return (bytes + PageSize() - 1) & ~(PageSize() - 1); }

char* MapNoReserve(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  // EINVAL: a kernel built without transparent huge pages, so there is nothing to opt out of.
  if (madvise(p, bytes, MADV_NOHUGEPAGE) != 0 && errno != EINVAL) {
    munmap(p, bytes);
    return nullptr;
  }
  return static_cast<char*>(p);
}

}  // namespace cinch::mem
