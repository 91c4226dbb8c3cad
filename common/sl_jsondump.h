/* sl_jsondump: a Jansson tree as compact JSON text, byte for byte what
 * Jansson 2.14's json_dumps(v, JSON_COMPACT | flags) writes, except that a
 * real keeps its shortest round-trip form: 7.3 is written "7.3", where
 * Jansson's %.17g writes "7.2999999999999998", which PostgreSQL's jsonb
 * stores as a different numeric. */
#ifndef SL_JSONDUMP_H
#define SL_JSONDUMP_H

#include "sl_util.h"

#include <jansson.h>
#include <stddef.h>

/* Containers nested deeper than this are refused. Jansson's parser stops
 * at 2048 (JSON_PARSER_MAX_DEPTH), and the envelopes and dead letters
 * around a decoded record add a few levels; the limit also ends a circular
 * reference, which Jansson refuses too, and bounds the recursion's stack
 * (about 150 bytes a level at -O2, 300 with sanitizers: 0.6-1.2 MB at the
 * limit). Jansson's dump itself has no depth limit: a tree deeper than
 * this, which no decoded input can give, is one of the two cases where
 * Jansson writes text and sl_json_dump fails (the other: a key of invalid
 * UTF-8, below). */
#define SL_JSON_DUMP_MAX_DEPTH 4096

/* Appends v to b as compact JSON text. flags: JSON_SORT_KEYS (keys in
 * byte order, as Jansson sorts them), JSON_ENCODE_ANY (allow a top level
 * that is not an array or object), JSON_COMPACT and JSON_PRESERVE_ORDER
 * (no-ops: the output is always compact, keys in insertion order unless
 * sorted). Any other flag (indentation, JSON_ENSURE_ASCII,
 * JSON_ESCAPE_SLASH, JSON_REAL_PRECISION, JSON_EMBED) is refused.
 *
 * Strings: '"', '\\' and bytes below 0x20 are escaped (\b \f \n \r \t, else
 * \u00XX in upper-case hex, so an embedded NUL is \u0000); '/', DEL and
 * UTF-8 pass as they are. A string that is not valid UTF-8 fails, as in
 * Jansson; so does such a key, where Jansson goes on and writes broken
 * text ({":true} for the key "\xff").
 *
 * A real is the shortest of %.15g, %.16g and %.17g that strtod() reads
 * back to the same double, then written the way Jansson writes reals:
 * ".0" appended when there is neither '.' nor 'e', the exponent's '+' and
 * leading zeros removed (1e+20 -> 1e20, 1e-05 -> 1e-5). Assumes '.' is
 * the decimal point (the C locale; sluice never calls setlocale()).
 *
 * Returns 0, or -1 (bad flag, a top level the flags do not allow, invalid
 * UTF-8, nesting beyond SL_JSON_DUMP_MAX_DEPTH or a cycle, b's cap); on
 * failure b is left as it was. */
int sl_json_dump(struct sl_buf *b, const json_t *v, size_t flags);

/* The text of sl_json_dump() in a string of its own (new; free with
 * free()), its length in *len when len is not NULL; NULL on failure. */
char *sl_json_dumps(const json_t *v, size_t flags, size_t *len);

#endif
