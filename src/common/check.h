// CINCH_CHECK: crash on a broken invariant. Used for programming errors only, never for
// outcomes a client or the operating system can cause.
#pragma once

#include <cstdio>
#include <cstdlib>

#define CINCH_CHECK(cond)                                                                  \
  do {                                                                                     \
    if (__builtin_expect(!(cond), 0)) {                                                    \
      std::fprintf(stderr, "%s:%d: CINCH_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

#ifdef NDEBUG
#define CINCH_DCHECK(cond) \
  do {                     \
  } while (0)
#else
#define CINCH_DCHECK(cond) CINCH_CHECK(cond)
#endif
