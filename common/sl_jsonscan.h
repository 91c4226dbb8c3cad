/* sl_jsonscan: a strict JSON validator that builds nothing.
 *
 * The fetcher must refuse a page the transformer could not decode, but it
 * need not build the page: building a Jansson tree of every 4 MB page was
 * most of the fetcher's CPU time. sl_json_validate accepts exactly the texts
 * Jansson's json_loadb(text, len, 0, ...) accepts (RFC 8259 with Jansson's
 * limits: an array or object at the top, valid UTF-8, no \u0000, paired
 * surrogates, integers within int64, reals that do not overflow, depth at
 * most 2048), plus a depth limit of the caller's. One exception: Jansson
 * 2.14 lets a raw NUL byte through right after a number ("[1\0]" is [1]);
 * a raw NUL is never JSON, and this refuses it. tests/unit/test_jsonscan.c
 * and the fuzz target fuzz_jsonscan hold it to Jansson's verdict. */
#ifndef SL_JSONSCAN_H
#define SL_JSONSCAN_H

#include <stddef.h>

struct sl_json_error {
        size_t position; /* byte offset of the offending byte */
        char text[96];
};

/* 0 when s[0..n) is a JSON text Jansson accepts and nests arrays and
 * objects at most max_depth deep (0: Jansson's 2048); otherwise -1 with
 * err (if not NULL) set. SL_JSON_TOO_DEEP is returned instead of -1 when
 * the text is valid up to the point it went past max_depth. */
#define SL_JSON_TOO_DEEP (-2)
int sl_json_validate(const char *s, size_t n, int max_depth,
                     struct sl_json_error *err);

#endif
