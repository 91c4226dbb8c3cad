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

/* A value's bytes in a text. */
struct sl_json_span {
        size_t off, len;
};

/* 0 when s[0..n) is a JSON text Jansson accepts and nests arrays and
 * objects at most max_depth deep (0: Jansson's 2048); otherwise -1 with
 * err (if not NULL) set. SL_JSON_TOO_DEEP is returned instead of -1 when
 * the text is valid up to the point it went past max_depth. */
#define SL_JSON_TOO_DEEP (-2)
int sl_json_validate(const char *s, size_t n, int max_depth,
                     struct sl_json_error *err);

/* sl_json_validate, and in the same pass what sl_json_locate_array finds
 * at path: *nelems elements (*elems: new array, free it) between
 * *arr_open and *arr_close, or *nelems -1 (and *elems NULL) when the text
 * is not valid, the path is not plain, or it leads to no array. One pass
 * over a page instead of two. */
int sl_json_validate_locate(const char *s, size_t n, int max_depth,
                            const char *path, long *nelems, size_t *arr_open,
                            size_t *arr_close, struct sl_json_span **elems,
                            struct sl_json_error *err);

/* Locates an array of a valid JSON text (sl_json_validate) by path: the
 * offsets of its '[' and ']' and each element's bytes (*elems: new array,
 * free it). Returns the number of elements, or -1 when the path is not a
 * plain member path ("$", "$.a.b", "$['a']", "a.b") or does not lead to an
 * array. Of repeated member names the last counts, as in Jansson. */
long sl_json_locate_array(const char *text, size_t len, const char *path,
                          size_t *arr_open, size_t *arr_close,
                          struct sl_json_span **elems);

/* The value at a plain member path in a valid JSON text: 1 with its bytes
 * in *v, 0 when absent, -1 when the path is not a plain member path (then
 * evaluate it on a decoded tree). */
int sl_json_member(const char *text, size_t len, const char *path,
                   struct sl_json_span *v);

/* The value at a plain member path in the first len bytes of a text still
 * arriving (not validated yet, cut anywhere): 1 with its bytes in *v once
 * those bytes hold it whole and everything before it (a number or literal
 * only once a byte after it has come); 0 while more bytes may tell; -1
 * when they never will (the path is not plain, a value on the way is not
 * an object, the member is absent, the bytes are not JSON). Reads nothing
 * past len. A head start only: the whole text must still be validated,
 * and a repeated name later in it would win there. */
int sl_json_prefix_member(const char *text, size_t len, const char *path,
                          struct sl_json_span *v);

/* Walks the members of an object of a valid JSON text. *pos starts at the
 * offset of its '{'; each call gives the next member: 1 with the bytes of
 * its name between the quotes (still escaped) in *name and of its value in
 * *value, 0 after the last. Repeated names come as often as they appear. */
int sl_json_object_next(const char *text, size_t len, size_t *pos,
                        struct sl_json_span *name, struct sl_json_span *value);

/* Walks the elements of an array of a valid JSON text the same way: *pos
 * starts at the offset of its '['. */
int sl_json_array_next(const char *text, size_t len, size_t *pos,
                       struct sl_json_span *value);

#endif
