/* load_env: envelopes decoded straight from the validated text, the big
 * JSON values left as text. */
#include "load_env.h"
#include "sl_jsondecode.h"

#include <stdlib.h>
#include <string.h>

enum raw_at {
        RAW_NONE, /* decode everything */
        RAW_ROW,  /* an object whose object/array members stay text */
        RAW_ROWS, /* an array of such objects */
        RAW_SELF, /* the value stays text when it is an object or array */
};

/* A raw node: a NUL, then where the text is and how long, in a string of
 * RAW_SIZE bytes. The text itself is not copied. */
#define RAW_SIZE (1 + sizeof(const char *) + sizeof(size_t))

static json_t *raw_new(const char *s, size_t n)
{
        char tmp[RAW_SIZE];

        tmp[0] = '\0';
        memcpy(tmp + 1, &s, sizeof(s));
        memcpy(tmp + 1 + sizeof(s), &n, sizeof(n));
        return json_stringn_nocheck(tmp, sizeof(tmp));
}

const char *load_raw_text(const json_t *v, size_t *len)
{
        const char *s, *text;

        if (!json_is_string(v) || json_string_length(v) != RAW_SIZE)
                return NULL;
        s = json_string_value(v);
        if (s[0] != '\0')
                return NULL;
        memcpy(&text, s + 1, sizeof(text));
        memcpy(len, s + 1 + sizeof(text), sizeof(*len));
        return text;
}

json_t *load_raw_decode(json_t *v)
{
        size_t n;
        const char *s = load_raw_text(v, &n);

        if (!s)
                return json_incref(v);
        return json_loadb(s, n, JSON_DECODE_ANY, NULL);
}

json_t *load_raw_expand(json_t *v)
{
        json_t *out, *e;
        const char *k;
        size_t i;

        if (json_is_object(v)) {
                out = json_object();
                json_object_foreach(v, k, e)
                    json_object_set_new(out, k, load_raw_expand(e));
                return out;
        }
        if (json_is_array(v)) {
                out = json_array();
                json_array_foreach(v, i, e)
                    json_array_append_new(out, load_raw_expand(e));
                return out;
        }
        return load_raw_decode(v);
}

static json_t *decode(const char *text, size_t len, struct sl_json_span at,
                      enum raw_at raw);

static json_t *decode_object(const char *text, size_t len, size_t off,
                             enum raw_at raw)
{
        json_t *obj = json_object();
        struct sl_json_span name, val;
        size_t pos = off;

        while (obj && sl_json_object_next(text, len, &pos, &name, &val)) {
                const char *k = text + name.off;
                enum raw_at sub = RAW_NONE;

                if (raw == RAW_ROW)
                        sub = RAW_SELF;
                else if (raw == RAW_NONE && off == 0 && name.len == 3 &&
                         memcmp(k, "row", 3) == 0)
                        sub = RAW_ROW;
                else if (raw == RAW_NONE && off == 0 && name.len == 4 &&
                         memcmp(k, "rows", 4) == 0)
                        sub = RAW_ROWS;
                else if (raw == RAW_NONE && off == 0 && name.len == 7 &&
                         memcmp(k, "lineage", 7) == 0)
                        sub = RAW_SELF;
                if (sl_json_set_member(obj, k, name.len,
                                       decode(text, len, val, sub)) < 0) {
                        json_decref(obj);
                        return NULL;
                }
        }
        return obj;
}

static json_t *decode_rows(const char *text, size_t len, size_t off)
{
        json_t *arr = json_array();
        struct sl_json_span val;
        size_t pos = off;

        while (arr && sl_json_array_next(text, len, &pos, &val)) {
                json_t *v = decode(text, len, val, RAW_ROW);
                if (!v || json_array_append_new(arr, v) < 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

/* The value at span at. The top-level object is the one at offset 0 (the
 * envelope starts at its '{', see load_env_decode), whose "row", "rows"
 * and "lineage" members choose what stays text; everything else is
 * decoded by sl_json_decode. */
static json_t *decode(const char *text, size_t len, struct sl_json_span at,
                      enum raw_at raw)
{
        const char *s = text + at.off;

        if ((*s == '{' || *s == '[') && raw == RAW_SELF)
                return raw_new(s, at.len);
        if (*s == '{' && (raw == RAW_ROW || (raw == RAW_NONE && at.off == 0)))
                return decode_object(text, len, at.off, raw);
        if (*s == '[' && raw == RAW_ROWS)
                return decode_rows(text, len, at.off);
        return sl_json_decode(text, len, at);
}

json_t *load_env_decode(const char *text, size_t len)
{
        size_t off = 0;

        while (off < len && (text[off] == ' ' || text[off] == '\t' ||
                             text[off] == '\r' || text[off] == '\n'))
                off++;
        if (off >= len || text[off] != '{')
                return NULL;
        /* the envelope's members are told apart by offset 0 */
        return decode_object(text + off, len - off, 0, RAW_NONE);
}
