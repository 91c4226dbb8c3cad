/* copy_encode: JSON values to COPY text-format fields. Kept free of I/O so
 * every escaping rule has a unit test. */
#include "copy_encode.h"
#include "sl_jsondump.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char nul_msg[] = "string holds a NUL byte (\\u0000), which "
                              "PostgreSQL text cannot store";

int copy_null(struct sl_buf *b)
{
        return sl_buf_append(b, "\\N", 2);
}

int copy_escape(struct sl_buf *b, const char *s, size_t len)
{
        size_t run = 0; /* start of the current run of plain bytes */

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                const char *esc = NULL;

                switch (c) {
                case '\0':
                        return -1;
                case '\\':
                        esc = "\\\\";
                        break;
                case '\t':
                        esc = "\\t";
                        break;
                case '\n':
                        esc = "\\n";
                        break;
                case '\r':
                        esc = "\\r";
                        break;
                case '\b':
                        esc = "\\b";
                        break;
                case '\f':
                        esc = "\\f";
                        break;
                case '\v':
                        esc = "\\v";
                        break;
                default:
                        break;
                }
                if (!esc)
                        continue;
                if (sl_buf_append(b, s + run, i - run) < 0 ||
                    sl_buf_append(b, esc, 2) < 0)
                        return -1;
                run = i + 1;
        }
        return sl_buf_append(b, s + run, len - run);
}

int copy_number_text(struct sl_buf *b, json_t *num)
{
        char tmp[64];
        double d;

        if (json_is_integer(num))
                return sl_buf_printf(b, "%" JSON_INTEGER_FORMAT,
                                     json_integer_value(num));
        d = json_real_value(num);
        /* The shortest of %.15g..%.17g that reads back to the same double,
         * so 0.1 stays "0.1" and nothing is lost. */
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
                if (strtod(tmp, NULL) == d)
                        break;
        }
        return sl_buf_puts(b, tmp);
}

/* Appends s quoted as an array element: "..." with " and \ escaped. */
static int array_quote(struct sl_buf *b, const char *s, size_t len)
{
        size_t run = 0;

        if (sl_buf_append(b, "\"", 1) < 0)
                return -1;
        for (size_t i = 0; i < len; i++) {
                if (s[i] != '"' && s[i] != '\\')
                        continue;
                if (sl_buf_append(b, s + run, i - run) < 0 ||
                    sl_buf_append(b, "\\", 1) < 0)
                        return -1;
                run = i; /* the quote or backslash itself follows */
        }
        if (sl_buf_append(b, s + run, len - run) < 0)
                return -1;
        return sl_buf_append(b, "\"", 1);
}

static int array_elem(struct sl_buf *b, json_t *v, int depth, char *errstr,
                      size_t errstr_size)
{
        char *txt = NULL;
        size_t n = 0;
        int rc = -1;

        switch (json_typeof(v)) {
        case JSON_NULL:
                rc = sl_buf_puts(b, "NULL");
                break;
        case JSON_TRUE:
                rc = sl_buf_puts(b, "t");
                break;
        case JSON_FALSE:
                rc = sl_buf_puts(b, "f");
                break;
        case JSON_INTEGER:
        case JSON_REAL:
                rc = copy_number_text(b, v);
                break;
        case JSON_STRING:
                rc =
                    array_quote(b, json_string_value(v), json_string_length(v));
                break;
        case JSON_ARRAY: {
                size_t i;
                json_t *e;

                if (depth > 6) {
                        snprintf(errstr, errstr_size,
                                 "array nested more than 6 deep");
                        return -1;
                }
                if (sl_buf_append(b, "{", 1) < 0)
                        break;
                rc = 0;
                json_array_foreach(v, i, e)
                {
                        if ((i > 0 && sl_buf_append(b, ",", 1) < 0) ||
                            array_elem(b, e, depth + 1, errstr, errstr_size) <
                                0) {
                                rc = -1;
                                break;
                        }
                }
                if (rc == 0)
                        rc = sl_buf_append(b, "}", 1);
                if (rc < 0)
                        return -1; /* errstr set by the failing element */
                break;
        }
        case JSON_OBJECT:
                txt = sl_json_dumps(v, JSON_ENCODE_ANY, &n);
                rc = txt ? array_quote(b, txt, n) : -1;
                break;
        }
        free(txt);
        if (rc < 0)
                snprintf(errstr, errstr_size, "value too large");
        return rc;
}

int copy_array_literal(struct sl_buf *b, json_t *arr, char *errstr,
                       size_t errstr_size)
{
        if (!json_is_array(arr)) {
                snprintf(errstr, errstr_size, "not a JSON array");
                return -1;
        }
        return array_elem(b, arr, 0, errstr, errstr_size);
}

/* Appends the escaped bytes of a scratch buffer's text as the field. */
static int put_text(struct sl_buf *b, const char *s, size_t len, char *errstr,
                    size_t errstr_size)
{
        if (memchr(s, '\0', len)) {
                snprintf(errstr, errstr_size, "%s", nul_msg);
                return -1;
        }
        if (copy_escape(b, s, len) < 0) {
                snprintf(errstr, errstr_size, "value too large");
                return -1;
        }
        return 0;
}

/* Appends v as compact JSON text, escaped for COPY; tmp is scratch. Reals
 * keep their shortest round-trip form (sl_jsondump.h): a source's 7.3 is
 * stored in jsonb as 7.3, where json_dumps() writes 7.2999999999999998,
 * another numeric. The text never holds a raw NUL (it writes \u0000). */
static int put_json(struct sl_buf *b, struct sl_buf *tmp, json_t *v,
                    char *errstr, size_t errstr_size)
{
        sl_buf_reset(tmp);
        if (sl_json_dump(tmp, v, JSON_ENCODE_ANY) < 0 ||
            copy_escape(b, tmp->data, tmp->len) < 0) {
                snprintf(errstr, errstr_size, "value too large");
                return -1;
        }
        return 0;
}

int copy_encode_value(struct sl_buf *b, json_t *v, enum load_col_kind kind,
                      char *errstr, size_t errstr_size)
{
        struct sl_buf tmp;
        int rc = -1;

        sl_buf_init(&tmp, 0);
        if (json_is_null(v)) {
                rc = copy_null(b);
                goto out;
        }
        if (kind == LOAD_COL_JSON) {
                /* Any JSON, even a bare string, is stored as JSON text. */
                rc = put_json(b, &tmp, v, errstr, errstr_size);
                goto out;
        }
        switch (json_typeof(v)) {
        case JSON_STRING:
                rc = put_text(b, json_string_value(v), json_string_length(v),
                              errstr, errstr_size);
                break;
        case JSON_INTEGER:
        case JSON_REAL:
                rc = copy_number_text(b, v);
                break;
        case JSON_TRUE:
        case JSON_FALSE:
                if (kind == LOAD_COL_ARRAY) {
                        snprintf(errstr, errstr_size,
                                 "a boolean for an array column");
                        break;
                }
                rc = sl_buf_puts(b, json_is_true(v) ? "t" : "f");
                break;
        case JSON_ARRAY:
                if (kind != LOAD_COL_ARRAY) {
                        snprintf(errstr, errstr_size,
                                 "a JSON array for a column that is neither "
                                 "an array nor json");
                        break;
                }
                if (copy_array_literal(&tmp, v, errstr, errstr_size) < 0)
                        break;
                rc = put_text(b, tmp.data, tmp.len, errstr, errstr_size);
                break;
        case JSON_OBJECT:
                rc = put_json(b, &tmp, v, errstr, errstr_size);
                break;
        case JSON_NULL:
                break;
        }
out:
        sl_buf_free(&tmp);
        return rc;
}

/* The structure copy_array_literal() refuses: arrays nested too deep. */
static int check_array_depth(json_t *arr, int depth, char *errstr,
                             size_t errstr_size)
{
        size_t i;
        json_t *e;

        json_array_foreach(arr, i, e)
        {
                if (!json_is_array(e))
                        continue;
                if (depth + 1 > 6) {
                        snprintf(errstr, errstr_size,
                                 "array nested more than 6 deep");
                        return -1;
                }
                if (check_array_depth(e, depth + 1, errstr, errstr_size) < 0)
                        return -1;
        }
        return 0;
}

/* Whether a string element of the array (at any depth) holds a NUL. */
static int array_has_nul(json_t *arr)
{
        size_t i;
        json_t *e;

        json_array_foreach(arr, i, e)
        {
                if (json_is_string(e) &&
                    memchr(json_string_value(e), '\0', json_string_length(e)))
                        return 1;
                if (json_is_array(e) && array_has_nul(e))
                        return 1;
        }
        return 0;
}

int copy_check_value(json_t *v, enum load_col_kind kind, char *errstr,
                     size_t errstr_size)
{
        /* JSON text, numbers and objects always encode: a dump writes a
         * NUL as \u0000. */
        if (json_is_null(v) || kind == LOAD_COL_JSON)
                return 0;
        switch (json_typeof(v)) {
        case JSON_STRING:
                if (memchr(json_string_value(v), '\0', json_string_length(v))) {
                        snprintf(errstr, errstr_size, "%s", nul_msg);
                        return -1;
                }
                return 0;
        case JSON_TRUE:
        case JSON_FALSE:
                if (kind == LOAD_COL_ARRAY) {
                        snprintf(errstr, errstr_size,
                                 "a boolean for an array column");
                        return -1;
                }
                return 0;
        case JSON_ARRAY:
                if (kind != LOAD_COL_ARRAY) {
                        snprintf(errstr, errstr_size,
                                 "a JSON array for a column that is neither "
                                 "an array nor json");
                        return -1;
                }
                /* the literal is built first, then checked for NUL */
                if (check_array_depth(v, 0, errstr, errstr_size) < 0)
                        return -1;
                if (array_has_nul(v)) {
                        snprintf(errstr, errstr_size, "%s", nul_msg);
                        return -1;
                }
                return 0;
        default:
                return 0;
        }
}
