/* tap.h: the unit tests' tiny harness. Each check prints "ok - name" or
 * "not ok - name: detail"; tests/run.sh counts the lines. A test program
 * exits non-zero when any check failed. */
#ifndef SLUICE_TAP_H
#define SLUICE_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_failed;
static int tap_count;

#define TAP_OK(cond, ...)                                                      \
        do {                                                                   \
                tap_count++;                                                   \
                if (cond) {                                                    \
                        printf("ok - ");                                       \
                        printf(__VA_ARGS__);                                   \
                        printf("\n");                                          \
                } else {                                                       \
                        tap_failed++;                                          \
                        printf("not ok - ");                                   \
                        printf(__VA_ARGS__);                                   \
                        printf(" (%s:%d: %s)\n", __FILE__, __LINE__, #cond);   \
                }                                                              \
        } while (0)

#define TAP_STR_EQ(got, want, ...)                                             \
        do {                                                                   \
                const char *tap_g_ = (got), *tap_w_ = (want);                  \
                int tap_eq_ = tap_g_ && tap_w_ ? strcmp(tap_g_, tap_w_) == 0   \
                                               : tap_g_ == tap_w_;             \
                TAP_OK(tap_eq_, __VA_ARGS__);                                  \
                if (!tap_eq_)                                                  \
                        printf("#   got:  \"%s\"\n#   want: \"%s\"\n",         \
                               tap_g_ ? tap_g_ : "(null)",                     \
                               tap_w_ ? tap_w_ : "(null)");                    \
        } while (0)

#define TAP_INT_EQ(got, want, ...)                                             \
        do {                                                                   \
                long long tap_g_ = (long long)(got),                           \
                          tap_w_ = (long long)(want);                          \
                TAP_OK(tap_g_ == tap_w_, __VA_ARGS__);                         \
                if (tap_g_ != tap_w_)                                          \
                        printf("#   got: %lld want: %lld\n", tap_g_, tap_w_);  \
        } while (0)

#define TAP_DONE() (tap_failed ? 1 : 0)

#endif
