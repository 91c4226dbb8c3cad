/* fetch_out: raw pages to raw.<source> with chunking and delivery checks,
 * the cursor in sluice.state, and the stand-by lock. */
#include "fetch_out.h"
#include "sl_jsonpath.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A split page's chunks, shared by their messages: librdkafka neither
 * copies nor frees them (message flags 0), and the delivery report of the
 * last frees the block (kcat hands buffers over the same way). The page is
 * copied once, into one block (sl_malloc_big): a fresh malloc per chunk
 * faulted in every 4 KB page of it. */
struct fetch_block {
        char *mem; /* sl_malloc_big */
        size_t bytes;
        long refs; /* one per queued chunk, and the producer's own */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque)
{
        struct fetch_out *o = opaque;

        (void)rk;
        if (rkm->_private && rkm->_private != o) {
                /* a chunk of a split page: its block goes with the last */
                struct fetch_block *blk = rkm->_private;
                if (--blk->refs == 0) {
                        o->block_bytes -= blk->bytes;
                        free(blk->mem);
                        free(blk);
                }
        }
        if (rkm->err) {
                o->failed++;
                snprintf(o->last_error, sizeof(o->last_error), "%s",
                         rd_kafka_err2str(rkm->err));
        } else {
                o->delivered++;
        }
}

/* Asks the cluster for topic's metadata, so that its partitions are known
 * before the first message (failure only costs that wait later). */
static void warm(rd_kafka_t *rk, const char *topic)
{
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;

        if (!rkt)
                return;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
}

int fetch_out_init(struct fetch_out *o, const char *source,
                   const char *records_path, size_t max_bytes, char *errstr,
                   size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        char size[32];

        memset(o, 0, sizeof(*o));
        snprintf(o->topic, sizeof(o->topic), "raw.%s", source);
        snprintf(o->source, sizeof(o->source), "%s", source);
        o->records_path = records_path;
        o->max_bytes = max_bytes;
        conf = sl_kafka_conf_new("producer", errstr, errstr_size);
        if (!conf)
                return -1;
        /* a chunk may exceed max_bytes by one record: leave room */
        snprintf(size, sizeof(size), "%zu",
                 max_bytes * 2 + 1000000 > 4000000 ? max_bytes * 2 + 1000000
                                                   : 4000000);
        if (sl_kafka_conf_set(conf, "message.max.bytes", size, errstr,
                              errstr_size) < 0) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, o);
        o->rk = sl_kafka_producer_new(conf, errstr, errstr_size);
        conf = NULL;
        if (!o->rk)
                return -1;
        /* learn both topics' leaders now: the first message to a topic the
         * producer has not seen waits for a metadata round first (the
         * state write after a sync took ~0.9 s of a 2 s sync) */
        warm(o->rk, o->topic);
        warm(o->rk, FETCH_STATE_TOPIC);
        if (fetch_bp_init(&o->bp, source, o->topic, max_bytes, errstr,
                          errstr_size) < 0) {
                fetch_out_free(o);
                return -1;
        }
        fetch_out_new_run(o);
        return 0;
}

void fetch_out_free(struct fetch_out *o)
{
        if (o->rk) {
                if (sl_kafka_flush(o->rk, 10000) > 0) {
                        /* undelivered: their reports free the blocks of
                         * split pages, which librdkafka does not own */
                        rd_kafka_purge(o->rk, RD_KAFKA_PURGE_F_QUEUE |
                                                  RD_KAFKA_PURGE_F_INFLIGHT);
                        rd_kafka_flush(o->rk, 1000);
                }
                rd_kafka_destroy(o->rk);
        }
        o->rk = NULL;
        fetch_bp_free(&o->bp);
}

void fetch_out_new_run(struct fetch_out *o)
{
        snprintf(o->run, sizeof(o->run), "%lld-%ld", (long long)sl_wall_ms(),
                 (long)getpid());
}

/* ---- splitting a page's text into chunks of whole records ---- */

size_t fetch_split_spans(const char *text, size_t len, size_t arr_open,
                         size_t arr_close, const struct sl_json_span *recs,
                         size_t nrec, size_t max_bytes, struct fetch_chunks *c)
{
        size_t head = arr_open + 1, tail = len - arr_close;
        size_t *ends = sl_malloc((nrec + 1) * sizeof(size_t));
        size_t n = 0, total = 0;
        char *w;

        memset(c, 0, sizeof(*c));
        /* where each chunk ends, and the block's size: one allocation */
        for (size_t i = 0; i < nrec || n == 0;) {
                size_t used = head + tail, bytes = head + tail;
                for (size_t k = 0; i < nrec; k++, i++) {
                        if (k > 0 && used + recs[i].len + 1 > max_bytes)
                                break;
                        used += recs[i].len + 1;
                        bytes += recs[i].len + (k > 0);
                }
                ends[n++] = i;
                total += bytes + 1;
        }
        c->block = sl_malloc_big(total, &c->block_bytes);
        c->chunk = sl_malloc(n * sizeof(char *));
        c->len = sl_malloc(n * sizeof(size_t));
        w = c->block;
        for (size_t j = 0, i = 0; j < n; j++) {
                c->chunk[j] = w;
                memcpy(w, text, head);
                w += head;
                for (size_t k = 0; i < ends[j]; k++, i++) {
                        if (k > 0)
                                *w++ = ',';
                        memcpy(w, text + recs[i].off, recs[i].len);
                        w += recs[i].len;
                }
                memcpy(w, text + arr_close, tail);
                w += tail;
                c->len[j] = (size_t)(w - c->chunk[j]);
                *w++ = '\0';
        }
        free(ends);
        c->n = n;
        return n;
}

size_t fetch_split_in_place(char *body, size_t len, size_t cap, size_t arr_open,
                            size_t arr_close, const struct sl_json_span *recs,
                            size_t nrec, size_t max_bytes,
                            struct fetch_chunks *c)
{
        size_t head = arr_open + 1, tail = len - arr_close;
        size_t *first = NULL, *dst = NULL;
        size_t n = 0, total = 0;
        char *tl = NULL;

        memset(c, 0, sizeof(*c));
        if (nrec < 2 || arr_close < arr_open || arr_close > len)
                return 0;
        first = sl_malloc((nrec + 1) * sizeof(size_t));
        dst = sl_malloc((nrec + 1) * sizeof(size_t));
        /* chunk j: the envelope's head, its records as the page spaced
         * them (from the first's start, for the first chunk from the
         * array's bracket on, so that it stays where it is, to the last's
         * end), the tail */
        for (size_t i = 0; i < nrec;) {
                size_t a = i, from = a ? recs[a].off : head, span;
                for (i++; i < nrec; i++) {
                        span = recs[i].off + recs[i].len - from;
                        if (head + span + tail > max_bytes)
                                break;
                }
                first[n] = a;
                dst[n] = total;
                span = recs[i - 1].off + recs[i - 1].len - from;
                total += head + span + tail + 1;
                n++;
        }
        first[n] = nrec;
        /* moved from the last chunk to the first, so a chunk must land at
         * or after the end of the records still to move before it; spacing
         * wider than an envelope between chunks (or no room after the
         * page) leaves the page to the copying split */
        if (n < 2 || total > cap)
                goto refuse;
        for (size_t j = 1; j < n; j++) {
                const struct sl_json_span *last = &recs[first[j] - 1];
                if (dst[j] < last->off + last->len)
                        goto refuse;
        }
        tl = sl_malloc(tail ? tail : 1);
        memcpy(tl, body + arr_close, tail);
        c->chunk = sl_malloc(n * sizeof(char *));
        c->len = sl_malloc(n * sizeof(size_t));
        for (size_t j = n; j-- > 0;) {
                size_t from = j ? recs[first[j]].off : head;
                const struct sl_json_span *z = &recs[first[j + 1] - 1];
                size_t span = z->off + z->len - from;
                char *w = body + dst[j];

                memmove(w + head, body + from, span);
                if (j > 0)
                        memcpy(w, body, head);
                memcpy(w + head + span, tl, tail);
                c->chunk[j] = w;
                c->len[j] = head + span + tail;
                w[c->len[j]] = '\0';
        }
        free(tl);
        free(first);
        free(dst);
        c->block = body;
        c->block_bytes = cap;
        c->n = n;
        return n;
refuse:
        free(first);
        free(dst);
        return 0;
}

size_t fetch_split(const char *text, size_t len, const char *path,
                   size_t max_bytes, struct fetch_chunks *c)
{
        size_t open, close, n;
        struct sl_json_span *recs;
        long nrec = sl_json_locate_array(text, len, path, &open, &close, &recs);

        memset(c, 0, sizeof(*c));
        if (nrec < 0)
                return 0;
        n = fetch_split_spans(text, len, open, close, recs, (size_t)nrec,
                              max_bytes, c);
        free(recs);
        return n;
}

void fetch_chunks_free(struct fetch_chunks *c)
{
        free(c->block);
        free(c->chunk);
        free(c->len);
        memset(c, 0, sizeof(*c));
}

/* ---- publishing ---- */

static long count_records(const struct fetch_out *o, json_t *json)
{
        json_t *arr;

        if (!json)
                return 0;
        arr = strcmp(o->records_path, "$") == 0
                  ? json
                  : sl_jsonpath_get(json, o->records_path);
        return json_is_array(arr) ? (long)json_array_size(arr) : 0;
}

/* blk: value lies in blk, which the message references until its delivery
 * report; NULL: librdkafka copies value */
static int produce_one(struct fetch_out *o, const struct fetch_page *p,
                       const char *chunk, const void *value, size_t len,
                       struct fetch_block *blk, char *errstr,
                       size_t errstr_size)
{
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(9);
        rd_kafka_resp_err_t err;
        char num[32], when[40], key[512];

        sl_kafka_header_add(hdrs, "source", o->source);
        sl_kafka_header_add(hdrs, "run", o->run);
        snprintf(num, sizeof(num), "%ld", p->page);
        sl_kafka_header_add(hdrs, "page", num);
        sl_kafka_header_add(hdrs, "chunk", chunk);
        sl_kafka_header_add(hdrs, "url", p->url);
        sl_time_format(p->fetched_wall_ms, when, sizeof(when));
        sl_kafka_header_add(hdrs, "fetched_at", when);
        snprintf(num, sizeof(num), "%ld", p->http_status);
        sl_kafka_header_add(hdrs, "http_status", num);
        sl_kafka_header_add(hdrs, "content_type",
                            p->content_type ? p->content_type : "");
        sl_kafka_header_add(hdrs, "records_path", o->records_path);
        if (p->source_format)
                sl_kafka_header_add(hdrs, "source_format", p->source_format);
        snprintf(key, sizeof(key), "%s:%s:%ld:%s", o->source, o->run, p->page,
                 chunk);
        /* the message's reference is taken before it is produced: the
         * producer serves delivery reports before it returns (a poll after
         * every message, and on a full queue), and a chunk delivered
         * before its reference was counted took the block's last one,
         * freed it while its other chunks were still to be produced from
         * it, and freed it again at the end (a fetcher preempted between
         * produce and poll on a busy machine: "corrupted size vs.
         * prev_size") */
        if (blk)
                blk->refs++;
        err = sl_kafka_produce_flags(o->rk, o->topic, RD_KAFKA_PARTITION_UA,
                                     key, strlen(key), value, len, hdrs,
                                     blk ? (void *)blk : (void *)o,
                                     blk ? 0 : RD_KAFKA_MSG_F_COPY);
        if (err) {
                /* not queued: no report will come for it (the caller still
                 * holds its own reference, so this is never the last) */
                if (blk)
                        blk->refs--;
                snprintf(errstr, errstr_size, "could not produce to %s: %s",
                         o->topic, rd_kafka_err2str(err));
                return -1;
        }
        o->produced++;
        return 0;
}

long fetch_out_page(struct fetch_out *o, const struct fetch_page *p,
                    char *errstr, size_t errstr_size)
{
        long nrec = p->nrec >= 0 ? p->nrec : count_records(o, p->json);
        struct fetch_chunks c = {0};
        struct fetch_block *blk = NULL;
        long rc = nrec;
        int in_place = 0;

        /* the raw topic's readers must keep up: waits rather than
         * publishing what the broker would drop unread */
        fetch_bp_wait(&o->bp, o->rk, p->len);
        /* memory: the blocks of pages published before must drain first
         * (the delivery reports free them) */
        while (p->len > o->max_bytes && o->block_bytes > FETCH_BLOCKS_MAX &&
               !sl_stop)
                rd_kafka_poll(o->rk, 50);
        /* in the page's own buffer when it may be taken: no second copy
         * of the page, and no fresh memory to fault in (the copy into a
         * new block cost more in page faults than in bytes moved) */
        if (p->len > o->max_bytes && p->nrec >= 0 && p->own &&
            p->own->data == p->body &&
            fetch_split_in_place(p->own->data, p->len, p->own->cap, p->arr_open,
                                 p->arr_close, p->recs, (size_t)p->nrec,
                                 o->max_bytes, &c) > 0) {
                p->own->data = NULL;
                p->own->len = p->own->cap = 0;
                in_place = 1;
        } else if (p->len > o->max_bytes && p->nrec >= 0)
                fetch_split_spans(p->body, p->len, p->arr_open, p->arr_close,
                                  p->recs, (size_t)p->nrec, o->max_bytes, &c);
        else if (p->len > o->max_bytes)
                fetch_split(p->body, p->len, o->records_path, o->max_bytes, &c);
        if (c.n <= 1) {
                if (p->len > o->max_bytes)
                        sl_warn("event=page_unsplittable source=%s page=%ld "
                                "bytes=%zu",
                                o->source, p->page, p->len);
                if (produce_one(o, p, "0", p->body, p->len, NULL, errstr,
                                errstr_size) < 0)
                        rc = -1;
                goto out;
        }
        blk = sl_malloc(sizeof(*blk));
        blk->mem = c.block;
        blk->bytes = c.block_bytes;
        blk->refs = 1;
        o->block_bytes += blk->bytes;
        c.block = NULL;
        for (size_t i = 0; i < c.n; i++) {
                char chunk[48];
                snprintf(chunk, sizeof(chunk), "%zu/%zu", i, c.n);
                if (produce_one(o, p, chunk, c.chunk[i], c.len[i], blk, errstr,
                                errstr_size) < 0) {
                        rc = -1;
                        break;
                }
        }
        sl_debug("event=page_split source=%s page=%ld chunks=%zu "
                 "in_place=%d",
                 o->source, p->page, c.n, in_place);
out:
        if (blk && --blk->refs == 0) {
                o->block_bytes -= blk->bytes;
                free(blk->mem);
                free(blk);
        }
        fetch_chunks_free(&c);
        return rc;
}

#define DEAD_BODY_MAX ((size_t)256 << 10)

int fetch_out_dead(struct fetch_out *o, const struct fetch_page *p,
                   const char *reason, int with_body, char *errstr,
                   size_t errstr_size)
{
        json_t *d = json_object(), *lin = json_object();
        size_t keep = with_body ? p->len : 0;
        struct sl_buf b;
        char when[40], key[512], num[32];
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(3);
        rd_kafka_resp_err_t err;
        char *text;

        if (keep > DEAD_BODY_MAX)
                keep = DEAD_BODY_MAX;
        sl_time_format(p->fetched_wall_ms, when, sizeof(when));
        json_object_set_new(lin, "source", json_string(o->source));
        json_object_set_new(lin, "run", json_string(o->run));
        json_object_set_new(lin, "page", json_integer(p->page));
        json_object_set_new(lin, "url", json_string(p->url));
        json_object_set_new(lin, "fetched_at", json_string(when));
        json_object_set_new(lin, "http_status", json_integer(p->http_status));
        json_object_set_new(d, "v", json_integer(1));
        json_object_set_new(d, "stage", json_string("fetch"));
        json_object_set_new(d, "error", json_string(reason));
        json_object_set_new(d, "source", json_string(o->source));
        json_object_set_new(d, "lineage", lin);
        sl_buf_init(&b, 0);
        sl_buf_utf8(&b, p->body, keep);
        json_object_set_new(d, "page",
                            json_stringn(b.data ? b.data : "", b.len));
        sl_buf_reset(&b);
        if (keep) {
                sl_buf_base64(&b, p->body, keep);
                json_object_set_new(d, "page_base64",
                                    json_stringn(b.data, b.len));
        }
        sl_buf_free(&b);
        if (with_body)
                json_object_set_new(d, "page_bytes",
                                    json_integer((json_int_t)p->len));
        if (keep < p->len || !with_body)
                json_object_set_new(d, "page_truncated", json_true());
        sl_time_format(sl_wall_ms(), when, sizeof(when));
        json_object_set_new(d, "failed_at", json_string(when));
        text = json_dumps(d, JSON_COMPACT);
        json_decref(d);
        sl_kafka_header_add(hdrs, "source", o->source);
        sl_kafka_header_add(hdrs, "run", o->run);
        snprintf(num, sizeof(num), "%ld", p->page);
        sl_kafka_header_add(hdrs, "page", num);
        snprintf(key, sizeof(key), "%s:%s:%ld", o->source, o->run, p->page);
        err = sl_kafka_produce(o->rk, FETCH_DLQ_TOPIC, RD_KAFKA_PARTITION_UA,
                               key, strlen(key), text, strlen(text), hdrs, o);
        free(text);
        if (err) {
                snprintf(errstr, errstr_size, "could not produce to %s: %s",
                         FETCH_DLQ_TOPIC, rd_kafka_err2str(err));
                return -1;
        }
        o->produced++;
        return 0;
}

int fetch_out_wait(struct fetch_out *o, int timeout_ms, char *errstr,
                   size_t errstr_size)
{
        int64_t until = sl_now_ms() + timeout_ms;

        /* flush, not poll: it sends what lingers now (the end of a window
         * and the state write each waited linger.ms) and serves the
         * delivery reports */
        while (o->delivered + o->failed < o->produced && sl_now_ms() < until)
                rd_kafka_flush(o->rk, 100);
        if (o->failed) {
                snprintf(errstr, errstr_size,
                         "%ld of %ld messages were not delivered: %s",
                         o->failed, o->produced, o->last_error);
                return -1;
        }
        if (o->delivered < o->produced) {
                snprintf(errstr, errstr_size,
                         "%ld messages still undelivered after %d ms",
                         o->produced - o->delivered, timeout_ms);
                return -1;
        }
        return 0;
}

int fetch_out_state(struct fetch_out *o, const char *cursor, long pages,
                    long records, char *errstr, size_t errstr_size)
{
        char when[40];
        json_t *v;
        char *text;
        rd_kafka_resp_err_t err;

        sl_time_format(sl_wall_ms(), when, sizeof(when));
        v = json_pack("{s:s, s:o, s:s, s:I, s:I, s:s}", "source", o->source,
                      "cursor", cursor ? json_string(cursor) : json_null(),
                      "run", o->run, "pages", (json_int_t)pages, "records",
                      (json_int_t)records, "updated_at", when);
        text = json_dumps(v, JSON_COMPACT);
        json_decref(v);
        err = sl_kafka_produce(o->rk, FETCH_STATE_TOPIC, RD_KAFKA_PARTITION_UA,
                               o->source, strlen(o->source), text, strlen(text),
                               NULL, o);
        free(text);
        if (err) {
                snprintf(errstr, errstr_size, "could not produce to %s: %s",
                         FETCH_STATE_TOPIC, rd_kafka_err2str(err));
                return -1;
        }
        o->produced++;
        return fetch_out_wait(o, 60000, errstr, errstr_size);
}

int fetch_state_read(const char *source, json_t **state, char *errstr,
                     size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        const struct rd_kafka_metadata_topic *mt = NULL;
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_t *rk = NULL;
        rd_kafka_resp_err_t err;
        int64_t *high = NULL;
        int *reached = NULL;
        int left, rc = -1;
        char group[160];

        *state = NULL;
        snprintf(group, sizeof(group), "sluice-fetch-state-%s", source);
        rk = sl_kafka_consumer_new(NULL, group, errstr, errstr_size);
        if (!rk)
                goto out;
        err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
        if (err) {
                snprintf(errstr, errstr_size,
                         "could not read metadata from %s: %s",
                         sl_kafka_brokers(), rd_kafka_err2str(err));
                goto out;
        }
        for (int i = 0; i < md->topic_cnt; i++)
                if (strcmp(md->topics[i].topic, FETCH_STATE_TOPIC) == 0)
                        mt = &md->topics[i];
        if (!mt || mt->partition_cnt == 0) {
                rc = 0; /* never written: no state */
                goto out;
        }
        parts = rd_kafka_topic_partition_list_new(mt->partition_cnt);
        high = sl_calloc((size_t)mt->partition_cnt, sizeof(*high));
        reached = sl_calloc((size_t)mt->partition_cnt, sizeof(*reached));
        left = 0;
        for (int i = 0; i < mt->partition_cnt; i++) {
                int64_t low = 0;
                int32_t id = mt->partitions[i].id;
                err = rd_kafka_query_watermark_offsets(
                    rk, FETCH_STATE_TOPIC, id, &low, &high[i], 10000);
                if (err) {
                        snprintf(errstr, errstr_size,
                                 "could not read watermarks of %s: %s",
                                 FETCH_STATE_TOPIC, rd_kafka_err2str(err));
                        goto out;
                }
                if (high[i] <= low) {
                        reached[i] = 1;
                        continue;
                }
                rd_kafka_topic_partition_list_add(parts, FETCH_STATE_TOPIC, id)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
                left++;
        }
        if (left == 0) {
                rc = 0;
                goto out;
        }
        rd_kafka_assign(rk, parts);
        {
                int64_t until = sl_now_ms() + 30000;
                while (left > 0 && sl_now_ms() < until && !sl_stop) {
                        rd_kafka_message_t *rkm =
                            rd_kafka_consumer_poll(rk, 200);
                        int idx = -1;
                        if (!rkm)
                                continue;
                        if (rkm->err) {
                                rd_kafka_message_destroy(rkm);
                                continue;
                        }
                        for (int i = 0; i < mt->partition_cnt; i++)
                                if (mt->partitions[i].id == rkm->partition)
                                        idx = i;
                        if (rkm->key && rkm->key_len == strlen(source) &&
                            memcmp(rkm->key, source, rkm->key_len) == 0) {
                                json_t *v =
                                    json_loadb(rkm->payload, rkm->len, 0, NULL);
                                if (json_is_object(v)) {
                                        json_decref(*state);
                                        *state = v;
                                } else {
                                        json_decref(v);
                                        sl_warn("event=state_bad source=%s "
                                                "offset=%lld",
                                                source, (long long)rkm->offset);
                                }
                        }
                        if (idx >= 0 && !reached[idx] &&
                            rkm->offset + 1 >= high[idx]) {
                                reached[idx] = 1;
                                left--;
                        }
                        rd_kafka_message_destroy(rkm);
                }
        }
        if (left > 0) {
                snprintf(errstr, errstr_size,
                         "could not read %s to its end in 30 s",
                         FETCH_STATE_TOPIC);
                json_decref(*state);
                *state = NULL;
                goto out;
        }
        rc = 0;
out:
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        free(high);
        free(reached);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        return rc;
}

/* ---- the stand-by lock ---- */

int fetch_lock_init(struct fetch_lock *l, const char *source, char *errstr,
                    size_t errstr_size)
{
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_topic_partition_list_t *topics = NULL;
        rd_kafka_t *prod = NULL;
        rd_kafka_resp_err_t err;
        char group[160];
        int rc = -1;

        memset(l, 0, sizeof(*l));
        /* the lock topic must exist before a member subscribes: a produce
         * creates it where topics are auto-created */
        prod = sl_kafka_producer_new(NULL, errstr, errstr_size);
        if (!prod)
                goto out;
        err = sl_kafka_produce(prod, FETCH_LOCK_TOPIC, RD_KAFKA_PARTITION_UA,
                               source, strlen(source), "", 0, NULL, NULL);
        if (err || sl_kafka_flush(prod, 30000) != 0) {
                snprintf(errstr, errstr_size, "could not write to %s on %s: %s",
                         FETCH_LOCK_TOPIC, sl_kafka_brokers(),
                         err ? rd_kafka_err2str(err) : "flush timed out");
                goto out;
        }
        conf = sl_kafka_conf_new("consumer", errstr, errstr_size);
        if (!conf)
                goto out;
        if (sl_kafka_conf_set(conf, "partition.assignment.strategy",
                              "cooperative-sticky", errstr, errstr_size) < 0 ||
            /* the lock's own defaults, which the user may override
             * (they were set over the user's settings before) */
            sl_kafka_conf_default(conf, "session.timeout.ms", "6000", errstr,
                                  errstr_size) < 0 ||
            sl_kafka_conf_default(conf, "heartbeat.interval.ms", "500", errstr,
                                  errstr_size) < 0) {
                rd_kafka_conf_destroy(conf);
                goto out;
        }
        snprintf(group, sizeof(group), "sluice-fetch-%s", source);
        l->rk = sl_kafka_consumer_new(conf, group, errstr, errstr_size);
        conf = NULL;
        if (!l->rk)
                goto out;
        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, FETCH_LOCK_TOPIC,
                                          RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(l->rk, topics);
        if (err) {
                snprintf(errstr, errstr_size, "could not subscribe to %s: %s",
                         FETCH_LOCK_TOPIC, rd_kafka_err2str(err));
                goto out;
        }
        rc = 0;
out:
        if (topics)
                rd_kafka_topic_partition_list_destroy(topics);
        if (prod)
                rd_kafka_destroy(prod);
        return rc;
}

int fetch_lock_poll(struct fetch_lock *l, int timeout_ms)
{
        rd_kafka_topic_partition_list_t *asg = NULL;
        rd_kafka_message_t *rkm;
        int owner = 0;

        rkm = rd_kafka_consumer_poll(l->rk, timeout_ms);
        if (rkm)
                rd_kafka_message_destroy(rkm);
        if (rd_kafka_assignment(l->rk, &asg) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                owner = rd_kafka_topic_partition_list_find(
                            asg, FETCH_LOCK_TOPIC, 0) != NULL;
                rd_kafka_topic_partition_list_destroy(asg);
        }
        if (l->owner && !owner)
                l->lost = 1;
        l->owner = owner;
        return owner;
}

void fetch_lock_abandon(struct fetch_lock *l)
{
        l->rk = NULL;
}

void fetch_lock_free(struct fetch_lock *l)
{
        if (l->rk) {
                rd_kafka_consumer_close(l->rk);
                rd_kafka_destroy(l->rk);
        }
        l->rk = NULL;
}
