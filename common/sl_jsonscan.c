/* sl_jsonscan: a strict JSON validator that builds nothing (see the
 * header). One pass, no allocation, an explicit stack of container kinds:
 * a hostile page cannot reach any recursion. */
#include "sl_jsonscan.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "sl_utf8.h"
#include "sl_util.h"

#define JANSSON_MAX_DEPTH 2048

/* ---- plain member paths ---- */

/* A "$", "$.a.b", "$['a']" or "a.b" path as its member names (unescaped
 * names only: no backslash, no '*'); other paths (indexes, wildcards,
 * filters, escaped names, more than PATH_MAX_NAMES) are not plain. */
#define PATH_MAX_NAMES 32
struct path_names {
        int n;
        const char *name[PATH_MAX_NAMES]; /* into the path */
        size_t len[PATH_MAX_NAMES];
};

/* 0, or -1 when the path is not plain. */
static int path_names(const char *path, struct path_names *pn)
{
        const char *s = path;
        int relative = 0; /* "a.b": as if it were ".a.b" */

        pn->n = 0;
        if (*s == '$')
                s++;
        else if (*s && *s != '.' && *s != '[')
                relative = 1;
        while (*s) {
                const char *name;
                size_t n;
                if (relative || *s == '.') {
                        s += relative ? 0 : 1;
                        relative = 0;
                        n = strcspn(s, ".[");
                        name = s;
                        s += n;
                } else if (s[0] == '[' && (s[1] == '\'' || s[1] == '"')) {
                        const char *close = strchr(s + 2, s[1]);
                        if (!close || close[1] != ']')
                                return -1;
                        name = s + 2;
                        n = (size_t)(close - name);
                        s = close + 2;
                } else {
                        return -1;
                }
                if (n == 0 || memchr(name, '\\', n) || memchr(name, '*', n) ||
                    pn->n == PATH_MAX_NAMES)
                        return -1;
                pn->name[pn->n] = name;
                pn->len[pn->n] = n;
                pn->n++;
        }
        return 0;
}

struct scan {
        const unsigned char *s, *p, *end;
        struct sl_json_error *err;
};

static int fail(struct scan *sc, const unsigned char *at, const char *what)
{
        if (sc->err) {
                sc->err->position = (size_t)(at - sc->s);
                snprintf(sc->err->text, sizeof(sc->err->text), "%s", what);
        }
        return -1;
}

static void skip_ws(struct scan *sc)
{
        const unsigned char *p = sc->p;

        while (p < sc->end &&
               (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
                p++;
        sc->p = p;
}

static int hexval(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* The four hex digits at p (p + 4 <= end checked by the caller), or -1. */
static long hex4(const unsigned char *p)
{
        long v = 0;

        for (int i = 0; i < 4; i++) {
                int h = hexval(p[i]);
                if (h < 0)
                        return -1;
                v = v * 16 + h;
        }
        return v;
}

/* The string at sc->p (at its opening quote); sc->p ends past it. */
/* Past the plain ASCII bytes of a string at p, 16 at a time: stops at or
 * before the first quote, backslash, control byte or byte above 0x7f (the
 * caller's loop finishes the last 15 bytes and says which it was). Most of
 * a page is such runs: byte by byte they were the validator's hot loop. */
static const unsigned char *ascii_run(const unsigned char *p,
                                      const unsigned char *end)
{
#ifdef __SSE2__
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i bslash = _mm_set1_epi8('\\');
        const __m128i space = _mm_set1_epi8(0x20);

        while (end - p >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
                /* signed: bytes below 0x20 and above 0x7f both compare
                 * less than 0x20 */
                __m128i stop =
                    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                              _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(v, space));
                int mask = _mm_movemask_epi8(stop);
                if (mask)
                        return p + __builtin_ctz((unsigned)mask);
                p += 16;
        }
#else
        (void)end;
#endif
        return p;
}

static int scan_string(struct scan *sc)
{
        const unsigned char *p = sc->p + 1;
        const unsigned char *end = sc->end;

        for (;;) {
                /* the plain ASCII run: most of any page */
                p = ascii_run(p, end);
                while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' &&
                       *p != '\\')
                        p++;
                if (p >= end)
                        return fail(sc, p, "premature end of input in string");
                if (*p == '"') {
                        sc->p = p + 1;
                        return 0;
                }
                if (*p < 0x20)
                        return fail(sc, p, "control character in string");
                if (*p >= 0x80) {
                        size_t n = sl_utf8_len(p, end);
                        if (!n)
                                return fail(sc, p, "invalid UTF-8 in string");
                        p += n;
                        continue;
                }
                { /* a backslash */
                        if (p + 1 >= end)
                                return fail(sc, p,
                                            "premature end of input "
                                            "in string");
                        switch (p[1]) {
                        case '"':
                        case '\\':
                        case '/':
                        case 'b':
                        case 'f':
                        case 'n':
                        case 'r':
                        case 't':
                                p += 2;
                                break;
                        case 'u': {
                                long v, w;
                                if (end - p < 6 || (v = hex4(p + 2)) < 0)
                                        return fail(sc, p,
                                                    "invalid \\u "
                                                    "escape");
                                if (v == 0)
                                        return fail(sc, p,
                                                    "\\u0000 is not "
                                                    "allowed");
                                if (v >= 0xDC00 && v <= 0xDFFF)
                                        return fail(sc, p,
                                                    "lone low "
                                                    "surrogate");
                                if (v >= 0xD800 && v <= 0xDBFF) {
                                        if (end - p < 12 || p[6] != '\\' ||
                                            p[7] != 'u' ||
                                            (w = hex4(p + 8)) < 0xDC00 ||
                                            w > 0xDFFF)
                                                return fail(sc, p,
                                                            "unpaired high "
                                                            "surrogate");
                                        p += 12;
                                } else {
                                        p += 6;
                                }
                                break;
                        }
                        default:
                                return fail(sc, p, "invalid escape");
                        }
                }
        }
}

static int is_digit(const unsigned char *p, const unsigned char *end)
{
        return p < end && *p >= '0' && *p <= '9';
}

/* Whether a real with these digits (from the first digit to the end) can
 * be past DBL_MAX: only when its integer digits plus its exponent pass
 * 300; below that it is under 1e300 whatever its digits. */
static int real_may_overflow(const unsigned char *d, const unsigned char *end)
{
        long intd = 0, e = 0;
        int neg = 0;

        while (d < end && *d >= '0' && *d <= '9')
                d++, intd++;
        if (d < end && *d == '.')
                for (d++; d < end && *d >= '0' && *d <= '9'; d++)
                        ;
        if (d < end && (*d == 'e' || *d == 'E')) {
                d++;
                if (d < end && (*d == '+' || *d == '-'))
                        neg = *d++ == '-';
                for (; d < end && *d >= '0' && *d <= '9'; d++)
                        if (e < 100000)
                                e = e * 10 + (*d - '0');
        }
        return intd + (neg ? -e : e) > 300;
}

/* Whether the real number text [a, b) overflows a double. */
static int real_overflows(const unsigned char *a, const unsigned char *b)
{
        char small[64];
        char *text = small;
        size_t n = (size_t)(b - a);
        double v;
        int over;

        if (n >= sizeof(small)) {
                text = malloc(n + 1);
                if (!text)
                        return 1;
        }
        memcpy(text, a, n);
        text[n] = '\0';
        errno = 0;
        v = strtod(text, NULL);
        over = (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE;
        if (text != small)
                free(text);
        return over;
}

/* The number at sc->p, with Jansson's limits. */
static int scan_number(struct scan *sc)
{
        const unsigned char *a = sc->p, *p = sc->p, *end = sc->end;
        const unsigned char *digits;
        int real = 0;

        if (*p == '-')
                p++;
        digits = p;
        if (p < end && *p == '0') {
                p++;
                if (is_digit(p, end))
                        return fail(sc, p, "leading zero in a number");
        } else if (is_digit(p, end)) {
                while (is_digit(p, end))
                        p++;
        } else {
                return fail(sc, p, "invalid number");
        }
        if (p < end && *p == '.') {
                p++;
                if (!is_digit(p, end))
                        return fail(sc, p, "invalid number");
                while (is_digit(p, end))
                        p++;
                real = 1;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (!is_digit(p, end))
                        return fail(sc, p, "invalid number");
                while (is_digit(p, end))
                        p++;
                real = 1;
        }
        if (!real) {
                /* int64: at most 19 digits, and then not past the limit */
                size_t nd = (size_t)(p - digits);
                const char *lim =
                    *a == '-' ? "9223372036854775808" : "9223372036854775807";
                if (nd > 19 || (nd == 19 && memcmp(digits, lim, 19) > 0))
                        return fail(sc, a, "integer too big");
        } else if (real_may_overflow(digits, p) && real_overflows(a, p)) {
                return fail(sc, a, "real number overflow");
        }
        sc->p = p;
        return 0;
}

static int scan_literal(struct scan *sc)
{
        static const char *const words[] = {"true", "false", "null"};
        const unsigned char *p = sc->p;
        size_t avail = (size_t)(sc->end - p);

        for (int i = 0; i < 3; i++) {
                size_t n = strlen(words[i]);
                if (avail >= n && memcmp(p, words[i], n) == 0) {
                        /* Jansson reads a word of letters: "truex" is not
                         * "true" */
                        const unsigned char *q = p + n;
                        if (q < sc->end && ((*q >= 'a' && *q <= 'z') ||
                                            (*q >= 'A' && *q <= 'Z')))
                                return fail(sc, p, "invalid token");
                        sc->p = q;
                        return 0;
                }
        }
        return fail(sc, p, "invalid token");
}

/* What sl_json_validate_locate tracks on the way: the containers on the
 * stack that lie on the path (1..match), whether the member name just read
 * is the path's next, and the target array's elements. A later member of
 * the same name on the path replaces what an earlier one gave, as in
 * Jansson (and sl_json_locate_array). */
struct locate {
        struct path_names pn;
        int match;
        int next_on;
        int found; /* the target array seen whole, and not replaced since */
        size_t open, close, start;
        long n;
        size_t cap;
        struct sl_json_span *el;
};

static void locate_elem(struct locate *lc, size_t end)
{
        if ((size_t)lc->n == lc->cap) {
                lc->cap = lc->cap ? lc->cap * 2 : 256;
                lc->el = sl_realloc(lc->el, lc->cap * sizeof(*lc->el));
        }
        lc->el[lc->n].off = lc->start;
        lc->el[lc->n].len = end - lc->start;
        lc->n++;
}

/* the container at depth closes at pos */
static void locate_close(struct locate *lc, int depth, size_t pos)
{
        if (depth != lc->match)
                return;
        if (depth == lc->pn.n + 1) {
                lc->close = pos;
                lc->found = 1;
        }
        lc->match = depth - 1;
}

static int validate(const char *s, size_t n, int max_depth,
                    struct sl_json_error *err, struct locate *lc)
{
        int on = 0;
        unsigned char stack[JANSSON_MAX_DEPTH + 1]; /* '{' or '[' */
        int depth = 0;
        struct scan sc;
        int limit = max_depth > 0 && max_depth < JANSSON_MAX_DEPTH
                        ? max_depth
                        : JANSSON_MAX_DEPTH;

        sc.s = sc.p = (const unsigned char *)s;
        sc.end = sc.s + n;
        sc.err = err;
        skip_ws(&sc);
        if (sc.p >= sc.end || (*sc.p != '{' && *sc.p != '['))
                return fail(&sc, sc.p, "'[' or '{' expected");

value:
        /* at the start of a value (whitespace skipped) */
        if (sc.p >= sc.end)
                return fail(&sc, sc.p, "premature end of input");
        if (lc) {
                on = lc->next_on || depth == 0;
                lc->next_on = 0;
                if (depth == lc->match && depth == lc->pn.n + 1)
                        lc->start = (size_t)(sc.p - sc.s);
        }
        switch (*sc.p) {
        case '{':
        case '[':
                if (depth >= limit) {
                        if (limit < JANSSON_MAX_DEPTH) {
                                fail(&sc, sc.p, "nested too deep");
                                return SL_JSON_TOO_DEEP;
                        }
                        return fail(&sc, sc.p,
                                    "maximum parsing depth "
                                    "reached");
                }
                stack[depth++] = *sc.p;
                if (lc && on && depth == lc->match + 1) {
                        /* on the path: an object on the way, or the
                         * array at its end */
                        if (depth == lc->pn.n + 1 && *sc.p == '[') {
                                lc->match = depth;
                                lc->open = (size_t)(sc.p - sc.s);
                                lc->n = 0;
                        } else if (depth <= lc->pn.n && *sc.p == '{') {
                                lc->match = depth;
                        }
                }
                sc.p++;
                skip_ws(&sc);
                if (sc.p < sc.end &&
                    *sc.p == (stack[depth - 1] == '{' ? '}' : ']')) {
                        if (lc)
                                locate_close(lc, depth, (size_t)(sc.p - sc.s));
                        sc.p++;
                        depth--;
                        goto after;
                }
                if (stack[depth - 1] == '[')
                        goto value;
                goto key;
        case '"':
                if (scan_string(&sc) < 0)
                        return -1;
                goto after;
        case '-':
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9':
                if (scan_number(&sc) < 0)
                        return -1;
                goto after;
        default:
                if (scan_literal(&sc) < 0)
                        return -1;
                goto after;
        }

key:
        /* in an object, at a member's key (whitespace skipped) */
        if (sc.p >= sc.end || *sc.p != '"')
                return fail(&sc, sc.p, "string or '}' expected");
        {
                const unsigned char *k = sc.p + 1;
                if (scan_string(&sc) < 0)
                        return -1;
                if (lc && depth == lc->match && depth <= lc->pn.n &&
                    (size_t)(sc.p - 1 - k) == lc->pn.len[depth - 1] &&
                    memcmp(k, lc->pn.name[depth - 1], lc->pn.len[depth - 1]) ==
                        0) {
                        /* this member replaces an earlier of its name */
                        lc->next_on = 1;
                        lc->found = 0;
                        lc->n = 0;
                }
        }
        skip_ws(&sc);
        if (sc.p >= sc.end || *sc.p != ':')
                return fail(&sc, sc.p, "':' expected");
        sc.p++;
        skip_ws(&sc);
        goto value;

after:
        /* past a value */
        if (lc && depth == lc->match && depth == lc->pn.n + 1)
                locate_elem(lc, (size_t)(sc.p - sc.s));
        skip_ws(&sc);
        if (depth == 0) {
                if (sc.p != sc.end)
                        return fail(&sc, sc.p, "end of file expected");
                return 0;
        }
        if (sc.p >= sc.end)
                return fail(&sc, sc.p, "premature end of input");
        if (*sc.p == ',') {
                sc.p++;
                skip_ws(&sc);
                if (stack[depth - 1] == '{')
                        goto key;
                goto value;
        }
        if (*sc.p == (stack[depth - 1] == '{' ? '}' : ']')) {
                if (lc)
                        locate_close(lc, depth, (size_t)(sc.p - sc.s));
                sc.p++;
                depth--;
                goto after;
        }
        return fail(&sc, sc.p,
                    stack[depth - 1] == '{' ? "',' or '}' expected"
                                            : "',' or ']' expected");
}

int sl_json_validate(const char *s, size_t n, int max_depth,
                     struct sl_json_error *err)
{
        return validate(s, n, max_depth, err, NULL);
}

int sl_json_validate_locate(const char *s, size_t n, int max_depth,
                            const char *path, long *nelems, size_t *arr_open,
                            size_t *arr_close, struct sl_json_span **elems,
                            struct sl_json_error *err)
{
        struct locate lc;
        int rc;

        memset(&lc, 0, sizeof(lc));
        *nelems = -1;
        *elems = NULL;
        if (path_names(path, &lc.pn) < 0)
                return validate(s, n, max_depth, err, NULL);
        rc = validate(s, n, max_depth, err, &lc);
        if (rc == 0 && lc.found) {
                *nelems = lc.n;
                *arr_open = lc.open;
                *arr_close = lc.close;
                *elems = lc.el;
        } else {
                free(lc.el);
        }
        return rc;
}

/* ---- locating values in a valid text without decoding it ---- */

static const char *ws(const char *p, const char *end)
{
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        return p;
}

/* The first quote or backslash in [p, end), or end: 16 bytes at a time,
 * inline (a memchr call per string cost more than the short strings of a
 * page take to scan). */
static const char *quote_or_bslash(const char *p, const char *end)
{
#ifdef __SSE2__
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i bslash = _mm_set1_epi8('\\');

        while (end - p >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
                int mask = _mm_movemask_epi8(_mm_or_si128(
                    _mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
                if (mask)
                        return p + __builtin_ctz((unsigned)mask);
                p += 16;
        }
#endif
        while (p < end && *p != '"' && *p != '\\')
                p++;
        return p;
}

/* Past the string whose opening quote is just before p (the text is valid,
 * so a backslash always escapes the byte after it). */
static const char *skip_string(const char *p, const char *end)
{
        for (;;) {
                p = quote_or_bslash(p, end);
                if (p >= end)
                        return end;
                if (*p == '"')
                        return p + 1;
                if (end - p <= 2)
                        return end;
                p += 2;
        }
}

/* Past the JSON value at p (the text is known to be valid JSON). */
static const char *skip_value(const char *p, const char *end)
{
        int depth = 0;

        while (p < end) {
                char c = *p;
                if (c == '"') {
                        p = skip_string(p + 1, end);
                        if (depth == 0)
                                return p;
                        continue;
                }
                if (c == '{' || c == '[') {
                        depth++;
                } else if (c == '}' || c == ']') {
                        if (depth == 0) /* a number or literal ends */
                                return p;
                        if (--depth == 0)
                                return p + 1;
                } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' ||
                                          c == '\r' || c == '\t')) {
                        return p;
                }
                p++;
        }
        return end;
}

/* The value of member key (keylen bytes, unescaped) of the object at p;
 * of repeated names the last, as Jansson keeps it. */
static const char *member(const char *p, const char *end, const char *key,
                          size_t keylen)
{
        const char *found = NULL;

        p = ws(p, end);
        if (p >= end || *p != '{')
                return NULL;
        p = ws(p + 1, end);
        if (p < end && *p == '}')
                return NULL;
        for (;;) {
                const char *k, *kend;
                p = ws(p, end);
                if (p >= end || *p != '"')
                        return found;
                k = p + 1;
                kend = skip_value(p, end) - 1;
                p = ws(kend + 1, end);
                if (p >= end || *p != ':')
                        return found;
                p = ws(p + 1, end);
                if ((size_t)(kend - k) == keylen && memcmp(k, key, keylen) == 0)
                        found = p;
                p = ws(skip_value(p, end), end);
                if (p >= end || *p != ',')
                        return found;
                p++;
        }
}

/* The value at a plain member path (path_names), or NULL; *unsupported
 * set for other paths. */
static const char *find_value(const char *text, size_t len, const char *path,
                              int *unsupported)
{
        const char *end = text + len;
        const char *p = ws(text, end);
        struct path_names pn;

        *unsupported = path_names(path, &pn) < 0;
        if (*unsupported)
                return NULL;
        for (int i = 0; i < pn.n && p; i++)
                p = member(p, end, pn.name[i], pn.len[i]);
        return p;
}
long sl_json_locate_array(const char *text, size_t len, const char *path,
                          size_t *arr_open, size_t *arr_close,
                          struct sl_json_span **recs)
{
        const char *end = text + len;
        int unsupported;
        const char *arr = find_value(text, len, path, &unsupported);
        const char *p;
        struct sl_json_span *r = NULL;
        size_t n = 0, cap = 0;

        *recs = NULL;
        if (!arr || *arr != '[')
                return -1;
        p = arr + 1;
        for (;;) {
                p = ws(p, end);
                if (p >= end) {
                        free(r);
                        return -1;
                }
                if (*p == ']')
                        break;
                if (n == cap) {
                        cap = cap ? cap * 2 : 256;
                        r = sl_realloc(r, cap * sizeof(*r));
                }
                r[n].off = (size_t)(p - text);
                p = skip_value(p, end);
                r[n].len = (size_t)(p - text) - r[n].off;
                if (r[n].len == 0) { /* not JSON there (fetch_salvage) */
                        free(r);
                        return -1;
                }
                n++;
                p = ws(p, end);
                if (p < end && *p == ',')
                        p++;
        }
        *arr_open = (size_t)(arr - text);
        *arr_close = (size_t)(p - text);
        *recs = r;
        return (long)n;
}

int sl_json_member(const char *text, size_t len, const char *path,
                   struct sl_json_span *v)
{
        int unsupported;
        const char *p = find_value(text, len, path, &unsupported);

        if (unsupported)
                return -1;
        if (!p)
                return 0;
        v->off = (size_t)(p - text);
        v->len = (size_t)(skip_value(p, text + len) - p);
        return 1;
}

/* Past the opening bracket or the comma before the next item at *pos; NULL
 * at the closing bracket. */
static const char *next_item(const char *text, size_t len, size_t pos)
{
        const char *end = text + len, *p = ws(text + pos, end);

        if (p < end && (*p == '{' || *p == '[' || *p == ','))
                p = ws(p + 1, end);
        return p < end && *p != '}' && *p != ']' ? p : NULL;
}

int sl_json_object_next(const char *text, size_t len, size_t *pos,
                        struct sl_json_span *name, struct sl_json_span *value)
{
        const char *end = text + len, *p = next_item(text, len, *pos), *kend;

        if (!p || *p != '"')
                return 0;
        kend = skip_string(p + 1, end) - 1;
        name->off = (size_t)(p + 1 - text);
        name->len = (size_t)(kend - (p + 1));
        p = ws(kend + 1, end);
        if (p >= end || *p != ':')
                return 0;
        p = ws(p + 1, end);
        value->off = (size_t)(p - text);
        p = skip_value(p, end);
        value->len = (size_t)(p - text) - value->off;
        *pos = (size_t)(p - text);
        return 1;
}

int sl_json_array_next(const char *text, size_t len, size_t *pos,
                       struct sl_json_span *value)
{
        const char *p = next_item(text, len, *pos);

        if (!p)
                return 0;
        value->off = (size_t)(p - text);
        p = skip_value(p, text + len);
        value->len = (size_t)(p - text) - value->off;
        *pos = (size_t)(p - text);
        return 1;
}

/* ---- a member's value in the first bytes of a text still arriving ---- */

enum { PFX_MORE = 0, PFX_NEVER = -1 };

/* Past the value at p in [p, end) of a text not yet validated: NULL with
 * *why PFX_MORE when the bytes stop inside it (a number or literal counts
 * as complete only once a byte after it has come), PFX_NEVER when it cannot
 * start a JSON value. Brackets are counted, not matched: the whole text is
 * validated later, this only has to stay inside the bytes. */
static const char *prefix_value(const char *p, const char *end, int *why)
{
        long depth = 0;

        *why = PFX_MORE;
        if (p >= end)
                return NULL;
        if (*p != '"' && *p != '{' && *p != '[') {
                const char *s = p;
                while (p < end && ((*p && strchr("+-.0123456789eE", *p)) ||
                                   (*p >= 'a' && *p <= 'z')))
                        p++;
                if (p == s) {
                        *why = PFX_NEVER;
                        return NULL;
                }
                return p < end ? p : NULL;
        }
        do {
                char c = *p++;
                if (c == '"') {
                        for (;;) {
                                p = quote_or_bslash(p, end);
                                if (p >= end)
                                        return NULL;
                                if (*p == '"')
                                        break;
                                if (end - p < 2)
                                        return NULL;
                                p += 2;
                        }
                        p++;
                } else if (c == '{' || c == '[') {
                        depth++;
                } else if (c == '}' || c == ']') {
                        depth--;
                }
        } while (depth > 0 && p < end);
        return depth > 0 ? NULL : p;
}

int sl_json_prefix_member(const char *text, size_t len, const char *path,
                          struct sl_json_span *v)
{
        const char *end = text + len, *p = text;
        struct path_names pn;
        int why;

        if (path_names(path, &pn) < 0 || pn.n == 0)
                return PFX_NEVER;
        for (int i = 0; i < pn.n; i++) {
                int first = 1;
                p = ws(p, end);
                if (p >= end)
                        return PFX_MORE;
                if (*p != '{')
                        return PFX_NEVER;
                p++;
                for (;;) {
                        const char *k, *kend;
                        p = ws(p, end);
                        if (p >= end)
                                return PFX_MORE;
                        if (!first && *p == ',')
                                p = ws(p + 1, end);
                        else if (!first)
                                return PFX_NEVER; /* '}' included: absent */
                        if (p >= end)
                                return PFX_MORE;
                        if (*p != '"')
                                return PFX_NEVER;
                        first = 0;
                        k = p + 1;
                        p = prefix_value(p, end, &why);
                        if (!p)
                                return why;
                        kend = p - 1;
                        p = ws(p, end);
                        if (p >= end)
                                return PFX_MORE;
                        if (*p != ':')
                                return PFX_NEVER;
                        p = ws(p + 1, end);
                        if (p >= end)
                                return PFX_MORE;
                        if ((size_t)(kend - k) == pn.len[i] &&
                            memcmp(k, pn.name[i], pn.len[i]) == 0)
                                break;
                        p = prefix_value(p, end, &why);
                        if (!p)
                                return why;
                }
        }
        {
                const char *after = prefix_value(p, end, &why);
                if (!after)
                        return why;
                v->off = (size_t)(p - text);
                v->len = (size_t)(after - p);
        }
        return 1;
}
