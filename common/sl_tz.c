/* sl_tz: IANA zone offsets from TZif files (RFC 8536), with no TZ
 * environment switch; see sl_tz.h. */
#include "sl_tz.h"
#include "sl_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One end of daylight time in a POSIX rule: Mm.w.d, Jn or n, at time
 * (seconds after local midnight; may be negative or past 24 h). */
struct rule_date {
        char kind; /* 'M', 'J' or 'n' */
        int m, w, d, n;
        long time;
};

struct sl_tz {
        char *name;
        int64_t *trans;     /* transition instants, ascending */
        unsigned char *idx; /* type in force from each */
        int ntrans;
        long *utoff; /* per type: seconds east of UTC */
        int ntypes;
        /* the footer rule, for instants past the last transition */
        int has_rule, has_dst;
        long std_off, dst_off;
        struct rule_date start, end;
        struct sl_tz *next; /* the cache */
};

static uint32_t be32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
               (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t be64(const unsigned char *p)
{
        return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

int64_t sl_days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static int is_leap(int64_t y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
        static const int md[] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
        return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

/* The year of unix day `days`. */
static int64_t year_of(int64_t days)
{
        int64_t z = days + 719468, era, doe, yoe, doy, mp;

        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        return yoe + era * 400 + (mp >= 10);
}

/* [+-]hh[:mm[:ss]] at *s into *v seconds; 0, or -1. */
static int parse_hms(const char **s, long *v)
{
        const char *p = *s;
        long sign = 1, part[3] = {0, 0, 0};
        int n = 0;

        if (*p == '+' || *p == '-')
                sign = *p++ == '-' ? -1 : 1;
        for (;;) {
                int digits = 0;
                while (*p >= '0' && *p <= '9' && digits < 3) {
                        part[n] = part[n] * 10 + (*p++ - '0');
                        digits++;
                }
                if (!digits)
                        return -1;
                n++;
                if (n == 3 || *p != ':')
                        break;
                p++;
        }
        *v = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
        *s = p;
        return 0;
}

/* A zone abbreviation: <...> or letters. 0, or -1. */
static int parse_abbr(const char **s)
{
        const char *p = *s;

        if (*p == '<') {
                while (*p && *p != '>')
                        p++;
                if (*p != '>')
                        return -1;
                *s = p + 1;
                return 0;
        }
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
                p++;
        if (p - *s < 3)
                return -1;
        *s = p;
        return 0;
}

static int parse_int(const char **s, int *v)
{
        const char *p = *s;
        int n = 0, digits = 0;

        while (*p >= '0' && *p <= '9' && digits < 4) {
                n = n * 10 + (*p++ - '0');
                digits++;
        }
        if (!digits)
                return -1;
        *v = n;
        *s = p;
        return 0;
}

static int parse_date(const char **s, struct rule_date *r)
{
        const char *p = *s;

        memset(r, 0, sizeof(*r));
        r->time = 7200;
        if (*p == 'M') {
                p++;
                r->kind = 'M';
                if (parse_int(&p, &r->m) < 0 || *p++ != '.' ||
                    parse_int(&p, &r->w) < 0 || *p++ != '.' ||
                    parse_int(&p, &r->d) < 0)
                        return -1;
                if (r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d > 6)
                        return -1;
        } else {
                r->kind = *p == 'J' ? 'J' : 'n';
                if (*p == 'J')
                        p++;
                if (parse_int(&p, &r->n) < 0 || r->n > 365 ||
                    (r->kind == 'J' && r->n < 1))
                        return -1;
        }
        if (*p == '/') {
                p++;
                if (parse_hms(&p, &r->time) < 0)
                        return -1;
        }
        *s = p;
        return 0;
}

/* The POSIX TZ string of a TZif footer ("" for none). 0, or -1. */
static int parse_rule(struct sl_tz *z, const char *s)
{
        long v;

        if (!*s)
                return 0;
        if (parse_abbr(&s) < 0 || parse_hms(&s, &v) < 0)
                return -1;
        z->std_off = -v; /* POSIX counts west */
        z->has_rule = 1;
        if (!*s)
                return 0;
        if (parse_abbr(&s) < 0)
                return -1;
        z->has_dst = 1;
        z->dst_off = z->std_off + 3600;
        if (*s && *s != ',') {
                if (parse_hms(&s, &v) < 0)
                        return -1;
                z->dst_off = -v;
        }
        if (!*s) { /* POSIX's default: the US rule */
                const char *us = ",M3.2.0,M11.1.0";
                s = us;
        }
        if (*s++ != ',' || parse_date(&s, &z->start) < 0 || *s++ != ',' ||
            parse_date(&s, &z->end) < 0 || *s)
                return -1;
        return 0;
}

/* Local midnight of the rule's day in year y, plus its time, counted as
 * if UTC. */
static int64_t rule_local(int64_t y, const struct rule_date *r)
{
        int64_t day;

        if (r->kind == 'M') {
                int64_t first = sl_days_from_civil(y, r->m, 1);
                int wday = (int)(((first + 4) % 7 + 7) % 7);
                int mday = 1 + (r->d - wday + 7) % 7 + (r->w - 1) * 7;
                while (mday > month_days(y, r->m))
                        mday -= 7;
                day = first + mday - 1;
        } else if (r->kind == 'J') {
                day = sl_days_from_civil(y, 1, 1) + r->n - 1 +
                      (is_leap(y) && r->n >= 60);
        } else {
                day = sl_days_from_civil(y, 1, 1) + r->n;
        }
        return day * 86400 + r->time;
}

static long rule_offset(const struct sl_tz *z, int64_t t)
{
        int64_t local = t + z->std_off, y, start, end;
        int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);

        if (!z->has_dst)
                return z->std_off;
        y = year_of(days);
        /* the start is given in standard time, the end in daylight time */
        start = rule_local(y, &z->start) - z->std_off;
        end = rule_local(y, &z->end) - z->dst_off;
        if (start < end)
                return t >= start && t < end ? z->dst_off : z->std_off;
        return t >= end && t < start ? z->std_off : z->dst_off;
}

long sl_tz_offset_at(const struct sl_tz *z, int64_t t)
{
        int lo = 0, hi;

        if (z->ntrans == 0 || t < z->trans[0])
                return z->ntrans == 0 && z->has_rule ? rule_offset(z, t)
                                                     : z->utoff[0];
        if (t >= z->trans[z->ntrans - 1] && z->has_rule)
                return rule_offset(z, t);
        hi = z->ntrans - 1;
        while (lo < hi) { /* the last transition at or before t */
                int mid = lo + (hi - lo + 1) / 2;
                if (z->trans[mid] <= t)
                        lo = mid;
                else
                        hi = mid - 1;
        }
        return z->utoff[z->idx[lo]];
}

long sl_tz_offset_local(const struct sl_tz *z, int64_t local)
{
        long early = sl_tz_offset_at(z, local - 86400);
        long late = sl_tz_offset_at(z, local + 86400);

        if (sl_tz_offset_at(z, local - early) == early)
                return early;
        if (sl_tz_offset_at(z, local - late) == late)
                return late;
        return early; /* a skipped hour: the offset before the change */
}

void sl_tz_free(struct sl_tz *z)
{
        if (!z)
                return;
        free(z->name);
        free(z->trans);
        free(z->idx);
        free(z->utoff);
        free(z);
}

struct sl_tz *sl_tz_parse(const unsigned char *p, size_t n, char *errstr,
                          size_t errstr_size)
{
        struct sl_tz *z = NULL;
        size_t tsize = 4, off = 0, block, cnt[6];
        char *footer = NULL;

        if (n < 44 || memcmp(p, "TZif", 4) != 0)
                goto bad;
        for (int pass = 0; pass < 2; pass++) {
                if (off + 44 > n || memcmp(p + off, "TZif", 4) != 0)
                        goto bad;
                for (int i = 0; i < 6; i++)
                        cnt[i] = be32(p + off + 20 + 4 * i);
                /* isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
                if (cnt[3] > 100000 || cnt[4] == 0 || cnt[4] > 256 ||
                    cnt[5] > 100000 || cnt[2] > 100000 || cnt[0] > 256 ||
                    cnt[1] > 256)
                        goto bad;
                block = cnt[3] * tsize + cnt[3] + cnt[4] * 6 + cnt[5] +
                        cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
                if (off + 44 + block > n)
                        goto bad;
                if (pass == 0 && p[4] >= '2') {
                        off += 44 + block; /* to the 64-bit data */
                        tsize = 8;
                        continue;
                }
                break;
        }
        z = sl_calloc(1, sizeof(*z));
        z->ntrans = (int)cnt[3];
        z->ntypes = (int)cnt[4];
        z->trans = sl_calloc(cnt[3] + 1, sizeof(*z->trans));
        z->idx = sl_calloc(cnt[3] + 1, 1);
        z->utoff = sl_calloc(cnt[4], sizeof(*z->utoff));
        {
                const unsigned char *d = p + off + 44;
                const unsigned char *ix = d + cnt[3] * tsize;
                const unsigned char *ti = ix + cnt[3];

                for (size_t i = 0; i < cnt[3]; i++) {
                        z->trans[i] = tsize == 8 ? be64(d + 8 * i)
                                                 : (int32_t)be32(d + 4 * i);
                        z->idx[i] = ix[i];
                        if (ix[i] >= cnt[4] ||
                            (i > 0 && z->trans[i] <= z->trans[i - 1]))
                                goto bad;
                }
                for (size_t i = 0; i < cnt[4]; i++) {
                        int32_t u = (int32_t)be32(ti + 6 * i);
                        if (u < -25 * 3600 || u > 26 * 3600)
                                goto bad;
                        z->utoff[i] = u;
                }
        }
        off += 44 + block;
        if (tsize == 8 && off < n && p[off] == '\n') {
                const unsigned char *e = memchr(p + off + 1, '\n', n - off - 1);
                if (!e)
                        goto bad;
                footer = sl_strndup((const char *)p + off + 1,
                                    (size_t)(e - (p + off + 1)));
                if (parse_rule(z, footer) < 0)
                        goto bad;
        }
        free(footer);
        return z;
bad:
        snprintf(errstr, errstr_size, "not a valid TZif zone file");
        free(footer);
        sl_tz_free(z);
        return NULL;
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sl_tz *cache; /* every zone loaded, for the process */

static int name_ok(const char *name)
{
        if (!*name || *name == '/' || strstr(name, ".."))
                return 0;
        for (const char *c = name; *c; c++)
                if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                      (*c >= '0' && *c <= '9') || *c == '/' || *c == '_' ||
                      *c == '-' || *c == '+'))
                        return 0;
        return 1;
}

const struct sl_tz *sl_tz_get(const char *name, char *errstr,
                              size_t errstr_size)
{
        const char *dir = getenv("TZDIR");
        struct sl_tz *z;
        char path[1024], err[256];
        char *bytes = NULL;
        size_t len = 0;

        if (!name_ok(name)) {
                snprintf(errstr, errstr_size, "\"%s\" is not a zone name",
                         name);
                return NULL;
        }
        pthread_mutex_lock(&cache_lock);
        for (z = cache; z; z = z->next)
                if (strcmp(z->name, name) == 0)
                        goto out;
        snprintf(path, sizeof(path), "%s/%s",
                 dir && *dir ? dir : "/usr/share/zoneinfo", name);
        bytes = sl_file_read(path, &len, err, sizeof(err));
        if (!bytes) {
                snprintf(errstr, errstr_size, "unknown time zone %s: %s", name,
                         err);
                goto out;
        }
        z = sl_tz_parse((const unsigned char *)bytes, len, err, sizeof(err));
        if (!z) {
                snprintf(errstr, errstr_size, "time zone %s: %s", name, err);
                goto out;
        }
        z->name = sl_strdup(name);
        z->next = cache;
        cache = z;
out:
        pthread_mutex_unlock(&cache_lock);
        free(bytes);
        return z;
}
