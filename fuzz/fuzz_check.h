// FUZZ_CHECK: the fuzz targets' assertion. It stays on in every build (unlike CINCH_DCHECK) and
// traps, so libFuzzer reports the input as a crash and saves it.
#pragma once

#include <cstdio>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (__builtin_expect(!(cond), 0)) {                                                  \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      __builtin_trap();                                                                  \
    }                                                                                    \
  } while (0)
