/* map_value.c: one field's value: source paths, constants and templates,
 * functions, choices, type conversion and the field's error policy. */
/* strptime() is X/Open */
#define _XOPEN_SOURCE 700
#include "map.h"
#include "sl_arena.h"
#include "sl_jsondump.h"
#include "sl_jsonpath.h"
#include "sl_tz.h"
#include "sl_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- helpers -------------------------------------------------------- */

static const char *kind_name(json_t *v)
{
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "text";
        case JSON_INTEGER:
        case JSON_REAL:
                return "a number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        case JSON_NULL:
                break;
        }
        return "null";
}

/* A short quoted rendering of v for error messages (dead letters quote
 * the value as the source wrote it: 7.3, not 7.2999999999999998). Writes
 * into buf. */
static const char *show(json_t *v, char *buf, size_t size)
{
        char *s = sl_json_dumps(v, JSON_ENCODE_ANY, NULL);
        if (!s) {
                snprintf(buf, size, "?");
                return buf;
        }
        if (strlen(s) > 80)
                snprintf(buf, size, "%.77s...", s);
        else
                snprintf(buf, size, "%s", s);
        free(s);
        return buf;
}

static char *real_text(double d)
{
        char buf[64];
        snprintf(buf, sizeof(buf), "%.15g", d);
        if (strtod(buf, NULL) != d)
                snprintf(buf, sizeof(buf), "%.17g", d);
        return sl_strdup(buf);
}

/* Text of a scalar (new; free with free()), or NULL for objects, arrays
 * and null. */
char *map_scalar_text(json_t *v)
{
        switch (json_typeof(v)) {
        case JSON_STRING:
                return sl_strndup(json_string_value(v), json_string_length(v));
        case JSON_INTEGER:
                return sl_asprintf("%lld", (long long)json_integer_value(v));
        case JSON_REAL:
                return real_text(json_real_value(v));
        case JSON_TRUE:
                return sl_strdup("true");
        case JSON_FALSE:
                return sl_strdup("false");
        default:
                break;
        }
        return NULL;
}

static int has_nul(json_t *v)
{
        return json_is_string(v) &&
               strlen(json_string_value(v)) != json_string_length(v);
}

/* 1 when any string (or key) in v holds a NUL. */
static int deep_has_nul(json_t *v)
{
        const char *k;
        json_t *e;
        size_t i;

        if (has_nul(v))
                return 1;
        if (json_is_array(v)) {
                json_array_foreach(v, i, e)
                {
                        if (deep_has_nul(e))
                                return 1;
                }
        } else if (json_is_object(v)) {
                json_object_foreach(v, k, e)
                {
                        if (deep_has_nul(e))
                                return 1;
                }
        }
        return 0;
}

/* ---- functions ------------------------------------------------------ */

static json_t *str_fn(const struct map_fn *fn, const char *s, char *errstr,
                      size_t errstr_size)
{
        struct sl_buf b;
        regmatch_t m[10];

        switch (fn->kind) {
        case MAP_FN_LOWER:
        case MAP_FN_UPPER: {
                char *d = sl_strdup(s);
                json_t *r;
                for (char *p = d; *p; p++)
                        *p = (char)(fn->kind == MAP_FN_LOWER
                                        ? tolower((unsigned char)*p)
                                        : toupper((unsigned char)*p));
                r = json_string(d);
                free(d);
                return r;
        }
        case MAP_FN_TRIM: {
                const char *end = s + strlen(s);
                while (*s && isspace((unsigned char)*s))
                        s++;
                while (end > s && isspace((unsigned char)end[-1]))
                        end--;
                return json_stringn(s, (size_t)(end - s));
        }
        case MAP_FN_REGEX_EXTRACT:
                if (regexec(&fn->re, s, 10, m, 0) != 0 ||
                    m[fn->group].rm_so < 0)
                        return json_null();
                return json_stringn(
                    s + m[fn->group].rm_so,
                    (size_t)(m[fn->group].rm_eo - m[fn->group].rm_so));
        case MAP_FN_REGEX_REPLACE: {
                const char *p = s;
                int flags = 0;
                json_t *r;
                sl_buf_init(&b, 0);
                while (*p && regexec(&fn->re, p, 10, m, flags) == 0) {
                        sl_buf_append(&b, p, (size_t)m[0].rm_so);
                        for (const char *w = fn->arg; *w; w++) {
                                if (*w == '\\' &&
                                    isdigit((unsigned char)w[1])) {
                                        int g = w[1] - '0';
                                        if ((size_t)g <= fn->re.re_nsub &&
                                            m[g].rm_so >= 0)
                                                sl_buf_append(
                                                    &b, p + m[g].rm_so,
                                                    (size_t)(m[g].rm_eo -
                                                             m[g].rm_so));
                                        w++;
                                        continue;
                                }
                                if (*w == '\\' && w[1] == '\\')
                                        w++;
                                sl_buf_append(&b, w, 1);
                        }
                        if (m[0].rm_eo == m[0].rm_so) {
                                /* empty match: copy one byte, move on */
                                if (!p[m[0].rm_eo])
                                        break;
                                sl_buf_append(&b, p + m[0].rm_eo, 1);
                                p += m[0].rm_eo + 1;
                        } else {
                                p += m[0].rm_eo;
                        }
                        flags = REG_NOTBOL;
                }
                sl_buf_puts(&b, p);
                r = json_stringn(b.data ? b.data : "", b.len);
                sl_buf_free(&b);
                if (!r)
                        snprintf(errstr, errstr_size,
                                 "regex_replace produced invalid UTF-8");
                return r;
        }
        case MAP_FN_SPLIT: {
                json_t *arr = json_array();
                size_t seplen = strlen(fn->arg);
                const char *p = s;
                if (!*s)
                        return arr;
                for (;;) {
                        const char *hit = strstr(p, fn->arg);
                        if (!hit) {
                                json_array_append_new(arr, json_string(p));
                                break;
                        }
                        json_array_append_new(
                            arr, json_stringn(p, (size_t)(hit - p)));
                        p = hit + seplen;
                }
                return arr;
        }
        case MAP_FN_LENGTH: {
                json_int_t n = 0;
                for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                        if ((*p & 0xC0) != 0x80)
                                n++;
                return json_integer(n);
        }
        default:
                break;
        }
        snprintf(errstr, errstr_size, "internal: bad function");
        return NULL;
}

static const char *fn_name(enum map_fn_kind k)
{
        static const char *const names[] = {
            "lower", "upper", "trim",    "regex_extract", "regex_replace",
            "split", "join",  "default", "length"};
        return names[k];
}

json_t *map_fn_apply(const struct map_fn *fn, json_t *v, char *errstr,
                     size_t errstr_size)
{
        char *text;
        json_t *r;

        if (fn->kind == MAP_FN_DEFAULT)
                return json_incref(json_is_null(v) ? fn->value : v);
        if (json_is_null(v))
                return json_null();
        if (fn->kind == MAP_FN_LENGTH && !json_is_string(v)) {
                if (json_is_array(v))
                        return json_integer((json_int_t)json_array_size(v));
                if (json_is_object(v))
                        return json_integer((json_int_t)json_object_size(v));
        }
        if (fn->kind == MAP_FN_JOIN) {
                struct sl_buf b;
                json_t *e;
                size_t i;
                if (!json_is_array(v)) {
                        snprintf(errstr, errstr_size,
                                 "join wants an array, got %s", kind_name(v));
                        return NULL;
                }
                sl_buf_init(&b, 0);
                json_array_foreach(v, i, e)
                {
                        char *t = map_scalar_text(e);
                        if (json_is_null(e))
                                continue;
                        if (!t) {
                                snprintf(errstr, errstr_size,
                                         "join: element %zu is %s", i,
                                         kind_name(e));
                                sl_buf_free(&b);
                                return NULL;
                        }
                        if (b.len)
                                sl_buf_puts(&b, fn->arg);
                        sl_buf_puts(&b, t);
                        free(t);
                }
                r = json_stringn(b.data ? b.data : "", b.len);
                sl_buf_free(&b);
                return r;
        }
        if (json_is_array(v) && fn->kind != MAP_FN_SPLIT &&
            fn->kind != MAP_FN_LENGTH) {
                /* string functions apply to each element */
                json_t *out = json_array(), *e;
                size_t i;
                json_array_foreach(v, i, e)
                {
                        json_t *x = map_fn_apply(fn, e, errstr, errstr_size);
                        if (!x) {
                                json_decref(out);
                                return NULL;
                        }
                        json_array_append_new(out, x);
                }
                return out;
        }
        text = map_scalar_text(v);
        if (!text) {
                snprintf(errstr, errstr_size, "%s wants text, got %s",
                         fn_name(fn->kind), kind_name(v));
                return NULL;
        }
        r = str_fn(fn, text, errstr, errstr_size);
        free(text);
        return r;
}

/* ---- times ---------------------------------------------------------- */

struct tparts {
        int y, mo, d, h, mi, s;
        long usec;
        int has_time;
        int has_off;
        long off; /* seconds east of UTC */
};

static int is_leap(int y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
        static const int dm[] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
        return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

static int parts_valid(const struct tparts *t)
{
        return t->y >= 1 && t->y <= 9999 && t->mo >= 1 && t->mo <= 12 &&
               t->d >= 1 && t->d <= days_in_month(t->y, t->mo) && t->h >= 0 &&
               t->h <= 23 && t->mi >= 0 && t->mi <= 59 && t->s >= 0 &&
               t->s <= 60;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int y, int m, int d)
{
        int64_t yy = y - (m <= 2);
        int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
        int64_t yoe = yy - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
        int64_t era, doe, yoe, doy, mp;
        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        *d = (int)(doy - (153 * mp + 2) / 5 + 1);
        *m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int digits(const char **s, int n, int *out)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char)(*s)[i]))
                        return -1;
                v = v * 10 + ((*s)[i] - '0');
        }
        *s += n;
        *out = v;
        return 0;
}

/* ISO 8601 / RFC 3339: YYYY-MM-DD[(T|t| )HH:MM[:SS[.frac]]][Z|±HH[:MM]] */
static int parse_iso(const char *s, struct tparts *t)
{
        memset(t, 0, sizeof(*t));
        if (digits(&s, 4, &t->y) || *s++ != '-' || digits(&s, 2, &t->mo) ||
            *s++ != '-' || digits(&s, 2, &t->d))
                return -1;
        if (*s == 'T' || *s == 't' || *s == ' ') {
                s++;
                t->has_time = 1;
                if (digits(&s, 2, &t->h) || *s++ != ':' ||
                    digits(&s, 2, &t->mi))
                        return -1;
                if (*s == ':') {
                        s++;
                        if (digits(&s, 2, &t->s))
                                return -1;
                        if (*s == '.' || *s == ',') {
                                long scale = 100000;
                                s++;
                                if (!isdigit((unsigned char)*s))
                                        return -1;
                                while (isdigit((unsigned char)*s)) {
                                        t->usec += (*s - '0') * scale;
                                        scale /= 10;
                                        s++;
                                }
                        }
                }
                if (*s == 'Z' || *s == 'z') {
                        s++;
                        t->has_off = 1;
                } else if (*s == '+' || *s == '-') {
                        int sign = *s == '-' ? -1 : 1, oh, om = 0;
                        s++;
                        if (digits(&s, 2, &oh))
                                return -1;
                        if (*s == ':')
                                s++;
                        if (*s && digits(&s, 2, &om))
                                return -1;
                        if (oh > 14 || om > 59)
                                return -1;
                        t->has_off = 1;
                        t->off = sign * (oh * 3600L + om * 60L);
                }
        }
        return *s == '\0' && parts_valid(t) ? 0 : -1;
}

static int parse_strptime(const char *s, const char *fmt, struct tparts *t)
{
        struct tm tm;
        const char *end;

        memset(&tm, 0, sizeof(tm));
        memset(t, 0, sizeof(*t));
        tm.tm_mday = 1;
        tm.tm_gmtoff = LONG_MIN;
        end = strptime(s, fmt, &tm);
        if (!end || *end)
                return -1;
        t->y = tm.tm_year + 1900;
        t->mo = tm.tm_mon + 1;
        t->d = tm.tm_mday;
        t->h = tm.tm_hour;
        t->mi = tm.tm_min;
        t->s = tm.tm_sec;
        t->has_time = strstr(fmt, "%H") || strstr(fmt, "%I") ||
                      strstr(fmt, "%T") || strstr(fmt, "%R") ||
                      strstr(fmt, "%M");
        if (tm.tm_gmtoff != LONG_MIN) {
                t->has_off = 1;
                t->off = tm.tm_gmtoff;
        }
        return parts_valid(t) ? 0 : -1;
}

/* Seconds east of UTC of a local wall time in an IANA zone, from the
 * zone's file (sl_tz): never through setenv("TZ") and tzset(), which race
 * with the other threads of the process (librdkafka's, libmicrohttpd's)
 * reading the environment and the local time. UTC when the zone cannot
 * be read (map.c checked it at load). */
static long named_offset(const char *zone, const struct tparts *t)
{
        const struct sl_tz *z;
        char err[256];

        z = sl_tz_get(zone, err, sizeof(err));
        if (!z)
                return 0;
        return sl_tz_offset_local(z,
                                  days_from_civil(t->y, t->mo, t->d) * 86400 +
                                      t->h * 3600 + t->mi * 60 + t->s);
}

static long zone_offset(const struct map_field *f, const struct tparts *t)
{
        if (t->has_off)
                return t->off;
        if (f->tz_kind == MAP_TZ_OFFSET)
                return f->tz_offset;
        if (f->tz_kind == MAP_TZ_NAMED)
                return named_offset(f->tz_name, t);
        return 0;
}

static int64_t to_epoch(const struct tparts *t, long off)
{
        return days_from_civil(t->y, t->mo, t->d) * 86400 + t->h * 3600 +
               t->mi * 60 + t->s - off;
}

static json_t *fmt_ts(int64_t sec, long usec)
{
        int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
        int64_t rem = sec - days * 86400;
        int y, m, d;
        char buf[64];

        civil_from_days(days, &y, &m, &d);
        if (y < 1 || y > 9999)
                return NULL;
        if (usec % 1000 == 0)
                snprintf(buf, sizeof(buf),
                         "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", y, m, d,
                         (int)(rem / 3600), (int)(rem / 60 % 60),
                         (int)(rem % 60), usec / 1000);
        else
                snprintf(buf, sizeof(buf),
                         "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", y, m, d,
                         (int)(rem / 3600), (int)(rem / 60 % 60),
                         (int)(rem % 60), usec);
        return json_string(buf);
}

static json_t *fmt_date_of(const struct map_field *f, int64_t sec)
{
        int64_t days;
        int y, m, d;
        char buf[32];

        /* the date in the field's zone */
        if (f->tz_kind == MAP_TZ_OFFSET) {
                sec += f->tz_offset;
        } else if (f->tz_kind == MAP_TZ_NAMED) {
                struct tparts t;
                int64_t dd = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
                memset(&t, 0, sizeof(t));
                civil_from_days(dd, &t.y, &t.mo, &t.d);
                t.h = (int)((sec - dd * 86400) / 3600);
                sec += named_offset(f->tz_name, &t);
        }
        days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
        civil_from_days(days, &y, &m, &d);
        if (y < 1 || y > 9999)
                return NULL;
        snprintf(buf, sizeof(buf), "%04d-%02d-%02d", y, m, d);
        return json_string(buf);
}

static int epoch_value(json_t *v, double scale, int64_t *sec, long *usec)
{
        double d;
        if (json_is_number(v)) {
                d = json_number_value(v);
        } else if (json_is_string(v)) {
                if (sl_parse_double(json_string_value(v), &d) < 0)
                        return -1;
        } else {
                return -1;
        }
        d /= scale;
        if (!isfinite(d) || d < -62135596800.0 || d > 253402300799.0)
                return -1;
        *sec = (int64_t)floor(d);
        *usec = (long)llround((d - floor(d)) * 1e6);
        if (*usec >= 1000000) {
                (*sec)++;
                *usec -= 1000000;
        }
        return 0;
}

static json_t *convert_time(const struct map_field *f, json_t *v, char *errstr,
                            size_t errstr_size)
{
        static const char *const iso[] = {"iso8601"};
        const char *const *formats =
            f->nformats ? (const char *const *)f->formats : iso;
        size_t n = f->nformats ? f->nformats : 1;
        int is_date = f->type == MAP_T_DATE;
        char shown[128];

        for (size_t i = 0; i < n; i++) {
                struct tparts t;
                int64_t sec;
                long usec = 0;
                json_t *r;

                if (strcmp(formats[i], "epoch") == 0 ||
                    strcmp(formats[i], "epoch_ms") == 0) {
                        if (epoch_value(v, formats[i][5] ? 1000.0 : 1.0, &sec,
                                        &usec) < 0)
                                continue;
                        r = is_date ? fmt_date_of(f, sec) : fmt_ts(sec, usec);
                        if (r)
                                return r;
                        continue;
                }
                if (!json_is_string(v))
                        continue;
                if (strcmp(formats[i], "iso8601") == 0) {
                        if (parse_iso(json_string_value(v), &t) < 0)
                                continue;
                } else if (parse_strptime(json_string_value(v), formats[i],
                                          &t) < 0) {
                        continue;
                }
                if (is_date && !t.has_off) {
                        char buf[48];
                        snprintf(buf, sizeof(buf), "%04d-%02d-%02d", t.y, t.mo,
                                 t.d);
                        return json_string(buf);
                }
                sec = to_epoch(&t, zone_offset(f, &t));
                r = is_date ? fmt_date_of(f, sec) : fmt_ts(sec, t.usec);
                if (r)
                        return r;
        }
        snprintf(errstr, errstr_size, "bad %s %s",
                 is_date ? "date" : "timestamp", show(v, shown, sizeof(shown)));
        return NULL;
}

/* ---- other types ---------------------------------------------------- */

static json_t *convert_int(const struct map_field *f, json_t *v, char *errstr,
                           size_t errstr_size)
{
        long long n;
        char shown[128];
        int ok = 0;

        if (json_is_integer(v)) {
                n = json_integer_value(v);
                ok = 1;
        } else if (json_is_real(v)) {
                double d = json_real_value(v);
                if (d == floor(d) && fabs(d) < 9.2e18) {
                        n = (long long)d;
                        ok = 1;
                }
        } else if (json_is_string(v)) {
                ok = sl_parse_ll(json_string_value(v), &n) == 0;
        }
        if (ok && f->type == MAP_T_INTEGER && (n < INT32_MIN || n > INT32_MAX))
                ok = 0;
        if (!ok) {
                snprintf(errstr, errstr_size, "bad %s %s",
                         map_type_name(f->type), show(v, shown, sizeof(shown)));
                return NULL;
        }
        return json_integer((json_int_t)n);
}

static int numeric_text(const char *s)
{
        const char *p = s;
        int d = 0;
        if (*p == '+' || *p == '-')
                p++;
        while (isdigit((unsigned char)*p)) {
                p++;
                d++;
        }
        if (*p == '.') {
                p++;
                while (isdigit((unsigned char)*p)) {
                        p++;
                        d++;
                }
        }
        if (!d)
                return 0;
        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '+' || *p == '-')
                        p++;
                if (!isdigit((unsigned char)*p))
                        return 0;
                while (isdigit((unsigned char)*p))
                        p++;
        }
        return *p == '\0';
}

static json_t *convert_bool(json_t *v, char *errstr, size_t errstr_size)
{
        static const char *const yes[] = {"true", "t", "yes", "y", "1", "on"};
        static const char *const no[] = {"false", "f", "no", "n", "0", "off"};
        char shown[128];

        if (json_is_boolean(v))
                return json_incref(v);
        if (json_is_integer(v) &&
            (json_integer_value(v) == 0 || json_integer_value(v) == 1))
                return json_boolean(json_integer_value(v));
        if (json_is_string(v)) {
                const char *s = json_string_value(v);
                for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                        if (strcasecmp(s, yes[i]) == 0)
                                return json_true();
                        if (strcasecmp(s, no[i]) == 0)
                                return json_false();
                }
        }
        snprintf(errstr, errstr_size, "bad boolean %s",
                 show(v, shown, sizeof(shown)));
        return NULL;
}

static json_t *convert_uuid(json_t *v, char *errstr, size_t errstr_size)
{
        char out[37], shown[128];
        const char *s = json_string_value(v);
        size_t n = 0;

        if (s) {
                for (const char *p = s; *p && n <= 32; p++) {
                        if (isxdigit((unsigned char)*p))
                                out[n++] = (char)tolower((unsigned char)*p);
                        else if (*p != '-' ||
                                 (n != 8 && n != 12 && n != 16 && n != 20))
                                break;
                        if (p[1] == '\0' && n == 32) {
                                char canon[64];
                                snprintf(canon, sizeof(canon),
                                         "%.8s-%.4s-%.4s-%.4s-%.12s", out,
                                         out + 8, out + 12, out + 16, out + 20);
                                return json_string(canon);
                        }
                }
        }
        snprintf(errstr, errstr_size, "bad uuid %s",
                 show(v, shown, sizeof(shown)));
        return NULL;
}

static json_t *convert_inet(const struct map_field *f, json_t *v, char *errstr,
                            size_t errstr_size)
{
        const char *s = json_string_value(v);
        char addr[64], shown[128];
        unsigned char bytes[16];
        const char *slash;
        int af, bits, prefix;
        size_t alen;

        if (!s)
                goto bad;
        slash = strchr(s, '/');
        alen = slash ? (size_t)(slash - s) : strlen(s);
        if (alen == 0 || alen >= sizeof(addr))
                goto bad;
        memcpy(addr, s, alen);
        addr[alen] = '\0';
        af = strchr(addr, ':') ? AF_INET6 : AF_INET;
        bits = af == AF_INET6 ? 128 : 32;
        if (inet_pton(af, addr, bytes) != 1)
                goto bad;
        prefix = bits;
        if (slash && (sl_parse_int(slash + 1, &prefix) < 0 || prefix < 0 ||
                      prefix > bits))
                goto bad;
        if (f->type == MAP_T_CIDR) {
                for (int b = prefix; b < bits; b++)
                        if (bytes[b / 8] & (0x80 >> (b % 8))) {
                                snprintf(errstr, errstr_size,
                                         "bad cidr %s: bits set right of the "
                                         "mask",
                                         show(v, shown, sizeof(shown)));
                                return NULL;
                        }
        }
        {
                char canon[INET6_ADDRSTRLEN];
                inet_ntop(af, bytes, canon, sizeof(canon));
                if (slash || f->type == MAP_T_CIDR) {
                        char full[INET6_ADDRSTRLEN + 8];
                        snprintf(full, sizeof(full), "%s/%d", canon, prefix);
                        return json_string(full);
                }
                return json_string(canon);
        }
bad:
        snprintf(errstr, errstr_size, "bad %s %s", map_type_name(f->type),
                 show(v, shown, sizeof(shown)));
        return NULL;
}

static const char nul_msg[] = "contains a NUL character (\\u0000), which "
                              "PostgreSQL cannot store";

json_t *map_convert(const struct map_field *f, json_t *v, char *errstr,
                    size_t errstr_size)
{
        char shown[128];

        if (json_is_null(v))
                return json_null();
        switch (f->type) {
        case MAP_T_TEXT: {
                char *t;
                json_t *r;
                if (has_nul(v)) {
                        snprintf(errstr, errstr_size, "text %s", nul_msg);
                        return NULL;
                }
                if (json_is_string(v))
                        return json_incref(v);
                t = map_scalar_text(v);
                if (!t) {
                        snprintf(errstr, errstr_size,
                                 "expected text, got %s %s", kind_name(v),
                                 show(v, shown, sizeof(shown)));
                        return NULL;
                }
                r = json_string(t);
                free(t);
                return r;
        }
        case MAP_T_INTEGER:
        case MAP_T_BIGINT:
                return convert_int(f, v, errstr, errstr_size);
        case MAP_T_NUMERIC:
                if (json_is_integer(v))
                        return json_incref(v);
                if (json_is_real(v) && isfinite(json_real_value(v))) {
                        /* as exact text: a double printed with 17 digits
                         * would not read back as the source wrote it */
                        char *t = real_text(json_real_value(v));
                        json_t *r = json_string(t);
                        free(t);
                        return r;
                }
                if (json_is_string(v) && numeric_text(json_string_value(v)))
                        return json_incref(v);
                snprintf(errstr, errstr_size, "bad numeric %s",
                         show(v, shown, sizeof(shown)));
                return NULL;
        case MAP_T_BOOLEAN:
                return convert_bool(v, errstr, errstr_size);
        case MAP_T_TIMESTAMPTZ:
        case MAP_T_DATE:
                return convert_time(f, v, errstr, errstr_size);
        case MAP_T_UUID:
                return convert_uuid(v, errstr, errstr_size);
        case MAP_T_INET:
        case MAP_T_CIDR:
                return convert_inet(f, v, errstr, errstr_size);
        case MAP_T_TEXT_ARRAY: {
                json_t *out = json_array(), *e;
                size_t i;
                if (!json_is_array(v)) {
                        json_t *one = json_array();
                        json_t *r;
                        json_array_append(one, v);
                        r = map_convert(f, one, errstr, errstr_size);
                        json_decref(one);
                        json_decref(out);
                        return r;
                }
                json_array_foreach(v, i, e)
                {
                        char *t;
                        if (json_is_null(e)) {
                                json_array_append(out, e);
                                continue;
                        }
                        if (has_nul(e)) {
                                snprintf(errstr, errstr_size, "element %zu %s",
                                         i, nul_msg);
                                json_decref(out);
                                return NULL;
                        }
                        t = map_scalar_text(e);
                        if (!t) {
                                snprintf(errstr, errstr_size,
                                         "text[] element %zu is %s", i,
                                         kind_name(e));
                                json_decref(out);
                                return NULL;
                        }
                        json_array_append_new(out, json_string(t));
                        free(t);
                }
                return out;
        }
        case MAP_T_JSONB:
                if (deep_has_nul(v)) {
                        snprintf(errstr, errstr_size, "jsonb %s", nul_msg);
                        return NULL;
                }
                return json_incref(v);
        }
        snprintf(errstr, errstr_size, "internal: bad type");
        return NULL;
}

/* ---- a field -------------------------------------------------------- */

static int collect(json_t *match, void *opaque)
{
        json_array_append((json_t *)opaque, match);
        return 0;
}

json_t *map_path_value(const struct map_path *p, json_t *rec, json_t *parent)
{
        json_t *root = p->parent ? parent : rec;
        json_t *v;

        if (!root)
                return NULL;
        if (p->single) {
                v = sl_jsonpath_first(p->jp, root);
                return v && !json_is_null(v) ? json_incref(v) : NULL;
        }
        v = json_array();
        sl_jsonpath_each(p->jp, root, collect, v);
        if (json_array_size(v) == 0) {
                json_decref(v);
                return NULL;
        }
        return v;
}

static json_t *template_value(const struct map_field *f, json_t *rec,
                              json_t *parent)
{
        struct sl_buf b;
        json_t *r;

        sl_buf_init(&b, 0);
        for (size_t i = 0; i < f->ntmpl; i++) {
                json_t *v;
                char *t;
                if (f->tmpl[i].lit) {
                        sl_buf_puts(&b, f->tmpl[i].lit);
                        continue;
                }
                v = map_path_value(&f->tmpl[i].path, rec, parent);
                if (!v) {
                        sl_buf_free(&b);
                        return json_null();
                }
                t = map_scalar_text(v);
                /* Jansson's text, reals at %.17g, on purpose: a template
                 * may make a key column, and new text would re-key rows
                 * already loaded */
                if (!t)
                        t = sl_arena_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                sl_buf_puts(&b, t ? t : "");
                free(t);
                json_decref(v);
        }
        r = json_stringn(b.data ? b.data : "", b.len);
        sl_buf_free(&b);
        return r ? r : json_null();
}

static json_t *source_value(const struct map_field *f, json_t *rec,
                            json_t *parent)
{
        if (f->constant)
                return json_incref(f->constant);
        if (f->has_tmpl)
                return template_value(f, rec, parent);
        for (size_t i = 0; i < f->npaths; i++) {
                json_t *v = map_path_value(&f->paths[i], rec, parent);
                if (v)
                        return v;
        }
        return json_null();
}

static json_t *choose(const struct map_field *f, json_t *v, int *reject)
{
        char *t;
        json_t *hit;

        *reject = 0;
        if (json_is_null(v))
                return json_incref(v);
        t = map_scalar_text(v);
        if (t && f->choices_ci)
                for (char *p = t; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
        hit = t ? json_object_get(f->choices, t) : NULL;
        free(t);
        if (hit)
                return json_incref(hit);
        switch (f->unknown) {
        case MAP_UNKNOWN_CREATE:
                return json_incref(v);
        case MAP_UNKNOWN_IGNORE:
                return json_null();
        case MAP_UNKNOWN_REJECT:
                break;
        }
        *reject = 1;
        return NULL;
}

int map_field_eval(const struct map_field *f, json_t *rec, json_t *parent,
                   json_t **out, char *errstr, size_t errstr_size)
{
        char why[384], shown[128];
        json_t *v;
        json_t *c;

        *out = NULL;
        if (f->script) {
                /* a script's failure is the record's, whatever on_error
                 * says: on_error is about conversions */
                v = map_script_value(f->script, rec, parent, why, sizeof(why));
                if (!v) {
                        snprintf(errstr, errstr_size, "field %s: script: %s",
                                 f->column, why);
                        return -1;
                }
        } else {
                v = source_value(f, rec, parent);
        }
        for (size_t i = 0; i < f->nfns; i++) {
                json_t *x = map_fn_apply(&f->fns[i], v, why, sizeof(why));
                if (!x)
                        goto failed;
                json_decref(v);
                v = x;
        }
        if (f->choices) {
                int reject;
                json_t *x = choose(f, v, &reject);
                if (reject) {
                        snprintf(errstr, errstr_size,
                                 "field %s: unknown choice %s", f->column,
                                 show(v, shown, sizeof(shown)));
                        json_decref(v);
                        return -1;
                }
                json_decref(v);
                v = x;
        }
        if (json_is_null(v) && f->def) {
                json_decref(v);
                v = json_incref(f->def);
        }
        c = map_convert(f, v, why, sizeof(why));
        if (!c)
                goto failed;
        json_decref(v);
        v = c;
        goto done;
failed:
        /* NUL cannot be stored whatever the policy says. */
        if (f->on_error == MAP_ON_ERROR_REJECT || strstr(why, "NUL")) {
                snprintf(errstr, errstr_size, "field %s: %s", f->column, why);
                json_decref(v);
                return -1;
        }
        json_decref(v);
        v = json_null();
        if (f->on_error == MAP_ON_ERROR_DEFAULT) {
                json_decref(v);
                v = map_convert(f, f->def, why, sizeof(why));
                if (!v) {
                        snprintf(errstr, errstr_size, "field %s: default: %s",
                                 f->column, why);
                        return -1;
                }
        }
done:
        if (f->required && json_is_null(v)) {
                snprintf(errstr, errstr_size, "field %s: required, no value",
                         f->column);
                json_decref(v);
                return -1;
        }
        *out = v;
        return 0;
}
