/* test_common: the shared layer: JSON paths, positioned config errors,
 * option tables, env expansion, buffers and number parsing. */
#include "sl_config.h"
#include "sl_jsonpath.h"
#include "sl_kafka.h"
#include "sl_util.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *doc(const char *text)
{
        json_error_t e;
        json_t *v = json_loads(text, 0, &e);
        if (!v) {
                printf("# bad test JSON: %s\n", e.text);
                abort();
        }
        return v;
}

static int count_cb(json_t *m, void *opaque)
{
        (void)m;
        (*(int *)opaque)++;
        return 0;
}

static void test_jsonpath(void)
{
        json_t *d = doc("{\"a\":{\"b\":[{\"t\":\"x\",\"v\":1},{\"t\":\"y\","
                        "\"v\":2},{\"t\":\"x\",\"v\":3}]},\"k.dot\":5}");
        char err[256];
        struct sl_jsonpath *p;
        int n = 0;
        json_t *v;

        v = sl_jsonpath_get(d, "$.a.b[1].v");
        TAP_INT_EQ(v ? json_integer_value(v) : -1, 2, "path member+index");
        v = sl_jsonpath_get(d, "a.b[-1].v");
        TAP_INT_EQ(v ? json_integer_value(v) : -1, 3,
                   "relative path, negative index");
        v = sl_jsonpath_get(d, "$['k.dot']");
        TAP_INT_EQ(v ? json_integer_value(v) : -1, 5, "quoted member");
        TAP_OK(sl_jsonpath_get(d, "$.a.zz") == NULL, "missing member is NULL");
        TAP_OK(sl_jsonpath_get(d, "$.a.b[9]") == NULL, "index out of range");

        p = sl_jsonpath_compile("$.a.b[*].v", err, sizeof(err));
        TAP_OK(p != NULL, "wildcard compiles");
        TAP_OK(p && !sl_jsonpath_is_single(p), "wildcard is not single");
        if (p)
                TAP_INT_EQ(sl_jsonpath_each(p, d, count_cb, &n), 3,
                           "wildcard visits 3");
        sl_jsonpath_destroy(p);

        p = sl_jsonpath_compile("$.a.b[?(@.t=='x')].v", err, sizeof(err));
        TAP_OK(p != NULL, "filter compiles");
        n = 0;
        if (p) {
                sl_jsonpath_each(p, d, count_cb, &n);
                TAP_INT_EQ(n, 2, "filter by equality matches 2");
                v = sl_jsonpath_first(p, d);
                TAP_INT_EQ(v ? json_integer_value(v) : -1, 1,
                           "filter first match in document order");
        }
        sl_jsonpath_destroy(p);

        p = sl_jsonpath_compile("$.a.b[?(@.v!=2)]", err, sizeof(err));
        n = 0;
        if (p)
                sl_jsonpath_each(p, d, count_cb, &n);
        TAP_INT_EQ(n, 2, "filter != matches 2");
        sl_jsonpath_destroy(p);

        /* a literal past json_int_t stays a real, no undefined cast
         * (found by tests/fuzz/fuzz_jsonpath) */
        p = sl_jsonpath_compile("$.a.b[?(@.v==33333333333333333333333333)]",
                                err, sizeof(err));
        n = 0;
        if (p)
                sl_jsonpath_each(p, d, count_cb, &n);
        TAP_INT_EQ(n, 0, "filter on a huge number compiles, matches none");
        sl_jsonpath_destroy(p);

        p = sl_jsonpath_compile("$.a.[", err, sizeof(err));
        TAP_OK(p == NULL && strstr(err, "offset") != NULL,
               "malformed path is rejected with its offset");
        sl_jsonpath_destroy(p);
        json_decref(d);
}

static void test_config(void)
{
        const char *text =
            "{\n  \"name\": \"kev\",\n  \"request\": {\n"
            "    \"urll\": \"x\",\n    \"tries\": \"3\"\n  }\n}\n";
        static const struct sl_opt req_opts[] = {
            {"url", SL_OPT_STRING, 1, NULL, "the URL"},
            {"tries", SL_OPT_INT, 0, "3", "attempts"},
            {NULL, 0, 0, NULL, NULL},
        };
        struct sl_config_pos pos;
        char err[512];
        char *errs = NULL;
        json_t *root;
        int problems;

        TAP_OK(sl_config_locate(text, "request.tries", &pos) == 0,
               "locate nested key");
        TAP_INT_EQ(pos.line, 5, "located line");
        TAP_INT_EQ(pos.column, 5, "located column");

        root = sl_config_loadb("t.json", text, strlen(text), err, sizeof(err));
        TAP_OK(root != NULL, "config parses");
        problems = sl_opt_check(req_opts, json_object_get(root, "request"),
                                "t.json", text, "request", &errs);
        /* urll misspells the required url: one error says both */
        TAP_INT_EQ(problems, 2, "unknown key (misspelt), wrong type");
        TAP_OK(errs && strstr(errs, "t.json:4:5: request.urll: unknown key "
                                    "\"urll\" (did you mean \"url\"?)"),
               "unknown key is positioned, with what it misspells");
        TAP_OK(errs && strstr(errs, "t.json:5:5: request.tries: expected "
                                    "integer, got "),
               "wrong type is positioned");
        TAP_OK(errs && !strstr(errs, "missing required key \"url\""),
               "the key it misspells is not reported missing as well");
        free(errs);
        json_decref(root);

        root = sl_config_loadb("bad.json", "{\n \"a\": 1,,\n}", 13, err,
                               sizeof(err));
        TAP_OK(root == NULL && strncmp(err, "bad.json:2:", 11) == 0,
               "syntax error names file and line (%s)", err);
        root = sl_config_loadb("dup.json", "{\"a\":1,\"a\":2}", 13, err,
                               sizeof(err));
        TAP_OK(root == NULL, "duplicate keys rejected");
}

static void test_env(void)
{
        char err[256];
        char *s;

        setenv("SL_TEST_SECRET", "s3cr3t", 1);
        s = sl_config_expand_env("Bearer ${env:SL_TEST_SECRET}!", err,
                                 sizeof(err));
        TAP_STR_EQ(s, "Bearer s3cr3t!", "env expansion");
        free(s);
        unsetenv("SL_TEST_UNSET_VAR");
        s = sl_config_expand_env("${env:SL_TEST_UNSET_VAR}", err, sizeof(err));
        TAP_OK(s == NULL && strstr(err, "SL_TEST_UNSET_VAR"),
               "unset variable is named in the error");
        free(s);
}

static void test_util(void)
{
        struct sl_buf b;
        long long ll;
        int i;
        char ts[40];

        sl_buf_init(&b, 8);
        TAP_OK(sl_buf_puts(&b, "12345678") == 0, "buffer fills to its cap");
        TAP_OK(sl_buf_puts(&b, "9") < 0, "buffer refuses past its cap");
        TAP_INT_EQ(b.len, 8, "buffer keeps its content");
        sl_buf_free(&b);

        TAP_OK(sl_parse_ll("123", &ll) == 0 && ll == 123, "parse ll");
        TAP_OK(sl_parse_ll("12x", &ll) < 0, "trailing junk refused");
        TAP_OK(sl_parse_ll("", &ll) < 0, "empty refused");
        TAP_OK(sl_parse_int("99999999999", &i) < 0, "int overflow refused");
        TAP_STR_EQ(sl_time_format(1700000000123LL, ts, sizeof(ts)),
                   "2023-11-14T22:13:20.123Z", "RFC 3339 time");
}

/* Big blocks: in steps of 256 KiB, aligned to a huge page, usable to
 * their end; small ones plain. */
static void test_big(void)
{
        size_t cap = 0, mib = (size_t)1 << 20;
        char *p;
        struct sl_buf b;

        p = sl_malloc_big(100, &cap);
        TAP_INT_EQ(cap, 100, "big: a small block is a plain one");
        free(p);
        p = sl_malloc_big(3 * mib + 5, &cap);
        TAP_INT_EQ(cap, 3 * mib + 256 * 1024, "big: in steps of 256 KiB");
        memset(p, 'x', cap); /* ASan: all of it is the caller's */
        free(p);
        p = sl_malloc_big(4 * mib, &cap);
        TAP_INT_EQ(cap, 4 * mib, "big: a multiple of the step stays");
        free(p);

        /* a buffer's first reservation of megabytes is a big block */
        sl_buf_init(&b, 0);
        sl_buf_reserve(&b, 3 * mib);
        TAP_INT_EQ(b.cap, 3 * mib + 256 * 1024,
                   "big: a buffer's first reservation is a big block");
        TAP_OK(sl_buf_append(&b, "abc", 3) == 0 && b.len == 3 &&
                   strcmp(b.data, "abc") == 0,
               "big: and fills as before");
        sl_buf_free(&b);
}

/* The value a consumer configuration ends with for name, after the
 * role's default value def: "" when the configuration fails. */
static const char *with_default(const char *name, const char *def, char *val,
                                size_t size)
{
        char err[256];
        rd_kafka_conf_t *c = sl_kafka_conf_new("consumer", err, sizeof(err));
        size_t n = size;

        val[0] = '\0';
        if (c && (sl_kafka_conf_default(c, name, def, err, sizeof(err)) < 0 ||
                  rd_kafka_conf_get(c, name, val, &n) != RD_KAFKA_CONF_OK))
                val[0] = '\0';
        if (c)
                rd_kafka_conf_destroy(c);
        return val;
}

/* A role's own default gives way to the user's setting, from the
 * environment or --kafka (the fetch lock's session timeout used to be set
 * over the user's). */
static void test_kafka_default(void)
{
        char err[256], val[64];

        TAP_STR_EQ(with_default("session.timeout.ms", "6000", val, sizeof(val)),
                   "6000",
                   "a role's default applies when the user sets nothing");
        setenv("SLUICE_KAFKA_SESSION_TIMEOUT_MS", "3000", 1);
        TAP_STR_EQ(with_default("session.timeout.ms", "6000", val, sizeof(val)),
                   "3000", "... not over SLUICE_KAFKA_SESSION_TIMEOUT_MS");
        unsetenv("SLUICE_KAFKA_SESSION_TIMEOUT_MS");
        TAP_OK(sl_kafka_prop_add("heartbeat.interval.ms=700", err,
                                 sizeof(err)) == 0,
               "--kafka heartbeat.interval.ms=700 taken");
        TAP_STR_EQ(
            with_default("heartbeat.interval.ms", "500", val, sizeof(val)),
            "700", "... nor over --kafka");
}

static long rss_kb(void)
{
        FILE *fp = fopen("/proc/self/statm", "r");
        long size = 0, res = 0;

        if (fp) {
                if (fscanf(fp, "%ld %ld", &size, &res) != 2)
                        res = 0;
                fclose(fp);
        }
        return res * 4;
}

/* A burst of small blocks, all freed but the last (it pins the heap's
 * top, so glibc cannot give the memory back by shrinking the heap): the
 * RSS stays up until sl_mem_release. */
static void test_mem_release(void)
{
        enum { N = 1600, SIZE = 64 * 1024 };
        char **p = sl_malloc(N * sizeof(*p));
        struct sl_idle idle = {0};
        long before, burst, after;
        int released = 0;

        before = rss_kb();
        for (int i = 0; i < N; i++) {
                p[i] = sl_malloc(SIZE);
                memset(p[i], 7, SIZE);
        }
        for (int i = 0; i < N - 1; i++)
                free(p[i]);
        burst = rss_kb();
#if !defined(__SANITIZE_ADDRESS__)
        /* ASan's allocator is not glibc's: nothing here to trim */
        TAP_OK(burst > before + 80 * 1024,
               "mem_release: 100 MB of freed blocks stay resident (%ld kB -> "
               "%ld kB)",
               before, burst);
#endif
        /* busy turns never release; the first idle turns neither */
        TAP_INT_EQ(sl_idle_turn(&idle, 1), 0, "idle: a busy turn");
        TAP_INT_EQ(sl_idle_turn(&idle, 0), 0, "idle: not idle long enough");
        idle.last_busy_ms -= SL_IDLE_RELEASE_MS; /* as if 2 s went by */
        for (int i = 0; i < 5; i++)
                released += sl_idle_turn(&idle, 0);
        TAP_INT_EQ(released, 1, "idle: released once after 2 s idle");
        after = rss_kb();
#if !defined(__SANITIZE_ADDRESS__)
        TAP_OK(after < burst - 80 * 1024,
               "mem_release: the freed blocks went back (%ld kB -> %ld kB)",
               burst, after);
#endif
#if defined(__SANITIZE_ADDRESS__)
        (void)before;
        (void)burst;
        (void)after;
#endif
        TAP_INT_EQ(sl_idle_turn(&idle, 1), 0, "idle: work again");
        idle.last_busy_ms -= SL_IDLE_RELEASE_MS;
        TAP_INT_EQ(sl_idle_turn(&idle, 0), 1,
                   "idle: released again after the next idle stretch");
        free(p[N - 1]);
        free(p);
}

int main(void)
{
        test_mem_release();
        test_kafka_default();
        test_jsonpath();
        test_config();
        test_env();
        test_util();
        test_big();
        return TAP_DONE();
}
