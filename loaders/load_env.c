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

/* A member of the envelope: "row", "rows" and "lineage" choose what stays
 * text. */
static json_t *envelope_member(void *ctx, const char *text, size_t len,
                               struct sl_json_span name,
                               struct sl_json_span val)
{
        const char *k = text + name.off;
        enum raw_at sub = RAW_NONE;

        (void)ctx;
        if (name.len == 3 && memcmp(k, "row", 3) == 0)
                sub = RAW_ROW;
        else if (name.len == 4 && memcmp(k, "rows", 4) == 0)
                sub = RAW_ROWS;
        else if (name.len == 7 && memcmp(k, "lineage", 7) == 0)
                sub = RAW_SELF;
        return decode(text, len, val, sub);
}

/* A member of a row: its object or array stays text. */
static json_t *row_member(void *ctx, const char *text, size_t len,
                          struct sl_json_span name, struct sl_json_span val)
{
        (void)ctx;
        (void)name;
        return decode(text, len, val, RAW_SELF);
}

/* An element of "rows": a row. */
static json_t *rows_element(void *ctx, const char *text, size_t len,
                            struct sl_json_span val)
{
        (void)ctx;
        return decode(text, len, val, RAW_ROW);
}

/* The value at span at, as raw says; everything not kept as text is
 * decoded by sl_json_decode. */
static json_t *decode(const char *text, size_t len, struct sl_json_span at,
                      enum raw_at raw)
{
        const char *s = text + at.off;

        if ((*s == '{' || *s == '[') && raw == RAW_SELF)
                return raw_new(s, at.len);
        if (*s == '{' && raw == RAW_ROW)
                return sl_json_decode_object(text, len, at.off, row_member,
                                             NULL);
        if (*s == '[' && raw == RAW_ROWS)
                return sl_json_decode_array(text, len, at.off, rows_element,
                                            NULL);
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
        return sl_json_decode_object(text, len, off, envelope_member, NULL);
}
