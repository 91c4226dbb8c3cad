/* sl_metrics: the catalog, the series store and the Prometheus text
 * rendering. One mutex guards everything: recording is a few hundred
 * nanoseconds and the workers record per batch or per page, not per byte. */
#include "sl_metrics.h"
#include "sl_log.h"
#include "sl_version.h"

#include <dirent.h>
#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const double seconds_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const double size_buckets[] = {1,   2,    5,    10,   50,    100,
                                      500, 1000, 2000, 5000, 10000, 50000};

#define NB(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct sl_metric_def catalog[SL_M_COUNT] = {
    [SL_M_INFO] = {"sluice_info",
                   SL_GAUGE,
                   {"role", "instance", "version", NULL},
                   NULL,
                   0,
                   "1, labelled with the worker's role, instance and build "
                   "version (`sluice --version`): the build-info gauge"},
    [SL_M_START_TIME] = {"sluice_start_time_seconds",
                         SL_GAUGE,
                         {NULL},
                         NULL,
                         0,
                         "when the process started, unix seconds"},
    [SL_M_LAST_TICK] = {"sluice_last_tick_timestamp_seconds",
                        SL_GAUGE,
                        {NULL},
                        NULL,
                        0,
                        "when the main loop last turned, unix seconds "
                        "(/healthz fails when it stalls)"},
    [SL_M_READY] = {"sluice_ready",
                    SL_GAUGE,
                    {NULL},
                    NULL,
                    0,
                    "1 when /readyz answers 200 (broker, and database for "
                    "the loader, reachable)"},
    [SL_M_KAFKA_UP] = {"sluice_kafka_up",
                       SL_GAUGE,
                       {NULL},
                       NULL,
                       0,
                       "1 when the brokers answered the last metadata probe"},
    [SL_M_DB_UP] = {"sluice_db_up",
                    SL_GAUGE,
                    {NULL},
                    NULL,
                    0,
                    "1 when PostgreSQL accepted connections at the last "
                    "probe (loader only)"},
    [SL_M_RECORDS_IN] = {"sluice_records_in_total",
                         SL_COUNTER,
                         {"name", NULL},
                         NULL,
                         0,
                         "records read: fetch = records in fetched pages "
                         "(name = source), transform = records selected "
                         "from raw pages (name = map), load = mapped "
                         "messages consumed (name = table)"},
    [SL_M_RECORDS_OUT] = {"sluice_records_out_total",
                          SL_COUNTER,
                          {"name", "outcome", NULL},
                          NULL,
                          0,
                          "records written, by outcome: fetch published; "
                          "transform mapped, dead_letter, ignored, "
                          "skipped; load inserted, updated, unchanged, "
                          "deleted, rejected, superseded"},
    [SL_M_ERRORS] = {"sluice_errors_total",
                     SL_COUNTER,
                     {"kind", NULL},
                     NULL,
                     0,
                     "errors by kind: http, sync, kafka_produce, "
                     "kafka_delivery, kafka_consume, kafka_commit, db, "
                     "load_fenced, dead_page, paging_loop"},
    [SL_M_PAGES] = {"sluice_pages_total",
                    SL_COUNTER,
                    {"name", NULL},
                    NULL,
                    0,
                    "raw pages published (fetch, name = source) or "
                    "consumed (transform, name = raw topic)"},
    [SL_M_BATCH_SIZE] = {"sluice_batch_size",
                         SL_HISTOGRAM,
                         {"name", NULL},
                         size_buckets,
                         NB(size_buckets),
                         "messages per batch: transform (name = "
                         "transform), load (name = table)"},
    [SL_M_BATCH_SECONDS] = {"sluice_batch_duration_seconds",
                            SL_HISTOGRAM,
                            {"name", NULL},
                            seconds_buckets,
                            NB(seconds_buckets),
                            "time to process and commit one batch"},
    [SL_M_CONSUMER_LAG] = {"sluice_consumer_lag",
                           SL_GAUGE,
                           {"topic", "partition", NULL},
                           NULL,
                           0,
                           "messages behind the high watermark, per "
                           "assigned partition (librdkafka statistics)"},
    [SL_M_KAFKA_BROKERS_UP] = {"sluice_kafka_brokers_up",
                               SL_GAUGE,
                               {NULL},
                               NULL,
                               0,
                               "brokers in state UP (librdkafka "
                               "statistics)"},
    [SL_M_KAFKA_REPLYQ] = {"sluice_kafka_replyq",
                           SL_GAUGE,
                           {"client", NULL},
                           NULL,
                           0,
                           "events (delivery reports, statistics, errors) "
                           "waiting for the worker to serve them, per Kafka "
                           "client (`rdkafka#producer-1`, ...). Every client "
                           "of a worker reports every 5 s; one that never "
                           "appears is never served, and its events pile up "
                           "in memory"},
    [SL_M_HTTP_RESPONSES] = {"sluice_http_responses_total",
                             SL_COUNTER,
                             {"source", "status", NULL},
                             NULL,
                             0,
                             "answers from the upstream API by HTTP "
                             "status (0 = no answer: connection error)"},
    [SL_M_HTTP_SECONDS] = {"sluice_http_request_duration_seconds",
                           SL_HISTOGRAM,
                           {"source", NULL},
                           seconds_buckets,
                           NB(seconds_buckets),
                           "upstream request latency, request to full "
                           "answer"},
    [SL_M_HTTP_RETRIES] = {"sluice_http_retries_total",
                           SL_COUNTER,
                           {"source", NULL},
                           NULL,
                           0,
                           "upstream requests retried (5xx, resets, bad "
                           "bodies, throttling)"},
    [SL_M_RATELIMIT_WAITS] = {"sluice_ratelimit_waits_total",
                              SL_COUNTER,
                              {"source", NULL},
                              NULL,
                              0,
                              "pauses asked by the API (throttle answers, "
                              "exhausted rate-limit headers)"},
    [SL_M_RATELIMIT_WAIT_SECS] = {"sluice_ratelimit_wait_seconds_total",
                                  SL_COUNTER,
                                  {"source", NULL},
                                  NULL,
                                  0,
                                  "seconds of pause asked by the API"},
    [SL_M_SYNC_RUNS] = {"sluice_sync_runs_total",
                        SL_COUNTER,
                        {"source", "result", NULL},
                        NULL,
                        0,
                        "fetch syncs by result: ok, retry, fatal"},
    [SL_M_SYNC_LAST_SUCCESS] = {"sluice_sync_last_success_timestamp_seconds",
                                SL_GAUGE,
                                {"source", NULL},
                                NULL,
                                0,
                                "when a sync of the source last succeeded, "
                                "unix seconds"},
    [SL_M_FETCH_PAGES_EXPECTED] = {"sluice_fetch_pages_expected",
                                   SL_GAUGE,
                                   {"source", NULL},
                                   NULL,
                                   0,
                                   "pages the running sync will fetch, when "
                                   "the API tells (0 = unknown)"},
    [SL_M_FETCH_PAGES_DONE] = {"sluice_fetch_pages_done",
                               SL_GAUGE,
                               {"source", NULL},
                               NULL,
                               0,
                               "pages the running sync has published"},
    [SL_M_MESSAGES_LOST] = {"sluice_messages_lost_total",
                            SL_COUNTER,
                            {"topic", NULL},
                            NULL,
                            0,
                            "messages a consumer (transform, load) never "
                            "read because the broker no longer had them "
                            "(retention, or the embedded broker's bounded "
                            "partitions): data lost. Each loss is also an "
                            "`event=data_lost` line at `err` and a record in "
                            "`sluice.data_loss`, shown by `sluice status`"},
    [SL_M_BACKPRESSURE_SECS] = {"sluice_fetch_backpressure_seconds_total",
                                SL_COUNTER,
                                {"source", NULL},
                                NULL,
                                0,
                                "seconds the fetcher waited for the consumer "
                                "groups of its raw topic to catch up before "
                                "publishing more (SLUICE_BACKPRESSURE_GROUPS)"},
    [SL_M_LOSS_UNACKED] = {"sluice_data_loss_unacknowledged_messages",
                           SL_GAUGE,
                           {NULL},
                           NULL,
                           0,
                           "messages this worker found lost to retention "
                           "that no one has acknowledged yet (sluice status "
                           "--ack-loss); /readyz answers 503 while above 0"},
    [SL_M_LOAD_TABLE_PARKED] = {"sluice_load_table_parked",
                                SL_GAUGE,
                                {"table", NULL},
                                NULL,
                                0,
                                "1 while the loader cannot write the table "
                                "(missing, no unique index) and holds its "
                                "partitions paused; 0 once it lands again"},
    [SL_M_FETCH_DUP_MEMBERS] = {"sluice_fetch_duplicate_members_total",
                                SL_COUNTER,
                                {"source", NULL},
                                NULL,
                                0,
                                "pages with a member name repeated in one "
                                "object (JSON keeps the last: the earlier "
                                "values are not read)"},
    [SL_M_FETCH_BAD_RECORDS] = {"sluice_fetch_bad_records_total",
                                SL_COUNTER,
                                {"source", "reason", NULL},
                                NULL,
                                0,
                                "records of a page set aside to the "
                                "dead-letter topic (invalid UTF-8, a "
                                "number out of range) while the page's "
                                "other records went on"},
    [SL_M_LOOKUPS] = {"sluice_lookups_total",
                      SL_COUNTER,
                      {"lookup", "outcome", NULL},
                      NULL,
                      0,
                      "observables answered by the API, by outcome: found, "
                      "not_found, error"},
    [SL_M_LOOKUP_CACHE] = {"sluice_lookup_cache_total",
                           SL_COUNTER,
                           {"lookup", "result", NULL},
                           NULL,
                           0,
                           "observables met by a lookup worker, by "
                           "result: hit (fresh in sluice.lookup_cache) or "
                           "miss (asked)"},
    [SL_M_LOOKUP_QUOTA_LEFT] = {"sluice_lookup_quota_remaining",
                                SL_GAUGE,
                                {"lookup", NULL},
                                NULL,
                                0,
                                "requests left in the lookup's quota "
                                "period, as of this worker's last request"},
    [SL_M_LOOKUP_WAITS] = {"sluice_lookup_waits_total",
                           SL_COUNTER,
                           {"lookup", "reason", NULL},
                           NULL,
                           0,
                           "times a lookup worker waited before asking: "
                           "rate (a token bucket), quota (spent for the "
                           "period), retry (a throttle answer or a "
                           "transient failure)"},
    /* the names client libraries use for their process collector, so
     * existing dashboards work; sampled at each render */
    [SL_M_PROC_CPU] = {"process_cpu_seconds_total",
                       SL_COUNTER,
                       {NULL},
                       NULL,
                       0,
                       "user and system CPU time of the process, seconds"},
    [SL_M_PROC_RSS] = {"process_resident_memory_bytes",
                       SL_GAUGE,
                       {NULL},
                       NULL,
                       0,
                       "resident memory of the process, bytes"},
    [SL_M_PROC_VSIZE] = {"process_virtual_memory_bytes",
                         SL_GAUGE,
                         {NULL},
                         NULL,
                         0,
                         "virtual memory of the process, bytes"},
    [SL_M_PROC_FDS] = {"process_open_fds",
                       SL_GAUGE,
                       {NULL},
                       NULL,
                       0,
                       "open file descriptors (sockets included)"},
    [SL_M_PROC_MAX_FDS] = {"process_max_fds",
                           SL_GAUGE,
                           {NULL},
                           NULL,
                           0,
                           "the process's limit on open file descriptors"},
    [SL_M_PROC_THREADS] = {"sluice_threads",
                           SL_GAUGE,
                           {NULL},
                           NULL,
                           0,
                           "threads of the process (librdkafka's included)"},
    [SL_M_PROC_HEAP] = {"sluice_heap_in_use_bytes",
                        SL_GAUGE,
                        {NULL},
                        NULL,
                        0,
                        "bytes malloc has handed out and not had back "
                        "(mallinfo2: uordblks + hblkhd); unlike the RSS "
                        "it does not count freed memory malloc keeps, so "
                        "a leak shows as a steady climb"},
};

struct series {
        char *lv[SL_METRIC_MAX_LABELS];
        double value; /* counter, gauge; histogram sum */
        uint64_t count;
        uint64_t buckets[SL_METRIC_MAX_BUCKETS];
};

struct family {
        struct series *s;
        size_t n, cap;
};

static struct family families[SL_M_COUNT];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

const struct sl_metric_def *sl_metric_def_get(enum sl_metric_id id)
{
        if ((int)id < 0 || id >= SL_M_COUNT)
                return NULL;
        return &catalog[id];
}

static int nlabels(const struct sl_metric_def *d)
{
        int n = 0;

        while (n < SL_METRIC_MAX_LABELS && d->labels[n])
                n++;
        return n;
}

static const char *lv_at(const char *const *lv, int i)
{
        for (int k = 0; lv && k < i; k++)
                if (!lv[k])
                        return "";
        return lv && lv[i] ? lv[i] : "";
}

/* The series for lv, created when absent. Call with the lock held. */
static struct series *find(enum sl_metric_id id, const char *const *lv,
                           int create)
{
        const struct sl_metric_def *d = &catalog[id];
        struct family *f = &families[id];
        int nl = nlabels(d);

        for (size_t i = 0; i < f->n; i++) {
                int k;
                for (k = 0; k < nl; k++)
                        if (strcmp(f->s[i].lv[k], lv_at(lv, k)) != 0)
                                break;
                if (k == nl)
                        return &f->s[i];
        }
        if (!create)
                return NULL;
        if (f->n == f->cap) {
                f->cap = f->cap ? f->cap * 2 : 8;
                f->s = sl_realloc(f->s, f->cap * sizeof(*f->s));
        }
        memset(&f->s[f->n], 0, sizeof(f->s[0]));
        for (int k = 0; k < nl; k++)
                f->s[f->n].lv[k] = sl_strdup(lv_at(lv, k));
        return &f->s[f->n++];
}

void sl_metric_add(enum sl_metric_id id, const char *const *lv, double v)
{
        struct series *s;

        if ((int)id < 0 || id >= SL_M_COUNT || catalog[id].type == SL_HISTOGRAM)
                return;
        if (catalog[id].type == SL_COUNTER && !(v >= 0))
                return;
        pthread_mutex_lock(&lock);
        s = find(id, lv, 1);
        s->value += v;
        pthread_mutex_unlock(&lock);
}

void sl_metric_set(enum sl_metric_id id, const char *const *lv, double v)
{
        struct series *s;

        if ((int)id < 0 || id >= SL_M_COUNT || catalog[id].type != SL_GAUGE)
                return;
        pthread_mutex_lock(&lock);
        s = find(id, lv, 1);
        s->value = v;
        pthread_mutex_unlock(&lock);
}

void sl_metric_observe(enum sl_metric_id id, const char *const *lv, double v)
{
        const struct sl_metric_def *d;
        struct series *s;

        if ((int)id < 0 || id >= SL_M_COUNT ||
            catalog[id].type != SL_HISTOGRAM || isnan(v))
                return;
        d = &catalog[id];
        pthread_mutex_lock(&lock);
        s = find(id, lv, 1);
        s->value += v;
        s->count++;
        /* buckets are cumulative in the output; store per bucket here */
        for (int i = 0; i < d->nbuckets; i++) {
                if (v <= d->buckets[i]) {
                        s->buckets[i]++;
                        break;
                }
        }
        pthread_mutex_unlock(&lock);
}

double sl_metric_get(enum sl_metric_id id, const char *const *lv)
{
        struct series *s;
        double v = 0;

        if ((int)id < 0 || id >= SL_M_COUNT)
                return 0;
        pthread_mutex_lock(&lock);
        s = find(id, lv, 0);
        if (s)
                v = catalog[id].type == SL_HISTOGRAM ? (double)s->count
                                                     : s->value;
        pthread_mutex_unlock(&lock);
        return v;
}

void sl_metric_clear(enum sl_metric_id id)
{
        struct family *f;

        if ((int)id < 0 || id >= SL_M_COUNT)
                return;
        f = &families[id];
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < f->n; i++)
                for (int k = 0; k < SL_METRIC_MAX_LABELS; k++)
                        free(f->s[i].lv[k]);
        f->n = 0;
        pthread_mutex_unlock(&lock);
}

/* Label values escape \, " and newline; HELP text \ and newline. */
static void put_escaped(struct sl_buf *b, const char *s, int quotes)
{
        for (; *s; s++) {
                if (*s == '\\')
                        sl_buf_puts(b, "\\\\");
                else if (*s == '\n')
                        sl_buf_puts(b, "\\n");
                else if (*s == '"' && quotes)
                        sl_buf_puts(b, "\\\"");
                else
                        sl_buf_append(b, s, 1);
        }
}

static void put_number(struct sl_buf *b, double v)
{
        if (isnan(v))
                sl_buf_puts(b, "NaN");
        else if (isinf(v))
                sl_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        else if (v == floor(v) && fabs(v) < 9007199254740992.0)
                sl_buf_printf(b, "%.0f", v);
        else
                sl_buf_printf(b, "%.15g", v);
}

/* name{l1="v1",...,extra="x"} */
static void put_series_name(struct sl_buf *b, const char *name,
                            const char *suffix, const struct sl_metric_def *d,
                            const struct series *s, const char *extra_name,
                            const char *extra_value)
{
        int nl = nlabels(d), any = 0;

        sl_buf_puts(b, name);
        sl_buf_puts(b, suffix);
        for (int k = 0; k < nl; k++) {
                sl_buf_puts(b, any ? "," : "{");
                sl_buf_printf(b, "%s=\"", d->labels[k]);
                put_escaped(b, s->lv[k], 1);
                sl_buf_puts(b, "\"");
                any = 1;
        }
        if (extra_name) {
                sl_buf_puts(b, any ? "," : "{");
                sl_buf_printf(b, "%s=\"%s\"", extra_name, extra_value);
                any = 1;
        }
        if (any)
                sl_buf_puts(b, "}");
        sl_buf_puts(b, " ");
}

static void render_series(struct sl_buf *b, const struct sl_metric_def *d,
                          const struct series *s)
{
        uint64_t cum = 0;

        if (d->type != SL_HISTOGRAM) {
                put_series_name(b, d->name, "", d, s, NULL, NULL);
                put_number(b, s->value);
                sl_buf_puts(b, "\n");
                return;
        }
        for (int i = 0; i < d->nbuckets; i++) {
                char le[40];
                cum += s->buckets[i];
                snprintf(le, sizeof(le), "%g", d->buckets[i]);
                put_series_name(b, d->name, "_bucket", d, s, "le", le);
                sl_buf_printf(b, "%llu\n", (unsigned long long)cum);
        }
        put_series_name(b, d->name, "_bucket", d, s, "le", "+Inf");
        sl_buf_printf(b, "%llu\n", (unsigned long long)s->count);
        put_series_name(b, d->name, "_sum", d, s, NULL, NULL);
        put_number(b, s->value);
        sl_buf_puts(b, "\n");
        put_series_name(b, d->name, "_count", d, s, NULL, NULL);
        sl_buf_printf(b, "%llu\n", (unsigned long long)s->count);
}

/* a series without labels, of any type (the process counter is set, not
 * added: the kernel keeps the total) */
static void set_unlabelled(enum sl_metric_id id, double v)
{
        pthread_mutex_lock(&lock);
        find(id, NULL, 1)->value = v;
        pthread_mutex_unlock(&lock);
}

#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer's allocator replaces malloc: ask it (test builds) */
size_t __sanitizer_get_current_allocated_bytes(void);
static double heap_in_use(void)
{
        return (double)__sanitizer_get_current_allocated_bytes();
}
#else
static double heap_in_use(void)
{
        struct mallinfo2 mi = mallinfo2();

        return (double)(mi.uordblks + mi.hblkhd);
}
#endif

static long count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        long n = 0;

        if (!d)
                return -1;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the directory's own descriptor */
}

int sl_metrics_sample_process(void)
{
        char buf[1024], *p;
        unsigned long long utime, stime, vsize;
        long threads, rss_pages, fds;
        long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        struct rlimit rl;
        FILE *fp = fopen("/proc/self/stat", "r");
        size_t n;

        if (!fp)
                return -1;
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        /* the command name is in parentheses and may hold anything: the
         * fields start after the last ')' at field 3 (state) */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1,
                         " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                         "%llu %llu %*d %*d %*d %*d %ld %*d %*u %llu %ld",
                         &utime, &stime, &threads, &vsize, &rss_pages) != 5)
                return -1;
        if (tick <= 0)
                tick = 100;
        set_unlabelled(SL_M_PROC_CPU, (double)(utime + stime) / (double)tick);
        set_unlabelled(SL_M_PROC_RSS, (double)rss_pages * (double)page);
        set_unlabelled(SL_M_PROC_VSIZE, (double)vsize);
        set_unlabelled(SL_M_PROC_THREADS, (double)threads);
        fds = count_fds();
        if (fds >= 0)
                set_unlabelled(SL_M_PROC_FDS, (double)fds);
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
                set_unlabelled(SL_M_PROC_MAX_FDS, (double)rl.rlim_cur);
        set_unlabelled(SL_M_PROC_HEAP, heap_in_use());
        return 0;
}

int sl_metrics_render(struct sl_buf *b)
{
        static const char *types[] = {"counter", "gauge", "histogram"};
        int rc = 0;

        sl_metrics_sample_process();
        pthread_mutex_lock(&lock);
        for (int id = 0; id < SL_M_COUNT; id++) {
                const struct sl_metric_def *d = &catalog[id];
                struct family *f = &families[id];

                sl_buf_printf(b, "# HELP %s ", d->name);
                put_escaped(b, d->help, 0);
                sl_buf_printf(b, "\n# TYPE %s %s\n", d->name, types[d->type]);
                if (f->n == 0 && nlabels(d) == 0) {
                        struct series zero;
                        memset(&zero, 0, sizeof(zero));
                        render_series(b, d, &zero);
                }
                for (size_t i = 0; i < f->n; i++)
                        render_series(b, d, &f->s[i]);
        }
        pthread_mutex_unlock(&lock);
        /* sl_buf drops what exceeds its cap: a render that hit it is cut */
        if (b->max && b->len + 64 > b->max)
                rc = -1;
        return rc;
}

void sl_metrics_process_init(void)
{
        static int done;
        double now = (double)sl_wall_ms() / 1000.0;

        if (done)
                return;
        done = 1;
        sl_metric_set(SL_M_INFO,
                      SL_LV(sl_log_role(), sl_log_instance(), sl_version()), 1);
        sl_metric_set(SL_M_START_TIME, NULL, now);
        sl_metric_set(SL_M_LAST_TICK, NULL, now);
}

void sl_metrics_reference(FILE *fp)
{
        static const char *types[] = {"counter", "gauge", "histogram"};

        fprintf(fp, "| metric | type | labels | meaning |\n"
                    "|---|---|---|---|\n");
        for (int id = 0; id < SL_M_COUNT; id++) {
                const struct sl_metric_def *d = &catalog[id];
                fprintf(fp, "| `%s` | %s | ", d->name, types[d->type]);
                for (int k = 0; k < nlabels(d); k++)
                        fprintf(fp, "%s`%s`", k ? ", " : "", d->labels[k]);
                fprintf(fp, " | %s |\n", d->help);
        }
}

void sl_metrics_kafka_stats(const char *json, size_t len)
{
        json_t *root = json_loadb(json, len, 0, NULL);
        json_t *brokers, *topics, *b, *t, *p;
        const char *name, *tname, *pname;
        int up = 0;

        if (!root)
                return;
        brokers = json_object_get(root, "brokers");
        json_object_foreach(brokers, name, b)
        {
                const char *st = json_string_value(json_object_get(b, "state"));
                /* the bootstrap placeholders and the internal broker have
                 * nodeid -1 */
                if (json_integer_value(json_object_get(b, "nodeid")) < 0)
                        continue;
                if (st && strcmp(st, "UP") == 0)
                        up++;
        }
        if (json_object_size(brokers))
                sl_metric_set(SL_M_KAFKA_BROKERS_UP, NULL, up);
        name = json_string_value(json_object_get(root, "name"));
        if (name && json_is_integer(json_object_get(root, "replyq")))
                sl_metric_set(SL_M_KAFKA_REPLYQ, SL_LV(name),
                              (double)json_integer_value(
                                  json_object_get(root, "replyq")));
        topics = json_object_get(root, "topics");
        json_object_foreach(topics, tname, t)
        {
                json_object_foreach(json_object_get(t, "partitions"), pname, p)
                {
                        json_t *lag = json_object_get(p, "consumer_lag");
                        if (strcmp(pname, "-1") == 0 || !json_is_integer(lag) ||
                            json_integer_value(lag) < 0)
                                continue;
                        sl_metric_set(SL_M_CONSUMER_LAG, SL_LV(tname, pname),
                                      (double)json_integer_value(lag));
                }
        }
        json_decref(root);
}
