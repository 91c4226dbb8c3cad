/* test_load_env: the loader's envelope decoder (loaders/load_env.c) must
 * give Jansson's tree for every text, with the row's and the lineage's
 * objects and arrays kept as their exact bytes; and sl_json_decode (the
 * transformer's record decoder) Jansson's tree down to the order of the
 * members. Real records from data/
 * are wrapped in envelopes (upsert and replace, compact and indented) and
 * mutated; every mutation the validator accepts must decode to Jansson's
 * tree once the raw nodes are expanded. Also the object and array walkers
 * of sl_jsonscan on scalars at the end of a container. */
#include "load_env.h"
#include "sl_jsondecode.h"
#include "sl_jsonscan.h"
#include "sl_util.h"
#include "tap.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int mismatches;

/* Whether sl_json_decode builds Jansson's tree of the whole text (which
 * validates), down to the order of the members. */
static int decode_same(const char *s, size_t n, json_t *want)
{
        struct sl_json_span at = {0, n};
        json_t *got;
        char *a, *b;
        int ok;

        while (at.len > 0 && strchr(" \t\r\n", s[at.off])) {
                at.off++;
                at.len--;
        }
        while (at.len > 0 && strchr(" \t\r\n", s[at.off + at.len - 1]))
                at.len--;
        got = sl_json_decode(s, n, at);
        a = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        b = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        ok = a && b && strcmp(a, b) == 0 && json_equal(want, got);
        free(a);
        free(b);
        json_decref(got);
        return ok;
}

/* Whether the decoders agree with Jansson on text (which validates). */
static int same_as_jansson(const char *s, size_t n)
{
        json_t *want = json_loadb(s, n, 0, NULL);
        json_t *env = load_env_decode(s, n);
        json_t *got = env ? load_raw_expand(env) : NULL;
        int ok =
            want && got && json_equal(want, got) && decode_same(s, n, want);

        if (!ok && ++mismatches <= 3)
                printf("# differs from Jansson: %.*s\n",
                       (int)(n < 300 ? n : 300), s);
        json_decref(want);
        json_decref(env);
        json_decref(got);
        return ok;
}

static void test_walkers(void)
{
        const char *t = "{\"a\":1,\"b\":[1,2.5,true],\"c\":{\"d\":null},"
                        "\"e\\\"f\":\"x}\"}";
        struct sl_json_span k, v;
        size_t pos = 0;
        struct sl_buf got;

        sl_buf_init(&got, 0);
        while (sl_json_object_next(t, strlen(t), &pos, &k, &v))
                sl_buf_printf(&got, "%.*s=%.*s;", (int)k.len, t + k.off,
                              (int)v.len, t + v.off);
        TAP_STR_EQ(got.data, "a=1;b=[1,2.5,true];c={\"d\":null};e\\\"f=\"x}\";",
                   "object walker: names and values, the last one a string");
        pos = 0;
        sl_buf_reset(&got);
        t = "[ 1 , -2e3,null ,\"]\" ,[] ]";
        while (sl_json_array_next(t, strlen(t), &pos, &v))
                sl_buf_printf(&got, "%.*s|", (int)v.len, t + v.off);
        TAP_STR_EQ(got.data, "1|-2e3|null|\"]\"|[]|",
                   "array walker: a number before ']' ends there");
        sl_buf_free(&got);
        pos = 0;
        TAP_OK(!sl_json_object_next("{}", 2, &pos, &k, &v) &&
                   !sl_json_array_next("[ ]", 3, &pos, &v),
               "empty containers have no items");
        {
                struct sl_json_span *el = NULL;
                size_t o, c;
                long ne = sl_json_locate_array("{\"a\":[1,2,3],\"b\":4}", 19,
                                               "$.a", &o, &c, &el);
                TAP_OK(ne == 3 && el[2].len == 1 && c == 11,
                       "locate_array: numbers end at ']' (%ld elements)", ne);
                free(el);
        }
}

static void test_raw(void)
{
        const char *t = "{\"v\":1,\"table\":\"t\",\"op\":\"upsert\","
                        "\"key\":{\"id\":\"A\"},\"row\":{\"id\":\"A\","
                        "\"m\":{\"baseScore\":7.3, \"x\":[1,2]},\"n\":7.3,"
                        "\"l\":[\"a\",\"b\"]},\"lineage\":{\"source\":\"s\"}}";
        const char *m = "{\"baseScore\":7.3, \"x\":[1,2]}";
        json_t *env = load_env_decode(t, strlen(t)), *row;
        size_t n = 0;
        const char *s;

        row = json_object_get(env, "row");
        s = load_raw_text(json_object_get(row, "m"), &n);
        TAP_OK(s && n == strlen(m) && memcmp(s, m, n) == 0,
               "a row's object stays its exact text (7.3 stays 7.3)");
        s = load_raw_text(json_object_get(row, "l"), &n);
        TAP_OK(s && n == 9, "a row's array stays text");
        TAP_OK(json_is_real(json_object_get(row, "n")) &&
                   json_is_string(json_object_get(row, "id")) &&
                   !load_raw_text(json_object_get(row, "id"), &n),
               "a row's scalars are decoded");
        TAP_OK(load_raw_text(json_object_get(env, "lineage"), &n) != NULL,
               "the lineage stays text");
        TAP_OK(json_is_object(json_object_get(env, "key")) &&
                   !load_raw_text(
                       json_object_get(json_object_get(env, "key"), "id"), &n),
               "the key is decoded");
        json_decref(env);
        TAP_OK(load_env_decode("[1]", 3) == NULL,
               "an array is not an envelope (NULL)");
        t = "{\"row\":{\"a\\u00e9\":\"\\ud83d\\ude00\\n\",\"b\":-0,"
            "\"c\":1E-400,\"d\":-12.5e+2},\"k\\\"\":[{\"x\":[]}]}";
        TAP_OK(same_as_jansson(t, strlen(t)), "escapes in names and values");
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint32_t next_rand(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (uint32_t)rng;
}

/* One byte changed, dropped or doubled, or a random span swapped. */
static size_t mutate(const char *s, size_t n, char *out)
{
        static const char pool[] = "{}[]\",:\\ 0-.eEtfnu9\x01\xc3\xa9";
        size_t at = next_rand() % n;

        memcpy(out, s, n);
        switch (next_rand() % 3) {
        case 0:
                out[at] = pool[next_rand() % (sizeof(pool) - 1)];
                return n;
        case 1:
                memmove(out + at, out + at + 1, n - at - 1);
                return n - 1;
        default:
                memmove(out + at + 1, out + at, n - at);
                return n + 1;
        }
}

static void test_records(const char *rel, const char *records_key)
{
        char path[2048], err[256];
        const char *root = getenv("SLUICE_ROOT");
        size_t len = 0, i, tried = 0, valid = 0, agreed = 0, whole = 0,
               wagreed = 0;
        char *text;
        json_t *doc, *recs, *rec;

        snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
        text = sl_file_read(path, &len, err, sizeof(err));
        TAP_OK(text != NULL, "%s reads", rel);
        if (!text)
                return;
        doc = json_loadb(text, len, 0, NULL);
        free(text);
        recs = records_key ? json_object_get(doc, records_key) : doc;
        json_array_foreach(recs, i, rec)
        {
                json_t *env =
                    json_pack("{s:i,s:s,s:s,s:{s:i},s:O,s:[O,O],"
                              "s:{s:s,s:i}}",
                              "v", 1, "table", "t", "op", "upsert", "key", "id",
                              (int)i, "row", rec, "rows", rec, rec, "lineage",
                              "source", "x", "record", (int)i);
                char *s =
                    json_dumps(env, i % 2 ? JSON_COMPACT : JSON_INDENT(2));
                size_t sn = strlen(s);
                char *buf = sl_malloc(sn + 2);

                whole++;
                wagreed += (size_t)same_as_jansson(s, sn);
                for (int k = 0; i < 40 && k < 100; k++) {
                        size_t mn = mutate(s, sn, buf);
                        tried++;
                        if (sl_json_validate(buf, mn, 0, NULL) != 0)
                                continue;
                        valid++;
                        agreed += (size_t)same_as_jansson(buf, mn);
                }
                free(buf);
                free(s);
                json_decref(env);
        }
        json_decref(doc);
        TAP_OK(whole > 0 && wagreed == whole,
               "%s: %zu envelopes decode as Jansson decodes them", rel,
               wagreed);
        TAP_OK(valid > 0 && agreed == valid,
               "%s: %zu of %zu mutated envelopes valid, %zu decode as "
               "Jansson",
               rel, valid, tried, agreed);
}

int main(void)
{
        test_walkers();
        test_raw();
        test_records("data/nvd/nvd_cves_combined_dedup.json",
                     "vulnerabilities");
        test_records("data/kev/known_exploited_vulnerabilities.json",
                     "vulnerabilities");
        test_records("data/tenable/test_exports_vulns_chunk_1.json", NULL);
        test_records("data/urlhaus/urlhaus_recent_records.json", NULL);
        TAP_INT_EQ(mismatches, 0, "no difference from Jansson at all");
        return TAP_DONE();
}
