/* test_jsonscan: sl_json_validate must give Jansson's verdict on every
 * text: hand-picked edges (numbers, escapes, UTF-8, depth, the top level)
 * and a few thousand deterministic mutations of real records from data/.
 * A text the fetcher accepts and the transformer cannot decode would be a
 * dead letter; one it refuses and Jansson takes, a lost page. */
#include "sl_jsonscan.h"
#include "sl_util.h"
#include "tap.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int jansson_ok(const char *s, size_t n)
{
        json_error_t e;
        json_t *v = json_loadb(s, n, 0, &e);

        json_decref(v);
        return v != NULL;
}

static int disagreements;

/* Checks one text; prints it (escaped) when the verdicts differ. The one
 * difference allowed: Jansson 2.14 takes a raw NUL byte right after a
 * number ("[1\0]" decodes as [1]); a raw NUL is never JSON, and refusing
 * more than the decoder only retries a broken page, so the validator
 * refuses it. */
static int agree(const char *s, size_t n)
{
        int want = jansson_ok(s, n);
        int got = sl_json_validate(s, n, 0, NULL) == 0;

        if (want == got || (want && !got && memchr(s, '\0', n)))
                return 1;
        disagreements++;
        if (disagreements <= 5) {
                printf("# jansson %s, sl_json_validate %s: \"",
                       want ? "accepts" : "refuses",
                       got ? "accepts" : "refuses");
                for (size_t i = 0; i < n && i < 200; i++) {
                        unsigned char c = (unsigned char)s[i];
                        if (c >= 0x20 && c < 0x7f && c != '\\')
                                putchar(c);
                        else
                                printf("\\x%02x", c);
                }
                printf("\"\n");
        }
        return 0;
}

/* sl_json_validate_locate gives what sl_json_validate and then
 * sl_json_locate_array give, in one pass. */
static long located_mismatches;
static size_t located_tried;

static int same_locate(const char *s, size_t n, const char *path)
{
        size_t o1 = 0, c1 = 0, o2 = 0, c2 = 0;
        struct sl_json_span *e1 = NULL, *e2 = NULL;
        long n1 = -1, n2;
        int v1 = sl_json_validate(s, n, 0, NULL);
        int v2 =
            sl_json_validate_locate(s, n, 0, path, &n2, &o2, &c2, &e2, NULL);
        int same;

        if (v1 == 0)
                n1 = sl_json_locate_array(s, n, path, &o1, &c1, &e1);
        same = v1 == v2 && n1 == n2 &&
               (n1 < 0 ||
                (o1 == o2 && c1 == c2 &&
                 (n1 == 0 || memcmp(e1, e2, (size_t)n1 * sizeof(*e1)) == 0)));
        if (!same && ++located_mismatches <= 5)
                printf("# %s: validate %d/%d, elements %ld/%ld, [%zu %zu] / "
                       "[%zu %zu] in \"%.120s\"\n",
                       path, v1, v2, n1, n2, o1, c1, o2, c2, s);
        free(e1);
        free(e2);
        return same;
}

static void test_validate_locate(void)
{
        static const struct {
                const char *text, *path;
                long want;
        } cases[] = {
            {"{\"a\":[1,{\"b\":[2]},\"x\"]}", "$.a", 3},
            {"{\"a\":{\"b\":[1, 2 ,3 ]}}", "$.a.b", 3},
            {"{\"a\":{\"b\":[]}}", "$.a.b", 0},
            {"[ 1, [2, 3], {\"a\": []} ]", "$", 3},
            {"[]", "$", 0},
            {"{\"a\":[1]}", "$", -1},
            {"{\"a\":[1],\"a\":[2,3]}", "$.a", 2},
            {"{\"a\":[1,2],\"a\":3}", "$.a", -1},
            {"{\"a\":{\"b\":[1]},\"a\":{\"c\":[1]}}", "$.a.b", -1},
            {"{\"a\":{\"b\":[1]},\"z\":{\"b\":[1,2]}}", "$.a.b", 1},
            {"{\"x\":{\"a\":[9]},\"a\":[1,2]}", "$.a", 2},
            {"{\"a\":[{\"a\":[1,2,3]}]}", "$.a", 1},
            {"{\"a\":[[1],[2]]}", "$.a.b", -1},
            {"{\"a\":{\"b\":{\"c\":[1,2]}}}", "$['a'].b['c']", 2},
            {"{\"a\":{\"b\":[1]}}", "a.b", 1},
            {"{\"ab\":[1]}", "$.a", -1},
            {"{\"a\\u0062\":[1]}", "$.ab", -1},
            {"{\"a\":[1]}", "$.a[0]", -1},
            {"{\"a\":[1]}", "$.*", -1},
            {"{\"a\":[1,]}", "$.a", -1},
            {"{\"a\":[\"]\\\"\", \"[\"]}", "$.a", 2},
            {" \t{ \"v\" : [ {\"k\":1} , {\"k\":2} ] } ", "$.v", 2},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *t = cases[i].text;
                long n = -2;
                size_t o, c;
                struct sl_json_span *e = NULL;
                sl_json_validate_locate(t, strlen(t), 0, cases[i].path, &n, &o,
                                        &c, &e, NULL);
                free(e);
                TAP_OK(n == cases[i].want &&
                           same_locate(t, strlen(t), cases[i].path),
                       "validate_locate %s in %s: %ld elements (want %ld), "
                       "as validate + locate",
                       cases[i].path, t, n, cases[i].want);
        }
}

static void test_edges(void)
{
        static const char *const cases[] = {
            /* the top level */
            "{}",
            "[]",
            " [ ] ",
            "\n{\"a\":1}\r\n",
            "",
            "   ",
            "1",
            "\"s\"",
            "null",
            "true",
            "[] []",
            "[],",
            "{} x",
            "\xef\xbb\xbf[]",
            "[",
            "{",
            "]",
            "}",
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{,}",
            "{\"a\"}",
            "{\"a\" 1}",
            "{1:2}",
            "{\"a\":1 \"b\":2}",
            "[1 2]",
            "[\"a\":1]",
            "{\"a\":[}",
            "[{]}",
            /* literals */
            "[true,false,null]",
            "[tru]",
            "[truex]",
            "[True]",
            "[nul]",
            "[null1]",
            "[nullx]",
            "[-]",
            "[+1]",
            "[true ,null]",
            /* numbers */
            "[0]",
            "[-0]",
            "[01]",
            "[-01]",
            "[1.]",
            "[.5]",
            "[1.5]",
            "[1e5]",
            "[1E+5]",
            "[1e-5]",
            "[1e]",
            "[1e+]",
            "[-1.5e-3]",
            "[0.0e0]",
            "[00]",
            "[1.5.5]",
            "[9223372036854775807]",
            "[9223372036854775808]",
            "[-9223372036854775808]",
            "[-9223372036854775809]",
            "[12345678901234567890]",
            "[99999999999999999999999]",
            "[1e308]",
            "[1e309]",
            "[-1e309]",
            "[1.7976931348623157e308]",
            "[1.7976931348623159e308]",
            "[1e-400]",
            "[0.00000000001e310]",
            "[123456789e300]",
            "[1e99999]",
            "[1x]",
            "[0x10]",
            "[Infinity]",
            "[NaN]",
            "[-Infinity]",
            /* strings and escapes */
            "[\"\"]",
            "[\"a\\\"b\"]",
            "[\"\\/\\b\\f\\n\\r\\t\\\\\"]",
            "[\"\\a\"]",
            "[\"\\x41\"]",
            "[\"\\u0041\"]",
            "[\"\\u00e9\"]",
            "[\"\\u0000\"]",
            "{\"\\u0000\":1}",
            "[\"\\u12\"]",
            "[\"\\u12g4\"]",
            "[\"\\uD83D\\uDE00\"]",
            "[\"\\ud83d\\ude00\"]",
            "[\"\\uD83D\"]",
            "[\"\\uD83Dx\"]",
            "[\"\\uD83D\\u0041\"]",
            "[\"\\uDE00\"]",
            "[\"\\uDE00\\uD83D\"]",
            "[\"\\uD83D\\uD83D\"]",
            "[\"abc]",
            "[\"a",
            "[\"\\",
            "[\"\\u",
            "[\"tab\there\"]",
            "[\"nl\nhere\"]",
            "[\"\x7f\"]",
            "[\"\x01\"]",
            /* UTF-8 */
            "[\"\xc3\xa9\"]",
            "[\"\xe2\x82\xac\"]",
            "[\"\xf0\x9f\x98\x80\"]",
            "[\"\xc3\"]",
            "[\"\xc3\x28\"]",
            "[\"\xc0\x80\"]",
            "[\"\xc1\xbf\"]",
            "[\"\xe0\x80\x80\"]",
            "[\"\xe0\x9f\xbf\"]",
            "[\"\xe0\xa0\x80\"]",
            "[\"\xed\x9f\xbf\"]",
            "[\"\xed\xa0\x80\"]",
            "[\"\xed\xbf\xbf\"]",
            "[\"\xee\x80\x80\"]",
            "[\"\xf0\x80\x80\x80\"]",
            "[\"\xf0\x90\x80\x80\"]",
            "[\"\xf4\x8f\xbf\xbf\"]",
            "[\"\xf4\x90\x80\x80\"]",
            "[\"\xf5\x80\x80\x80\"]",
            "[\"\xff\"]",
            "[\"\x80\"]",
            "[\"\xe2\x82\"]",
            "[\"\xf0\x9f\x98\"]",
            "[\xc3\xa9]",
            /* whitespace */
            "[\f1]",
            "[\v1]",
            "[1\t,\r\n2]",
        };
        size_t ok = 0, n = sizeof(cases) / sizeof(cases[0]);

        for (size_t i = 0; i < n; i++)
                ok += (size_t)agree(cases[i], strlen(cases[i]));
        TAP_INT_EQ((long)ok, (long)n, "%zu edge cases: Jansson's verdict", n);
        /* a raw NUL byte, inside a string, after the value, after a
         * number (which Jansson lets through) */
        TAP_OK(agree("[\"a\0b\"]", 7) && agree("[1]\0", 4),
               "raw NUL bytes: Jansson's verdict");
        TAP_OK(sl_json_validate("[1\0]", 4, 0, NULL) < 0,
               "a raw NUL after a number is refused (Jansson takes it)");
}

static char *nested(int depth, char open, char close)
{
        char *s = sl_malloc((size_t)depth * 2 + 1);

        for (int i = 0; i < depth; i++) {
                s[i] = open;
                s[depth * 2 - 1 - i] = close;
        }
        s[depth * 2] = '\0';
        return s;
}

static void test_depth(void)
{
        char *a = nested(2048, '[', ']');
        char *b = nested(2049, '[', ']');
        char *c = nested(5, '[', ']');
        struct sl_json_error e;

        TAP_OK(agree(a, strlen(a)) && agree(b, strlen(b)),
               "depth 2048 and 2049: Jansson's verdict");
        TAP_INT_EQ(sl_json_validate(c, strlen(c), 5, NULL), 0,
                   "depth 5 within a limit of 5");
        TAP_INT_EQ(sl_json_validate(c, strlen(c), 4, &e), SL_JSON_TOO_DEEP,
                   "depth 5 over a limit of 4: SL_JSON_TOO_DEEP");
        TAP_INT_EQ((long)e.position, 4, "... at the fifth '[' (byte 4)");
        free(a);
        free(b);
        free(c);
}

static void test_positions(void)
{
        struct sl_json_error e;
        const char *s = "{\"a\": [1, 2, x]}";

        TAP_INT_EQ(sl_json_validate(s, strlen(s), 0, &e), -1,
                   "invalid token refused");
        TAP_INT_EQ((long)e.position, 13, "error position is the 'x' (13)");
        TAP_OK(strstr(e.text, "invalid") != NULL, "error text: %s", e.text);
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t next_rand(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (uint32_t)(rng >> 11);
}

/* One mutation of s (len n) into out; returns the new length. */
static size_t mutate(const char *s, size_t n, char *out)
{
        static const char pick[] = "\"\\{}[],:0123456789-+.eEtfnu \t\n"
                                   "\x00\x01\x1f\x7f\x80\xbf\xc0\xc3\xe0\xed"
                                   "\xf0\xf4\xf5\xff";
        size_t at = n ? next_rand() % n : 0;
        char c = pick[next_rand() % (sizeof(pick) - 1)];

        switch (next_rand() % 4) {
        case 0: /* replace */
                memcpy(out, s, n);
                if (n)
                        out[at] = c;
                return n;
        case 1: /* insert */
                memcpy(out, s, at);
                out[at] = c;
                memcpy(out + at + 1, s + at, n - at);
                return n + 1;
        case 2: /* delete */
                memcpy(out, s, at);
                if (n)
                        memcpy(out + at, s + at + 1, n - at - 1);
                return n ? n - 1 : 0;
        default: /* truncate */
                memcpy(out, s, at);
                return at;
        }
}

static void test_mutations(const char *rel, const char *records_key)
{
        char path[2048], err[256];
        const char *root = getenv("SLUICE_ROOT");
        size_t len = 0, i, tried = 0, agreed = 0;
        char *text;
        json_t *doc, *recs, *rec;
        json_error_t je;

        snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
        text = sl_file_read(path, &len, err, sizeof(err));
        TAP_OK(text != NULL, "%s reads", rel);
        if (!text)
                return;
        TAP_OK(agree(text, len) && sl_json_validate(text, len, 64, NULL) == 0,
               "%s: the whole file is valid for both", rel);
        {
                char rp[128];
                snprintf(rp, sizeof(rp), "$%s%s", records_key ? "." : "",
                         records_key ? records_key : "");
                TAP_OK(same_locate(text, len, rp),
                       "%s: its records located in the validating pass "
                       "as after it",
                       rel);
        }
        doc = json_loadb(text, len, 0, &je);
        free(text);
        recs = records_key ? json_object_get(doc, records_key) : doc;
        json_array_foreach(recs, i, rec)
        {
                char *s, *buf;
                size_t sn;
                if (i >= 25)
                        break;
                s = json_dumps(rec, i % 2 ? JSON_COMPACT : JSON_INDENT(1));
                sn = strlen(s);
                buf = sl_malloc(sn + 2);
                for (int k = 0; k < 120; k++) {
                        size_t mn = mutate(s, sn, buf);
                        static const char *paths[] = {"$",
                                                      "$.cve.references",
                                                      "$.cve.descriptions",
                                                      "$.plugin.xrefs",
                                                      "$.cwes",
                                                      "$.tags"};
                        tried++;
                        agreed += (size_t)agree(buf, mn);
                        for (size_t j = 0; j < 6; j++) {
                                same_locate(buf, mn, paths[j]);
                                located_tried++;
                        }
                }
                free(buf);
                free(s);
        }
        json_decref(doc);
        TAP_OK(tried > 0 && agreed == tried,
               "%s: %zu mutated records, %zu with Jansson's verdict", rel,
               tried, agreed);
}

/* A number or literal ends at the bracket that closes its container (it
 * used to take the bracket along: a numeric cursor read as "12}"). */
static void test_member_ends(void)
{
        const char *t = "{\"a\":{\"b\":12},\"c\":[true],\"d\":-1.5e3}";
        struct sl_json_span v;

        TAP_OK(sl_json_member(t, strlen(t), "$.a.b", &v) == 1 && v.len == 2 &&
                   memcmp(t + v.off, "12", 2) == 0,
               "a number last in its object is just the number");
        TAP_OK(sl_json_member(t, strlen(t), "$.d", &v) == 1 && v.len == 6,
               "... also last in the text");
}

/* The verdict on every prefix of t: 0 before byte `at`, then 1 with the
 * value `want` (or, with want NULL, `never` from byte `at` on). */
static int prefix_verdicts(const char *t, const char *path, size_t at,
                           const char *want)
{
        size_t n = strlen(t);

        for (size_t len = 0; len <= n; len++) {
                struct sl_json_span v = {0, 0};
                int r = sl_json_prefix_member(t, len, path, &v);
                int expect = len < at ? 0 : want ? 1 : -1;
                if (r != expect) {
                        printf("# %s at %zu of '%s': %d, want %d\n", path, len,
                               t, r, expect);
                        return 0;
                }
                if (r == 1 && (v.len != strlen(want) ||
                               memcmp(t + v.off, want, v.len) != 0)) {
                        printf("# %s at %zu of '%s': '%.*s'\n", path, len, t,
                               (int)v.len, t + v.off);
                        return 0;
                }
        }
        return 1;
}

/* sl_json_prefix_member: the fetcher reads a page's total from its first
 * bytes to request the other pages while the first one still arrives */
static void test_prefix_member(void)
{
        const char *t = "{\"resultsPerPage\":2,\"startIndex\":0,"
                        "\"totalResults\":4312,\"format\":\"NVD_CVE\","
                        "\"vulnerabilities\":[{\"cve\":{\"id\":\"x\"}}]}";
        const char *after =
            "{\"data\":[1,\"]}\\\"\",{\"a\":[]}], \"total\" : 7 }";
        const char *nested = "{\"meta\": {\"page\": {\"x\": 1, \"total\": "
                             "\"12\"}}, \"items\": []}";
        char path[2048], err[256];
        const char *root = getenv("SLUICE_ROOT");
        size_t len = 0;
        char *page;
        struct sl_json_span v, full;
        int stable = 1;

        TAP_OK(prefix_verdicts(t, "$.totalResults",
                               (size_t)(strstr(t, "4312") - t) + 5, "4312"),
               "a number counts once the byte after it came");
        TAP_OK(prefix_verdicts(after, "$.total", strlen(after) - 1, "7"),
               "after an array with brackets and escapes in its strings");
        TAP_OK(prefix_verdicts(nested, "$.meta.page.total",
                               (size_t)(strstr(nested, "\"12\"") - nested) + 4,
                               "\"12\""),
               "a nested path; a string counts at its closing quote");
        TAP_OK(prefix_verdicts("{\"a\":1}", "$.b", 7, NULL),
               "absent: never, once the object closes");
        TAP_OK(prefix_verdicts("[{\"a\":1}]", "$.a", 1, NULL),
               "not an object: never");
        TAP_OK(prefix_verdicts("{\"m\":[1],\"a\":2}", "$.m.a", 6, NULL),
               "a value on the way that is not an object: never");
        TAP_OK(prefix_verdicts("{\"a\" 1}", "$.a", 6, NULL), "no colon: never");
        TAP_OK(prefix_verdicts("{\"x\":}", "$.a", 6, NULL), "no value: never");
        TAP_OK(prefix_verdicts("{\"x\":1 \"a\":2}", "$.a", 8, NULL),
               "no comma: never");
        TAP_OK(sl_json_prefix_member(t, strlen(t), "$.vulns[0]", &v) == -1 &&
                   sl_json_prefix_member(t, strlen(t), "$", &v) == -1,
               "a path with an index, or the root: never");
        TAP_OK(sl_json_prefix_member("{\"a\":1\0", 7, "$.a", &v) == 1 &&
                   v.len == 1,
               "a NUL byte ends a number");

        /* a real NVD page: from the first byte that completes the total,
         * every prefix gives what sl_json_member gives on the whole text */
        snprintf(path, sizeof(path), "%s/data/nvd/nvd_cves_combined_dedup.json",
                 root ? root : ".");
        page = sl_file_read(path, &len, err, sizeof(err));
        TAP_OK(page && sl_json_member(page, len, "$.totalResults", &full) == 1,
               "the NVD sample has a totalResults");
        if (!page)
                return;
        for (size_t n = 0; n <= 4096 && n <= len; n++) {
                int r = sl_json_prefix_member(page, n, "$.totalResults", &v);
                int want = n > full.off + full.len ? 1 : 0;
                if (r != want ||
                    (r == 1 && (v.off != full.off || v.len != full.len)))
                        stable = 0;
        }
        TAP_OK(stable && full.off + full.len < 200,
               "NVD: the total is known after %zu of %zu bytes",
               full.off + full.len + 1, len);
        free(page);
}

int main(void)
{
        test_validate_locate();
        test_prefix_member();
        test_member_ends();
        test_edges();
        test_depth();
        test_positions();
        test_mutations("data/nvd/nvd_cves_combined_dedup.json",
                       "vulnerabilities");
        test_mutations("data/kev/known_exploited_vulnerabilities.json",
                       "vulnerabilities");
        test_mutations("data/tenable/test_exports_vulns_chunk_1.json", NULL);
        test_mutations("data/urlhaus/urlhaus_recent_records.json", NULL);
        TAP_INT_EQ(disagreements, 0, "no disagreement with Jansson at all");
        TAP_OK(located_tried > 10000 && located_mismatches == 0,
               "validate_locate as validate + locate: %zu mutated texts and "
               "paths, %ld differ",
               located_tried, located_mismatches);
        return tap_failed ? 1 : 0;
}
