/* sl_jsondecode: Jansson trees built straight from a text that
 * sl_json_validate() accepted, without Jansson's parser.
 *
 * A page is validated once (sl_jsonscan); its records were then parsed
 * again by json_loadb, which checks every byte a second time, token by
 * token: that parse was two thirds of the transformer's own thread (perf).
 * Here the scanner's spans are turned into values directly: strings are
 * copied (unescaped by Jansson only when they hold an escape), numbers
 * converted as Jansson converts them (strtoll, strtod; sluice never sets
 * a locale), members set in order, a repeated name keeping its last value
 * at its first place, as json_loadb does. tests/unit/test_load_env.c and
 * the fuzz target fuzz_jsonscan hold the result to json_loadb's tree. */
#ifndef SL_JSONDECODE_H
#define SL_JSONDECODE_H

#include "sl_jsonscan.h"

#include <jansson.h>
#include <stddef.h>

/* The value at span at of a text that sl_json_validate() accepted (the
 * span as the sl_jsonscan walkers give it). New reference; NULL only when
 * out of memory. */
json_t *sl_json_decode(const char *text, size_t len, struct sl_json_span at);

/* The string whose bytes between the quotes (still escaped) are s[0..n).
 * New reference. */
json_t *sl_json_decode_string(const char *s, size_t n);

/* Sets member name (its bytes between the quotes, still escaped) of obj
 * to v, which it steals. 0, or -1 (v released). */
int sl_json_set_member(json_t *obj, const char *name, size_t n, json_t *v);

/* The object whose '{' is at text[off], each member's value built by
 * member(ctx, ...) from its name's and value's spans (NULL:
 * sl_json_decode), which returns a new reference or NULL to fail. */
typedef json_t *(*sl_json_member_fn)(void *ctx, const char *text, size_t len,
                                     struct sl_json_span name,
                                     struct sl_json_span value);
json_t *sl_json_decode_object(const char *text, size_t len, size_t off,
                              sl_json_member_fn member, void *ctx);

/* The array whose '[' is at text[off], each element built by
 * element(ctx, ...) (NULL: sl_json_decode), the same way. */
typedef json_t *(*sl_json_element_fn)(void *ctx, const char *text, size_t len,
                                      struct sl_json_span value);
json_t *sl_json_decode_array(const char *text, size_t len, size_t off,
                             sl_json_element_fn element, void *ctx);

#endif
