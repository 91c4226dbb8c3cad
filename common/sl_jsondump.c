/* sl_jsondump: compact JSON text of a Jansson tree, appended straight into
 * an sl_buf, in Jansson 2.14's bytes but for the reals (see the header).
 * tests/unit/test_jsondump.c holds it to json_dumps() on the real data. */
#include "sl_jsondump.h"
#include "sl_utf8.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCEPTED_FLAGS                                                         \
        (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER)

/* What a string byte needs: 0 nothing, 1 an escape (a control byte, '"',
 * '\\'), 2 a UTF-8 check (a lead or stray continuation byte). */
static const unsigned char byte_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50 '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 (DEL raw) */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x80 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x90 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xA0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xB0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xC0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xD0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xE0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xF0 */
};

/* A member of an object written with sorted keys. */
struct member {
        const char *key;
        size_t len;
        const json_t *value;
};

struct dump {
        struct sl_buf *b;
        int sort;
        /* the members of every sorted object being written, innermost on
         * top; a nested object may move the array, so it is indexed */
        struct member *m;
        size_t nm, mcap;
};

static int put_value(struct dump *d, const json_t *v, int depth);

/* Appends n bytes. Within the allocation it skips sl_buf_append's NUL
 * terminator: sl_json_dump() writes that once at the end. */
static int put(struct sl_buf *b, const void *p, size_t n)
{
        if (n < b->cap - b->len && b->len + n <= b->max) {
                memcpy(b->data + b->len, p, n);
                b->len += n;
                return 0;
        }
        return sl_buf_append(b, p, n);
}

static int put1(struct sl_buf *b, char c)
{
        if (b->len + 1 < b->cap && b->len < b->max) {
                b->data[b->len++] = c;
                return 0;
        }
        return sl_buf_append(b, &c, 1);
}

/* The escape of a byte of class 1: the short forms Jansson uses, else
 * \u00XX with upper-case hex digits. */
static int put_escape(struct sl_buf *b, unsigned char c)
{
        static const char hex[] = "0123456789ABCDEF";
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};

        switch (c) {
        case '"':
                return put(b, "\\\"", 2);
        case '\\':
                return put(b, "\\\\", 2);
        case '\b':
                return put(b, "\\b", 2);
        case '\f':
                return put(b, "\\f", 2);
        case '\n':
                return put(b, "\\n", 2);
        case '\r':
                return put(b, "\\r", 2);
        case '\t':
                return put(b, "\\t", 2);
        default:
                return put(b, u, sizeof(u));
        }
}

/* A string or key: runs of plain bytes are copied whole. Invalid UTF-8
 * fails, as Jansson's dump_string() does. */
static int put_string(struct sl_buf *b, const char *str, size_t len)
{
        const unsigned char *s = (const unsigned char *)str;
        const unsigned char *end = s + len;
        size_t i = 0, run = 0; /* run: start of the bytes not yet copied */

        if (put1(b, '"') < 0)
                return -1;
        while (i < len) {
                unsigned char cls = byte_class[s[i]];
                size_t n;

                if (cls == 0) {
                        i++;
                        continue;
                }
                if (cls == 2) {
                        n = sl_utf8_len(s + i, end);
                        if (n == 0)
                                return -1;
                        i += n;
                        continue;
                }
                if (put(b, s + run, i - run) < 0 || put_escape(b, s[i]) < 0)
                        return -1;
                run = ++i;
        }
        if (put(b, s + run, len - run) < 0)
                return -1;
        return put1(b, '"');
}

/* Jansson's "%lld", without printf. */
static int put_integer(struct sl_buf *b, json_int_t v)
{
        char buf[24];
        char *p = buf + sizeof(buf);
        unsigned long long u =
            v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

        do {
                *--p = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        if (v < 0)
                *--p = '-';
        return put(b, p, (size_t)(buf + sizeof(buf) - p));
}

/* Jansson's dressing of a %g text: ".0" when it would read back as an
 * integer, and the exponent without '+' or leading zeros ("1e+20" ->
 * "1e20", "1e-05" -> "1e-5"). s has room for two more bytes. */
static size_t real_dress(char *s, size_t n)
{
        char *e = memchr(s, 'e', n);
        char *digits, *to;

        if (!e) {
                if (!memchr(s, '.', n)) {
                        memcpy(s + n, ".0", 3);
                        n += 2;
                }
                return n;
        }
        to = e + 1;
        if (*to == '-')
                to++;
        digits = to;
        if (*digits == '+')
                digits++;
        /* %g never prints a zero exponent; keep one digit regardless */
        while (*digits == '0' && digits[1] != '\0')
                digits++;
        memmove(to, digits, (size_t)(s + n - digits) + 1);
        return n - (size_t)(digits - to);
}

/* The shortest of %.15g, %.16g and %.17g that strtod() reads back to d:
 * 7.3 stays "7.3" (%.17g alone gives "7.2999999999999998"), and nothing
 * is lost, since %.17g always reads back. */
static int put_real(struct sl_buf *b, double d)
{
        char s[40]; /* "-1.2345678901234567e-308" and ".0" fit */
        int n = 0;

        if (!isfinite(d)) /* Jansson cannot hold one */
                return -1;
        for (int prec = 15; prec <= 17; prec++) {
                n = snprintf(s, sizeof(s) - 2, "%.*g", prec, d);
                if (n < 0 || (size_t)n >= sizeof(s) - 2)
                        return -1;
                if (prec == 17 || strtod(s, NULL) == d)
                        break;
        }
        return put(b, s, real_dress(s, (size_t)n));
}

static int put_array(struct dump *d, const json_t *v, int depth)
{
        size_t n = json_array_size(v);

        if (put1(d->b, '[') < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && put1(d->b, ',') < 0)
                        return -1;
                if (put_value(d, json_array_get(v, i), depth) < 0)
                        return -1;
        }
        return put1(d->b, ']');
}

static int put_member(struct dump *d, const char *key, size_t len,
                      const json_t *value, int depth)
{
        if (put_string(d->b, key, len) < 0 || put1(d->b, ':') < 0)
                return -1;
        return put_value(d, value, depth);
}

/* Jansson's object iterators take a non-const object though they change
 * nothing; this is the one place the const is dropped. */
static json_t *iterable(const json_t *v)
{
        return (json_t *)(uintptr_t)v;
}

/* Members in insertion order, which Jansson 2.14 always keeps. */
static int put_object(struct dump *d, const json_t *v, int depth)
{
        json_t *obj = iterable(v);
        void *it = json_object_iter(obj);

        if (put1(d->b, '{') < 0)
                return -1;
        for (int first = 1; it; first = 0) {
                if (!first && put1(d->b, ',') < 0)
                        return -1;
                if (put_member(d, json_object_iter_key(it),
                               json_object_iter_key_len(it),
                               json_object_iter_value(it), depth) < 0)
                        return -1;
                it = json_object_iter_next(obj, it);
        }
        return put1(d->b, '}');
}

/* Jansson's order: bytes compared as unsigned, a prefix first. */
static int member_cmp(const void *a, const void *b)
{
        const struct member *x = a, *y = b;
        int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);

        if (c != 0)
                return c;
        return (x->len > y->len) - (x->len < y->len);
}

static int put_object_sorted(struct dump *d, const json_t *v, int depth)
{
        json_t *obj = iterable(v);
        size_t size = json_object_size(obj), base = d->nm, n = 0;
        int rc = -1;

        if (size == 0) /* and d->m may still be NULL */
                return put(d->b, "{}", 2);
        if (d->nm + size > d->mcap) {
                d->mcap = (d->nm + size) * 2;
                d->m = sl_realloc(d->m, d->mcap * sizeof(*d->m));
        }
        for (void *it = json_object_iter(obj); it && n < size;
             it = json_object_iter_next(obj, it)) {
                struct member *m = &d->m[base + n++];
                m->key = json_object_iter_key(it);
                m->len = json_object_iter_key_len(it);
                m->value = json_object_iter_value(it);
        }
        d->nm = base + n;
        qsort(d->m + base, n, sizeof(*d->m), member_cmp);
        if (put1(d->b, '{') < 0)
                goto out;
        for (size_t i = 0; i < n; i++) {
                struct member m = d->m[base + i]; /* d->m may move */
                if (i > 0 && put1(d->b, ',') < 0)
                        goto out;
                if (put_member(d, m.key, m.len, m.value, depth) < 0)
                        goto out;
        }
        rc = put1(d->b, '}');
out:
        d->nm = base;
        return rc;
}

/* depth: containers open around v. A cycle nests without end, so the
 * depth limit also ends it. */
static int put_value(struct dump *d, const json_t *v, int depth)
{
        if (!v)
                return -1;
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                if (depth >= SL_JSON_DUMP_MAX_DEPTH)
                        return -1;
                if (d->sort)
                        return put_object_sorted(d, v, depth + 1);
                return put_object(d, v, depth + 1);
        case JSON_ARRAY:
                if (depth >= SL_JSON_DUMP_MAX_DEPTH)
                        return -1;
                return put_array(d, v, depth + 1);
        case JSON_STRING:
                return put_string(d->b, json_string_value(v),
                                  json_string_length(v));
        case JSON_INTEGER:
                return put_integer(d->b, json_integer_value(v));
        case JSON_REAL:
                return put_real(d->b, json_real_value(v));
        case JSON_TRUE:
                return put(d->b, "true", 4);
        case JSON_FALSE:
                return put(d->b, "false", 5);
        case JSON_NULL:
                return put(d->b, "null", 4);
        }
        return -1;
}

int sl_json_dump(struct sl_buf *b, const json_t *v, size_t flags)
{
        struct dump d = {.b = b, .sort = (flags & JSON_SORT_KEYS) != 0};
        size_t start = b->len;
        int rc;

        if (!v || (flags & ~(size_t)ACCEPTED_FLAGS) != 0)
                return -1;
        if (!(flags & JSON_ENCODE_ANY) && !json_is_array(v) &&
            !json_is_object(v))
                return -1;
        rc = put_value(&d, v, 0);
        free(d.m);
        if (rc < 0)
                b->len = start;
        if (b->data)
                b->data[b->len] = '\0';
        return rc;
}

char *sl_json_dumps(const json_t *v, size_t flags, size_t *len)
{
        struct sl_buf b;
        size_t n;
        char *s;

        sl_buf_init(&b, 0);
        if (sl_json_dump(&b, v, flags) < 0) {
                sl_buf_free(&b);
                return NULL;
        }
        s = sl_buf_steal(&b, &n);
        /* give back the doubling's slack: the text may wait long in a
         * producer's queue */
        s = sl_realloc(s, n + 1);
        if (len)
                *len = n;
        return s;
}
