/* sl_metrics: the process's metrics registry: a fixed catalog of counters,
 * gauges and histograms (one row per metric family, with its help and a
 * short fixed set of label names), series created on first use per label
 * values, thread-safe, rendered in the Prometheus text format 0.0.4.
 *
 * Recording is cheap and always on: a role records whether or not the HTTP
 * server runs, so nothing in the roles depends on configuration. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "sl_util.h"

/* Every metric sluice exports. docs/metrics.md lists them (a unit test
 * checks it does). */
enum sl_metric_id {
        SL_M_INFO,                 /* gauge {role,instance} = 1 */
        SL_M_START_TIME,           /* gauge: process start, unix seconds */
        SL_M_LAST_TICK,            /* gauge: main loop's last turn */
        SL_M_READY,                /* gauge: 1 when /readyz answers 200 */
        SL_M_KAFKA_UP,             /* gauge: broker answered the last probe */
        SL_M_DB_UP,                /* gauge: database answered (loader) */
        SL_M_RECORDS_IN,           /* counter {name} */
        SL_M_RECORDS_OUT,          /* counter {name,outcome} */
        SL_M_ERRORS,               /* counter {kind} */
        SL_M_PAGES,                /* counter {name}: raw pages read/written */
        SL_M_BATCH_SIZE,           /* histogram {name}: messages per batch */
        SL_M_BATCH_SECONDS,        /* histogram {name}: batch latency */
        SL_M_CONSUMER_LAG,         /* gauge {topic,partition} */
        SL_M_KAFKA_BROKERS_UP,     /* gauge: brokers in state UP */
        SL_M_KAFKA_REPLYQ,         /* gauge {client}: events not served */
        SL_M_HTTP_RESPONSES,       /* counter {source,status} */
        SL_M_HTTP_SECONDS,         /* histogram {source} */
        SL_M_HTTP_RETRIES,         /* counter {source} */
        SL_M_RATELIMIT_WAITS,      /* counter {source} */
        SL_M_RATELIMIT_WAIT_SECS,  /* counter {source} */
        SL_M_SYNC_RUNS,            /* counter {source,result} */
        SL_M_SYNC_LAST_SUCCESS,    /* gauge {source}: unix seconds */
        SL_M_FETCH_PAGES_EXPECTED, /* gauge {source}: pages of this sync */
        SL_M_FETCH_PAGES_DONE,     /* gauge {source}: pages done this sync */
        SL_M_MESSAGES_LOST,        /* counter {topic}: never read (sl_loss) */
        SL_M_BACKPRESSURE_SECS,    /* counter {source}: fetcher waited */
        SL_M_LOSS_UNACKED,         /* gauge: lost, not yet acknowledged */
        SL_M_LOAD_TABLE_PARKED,    /* gauge {table}: 1 while parked */
        SL_M_FETCH_DUP_MEMBERS,    /* counter {source}: repeated names */
        SL_M_FETCH_BAD_RECORDS,    /* counter {source,reason}: set aside */
        SL_M_LOOKUPS,              /* counter {lookup,outcome}: answered */
        SL_M_LOOKUP_CACHE,         /* counter {lookup,result}: hit/miss */
        SL_M_LOOKUP_QUOTA_LEFT,    /* gauge {lookup}: requests left */
        SL_M_LOOKUP_WAITS,         /* counter {lookup,reason}: waits */
        /* the process, sampled when /metrics is rendered */
        SL_M_PROC_CPU,     /* counter: user + system CPU seconds */
        SL_M_PROC_RSS,     /* gauge: resident bytes */
        SL_M_PROC_VSIZE,   /* gauge: virtual bytes */
        SL_M_PROC_FDS,     /* gauge: open file descriptors */
        SL_M_PROC_MAX_FDS, /* gauge: RLIMIT_NOFILE soft limit */
        SL_M_PROC_THREADS, /* gauge: threads */
        SL_M_PROC_HEAP,    /* gauge: bytes malloc has handed out */
        SL_M_COUNT
};

enum sl_metric_type { SL_COUNTER, SL_GAUGE, SL_HISTOGRAM };

#define SL_METRIC_MAX_LABELS  3
#define SL_METRIC_MAX_BUCKETS 16

/* One row of the catalog. */
struct sl_metric_def {
        const char *name;
        enum sl_metric_type type;
        const char *labels[SL_METRIC_MAX_LABELS + 1]; /* NULL-terminated */
        const double *buckets; /* histograms: upper bounds, ascending */
        int nbuckets;
        const char *help;
};

/* Borrowed; valid for the process. NULL for an id out of range. */
const struct sl_metric_def *sl_metric_def_get(enum sl_metric_id id);

/* Label values, in the order of the family's label names, as a compound
 * literal: SL_LV("kev", "200"). NULL stands for a family without labels.
 * Missing trailing values render as "". */
#define SL_LV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Counters and gauges: adds v (a counter ignores a negative v). */
void sl_metric_add(enum sl_metric_id id, const char *const *lv, double v);
/* Gauges: sets the value. */
void sl_metric_set(enum sl_metric_id id, const char *const *lv, double v);
/* Histograms: counts one observation. */
void sl_metric_observe(enum sl_metric_id id, const char *const *lv, double v);
/* The current value of a counter or gauge series (0 when absent); for a
 * histogram its count. For tests and progress lines. */
double sl_metric_get(enum sl_metric_id id, const char *const *lv);
/* Drops every series of a family (a gauge whose label set changed). */
void sl_metric_clear(enum sl_metric_id id);

/* Samples the process figures (SL_M_PROC_*) from /proc/self and malloc;
 * sl_metrics_render calls it. 0, or -1 when /proc/self/stat is unreadable
 * (the figures keep their last values). */
int sl_metrics_sample_process(void);

/* Shorthands. */
#define sl_metric_inc(id, lv) sl_metric_add((id), (lv), 1.0)

/* Renders every family into b (appended). Families without labels and
 * without series render a zero sample so that they exist from the start.
 * 0, or -1 when b's cap was reached. */
int sl_metrics_render(struct sl_buf *b);

/* Sets sluice_info, the start time and the first tick (role and instance
 * from sl_log). Idempotent. */
void sl_metrics_process_init(void);

/* Reads one librdkafka statistics document (statistics.interval.ms) into
 * sluice_consumer_lag and sluice_kafka_brokers_up. Bad JSON is ignored. */
void sl_metrics_kafka_stats(const char *json, size_t len);

/* Writes the catalog as a Markdown table (docs/metrics.md's core). */
void sl_metrics_reference(FILE *fp);

#endif
