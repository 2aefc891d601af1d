// Minimal test helpers for the torch-free kernel tests (run by ctest).
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>

static int pf3d_failures = 0;

#define PF3D_CHECK(cond)                                                     \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                   \
      ++pf3d_failures;                                                       \
    }                                                                        \
  } while (0)

#define PF3D_CHECK_NEAR(a, b, tol)                                                         \
  do {                                                                                     \
    double _a = (a), _b = (b);                                                             \
    if (!(std::fabs(_a - _b) <= (tol))) {                                                  \
      std::fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g vs %s = %.9g (tol %g)\n", \
                   __FILE__, __LINE__, #a, _a, #b, _b, (double)(tol));                    \
      ++pf3d_failures;                                                                     \
    }                                                                                      \
  } while (0)

#define PF3D_TEST_MAIN_END()                                      \
  do {                                                            \
    if (pf3d_failures) {                                          \
      std::fprintf(stderr, "%d check(s) failed\n", pf3d_failures); \
      return 1;                                                   \
    }                                                             \
    std::printf("all checks passed\n");                           \
    return 0;                                                     \
  } while (0)
