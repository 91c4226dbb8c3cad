/* test_metrics: the registry's arithmetic, label handling, Prometheus
 * text rendering (escaping, cumulative buckets), librdkafka statistics
 * parsing, the process figures (each moved by what it measures), and that
 * docs/metrics.md lists every metric. */
#include "sl_metrics.h"
#include "sl_util.h"
#include "tap.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int has_line(const char *text, const char *line)
{
        size_t n = strlen(line);

        for (const char *p = text; p && *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                if (len == n && strncmp(p, line, n) == 0)
                        return 1;
                p = nl ? nl + 1 : NULL;
        }
        return 0;
}

static void *hammer(void *arg)
{
        (void)arg;
        for (int i = 0; i < 10000; i++) {
                sl_metric_inc(SL_M_RECORDS_IN, SL_LV("threads"));
                sl_metric_observe(SL_M_BATCH_SIZE, SL_LV("threads"), 3);
        }
        return NULL;
}

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;

static void *parked(void *arg)
{
        (void)arg;
        pthread_mutex_lock(&park_lock);
        pthread_mutex_unlock(&park_lock);
        return NULL;
}

static double proc(enum sl_metric_id id)
{
        return sl_metric_get(id, NULL);
}

/* Each figure must follow what it measures: a thread, descriptors, CPU
 * burnt and the heap (glibc's, or ASan's allocator in the sanitized
 * build). */
static void test_process(void)
{
        double rss, threads, fds, cpu;
        int fd[3];
        pthread_t th;
        volatile unsigned long spin = 0;
        struct timespec t0, t1;

        TAP_INT_EQ(sl_metrics_sample_process(), 0, "process: sampled");
        rss = proc(SL_M_PROC_RSS);
        TAP_OK(rss > 1e6 && rss < 1e10, "process: resident %.0f bytes", rss);
        TAP_OK(proc(SL_M_PROC_VSIZE) >= rss, "process: virtual >= resident");
        TAP_OK(proc(SL_M_PROC_MAX_FDS) >= 64, "process: fd limit %.0f",
               proc(SL_M_PROC_MAX_FDS));

        threads = proc(SL_M_PROC_THREADS);
        pthread_mutex_lock(&park_lock);
        pthread_create(&th, NULL, parked, NULL);
        sl_metrics_sample_process();
        TAP_OK(proc(SL_M_PROC_THREADS) == threads + 1,
               "process: a new thread counts (%.0f -> %.0f)", threads,
               proc(SL_M_PROC_THREADS));
        pthread_mutex_unlock(&park_lock);
        pthread_join(th, NULL);

        fds = proc(SL_M_PROC_FDS);
        for (int i = 0; i < 3; i++)
                fd[i] = open("/dev/null", O_RDONLY);
        sl_metrics_sample_process();
        TAP_OK(fds >= 3 && proc(SL_M_PROC_FDS) == fds + 3,
               "process: 3 descriptors opened count (%.0f -> %.0f)", fds,
               proc(SL_M_PROC_FDS));
        for (int i = 0; i < 3; i++)
                close(fd[i]);
        sl_metrics_sample_process();
        TAP_OK(proc(SL_M_PROC_FDS) == fds, "process: and closed, go");

        cpu = proc(SL_M_PROC_CPU);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        do {
                for (int i = 0; i < 100000; i++)
                        spin += (unsigned long)i;
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
        } while ((double)(t1.tv_sec - t0.tv_sec) +
                     (double)(t1.tv_nsec - t0.tv_nsec) / 1e9 <
                 0.15);
        sl_metrics_sample_process();
        TAP_OK(proc(SL_M_PROC_CPU) >= cpu + 0.1,
               "process: 0.15 CPU s burnt count (%.2f -> %.2f)", cpu,
               proc(SL_M_PROC_CPU));

        {
                size_t big = 16u << 20;
                char *p;
                double before, during;

                sl_metrics_sample_process();
                before = proc(SL_M_PROC_HEAP);
                p = sl_malloc(big);
                memset(p, 1, big);
                sl_metrics_sample_process();
                during = proc(SL_M_PROC_HEAP);
                TAP_OK(during >= before + (double)big,
                       "process: 16 MiB malloc'd count in the heap (%.0f -> "
                       "%.0f)",
                       before, during);
                TAP_OK(proc(SL_M_PROC_RSS) >= rss + (double)big / 2,
                       "process: and, touched, in the resident set");
                free(p);
                sl_metrics_sample_process();
                TAP_OK(proc(SL_M_PROC_HEAP) <= during - (double)big,
                       "process: freed, they leave the heap figure");
        }
}

int main(void)
{
        struct sl_buf b;
        pthread_t th[4];
        char *doc;
        const char *stats;

        sl_metric_add(SL_M_RECORDS_IN, SL_LV("kev"), 3);
        sl_metric_add(SL_M_RECORDS_IN, SL_LV("kev"), 2);
        sl_metric_add(SL_M_RECORDS_IN, SL_LV("nvd"), 7);
        TAP_OK(sl_metric_get(SL_M_RECORDS_IN, SL_LV("kev")) == 5,
               "a counter adds per label set");
        TAP_OK(sl_metric_get(SL_M_RECORDS_IN, SL_LV("nvd")) == 7,
               "label sets are separate series");
        sl_metric_add(SL_M_RECORDS_IN, SL_LV("kev"), -4);
        TAP_OK(sl_metric_get(SL_M_RECORDS_IN, SL_LV("kev")) == 5,
               "a counter never goes down");
        sl_metric_set(SL_M_FETCH_PAGES_DONE, SL_LV("kev"), 9);
        sl_metric_set(SL_M_FETCH_PAGES_DONE, SL_LV("kev"), 4);
        TAP_OK(sl_metric_get(SL_M_FETCH_PAGES_DONE, SL_LV("kev")) == 4,
               "a gauge is set");
        sl_metric_set(SL_M_RECORDS_IN, SL_LV("kev"), 100);
        TAP_OK(sl_metric_get(SL_M_RECORDS_IN, SL_LV("kev")) == 5,
               "set is refused on a counter");

        sl_metric_observe(SL_M_BATCH_SECONDS, SL_LV("t"), 0.003);
        sl_metric_observe(SL_M_BATCH_SECONDS, SL_LV("t"), 0.2);
        sl_metric_observe(SL_M_BATCH_SECONDS, SL_LV("t"), 0.2);
        sl_metric_observe(SL_M_BATCH_SECONDS, SL_LV("t"), 1000);
        sl_metric_add(SL_M_ERRORS, SL_LV("we\"ird\\kind\nx"), 1);
        sl_metric_add(SL_M_RECORDS_OUT, SL_LV("kev", "inserted"), 0.5);

        stats = "{\"brokers\":{\"a:1/1\":{\"nodeid\":1,\"state\":\"UP\"},"
                "\"b:2/2\":{\"nodeid\":2,\"state\":\"DOWN\"},"
                "\"GroupCoordinator\":{\"nodeid\":-1,\"state\":\"UP\"}},"
                "\"topics\":{\"raw.kev\":{\"partitions\":{"
                "\"0\":{\"consumer_lag\":12},\"1\":{\"consumer_lag\":-1},"
                "\"-1\":{\"consumer_lag\":5}}}}}";
        sl_metrics_kafka_stats(stats, strlen(stats));
        sl_metrics_kafka_stats("{not json", 9);
        TAP_OK(sl_metric_get(SL_M_KAFKA_BROKERS_UP, NULL) == 1,
               "statistics: brokers UP counted, internal ones not");
        TAP_OK(sl_metric_get(SL_M_CONSUMER_LAG, SL_LV("raw.kev", "0")) == 12,
               "statistics: consumer lag per partition");

        for (int i = 0; i < 4; i++)
                pthread_create(&th[i], NULL, hammer, NULL);
        for (int i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        TAP_OK(sl_metric_get(SL_M_RECORDS_IN, SL_LV("threads")) == 40000,
               "4 threads x 10000 increments lose none");
        TAP_OK(sl_metric_get(SL_M_BATCH_SIZE, SL_LV("threads")) == 40000,
               "histogram count under contention");

        test_process();

        sl_buf_init(&b, 0);
        TAP_INT_EQ(sl_metrics_render(&b), 0, "render succeeds");
        TAP_OK(has_line(b.data, "# TYPE process_cpu_seconds_total counter"),
               "the process figures render with their types");
        TAP_OK(strstr(b.data, "\nprocess_resident_memory_bytes ") &&
                   strstr(b.data, "\nsluice_heap_in_use_bytes ") &&
                   strstr(b.data, "\nprocess_open_fds "),
               "and a sample each, sampled by the render itself");
        TAP_OK(has_line(b.data, "# TYPE sluice_records_in_total counter"),
               "TYPE line for a counter");
        TAP_OK(has_line(b.data, "sluice_records_in_total{name=\"kev\"} 5"),
               "counter sample with its label");
        TAP_OK(has_line(b.data, "sluice_records_out_total{name=\"kev\",outcome="
                                "\"inserted\"} 0.5"),
               "two labels, fractional value");
        TAP_OK(has_line(b.data,
                        "sluice_errors_total{kind=\"we\\\"ird\\\\kind\\nx\"} "
                        "1"),
               "label values escape quote, backslash, newline");
        TAP_OK(has_line(b.data, "sluice_batch_duration_seconds_bucket{name="
                                "\"t\",le=\"0.005\"} 1"),
               "first bucket");
        TAP_OK(has_line(b.data, "sluice_batch_duration_seconds_bucket{name="
                                "\"t\",le=\"0.25\"} 3"),
               "buckets are cumulative");
        TAP_OK(has_line(b.data, "sluice_batch_duration_seconds_bucket{name="
                                "\"t\",le=\"60\"} 3"),
               "an observation above the last bound is only in +Inf");
        TAP_OK(has_line(b.data, "sluice_batch_duration_seconds_bucket{name="
                                "\"t\",le=\"+Inf\"} 4"),
               "+Inf bucket equals the count");
        TAP_OK(has_line(b.data,
                        "sluice_batch_duration_seconds_count{name=\"t\"} 4"),
               "histogram count");
        TAP_OK(has_line(b.data, "sluice_batch_duration_seconds_sum{name=\"t\"}"
                                " 1000.403"),
               "histogram sum");
        TAP_OK(has_line(b.data, "sluice_kafka_up 0"),
               "an unlabelled family renders a zero sample before use");
        TAP_OK(!strstr(b.data, "sluice_http_responses_total{"),
               "a labelled family without series renders no sample");
        sl_buf_free(&b);

        sl_metric_clear(SL_M_CONSUMER_LAG);
        TAP_OK(sl_metric_get(SL_M_CONSUMER_LAG, SL_LV("raw.kev", "0")) == 0,
               "clear drops a family's series");

        doc = sl_file_read("docs/metrics.md", NULL, NULL, 0);
        TAP_OK(doc != NULL, "docs/metrics.md is readable");
        for (int id = 0; doc && id < SL_M_COUNT; id++) {
                const struct sl_metric_def *d = sl_metric_def_get(id);
                char needle[128];
                snprintf(needle, sizeof(needle), "`%s`", d->name);
                TAP_OK(strstr(doc, needle) != NULL, "docs/metrics.md lists %s",
                       d->name);
        }
        free(doc);
        return TAP_DONE();
}
