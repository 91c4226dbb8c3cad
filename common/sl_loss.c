/* sl_loss: data loss to retention made loud (sl_loss.h): the gap check
 * each consumer runs on its messages, and the record, counter and
 * readiness that a loss sets until an operator acknowledges it. */
#include "sl_loss.h"
#include "sl_arena.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_util.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACK_CHECK_MS 5000

static pthread_mutex_t loss_lock = PTHREAD_MUTEX_INITIALIZER;
static rd_kafka_t *loss_producer; /* main thread only */
static rd_kafka_t *ack_rk;        /* under loss_lock */
static int64_t pending_msgs;      /* lost, not yet acknowledged */
static int64_t pending_through;   /* acknowledged once the ack group's
                                     committed offset reaches this
                                     (INT64_MAX: never, or not yet) */
static int64_t published_through; /* the highest so far */
static int pending_failed;        /* a record could not be published */
static int64_t ack_checked_ms;
static char pending_what[160]; /* the last loss, for /readyz */

/* A client of sl_loss's own: no statistics (nobody serves its events). */
static rd_kafka_conf_t *quiet_conf(const char *kind)
{
        char errstr[512];
        rd_kafka_conf_t *conf = sl_kafka_conf_new(kind, errstr, sizeof(errstr));

        if (!conf) {
                sl_err("event=loss_client_failed msg=\"%s\"", errstr);
                return NULL;
        }
        rd_kafka_conf_set(conf, "statistics.interval.ms", "0", NULL, 0);
        return conf;
}

/* Records made by sl_loss_record, published by sl_loss_publish (main
 * thread, never inside a librdkafka callback). */
struct queued {
        char *key;
        char *text; /* free()'s: sl_arena_dumps */
};
static struct queued *queue; /* main thread only */
static size_t nqueued, capqueued;

/* Queues the loss record (main thread). 0, or -1 when it could not be
 * made. */
static int enqueue(const char *group, const char *topic, int32_t partition,
                   int64_t first, int64_t count, const char *how)
{
        char when[40], key[512];
        json_t *rec;
        char *text;

        sl_time_format(sl_wall_ms(), when, sizeof(when));
        rec = json_pack("{s:i,s:s,s:s,s:i,s:I,s:I,s:I,s:s,s:s,s:s,s:s}", "v", 1,
                        "group", group, "topic", topic, "partition",
                        (int)partition, "first_offset", (json_int_t)first,
                        "last_offset", (json_int_t)(first + count - 1),
                        "messages", (json_int_t)count, "how", how, "at", when,
                        "role", sl_log_role(), "instance", sl_log_instance());
        /* the workers allocate Jansson's blocks through sl_arena (a
         * header before each): json_dumps' text is not free()'s to take
         * (free() of it aborted the transformer), sl_arena_dumps' copy is */
        text = rec ? sl_arena_dumps(rec, JSON_COMPACT) : NULL;
        json_decref(rec);
        if (!text) {
                sl_err("event=loss_record_failed topic=%s err=encode",
                       SL_LOSS_TOPIC);
                return -1;
        }
        snprintf(key, sizeof(key), "%s/%s/%d", group, topic, (int)partition);
        if (nqueued == capqueued) {
                capqueued = capqueued ? capqueued * 2 : 8;
                queue = sl_realloc(queue, capqueued * sizeof(*queue));
        }
        queue[nqueued].key = sl_strdup(key);
        queue[nqueued].text = text;
        nqueued++;
        return 0;
}

static void queue_clear(void)
{
        for (size_t i = 0; i < nqueued; i++) {
                free(queue[i].key);
                free(queue[i].text);
        }
        nqueued = 0;
}

/* Publishes the queued records and waits for them; the high watermark of
 * the loss topic after them (what an acknowledgement must reach), or -1
 * (a record not published: no acknowledgement can cover it). */
static int64_t publish_queued(void)
{
        char errstr[512];
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        int64_t lo = -1, hi = -1;

        if (!loss_producer) {
                rd_kafka_conf_t *conf = quiet_conf("producer");
                if (!conf)
                        return -1;
                /* takes ownership of conf */
                loss_producer =
                    sl_kafka_producer_new(conf, errstr, sizeof(errstr));
                conf = NULL;
                if (!loss_producer) {
                        sl_err("event=loss_record_failed msg=\"%s\"", errstr);
                        return -1;
                }
        }
        for (size_t i = 0; i < nqueued && !err; i++)
                err = sl_kafka_produce(loss_producer, SL_LOSS_TOPIC, 0,
                                       queue[i].key, strlen(queue[i].key),
                                       queue[i].text, strlen(queue[i].text),
                                       NULL, NULL);
        if (!err && sl_kafka_flush(loss_producer, 10000) > 0)
                err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (!err)
                err = rd_kafka_query_watermark_offsets(
                    loss_producer, SL_LOSS_TOPIC, 0, &lo, &hi, 5000);
        if (err) {
                sl_err("event=loss_record_failed topic=%s err=%s",
                       SL_LOSS_TOPIC, rd_kafka_err2name(err));
                hi = -1;
        }
        return hi;
}

void sl_loss_record(const char *group, const char *topic, int32_t partition,
                    int64_t first, int64_t count, const char *how)
{
        int queued;

        if (count <= 0)
                return;
        sl_err("event=data_lost group=%s topic=%s partition=%d "
               "first_offset=%lld last_offset=%lld messages=%lld how=%s "
               "msg=\"the broker no longer had these messages when they were "
               "to be read (retention); acknowledge with sluice status "
               "--ack-loss\"",
               group, topic, (int)partition, (long long)first,
               (long long)(first + count - 1), (long long)count, how);
        sl_metric_add(SL_M_MESSAGES_LOST, SL_LV(topic), (double)count);
        queued = enqueue(group, topic, partition, first, count, how) == 0;
        pthread_mutex_lock(&loss_lock);
        if (!queued)
                pending_failed = 1; /* shown until the worker restarts */
        pending_msgs += count;
        sl_metric_set(SL_M_LOSS_UNACKED, NULL, (double)pending_msgs);
        /* not acknowledgeable until published (sl_loss_publish) */
        pending_through = INT64_MAX;
        snprintf(pending_what, sizeof(pending_what), "%s[%d] offsets %lld-%lld",
                 topic, (int)partition, (long long)first,
                 (long long)(first + count - 1));
        ack_checked_ms = sl_now_ms(); /* the first check after a while */
        pthread_mutex_unlock(&loss_lock);
}

void sl_loss_publish(void)
{
        int64_t through;

        if (!nqueued)
                return;
        through = publish_queued();
        queue_clear();
        pthread_mutex_lock(&loss_lock);
        /* unpublished: no acknowledgement can cover it; it stays shown
         * until the worker restarts */
        if (through < 0)
                pending_failed = 1;
        pending_through = pending_failed                ? INT64_MAX
                          : through > published_through ? through
                                                        : published_through;
        published_through = pending_through;
        pthread_mutex_unlock(&loss_lock);
}

/* Call with loss_lock held. Whether the ack group's committed offset on
 * the loss topic covers what this process recorded. */
static int acknowledged(void)
{
        rd_kafka_topic_partition_list_t *l;
        int64_t at = -1;

        if (pending_through == INT64_MAX)
                return 0;
        if (!ack_rk) {
                char errstr[512];
                rd_kafka_conf_t *conf = quiet_conf("consumer");
                if (!conf)
                        return 0;
                /* takes ownership of conf; never subscribes: it only reads
                 * the group's committed offset */
                ack_rk = sl_kafka_consumer_new(conf, SL_LOSS_ACK_GROUP, errstr,
                                               sizeof(errstr));
                conf = NULL;
                if (!ack_rk)
                        return 0;
        }
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, SL_LOSS_TOPIC, 0);
        if (rd_kafka_committed(ack_rk, l, 1500) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            !l->elems[0].err)
                at = l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        return at >= pending_through;
}

int sl_loss_ready(char *why, size_t why_size)
{
        int ready;

        pthread_mutex_lock(&loss_lock);
        if (pending_msgs > 0 && sl_now_ms() - ack_checked_ms >= ACK_CHECK_MS) {
                ack_checked_ms = sl_now_ms();
                if (acknowledged()) {
                        sl_notice("event=data_loss_acknowledged messages=%lld",
                                  (long long)pending_msgs);
                        pending_msgs = 0;
                        sl_metric_set(SL_M_LOSS_UNACKED, NULL, 0);
                        pending_through = 0;
                        published_through = 0;
                }
        }
        ready = pending_msgs == 0;
        if (!ready && why)
                snprintf(why, why_size,
                         "data lost: %lld messages never read, last %s "
                         "(sluice status; acknowledge with sluice status "
                         "--ack-loss)",
                         (long long)pending_msgs, pending_what);
        pthread_mutex_unlock(&loss_lock);
        return ready;
}

void sl_loss_shutdown(void)
{
        sl_loss_publish(); /* what the worker's loop had no turn for */
        free(queue);
        queue = NULL;
        capqueued = 0;
        pthread_mutex_lock(&loss_lock);
        if (ack_rk) {
                rd_kafka_destroy(ack_rk);
                ack_rk = NULL;
        }
        pthread_mutex_unlock(&loss_lock);
        if (loss_producer) {
                sl_kafka_flush(loss_producer, 5000);
                rd_kafka_destroy(loss_producer);
                loss_producer = NULL;
        }
}

/* ---- the gap check ---- */

struct gap {
        char *topic;
        int32_t partition;
        int64_t next;    /* < 0: not known yet */
        int64_t lost_to; /* the end of the last loss recorded here: a
                            rewind to a stored offset below it records
                            only what is new */
};

struct sl_gaps {
        char *group;
        struct gap *v;
        size_t n, cap;
        size_t last; /* the entry found last: consecutive messages */
};

struct sl_gaps *sl_gaps_new(const char *group)
{
        struct sl_gaps *g = sl_calloc(1, sizeof(*g));

        g->group = sl_strdup(group);
        return g;
}

void sl_gaps_destroy(struct sl_gaps *g)
{
        if (!g)
                return;
        for (size_t i = 0; i < g->n; i++)
                free(g->v[i].topic);
        free(g->v);
        free(g->group);
        free(g);
}

static struct gap *gap_get(struct sl_gaps *g, const char *topic,
                           int32_t partition)
{
        struct gap *e;

        if (g->last < g->n && g->v[g->last].partition == partition &&
            strcmp(g->v[g->last].topic, topic) == 0)
                return &g->v[g->last];
        for (size_t i = 0; i < g->n; i++) {
                if (g->v[i].partition == partition &&
                    strcmp(g->v[i].topic, topic) == 0) {
                        g->last = i;
                        return &g->v[i];
                }
        }
        if (g->n == g->cap) {
                g->cap = g->cap ? g->cap * 2 : 16;
                g->v = sl_realloc(g->v, g->cap * sizeof(*g->v));
        }
        e = &g->v[g->n];
        e->topic = sl_strdup(topic);
        e->partition = partition;
        e->next = -1;
        e->lost_to = -1;
        g->last = g->n++;
        return e;
}

void sl_gaps_start(struct sl_gaps *g, const char *topic, int32_t partition,
                   int64_t offset)
{
        gap_get(g, topic, partition)->next = offset >= 0 ? offset : -1;
}

void sl_gaps_start_list(struct sl_gaps *g, rd_kafka_t *rk,
                        rd_kafka_topic_partition_list_t *parts, int timeout_ms)
{
        int64_t until = sl_now_ms() + timeout_ms;

        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                int64_t lo = -1, hi = -1;
                int asked = 0;

                if ((tp->offset >= 0 ||
                     tp->offset == RD_KAFKA_OFFSET_BEGINNING) &&
                    sl_now_ms() < until)
                        asked = rd_kafka_query_watermark_offsets(
                                    rk, tp->topic, tp->partition, &lo, &hi,
                                    (int)(until - sl_now_ms())) ==
                                RD_KAFKA_RESP_ERR_NO_ERROR;
                if (asked && tp->offset >= 0 && tp->offset < lo) {
                        struct gap *e = gap_get(g, tp->topic, tp->partition);
                        int64_t from =
                            e->lost_to > tp->offset ? e->lost_to : tp->offset;
                        if (from < lo) {
                                sl_loss_record(g->group, tp->topic,
                                               tp->partition, from, lo - from,
                                               "start_below_earliest");
                                e->lost_to = lo;
                        }
                        tp->offset = lo;
                }
                if (asked && tp->offset == RD_KAFKA_OFFSET_BEGINNING)
                        sl_gaps_start(g, tp->topic, tp->partition, lo);
                else
                        sl_gaps_start(g, tp->topic, tp->partition, tp->offset);
        }
}

int64_t sl_gaps_check(struct sl_gaps *g, rd_kafka_t *rk,
                      const rd_kafka_message_t *rkm)
{
        const char *topic = rd_kafka_topic_name(rkm->rkt);
        struct gap *e = gap_get(g, topic, rkm->partition);
        int64_t expected = e->next, lo = -1, hi = -1, lost;

        e->next = rkm->offset + 1;
        if (expected < 0 || rkm->offset <= expected)
                return 0; /* the first message, in order, or a seek back */
        /* A jump: messages deleted before they were read, or offsets that
         * never held one (compaction, transaction markers). The log start
         * tells: librdkafka's copy from the fetch that returned this
         * message, else the broker's. */
        if (rd_kafka_get_watermark_offsets(rk, topic, rkm->partition, &lo,
                                           &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            lo < 0)
                rd_kafka_query_watermark_offsets(rk, topic, rkm->partition, &lo,
                                                 &hi, 2000);
        if (lo <= expected)
                return 0;
        if (e->lost_to > expected)
                expected = e->lost_to; /* recorded already */
        lost = (lo < rkm->offset ? lo : rkm->offset) - expected;
        if (lost <= 0)
                return 0;
        e->lost_to = expected + lost;
        sl_loss_record(g->group, topic, rkm->partition, expected, lost,
                       "offset_reset");
        return lost;
}
