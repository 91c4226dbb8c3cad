/* load_worker: wiring of consumer, batches and PostgreSQL, and the policy
 * for faults: any failed flush rolls back, drops every open batch, and
 * rewinds the assignment to sluice.offsets, so nothing is lost and nothing
 * counts twice.
 *
 * The loader writes through --connections lanes (default 2), each its own
 * PostgreSQL connection and flush thread. A partition belongs to one lane
 * (partition number modulo the lanes), so a key, which never leaves its
 * partition, is written by one connection in order, and the lanes never
 * wait for each other's rows: PostgreSQL works on two batches at once,
 * on two cores, as it would for two loaders of the group. Each lane's
 * batch is written by its flush thread while this thread goes on
 * consuming and parsing, so that the loader's own work runs beside
 * PostgreSQL's instead of after it. A lane has one batch at most in
 * flight and one cut batch waiting behind it (parked), which starts as
 * soon as the flight ends: this thread never waits on one lane while
 * another sits idle, and parses the next batch while both write. A lane's
 * batches commit in the order they were cut; this thread touches the
 * connections (and the catalog caches) only when no batch is in flight
 * on any lane. */
#include "load_worker.h"
#include "sl_http.h"
#include "sl_metrics.h"
#include "load_batch.h"
#include "load_schema.h"
#include "roles.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_loss.h"
#include "sl_pg.h"
#include "sl_util.h"

#include <inttypes.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The batch the flush thread is writing. */
struct flight {
        struct load_ctx *ctx;
        struct load_batch *b; /* owned while in flight */
        struct load_stats st;
        enum sl_status rc;
        int64_t t0;
        pthread_t tid;
        int running;     /* a batch is in flight (joined by flush_wait) */
        int threaded;    /* ... on its own thread (else it ran inline) */
        atomic_int done; /* set by the thread as it ends */
        char err[1024];
        pthread_mutex_t *mu; /* the worker's, signalled as it ends */
        pthread_cond_t *ended;
};

/* A partition whose end the consumer has reached (PARTITION_EOF) and
 * that has given no message since. */
struct at_end {
        char *topic;
        int32_t partition;
};

/* A table the loader cannot write (missing from the schema, no unique
 * index on the key): a flush answered SL_ERR_FATAL, or the start found
 * it so. Its partitions are paused and what was held of them dropped
 * (it comes again from sluice.offsets), so the other tables keep
 * landing; the catalog is looked at again after a backoff, PARK_FIRST_MS
 * doubling to PARK_MAX_MS, and once the table is there its partitions
 * are sought back to sluice.offsets and resumed (probing). The entry
 * goes when a batch of it commits; a probe that fails again parks it
 * with the backoff doubled. */
struct parked {
        char *topic;
        char *table;
        char *why;
        int64_t since_ms; /* wall clock, parked at */
        int64_t next_ms;  /* next look at the catalog */
        int64_t backoff_ms;
        int probing; /* resumed, no batch committed yet */
};

#define PARK_FIRST_MS 5000
#define PARK_MAX_MS   60000

/* A connection and the batch it is writing. */
struct lane {
        struct load_ctx ctx;
        struct flight fl;
        struct load_batch *next; /* cut, waiting for the flight (owned) */
};

struct worker {
        const struct load_opts *o;
        struct lane *lanes;
        int nlanes;
        rd_kafka_t *rk;
        struct load_batch **batches; /* one per topic and lane */
        int nbatches;
        int need_rewind;
        struct sl_gaps *gaps; /* messages lost to retention (sl_loss.h) */
        int64_t backoff_ms;
        struct at_end *ends; /* partitions read to their end */
        int nends;
        struct parked *parked; /* tables it cannot write, and probes */
        int nparked;
        int parked_dirty;   /* readiness and sluice.parked_tables are behind */
        int64_t publish_ms; /* ... and are written again no sooner */
        pthread_mutex_t mu; /* with ended: a flush thread has ended */
        pthread_cond_t ended;
};

static struct load_batch *batch_for(struct worker *w, const char *topic,
                                    int32_t partition)
{
        int lane = (int)(partition % w->nlanes);

        if (lane < 0)
                lane = 0;
        for (int i = 0; i < w->nbatches; i++)
                if (w->batches[i]->lane == lane &&
                    strcmp(w->batches[i]->topic, topic) == 0)
                        return w->batches[i];
        w->batches = sl_realloc(w->batches, sizeof(*w->batches) *
                                                (size_t)(w->nbatches + 1));
        w->batches[w->nbatches] = load_batch_new(topic);
        w->batches[w->nbatches]->lane = lane;
        return w->batches[w->nbatches++];
}

static void forget_tables(struct worker *w)
{
        for (int l = 0; l < w->nlanes; l++)
                load_ctx_forget_tables(&w->lanes[l].ctx);
}

static void ends_clear(struct worker *w)
{
        for (int i = 0; i < w->nends; i++)
                free(w->ends[i].topic);
        free(w->ends);
        w->ends = NULL;
        w->nends = 0;
}

/* Notes that a partition is (at_end) or is no longer at its end. */
static void ends_mark(struct worker *w, const char *topic, int32_t partition,
                      int at_end)
{
        for (int i = 0; i < w->nends; i++) {
                if (w->ends[i].partition != partition ||
                    strcmp(w->ends[i].topic, topic) != 0)
                        continue;
                if (!at_end) {
                        free(w->ends[i].topic);
                        w->ends[i] = w->ends[--w->nends];
                }
                return;
        }
        if (!at_end)
                return;
        w->ends =
            sl_realloc(w->ends, sizeof(*w->ends) * (size_t)(w->nends + 1));
        w->ends[w->nends].topic = sl_strdup(topic);
        w->ends[w->nends].partition = partition;
        w->nends++;
}

static int topic_parked(struct worker *w, const char *topic);

/* Whether every assigned partition has been read to its end: nothing
 * more is there to wait for, so lingering would only add latency. */
static int caught_up(struct worker *w)
{
        rd_kafka_topic_partition_list_t *a = NULL;
        int all;

        if (rd_kafka_assignment(w->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return 0;
        all = a->cnt > 0;
        for (int i = 0; i < a->cnt && all; i++) {
                int found = topic_parked(w, a->elems[i].topic); /* paused */
                for (int k = 0; k < w->nends && !found; k++)
                        found =
                            w->ends[k].partition == a->elems[i].partition &&
                            strcmp(w->ends[k].topic, a->elems[i].topic) == 0;
                all = found;
        }
        rd_kafka_topic_partition_list_destroy(a);
        return all;
}

static void discard_all(struct worker *w)
{
        for (int i = 0; i < w->nbatches; i++)
                load_batch_clear(w->batches[i]);
        for (int l = 0; l < w->nlanes; l++) {
                load_batch_destroy(w->lanes[l].next);
                w->lanes[l].next = NULL;
        }
}

/* After any failure: nothing in memory is trusted any more. */
static void fail_over(struct worker *w, const char *why)
{
        char q[1200];

        sl_err("event=load_failed action=rollback_and_rewind msg=%s",
               sl_log_quote(why, q, sizeof(q)));
        discard_all(w);
        ends_clear(w);
        forget_tables(w);
        w->need_rewind = 1;
}

static int offsets_fill(struct worker *w,
                        rd_kafka_topic_partition_list_t *parts);
static int any_running(struct worker *w);

static struct parked *parked_get(struct worker *w, const char *topic)
{
        for (int i = 0; i < w->nparked; i++)
                if (strcmp(w->parked[i].topic, topic) == 0)
                        return &w->parked[i];
        return NULL;
}

/* Whether the topic's messages are dropped: its table is parked. */
static int topic_parked(struct worker *w, const char *topic)
{
        struct parked *p = w->nparked ? parked_get(w, topic) : NULL;

        return p && !p->probing;
}

/* The assigned partitions of topic. New; free with
 * rd_kafka_topic_partition_list_destroy(); NULL when none. */
static rd_kafka_topic_partition_list_t *topic_parts(struct worker *w,
                                                    const char *topic)
{
        rd_kafka_topic_partition_list_t *a = NULL, *parts = NULL;

        if (rd_kafka_assignment(w->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return NULL;
        for (int i = 0; i < a->cnt; i++) {
                if (strcmp(a->elems[i].topic, topic) != 0)
                        continue;
                if (!parts)
                        parts = rd_kafka_topic_partition_list_new(a->cnt);
                rd_kafka_topic_partition_list_add(parts, topic,
                                                  a->elems[i].partition);
        }
        rd_kafka_topic_partition_list_destroy(a);
        return parts;
}

/* Drops what is held of topic: its open batches and those parked
 * behind a flight (a flight of it ends on its own). */
static void drop_topic(struct worker *w, const char *topic)
{
        for (int i = 0; i < w->nbatches; i++)
                if (strcmp(w->batches[i]->topic, topic) == 0)
                        load_batch_clear(w->batches[i]);
        for (int l = 0; l < w->nlanes; l++) {
                struct lane *ln = &w->lanes[l];
                if (ln->next && strcmp(ln->next->topic, topic) == 0) {
                        load_batch_destroy(ln->next);
                        ln->next = NULL;
                }
        }
}

/* Parks topic's table (see struct parked): pauses its partitions and
 * drops what is held of them. A table parked already stays as it is. */
static void park(struct worker *w, const char *topic, const char *table,
                 const char *why)
{
        struct parked *p = parked_get(w, topic);
        rd_kafka_topic_partition_list_t *parts;
        char q[1100];

        if (p && !p->probing)
                return; /* a batch cut before it was parked */
        if (!p) {
                w->parked = sl_realloc(w->parked, sizeof(*w->parked) *
                                                      (size_t)(w->nparked + 1));
                p = &w->parked[w->nparked++];
                memset(p, 0, sizeof(*p));
                p->topic = sl_strdup(topic);
                p->table = sl_strdup(table);
                p->backoff_ms = PARK_FIRST_MS;
        } else {
                p->backoff_ms = p->backoff_ms * 2 > PARK_MAX_MS
                                    ? PARK_MAX_MS
                                    : p->backoff_ms * 2;
        }
        free(p->why);
        p->why = sl_strdup(why);
        p->probing = 0;
        p->since_ms = sl_wall_ms();
        p->next_ms = sl_now_ms() + p->backoff_ms;
        w->parked_dirty = 1;
        sl_warn("event=table_parked table=%s topic=%s recheck_s=%lld msg=%s",
                table, topic, (long long)(p->backoff_ms / 1000),
                sl_log_quote(why, q, sizeof(q)));
        sl_metric_set(SL_M_LOAD_TABLE_PARKED, SL_LV(table), 1);
        parts = topic_parts(w, topic);
        if (parts) {
                rd_kafka_pause_partitions(w->rk, parts);
                rd_kafka_topic_partition_list_destroy(parts);
        }
        drop_topic(w, topic);
}

/* A batch of topic committed: a probing table is writable again. */
static void parked_landed(struct worker *w, const char *topic)
{
        struct parked *p = w->nparked ? parked_get(w, topic) : NULL;

        if (!p || !p->probing)
                return;
        sl_notice("event=table_unparked table=%s topic=%s", p->table, p->topic);
        free(p->topic);
        free(p->table);
        free(p->why);
        *p = w->parked[--w->nparked];
}

/* Pauses the partitions of parts whose table is parked (a new
 * assignment). */
static void pause_parked(struct worker *w,
                         const rd_kafka_topic_partition_list_t *parts)
{
        rd_kafka_topic_partition_list_t *pause;

        if (!w->nparked)
                return;
        pause = rd_kafka_topic_partition_list_new(parts->cnt);
        for (int i = 0; i < parts->cnt; i++)
                if (topic_parked(w, parts->elems[i].topic))
                        rd_kafka_topic_partition_list_add(
                            pause, parts->elems[i].topic,
                            parts->elems[i].partition);
        if (pause->cnt > 0)
                rd_kafka_pause_partitions(w->rk, pause);
        rd_kafka_topic_partition_list_destroy(pause);
}

/* Seeks the parked topic's partitions back to sluice.offsets and
 * resumes them. 0, or -1 (it stays parked) when the database failed. */
static int unpark(struct worker *w, struct parked *p)
{
        rd_kafka_topic_partition_list_t *parts = topic_parts(w, p->topic);
        rd_kafka_error_t *error = NULL;
        int rc = -1;

        if (parts && offsets_fill(w, parts) < 0)
                goto out;
        if (parts) {
                rd_kafka_resume_partitions(w->rk, parts);
                /* after the resume: what was fetched before it is
                 * outdated by the seek */
                error = rd_kafka_seek_partitions(w->rk, parts, 10000);
        }
        if (error) {
                sl_warn("event=seek_failed topic=%s err=%s", p->topic,
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                goto out;
        }
        p->probing = 1;
        w->parked_dirty = 1;
        sl_metric_set(SL_M_LOAD_TABLE_PARKED, SL_LV(p->table), 0);
        sl_notice("event=table_resumed table=%s topic=%s partitions=%d",
                  p->table, p->topic, parts ? parts->cnt : 0);
        rc = 0;
out:
        if (rc < 0 && parts)
                rd_kafka_pause_partitions(w->rk, parts);
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        return rc;
}

/* Says which tables are parked and why: /readyz answers 503 naming them,
 * and sluice.parked_tables (read by sluice status) holds this loader's
 * rows, refreshed at each look. 0, or -1 when the database failed (tried
 * again on the next turn). */
static int parked_publish(struct worker *w)
{
        const char *params[6] = {w->o->group, sl_log_instance()};
        PGconn *conn = w->lanes[0].ctx.conn;
        struct sl_buf b;
        PGresult *res;
        int rc = -1;

        sl_buf_init(&b, 4096);
        for (int i = 0; i < w->nparked; i++)
                if (!w->parked[i].probing)
                        sl_buf_printf(&b, "%stable %s parked: %s",
                                      b.len ? "; " : "", w->parked[i].table,
                                      w->parked[i].why);
        sl_buf_append(&b, "", 1);
        sl_http_set_degraded(b.data);
        sl_buf_free(&b);
        res = PQexecParams(conn,
                           "DELETE FROM sluice.parked_tables "
                           "WHERE consumer_group = $1 AND instance = $2",
                           2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                goto out;
        for (int i = 0; i < w->nparked; i++) {
                char since[32];

                if (w->parked[i].probing)
                        continue;
                snprintf(since, sizeof(since), "%.3f",
                         (double)w->parked[i].since_ms / 1e3);
                params[2] = w->parked[i].table;
                params[3] = w->parked[i].topic;
                params[4] = w->parked[i].why;
                params[5] = since;
                PQclear(res);
                res = PQexecParams(
                    conn,
                    "INSERT INTO sluice.parked_tables (consumer_group, "
                    "instance, table_name, topic, reason, parked_at) "
                    "VALUES ($1, $2, $3, $4, $5, to_timestamp($6::float8)) "
                    "ON CONFLICT (consumer_group, instance, table_name) DO "
                    "UPDATE SET reason = EXCLUDED.reason, checked_at = now()",
                    6, NULL, params, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_COMMAND_OK)
                        goto out;
        }
        rc = 0;
out:
        if (rc < 0) {
                char q[600];
                sl_warn("event=parked_record_failed msg=%s",
                        sl_log_quote(PQresultErrorMessage(res), q, sizeof(q)));
        }
        PQclear(res);
        return rc;
}

/* Looks again at the parked tables that are due, once no batch is in
 * flight (this thread then owns the connections): a table that is there
 * now, with a unique index, is resumed; else the backoff doubles. */
static void parked_tick(struct worker *w)
{
        int64_t now = sl_now_ms();

        if ((!w->nparked && !w->parked_dirty) || any_running(w))
                return;
        for (int i = 0; i < w->nparked; i++) {
                struct parked *p = &w->parked[i];
                struct load_table *t;
                enum sl_status st;
                char err[512], q[600];

                if (p->probing || now < p->next_ms)
                        continue;
                /* the catalog as it is now, not as cached */
                forget_tables(w);
                t = load_table_get(w->lanes[0].ctx.conn, p->table, &st, err,
                                   sizeof(err));
                if (t && t->nidx == 0) {
                        snprintf(err, sizeof(err),
                                 "table %s has no unique index on its "
                                 "coalesce columns (none at all): create "
                                 "one",
                                 p->table);
                        st = SL_ERR_RECORD;
                }
                if (!t && st == SL_ERR_RETRY) {
                        /* the database's trouble, met by the batches */
                        p->next_ms = now + PARK_FIRST_MS;
                } else if (st != SL_OK) {
                        p->backoff_ms = p->backoff_ms * 2 > PARK_MAX_MS
                                            ? PARK_MAX_MS
                                            : p->backoff_ms * 2;
                        p->next_ms = now + p->backoff_ms;
                        free(p->why);
                        p->why = sl_strdup(err);
                        sl_info("event=table_still_parked table=%s "
                                "recheck_s=%lld msg=%s",
                                p->table, (long long)(p->backoff_ms / 1000),
                                sl_log_quote(err, q, sizeof(q)));
                } else if (unpark(w, p) < 0) {
                        p->next_ms = now + PARK_FIRST_MS;
                }
                load_table_destroy(t);
                w->parked_dirty = 1;
        }
        if (w->parked_dirty && now >= w->publish_ms) {
                if (parked_publish(w) == 0)
                        w->parked_dirty = 0;
                else /* the database's trouble: not a warning a turn */
                        w->publish_ms = now + PARK_FIRST_MS;
        }
}

/* Metrics of a committed batch (sl_metrics; docs/metrics.md). */
static void count_batch(const char *table, const struct load_stats *st,
                        int64_t ms)
{
        const char *outcome[] = {"inserted", "updated",  "unchanged",
                                 "deleted",  "rejected", "superseded"};
        long v[] = {st->inserted, st->updated,  st->unchanged,
                    st->deleted,  st->rejected, st->superseded};

        sl_metric_add(SL_M_RECORDS_IN, SL_LV(table), (double)st->messages);
        for (int i = 0; i < 6; i++)
                sl_metric_add(SL_M_RECORDS_OUT, SL_LV(table, outcome[i]),
                              (double)v[i]);
        sl_metric_observe(SL_M_BATCH_SIZE, SL_LV(table), (double)st->messages);
        sl_metric_observe(SL_M_BATCH_SECONDS, SL_LV(table), (double)ms / 1e3);
}

static void *flush_thread(void *arg)
{
        struct flight *fl = arg;

        fl->rc =
            load_batch_flush(fl->ctx, fl->b, &fl->st, fl->err, sizeof(fl->err));
        /* freeing the envelopes is work too: done here, beside the
         * consume loop rather than in it */
        load_batch_clear(fl->b);
        pthread_mutex_lock(fl->mu);
        atomic_store(&fl->done, 1);
        pthread_cond_broadcast(fl->ended);
        pthread_mutex_unlock(fl->mu);
        return NULL;
}

/* Joins the lane's batch in flight, if any: metrics after a commit. 0,
 * or -1 when it failed (its error in why). A batch whose table cannot be
 * written parks the table and is not a failure. */
static int lane_join(struct worker *w, struct lane *l, char *why,
                     size_t why_size)
{
        struct flight *fl = &l->fl;
        int rc = 0;

        if (!fl->running)
                return 0;
        if (fl->threaded)
                pthread_join(fl->tid, NULL);
        fl->running = 0;
        if (fl->rc == SL_ERR_FATAL) {
                park(w, fl->b->topic, fl->b->table, fl->err);
        } else if (fl->rc != SL_OK) {
                sl_metric_inc(SL_M_ERRORS, SL_LV("db"));
                snprintf(why, why_size, "%s", fl->err);
                rc = -1;
        } else if (fl->st.messages) {
                count_batch(fl->b->table, &fl->st, sl_now_ms() - fl->t0);
                parked_landed(w, fl->b->topic);
        }
        load_batch_destroy(fl->b);
        fl->b = NULL;
        return rc;
}

/* Joins the batches in flight of the lanes from..to, and when any of them
 * failed, the other lanes' too, then fails over once: fail_over() drops
 * what every lane holds (their catalog caches among it), which must not
 * happen under a flush thread still writing. 0, or -1 after a fail-over. */
static int lanes_settle(struct worker *w, int from, int to)
{
        char why[1024] = "", other[1024];
        int failed = 0, committed = 0;

        for (int l = from; l < to; l++) {
                int ran = w->lanes[l].fl.running;
                if (lane_join(w, &w->lanes[l], why, sizeof(why)) < 0)
                        failed = 1;
                else
                        committed |= ran;
        }
        if (!failed) {
                if (committed)
                        w->backoff_ms = 0;
                return 0;
        }
        for (int l = 0; l < w->nlanes; l++)
                if (lane_join(w, &w->lanes[l], other, sizeof(other)) < 0) {
                        char q[1100];
                        sl_warn("event=lane_failed lane=%d msg=%s", l,
                                sl_log_quote(other, q, sizeof(q)));
                }
        fail_over(w, why);
        return -1;
}

/* Waits for the lane's batch in flight, if any, and settles it. */
static int lane_wait(struct worker *w, struct lane *l)
{
        int i = (int)(l - w->lanes);

        return lanes_settle(w, i, i + 1);
}

static void lane_start(struct worker *w, struct lane *l, struct load_batch *b);

/* Settles the lanes whose flight has ended and starts their parked
 * batches. 0, or -1 after a fail-over. */
static int advance(struct worker *w)
{
        for (int l = 0; l < w->nlanes; l++) {
                struct lane *ln = &w->lanes[l];
                struct load_batch *b;

                if (ln->fl.running && atomic_load(&ln->fl.done) &&
                    lane_wait(w, ln) < 0)
                        return -1;
                if (ln->fl.running || !ln->next)
                        continue;
                b = ln->next;
                ln->next = NULL;
                lane_start(w, ln, b);
        }
        return 0;
}

/* Blocks until some lane's flight has ended (one must be running). */
static void wait_any(struct worker *w)
{
        pthread_mutex_lock(&w->mu);
        for (;;) {
                int ended = 0;
                for (int l = 0; l < w->nlanes; l++)
                        ended |= w->lanes[l].fl.running &&
                                 atomic_load(&w->lanes[l].fl.done);
                if (ended)
                        break;
                pthread_cond_wait(&w->ended, &w->mu);
        }
        pthread_mutex_unlock(&w->mu);
}

static int any_running(struct worker *w)
{
        for (int l = 0; l < w->nlanes; l++)
                if (w->lanes[l].fl.running)
                        return 1;
        return 0;
}

/* Whether a lane has a parked batch (the consume loop then polls briefly,
 * to start it as soon as the flight ends). */
static int any_parked(struct worker *w)
{
        for (int l = 0; l < w->nlanes; l++)
                if (w->lanes[l].next)
                        return 1;
        return 0;
}

/* Writes every batch in flight and parked, and settles them. */
static int flush_wait(struct worker *w)
{
        for (;;) {
                int running = 0;

                if (advance(w) < 0)
                        return -1;
                for (int l = 0; l < w->nlanes; l++)
                        running |= w->lanes[l].fl.running;
                if (!running)
                        return 0;
                wait_any(w);
        }
}

/* Hands batch b to the idle lane l's flush thread. */
static void lane_start(struct worker *w, struct lane *l, struct load_batch *b)
{
        struct flight *fl = &l->fl;
        sigset_t all, old;

        memset(&fl->st, 0, sizeof(fl->st));
        fl->ctx = &l->ctx;
        fl->b = b;
        fl->t0 = sl_now_ms();
        fl->mu = &w->mu;
        fl->ended = &w->ended;
        atomic_store(&fl->done, 0);
        fl->running = 1;
        /* SIGTERM and SIGINT stay with this thread, which acts on them */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        fl->threaded = pthread_create(&fl->tid, NULL, flush_thread, fl) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!fl->threaded)
                flush_thread(fl);
}

/* Cuts batch i (its topic and lane get a new empty batch) and hands it to
 * its lane: at once when the lane is idle, else parked behind the flight;
 * when a batch is parked already, waits for lanes to end until one of
 * those frees. 0, or -1 when a batch in flight failed (batch i is then
 * dropped with the others). */
static int flush_one(struct worker *w, int i)
{
        struct lane *l = &w->lanes[w->batches[i]->lane];
        struct load_batch *b;

        for (;;) {
                if (advance(w) < 0)
                        return -1;
                if (!l->fl.running || !l->next)
                        break;
                wait_any(w);
        }
        b = w->batches[i];
        if (b->n == 0)
                return 0;
        w->batches[i] = load_batch_new(b->topic);
        w->batches[i]->lane = b->lane;
        if (l->fl.running)
                l->next = b;
        else
                lane_start(w, l, b);
        return 0;
}

/* Memory: many tables each filling a batch below its own limits could
 * together hold any amount (a batch per table and lane). Over
 * --pending-bytes in all, the largest batches are cut early, largest
 * first, until the rest fit; flush_one waits for a lane when it must,
 * which holds the consume loop back. */
static int cap_pending(struct worker *w)
{
        for (;;) {
                size_t total = 0, most = 0;
                int big = -1;

                for (int i = 0; i < w->nbatches; i++) {
                        struct load_batch *b = w->batches[i];
                        total += b->bytes;
                        if (b->n > 0 && b->bytes > most) {
                                most = b->bytes;
                                big = i;
                        }
                }
                if (big < 0 || total <= (size_t)w->o->pending_bytes)
                        return 0;
                sl_debug("event=pending_cap table=%s bytes=%zu pending=%zu",
                         w->batches[big]->table, most, total);
                if (flush_one(w, big) < 0)
                        return -1;
        }
}

/* Hands over the batches that are full or old enough (all of them when
 * the consumer has caught up); with force, all of them, and waits until
 * they are written. A batch that is only old enough keeps filling while
 * another of its lane is in flight: it could not be written sooner. */
static int flush_due(struct worker *w, int force, int caught)
{
        int64_t now = sl_now_ms();

        if (advance(w) < 0)
                return -1;
        for (int i = 0; i < w->nbatches; i++) {
                struct load_batch *b = w->batches[i];
                int full = (long)b->n >= w->o->batch_rows ||
                           (long)b->bytes >= w->o->batch_bytes;

                if (b->n == 0)
                        continue;
                if (!force && !caught && !full &&
                    (now - b->opened_ms < w->o->linger_ms ||
                     w->lanes[b->lane].fl.running))
                        continue;
                if (flush_one(w, i) < 0)
                        return -1;
        }
        if (!force && cap_pending(w) < 0)
                return -1;
        return force ? flush_wait(w) : 0;
}

/* Makes sure every lane's connection is usable, reconnecting those that
 * are not, once no batch is in flight. */
static int db_ensure(struct worker *w)
{
        char err[1024], q[1100];

        flush_wait(w);
        for (int l = 0; l < w->nlanes; l++) {
                struct load_ctx *ctx = &w->lanes[l].ctx;

                if (ctx->conn && PQstatus(ctx->conn) == CONNECTION_OK &&
                    PQtransactionStatus(ctx->conn) == PQTRANS_IDLE)
                        continue;
                PQfinish(ctx->conn);
                ctx->conn = sl_pg_connect(err, sizeof(err));
                load_ctx_forget_tables(ctx);
                if (!ctx->conn) {
                        sl_warn("event=db_reconnect_failed lane=%d msg=%s", l,
                                sl_log_quote(err, q, sizeof(q)));
                        return -1;
                }
                sl_notice("event=db_reconnected lane=%d", l);
        }
        return 0;
}

/* Partitions still at RD_KAFKA_OFFSET_BEGINNING start at their low
 * watermark (sl_kafka_resolve_beginnings): with the logical offset, 7 of 8
 * partitions of a fresh group started fetching about a second after the
 * first in the bench, and one load run in four took 1.8 s instead of 1.0.
 * Within 2 s in all. */
static void beginnings(struct worker *w, rd_kafka_topic_partition_list_t *parts)
{
        int asked, found;

        found = sl_kafka_resolve_beginnings(w->rk, parts, 2000, &asked);
        if (asked > 0)
                sl_debug("event=beginnings asked=%d found=%d", asked, found);
}

/* Sets each partition's offset to the one stored in sluice.offsets (the
 * beginning when none is stored). 0, or -1 when the database failed. */
static int offsets_fill(struct worker *w,
                        rd_kafka_topic_partition_list_t *parts)
{
        const char *params[1] = {w->o->group};
        PGresult *res;

        if (db_ensure(w) < 0)
                return -1;
        res = PQexecParams(w->lanes[0].ctx.conn,
                           "SELECT topic, partition, next_offset "
                           "FROM sluice.offsets WHERE consumer_group = $1",
                           1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                char q[600];
                sl_warn("event=offsets_read_failed msg=%s",
                        sl_log_quote(PQresultErrorMessage(res), q, sizeof(q)));
                PQclear(res);
                return -1;
        }
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];

                tp->offset = RD_KAFKA_OFFSET_BEGINNING;
                for (int r = 0; r < PQntuples(res); r++) {
                        int part = -1;
                        long long off = 0;

                        if (strcmp(PQgetvalue(res, r, 0), tp->topic) != 0 ||
                            sl_parse_int(PQgetvalue(res, r, 1), &part) < 0 ||
                            part != tp->partition ||
                            sl_parse_ll(PQgetvalue(res, r, 2), &off) < 0)
                                continue;
                        tp->offset = off;
                }
                sl_debug("event=seek_to topic=%s partition=%" PRId32
                         " offset=%" PRId64,
                         tp->topic, tp->partition, tp->offset);
        }
        PQclear(res);
        beginnings(w, parts);
        /* a stored offset the broker no longer has is data lost:
         * recorded, and the partition starts at its earliest */
        sl_gaps_start_list(w->gaps, w->rk, parts, 2000);
        return 0;
}

/* Moves every assigned partition back to its stored offset. */
static int rewind_assignment(struct worker *w)
{
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_error_t *error;
        int rc = -1;

        if (rd_kafka_assignment(w->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return -1;
        if (parts->cnt == 0) {
                rc = 0;
                goto out;
        }
        if (offsets_fill(w, parts) < 0)
                goto out;
        error = rd_kafka_seek_partitions(w->rk, parts, 10000);
        if (error) {
                sl_warn("event=seek_failed err=%s",
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                goto out;
        }
        for (int i = 0; i < parts->cnt; i++)
                if (parts->elems[i].err) {
                        sl_warn("event=seek_failed topic=%s partition=%" PRId32
                                " err=%s",
                                parts->elems[i].topic,
                                parts->elems[i].partition,
                                rd_kafka_err2str(parts->elems[i].err));
                        goto out;
                }
        sl_notice("event=rewound partitions=%d", parts->cnt);
        rc = 0;
out:
        rd_kafka_topic_partition_list_destroy(parts);
        return rc;
}

/* Messages held in open and parked batches. */
static size_t held_messages(struct worker *w)
{
        size_t n = 0;

        for (int i = 0; i < w->nbatches; i++)
                n += w->batches[i]->n;
        for (int l = 0; l < w->nlanes; l++)
                if (w->lanes[l].next)
                        n += w->lanes[l].next->n;
        return n;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        struct worker *w = opaque;
        int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
        rd_kafka_error_t *error = NULL;

        ends_clear(w);
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                if (offsets_fill(w, parts) < 0) {
                        /* assign anyway; the main loop seeks once the
                         * database answers, before it keeps anything */
                        for (int i = 0; i < parts->cnt; i++)
                                parts->elems[i].offset =
                                    RD_KAFKA_OFFSET_INVALID;
                        w->need_rewind = 1;
                }
                sl_info("event=assigned partitions=%d", parts->cnt);
                if (coop)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        rd_kafka_assign(rk, parts);
                pause_parked(w, parts);
        } else {
                /* Finish what we hold while the partitions are ours. Lost
                 * ones (the session ran out: another loader may be writing
                 * them already) are not ours: what is held of them is
                 * dropped, and a batch already in flight meets the fence
                 * on sluice.offsets (load_batch.c, finish). */
                if (rd_kafka_assignment_lost(rk)) {
                        sl_warn("event=partitions_lost partitions=%d "
                                "dropped_messages=%zu",
                                parts->cnt, held_messages(w));
                        discard_all(w);
                } else if (!w->need_rewind)
                        flush_due(w, 1, 0);
                flush_wait(w);
                discard_all(w);
                if (coop)
                        w->need_rewind = 1;
                sl_info("event=revoked partitions=%d", parts->cnt);
                if (coop)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        rd_kafka_assign(rk, NULL);
        }
        if (error) {
                sl_err("event=assign_failed err=%s",
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
}

/* Waits out the backoff, serving rebalances and dropping messages (they
 * come again after the rewind). */
static void backoff_wait(struct worker *w)
{
        int64_t until;

        w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : 200;
        if (w->backoff_ms > w->o->max_backoff_ms)
                w->backoff_ms = w->o->max_backoff_ms;
        until = sl_now_ms() + w->backoff_ms;
        sl_info("event=backoff ms=%" PRId64, w->backoff_ms);
        while (!sl_stop && sl_now_ms() < until) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(w->rk, 100);
                sl_http_tick();
                if (rkm)
                        rd_kafka_message_destroy(rkm);
        }
}

/* At start, parks the mapped topics whose table is missing from the
 * schema or has no unique index (a warning names each), before any of
 * their messages is read; and clears this group's parked-table rows of
 * loaders gone for 10 minutes. */
static void check_tables(struct worker *w)
{
        const struct rd_kafka_metadata *md = NULL;
        regex_t re;

        if (regcomp(&re, w->o->topics, REG_EXTENDED | REG_NOSUB) != 0)
                return;
        if (rd_kafka_metadata(w->rk, 1, NULL, &md, 5000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
                for (int i = 0; i < md->topic_cnt; i++) {
                        const char *tn = md->topics[i].topic;
                        struct load_batch *b;
                        struct load_table *t;
                        enum sl_status st;
                        char err[512], q[600];

                        if (regexec(&re, tn, 0, NULL, 0) != 0)
                                continue;
                        b = load_batch_new(tn);
                        t = load_table_get(w->lanes[0].ctx.conn, b->table, &st,
                                           err, sizeof(err));
                        if (t && t->nidx == 0) {
                                snprintf(err, sizeof(err),
                                         "table %s has no unique index "
                                         "on its coalesce columns (none "
                                         "at all): create one",
                                         b->table);
                                st = SL_ERR_RECORD;
                        }
                        if (st == SL_ERR_RECORD && load_name_valid(b->table))
                                park(w, tn, b->table, err);
                        else if (st != SL_OK)
                                sl_warn("event=table_check_failed topic=%s "
                                        "msg=%s",
                                        tn, sl_log_quote(err, q, sizeof(q)));
                        load_table_destroy(t);
                        load_batch_destroy(b);
                }
                rd_kafka_metadata_destroy(md);
        }
        regfree(&re);
        {
                const char *params[1] = {w->o->group};
                PGresult *res =
                    PQexecParams(w->lanes[0].ctx.conn,
                                 "DELETE FROM sluice.parked_tables "
                                 "WHERE consumer_group = $1 AND "
                                 "checked_at < now() - interval '10 minutes'",
                                 1, NULL, params, NULL, NULL, 0);
                PQclear(res);
        }
        if (w->parked_dirty && parked_publish(w) == 0)
                w->parked_dirty = 0;
}

/* The consumer's prefetch, unless the user set it. librdkafka 2.0.2
 * counts queued.max.messages.kbytes on the consumer queue that every
 * partition forwards to, and once it is exceeded stops fetching for up to
 * a second: at the common 4 MiB (about 2 500 envelopes) a loader that
 * spends a while in PostgreSQL came back to an empty queue and sat idle
 * for most of each second. 32 MiB holds more than a second of loading;
 * it bounds the whole queue, not each partition. */
static int prefetch_conf(rd_kafka_conf_t *conf, char *errstr,
                         size_t errstr_size)
{
        char v[32];
        size_t n = sizeof(v);

        if (rd_kafka_conf_get(conf, "queued.max.messages.kbytes", v, &n) ==
                RD_KAFKA_CONF_OK &&
            strcmp(v, SL_KAFKA_CONSUMER_QUEUE_KB) != 0)
                return 0;
        return sl_kafka_conf_set(conf, "queued.max.messages.kbytes", "32768",
                                 errstr, errstr_size);
}

/* Whether the loader has work: a message just consumed, rows waiting in
 * a batch, or a lane writing. */
static int busy(struct worker *w, int got)
{
        if (got)
                return 1;
        for (int i = 0; i < w->nbatches; i++)
                if (w->batches[i]->n > 0)
                        return 1;
        return any_running(w) || any_parked(w);
}

static void consume(struct worker *w)
{
        struct sl_idle idle = {0};

        while (!sl_stop) {
                rd_kafka_message_t *rkm;
                int caught, got = 0;

                if (w->need_rewind) {
                        if (rewind_assignment(w) < 0) {
                                backoff_wait(w);
                                continue;
                        }
                        w->need_rewind = 0;
                }
                rkm = rd_kafka_consumer_poll(w->rk, any_parked(w) ? 5 : 100);
                sl_http_tick();
                /* a loss recorded by the rebalance callback or a rewind is
                 * published here, outside any callback */
                sl_loss_publish();
                /* the dead-letter producer's events (its statistics every
                 * 5 s with --http-port) queue until served; only while no
                 * lane writes, whose flush thread serves (and counts) the
                 * delivery reports of its dead letters */
                if (!any_running(w))
                        rd_kafka_poll(w->lanes[0].ctx.producer, 0);
                caught = 0;
                if (rkm && !rkm->err)
                        sl_gaps_check(w->gaps, w->rk, rkm);
                if (rkm && rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        ends_mark(w, rd_kafka_topic_name(rkm->rkt),
                                  rkm->partition, 1);
                        caught = caught_up(w);
                } else if (rkm && rkm->err) {
                        sl_debug("event=consume_error err=%s",
                                 rd_kafka_message_errstr(rkm));
                } else if (rkm && !w->need_rewind &&
                           !topic_parked(w, rd_kafka_topic_name(rkm->rkt))) {
                        struct load_batch *b = batch_for(
                            w, rd_kafka_topic_name(rkm->rkt), rkm->partition);
                        if (w->nends)
                                ends_mark(w, b->topic, rkm->partition, 0);
                        /* the batch keeps the message: its envelope's
                         * big values are read from the payload */
                        load_batch_take(b, rkm);
                        rkm = NULL;
                        got = 1;
                }
                if (rkm)
                        rd_kafka_message_destroy(rkm);
                if (flush_due(w, 0, caught) < 0)
                        backoff_wait(w);
                parked_tick(w);
                /* idle: the memory of the last burst goes back */
                if (sl_idle_turn(&idle, busy(w, got)))
                        sl_debug("event=memory_released");
        }
}

int load_worker_run(const struct load_opts *o)
{
        struct worker w;
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_resp_err_t err;
        rd_kafka_t *producer = NULL;
        char errstr[1024], *dir = NULL;
        int rc = SL_EXIT_FAILURE, applied = 0;

        memset(&w, 0, sizeof(w));
        w.o = o;
        w.gaps = sl_gaps_new(o->group);
        pthread_mutex_init(&w.mu, NULL);
        pthread_cond_init(&w.ended, NULL);
        w.nlanes = o->connections > 0 ? (int)o->connections : 1;
        w.lanes = sl_calloc((size_t)w.nlanes, sizeof(*w.lanes));
        for (int l = 0; l < w.nlanes; l++) {
                w.lanes[l].ctx.group = o->group;
                w.lanes[l].ctx.instance = sl_log_instance();
                w.lanes[l].ctx.dlq_topic = o->dlq_topic;
                w.lanes[l].ctx.lane = l;
        }

        dir = load_schema_dir(o->schemas, errstr, sizeof(errstr));
        if (!dir) {
                fprintf(stderr, "sluice load: %s\n", errstr);
                rc = SL_EXIT_USAGE;
                goto out;
        }
        for (int l = 0; l < w.nlanes; l++) {
                w.lanes[l].ctx.conn = sl_pg_connect(errstr, sizeof(errstr));
                if (!w.lanes[l].ctx.conn) {
                        fprintf(stderr, "sluice load: %s\n", errstr);
                        goto out;
                }
        }
        if (load_schema_apply(w.lanes[0].ctx.conn, dir, &applied, errstr,
                              sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice load: %s\n", errstr);
                goto out;
        }
        sl_info("event=schemas dir=%s applied=%d", dir, applied);
        if (o->schemas_only) {
                rc = SL_EXIT_OK;
                goto out;
        }

        conf = sl_kafka_conf_new("producer", errstr, sizeof(errstr));
        if (!conf) {
                fprintf(stderr, "sluice load: %s\n", errstr);
                rc = SL_EXIT_USAGE;
                goto out;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, load_dlq_dr_cb);
        producer = sl_kafka_producer_new(conf, errstr, sizeof(errstr));
        conf = NULL;
        for (int l = 0; l < w.nlanes; l++)
                w.lanes[l].ctx.producer = producer;
        if (!producer) {
                fprintf(stderr, "sluice load: %s\n", errstr);
                goto out;
        }

        conf = sl_kafka_conf_new("consumer", errstr, sizeof(errstr));
        if (!conf ||
            sl_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms",
                              "2000", errstr, sizeof(errstr)) < 0 ||
            prefetch_conf(conf, errstr, sizeof(errstr)) < 0 ||
            sl_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice load: %s\n", errstr);
                rc = SL_EXIT_USAGE;
                goto out;
        }
        rd_kafka_conf_set_opaque(conf, &w);
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        w.rk = sl_kafka_consumer_new(conf, o->group, errstr, sizeof(errstr));
        conf = NULL;
        if (!w.rk) {
                fprintf(stderr, "sluice load: %s\n", errstr);
                goto out;
        }
        for (int l = 0; l < w.nlanes; l++)
                w.lanes[l].ctx.consumer = w.rk;
        if (sl_kafka_ping(w.rk, 10000, errstr, sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice load: %s\n", errstr);
                goto out;
        }
        {
                rd_kafka_topic_partition_list_t *sub =
                    rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(sub, o->topics,
                                                  RD_KAFKA_PARTITION_UA);
                err = rd_kafka_subscribe(w.rk, sub);
                rd_kafka_topic_partition_list_destroy(sub);
                if (err) {
                        fprintf(stderr, "sluice load: subscribe %s: %s\n",
                                o->topics, rd_kafka_err2str(err));
                        goto out;
                }
        }
        check_tables(&w);
        sl_info("event=started group=%s topics=%s dlq=%s batch_rows=%ld "
                "batch_bytes=%ld pending_bytes=%ld linger_ms=%ld "
                "connections=%d",
                o->group, o->topics, o->dlq_topic, o->batch_rows,
                o->batch_bytes, o->pending_bytes, o->linger_ms, w.nlanes);

        consume(&w);

        /* SIGTERM: finish the open batches (or drop them when the database
         * is gone: they come again from sluice.offsets), leave the group. */
        if (!w.need_rewind)
                flush_due(&w, 1, 0);
        flush_wait(&w);
        discard_all(&w);
        rd_kafka_consumer_close(w.rk);
        if (w.nparked) {
                /* this loader's parked tables are no longer its own */
                for (int i = 0; i < w.nparked; i++)
                        w.parked[i].probing = 1;
                parked_publish(&w);
        }
        rc = SL_EXIT_OK;
        sl_info("event=stopped");
out:
        flush_wait(&w);
        /* the batches hold the consumer's messages */
        discard_all(&w);
        for (int i = 0; i < w.nbatches; i++)
                load_batch_destroy(w.batches[i]);
        free(w.batches);
        if (conf)
                rd_kafka_conf_destroy(conf);
        if (w.rk)
                rd_kafka_destroy(w.rk);
        if (producer) {
                sl_kafka_flush(producer, 10000);
                rd_kafka_destroy(producer);
        }
        ends_clear(&w);
        for (int i = 0; i < w.nparked; i++) {
                free(w.parked[i].topic);
                free(w.parked[i].table);
                free(w.parked[i].why);
        }
        free(w.parked);
        for (int l = 0; l < w.nlanes; l++) {
                load_ctx_forget_tables(&w.lanes[l].ctx);
                PQfinish(w.lanes[l].ctx.conn);
        }
        free(w.lanes);
        free(dir);
        pthread_cond_destroy(&w.ended);
        pthread_mutex_destroy(&w.mu);
        sl_gaps_destroy(w.gaps);
        return rc;
}
