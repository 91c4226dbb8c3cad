/* fuzz.h: what every fuzz target in tests/fuzz/ shares. A target defines
 * LLVMFuzzerTestOneInput; libFuzzer drives it for `make fuzz`, and
 * replay_main.c feeds it the regression corpus inside `make test`. */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Splits data at the first occurrence of sep: the part before it is copied
 * into a NUL-terminated string (new; free with free()), *rest and
 * *rest_size describe the bytes after it. Without sep the whole input is
 * the head and the rest is empty. */
char *fuzz_split(const uint8_t *data, size_t size, const char *sep,
                 const uint8_t **rest, size_t *rest_size);

#endif
