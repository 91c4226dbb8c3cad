/* sl_jsondecode: Jansson trees from validated text, by the scanner's
 * spans. */
#include "sl_jsondecode.h"

#include <stdlib.h>
#include <string.h>

json_t *sl_json_decode_string(const char *s, size_t n)
{
        if (!memchr(s, '\\', n))
                return json_stringn_nocheck(s, n);
        return json_loadb(s - 1, n + 2, JSON_DECODE_ANY, NULL);
}

static json_t *decode_number(const char *s, size_t n)
{
        char buf[64], *num = buf, *end;
        json_t *v;

        if (n >= sizeof(buf) && !(num = malloc(n + 1)))
                return NULL;
        memcpy(num, s, n);
        num[n] = '\0';
        /* the validator kept integers within int64 and reals finite, as
         * Jansson does; both convert the same way (strtoll, strtod) */
        if (strpbrk(num, ".eE"))
                v = json_real(strtod(num, &end));
        else
                v = json_integer(strtoll(num, &end, 10));
        if (num != buf)
                free(num);
        return v;
}

int sl_json_set_member(json_t *obj, const char *name, size_t n, json_t *v)
{
        json_t *k;
        int rc;

        if (!v)
                return -1;
        if (!memchr(name, '\\', n))
                return json_object_setn_new_nocheck(obj, name, n, v);
        k = sl_json_decode_string(name, n);
        rc = k ? json_object_setn_new(obj, json_string_value(k),
                                      json_string_length(k), v)
               : (json_decref(v), -1);
        json_decref(k);
        return rc;
}

json_t *sl_json_decode_object(const char *text, size_t len, size_t off,
                              sl_json_member_fn member, void *ctx)
{
        json_t *obj = json_object();
        struct sl_json_span name, val;
        size_t pos = off;

        while (obj && sl_json_object_next(text, len, &pos, &name, &val)) {
                json_t *v = member ? member(ctx, text, len, name, val)
                                   : sl_json_decode(text, len, val);
                if (sl_json_set_member(obj, text + name.off, name.len, v) < 0) {
                        json_decref(obj);
                        return NULL;
                }
        }
        return obj;
}

json_t *sl_json_decode_array(const char *text, size_t len, size_t off,
                             sl_json_element_fn element, void *ctx)
{
        json_t *arr = json_array();
        struct sl_json_span val;
        size_t pos = off;

        while (arr && sl_json_array_next(text, len, &pos, &val)) {
                json_t *v = element ? element(ctx, text, len, val)
                                    : sl_json_decode(text, len, val);
                if (!v || json_array_append_new(arr, v) < 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

json_t *sl_json_decode(const char *text, size_t len, struct sl_json_span at)
{
        const char *s = text + at.off;

        switch (*s) {
        case '{':
                return sl_json_decode_object(text, len, at.off, NULL, NULL);
        case '[':
                return sl_json_decode_array(text, len, at.off, NULL, NULL);
        case '"':
                return sl_json_decode_string(s + 1, at.len - 2);
        case 't':
                return json_true();
        case 'f':
                return json_false();
        case 'n':
                return json_null();
        default:
                return decode_number(s, at.len);
        }
}
