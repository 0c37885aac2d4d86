// Anonymous mappings for the engine's memory (the segment arena, its table, jumbo items, the
// index reservation): address space reserved without committing swap, filled in page by page as
// it is touched, and never backed by transparent huge pages.
//
// Why no huge pages: the engine charges memory to the Accountant one page or one segment at a
// time, before touching it. With THP `always` (or khugepaged, which collapses a 2 MiB stretch
// holding a single resident page) the kernel would back a touched page with a 2 MiB page, and the
// resident size would outgrow the charged size up to 2x. MADV_NOHUGEPAGE is set on every mapping
// here so the store holds its limit in any host process, whatever that process or the system's
// THP mode does. See docs/memory-accounting.md.
//
// Thread safety: all functions are safe from any thread.
#pragma once

#include <cstddef>

namespace cinch::mem {

// The system page size.
size_t PageSize();

// Bytes rounded up to whole pages of the system.
size_t RoundUpToPage(size_t bytes);

// Maps `bytes` (a page multiple) of zeroed private anonymous memory, MAP_NORESERVE and
// MADV_NOHUGEPAGE. Returns nullptr when either fails. Give it back with munmap.
char* MapNoReserve(size_t bytes);

// Makes the pages of [p, p + bytes) resident and writable in one call (MADV_POPULATE_WRITE),
// as writing them would one page fault at a time: for memory about to be filled whole by a
// read(2), whose copy would otherwise stop at every page. The caller has charged the memory.
// A kernel without it (before 5.14) leaves the pages to fault as they are written.
void PopulateForWrite(char* p, size_t bytes);

}  // namespace cinch::mem
