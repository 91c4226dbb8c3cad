/* test_jsondump: sl_json_dump must write Jansson 2.14's json_dumps() bytes
 * for every tree, except that each real is in its shortest round-trip
 * form. The expected text comes from Jansson itself: json_dumps() of the
 * tree with every real replaced by a placeholder string, then each
 * placeholder replaced by Jansson's own text of that real at
 * JSON_REAL_PRECISION(15), (16) or (17), the first that reads back. Run on
 * every record of every file in data/, and on hand-picked edges. Ends
 * with a timing line against json_dumps (informative, not asserted). */
#include "sl_jsondump.h"
#include "sl_util.h"
#include "tap.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *root(void)
{
        const char *r = getenv("SLUICE_ROOT");
        return r ? r : ".";
}

/* New; free with free(). NULL when sl_json_dump fails. */
static char *ours(const json_t *v, size_t flags)
{
        return sl_json_dumps(v, flags, NULL);
}

/* Prints a text with its control bytes escaped, for a failing check. */
static void show(const char *label, const char *s)
{
        printf("#   %s: ", label);
        if (!s) {
                printf("(null)\n");
                return;
        }
        for (size_t i = 0; s[i] && i < 400; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c >= 0x20 && c != 0x7f)
                        putchar(c);
                else
                        printf("\\x%02x", c);
        }
        printf("\n");
}

/* Jansson's text of one real at the first precision of 15..17 that reads
 * back: the oracle for sl_json_dump's reals (new; free with free()). */
static char *jansson_shortest(double d)
{
        json_t *r = json_real(d);
        char *t = NULL;

        for (int p = 15; p <= 17; p++) {
                free(t);
                t = json_dumps(r, JSON_ENCODE_ANY | JSON_REAL_PRECISION(p));
                if (t && strtod(t, NULL) == d)
                        break;
        }
        json_decref(r);
        return t;
}

/* Reals found in a tree, in the order they were replaced. */
struct reals {
        double *v;
        size_t n, cap;
};

static json_t *placeholder(struct reals *rs, double d)
{
        char ph[32];

        if (rs->n == rs->cap) {
                rs->cap = rs->cap ? rs->cap * 2 : 64;
                rs->v = sl_realloc(rs->v, rs->cap * sizeof(*rs->v));
        }
        rs->v[rs->n] = d;
        snprintf(ph, sizeof(ph), "\x01R%zu\x01", rs->n++);
        return json_string(ph);
}

/* Replaces every real of v (in place) by a placeholder string, or removes
 * it when rs is NULL. */
static void strip_reals(json_t *v, struct reals *rs)
{
        if (json_is_array(v)) {
                for (size_t i = 0; i < json_array_size(v);) {
                        json_t *e = json_array_get(v, i);
                        if (!json_is_real(e)) {
                                strip_reals(e, rs);
                                i++;
                        } else if (rs) {
                                json_array_set_new(
                                    v, i++,
                                    placeholder(rs, json_real_value(e)));
                        } else {
                                json_array_remove(v, i);
                        }
                }
        } else if (json_is_object(v)) {
                void *it = json_object_iter(v);
                while (it) {
                        json_t *e = json_object_iter_value(it);
                        void *next = json_object_iter_next(v, it);
                        if (!json_is_real(e))
                                strip_reals(e, rs);
                        else if (rs)
                                json_object_iter_set_new(
                                    v, it, placeholder(rs, json_real_value(e)));
                        else
                                json_object_deln(v, json_object_iter_key(it),
                                                 json_object_iter_key_len(it));
                        it = next;
                }
        }
}

/* Jansson's text of v with each real in its shortest form (new; free
 * with free()), and the number of reals in *nreals. */
static char *expected_text(const json_t *v, size_t flags, size_t *nreals)
{
        struct reals rs = {0};
        json_t *copy = json_deep_copy(v);
        char *text;
        struct sl_buf b;

        strip_reals(copy, &rs);
        text = json_dumps(copy, JSON_COMPACT | flags);
        json_decref(copy);
        *nreals = rs.n;
        if (!text || rs.n == 0) {
                free(rs.v);
                return text;
        }
        sl_buf_init(&b, 0);
        for (const char *p = text;;) {
                static const char mark[] = "\"\\u0001R";
                const char *at = strstr(p, mark);
                char *end;
                unsigned long k;

                if (!at) {
                        sl_buf_puts(&b, p);
                        break;
                }
                sl_buf_append(&b, p, (size_t)(at - p));
                k = strtoul(at + sizeof(mark) - 1, &end, 10);
                if (k >= rs.n || strncmp(end, "\\u0001\"", 7) != 0) {
                        sl_buf_append(&b, at, 1); /* not ours: copy on */
                        p = at + 1;
                        continue;
                }
                {
                        char *r = jansson_shortest(rs.v[k]);
                        sl_buf_puts(&b, r);
                        free(r);
                }
                p = end + 7;
        }
        free(text);
        free(rs.v);
        return sl_buf_steal(&b, NULL);
}

/* One tree: our text equals the expected one, decodes to an equal tree,
 * and without its reals equals json_dumps() exactly. Returns 1 when all
 * hold; prints the first few failures. */
static int failures_shown;
static int same_as_jansson(const json_t *v, size_t flags, size_t *nreals)
{
        char *want = expected_text(v, flags, nreals);
        char *got = ours(v, flags);
        json_t *back = got ? json_loads(got, JSON_DECODE_ANY, NULL) : NULL;
        json_t *plain = json_deep_copy(v);
        char *pw, *pg;
        int ok;

        strip_reals(plain, NULL);
        pw = json_dumps(plain, JSON_COMPACT | flags);
        pg = ours(plain, flags);
        ok = want && got && strcmp(want, got) == 0 && json_equal(back, v) &&
             pw && pg && strcmp(pw, pg) == 0;
        if (!ok && failures_shown++ < 3) {
                show("want", want);
                show("got ", got);
        }
        json_decref(back);
        json_decref(plain);
        free(pw);
        free(pg);
        free(want);
        free(got);
        return ok;
}

/* Each record of a data file (the whole document too), as loaded: equal
 * to the expectation with and without JSON_SORT_KEYS. Returns the
 * decoded document (new) for the timing. */
static json_t *check_file(const char *rel, size_t *total_reals)
{
        char path[2048], err[256];
        size_t len = 0, nrec = 0, good = 0, reals = 0, n;
        char *text;
        json_t *doc, *recs, *rec;
        json_error_t je;
        size_t i;

        snprintf(path, sizeof(path), "%s/%s", root(), rel);
        text = sl_file_read(path, &len, err, sizeof(err));
        TAP_OK(text != NULL, "%s reads", rel);
        if (!text)
                return NULL;
        doc = json_loadb(text, len, 0, &je);
        free(text);
        TAP_OK(doc != NULL, "%s decodes", rel);
        if (!doc)
                return NULL;
        recs =
            json_is_array(doc) ? doc : json_object_get(doc, "vulnerabilities");
        json_array_foreach(recs, i, rec)
        {
                int ok = same_as_jansson(rec, 0, &n);
                ok &= same_as_jansson(rec, JSON_SORT_KEYS, &n);
                nrec++;
                good += (size_t)ok;
                reals += n;
        }
        good += (size_t)(same_as_jansson(doc, 0, &n) &&
                         same_as_jansson(doc, JSON_SORT_KEYS, &n));
        nrec++;
        *total_reals += reals;
        TAP_OK(good == nrec,
               "%s: %zu of %zu records (and the whole document) as "
               "Jansson writes them, %zu reals in shortest form, "
               "sorted or not",
               rel, good - 1, nrec - 1, reals);
        return doc;
}

static void test_data(void)
{
        static const char *const files[] = {
            "data/nvd/nvd_cves_combined_dedup.json",
            "data/nvd/nvd-go_cves-1999.json",
            "data/nvd/nvd-go_cves-2023.json",
            "data/nvd/vunnel_full-page.json",
            "data/nvd/osvdev_conversion_test.json",
            "data/nvd/cve_api_json_2.0.schema.json",
            "data/nvd/cvss-v3.1.schema.json",
            "data/kev/known_exploited_vulnerabilities.json",
            "data/kev/known_exploited_vulnerabilities_schema.json",
            "data/tenable/test_exports_vulns_chunk_1.json",
            "data/tenable/test_exports_assets_chunk_1.json",
            "data/tenable/pytenable_cassette_exchanges.json",
            "data/urlhaus/urlhaus_recent_records.json",
        };
        size_t reals = 0;

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
                json_decref(check_file(files[i], &reals));
        /* the check above must have met reals to mean anything */
        TAP_OK(reals > 3000, "the records held %zu reals", reals);
}

/* The defect itself: an NVD record's "baseScore": 7.3. */
static void test_nvd_7_3(void)
{
        char path[2048], err[256];
        size_t len = 0, i;
        char *text = NULL, *got = NULL, *jns = NULL;
        json_t *doc = NULL, *rec, *hit = NULL;

        snprintf(path, sizeof(path), "%s/data/nvd/nvd_cves_combined_dedup.json",
                 root());
        text = sl_file_read(path, &len, err, sizeof(err));
        doc = text ? json_loadb(text, len, 0, NULL) : NULL;
        json_array_foreach(json_object_get(doc, "vulnerabilities"), i, rec)
        {
                const char *id = json_string_value(
                    json_object_get(json_object_get(rec, "cve"), "id"));
                if (id && strcmp(id, "CVE-2022-28766") == 0)
                        hit = rec;
        }
        TAP_OK(hit != NULL, "CVE-2022-28766 is in the NVD sample");
        if (hit) {
                got = ours(hit, 0);
                jns = json_dumps(hit, JSON_COMPACT);
                TAP_OK(got && strstr(got, "\"baseScore\":7.3,"),
                       "CVE-2022-28766: \"baseScore\":7.3");
                TAP_OK(jns && strstr(jns, "\"baseScore\":7.2999999999999998,"),
                       "... where json_dumps writes 7.2999999999999998");
        }
        free(got);
        free(jns);
        json_decref(doc);
        free(text);
}

static void test_reals(void)
{
        static const struct {
                double d;
                const char *want;
        } cases[] = {
            {7.3, "7.3"},
            {0.1 + 0.2, "0.30000000000000004"},
            {0.1 + 0.7, "0.7999999999999999"}, /* needs 16 digits */
            {0.1, "0.1"},
            {1.0, "1.0"},
            {-0.0, "-0.0"},
            {0.0, "0.0"},
            {-1.5, "-1.5"},
            {100.0, "100.0"},
            {1e300, "1e300"},
            {1e20, "1e20"},
            {1e15, "1e15"},
            {1e16, "1e16"},
            {1e-5, "1e-5"},
            {1.5e-7, "1.5e-7"},
            {-2.5e-100, "-2.5e-100"},
            {5e-324, "4.94065645841247e-324"},
            {123456789012345678.0, "1.2345678901234568e17"},
            {9007199254740992.0, "9007199254740992.0"},
            {1.7976931348623157e308, "1.7976931348623157e308"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                json_t *r = json_real(cases[i].d);
                char *got = ours(r, JSON_ENCODE_ANY);
                char *oracle = jansson_shortest(cases[i].d);
                json_t *back =
                    got ? json_loads(got, JSON_DECODE_ANY, NULL) : NULL;
                double bd = json_real_value(back);

                TAP_STR_EQ(got, cases[i].want, "real %.17g -> %s", cases[i].d,
                           cases[i].want);
                TAP_OK(got && oracle && strcmp(got, oracle) == 0 &&
                           json_is_real(back) &&
                           memcmp(&bd, &cases[i].d, sizeof(bd)) == 0,
                       "... Jansson's text at that precision, and reads "
                       "back to the same bits");
                json_decref(back);
                free(oracle);
                free(got);
                json_decref(r);
        }
}

static void test_integers(void)
{
        static const json_int_t cases[] = {
            0,   1,       -1,        9,         10,        -10,
            255, 1000000, LLONG_MAX, LLONG_MIN, -LLONG_MAX};
        size_t n = sizeof(cases) / sizeof(cases[0]), same = 0;

        for (size_t i = 0; i < n; i++) {
                json_t *v = json_integer(cases[i]);
                char *got = ours(v, JSON_ENCODE_ANY);
                char *want = json_dumps(v, JSON_ENCODE_ANY);
                same += got && want && strcmp(got, want) == 0;
                free(got);
                free(want);
                json_decref(v);
        }
        TAP_INT_EQ(same, n, "%zu integers (0, +-1, limits) as Jansson", n);
}

/* Our text and Jansson's, sorted and not, for a tree without reals. */
static int byte_equal(const json_t *v, size_t flags)
{
        int ok = 1;

        for (int s = 0; s < 2; s++) {
                size_t f = flags | (s ? JSON_SORT_KEYS : 0);
                char *got = ours(v, f);
                char *want = json_dumps(v, JSON_COMPACT | f);
                if (!got || !want || strcmp(got, want) != 0) {
                        show("want", want);
                        show("got ", got);
                        ok = 0;
                }
                free(got);
                free(want);
        }
        return ok;
}

static void test_strings(void)
{
        char all[0x80 + 1];
        json_t *v, *o;
        char *got;

        /* every ASCII byte but NUL, in one string */
        for (int c = 1; c < 0x80; c++)
                all[c - 1] = (char)c;
        all[0x7f] = '\0';
        v = json_string(all);
        TAP_OK(byte_equal(v, JSON_ENCODE_ANY),
               "bytes 0x01-0x7f: every control byte, '\"', '\\\\', '/', "
               "DEL as Jansson");
        got = ours(v, JSON_ENCODE_ANY);
        TAP_OK(got && strstr(got, "\\u0001\\u0002") &&
                   strstr(got, "\\b\\t\\n\\u000B\\f\\r\\u000E") &&
                   strstr(got, "\\u001F !\\\"#") && strstr(got, "./0") &&
                   strstr(got, "[\\\\]") && strstr(got, "~\x7f\""),
               "short escapes, \\u00XX in upper case, '/' and DEL raw");
        free(got);
        json_decref(v);

        v = json_stringn("a\0b\0", 4);
        got = ours(v, JSON_ENCODE_ANY);
        TAP_STR_EQ(got, "\"a\\u0000b\\u0000\"", "embedded NUL -> \\u0000");
        free(got);
        json_decref(v);

        v = json_string("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd "
                        "\xf4\x8f\xbf\xbf");
        TAP_OK(byte_equal(v, JSON_ENCODE_ANY),
               "UTF-8 of 2, 3 and 4 bytes passes raw, as Jansson");
        json_decref(v);

        v = json_string("");
        got = ours(v, JSON_ENCODE_ANY);
        TAP_STR_EQ(got, "\"\"", "empty string");
        free(got);
        json_decref(v);

        /* keys that need escapes, one with a NUL, in an order that sorting
         * changes; prefixes sort first */
        o = json_object();
        json_object_set_new(o, "z\"q\\", json_integer(1));
        json_object_set_new(o, "\t\x01/", json_integer(2));
        json_object_setn_new(o, "a\0b", 3, json_integer(3));
        json_object_set_new(o, "a", json_integer(4));
        json_object_set_new(o, "\xc3\xa9", json_integer(5));
        json_object_set_new(o, "ab", json_integer(6));
        json_object_set_new(o, "", json_integer(7));
        TAP_OK(byte_equal(o, 0), "keys with escapes, a NUL, UTF-8, the empty "
                                 "key: as Jansson, sorted and not");
        got = ours(o, JSON_SORT_KEYS);
        TAP_STR_EQ(got,
                   "{\"\":7,\"\\t\\u0001/\":2,\"a\":4,\"a\\u0000b\":3,"
                   "\"ab\":6,\"z\\\"q\\\\\":1,\"\xc3\xa9\":5}",
                   "sorted by bytes, a prefix first, UTF-8 last");
        free(got);
        json_decref(o);
}

static void test_invalid_utf8(void)
{
        static const char *const bad[] = {
            "\x80", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
            "\xff"};
        size_t n = sizeof(bad) / sizeof(bad[0]), same = 0;
        struct sl_buf b;
        json_t *o;
        char *j;

        sl_buf_init(&b, 0);
        sl_buf_puts(&b, "kept");
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_stringn_nocheck(bad[i], strlen(bad[i]));
                char *want = json_dumps(v, JSON_ENCODE_ANY);
                same += !want && sl_json_dump(&b, v, JSON_ENCODE_ANY) < 0;
                free(want);
                json_decref(v);
        }
        TAP_INT_EQ(same, n, "%zu strings of invalid UTF-8 fail, as in Jansson",
                   n);
        TAP_STR_EQ(b.data, "kept", "... and leave the buffer as it was");

        /* Jansson ignores a key's failure and writes broken text; this
         * refuses the tree instead */
        o = json_object();
        json_object_set_new_nocheck(o, "\xff", json_true());
        j = json_dumps(o, JSON_COMPACT);
        TAP_OK(sl_json_dump(&b, o, 0) < 0 && b.len == 4,
               "a key of invalid UTF-8 fails (Jansson writes %s)",
               j ? j : "nothing");
        free(j);
        json_decref(o);
        sl_buf_free(&b);
}

static void test_shapes(void)
{
        json_t *v;
        char *got;
        struct sl_buf b;

        v = json_pack("{s:{}, s:[], s:[{}, [[]], n, b, b], s:{s:{}}}", "o", "a",
                      "mix", 1, 0, "n", "m");
        TAP_OK(byte_equal(v, 0), "empty objects and arrays, literals");
        json_decref(v);
        v = json_object();
        TAP_OK(byte_equal(v, 0), "an empty object alone, sorted and not");
        json_decref(v);

        v = json_string("s");
        got = ours(v, 0);
        TAP_OK(got == NULL, "a bare string without JSON_ENCODE_ANY fails");
        free(got);
        json_decref(v);
        v = json_null();
        got = ours(v, JSON_ENCODE_ANY);
        TAP_STR_EQ(got, "null", "null with JSON_ENCODE_ANY");
        free(got);
        TAP_OK(ours(NULL, JSON_ENCODE_ANY) == NULL, "NULL fails");

        v = json_pack("{s:i,s:i}", "b", 1, "a", 2);
        got = ours(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        TAP_STR_EQ(got, "{\"b\":1,\"a\":2}",
                   "JSON_COMPACT, JSON_PRESERVE_ORDER accepted: insertion "
                   "order");
        free(got);
        sl_buf_init(&b, 0);
        {
                static const size_t refused[] = {
                    JSON_INDENT(2), JSON_ENSURE_ASCII, JSON_ESCAPE_SLASH,
                    JSON_REAL_PRECISION(5), JSON_EMBED};
                size_t n = sizeof(refused) / sizeof(refused[0]), no = 0;
                for (size_t i = 0; i < n; i++)
                        no += sl_json_dump(&b, v, refused[i]) < 0;
                TAP_INT_EQ(no, n,
                           "indent, ensure-ascii, escape-slash, "
                           "precision, embed are refused");
                TAP_INT_EQ(b.len, 0, "... writing nothing");
        }
        json_decref(v);

        /* a capped buffer: fails whole, leaves what was there */
        sl_buf_free(&b);
        sl_buf_init(&b, 8);
        sl_buf_puts(&b, "ab");
        v = json_pack("[s]", "0123456789");
        TAP_OK(sl_json_dump(&b, v, 0) < 0 && b.len == 2 &&
                   strcmp(b.data, "ab") == 0,
               "past the buffer's cap: -1, the buffer as it was");
        json_decref(v);
        v = json_pack("[i]", 1);
        TAP_OK(sl_json_dump(&b, v, 0) == 0 && strcmp(b.data, "ab[1]") == 0,
               "appends after what the buffer holds");
        json_decref(v);
        sl_buf_free(&b);
}

/* depth arrays (or objects under key "k") nested in one another */
static json_t *nest(int depth, int objects)
{
        json_t *v = objects ? json_object() : json_array();

        for (int i = 1; i < depth; i++) {
                json_t *outer = objects ? json_object() : json_array();
                if (objects)
                        json_object_set_new(outer, "k", v);
                else
                        json_array_append_new(outer, v);
                v = outer;
        }
        return v;
}

static void test_depth(void)
{
        const int max = SL_JSON_DUMP_MAX_DEPTH;
        json_t *a = nest(max, 0), *o = nest(max, 1);
        json_t *a1 = json_array(), *o1 = json_object();
        json_t *x, *y;
        char *got, *j;

        TAP_OK(byte_equal(a, 0) && byte_equal(o, 0),
               "arrays and objects nested %d deep: as Jansson", max);
        json_array_append(a1, a);
        json_object_set(o1, "k", o);
        got = ours(a1, 0);
        j = json_dumps(a1, JSON_COMPACT);
        TAP_OK(got == NULL && j != NULL,
               "%d deep fails (Jansson has no limit and writes it)", max + 1);
        free(got);
        free(j);
        got = ours(o1, JSON_SORT_KEYS);
        TAP_OK(got == NULL, "%d deep objects fail, sorted too", max + 1);
        free(got);

        /* a cycle: Jansson refuses it, and so does the depth limit */
        x = json_array();
        y = json_array();
        json_array_append(x, y);
        json_array_append(y, x);
        got = ours(x, 0);
        j = json_dumps(x, JSON_COMPACT);
        TAP_OK(got == NULL && j == NULL, "a cycle fails, as in Jansson");
        free(got);
        free(j);
        json_array_clear(y);
        json_decref(x);
        json_decref(y);

        /* the same subtree twice is no cycle */
        x = json_array();
        y = json_pack("{s:[i]}", "a", 1);
        json_array_append(x, y);
        json_array_append(x, y);
        TAP_OK(byte_equal(x, 0), "a shared subtree is written twice");
        json_decref(x);
        json_decref(y);

        json_decref(a1);
        json_decref(o1);
        json_decref(a);
        json_decref(o);
}

static double secs(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Each NVD record dumped as the transformer dumps envelopes: json_dumps
 * against sl_json_dump into a reused buffer and sl_json_dumps. */
static void timing(void)
{
        char path[2048], err[256];
        size_t len = 0, i, bytes = 0;
        char *text;
        json_t *doc, *recs, *rec;
        struct sl_buf b;
        double t0, tj = 1e9, tb = 1e9, ts = 1e9;
        const int rounds = 5, passes = 10;

        snprintf(path, sizeof(path), "%s/data/nvd/nvd_cves_combined_dedup.json",
                 root());
        text = sl_file_read(path, &len, err, sizeof(err));
        doc = text ? json_loadb(text, len, 0, NULL) : NULL;
        free(text);
        recs = json_object_get(doc, "vulnerabilities");
        if (!recs)
                return;
        sl_buf_init(&b, 0);
        /* best of a few rounds: the machine is shared */
        for (int r = 0; r < rounds; r++) {
                t0 = secs();
                for (int p = 0; p < passes; p++)
                        json_array_foreach(recs, i, rec)
                        {
                                char *s = json_dumps(rec, JSON_COMPACT);
                                bytes += strlen(s);
                                free(s);
                        }
                tj = fmin(tj, secs() - t0);
                t0 = secs();
                for (int p = 0; p < passes; p++)
                        json_array_foreach(recs, i, rec)
                        {
                                sl_buf_reset(&b);
                                sl_json_dump(&b, rec, 0);
                                bytes += b.len;
                        }
                tb = fmin(tb, secs() - t0);
                t0 = secs();
                for (int p = 0; p < passes; p++)
                        json_array_foreach(recs, i, rec)
                        {
                                size_t n;
                                char *s = sl_json_dumps(rec, 0, &n);
                                bytes += n;
                                free(s);
                        }
                ts = fmin(ts, secs() - t0);
        }
        printf("# timing: %zu NVD records x %d, best of %d: json_dumps "
               "%.1f ms, sl_json_dump (reused buffer) %.1f ms (%.2f x), "
               "sl_json_dumps %.1f ms (%.2f x); %zu bytes in all\n",
               json_array_size(recs), passes, rounds, tj * 1e3, tb * 1e3,
               tb / tj, ts * 1e3, ts / tj, bytes);
        sl_buf_free(&b);
        json_decref(doc);
}

int main(void)
{
        test_reals();
        test_integers();
        test_strings();
        test_invalid_utf8();
        test_shapes();
        test_depth();
        test_nvd_7_3();
        test_data();
        timing();
        return TAP_DONE();
}
