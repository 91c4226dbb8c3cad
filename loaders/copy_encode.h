/* copy_encode: pure functions that turn envelope JSON values into the bytes
 * of one field of PostgreSQL's COPY text format, by column kind. No I/O, so
 * they are unit-tested byte for byte (tests/unit/test_load_copy.c). */
#ifndef LOAD_COPY_ENCODE_H
#define LOAD_COPY_ENCODE_H

#include <jansson.h>
#include <stddef.h>

#include "sl_util.h"

/* How a column takes a JSON value (from the catalog's type of the column). */
enum load_col_kind {
        LOAD_COL_SCALAR, /* text, numbers, timestamps, uuid, ...: as text */
        LOAD_COL_BOOL,   /* boolean: t/f */
        LOAD_COL_JSON,   /* json, jsonb: the value as JSON text */
        LOAD_COL_ARRAY,  /* any array type: a PostgreSQL array literal */
};

/* Appends s[0..len) escaped for COPY text format: backslash, tab, newline,
 * carriage return (and the other control bytes COPY treats specially) are
 * written as backslash sequences, so "\N" as data stays data. Returns 0,
 * or -1 when s holds a NUL byte (PostgreSQL text cannot) or b is full. */
int copy_escape(struct sl_buf *b, const char *s, size_t len);

/* Appends the COPY null marker \N. 0 or -1 when b is full. */
int copy_null(struct sl_buf *b);

/* Appends the PostgreSQL array literal of the JSON array arr (unescaped for
 * COPY: pass the result through copy_escape). Strings are always quoted
 * with " and \ escaped, null elements are NULL, numbers and booleans are
 * bare, nested arrays nest, objects are quoted JSON text. Returns 0, or -1
 * with errstr. */
int copy_array_literal(struct sl_buf *b, json_t *arr, char *errstr,
                       size_t errstr_size);

/* Appends the text form of a JSON number ("42", "0.1"): integers exactly,
 * reals in the shortest form that reads back to the same double. */
int copy_number_text(struct sl_buf *b, json_t *num);

/* Appends one COPY field for value v of a column of the given kind: null
 * -> \N, strings as they are, numbers as text, booleans t/f (or true/false
 * as JSON for json columns), arrays as array literals or JSON text, objects
 * as JSON text. Returns 0, or -1 with errstr saying why the value does not
 * fit (the caller names the column). */
int copy_encode_value(struct sl_buf *b, json_t *v, enum load_col_kind kind,
                      char *errstr, size_t errstr_size);

/* Whether copy_encode_value() would accept v for a column of the given
 * kind, without encoding it: 0, or -1 with the same errstr. */
int copy_check_value(json_t *v, enum load_col_kind kind, char *errstr,
                     size_t errstr_size);

#endif
