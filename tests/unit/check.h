/*
** check.h: the unit-test harness. TAP output ("ok N - name" / "not ok N - name"), checks
** that report file:line, and a closing line "N passed, N failed" that tests/run.sh sums.
**
**   static void test_foo(void) { CHECK(1 + 1 == 2); CHECK_STR(s, "x"); }
**   int main(void) { RUN(test_foo); return check_done(); }
*/
#ifndef PLUME_CHECK_H
#define PLUME_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_current_failed, check_n;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stdout, "#   %s:%d: check failed: %s\n", __FILE__, __LINE__,     \
              #cond);                                                          \
      check_current_failed++;                                                  \
    }                                                                          \
  } while (0)

#define CHECK_EQ(a, b)                                                         \
  do {                                                                         \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);            \
    if (check_a_ != check_b_) {                                                \
      fprintf(stdout, "#   %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,  \
              __LINE__, #a, #b, check_a_, check_b_);                           \
      check_current_failed++;                                                  \
    }                                                                          \
  } while (0)

/* Compares n bytes of a with the NUL-terminated b, exactly. */
#define CHECK_MEM(a, n, b)                                                     \
  do {                                                                         \
    size_t check_n_ = (size_t)(n);                                             \
    const char *check_b_ = (b);                                                \
    if (check_n_ != strlen(check_b_) || memcmp((a), check_b_, check_n_)) {     \
      fprintf(stdout, "#   %s:%d: got \"%.*s\", want \"%s\"\n", __FILE__,      \
              __LINE__, (int)check_n_, (const char *)(a), check_b_);           \
      check_current_failed++;                                                  \
    }                                                                          \
  } while (0)

#define CHECK_STR(a, b) CHECK_MEM((a), strlen(a), (b))

#define RUN(fn)                                                                \
  do {                                                                         \
    check_current_failed = 0;                                                  \
    fn();                                                                      \
    check_n++;                                                                 \
    if (check_current_failed) {                                                \
      check_failed++;                                                          \
      fprintf(stdout, "not ok %d - %s\n", check_n, #fn);                       \
    } else {                                                                   \
      check_passed++;                                                          \
      fprintf(stdout, "ok %d - %s\n", check_n, #fn);                           \
    }                                                                          \
    fflush(stdout);                                                            \
  } while (0)

static inline int check_done(void) {
  fprintf(stdout, "1..%d\n%d passed, %d failed\n", check_n, check_passed,
          check_failed);
  return check_failed ? 1 : 0;
}

#endif
