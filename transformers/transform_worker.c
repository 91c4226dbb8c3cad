/* transform_worker.c: consume raw pages, map them, produce rows, wait for
 * delivery, commit. The commit comes only after every row and dead letter
 * of the batch is acknowledged, so a crash repeats a batch (the loader's
 * upserts absorb the repeat) and never loses one. */
#include "transform_worker.h"
#include "sl_http.h"
#include "sl_jsondump.h"
#include "sl_kafka.h"
#include "sl_metrics.h"
#include "sl_log.h"
#include "sl_loss.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DLQ_TOPIC "dlq.transform"

struct worker {
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        struct map **maps;
        size_t nmaps;
        int delivery_failures; /* of the batch in flight */
        int produce_failures;
        uint64_t pages, dead_pages;
        rd_kafka_message_t **msgs; /* the batch polled, not yet committed */
        size_t n;
        /* A refused commit: the worker stops taking work (its partitions
         * are paused) until the commit goes through on a retry, or a new
         * assignment starts over from the committed offsets. */
        int commit_refused;
        rd_kafka_topic_partition_list_t *unacked; /* offsets to commit */
        rd_kafka_topic_partition_list_t *rewind;  /* first message dropped,
                                                     per partition */
        int64_t retry_at;
        int retry_ms, retries;
        struct sl_buf out;    /* the envelope being produced, reused */
        struct sl_gaps *gaps; /* messages lost to retention (sl_loss.h) */
};

/* Delivery report: one failure makes the batch be produced again. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
        struct worker *w = opaque;
        (void)rk;
        if (rkm->err) {
                w->delivery_failures++;
                sl_metric_inc(SL_M_ERRORS, SL_LV("kafka_delivery"));
                sl_warn("event=delivery_failed topic=%s err=%s",
                        rd_kafka_topic_name(rkm->rkt),
                        rd_kafka_err2name(rkm->err));
        }
}

static int produce_json(struct worker *w, const char *topic, const char *key,
                        size_t key_len, json_t *v);

static int produce_too_large(struct worker *w, const char *key, size_t key_len,
                             json_t *env, size_t bytes)
{
        json_t *d = json_object();
        char msg[128];
        int rc;

        snprintf(msg, sizeof(msg),
                 "row of %zu bytes exceeds the message size limit", bytes);
        json_object_set_new(d, "v", json_integer(1));
        json_object_set_new(d, "stage", json_string("transform"));
        json_object_set_new(d, "error", json_string(msg));
        json_object_set(
            d, "map", json_object_get(json_object_get(env, "lineage"), "map"));
        json_object_set(d, "table", json_object_get(env, "table"));
        json_object_set(d, "key", json_object_get(env, "key"));
        json_object_set(d, "lineage", json_object_get(env, "lineage"));
        rc = produce_json(w, DLQ_TOPIC, key, key_len, d);
        json_decref(d);
        return rc;
}

/* Reals keep their shortest round-trip form (sl_jsondump.h): the source's
 * 7.3 must reach jsonb as 7.3, not as json_dumps()'s 7.2999999999999998. */
static int produce_json(struct worker *w, const char *topic, const char *key,
                        size_t key_len, json_t *v)
{
        rd_kafka_resp_err_t err;
        size_t len;

        /* written into one buffer, reused from envelope to envelope, and
         * copied by librdkafka into the message it allocates with its
         * payload: a text of its own grew by realloc several times per
         * envelope (perf: a tenth of the transformer) */
        sl_buf_reset(&w->out);
        if (sl_json_dump(&w->out, v, 0) < 0) {
                sl_err("event=encode_failed topic=%s", topic);
                w->produce_failures++;
                return 0;
        }
        len = w->out.len;
        err = sl_kafka_produce_flags(w->producer, topic, RD_KAFKA_PARTITION_UA,
                                     key, key_len, w->out.data, len, NULL, NULL,
                                     RD_KAFKA_MSG_F_COPY);
        if (w->out.cap > ((size_t)4 << 20))
                sl_buf_free(&w->out); /* a rare big row: not kept */
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE &&
            strcmp(topic, DLQ_TOPIC) != 0)
                return produce_too_large(w, key, key_len, v, len);
        if (err) {
                sl_metric_inc(SL_M_ERRORS, SL_LV("kafka_produce"));
                sl_warn("event=produce_failed topic=%s err=%s", topic,
                        rd_kafka_err2name(err));
                w->produce_failures++;
        }
        return 0;
}

struct emit_ctx {
        struct worker *w;
        const rd_kafka_message_t *rkm;
        const char *map; /* the map being applied (metrics) */
};

static void on_record(void *opaque, size_t target, json_t *rec)
{
        struct emit_ctx *c = opaque;
        (void)rec;
        if (target == 0) /* a record once, however many targets */
                sl_metric_inc(SL_M_RECORDS_IN, SL_LV(c->map));
}

static int on_row(void *opaque, const char *topic, const char *key,
                  size_t key_len, json_t *env)
{
        struct emit_ctx *c = opaque;
        sl_metric_inc(SL_M_RECORDS_OUT, SL_LV(c->map, "mapped"));
        return produce_json(c->w, topic, key, key_len, env);
}

static int on_dead(void *opaque, const char *key, json_t *letter)
{
        struct emit_ctx *c = opaque;
        sl_metric_inc(SL_M_RECORDS_OUT, SL_LV(c->map, "dead_letter"));
        if (!key) {
                key = c->rkm->key;
                return produce_json(c->w, DLQ_TOPIC, key, c->rkm->key_len,
                                    letter);
        }
        return produce_json(c->w, DLQ_TOPIC, key, strlen(key), letter);
}

static void process_message(struct worker *w, const rd_kafka_message_t *rkm)
{
        const char *topic = rd_kafka_topic_name(rkm->rkt);
        char *h_source = sl_kafka_header_dup(rkm, "source");
        char *h_run = sl_kafka_header_dup(rkm, "run");
        char *h_page = sl_kafka_header_dup(rkm, "page");
        char *h_chunk = sl_kafka_header_dup(rkm, "chunk");
        char *h_fetched = sl_kafka_header_dup(rkm, "fetched_at");
        char *h_records = sl_kafka_header_dup(rkm, "records_path");
        struct map_lineage lin = {.source = h_source,
                                  .run = h_run,
                                  .topic = topic,
                                  .partition = rkm->partition,
                                  .offset = rkm->offset,
                                  .fetched_at = h_fetched,
                                  .page = h_page,
                                  .chunk = h_chunk};
        struct emit_ctx ctx = {.w = w, .rkm = rkm};
        struct map_emit em = {.row = on_row,
                              .dead = on_dead,
                              .record = on_record,
                              .opaque = &ctx,
                              /* rows leave as text at once */
                              .record_arena = 1};
        json_t *page = NULL;
        json_error_t jerr;
        char why[300] = "";

        w->pages++;
        sl_metric_inc(SL_M_PAGES, SL_LV(topic));
        for (size_t i = 0; i < w->nmaps; i++) {
                struct map *m = w->maps[i];
                if (strcmp(m->topic, topic) != 0)
                        continue;
                if (!lin.source)
                        lin.source = m->source;
                ctx.map = m->name;
                if (!page && !*why && rkm->payload && rkm->len &&
                    map_apply_bytes(m, rkm->payload, rkm->len, h_records, &lin,
                                    &em) != MAP_NOT_APPLIED)
                        continue;
                /* the whole page decoded once, for the maps that need it */
                if (!page && !*why) {
                        if (!rkm->payload || rkm->len == 0)
                                snprintf(why, sizeof(why), "page is empty");
                        else if (!(page = json_loadb(rkm->payload, rkm->len,
                                                     JSON_ALLOW_NUL, &jerr)))
                                snprintf(why, sizeof(why),
                                         "page is not JSON: %d:%d: %s",
                                         jerr.line, jerr.column, jerr.text);
                }
                if (!page) {
                        json_t *d =
                            map_dead_page(m, rkm->payload, rkm->len, why, &lin);
                        char q[400];
                        w->dead_pages++;
                        sl_metric_inc(SL_M_ERRORS, SL_LV("dead_page"));
                        sl_warn("event=dead_page map=%s topic=%s "
                                "partition=%d offset=%lld reason=%s",
                                m->name, topic, (int)rkm->partition,
                                (long long)rkm->offset,
                                sl_log_quote(why, q, sizeof(q)));
                        on_dead(&ctx, NULL, d);
                        json_decref(d);
                        continue;
                }
                map_apply_page(m, page, h_records, &lin, &em);
        }
        json_decref(page);
        free(h_source);
        free(h_run);
        free(h_page);
        free(h_chunk);
        free(h_fetched);
        free(h_records);
}

/* Produces everything the batch yields and waits for delivery. 0 when all
 * was acknowledged. */
static int produce_batch(struct worker *w, rd_kafka_message_t **msgs, size_t n)
{
        int64_t deadline;

        w->delivery_failures = 0;
        w->produce_failures = 0;
        for (size_t i = 0; i < n; i++)
                process_message(w, msgs[i]);
        /* bounded wait; librdkafka retries transient broker faults itself
         * within message.timeout.ms */
        deadline = sl_now_ms() + 330000;
        while (rd_kafka_outq_len(w->producer) > 0 && sl_now_ms() < deadline)
                rd_kafka_flush(w->producer, 500);
        if (rd_kafka_outq_len(w->producer) > 0)
                return -1;
        return w->delivery_failures || w->produce_failures ? -1 : 0;
}

/* Keeps the larger (keep_max) or the smaller offset of each partition. */
static void offsets_merge(rd_kafka_topic_partition_list_t **into,
                          const char *topic, int32_t partition, int64_t offset,
                          int keep_max)
{
        rd_kafka_topic_partition_t *p;

        if (!*into)
                *into = rd_kafka_topic_partition_list_new(4);
        p = rd_kafka_topic_partition_list_find(*into, topic, partition);
        if (!p) {
                p = rd_kafka_topic_partition_list_add(*into, topic, partition);
                p->offset = offset;
        } else if (keep_max ? offset > p->offset : offset < p->offset) {
                p->offset = offset;
        }
}

static void refusal_clear(struct worker *w)
{
        if (w->unacked)
                rd_kafka_topic_partition_list_destroy(w->unacked);
        if (w->rewind)
                rd_kafka_topic_partition_list_destroy(w->rewind);
        w->unacked = w->rewind = NULL;
        w->commit_refused = 0;
        w->retries = 0;
}

static int commit_batch(struct worker *w, rd_kafka_message_t **msgs, size_t n)
{
        rd_kafka_topic_partition_list_t *offs = sl_kafka_offsets_after(msgs, n);
        rd_kafka_resp_err_t err;

        err = rd_kafka_commit(w->consumer, offs, 0);
        if (err) {
                /* the batch will be repeated by whoever gets the
                 * partitions: harmless, the rows are upserts */
                sl_metric_inc(SL_M_ERRORS, SL_LV("kafka_commit"));
                sl_warn("event=commit_failed err=%s", rd_kafka_err2name(err));
                /* A group being rebalanced refuses commits (the embedded
                 * broker does for the whole rebalance): stop taking work
                 * that could not be committed either, so that a rebalance
                 * repeats at most this batch. The next assignment starts
                 * again from the committed offsets; an error that brings
                 * no rebalance (a timeout, an authorization error, a
                 * coordinator that stays away) is outlived by committing
                 * again, every second and then less often. */
                for (int i = 0; i < offs->cnt; i++)
                        offsets_merge(&w->unacked, offs->elems[i].topic,
                                      offs->elems[i].partition,
                                      offs->elems[i].offset, 1);
                if (!w->commit_refused) {
                        rd_kafka_topic_partition_list_t *mine = NULL;
                        w->commit_refused = 1;
                        w->retry_ms = 1000;
                        w->retry_at = sl_now_ms() + w->retry_ms;
                        if (!rd_kafka_assignment(w->consumer, &mine) && mine) {
                                rd_kafka_pause_partitions(w->consumer, mine);
                                rd_kafka_topic_partition_list_destroy(mine);
                        }
                }
                rd_kafka_topic_partition_list_destroy(offs);
                return -1;
        }
        rd_kafka_topic_partition_list_destroy(offs);
        return 0;
}

/* Drops the entries of l whose partition is not in keep (or is in drop). */
static void offsets_filter(rd_kafka_topic_partition_list_t **l,
                           const rd_kafka_topic_partition_list_t *keep,
                           const rd_kafka_topic_partition_list_t *drop)
{
        rd_kafka_topic_partition_list_t *out;

        if (!*l)
                return;
        out = rd_kafka_topic_partition_list_new((*l)->cnt);
        for (int i = 0; i < (*l)->cnt; i++) {
                const rd_kafka_topic_partition_t *e = &(*l)->elems[i];
                if (!rd_kafka_topic_partition_list_find(keep, e->topic,
                                                        e->partition) ||
                    (drop && rd_kafka_topic_partition_list_find(drop, e->topic,
                                                                e->partition)))
                        continue;
                rd_kafka_topic_partition_list_add(out, e->topic, e->partition)
                    ->offset = e->offset;
        }
        rd_kafka_topic_partition_list_destroy(*l);
        *l = out->cnt ? out : NULL;
        if (!out->cnt)
                rd_kafka_topic_partition_list_destroy(out);
}

/* Rewinds each partition that dropped messages while the commit was
 * refused to the first message dropped. */
static void rewind_dropped(struct worker *w)
{
        rd_kafka_error_t *error;

        if (!w->rewind)
                return;
        /* asynchronous: this may run in the rebalance callback, and a
         * failed seek comes back as a consume error */
        error = rd_kafka_seek_partitions(w->consumer, w->rewind, 0);
        if (error) {
                sl_warn("event=seek_failed err=%s",
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
}

/* While a commit stays refused: commit again; once it goes through, the
 * partitions still held go back to the first message dropped and resume. */
static void retry_commit(struct worker *w)
{
        rd_kafka_topic_partition_list_t *mine = NULL;
        rd_kafka_resp_err_t err;

        if (!w->commit_refused || sl_now_ms() < w->retry_at)
                return;
        /* Only the partitions still held: committing the offsets of one
         * given to another worker could move its committed offset back.
         * With none held, a rebalance is under way: its assignment
         * decides (refusal_after_assign). */
        if (rd_kafka_assignment(w->consumer, &mine) || !mine ||
            mine->cnt == 0) {
                if (mine)
                        rd_kafka_topic_partition_list_destroy(mine);
                w->retry_at = sl_now_ms() + w->retry_ms;
                return;
        }
        offsets_filter(&w->unacked, mine, NULL);
        offsets_filter(&w->rewind, mine, NULL);
        w->retries++;
        err = w->unacked ? rd_kafka_commit(w->consumer, w->unacked, 0) : 0;
        if (err) {
                w->retry_ms = w->retry_ms * 2 > 30000 ? 30000 : w->retry_ms * 2;
                w->retry_at = sl_now_ms() + w->retry_ms;
                sl_metric_inc(SL_M_ERRORS, SL_LV("kafka_commit"));
                sl_warn("event=commit_failed err=%s retry=%d next_ms=%d",
                        rd_kafka_err2name(err), w->retries, w->retry_ms);
                rd_kafka_topic_partition_list_destroy(mine);
                return;
        }
        rewind_dropped(w);
        rd_kafka_resume_partitions(w->consumer, mine);
        sl_notice("event=commit_retried retries=%d partitions=%d", w->retries,
                  mine->cnt);
        rd_kafka_topic_partition_list_destroy(mine);
        refusal_clear(w);
}

/* Lets go of the batch in hand (its messages). */
static void drop_batch(struct worker *w)
{
        for (size_t i = 0; i < w->n; i++)
                rd_kafka_message_destroy(w->msgs[i]);
        w->n = 0;
}

/* Produces, delivers and commits the batch in hand, then frees it. */
static void finish_batch(struct worker *w)
{
        int64_t t0 = sl_now_ms();

        if (!w->n)
                return;
        /* repeat the batch until every output is delivered; counters then
         * count the repeats too */
        while (produce_batch(w, w->msgs, w->n) < 0) {
                sl_warn("event=batch_retry messages=%zu", w->n);
                if (sl_stop)
                        break;
                sl_sleep_ms(1000);
        }
        if (!sl_stop || (!w->delivery_failures && !w->produce_failures &&
                         rd_kafka_outq_len(w->producer) == 0))
                commit_batch(w, w->msgs, w->n);
        sl_metric_observe(SL_M_BATCH_SIZE, SL_LV("transform"), (double)w->n);
        sl_metric_observe(SL_M_BATCH_SECONDS, SL_LV("transform"),
                          (double)(sl_now_ms() - t0) / 1e3);
        drop_batch(w);
}

/* An assignment while a commit is refused. An eager one starts every
 * partition over from its committed offsets: the refusal is over. A
 * cooperative one keeps some partitions where they were: their refused
 * offsets still have to be committed and their dropped messages read again
 * (by retry_commit, which resumes everything); the partitions new to this
 * worker start from their committed offsets. */
static void refusal_after_assign(struct worker *w, rd_kafka_t *rk,
                                 const rd_kafka_topic_partition_list_t *parts,
                                 int coop)
{
        rd_kafka_topic_partition_list_t *mine = NULL;

        if (rd_kafka_assignment(rk, &mine) || !mine) {
                refusal_clear(w);
                return;
        }
        if (coop) {
                offsets_filter(&w->unacked, mine, parts);
                offsets_filter(&w->rewind, mine, parts);
        }
        if (coop && w->unacked) {
                rd_kafka_pause_partitions(rk, mine);
                w->retry_at = sl_now_ms();
        } else {
                if (coop)
                        rewind_dropped(w);
                rd_kafka_resume_partitions(rk, mine);
                refusal_clear(w);
        }
        rd_kafka_topic_partition_list_destroy(mine);
}

/* A partition the group has never committed is committed at its
 * beginning as the worker starts reading it (asynchronously: nothing
 * waits for it). The committed offset is how a fetcher applying
 * back-pressure (fetch_backpressure.h) and `sluice status` know that the
 * group reads the topic and how far behind it is: without it, a fresh
 * group was invisible until its first batch was committed, and a fast
 * fetcher could publish past what the broker keeps meanwhile. */
static void commit_beginnings(rd_kafka_t *rk,
                              const rd_kafka_topic_partition_list_t *parts,
                              rd_kafka_topic_partition_list_t *fresh)
{
        rd_kafka_topic_partition_list_t *out =
            rd_kafka_topic_partition_list_new(fresh->cnt);

        for (int i = 0; i < fresh->cnt; i++) {
                const rd_kafka_topic_partition_t *tp =
                    rd_kafka_topic_partition_list_find(
                        parts, fresh->elems[i].topic,
                        fresh->elems[i].partition);
                int64_t lo = tp ? tp->offset : -1, hi = -1;

                /* still logical: an empty partition begins at its end */
                if (tp && tp->offset == RD_KAFKA_OFFSET_BEGINNING &&
                    rd_kafka_query_watermark_offsets(
                        rk, tp->topic, tp->partition, &lo, &hi, 1000) != 0)
                        continue;
                if (lo >= 0)
                        rd_kafka_topic_partition_list_add(out, tp->topic,
                                                          tp->partition)
                            ->offset = lo;
        }
        if (out->cnt)
                rd_kafka_commit(rk, out, 1);
        rd_kafka_topic_partition_list_destroy(out);
}

/* The offsets newly assigned partitions start from, made concrete before
 * the assignment: the group's committed offsets (one OffsetFetch), and for
 * a partition with none its beginning (auto.offset.reset is always
 * earliest, sl_kafka_consumer_new) as its low watermark. Left logical,
 * librdkafka 2.0.2 resolves them one partition after another once
 * assigned, and the partitions resolved last wait out the long poll of the
 * first (fetch.wait.max.ms, 500 ms): a fresh group, as after a replay into
 * a new one, read the bench's 10 pages 0.5-1 s later than it could. When
 * the committed offsets cannot be read within 2 s, all stay logical and
 * librdkafka resolves them as before. */
static void start_offsets(rd_kafka_t *rk,
                          rd_kafka_topic_partition_list_t *parts)
{
        rd_kafka_resp_err_t err = rd_kafka_committed(rk, parts, 2000);
        rd_kafka_topic_partition_list_t *fresh =
            rd_kafka_topic_partition_list_new(parts->cnt);
        int asked, found, committed = 0, unread = 0;

        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];

                if (err || tp->err) {
                        tp->offset = RD_KAFKA_OFFSET_INVALID;
                        tp->err = RD_KAFKA_RESP_ERR_NO_ERROR;
                        unread++;
                } else if (tp->offset < 0) {
                        tp->offset = RD_KAFKA_OFFSET_BEGINNING;
                        rd_kafka_topic_partition_list_add(fresh, tp->topic,
                                                          tp->partition);
                } else {
                        committed++;
                }
        }
        found = sl_kafka_resolve_beginnings(rk, parts, 2000, &asked);
        sl_info("event=start_offsets partitions=%d committed=%d "
                "from_beginning=%d at_low_watermark=%d unread=%d err=%s",
                parts->cnt, committed, asked, found, unread,
                rd_kafka_err2name(err));
        if (fresh->cnt)
                commit_beginnings(rk, parts, fresh);
        rd_kafka_topic_partition_list_destroy(fresh);
}

/* A rebalance finishes the batch in hand while its partitions are still
 * ours: its rows are delivered and its offsets committed before another
 * worker is given the partitions, so a rebalance repeats nothing. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        struct worker *w = opaque;
        int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
        rd_kafka_error_t *error = NULL;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                sl_info("event=assigned partitions=%d protocol=%s", parts->cnt,
                        coop ? "cooperative" : "eager");
                start_offsets(rk, parts);
                /* a committed offset the broker no longer has is data
                 * lost: recorded, and the partition starts at its earliest */
                sl_gaps_start_list(w->gaps, rk, parts, 2000);
                if (coop)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        rd_kafka_assign(rk, parts);
                if (w->commit_refused)
                        refusal_after_assign(w, rk, parts, coop);
        } else {
                size_t held = w->n;
                if (rd_kafka_assignment_lost(rk)) {
                        /* the session ran out (a frozen worker): another
                         * worker has these partitions and maps the batch
                         * again; mapping it here too would append its rows
                         * after the newer ones the other produced */
                        sl_warn("event=partitions_lost partitions=%d "
                                "dropped_messages=%zu",
                                parts->cnt, held);
                        drop_batch(w);
                        held = 0;
                }
                finish_batch(w);
                sl_info("event=revoked partitions=%d finished_messages=%zu",
                        parts->cnt, held);
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

static void log_stats(struct worker *w, const char *when)
{
        sl_info("event=transform_stats when=%s pages=%llu dead_pages=%llu",
                when, (unsigned long long)w->pages,
                (unsigned long long)w->dead_pages);
        for (size_t i = 0; i < w->nmaps; i++)
                map_log_stats(w->maps[i], when);
}

static int subscribe(struct worker *w, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *topics =
            rd_kafka_topic_partition_list_new((int)w->nmaps);
        rd_kafka_resp_err_t err;

        for (size_t i = 0; i < w->nmaps; i++)
                if (!rd_kafka_topic_partition_list_find(
                        topics, w->maps[i]->topic, RD_KAFKA_PARTITION_UA))
                        rd_kafka_topic_partition_list_add(
                            topics, w->maps[i]->topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(w->consumer, topics);
        for (int i = 0; i < topics->cnt; i++)
                sl_info("event=subscribed topic=%s", topics->elems[i].topic);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err) {
                snprintf(errstr, errstr_size, "could not subscribe: %s",
                         rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

int transform_run(struct map **maps, size_t nmaps,
                  const struct transform_opts *opts, char *errstr,
                  size_t errstr_size)
{
        struct worker w = {.maps = maps, .nmaps = nmaps};
        rd_kafka_conf_t *conf = NULL;
        int64_t last_stats = sl_now_ms();
        struct sl_idle idle = {0};
        int rc = -1;

        sl_buf_init(&w.out, 0);
        w.gaps = sl_gaps_new(opts->group);
        conf = sl_kafka_conf_new("producer", errstr, errstr_size);
        if (!conf)
                goto out;
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_opaque(conf, &w);
        /* takes ownership of conf */
        w.producer = sl_kafka_producer_new(conf, errstr, errstr_size);
        conf = NULL;
        if (!w.producer)
                goto out;
        /* say clearly which brokers could not be reached, rather than
         * waiting for them in silence */
        if (sl_kafka_ping(w.producer, 10000, errstr, errstr_size) < 0)
                goto out;
        conf = sl_kafka_conf_new("consumer", errstr, errstr_size);
        if (!conf)
                goto out;
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rd_kafka_conf_set_opaque(conf, &w);
        /* takes ownership of conf */
        w.consumer =
            sl_kafka_consumer_new(conf, opts->group, errstr, errstr_size);
        conf = NULL;
        if (!w.consumer)
                goto out;
        if (subscribe(&w, errstr, errstr_size) < 0)
                goto out;
        sl_info("event=started group=%s maps=%zu brokers=%s", opts->group,
                nmaps, sl_kafka_brokers());
        w.msgs = sl_calloc((size_t)opts->batch_max, sizeof(*w.msgs));
        while (!sl_stop) {
                int64_t batch_end = sl_now_ms() + 200;
                char fatal[512];

                while (w.n < (size_t)opts->batch_max && !sl_stop) {
                        rd_kafka_message_t *rkm =
                            rd_kafka_consumer_poll(w.consumer, 100);
                        sl_http_tick();
                        /* a loss recorded by the rebalance callback (in
                         * the poll above) is published here, outside it */
                        sl_loss_publish();
                        /* the producer's events (its statistics every 5 s
                         * with --http-port) queue until served */
                        rd_kafka_poll(w.producer, 0);
                        if (!rkm) {
                                if (w.n || sl_now_ms() >= batch_end)
                                        break;
                                continue;
                        }
                        if (rkm->err) {
                                if (rkm->err !=
                                    RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                        sl_metric_inc(SL_M_ERRORS,
                                                      SL_LV("kafka_consume"));
                                        sl_warn("event=consume_error err=%s",
                                                rd_kafka_err2name(rkm->err));
                                }
                                rd_kafka_message_destroy(rkm);
                                continue;
                        }
                        sl_gaps_check(w.gaps, w.consumer, rkm);
                        if (w.commit_refused) {
                                /* left uncommitted: re-read after the
                                 * commit goes through, or by whoever holds
                                 * the partition next */
                                offsets_merge(&w.rewind,
                                              rd_kafka_topic_name(rkm->rkt),
                                              rkm->partition, rkm->offset, 0);
                                rd_kafka_message_destroy(rkm);
                                continue;
                        }
                        w.msgs[w.n++] = rkm;
                }
                if (rd_kafka_fatal_error(w.consumer, fatal, sizeof(fatal)) ||
                    rd_kafka_fatal_error(w.producer, fatal, sizeof(fatal))) {
                        snprintf(errstr, errstr_size, "fatal kafka error: %s",
                                 fatal);
                        goto out;
                }
                /* idle: the memory of the last burst goes back */
                if (sl_idle_turn(&idle, w.n > 0))
                        sl_debug("event=memory_released");
                finish_batch(&w);
                retry_commit(&w);
                if (opts->stats_interval_ms > 0 &&
                    sl_now_ms() - last_stats >= opts->stats_interval_ms) {
                        log_stats(&w, "periodic");
                        last_stats = sl_now_ms();
                }
        }
        rc = 0;
out:
        drop_batch(&w); /* the close below revokes: nothing left to finish */
        free(w.msgs);
        w.msgs = NULL;
        if (w.consumer) {
                rd_kafka_consumer_close(w.consumer);
                rd_kafka_destroy(w.consumer);
        }
        if (w.producer) {
                if (sl_kafka_flush(w.producer, 10000) > 0)
                        sl_warn("event=shutdown_undelivered messages=%d",
                                rd_kafka_outq_len(w.producer));
                rd_kafka_destroy(w.producer);
        }
        if (conf)
                rd_kafka_conf_destroy(conf);
        refusal_clear(&w);
        log_stats(&w, "exit");
        sl_buf_free(&w.out);
        sl_gaps_destroy(w.gaps);
        return rc;
}
