/* fuzz_copy_encode: the COPY text encoder (loaders/copy_encode.c). Input:
 * one byte choosing the column kind, then a JSON value (NUL bytes in
 * strings allowed: the encoder must refuse them, not cut the value). The
 * output of a string value is decoded back and must equal the input. */
#include "copy_encode.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

/* Undoes copy_escape for a field: the bytes COPY would read back. */
static char *unescape(const char *s, size_t len, size_t *out_len)
{
        char *out = malloc(len + 1);
        size_t n = 0;

        if (!out)
                abort();
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (c == '\\' && i + 1 < len) {
                        char e = s[++i];
                        switch (e) {
                        case 'n':
                                c = '\n';
                                break;
                        case 'r':
                                c = '\r';
                                break;
                        case 't':
                                c = '\t';
                                break;
                        case 'b':
                                c = '\b';
                                break;
                        case 'f':
                                c = '\f';
                                break;
                        case 'v':
                                c = '\v';
                                break;
                        default:
                                c = e;
                                break;
                        }
                }
                out[n++] = c;
        }
        out[n] = '\0';
        *out_len = n;
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        enum load_col_kind kind;
        struct sl_buf b;
        char errstr[256];
        json_error_t jerr;
        json_t *v;

        if (size < 1)
                return 0;
        kind = (enum load_col_kind)(data[0] % 4);
        v = json_loadb((const char *)data + 1, size - 1,
                       JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!v)
                return 0;
        sl_buf_init(&b, 0);
        if (copy_encode_value(&b, v, kind, errstr, sizeof(errstr)) == 0) {
                /* a field never holds a raw tab or newline: they would
                 * split the row */
                if (memchr(b.data, '\t', b.len) || memchr(b.data, '\n', b.len))
                        abort();
                if (json_is_string(v) && kind == LOAD_COL_SCALAR) {
                        size_t n;
                        char *back = unescape(b.data, b.len, &n);
                        if (n != json_string_length(v) ||
                            memcmp(back, json_string_value(v), n) != 0)
                                abort();
                        free(back);
                }
        }
        sl_buf_free(&b);
        json_decref(v);
        return 0;
}
