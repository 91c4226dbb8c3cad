/* bench_transform_bound: the transform stage's bound. The same work as
 * `sluice transform transformers/maps/nvd_cve.json` on the same pages, done
 * the fastest way known, in one thread (the transformer maps on one), with
 * no Kafka: for each page, sl_json_validate_locate checks it and finds the
 * records of $.vulnerabilities in one pass; each record's "cve" is found by
 * sl_json_member and built by sl_json_decode from the scanner's spans (no
 * second parse) into an arena that the next record reuses (sl_arena, as
 * the transformer does); the map's fields are picked by hand-written C
 * (json_object_get chains, no path or map interpretation): id trimmed and
 * upper-cased, the timestamps checked and given their zone, the English
 * descriptions joined, the first CVSS version/score/severity/vector of v4.0,
 * v3.1, v3.0, v2, the score as exact text, the severity checked against
 * the map's choices, and the three child lists (references, weaknesses,
 * CPE matches) each deduplicated on its key with a hash set; the four
 * envelopes of each record, with the same lineage members, are written by
 * sl_json_dump into one reused buffer, as the transformer writes them
 * before handing them to librdkafka. This is the transformer's codec and
 * its memory strategy without anything else: the least CPU a transformer
 * of this map, written in C on this codec, needs.
 *
 * usage: bench_transform_bound [-o OUT.jsonl] PAGE.json...
 *   -o: also write the envelopes, one a line (to compare with the
 *   transformer's; untimed pass)
 * prints one line: pages=N page_bytes=N records=N envelopes=N out_bytes=N
 * validate_s=X total_s=Y (medians of three passes; the pages are read
 * before the clock starts). Exit 1 on a page or record it cannot map. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "sl_arena.h"
#include "sl_jsondecode.h"
#include "sl_jsondump.h"
#include "sl_jsonscan.h"
#include "sl_util.h"

#define PASSES 3

struct blob {
        char *data;
        size_t len;
};

struct counts {
        long records, envelopes;
        size_t out_bytes;
        double validate_s;
};

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads a whole file into b (new; free b->data). 0, or -1 with a message. */
static int read_all(const char *path, struct blob *b)
{
        FILE *f = fopen(path, "rb");
        size_t cap = 1 << 16, n;

        if (!f) {
                fprintf(stderr, "bench_transform_bound: %s: %s\n", path,
                        strerror(errno));
                return -1;
        }
        b->data = sl_malloc(cap);
        b->len = 0;
        while ((n = fread(b->data + b->len, 1, cap - b->len, f)) > 0) {
                b->len += n;
                if (b->len == cap) {
                        cap *= 2;
                        b->data = sl_realloc(b->data, cap);
                }
        }
        fclose(f);
        return 0;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* ---- the map's conversions, by hand ---------------------------------- */

/* Trimmed (and upper-cased when upper) copy of a string value; NULL when v
 * is not a string or is empty after trimming. */
static json_t *trim_upper(const json_t *v, int upper)
{
        const char *s = json_string_value(v);
        size_t n, i;
        char buf[256], *t;
        json_t *r;

        if (!s)
                return NULL;
        n = json_string_length(v);
        while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
                s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
                     s[n - 1] == '\r'))
                n--;
        if (!n)
                return NULL;
        t = n < sizeof(buf) ? buf : sl_malloc(n + 1);
        for (i = 0; i < n; i++)
                t[i] = upper && s[i] >= 'a' && s[i] <= 'z'
                           ? (char)(s[i] - 'a' + 'A')
                           : s[i];
        r = json_stringn(t, n);
        if (t != buf)
                free(t);
        return r;
}

static int digits(const char *s, int n)
{
        for (int i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return 0;
        return 1;
}

/* An ISO 8601 timestamp YYYY-MM-DDTHH:MM:SS[.f...][Z] as the map writes
 * it: checked, in UTC with its "Z" (NVD's have no zone; the map reads a
 * zone-less time as UTC). NULL (a null field) when v is null; *bad when v
 * is not such a timestamp. */
static json_t *ts_utc(json_t *v, int *bad)
{
        const char *s = json_string_value(v);
        size_t n, i;
        char buf[48];

        if (!v || json_is_null(v))
                return NULL;
        if (!s || (n = json_string_length(v)) < 19 || n > 40 || !digits(s, 4) ||
            s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
            !digits(s + 8, 2) || (s[10] != 'T' && s[10] != ' ') ||
            !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) ||
            s[16] != ':' || !digits(s + 17, 2)) {
                *bad = 1;
                return NULL;
        }
        i = 19;
        if (i < n && s[i] == '.') {
                i++;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                        i++;
        }
        if (i == n) {
                memcpy(buf, s, n);
                buf[10] = 'T';
                buf[n] = 'Z';
                return json_stringn(buf, n + 1);
        }
        if (i + 1 == n && s[i] == 'Z')
                return json_incref(v);
        *bad = 1; /* an offset: NVD sends none, this bound converts none */
        return NULL;
}

/* A numeric as the map writes it: an integer stays, a real becomes the
 * shortest text that reads back to it, a numeric string stays. */
static json_t *numeric(json_t *v)
{
        char buf[40];
        double d;

        if (!v || json_is_null(v))
                return NULL;
        if (json_is_integer(v) || json_is_string(v))
                return json_incref(v);
        if (!json_is_real(v))
                return NULL;
        d = json_real_value(v);
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, d);
                if (strtod(buf, NULL) == d)
                        break;
        }
        return json_string(buf);
}

/* The first non-null of m.cvssMetricV40[0].cvssData.K, V31, V30, V2 (for
 * the severity, V2's is beside cvssData, not in it). */
static json_t *first_cvss(const json_t *m, const char *k, int v2_outer)
{
        static const char *const names[] = {"cvssMetricV40", "cvssMetricV31",
                                            "cvssMetricV30", "cvssMetricV2"};

        for (int i = 0; i < 4; i++) {
                json_t *e = json_array_get(json_object_get(m, names[i]), 0);
                json_t *v = json_object_get(
                    i == 3 && v2_outer ? e : json_object_get(e, "cvssData"), k);
                if (v && !json_is_null(v))
                        return v;
        }
        return NULL;
}

static json_t *or_null(json_t *v)
{
        return v ? v : json_null();
}

/* ---- a set of strings, for the child rows' keys ----------------------- */

struct strset {
        const char **k;
        size_t cap;
};

static uint64_t hash(const char *s)
{
        uint64_t h = 1469598103934665603ull;

        while (*s)
                h = (h ^ (unsigned char)*s++) * 1099511628211ull;
        return h;
}

/* Empties set for up to n keys. */
static void set_reset(struct strset *set, size_t n)
{
        size_t cap = 16;

        while (cap < 2 * n)
                cap *= 2;
        if (cap > set->cap) {
                free(set->k);
                set->k = sl_malloc(cap * sizeof(*set->k));
                set->cap = cap;
        }
        memset(set->k, 0, set->cap * sizeof(*set->k));
}

/* 1 when s was added, 0 when it was there (the map keeps the first). */
static int set_add(struct strset *set, const char *s)
{
        size_t i = (size_t)hash(s) & (set->cap - 1);

        while (set->k[i]) {
                if (strcmp(set->k[i], s) == 0)
                        return 0;
                i = (i + 1) & (set->cap - 1);
        }
        set->k[i] = s;
        return 1;
}

/* ---- one record's four envelopes --------------------------------------- */

struct ctx {
        struct sl_buf out;
        struct strset seen;
        FILE *dump; /* -o */
        struct counts c;
};

static json_t *envelope(const char *table, const char *op, json_t *id)
{
        json_t *e = json_object(), *key = json_object();

        json_object_set_new(e, "v", json_integer(1));
        json_object_set_new(e, "table", json_string(table));
        json_object_set_new(e, "op", json_string(op));
        json_object_set(key, "cve_id", id);
        json_object_set_new(e, "key", key);
        return e;
}

/* Adds version (and version_column when upsert), lineage, and writes the
 * envelope as the transformer does before producing it. */
static int emit(struct ctx *x, json_t *env, json_t *ver, json_t *lineage,
                int upsert)
{
        json_object_set(env, "version", ver);
        if (upsert)
                json_object_set_new(env, "version_column",
                                    json_string("last_modified"));
        json_object_set(env, "lineage", lineage);
        sl_buf_reset(&x->out);
        if (sl_json_dump(&x->out, env, 0) < 0)
                return -1;
        x->c.envelopes++;
        x->c.out_bytes += x->out.len;
        if (x->dump) {
                fwrite(x->out.data, 1, x->out.len, x->dump);
                fputc('\n', x->dump);
        }
        return 0;
}

static json_t *lineage_new(long record)
{
        json_t *l = json_object();

        json_object_set_new(l, "source", json_string("nvd"));
        json_object_set_new(l, "run", json_string("1796459499272-9342"));
        json_object_set_new(l, "topic", json_string("raw.nvd"));
        json_object_set_new(l, "partition", json_integer(0));
        json_object_set_new(l, "offset", json_integer(0));
        json_object_set_new(l, "page", json_string("0"));
        json_object_set_new(l, "chunk", json_string("1/5"));
        json_object_set_new(l, "record", json_integer(record));
        json_object_set_new(l, "fetched_at",
                            json_string("2026-12-05T08:31:39.330Z"));
        json_object_set_new(l, "map", json_string("nvd_cve"));
        return l;
}

static const char *const severities[] = {"NONE", "LOW", "MEDIUM", "HIGH",
                                         "CRITICAL"};

/* Maps one decoded cve object: 0, or -1 (a record the map would reject
 * or an encoding failure). */
static int map_record(struct ctx *x, json_t *c, long record)
{
        json_t *id = NULL, *ver = NULL, *pub = NULL, *lin = NULL, *env = NULL;
        json_t *row, *rows, *m, *v, *arr;
        int bad = 0, rc = -1;
        size_t i, j, k;

        id = trim_upper(json_object_get(c, "id"), 1);
        pub = ts_utc(json_object_get(c, "published"), &bad);
        ver = ts_utc(json_object_get(c, "lastModified"), &bad);
        if (!id || !pub || !ver || bad)
                goto out;
        lin = lineage_new(record);
        m = json_object_get(c, "metrics");

        /* the parent row */
        env = envelope("vulnerability", "upsert", id);
        row = json_object();
        json_object_set(row, "cve_id", id);
        json_object_set_new(
            row, "source_identifier",
            json_incref(or_null(json_object_get(c, "sourceIdentifier"))));
        json_object_set(row, "published", pub);
        json_object_set(row, "last_modified", ver);
        json_object_set_new(
            row, "vuln_status",
            json_incref(or_null(json_object_get(c, "vulnStatus"))));
        {
                struct sl_buf d;
                int any = 0;

                sl_buf_init(&d, 0);
                json_array_foreach(json_object_get(c, "descriptions"), i, v)
                {
                        const char *lang =
                            json_string_value(json_object_get(v, "lang"));
                        json_t *val = json_object_get(v, "value");
                        if (!lang || strcmp(lang, "en") != 0 ||
                            !json_is_string(val))
                                continue;
                        if (any++)
                                sl_buf_append(&d, "\n", 1);
                        sl_buf_append(&d, json_string_value(val),
                                      json_string_length(val));
                }
                json_object_set_new(row, "description",
                                    any ? json_stringn(d.data, d.len)
                                        : json_null());
                sl_buf_free(&d);
        }
        json_object_set_new(row, "cvss_version",
                            json_incref(or_null(first_cvss(m, "version", 0))));
        v = numeric(first_cvss(m, "baseScore", 0));
        json_object_set_new(row, "cvss_score", v ? v : json_null());
        v = trim_upper(first_cvss(m, "baseSeverity", 1), 1);
        if (v) {
                for (k = 0; k < 5; k++)
                        if (strcmp(json_string_value(v), severities[k]) == 0)
                                break;
                if (k == 5) {
                        json_decref(v);
                        json_decref(row);
                        goto out; /* "unknown": "reject" */
                }
        }
        json_object_set_new(row, "cvss_severity", v ? v : json_null());
        json_object_set_new(
            row, "cvss_vector",
            json_incref(or_null(first_cvss(m, "vectorString", 0))));
        v = json_object_get(c, "cisaExploitAdd");
        if (v && !json_is_null(v) &&
            (!json_is_string(v) || json_string_length(v) != 10 ||
             !digits(json_string_value(v), 4)))
                goto row_bad;
        json_object_set_new(row, "cisa_exploit_add", json_incref(or_null(v)));
        json_object_set_new(row, "metrics", json_incref(or_null(m)));
        json_object_set_new(env, "row", row);
        if (emit(x, env, ver, lin, 1) < 0)
                goto out;
        json_decref(env);

        /* references, one per url */
        env = envelope("vulnerability_reference", "replace", id);
        rows = json_array();
        arr = json_object_get(c, "references");
        set_reset(&x->seen, json_array_size(arr));
        json_array_foreach(arr, i, v)
        {
                json_t *url = json_object_get(v, "url");
                if (!json_is_string(url))
                        goto rows_bad;
                if (!set_add(&x->seen, json_string_value(url)))
                        continue;
                row = json_object();
                json_object_set(row, "url", url);
                json_object_set_new(
                    row, "source",
                    json_incref(or_null(json_object_get(v, "source"))));
                json_object_set_new(
                    row, "tags",
                    json_incref(or_null(json_object_get(v, "tags"))));
                json_object_set(row, "cve_id", id);
                json_array_append_new(rows, row);
        }
        json_object_set_new(env, "rows", rows);
        if (emit(x, env, ver, lin, 0) < 0)
                goto out;
        json_decref(env);

        /* weaknesses[*].description[*], one per CWE */
        env = envelope("vulnerability_weakness", "replace", id);
        rows = json_array();
        arr = json_object_get(c, "weaknesses");
        set_reset(&x->seen, 64);
        json_array_foreach(arr, i, m)
        {
                json_array_foreach(json_object_get(m, "description"), j, v)
                {
                        json_t *cwe =
                            trim_upper(json_object_get(v, "value"), 0);
                        if (!cwe)
                                goto rows_bad;
                        if (!set_add(&x->seen, json_string_value(cwe))) {
                                json_decref(cwe);
                                continue;
                        }
                        row = json_object();
                        json_object_set_new(row, "cwe_id", cwe);
                        json_object_set(row, "cve_id", id);
                        json_array_append_new(rows, row);
                }
        }
        json_object_set_new(env, "rows", rows);
        if (emit(x, env, ver, lin, 0) < 0)
                goto out;
        json_decref(env);

        /* configurations[*].nodes[*].cpeMatch[*], one per match id */
        env = envelope("vulnerability_cpe_match", "replace", id);
        rows = json_array();
        k = 0;
        json_array_foreach(json_object_get(c, "configurations"), i, m)
            json_array_foreach(json_object_get(m, "nodes"), j, arr) k +=
            json_array_size(json_object_get(arr, "cpeMatch"));
        set_reset(&x->seen, k);
        json_array_foreach(json_object_get(c, "configurations"), i, m)
        {
                json_array_foreach(json_object_get(m, "nodes"), j, arr)
                {
                        size_t e;
                        json_array_foreach(json_object_get(arr, "cpeMatch"), e,
                                           v)
                        {
                                json_t *mid = trim_upper(
                                    json_object_get(v, "matchCriteriaId"), 1);
                                json_t *crit = json_object_get(v, "criteria");
                                json_t *vul = json_object_get(v, "vulnerable");
                                if (!mid || !json_is_string(crit) ||
                                    (vul && !json_is_boolean(vul) &&
                                     !json_is_null(vul))) {
                                        json_decref(mid);
                                        goto rows_bad;
                                }
                                if (!set_add(&x->seen,
                                             json_string_value(mid))) {
                                        json_decref(mid);
                                        continue;
                                }
                                row = json_object();
                                json_object_set_new(row, "match_criteria_id",
                                                    mid);
                                json_object_set(row, "criteria", crit);
                                json_object_set_new(row, "vulnerable",
                                                    json_incref(or_null(vul)));
                                json_object_set_new(
                                    row, "version_start_including",
                                    json_incref(or_null(json_object_get(
                                        v, "versionStartIncluding"))));
                                json_object_set_new(
                                    row, "version_start_excluding",
                                    json_incref(or_null(json_object_get(
                                        v, "versionStartExcluding"))));
                                json_object_set_new(
                                    row, "version_end_including",
                                    json_incref(or_null(json_object_get(
                                        v, "versionEndIncluding"))));
                                json_object_set_new(
                                    row, "version_end_excluding",
                                    json_incref(or_null(json_object_get(
                                        v, "versionEndExcluding"))));
                                json_object_set(row, "cve_id", id);
                                json_array_append_new(rows, row);
                        }
                }
        }
        json_object_set_new(env, "rows", rows);
        if (emit(x, env, ver, lin, 0) < 0)
                goto out;
        rc = 0;
        goto out;
rows_bad:
        json_decref(rows);
        goto out;
row_bad:
        json_decref(row);
out:
        json_decref(env);
        json_decref(lin);
        json_decref(id);
        json_decref(pub);
        json_decref(ver);
        return rc;
}

/* One pass over every page. 0, or -1 with a message. */
static int pass(struct ctx *x, struct blob *pages, int npages,
                char *const *names)
{
        struct sl_arena arena = {0};
        int rc = -1;

        memset(&x->c, 0, sizeof(x->c));
        for (int p = 0; p < npages; p++) {
                const char *text = pages[p].data;
                size_t len = pages[p].len, open, close;
                struct sl_json_span *el = NULL;
                struct sl_json_error err;
                long n;
                double t0 = now_s();

                if (sl_json_validate_locate(text, len, 0, "$.vulnerabilities",
                                            &n, &open, &close, &el, &err) < 0 ||
                    n < 0) {
                        fprintf(stderr, "bench_transform_bound: %s: %s\n",
                                names[p],
                                n < 0 ? "no $.vulnerabilities" : err.text);
                        free(el);
                        goto out;
                }
                x->c.validate_s += now_s() - t0;
                for (long i = 0; i < n; i++) {
                        struct sl_json_span cve;
                        json_t *c;
                        int r;

                        if (sl_json_member(text + el[i].off, el[i].len, "cve",
                                           &cve) != 1) {
                                fprintf(stderr,
                                        "bench_transform_bound: %s: record "
                                        "%ld has no cve\n",
                                        names[p], i);
                                free(el);
                                goto out;
                        }
                        cve.off += el[i].off;
                        sl_arena_enter(&arena);
                        c = sl_json_decode(text, len, cve);
                        r = c ? map_record(x, c, i) : -1;
                        json_decref(c);
                        sl_arena_leave();
                        sl_arena_free(&arena);
                        if (r < 0) {
                                fprintf(stderr,
                                        "bench_transform_bound: %s: record "
                                        "%ld not mapped\n",
                                        names[p], i);
                                free(el);
                                goto out;
                        }
                        x->c.records++;
                }
                free(el);
        }
        rc = 0;
out:
        return rc;
}

int main(int argc, char **argv)
{
        struct blob *pages = NULL;
        struct ctx x;
        const char *dump = NULL;
        char **names;
        size_t page_bytes = 0;
        int npages, rc = 1;
        double tot_s[PASSES], val_s[PASSES];

        memset(&x, 0, sizeof(x));
        sl_arena_install();
        sl_buf_init(&x.out, 0);
        if (argc > 2 && strcmp(argv[1], "-o") == 0) {
                dump = argv[2];
                argv += 2;
                argc -= 2;
        }
        if (argc < 2) {
                fprintf(stderr, "usage: bench_transform_bound [-o OUT.jsonl] "
                                "PAGE.json...\n");
                return 2;
        }
        npages = argc - 1;
        names = argv + 1;
        pages = sl_calloc((size_t)npages, sizeof(*pages));
        for (int i = 0; i < npages; i++) {
                if (read_all(names[i], &pages[i]) < 0)
                        goto out;
                page_bytes += pages[i].len;
        }
        if (dump) {
                x.dump = fopen(dump, "w");
                if (!x.dump) {
                        fprintf(stderr, "bench_transform_bound: %s: %s\n", dump,
                                strerror(errno));
                        goto out;
                }
                if (pass(&x, pages, npages, names) < 0)
                        goto out;
                fclose(x.dump);
                x.dump = NULL;
        }
        for (int p = 0; p < PASSES; p++) {
                double t0 = now_s();

                if (pass(&x, pages, npages, names) < 0)
                        goto out;
                tot_s[p] = now_s() - t0;
                val_s[p] = x.c.validate_s;
        }
        qsort(tot_s, PASSES, sizeof(double), cmp_double);
        qsort(val_s, PASSES, sizeof(double), cmp_double);
        printf("pages=%d page_bytes=%zu records=%ld envelopes=%ld "
               "out_bytes=%zu validate_s=%.4f total_s=%.4f\n",
               npages, page_bytes, x.c.records, x.c.envelopes, x.c.out_bytes,
               val_s[PASSES / 2], tot_s[PASSES / 2]);
        rc = 0;
out:
        if (x.dump)
                fclose(x.dump);
        if (pages) {
                for (int i = 0; i < npages; i++)
                        free(pages[i].data);
                free(pages);
        }
        free(x.seen.k);
        sl_buf_free(&x.out);
        return rc;
}
