/* lookup_worker: consume, look up, publish, wait for delivery, commit.
 * The input offsets are committed only after every answer and dead
 * letter of the batch is delivered and marked published in the cache, so
 * a crash repeats a batch, and the repeat is answered from the cache
 * (republishing what was recorded but not delivered) without asking the
 * API again. */
#include "lookup_worker.h"
#include "fetch_http.h"
#include "fetch_policy.h"
#include "fetch_sync.h"
#include "lookup_db.h"
#include "sl_http.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_pg.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One observable of the batch in hand. */
struct item {
        char *obs;
        const char *type; /* borrowed from the definition */
        int done;
        int out; /* an output of it was produced this batch */
        int pub; /* that output delivered and marked published */
};

struct lworker {
        const struct lookup_def *d;
        const char *base_url;
        char me[128]; /* this worker, in claims */
        char topic[160];
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        PGconn *conn;
        struct fetch_http http;
        int delivery_failures;
        int produce_failures;
        struct item *items;
        size_t nitems, cap;
        long quota_left;
        /* the consumer's partitions are paused while a batch waits (held),
         * and messages the consumer still hands out meanwhile are kept
         * for the next batch, in order */
        int held;
        int64_t polled_at;
        rd_kafka_message_t **kept;
        size_t nkept, kept_cap;
        /* the answer of the request in flight (done callback) */
        long status;
        char *body;
        json_t *json;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
        struct lworker *w = opaque;
        (void)rk;
        if (rkm->err) {
                w->delivery_failures++;
                sl_metric_inc(SL_M_ERRORS, SL_LV("kafka_delivery"));
                sl_warn("event=delivery_failed topic=%s err=%s",
                        rd_kafka_topic_name(rkm->rkt),
                        rd_kafka_err2name(rkm->err));
        }
}

static void produce(struct lworker *w, const char *topic, const char *key,
                    const char *value, size_t len, rd_kafka_headers_t *hdrs)
{
        rd_kafka_resp_err_t err =
            sl_kafka_produce(w->producer, topic, RD_KAFKA_PARTITION_UA, key,
                             key ? strlen(key) : 0, value, len, hdrs, NULL);
        if (err) {
                sl_metric_inc(SL_M_ERRORS, SL_LV("kafka_produce"));
                sl_warn("event=produce_failed topic=%s err=%s", topic,
                        rd_kafka_err2name(err));
                w->produce_failures++;
        }
}

/* An answer to raw.<lookup>: the body as received, headers naming the
 * observable(s). */
static void publish_answer(struct lworker *w, const char *const *obs, size_t n,
                           const char *type, const char *outcome, int status,
                           const char *body)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(12);
        char st[16], at[40];
        struct sl_buf joined;

        sl_buf_init(&joined, 0);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        sl_buf_puts(&joined, ",");
                sl_buf_puts(&joined, obs[i]);
        }
        snprintf(st, sizeof(st), "%d", status);
        sl_time_format(sl_wall_ms(), at, sizeof(at));
        sl_kafka_header_add(h, "source", w->d->name);
        sl_kafka_header_add(h, "lookup", w->d->name);
        sl_kafka_header_add(h, "observable", obs[0]);
        sl_kafka_header_add(h, "observables", joined.data ? joined.data : "");
        sl_kafka_header_add(h, "observable_type", type);
        sl_kafka_header_add(h, "outcome", outcome);
        sl_kafka_header_add(h, "http_status", st);
        sl_kafka_header_add(h, "fetched_at", at);
        sl_kafka_header_add(h, "page", "0");
        sl_kafka_header_add(h, "content_type", "application/json");
        produce(w, w->topic, obs[0], body, strlen(body), h);
        sl_buf_free(&joined);
}

static void publish_dead(struct lworker *w, const char *obs, const char *type,
                         const char *error, int status, const char *body)
{
        json_t *d = json_object();
        char *text;

        json_object_set_new(d, "v", json_integer(1));
        json_object_set_new(d, "stage", json_string("lookup"));
        json_object_set_new(d, "lookup", json_string(w->d->name));
        json_object_set_new(d, "observable", json_string(obs));
        json_object_set_new(d, "observable_type", json_string(type));
        json_object_set_new(d, "error", json_string(error ? error : "error"));
        if (status)
                json_object_set_new(d, "http_status", json_integer(status));
        if (body && *body)
                json_object_set_new(d, "answer", json_string(body));
        text = json_dumps(d, JSON_COMPACT);
        if (text)
                produce(w, LOOKUP_DLQ_TOPIC, obs, text, strlen(text), NULL);
        free(text);
        json_decref(d);
        sl_metric_inc(SL_M_RECORDS_OUT, SL_LV(w->d->name, "dead_letter"));
}

/* ---- observables of a message ---- */

static void item_add(struct lworker *w, const char *obs, const char *type)
{
        for (size_t i = 0; i < w->nitems; i++)
                if (strcmp(w->items[i].obs, obs) == 0)
                        return;
        if (w->nitems == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 64;
                w->items = sl_realloc(w->items, w->cap * sizeof(*w->items));
        }
        w->items[w->nitems].obs = sl_strdup(obs);
        w->items[w->nitems].type = type;
        w->items[w->nitems].done = 0;
        w->items[w->nitems].out = 0;
        w->items[w->nitems].pub = 0;
        w->nitems++;
}

struct each_ctx {
        struct lworker *w;
        const struct lookup_obs *o;
};

static int each_obs(json_t *match, void *opaque)
{
        struct each_ctx *c = opaque;
        const char *s = json_string_value(match);

        char host[256];

        if (!s || !*s || strlen(s) >= 2048)
                return 0;
        if (c->o->url_host) {
                if (lookup_url_host(s, host, sizeof(host)) < 0)
                        return 0;
                s = host;
        }
        item_add(c->w, s, c->o->type);
        return 0;
}

static int where_ok(const struct lookup_def *d, json_t *msg)
{
        json_t *v, *want;
        size_t i;

        if (!d->where_path)
                return 1;
        v = sl_jsonpath_first(d->where_path, msg);
        if (!v)
                return 0;
        json_array_foreach(d->where_values, i,
                           want) if (json_equal(v, want)) return 1;
        return 0;
}

static void read_message(struct lworker *w, const rd_kafka_message_t *rkm)
{
        json_error_t jerr;
        json_t *msg;

        if (!rkm->payload || !rkm->len)
                return;
        msg = json_loadb(rkm->payload, rkm->len, 0, &jerr);
        if (!msg) {
                sl_warn("event=input_not_json topic=%s partition=%d "
                        "offset=%lld",
                        rd_kafka_topic_name(rkm->rkt), (int)rkm->partition,
                        (long long)rkm->offset);
                return;
        }
        if (where_ok(w->d, msg))
                for (int i = 0; i < w->d->nobs; i++) {
                        struct each_ctx c = {w, &w->d->obs[i]};
                        sl_jsonpath_each(w->d->obs[i].path, msg, each_obs, &c);
                }
        json_decref(msg);
}

/* ---- asking ---- */

static char *encode_join(const struct lookup_def *d, const char *const *obs,
                         size_t n)
{
        struct sl_buf b;

        sl_buf_init(&b, 0);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        sl_buf_puts(&b, d->batch_sep);
                sl_buf_puts(&b, obs[i]);
        }
        return sl_buf_steal(&b, NULL);
}

/* The request about obs[0..n). NULL with errstr. */
static struct fetch_req *build(struct lworker *w, const char *const *obs,
                               size_t n, const char *type, char *errstr,
                               size_t errstr_size)
{
        const struct fetch_source *src = w->d->src;
        struct fetch_vars vars = {0};
        char *joined = encode_join(w->d, obs, n);
        char *enc = fetch_url_encode(obs[0]);
        char *path = NULL, *url, *masked;
        const char *secret[16];
        int nsecret = 0;
        char sep = '?';
        struct sl_buf b;
        struct fetch_req *r = NULL;
        const char *key;
        json_t *v;

        sl_buf_init(&b, 0);
        /* in the path, the observable is a path segment: encoded */
        fetch_vars_set(&vars, "observable", enc);
        fetch_vars_set(&vars, "observables", joined);
        fetch_vars_set(&vars, "type", type);
        path = fetch_template(src->req_path, &vars, NULL, errstr, errstr_size);
        if (!path)
                goto out;
        sl_buf_puts(&b, w->base_url);
        sl_buf_puts(&b, path);
        if (strchr(path, '?'))
                sep = '&';
        /* in the query and body, values are encoded once, as a whole */
        vars.n = 0;
        fetch_vars_set(&vars, "observable", obs[0]);
        fetch_vars_set(&vars, "observables", joined);
        fetch_vars_set(&vars, "type", type);
        json_object_foreach(src->query, key, v)
        {
                int is_secret = 0;
                char *val = fetch_template(json_string_value(v), &vars,
                                           &is_secret, errstr, errstr_size);
                char *ek, *ev;
                if (!val)
                        goto out;
                if (is_secret && nsecret < 15)
                        secret[nsecret++] = key;
                ek = fetch_url_encode(key);
                ev = fetch_url_encode(val);
                sl_buf_printf(&b, "%c%s=%s", sep, ek, ev);
                sep = '&';
                free(ek);
                free(ev);
                free(val);
        }
        if (src->auth == FETCH_AUTH_QUERY) {
                const char *k = getenv(src->auth_env);
                if (k && *k) {
                        char *ek = fetch_url_encode(k);
                        sl_buf_printf(&b, "%c%s=%s", sep, src->auth_name, ek);
                        free(ek);
                }
                secret[nsecret++] = src->auth_name;
        }
        url = sl_buf_steal(&b, NULL);
        masked = fetch_url_mask(url, secret, nsecret);
        r = fetch_req_new(url, masked, src->method);
        if (json_is_string(src->body)) {
                /* a form body: the observable encoded as a form value */
                char *eo = fetch_url_encode(obs[0]);
                char *ej = fetch_url_encode(joined);
                vars.n = 0;
                fetch_vars_set(&vars, "observable", eo);
                fetch_vars_set(&vars, "observables", ej);
                fetch_vars_set(&vars, "type", type);
                r->body = fetch_template(json_string_value(src->body), &vars,
                                         NULL, errstr, errstr_size);
                free(eo);
                free(ej);
                if (!r->body) {
                        fetch_req_destroy(r);
                        r = NULL;
                        goto out;
                }
        } else if (src->body) {
                r->body = json_dumps(src->body, JSON_COMPACT);
                r->body_json = 1;
        }
        for (int i = 0; i < w->d->not_found_n && i < 4; i++)
                r->accept[r->accept_n++] = w->d->not_found_status[i];
out:
        sl_buf_free(&b);
        free(path);
        free(enc);
        free(joined);
        return r;
}

static int on_done(struct fetch_req *r, void *opaque, char *errstr,
                   size_t errstr_size)
{
        struct lworker *w = opaque;
        (void)errstr;
        (void)errstr_size;
        w->status = r->status;
        free(w->body);
        w->body = sl_strndup(r->resp.data ? r->resp.data : "", r->resp.len);
        json_decref(w->json);
        w->json = json_incref(r->json);
        return 0;
}

static int is_nf_status(const struct lookup_def *d, long status)
{
        for (int i = 0; i < d->not_found_n; i++)
                if (d->not_found_status[i] == status)
                        return 1;
        return 0;
}

/* found or not_found for obs in an answer (w->status, w->json). */
static const char *classify(struct lworker *w, const char *obs)
{
        const struct lookup_def *d = w->d;
        json_t *recs, *rec, *v;
        size_t i;

        if (is_nf_status(d, w->status))
                return "not_found";
        if (d->nf_path && w->json) {
                v = sl_jsonpath_first(d->nf_path, w->json);
                json_array_foreach(
                    d->nf_values, i,
                    rec) if (v && json_equal(v, rec)) return "not_found";
        }
        if (d->records) {
                recs = sl_jsonpath_first(d->records, w->json);
                json_array_foreach(recs, i, rec)
                {
                        v = sl_jsonpath_first(d->rec_key, rec);
                        if (json_is_string(v) &&
                            strcmp(json_string_value(v), obs) == 0)
                                return "found";
                }
                return "not_found";
        }
        return "found";
}

/* ---- waiting without leaving the group ---- */

/* Pauses or resumes every partition assigned now. */
static void pause_assigned(struct lworker *w, int pause)
{
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_resp_err_t err;

        err = rd_kafka_assignment(w->consumer, &parts);
        if (!err && parts->cnt > 0)
                err = pause ? rd_kafka_pause_partitions(w->consumer, parts)
                            : rd_kafka_resume_partitions(w->consumer, parts);
        if (err)
                sl_warn("event=%s_failed err=%s", pause ? "pause" : "resume",
                        rd_kafka_err2name(err));
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
}

/* Polls the consumer once, for up to ms. A batch in hand holds the
 * partitions paused, so the poll serves heartbeats, rebalances and
 * max.poll.interval.ms without fetching; a message it hands out all the
 * same (fetched before the pause) is kept for the next batch. */
static void poll_held(struct lworker *w, int ms)
{
        rd_kafka_message_t *rkm;

        if (!w->held) {
                pause_assigned(w, 1);
                w->held = 1;
        }
        rkm = rd_kafka_consumer_poll(w->consumer, ms);
        w->polled_at = sl_now_ms();
        sl_http_tick();
        rd_kafka_poll(w->producer, 0);
        if (!rkm)
                return;
        if (rkm->err) {
                if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        sl_warn("event=consume_error err=%s",
                                rd_kafka_err2name(rkm->err));
                rd_kafka_message_destroy(rkm);
                return;
        }
        if (w->nkept == w->kept_cap) {
                w->kept_cap = w->kept_cap ? w->kept_cap * 2 : 16;
                w->kept = sl_realloc(w->kept, w->kept_cap * sizeof(*w->kept));
        }
        w->kept[w->nkept++] = rkm;
}

/* Waits ms (or until stopped), polling the consumer: a wait for a quota
 * to reset may last hours, and a consumer not polled for
 * max.poll.interval.ms leaves its group. */
static void idle(struct lworker *w, int64_t ms)
{
        int64_t end = sl_now_ms() + ms;

        for (;;) {
                int64_t left = end - sl_now_ms();
                if (sl_stop || left <= 0)
                        return;
                poll_held(w, left > 100 ? 100 : (int)left);
        }
}

/* Polls the consumer when it has not been for a second: a batch that
 * asks for long without waiting stays in the group too. */
static void keep_alive(struct lworker *w)
{
        if (sl_now_ms() - w->polled_at >= 1000)
                poll_held(w, 0);
}

/* The batch is done: the partitions fetch again. */
static void unhold(struct lworker *w)
{
        if (w->held) {
                pause_assigned(w, 0);
                w->held = 0;
        }
}

static int pg_fail(struct lworker *w, const char *what, const char *errstr)
{
        char q[400];
        sl_metric_inc(SL_M_ERRORS, SL_LV("database"));
        sl_warn("event=db_failed op=%s err=%s", what,
                sl_log_quote(errstr, q, sizeof(q)));
        if (PQstatus(w->conn) != CONNECTION_OK)
                PQreset(w->conn);
        idle(w, 1000);
        return -1;
}

/* Before a long wait: the outputs produced so far are delivered and
 * marked published now rather than when the batch ends, which ends their
 * claims (lookup_db_record keeps them until then) before they can run
 * out: a claim run out lets another worker publish the answer again.
 * Nothing is marked when a delivery failed (the batch is repeated). */
static void deliver_early(struct lworker *w)
{
        int64_t deadline = sl_now_ms() + 10000;
        char errstr[400];
        const char **obs;
        size_t n = 0;

        for (size_t i = 0; i < w->nitems; i++)
                if (w->items[i].out && !w->items[i].pub)
                        n++;
        if (n == 0)
                return;
        while (rd_kafka_outq_len(w->producer) > 0 && sl_now_ms() < deadline) {
                rd_kafka_flush(w->producer, 500);
                keep_alive(w);
        }
        if (rd_kafka_outq_len(w->producer) > 0 || w->delivery_failures ||
            w->produce_failures)
                return;
        obs = sl_calloc(n, sizeof(*obs));
        n = 0;
        for (size_t i = 0; i < w->nitems; i++)
                if (w->items[i].out && !w->items[i].pub)
                        obs[n++] = w->items[i].obs;
        if (lookup_db_published(w->conn, w->d, obs, n, errstr,
                                sizeof(errstr)) == 0) {
                for (size_t i = 0; i < w->nitems; i++)
                        if (w->items[i].out)
                                w->items[i].pub = 1;
        } else {
                /* the batch's end marks them, or repeats the batch */
                char q[400];
                sl_warn("event=db_failed op=published err=%s",
                        sl_log_quote(errstr, q, sizeof(q)));
        }
        free(obs);
}

/* Waits for a token and a unit of quota for a request about type, and
 * marks obs[0..n) sent with it (ok[i] set for those still mine). 0 when
 * taken, -1 when stopped or the database failed. */
static int take(struct lworker *w, const char *type, const char *const *obs,
                size_t n, int *ok)
{
        char errstr[400];
        int64_t wait, due = 0, t0 = sl_now_ms();
        int quota_wait, waits = 0;

        for (;;) {
                int64_t sent_at;

                if (sl_stop)
                        return -1;
                keep_alive(w);
                sent_at = sl_now_ms();
                wait = lookup_db_take(w->conn, w->d, type, w->me, obs, n, ok,
                                      &quota_wait, &w->quota_left, errstr,
                                      sizeof(errstr));
                if (wait == 0)
                        /* late: how long after the token was due it was
                         * taken (the slack of lookup_db_take covers a few
                         * ms of it) */
                        sl_debug("event=token lookup=%s waits=%d "
                                 "took_ms=%lld late_ms=%lld",
                                 w->d->name, waits,
                                 (long long)(sl_now_ms() - t0),
                                 (long long)(due ? sl_now_ms() - due : 0));
                if (w->quota_left >= 0)
                        sl_metric_set(SL_M_LOOKUP_QUOTA_LEFT, SL_LV(w->d->name),
                                      (double)w->quota_left);
                if (wait < 0)
                        return pg_fail(w, "take", errstr);
                if (wait == 0)
                        return 0;
                sl_metric_inc(SL_M_LOOKUP_WAITS,
                              SL_LV(w->d->name, quota_wait ? "quota" : "rate"));
                if (quota_wait)
                        sl_info("event=quota_spent lookup=%s wait_ms=%lld",
                                w->d->name, (long long)wait);
                /* polling: a stop or a health probe is not kept waiting,
                 * and the group keeps this worker */
                waits++;
                /* from when the statement went out: the server read its
                 * clock after that, so the token is not yet due then, and
                 * the time the answer took to come back is not waited
                 * twice */
                due = sent_at + wait;
                if (wait >= 1000)
                        deliver_early(w);
                idle(w, due - sl_now_ms());
        }
}

/* Records outcome for obs[i] of a request and produces its output. */
static void settle(struct lworker *w, struct item **its, size_t n,
                   const char *const *obs, const char *outcome,
                   const char *error)
{
        char errstr[400];
        const char *body = w->body ? w->body : "";

        for (size_t i = 0; i < n; i++) {
                const char *oc = outcome ? outcome : classify(w, obs[i]);
                while (lookup_db_record(w->conn, w->d, w->me, obs[i], oc,
                                        (int)w->status, body, error, errstr,
                                        sizeof(errstr)) < 0) {
                        pg_fail(w, "record", errstr);
                        if (sl_stop)
                                return;
                }
                sl_metric_inc(SL_M_LOOKUPS, SL_LV(w->d->name, oc));
                if (strcmp(oc, "error") == 0)
                        publish_dead(w, obs[i], its[i]->type, error,
                                     (int)w->status, body);
                its[i]->out = 1;
                its[i]->done = 1;
        }
        if (!outcome || strcmp(outcome, "error") != 0) {
                /* one answer, however many observables it answers */
                const char *oc = outcome ? outcome : classify(w, obs[0]);
                publish_answer(w, obs, n, its[0]->type, oc, (int)w->status,
                               body);
        }
}

/* Asks about its[0..n) (claimed, same type). 0, or -1 when stopped. */
static int ask(struct lworker *w, struct item **its, size_t n)
{
        const char **obs = sl_calloc(n, sizeof(*obs));
        int *ok = sl_calloc(n, sizeof(*ok));
        struct fetch_req *r = NULL;
        char errstr[600];
        int attempt = 0, rc = -1;
        int64_t t_http;
        size_t m;

        for (;;) {
                m = 0;
                for (size_t i = 0; i < n; i++)
                        obs[i] = its[i]->obs;
                if (take(w, its[0]->type, obs, n, ok) < 0)
                        goto out;
                /* a claim taken over meanwhile: left to its new owner,
                 * resolved again by the caller */
                for (size_t i = 0; i < n; i++)
                        if (ok[i])
                                its[m++] = its[i];
                if (m == 0) {
                        rc = 0;
                        goto out;
                }
                n = m;
                for (size_t i = 0; i < n; i++)
                        obs[i] = its[i]->obs;
                fetch_req_destroy(r);
                r = build(w, obs, n, its[0]->type, errstr, sizeof(errstr));
                if (!r) {
                        w->status = 0;
                        settle(w, its, n, obs, "error", errstr);
                        rc = 0;
                        goto out;
                }
                w->status = 0;
                attempt++;
                t_http = sl_now_ms();
                rc = fetch_http_run(&w->http, &r, 1, on_done, w, errstr,
                                    sizeof(errstr));
                if (rc == SL_OK) {
                        int64_t t_settle = sl_now_ms();
                        settle(w, its, n, obs, NULL, NULL);
                        sl_debug("event=asked lookup=%s observables=%zu "
                                 "http_ms=%lld settle_ms=%lld",
                                 w->d->name, n, (long long)(t_settle - t_http),
                                 (long long)(sl_now_ms() - t_settle));
                        rc = 0;
                        goto out;
                }
                if (rc == SL_ERR_FATAL) {
                        char q[700];
                        w->status = r->status;
                        free(w->body);
                        w->body = sl_strndup(r->resp.data ? r->resp.data : "",
                                             r->resp.len);
                        sl_warn("event=lookup_error lookup=%s observable=%s "
                                "err=%s",
                                w->d->name, obs[0],
                                sl_log_quote(errstr, q, sizeof(q)));
                        settle(w, its, n, obs, "error", errstr);
                        rc = 0;
                        goto out;
                }
                /* transient: the API refused or did not answer; not
                 * asked, for the cache: back to pending, try again */
                while (lookup_db_sent(w->conn, w->d, w->me, obs, n, NULL, 1,
                                      errstr, sizeof(errstr)) < 0) {
                        pg_fail(w, "unsend", errstr);
                        if (sl_stop)
                                goto out;
                }
                if (sl_stop)
                        goto out;
                {
                        int64_t wait = fetch_throttle_wait_ms(
                            r->hdr_retry_after, r->hdr_retryafter, r->hdr_reset,
                            sl_wall_ms());
                        char q[700];
                        if (wait < 0)
                                wait = fetch_backoff_ms(
                                    w->d->src->backoff_base_ms,
                                    w->d->src->backoff_max_ms, attempt,
                                    (uint32_t)(sl_now_ms() * 2654435761u));
                        else
                                wait += 50;
                        sl_metric_inc(SL_M_LOOKUP_WAITS,
                                      SL_LV(w->d->name, "retry"));
                        sl_warn("event=lookup_retry lookup=%s observable=%s "
                                "attempt=%d wait_ms=%lld err=%s",
                                w->d->name, obs[0], attempt, (long long)wait,
                                sl_log_quote(errstr, q, sizeof(q)));
                        idle(w, wait);
                }
        }
out:
        fetch_req_destroy(r);
        free(obs);
        free(ok);
        return rc;
}

/* Resolves every item of the batch. 0, or -1 when stopped. */
static int resolve(struct lworker *w)
{
        char errstr[400];

        for (;;) {
                size_t left = 0, busy = 0;
                struct item **claimed =
                    sl_calloc(w->nitems + 1, sizeof(*claimed));
                size_t nc = 0;

                for (size_t i = 0; i < w->nitems && !sl_stop; i++) {
                        struct item *it = &w->items[i];
                        struct lookup_row row;
                        int c;

                        if (it->done)
                                continue;
                        c = lookup_db_claim(w->conn, w->d, w->me, it->obs,
                                            it->type, &row, errstr,
                                            sizeof(errstr));
                        if (c < 0) {
                                pg_fail(w, "claim", errstr);
                                left++;
                                continue;
                        }
                        switch (c) {
                        case LOOKUP_HIT:
                                sl_metric_inc(SL_M_LOOKUP_CACHE,
                                              SL_LV(w->d->name, "hit"));
                                it->done = 1;
                                break;
                        case LOOKUP_UNSENT: {
                                const char *o = it->obs;
                                sl_metric_inc(SL_M_LOOKUP_CACHE,
                                              SL_LV(w->d->name, "hit"));
                                if (strcmp(row.outcome, "error") == 0)
                                        publish_dead(w, it->obs, it->type,
                                                     row.error, row.http_status,
                                                     row.answer);
                                else
                                        publish_answer(
                                            w, &o, 1, it->type, row.outcome,
                                            row.http_status,
                                            row.answer ? row.answer : "");
                                it->out = 1;
                                it->done = 1;
                                break;
                        }
                        case LOOKUP_LOST: {
                                const char *e =
                                    "a worker stopped while asking: the "
                                    "answer was lost, not asked again before "
                                    "cache.error_seconds";
                                struct item *one = it;
                                const char *o = it->obs;
                                w->status = 0;
                                free(w->body);
                                w->body = NULL;
                                settle(w, &one, 1, &o, "error", e);
                                break;
                        }
                        case LOOKUP_BUSY:
                                busy++;
                                left++;
                                break;
                        default:
                                sl_metric_inc(SL_M_LOOKUP_CACHE,
                                              SL_LV(w->d->name, "miss"));
                                claimed[nc++] = it;
                                left++;
                        }
                        lookup_row_free(&row);
                }
                /* ask, in requests of up to batch.max of one type */
                for (size_t i = 0; i < nc && !sl_stop; i++) {
                        struct item **group;
                        const char *type;
                        size_t ng = 0;
                        if (!claimed[i])
                                continue;
                        type = claimed[i]->type;
                        group =
                            sl_calloc((size_t)w->d->batch_max, sizeof(*group));
                        for (size_t k = i;
                             k < nc && ng < (size_t)w->d->batch_max; k++)
                                if (claimed[k] &&
                                    strcmp(claimed[k]->type, type) == 0) {
                                        group[ng++] = claimed[k];
                                        claimed[k] = NULL;
                                }
                        if (ask(w, group, ng) < 0) {
                                free(group);
                                break;
                        }
                        free(group);
                }
                free(claimed);
                if (sl_stop)
                        return -1;
                if (left == 0)
                        return 0;
                if (busy) {
                        /* another worker is asking (or waiting for its
                         * quota): its answer will be in the cache */
                        deliver_early(w);
                        idle(w, 200);
                }
        }
}

/* ---- the batch ---- */

static void items_clear(struct lworker *w)
{
        for (size_t i = 0; i < w->nitems; i++)
                free(w->items[i].obs);
        w->nitems = 0;
}

/* Waits up to timeout_ms for the batch's outputs to be delivered, then
 * marks them published in the cache. 0, or -1 when not all were. */
static int deliver(struct lworker *w, int64_t timeout_ms)
{
        int64_t deadline = sl_now_ms() + timeout_ms;
        char errstr[400];
        const char **obs;
        size_t n = 0;
        int rc;

        while (rd_kafka_outq_len(w->producer) > 0 && sl_now_ms() < deadline) {
                rd_kafka_flush(w->producer, 500);
                keep_alive(w);
        }
        if (rd_kafka_outq_len(w->producer) > 0 || w->delivery_failures ||
            w->produce_failures)
                return -1;
        obs = sl_calloc(w->nitems + 1, sizeof(*obs));
        for (size_t i = 0; i < w->nitems; i++)
                if (w->items[i].out)
                        obs[n++] = w->items[i].obs;
        while ((rc = lookup_db_published(w->conn, w->d, obs, n, errstr,
                                         sizeof(errstr))) < 0 &&
               !sl_stop)
                pg_fail(w, "published", errstr);
        free(obs);
        return rc;
}

static void commit(struct lworker *w, rd_kafka_message_t **msgs, size_t n)
{
        rd_kafka_topic_partition_list_t *offs = sl_kafka_offsets_after(msgs, n);
        rd_kafka_topic_partition_list_t *mine = NULL;
        rd_kafka_resp_err_t err;

        /* a partition revoked while the batch waited is its new owner's
         * now (which answers it from the cache): not committed here */
        err = rd_kafka_assignment(w->consumer, &mine);
        for (int i = offs->cnt - 1; !err && i >= 0; i--) {
                const rd_kafka_topic_partition_t *p = &offs->elems[i];
                if (!rd_kafka_topic_partition_list_find(mine, p->topic,
                                                        p->partition))
                        rd_kafka_topic_partition_list_del_by_idx(offs, i);
        }
        if (mine)
                rd_kafka_topic_partition_list_destroy(mine);
        if (!err && offs->cnt == 0) {
                rd_kafka_topic_partition_list_destroy(offs);
                return;
        }
        err = rd_kafka_commit(w->consumer, offs, 0);
        if (err) {
                /* the batch is repeated by whoever gets the partitions:
                 * answered from the cache */
                sl_metric_inc(SL_M_ERRORS, SL_LV("kafka_commit"));
                sl_warn("event=commit_failed err=%s", rd_kafka_err2name(err));
        }
        rd_kafka_topic_partition_list_destroy(offs);
}

/* 0 when the batch was answered, delivered and committed; -1 when
 * stopped first (nothing committed). */
static int process_held(struct lworker *w, rd_kafka_message_t **msgs, size_t n)
{
        items_clear(w);
        for (size_t i = 0; i < n; i++)
                read_message(w, msgs[i]);
        sl_metric_add(SL_M_RECORDS_IN, SL_LV(w->d->name), (double)w->nitems);
        for (;;) {
                w->delivery_failures = w->produce_failures = 0;
                if (resolve(w) < 0) {
                        /* stopped, maybe in a long wait: what was answered
                         * is delivered and marked so, or the next worker
                         * would publish it again */
                        deliver(w, 3000);
                        return -1;
                }
                if (deliver(w, 330000) == 0)
                        break;
                if (sl_stop)
                        return -1;
                sl_warn("event=batch_retry messages=%zu", n);
                /* produced again from the cache */
                for (size_t i = 0; i < w->nitems; i++)
                        w->items[i].done = w->items[i].out = w->items[i].pub =
                            0;
                idle(w, 1000);
        }
        commit(w, msgs, n);
        return 0;
}

/* 0 when the batch was answered, delivered and committed; -1 when
 * stopped first (nothing committed). The partitions paused while it
 * waited fetch again after it. */
static int process(struct lworker *w, rd_kafka_message_t **msgs, size_t n)
{
        int rc;

        w->polled_at = sl_now_ms();
        rc = process_held(w, msgs, n);
        unhold(w);
        return rc;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        struct lworker *w = opaque;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                sl_info("event=assigned partitions=%d", parts->cnt);
                rd_kafka_assign(rk, parts);
                /* a batch is waiting: its new partitions wait with it */
                if (w->held)
                        rd_kafka_pause_partitions(rk, parts);
        } else {
                /* messages kept from them are their new owner's */
                for (size_t i = 0; i < w->nkept; i++)
                        rd_kafka_message_destroy(w->kept[i]);
                w->nkept = 0;
                /* a batch in hand is not committed: its next owner
                 * answers it from the cache, or waits for this worker's
                 * claims */
                sl_info("event=revoked partitions=%d", parts->cnt);
                rd_kafka_assign(rk, NULL);
        }
}

int lookup_run(const struct lookup_def *d, const struct lookup_opts *opts,
               char *errstr, size_t errstr_size)
{
        struct lworker w = {.d = d};
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_message_t **msgs = NULL;
        rd_kafka_topic_partition_list_t *topics = NULL;
        char host[64] = "";
        size_t n = 0;
        int rc = -1;

        w.base_url = opts->base_url ? opts->base_url : d->src->base_url;
        w.quota_left = -1;
        gethostname(host, sizeof(host) - 1);
        snprintf(w.me, sizeof(w.me), "%s:%ld:%lld", host, (long)getpid(),
                 (long long)sl_wall_ms());
        snprintf(w.topic, sizeof(w.topic), "raw.%s", d->name);
        /* attempts are the worker's: each takes a token and quota */
        d->src->max_attempts = 1;
        if (fetch_http_init(&w.http, d->src, errstr, errstr_size) < 0)
                goto out;
        w.conn = sl_pg_connect(errstr, errstr_size);
        if (!w.conn)
                goto out;
        if (lookup_db_init(w.conn, d, errstr, errstr_size) < 0 ||
            lookup_db_register(w.conn, d, opts->group, errstr, errstr_size) < 0)
                goto out;
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
        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, d->topic,
                                          RD_KAFKA_PARTITION_UA);
        if (rd_kafka_subscribe(w.consumer, topics)) {
                snprintf(errstr, errstr_size, "could not subscribe to %s",
                         d->topic);
                goto out;
        }
        sl_info("event=started lookup=%s topic=%s group=%s worker=%s", d->name,
                d->topic, opts->group, w.me);
        msgs = sl_calloc((size_t)opts->batch_max, sizeof(*msgs));
        while (!sl_stop) {
                int64_t batch_end = sl_now_ms() + 200;
                char fatal[512];

                /* first those kept while the last batch waited */
                while (n < (size_t)opts->batch_max && w.nkept > 0) {
                        msgs[n++] = w.kept[0];
                        memmove(w.kept, w.kept + 1,
                                --w.nkept * sizeof(*w.kept));
                }
                while (n < (size_t)opts->batch_max && !sl_stop) {
                        rd_kafka_message_t *rkm =
                            rd_kafka_consumer_poll(w.consumer, 100);
                        sl_http_tick();
                        rd_kafka_poll(w.producer, 0);
                        if (!rkm) {
                                if (n || sl_now_ms() >= batch_end)
                                        break;
                                continue;
                        }
                        if (rkm->err) {
                                if (rkm->err !=
                                    RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                        sl_warn("event=consume_error err=%s",
                                                rd_kafka_err2name(rkm->err));
                                rd_kafka_message_destroy(rkm);
                                continue;
                        }
                        msgs[n++] = rkm;
                }
                if (rd_kafka_fatal_error(w.consumer, fatal, sizeof(fatal)) ||
                    rd_kafka_fatal_error(w.producer, fatal, sizeof(fatal))) {
                        snprintf(errstr, errstr_size, "fatal kafka error: %s",
                                 fatal);
                        goto out;
                }
                if (n)
                        process(&w, msgs, n);
                for (size_t i = 0; i < n; i++)
                        rd_kafka_message_destroy(msgs[i]);
                n = 0;
        }
        rc = 0;
out:
        for (size_t i = 0; i < n; i++)
                rd_kafka_message_destroy(msgs[i]);
        free(msgs);
        if (topics)
                rd_kafka_topic_partition_list_destroy(topics);
        if (w.consumer) {
                rd_kafka_consumer_close(w.consumer);
                rd_kafka_destroy(w.consumer);
        }
        for (size_t i = 0; i < w.nkept; i++)
                rd_kafka_message_destroy(w.kept[i]);
        free(w.kept);
        if (w.conn && PQstatus(w.conn) == CONNECTION_OK) {
                /* claims not yet sent are handed on at once, rather than
                 * when they run out: the next worker asks without waiting */
                char ignored[400];
                lookup_db_release(w.conn, d, w.me, ignored, sizeof(ignored));
        }
        if (w.producer) {
                sl_kafka_flush(w.producer, 10000);
                rd_kafka_destroy(w.producer);
        }
        if (conf)
                rd_kafka_conf_destroy(conf);
        if (w.conn)
                PQfinish(w.conn);
        fetch_http_free(&w.http);
        items_clear(&w);
        free(w.items);
        free(w.body);
        json_decref(w.json);
        return rc;
}
