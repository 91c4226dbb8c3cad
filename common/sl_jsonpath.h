/* sl_jsonpath: the JSON-path subset that source definitions and maps use to
 * find records and fields.
 *
 *   $                 the root (optional: "a.b" means "$.a.b")
 *   .name ['name']    an object member ("quoted" names may hold dots)
 *   [3] [-1]          an array element, negative counts from the end
 *   [*] .*            every element of an array / member of an object
 *   [?(@.k=='v')]     array elements whose member path k equals a string,
 *   [?(@.k==3)]       number, true, false or null; != for inequality
 *
 * Evaluation borrows from the document; nothing is copied. */
#ifndef SL_JSONPATH_H
#define SL_JSONPATH_H

#include <jansson.h>
#include <stddef.h>

struct sl_jsonpath;

/* New; free with sl_jsonpath_destroy(). NULL with errstr naming the
 * position of the problem. */
struct sl_jsonpath *sl_jsonpath_compile(const char *expr, char *errstr,
                                        size_t errstr_size);
void sl_jsonpath_destroy(struct sl_jsonpath *p);

/* The source text (borrowed; valid until destroy). */
const char *sl_jsonpath_text(const struct sl_jsonpath *p);

/* 1 when the path can match at most one value (no wildcard or filter). */
int sl_jsonpath_is_single(const struct sl_jsonpath *p);

/* Calls fn(match, opaque) for each match in document order (match is
 * borrowed from root); stops early when fn returns non-zero. Returns the
 * number of matches visited. */
typedef int (*sl_jsonpath_fn)(json_t *match, void *opaque);
size_t sl_jsonpath_each(const struct sl_jsonpath *p, json_t *root,
                        sl_jsonpath_fn fn, void *opaque);

/* The first match (borrowed from root) or NULL. */
json_t *sl_jsonpath_first(const struct sl_jsonpath *p, json_t *root);

/* Compiles and evaluates once: the first match (borrowed) or NULL, also
 * NULL for a malformed path. For one-off lookups, not per record. */
json_t *sl_jsonpath_get(json_t *root, const char *expr);

#endif
