#include "mem/mapping.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

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

void PopulateForWrite(char* p, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = PageSize();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes + page - 1) & ~(page - 1);
  (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace cinch::mem
