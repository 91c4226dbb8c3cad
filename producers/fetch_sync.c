/* fetch_sync: windows, paging styles and publishing for one sync. */
#include "fetch_sync.h"
#include "fetch_xml.h"
#include "sl_log.h"
#include "sl_metrics.h"

#include <unistd.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether pages can be decoded without their records (fetch_http): the
 * records path is a plain member path and no other path of the source
 * reads inside the records. */
static const char *sparse_path(const struct fetch_source *src)
{
        const char *paths[] = {src->total_path, src->pages_path,
                               src->next_path};
        const char *rp = src->records;
        size_t rl = strlen(rp);
        struct sl_json_span v;

        if (sl_json_member("{}", 2, rp, &v) < 0)
                return NULL; /* indexes, wildcards, filters */
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
                if (paths[i] &&
                    (strcmp(rp, "$") == 0 || (strncmp(paths[i], rp, rl) == 0 &&
                                              strchr(".[", paths[i][rl]))))
                        return NULL;
        return rp;
}

int fetch_ctx_init(struct fetch_ctx *c, const struct fetch_source *src,
                   const char *base_url, char *errstr, size_t errstr_size)
{
        memset(c, 0, sizeof(*c));
        c->src = src;
        c->base_url = base_url;
        c->records_path =
            sl_jsonpath_compile(src->records, errstr, errstr_size);
        if (!c->records_path)
                goto fail;
        if (src->cursor_field) {
                c->cursor_path =
                    sl_jsonpath_compile(src->cursor_field, errstr, errstr_size);
                if (!c->cursor_path)
                        goto fail;
        }
        if (fetch_http_init(&c->http, src, errstr, errstr_size) < 0)
                goto fail;
        c->http.sparse_path = sparse_path(src);
        if (fetch_out_init(
                &c->out, src->name, sl_jsonpath_text(c->records_path),
                (size_t)src->max_message_bytes, errstr, errstr_size) < 0) {
                fetch_http_free(&c->http);
                goto fail;
        }
        return 0;
fail:
        sl_jsonpath_destroy(c->records_path);
        sl_jsonpath_destroy(c->cursor_path);
        memset(c, 0, sizeof(*c));
        return -1;
}

void fetch_ctx_free(struct fetch_ctx *c)
{
        fetch_out_free(&c->out);
        fetch_http_free(&c->http);
        sl_jsonpath_destroy(c->records_path);
        sl_jsonpath_destroy(c->cursor_path);
        free(c->cursor);
        free(c->max_seen);
        memset(c, 0, sizeof(*c));
}

char *fetch_url_encode(const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        struct sl_buf b;

        sl_buf_init(&b, 0);
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' ||
                    ch == '~') {
                        sl_buf_append(&b, s, 1);
                } else {
                        char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
                        sl_buf_append(&b, e, 3);
                }
        }
        if (!b.data)
                sl_buf_puts(&b, "");
        return sl_buf_steal(&b, NULL);
}

/* Query parameters a page adds to the definition's. */
struct params {
        const char *name[3];
        char value[3][64];
        int n;
};

static void param_add(struct params *p, const char *name, long v)
{
        if (!name || p->n == 3)
                return;
        p->name[p->n] = name;
        snprintf(p->value[p->n], sizeof(p->value[0]), "%ld", v);
        p->n++;
}

/* Builds base + path + query into a new request. NULL with errstr. */
static struct fetch_req *build(struct fetch_ctx *c, const char *method,
                               const char *path_tmpl, const struct params *pp,
                               const char *cursor_param,
                               const char *cursor_value, char *errstr,
                               size_t errstr_size)
{
        const struct fetch_source *src = c->src;
        const char *secret[16];
        int nsecret = 0;
        struct sl_buf b;
        char *path = NULL, *url, *masked;
        char sep = '?';
        const char *key;
        json_t *v;

        path = fetch_template(path_tmpl, &c->vars, NULL, errstr, errstr_size);
        if (!path)
                return NULL;
        sl_buf_init(&b, 0);
        if (sl_str_has_prefix(path, "http://") ||
            sl_str_has_prefix(path, "https://")) {
                sl_buf_puts(&b, path);
                if (strchr(path, '?'))
                        sep = '&';
        } else {
                sl_buf_puts(&b, c->base_url);
                sl_buf_puts(&b, path);
        }
        free(path);
        json_object_foreach(src->query, key, v)
        {
                int is_secret = 0, omit = 0;
                char *val =
                    fetch_template_opt(json_string_value(v), &c->vars,
                                       &is_secret, &omit, errstr, errstr_size);
                char *enc_k, *enc_v;
                if (!val) {
                        sl_buf_free(&b);
                        return NULL;
                }
                if (!*val || omit) {
                        /* e.g. window bounds of an initial full pull, or
                         * ">=${cursor?}" before there is a cursor */
                        free(val);
                        continue;
                }
                if (is_secret && nsecret < 16)
                        secret[nsecret++] = key;
                enc_k = fetch_url_encode(key);
                enc_v = fetch_url_encode(val);
                sl_buf_printf(&b, "%c%s=%s", sep, enc_k, enc_v);
                sep = '&';
                free(enc_k);
                free(enc_v);
                free(val);
        }
        for (int i = 0; pp && i < pp->n; i++) {
                sl_buf_printf(&b, "%c%s=%s", sep, pp->name[i], pp->value[i]);
                sep = '&';
        }
        if (cursor_param && cursor_value) {
                char *enc = fetch_url_encode(cursor_value);
                sl_buf_printf(&b, "%c%s=%s", sep, cursor_param, enc);
                sep = '&';
                free(enc);
        }
        if (src->auth == FETCH_AUTH_QUERY) {
                const char *k = getenv(src->auth_env);
                if (k && *k) {
                        char *enc = fetch_url_encode(k);
                        sl_buf_printf(&b, "%c%s=%s", sep, src->auth_name, enc);
                        free(enc);
                }
                if (nsecret < 16)
                        secret[nsecret++] = src->auth_name;
        }
        url = sl_buf_steal(&b, NULL);
        masked = fetch_url_mask(url, secret, nsecret);
        return fetch_req_new(url, masked, method);
}

static int set_body(struct fetch_ctx *c, struct fetch_req *r, json_t *body,
                    char *errstr, size_t errstr_size)
{
        if (!body)
                return 0;
        if (json_is_string(body)) {
                r->body = fetch_template(json_string_value(body), &c->vars,
                                         NULL, errstr, errstr_size);
                return r->body ? 0 : -1;
        }
        r->body = json_dumps(body, JSON_COMPACT);
        r->body_json = 1;
        return 0;
}

/* A URL the server gave (next_url, link), requested as given: only the
 * parameters paging.resend_query names are set again (replacing the URL's
 * own value), and query secrets are masked in what is logged and
 * published, wherever they came from. NULL with errstr. */
static struct fetch_req *build_follow(struct fetch_ctx *c, const char *given,
                                      char *errstr, size_t errstr_size)
{
        const struct fetch_source *src = c->src;
        const char *secret[17];
        int nsecret = 0;
        char *url = sl_strdup(given);
        char *masked;
        size_t i;
        json_t *v;
        const char *key;

        json_object_foreach(src->query, key, v)
        {
                /* a secret template's name stays masked in any URL */
                const char *t = json_string_value(v);
                if (t && strstr(t, "${env:") && nsecret < 16)
                        secret[nsecret++] = key;
        }
        if (src->auth == FETCH_AUTH_QUERY && src->auth_name)
                secret[nsecret++] = src->auth_name;
        json_array_foreach(src->resend_query, i, v)
        {
                const char *name = json_string_value(v);
                json_t *tmpl = json_object_get(src->query, name);
                char *val, *enc_k, *enc_v, *next;
                int omit = 0;

                if (tmpl) {
                        val = fetch_template_opt(json_string_value(tmpl),
                                                 &c->vars, NULL, &omit, errstr,
                                                 errstr_size);
                        if (!val) {
                                free(url);
                                return NULL;
                        }
                } else {
                        /* the query auth.name (lint): the key */
                        const char *k = getenv(src->auth_env);
                        val = sl_strdup(k ? k : "");
                }
                if (!*val || omit) {
                        free(val);
                        continue;
                }
                enc_k = fetch_url_encode(name);
                enc_v = fetch_url_encode(val);
                next = fetch_url_set_param(url, enc_k, enc_v);
                free(url);
                url = next;
                free(enc_k);
                free(enc_v);
                free(val);
        }
        masked = fetch_url_mask(url, secret, nsecret);
        return fetch_req_new(url, masked, src->method);
}

/* A SOAP source's request: the first page's envelope, or with next (the
 * previous answer's xml.next token) the later pages' with ${next}, every
 * substituted value XML-escaped, POSTed to request.path. NULL with
 * errstr. */
static struct fetch_req *build_soap(struct fetch_ctx *c, const char *next,
                                    char *errstr, size_t errstr_size)
{
        const struct fetch_source *src = c->src;
        struct fetch_req *r = build(c, "POST", src->req_path, NULL, NULL, NULL,
                                    errstr, errstr_size);

        if (!r)
                return NULL;
        fetch_vars_set(&c->vars, "next", next ? next : "");
        r->body = fetch_template_xml(next ? src->soap_next_envelope
                                          : src->soap_envelope,
                                     &c->vars, NULL, errstr, errstr_size);
        /* next is the caller's: not kept past this call */
        fetch_vars_set(&c->vars, "next", "");
        if (!r->body) {
                fetch_req_destroy(r);
                return NULL;
        }
        r->soap = 1;
        r->soap_action = next ? src->soap_next_action : src->soap_action;
        return r;
}

static struct fetch_req *build_main(struct fetch_ctx *c,
                                    const struct params *pp,
                                    const char *cursor_value, char *errstr,
                                    size_t errstr_size)
{
        struct fetch_req *r;

        if (c->src->soap)
                return build_soap(c, NULL, errstr, errstr_size);
        r = build(c, c->src->method, c->src->req_path, pp, c->src->page_param,
                  cursor_value, errstr, errstr_size);

        if (r && set_body(c, r, c->src->body, errstr, errstr_size) < 0) {
                fetch_req_destroy(r);
                return NULL;
        }
        return r;
}

/* ---- publishing each answered page ---- */

static int see_cursor(json_t *match, void *opaque)
{
        struct fetch_ctx *c = opaque;
        const char *s = json_string_value(match);

        if (s && (!c->max_seen || strcmp(s, c->max_seen) > 0)) {
                free(c->max_seen);
                c->max_seen = sl_strdup(s);
        }
        return 0;
}

/* The records path names the records array (or, with a wildcard, the
 * records themselves): the cursor is read from each record. */
static int each_record(json_t *rec, void *opaque)
{
        struct fetch_ctx *c = opaque;

        if (json_is_array(rec)) {
                size_t i;
                json_t *r;
                json_array_foreach(rec, i, r)
                    sl_jsonpath_each(c->cursor_path, r, see_cursor, c);
                return 0;
        }
        sl_jsonpath_each(c->cursor_path, rec, see_cursor, c);
        return 0;
}

/* The cursor of each record of a sparse page: read from the record's
 * text by a plain member path, or from the decoded record. */
static void each_span(struct fetch_ctx *c, const struct fetch_req *r)
{
        const char *text = r->resp.data;

        for (long i = 0; i < r->nrec; i++) {
                const char *rec = text + r->recs[i].off;
                size_t len = r->recs[i].len;
                struct sl_json_span v;
                json_error_t e;
                json_t *j;
                int found = sl_json_member(rec, len, c->src->cursor_field, &v);

                if (found == 0)
                        continue;
                if (found > 0) {
                        j = json_loadb(rec + v.off, v.len, JSON_DECODE_ANY, &e);
                        see_cursor(j, c);
                } else {
                        j = json_loadb(rec, len, JSON_DECODE_ANY, &e);
                        if (j)
                                sl_jsonpath_each(c->cursor_path, j, see_cursor,
                                                 c);
                }
                json_decref(j);
        }
}

/* Seconds left, and what bounds them. The average rate so far is the
 * estimate, except under a request limit: its window lets the first
 * requests through at once, so the average starts far above what the
 * limit allows and the estimate jumps (0:11, then 1:33) once the limiter
 * holds requests back. With a limit the estimate is never shorter than
 * the pages left at the limit's rate, and says that the limit bounds it.
 * -1 when unknown. */
static double eta_seconds(const struct fetch_ctx *c, double rate,
                          const char **bound)
{
        long left = c->total_pages - c->pages;
        double eta = rate > 0 ? (double)left / rate : -1;

        *bound = "rate";
        if (c->src->rate_requests > 0 && c->src->rate_seconds > 0) {
                double at_limit = (double)left * c->src->rate_seconds /
                                  (double)c->src->rate_requests;
                if (eta < 0 || at_limit > eta) {
                        eta = at_limit;
                        *bound = "ratelimit";
                }
        }
        return eta;
}

/* The live line on a terminal: percent, rate, ETA, drawn in place below
 * the log lines (sl_log_live). */
static void progress_tty(struct fetch_ctx *c, int final, double rate)
{
        char line[256];
        const char *bound;
        double eta = eta_seconds(c, rate, &bound);
        long pct = c->total_pages > 0 ? c->pages * 100 / c->total_pages : 0;

        if (c->total_pages <= 0) {
                snprintf(line, sizeof(line),
                         "%s: %ld pages, %ld records, "
                         "%.1f pages/s",
                         c->src->name, c->pages, c->records, rate);
        } else {
                if (eta < 0)
                        eta = 0;
                snprintf(line, sizeof(line),
                         "%s: %3ld%% %ld/%ld pages, %ld records, "
                         "%.1f pages/s, ETA %ld:%02ld%s",
                         c->src->name, pct, c->pages, c->total_pages,
                         c->records, rate, (long)eta / 60, (long)eta % 60,
                         strcmp(bound, "ratelimit") == 0 ? " (rate limit)"
                                                         : "");
        }
        sl_log_live(line, final);
}

/* Progress: gauges always; on a terminal a line redrawn every 200 ms;
 * otherwise a log line every progress_seconds. */
static void progress(struct fetch_ctx *c, int final)
{
        int64_t now = sl_now_ms();
        double secs = (double)(now - c->t0) / 1000.0;
        double rate = secs > 0 ? (double)c->pages / secs : 0;
        int tty = c->tty;

        sl_metric_set(SL_M_FETCH_PAGES_DONE, SL_LV(c->src->name),
                      (double)c->pages);
        sl_metric_set(SL_M_FETCH_PAGES_EXPECTED, SL_LV(c->src->name),
                      (double)(c->total_pages > 0 ? c->total_pages : 0));
        if (tty && (final || now - c->last_tty >= 200)) {
                c->last_tty = now;
                progress_tty(c, final, rate);
        }
        if (!final && now - c->last_progress < c->src->progress_s * 1000)
                return;
        c->last_progress = now;
        if (c->total_pages > 0 && !final) {
                const char *bound;
                double eta = eta_seconds(c, rate, &bound);
                sl_info("event=progress source=%s run=%s pages=%ld "
                        "total_pages=%ld percent=%.1f records=%ld "
                        "pages_per_s=%.2f eta_s=%.0f eta_bound=%s "
                        "ratelimit_pauses=%ld ratelimit_wait_ms=%lld",
                        c->src->name, c->out.run, c->pages, c->total_pages,
                        100.0 * (double)c->pages / (double)c->total_pages,
                        c->records, rate, eta, bound, c->http.pauses,
                        (long long)c->http.pause_ms);
        } else {
                sl_info("event=%s source=%s run=%s pages=%ld records=%ld "
                        "pages_per_s=%.2f requests=%ld retries=%ld "
                        "throttled=%ld ratelimit_pauses=%ld "
                        "ratelimit_wait_ms=%lld",
                        final ? "sync_pages_done" : "progress", c->src->name,
                        c->out.run, c->pages, c->records, rate,
                        c->http.requests, c->http.retries, c->http.throttled,
                        c->http.pauses, (long long)c->http.pause_ms);
        }
}

static long page_records(struct fetch_ctx *c, json_t *json, long nrec);

/* A page bad for good, while the rest of the set goes on: to dlq.fetch. */
static int dead_page(struct fetch_ctx *c, const struct fetch_page *p,
                     const char *why, int with_body, char *errstr,
                     size_t errstr_size)
{
        char q[800];

        if (fetch_out_dead(&c->out, p, why, with_body, errstr, errstr_size) < 0)
                return -1;
        c->dead_pages++;
        sl_metric_inc(SL_M_ERRORS, SL_LV("dead_page"));
        sl_err("event=page_dead_lettered source=%s page=%ld topic=%s "
               "reason=%s",
               c->src->name, p->page, FETCH_DLQ_TOPIC,
               sl_log_quote(why, q, sizeof(q)));
        return 0;
}

/* The records fetch_salvage set aside from page p (each is `null` in the
 * page now): to dlq.fetch, each with the reason and byte offsets; the
 * page's other records go on. */
static int bad_records(struct fetch_ctx *c, const struct fetch_req *r,
                       const struct fetch_page *p, char *errstr,
                       size_t errstr_size)
{
        for (long i = 0; i < r->nbad; i++) {
                const struct fetch_bad_record *b = &r->bad[i];
                struct fetch_page bp = *p;
                char why[400], q[500];

                bp.body = b->bytes;
                bp.len = b->len;
                snprintf(why, sizeof(why),
                         "record %ld of page %ld (bytes %zu-%zu) is not JSON: "
                         "%s at byte %zu; set aside, the page's other records "
                         "go on",
                         b->index, p->page, b->off, b->off + b->len, b->reason,
                         b->err_off);
                if (fetch_out_dead(&c->out, &bp, why, 1, errstr, errstr_size) <
                    0)
                        return -1;
                c->bad_records++;
                sl_metric_inc(SL_M_FETCH_BAD_RECORDS,
                              SL_LV(c->src->name, b->kind));
                sl_warn("event=record_dead_lettered source=%s page=%ld "
                        "record=%ld offset=%zu error_at=%zu topic=%s "
                        "reason=%s",
                        c->src->name, p->page, b->index, b->off, b->err_off,
                        FETCH_DLQ_TOPIC, sl_log_quote(b->reason, q, sizeof(q)));
        }
        return 0;
}

static int publish(struct fetch_req *r, void *opaque, char *errstr,
                   size_t errstr_size)
{
        struct fetch_ctx *c = opaque;
        struct fetch_page p;
        long n;

        char why[700];

        memset(&p, 0, sizeof(p));
        p.page = r->tag;
        p.body = r->resp.data ? r->resp.data : "";
        p.len = r->resp.len;
        p.url = r->masked_url;
        p.http_status = r->status;
        p.fetched_wall_ms = r->fetched_wall_ms;
        n = c->src->max_records > 0 && r->json
                ? page_records(c, r->json, r->nrec)
                : -1;
        if (n > c->src->max_records) {
                snprintf(why, sizeof(why),
                         "%s: page %ld holds %ld records, over "
                         "limits.max_records (%ld)",
                         r->masked_url, r->tag, n, c->src->max_records);
                if (!r->dead_letter) {
                        snprintf(errstr, errstr_size, "%s", why);
                        return -1;
                }
                return dead_page(c, &p, why, 1, errstr, errstr_size);
        }
        if (r->dead)
                return dead_page(c, &p, r->dead_reason, !r->too_big, errstr,
                                 errstr_size);
        if (r->nbad > 0 && bad_records(c, r, &p, errstr, errstr_size) < 0)
                return -1;
        p.json = r->json;
        p.nrec = r->nrec;
        p.recs = r->recs;
        p.arr_open = r->arr_open;
        p.arr_close = r->arr_close;
        p.content_type = r->content_type;
        p.source_format = c->src->xml ? "xml" : NULL;
        /* the cursor's values first: a page split in its own buffer
         * (p.own) no longer has its records where r->recs says */
        if (c->cursor_path && r->nrec >= 0)
                each_span(c, r);
        else if (c->cursor_path && r->json)
                sl_jsonpath_each(c->records_path, r->json, each_record, c);
        p.own = &r->resp;
        n = fetch_out_page(&c->out, &p, errstr, errstr_size);
        if (n < 0)
                return -1;
        c->pages++;
        c->records += n;
        sl_metric_inc(SL_M_PAGES, SL_LV(c->src->name));
        sl_metric_add(SL_M_RECORDS_IN, SL_LV(c->src->name), (double)n);
        sl_metric_add(SL_M_RECORDS_OUT, SL_LV(c->src->name, "published"),
                      (double)n);
        sl_debug("event=page source=%s page=%ld records=%ld status=%ld",
                 c->src->name, r->tag, n, r->status);
        progress(c, 0);
        return 0;
}

/* Records on a page: nrec when they were located in its text. */
static long page_records(struct fetch_ctx *c, json_t *json, long nrec)
{
        json_t *arr;

        if (nrec >= 0)
                return nrec;
        arr = json ? sl_jsonpath_first(c->records_path, json) : NULL;

        return json_is_array(arr) ? (long)json_array_size(arr) : -1;
}

/* What keeps a chain of pages (cursor, next_url, link) from running
 * forever: a URL requested twice in one window, a page whose records are
 * byte for byte the previous page's, more pages than paging.max_pages or
 * than the API's total allows. */
struct guard {
        uint64_t *urls; /* open addressing, 0 = empty */
        size_t cap, n;
        uint64_t last_hash; /* the previous page's records (or body) */
        long last_page;     /* -1: none yet */
        long total;         /* the greatest total seen, -1: none */
        long per_page;      /* records per page, for the total's bound */
        int tripped;        /* the chain was stopped for looping */
};

static void guard_free(struct guard *g)
{
        free(g->urls);
        memset(g, 0, sizeof(*g));
}

/* Adds url; 1 when it was seen before in this window. */
static int guard_url_seen(struct guard *g, const char *url)
{
        uint64_t h = fetch_hash(url, strlen(url));
        size_t i;

        if (h == 0)
                h = 1;
        if ((g->n + 1) * 2 > g->cap) {
                size_t cap = g->cap ? g->cap * 2 : 64;
                uint64_t *t = sl_calloc(cap, sizeof(*t));
                for (size_t k = 0; k < g->cap; k++) {
                        if (!g->urls[k])
                                continue;
                        for (i = g->urls[k] & (cap - 1); t[i];
                             i = (i + 1) & (cap - 1))
                                ;
                        t[i] = g->urls[k];
                }
                free(g->urls);
                g->urls = t;
                g->cap = cap;
        }
        for (i = h & (g->cap - 1); g->urls[i]; i = (i + 1) & (g->cap - 1))
                if (g->urls[i] == h)
                        return 1;
        g->urls[i] = h;
        g->n++;
        return 0;
}

/* The pages a chain may have: paging.max_pages, and with a total
 * ceil(total / per page) + 2 + a tenth (the total may grow while the
 * chain runs). */
static long guard_limit(const struct fetch_source *src, const struct guard *g)
{
        long limit = src->max_pages;

        if (g->total >= 0 && g->per_page > 0) {
                long n = (g->total + g->per_page - 1) / g->per_page;
                n += 2 + n / 10;
                if (n < limit)
                        limit = n;
        }
        return limit;
}

/* Whether answer r repeats the page before it: its records (or, when
 * they are not located or there are none, its whole body) are byte for
 * byte the same. 0, or -1 with errstr (the page is not published). */
static int guard_page(struct fetch_ctx *c, struct guard *g,
                      const struct fetch_req *r, char *errstr,
                      size_t errstr_size)
{
        const char *body = r->resp.data ? r->resp.data : "";
        uint64_t h;

        if (page_records(c, r->json, r->nrec) == 0)
                return 0; /* empty pages look alike; the URLs tell */
        if (r->nrec > 0) {
                h = fetch_hash(body + r->arr_open, r->arr_close - r->arr_open);
        } else {
                json_t *arr = r->json
                                  ? sl_jsonpath_first(c->records_path, r->json)
                                  : NULL;
                char *text =
                    json_array_size(arr) ? json_dumps(arr, JSON_COMPACT) : NULL;
                h = text ? fetch_hash(text, strlen(text))
                         : fetch_hash(body, r->resp.len);
                free(text);
        }
        if (g->last_page >= 0 && h == g->last_hash) {
                snprintf(errstr, errstr_size,
                         "page %ld (%s) repeats page %ld byte for byte: the "
                         "server serves the same page again; stopping the "
                         "sync (nothing more is published)",
                         r->tag, r->masked_url, g->last_page);
                g->tripped = 1;
                return -1;
        }
        g->last_hash = h;
        g->last_page = r->tag;
        return 0;
}

/* What a sequential step keeps of its answer. */
struct one {
        struct fetch_ctx *c;
        struct guard *guard; /* or NULL: not a chain */
        int publish;
        json_t *json;    /* new reference, or NULL */
        long nrec;       /* the answer's (fetch_req) */
        char *link_next; /* new, or NULL */
        long status;
};

static int keep_answer(struct fetch_req *r, void *opaque, char *errstr,
                       size_t errstr_size)
{
        struct one *o = opaque;

        if (o->guard && guard_page(o->c, o->guard, r, errstr, errstr_size) < 0)
                return -1;
        if (o->publish && publish(r, o->c, errstr, errstr_size) < 0)
                return -1;
        o->json = json_incref(r->json);
        o->nrec = r->nrec;
        o->status = r->status;
        if (r->link)
                o->link_next = fetch_link_next(r->link);
        return 0;
}

/* Runs r (taken over) alone. */
static int run_one(struct fetch_ctx *c, struct fetch_req *r, int publish_it,
                   struct one *o, char *errstr, size_t errstr_size)
{
        int rc;

        memset(o, 0, sizeof(*o));
        o->c = c;
        o->publish = publish_it;
        rc = fetch_http_run(&c->http, &r, 1, keep_answer, o, errstr,
                            errstr_size);
        fetch_req_destroy(r);
        return rc;
}

/* run_one for a link of a chain: the answer is checked against the
 * page before it first. */
static int run_link(struct fetch_ctx *c, struct fetch_req *r, struct guard *g,
                    struct one *o, char *errstr, size_t errstr_size)
{
        int rc;

        memset(o, 0, sizeof(*o));
        o->c = c;
        o->guard = g;
        o->publish = 1;
        rc = fetch_http_run(&c->http, &r, 1, keep_answer, o, errstr,
                            errstr_size);
        fetch_req_destroy(r);
        return rc;
}

static void one_free(struct one *o)
{
        json_decref(o->json);
        free(o->link_next);
        o->json = NULL;
        o->link_next = NULL;
}

/* Runs reqs (taken over) in parallel, publishing each. */
static int run_many(struct fetch_ctx *c, struct fetch_req **reqs, size_t n,
                    char *errstr, size_t errstr_size)
{
        int rc;

        /* the set is known: a page bad for good is dead-lettered and the
         * rest still lands (a first page or a chain link cannot be
         * skipped: without it nothing after it is known) */
        for (size_t i = 0; i < n; i++)
                reqs[i]->dead_letter = 1;
        rc = fetch_http_run(&c->http, reqs, n, publish, c, errstr, errstr_size);

        for (size_t i = 0; i < n; i++)
                fetch_req_destroy(reqs[i]);
        return rc;
}

/* A count: an integer, or a string of one; -1 otherwise. */
static long count_of(json_t *v)
{
        long long n;

        if (json_is_integer(v))
                return (long)json_integer_value(v);
        if (json_is_string(v) && sl_parse_ll(json_string_value(v), &n) == 0)
                return (long)n;
        return -1;
}

static long json_long(json_t *root, const char *path)
{
        return count_of(path && root ? sl_jsonpath_get(root, path) : NULL);
}

/* A counted paging run: page 0, then the pages its total asks for. */
struct counted {
        struct fetch_ctx *c;
        int by_offset;
        const char *total_path;  /* the total, or the number of pages */
        long step;               /* offset step; 0: page 0's record count */
        long planned;            /* pages requested, page 0 included */
        long early_total;        /* read from page 0's first bytes, or -1 */
        long total;              /* page 0's, decoded, or -1 */
        long first_n;            /* page 0's records, -1 until it is in */
        struct fetch_req **reqs; /* pages 1.. (owned) */
        size_t n, cap;
        struct guard guard; /* without a total: pages one after another */
};

/* The request for page i of a counted run. */
static struct fetch_req *counted_req(struct counted *k, long i, char *errstr,
                                     size_t errstr_size)
{
        const struct fetch_source *src = k->c->src;
        struct fetch_req *r;
        struct params pp;

        memset(&pp, 0, sizeof(pp));
        param_add(&pp, src->page_param,
                  k->by_offset ? src->page_start + i * k->step
                               : src->page_start + i);
        if (src->page_size)
                param_add(&pp, src->size_param, src->page_size);
        r = build_main(k->c, &pp, NULL, errstr, errstr_size);
        if (r)
                r->tag = i;
        return r;
}

/* Requests the pages up to what total asks for that are not requested
 * yet, into the running set. 0, or -1 with errstr. */
static int plan(struct counted *k, long total, const char *from, char *errstr,
                size_t errstr_size)
{
        long npages = k->by_offset ? (total + k->step - 1) / k->step : total;

        if (npages > k->c->src->max_pages) {
                snprintf(errstr, errstr_size,
                         "the API's total %ld makes %ld pages, more than "
                         "paging.max_pages (%ld): stopping the sync (raise "
                         "paging.max_pages if the API really has that many)",
                         total, npages, k->c->src->max_pages);
                return -1;
        }
        if (npages <= k->planned)
                return 0;
        sl_info("event=pages_planned source=%s total=%ld pages=%ld from=%s",
                k->c->src->name, total, npages, from);
        k->c->total_pages = npages;
        for (long i = k->planned; i < npages; i++) {
                struct fetch_req *r = counted_req(k, i, errstr, errstr_size);
                if (!r)
                        return -1;
                /* the set is known: a page bad for good is dead-lettered
                 * and the rest still lands (page 0 cannot be: without it
                 * nothing after it is known) */
                r->dead_letter = 1;
                if (k->n == k->cap) {
                        k->cap = k->cap ? k->cap * 2 : 16;
                        k->reqs =
                            sl_realloc(k->reqs, k->cap * sizeof(*k->reqs));
                }
                k->reqs[k->n++] = r;
                fetch_http_add(&k->c->http, r);
        }
        k->planned = npages;
        return 0;
}

/* Page 0's total in its first bytes: the other pages start while the rest
 * of it arrives (a 4.5 MB NVD page tells its total in its first 61). The
 * whole page is still checked, and its decoded total has the last word. */
static int counted_peeked(struct fetch_req *r, void *opaque, char *errstr,
                          size_t errstr_size)
{
        struct counted *k = opaque;
        json_t *v = json_loadb(r->resp.data + r->peek.off, r->peek.len,
                               JSON_DECODE_ANY, NULL);
        long total = count_of(v);

        json_decref(v);
        if (total < 0)
                return 0; /* not a count: wait for the whole page */
        k->early_total = total;
        return plan(k, total, "first_bytes", errstr, errstr_size);
}

static int counted_done(struct fetch_req *r, void *opaque, char *errstr,
                        size_t errstr_size)
{
        struct counted *k = opaque;
        const struct fetch_source *src = k->c->src;

        if (r->tag == 0 && !k->total_path &&
            guard_page(k->c, &k->guard, r, errstr, errstr_size) < 0)
                return -1; /* never: the first page repeats nothing */
        if (publish(r, k->c, errstr, errstr_size) < 0)
                return -1;
        if (r->tag != 0)
                return 0;
        k->first_n = page_records(k->c, r->json, r->nrec);
        k->total = json_long(r->json, k->total_path);
        if (k->total < 0)
                return 0;
        if (k->early_total >= 0 && k->total != k->early_total)
                sl_warn("event=total_changed source=%s first_bytes=%ld "
                        "page=%ld msg=\"the page's total differs from the one "
                        "read from its first bytes; the page's counts\"",
                        src->name, k->early_total, k->total);
        if (!k->step)
                k->step = k->first_n;
        if (k->by_offset && k->step <= 0)
                return 0;
        return plan(k, k->total, "first_page", errstr, errstr_size);
}

/* offset + total, or page number + total pages: the first page tells how
 * many there are, the rest go in parallel, started as soon as page 0's
 * first bytes tell its total; without a total, sequential until a short
 * or empty page. */
static int paging_counted(struct fetch_ctx *c, char *errstr, size_t errstr_size)
{
        const struct fetch_source *src = c->src;
        struct counted k;
        struct fetch_req *r;
        struct one o;
        long first_n;
        int rc;

        memset(&k, 0, sizeof(k));
        k.c = c;
        k.by_offset = src->paging == FETCH_PAGING_OFFSET;
        k.total_path = k.by_offset ? src->total_path : src->pages_path;
        k.step = src->page_size;
        k.planned = 1;
        k.early_total = k.total = k.first_n = -1;
        k.guard.last_page = -1;
        r = counted_req(&k, 0, errstr, errstr_size);
        if (!r)
                return SL_ERR_FATAL;
        /* by offset, the step must be known before page 0 is in */
        if (k.total_path && (!k.by_offset || k.step > 0))
                r->peek_path = k.total_path;
        c->http.peeked = counted_peeked;
        c->http.peeked_opaque = &k;
        rc = fetch_http_run(&c->http, &r, 1, counted_done, &k, errstr,
                            errstr_size);
        c->http.peeked = NULL;
        c->http.peeked_opaque = NULL;
        fetch_req_destroy(r);
        for (size_t i = 0; i < k.n; i++)
                fetch_req_destroy(k.reqs[i]);
        free(k.reqs);
        if (rc != SL_OK || k.planned > 1 || k.total >= 0) {
                guard_free(&k.guard);
                return rc;
        }
        /* no total: one page after another until a short or empty one;
         * a server that ignores the page parameter serves page 0 again,
         * which ends the sync (struct guard) */
        first_n = k.first_n;
        for (long i = 1; first_n > 0; i++) {
                long got;
                if (src->page_size && first_n < src->page_size)
                        break;
                if (i >= src->max_pages) {
                        snprintf(errstr, errstr_size,
                                 "more than %ld pages in one window "
                                 "(paging.max_pages): stopping the sync",
                                 src->max_pages);
                        rc = SL_ERR_FATAL;
                        break;
                }
                if (!k.step)
                        k.step = first_n;
                r = counted_req(&k, i, errstr, errstr_size);
                if (!r) {
                        rc = SL_ERR_FATAL;
                        break;
                }
                rc = run_link(c, r, &k.guard, &o, errstr, errstr_size);
                if (rc != SL_OK)
                        break;
                got = page_records(c, o.json, o.nrec);
                one_free(&o);
                first_n = got;
        }
        if (k.guard.tripped) {
                sl_metric_inc(SL_M_ERRORS, SL_LV("paging_loop"));
                rc = SL_ERR_FATAL;
        }
        guard_free(&k.guard);
        return rc;
}

/* cursor token, next URL in the body, Link header: strictly sequential.
 * A URL the server gave is requested as given (build_follow); the chain
 * stops with an error, publishing nothing more, when it loops (struct
 * guard). */
static int paging_chain(struct fetch_ctx *c, char *errstr, size_t errstr_size)
{
        const struct fetch_source *src = c->src;
        char *next = NULL; /* token or URL */
        struct params pp;
        struct guard g;
        int rc = SL_OK;

        memset(&g, 0, sizeof(g));
        g.last_page = -1;
        g.total = -1;
        for (long i = 0;; i++) {
                struct fetch_req *r;
                struct one o;
                json_t *nv;
                long limit = guard_limit(src, &g);

                if (i >= limit) {
                        snprintf(errstr, errstr_size,
                                 "more than %ld pages in one window (%s): "
                                 "stopping the sync (raise paging.max_pages "
                                 "if the API really has more)",
                                 limit,
                                 limit < src->max_pages
                                     ? "the API's total allows no more"
                                     : "paging.max_pages");
                        g.tripped = 1;
                        break;
                }
                memset(&pp, 0, sizeof(pp));
                if (src->page_size &&
                    (i == 0 || src->paging == FETCH_PAGING_CURSOR))
                        param_add(&pp, src->size_param, src->page_size);
                if (src->soap)
                        r = build_soap(c, next, errstr, errstr_size);
                else if (src->paging == FETCH_PAGING_CURSOR || i == 0)
                        r = build(c, src->method, src->req_path, &pp,
                                  src->page_param, next, errstr, errstr_size);
                else
                        r = build_follow(c, next, errstr, errstr_size);
                if (r && !src->soap &&
                    set_body(c, r, src->body, errstr, errstr_size) < 0) {
                        fetch_req_destroy(r);
                        r = NULL;
                }
                if (!r) {
                        rc = SL_ERR_FATAL;
                        break;
                }
                /* one URL takes every SOAP page: its envelope tells
                 * them apart */
                if (guard_url_seen(&g, r->soap ? r->body : r->url)) {
                        snprintf(errstr, errstr_size,
                                 "page %ld: %s was already requested in this "
                                 "window: the server leads back to a page "
                                 "it gave; stopping the sync (nothing more "
                                 "is published)",
                                 i,
                                 r->soap ? "the same envelope" : r->masked_url);
                        fetch_req_destroy(r);
                        g.tripped = 1;
                        break;
                }
                r->tag = i;
                rc = run_link(c, r, &g, &o, errstr, errstr_size);
                if (rc != SL_OK)
                        break;
                if (src->total_path) {
                        long t = json_long(o.json, src->total_path);
                        if (t > g.total)
                                g.total = t;
                }
                if (i == 0) {
                        /* what the server gave, not what was asked: an
                         * API may cap the page size silently (GitHub) */
                        long n = page_records(c, o.json, o.nrec);
                        g.per_page = n > 0 ? n : src->page_size;
                }
                free(next);
                next = NULL;
                if (src->paging == FETCH_PAGING_LINK) {
                        next = o.link_next;
                        o.link_next = NULL;
                } else {
                        nv = sl_jsonpath_get(o.json, src->next_path);
                        if (json_is_string(nv) && *json_string_value(nv))
                                next = sl_strdup(json_string_value(nv));
                }
                if (next && page_records(c, o.json, o.nrec) == 0 &&
                    src->paging == FETCH_PAGING_CURSOR) {
                        /* a token with no records: nothing more */
                        free(next);
                        next = NULL;
                }
                one_free(&o);
                if (!next)
                        break;
        }
        free(next);
        if (g.tripped) {
                sl_metric_inc(SL_M_ERRORS, SL_LV("paging_loop"));
                rc = SL_ERR_FATAL;
        }
        guard_free(&g);
        return rc;
}

/* Tenable-style export: create (or resume on 409), poll status, download
 * each chunk as it becomes available. The delay between polls grows while
 * the job shows nothing new and starts over at poll_ms after a poll that
 * brought chunks: a job that is producing is followed closely, an idle
 * one is not hammered. */
static int paging_export(struct fetch_ctx *c, char *errstr, size_t errstr_size)
{
        const struct fetch_source *src = c->src;
        struct fetch_req *r;
        struct one o;
        char uuid[128] = "";
        long *seen = NULL;
        size_t nseen = 0;
        int64_t delay = src->export_poll_ms;
        int64_t deadline = sl_now_ms() + src->export_timeout_s * 1000;
        int rc;
        json_t *v;

        r = build(c, "POST", src->export_create, NULL, NULL, NULL, errstr,
                  errstr_size);
        if (!r)
                return SL_ERR_FATAL;
        r->body = json_dumps(
            src->export_body ? src->export_body : json_object(), JSON_COMPACT);
        r->body_json = 1;
        r->accept[r->accept_n++] = 409;
        rc = run_one(c, r, 0, &o, errstr, errstr_size);
        if (rc != SL_OK)
                return rc;
        v = json_object_get(o.json,
                            o.status == 409 ? "active_job_id" : "export_uuid");
        if (json_is_string(v))
                snprintf(uuid, sizeof(uuid), "%s", json_string_value(v));
        one_free(&o);
        if (!*uuid) {
                snprintf(errstr, errstr_size, "%s: the export answer has no %s",
                         src->export_create,
                         o.status == 409 ? "active_job_id" : "export_uuid");
                return SL_ERR_RETRY;
        }
        sl_info("event=%s source=%s export_uuid=%s",
                o.status == 409 ? "export_resumed" : "export_created",
                src->name, uuid);
        fetch_vars_set(&c->vars, "export_uuid", uuid);
        for (;;) {
                struct fetch_req **reqs = NULL;
                size_t n = 0, i;
                json_t *avail;
                const char *status;
                int finished;

                r = build(c, "GET", src->export_status, NULL, NULL, NULL,
                          errstr, errstr_size);
                if (!r) {
                        rc = SL_ERR_FATAL;
                        break;
                }
                rc = run_one(c, r, 0, &o, errstr, errstr_size);
                if (rc != SL_OK)
                        break;
                status = json_string_value(json_object_get(o.json, "status"));
                status = status ? status : "";
                finished = strcmp(status, "FINISHED") == 0;
                if (strcmp(status, "ERROR") == 0 ||
                    strcmp(status, "CANCELLED") == 0) {
                        snprintf(errstr, errstr_size,
                                 "export %s ended with status %s", uuid,
                                 status);
                        one_free(&o);
                        rc = SL_ERR_RETRY;
                        break;
                }
                avail = json_object_get(o.json, "chunks_available");
                reqs = sl_calloc(json_array_size(avail) + 1, sizeof(*reqs));
                json_array_foreach(avail, i, v)
                {
                        long id = (long)json_integer_value(v);
                        char idtext[32];
                        size_t k;
                        for (k = 0; k < nseen && seen[k] != id; k++)
                                ;
                        if (k < nseen || !json_is_integer(v))
                                continue;
                        seen = sl_realloc(seen, (nseen + 1) * sizeof(*seen));
                        seen[nseen++] = id;
                        snprintf(idtext, sizeof(idtext), "%ld", id);
                        fetch_vars_set(&c->vars, "chunk", idtext);
                        r = build(c, "GET", src->export_chunk, NULL, NULL, NULL,
                                  errstr, errstr_size);
                        fetch_vars_set(&c->vars, "chunk", "");
                        if (!r)
                                break;
                        r->tag = id;
                        reqs[n++] = r;
                }
                one_free(&o);
                rc = run_many(c, reqs, n, errstr, errstr_size);
                free(reqs);
                if (rc != SL_OK)
                        break;
                if (finished)
                        break;
                if (sl_now_ms() > deadline) {
                        snprintf(errstr, errstr_size,
                                 "export %s not finished after %ld s", uuid,
                                 src->export_timeout_s);
                        rc = SL_ERR_RETRY;
                        break;
                }
                if (n > 0)
                        delay = src->export_poll_ms;
                for (int64_t until = sl_now_ms() + delay;
                     sl_now_ms() < until && !sl_stop;) {
                        sl_sleep_ms(delay < 100 ? delay : 100);
                        if (c->http.idle && c->http.idle(c->http.idle_opaque))
                                break;
                }
                delay = delay * 3 / 2;
                if (delay > src->export_poll_max_ms)
                        delay = src->export_poll_max_ms;
        }
        free(seen);
        return rc;
}

static int run_paging(struct fetch_ctx *c, char *errstr, size_t errstr_size)
{
        struct fetch_req *r;
        struct one o;
        int rc;

        switch (c->src->paging) {
        case FETCH_PAGING_OFFSET:
        case FETCH_PAGING_PAGE:
                return paging_counted(c, errstr, errstr_size);
        case FETCH_PAGING_CURSOR:
        case FETCH_PAGING_NEXT_URL:
        case FETCH_PAGING_LINK:
                return paging_chain(c, errstr, errstr_size);
        case FETCH_PAGING_EXPORT:
                return paging_export(c, errstr, errstr_size);
        case FETCH_PAGING_NONE:
                break;
        }
        r = build_main(c, NULL, NULL, errstr, errstr_size);
        if (!r)
                return SL_ERR_FATAL;
        c->total_pages = 1;
        rc = run_one(c, r, 1, &o, errstr, errstr_size);
        one_free(&o);
        return rc;
}

/* Publishes one window's pages and waits for their delivery. */
static int run_window(struct fetch_ctx *c, char *errstr, size_t errstr_size)
{
        int rc;

        free(c->max_seen);
        c->max_seen = NULL;
        rc = run_paging(c, errstr, errstr_size);
        if (rc != SL_OK) {
                /* what was queued still goes out; the cursor stays */
                char ignored[256];
                fetch_out_wait(&c->out, 30000, ignored, sizeof(ignored));
                return rc;
        }
        if (fetch_out_wait(&c->out, 120000, errstr, errstr_size) < 0)
                return SL_ERR_RETRY;
        sl_debug("event=window_delivered source=%s messages=%ld", c->src->name,
                 c->out.delivered);
        return SL_OK;
}

/* A streamed XML file's pages: each published as a page of the run
 * (page 0, 1, ...) and delivered before the next is read, so a report of
 * any size takes the memory of one page. */
#define XML_FILE_PAGE_BYTES ((size_t)8 << 20)

struct xml_file {
        struct fetch_ctx *c;
        const char *url;
        long page;
};

static int emit_xml_page(const char *page, size_t len, long nrec, void *opaque,
                         char *errstr, size_t errstr_size)
{
        struct xml_file *f = opaque;
        struct fetch_req *r =
            fetch_req_new(sl_strdup(f->url), sl_strdup(f->url), "GET");
        char why[512];
        int rc = -1;

        (void)nrec;
        sl_buf_append(&r->resp, page, len);
        r->status = 200;
        r->fetched_wall_ms = sl_wall_ms();
        r->content_type = sl_strdup("application/json");
        r->tag = f->page++;
        r->converted = 1;
        if (fetch_http_decode(&f->c->http, r, why, sizeof(why)) < 0) {
                snprintf(errstr, errstr_size, "page %ld: %s", r->tag, why);
                goto out;
        }
        if (publish(r, f->c, errstr, errstr_size) < 0)
                goto out;
        if (fetch_out_wait(&f->c->out, 120000, errstr, errstr_size) < 0)
                goto out;
        rc = 0;
out:
        fetch_req_destroy(r);
        return rc;
}

/* An XML file, streamed (fetch_xml_stream). */
static int page_file_xml(struct fetch_ctx *c, const char *path, const char *url,
                         char *errstr, size_t errstr_size)
{
        const struct fetch_source *src = c->src;
        struct fetch_xml_opts o;
        struct fetch_xml_sink sink;
        struct xml_file f;
        long pages = 0;
        char why[512];
        int fd, rc;

        memset(&o, 0, sizeof(o));
        o.records = src->xml_records;
        o.arrays = src->xml_arrays;
        o.arrays_n = src->xml_arrays_n;
        o.max_depth = src->max_depth;
        o.max_bytes = (size_t)src->max_page_bytes;
        memset(&f, 0, sizeof(f));
        f.c = c;
        f.url = url;
        sink.page_bytes = XML_FILE_PAGE_BYTES;
        if (sink.page_bytes > o.max_bytes / 2)
                sink.page_bytes = o.max_bytes / 2;
        sink.emit = emit_xml_page;
        sink.opaque = &f;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return SL_ERR_FATAL;
        }
        why[0] = '\0';
        rc = fetch_xml_stream(&o, fd, &sink, &pages, why, sizeof(why));
        close(fd);
        if (rc == FETCH_XML_OK)
                return SL_OK;
        snprintf(errstr, errstr_size, "%s: %s%s", path, why,
                 pages > 0 ? " (the pages before it were published)" : "");
        /* a delivery that did not complete can be tried again */
        return rc == FETCH_XML_SINK && strstr(why, "delivered") ? SL_ERR_RETRY
                                                                : SL_ERR_FATAL;
}

int fetch_page_file(struct fetch_ctx *c, const char *path, char *errstr,
                    size_t errstr_size)
{
        const struct fetch_source *src = c->src;
        struct fetch_req *r = NULL;
        char *text = NULL, *abs = NULL;
        size_t len = 0;
        char why[512];
        int rc = SL_ERR_FATAL;

        fetch_out_new_run(&c->out);
        c->pages = c->records = c->total_pages = c->dead_pages = 0;
        c->bad_records = 0;
        c->t0 = c->last_progress = sl_now_ms();
        c->cpu0 = sl_cpu_ms();
        if (src->xml) {
                char *url;
                abs = realpath(path, NULL);
                url = sl_asprintf("file://%s", abs ? abs : path);
                sl_info("event=page_file source=%s run=%s url=%s streamed=1",
                        src->name, c->out.run, url);
                rc = page_file_xml(c, path, url, errstr, errstr_size);
                free(url);
                if (rc != SL_OK)
                        goto out;
                goto done;
        }
        text = sl_file_read(path, &len, errstr, errstr_size);
        if (!text)
                goto out;
        if (len > (size_t)src->max_page_bytes) {
                snprintf(errstr, errstr_size,
                         "%s: page larger than limits.max_page_bytes (%ld "
                         "bytes)",
                         path, src->max_page_bytes);
                goto out;
        }
        abs = realpath(path, NULL);
        r = fetch_req_new(sl_asprintf("file://%s", abs ? abs : path),
                          sl_asprintf("file://%s", abs ? abs : path), "GET");
        sl_buf_append(&r->resp, text, len);
        r->status = 200;
        r->fetched_wall_ms = sl_wall_ms();
        r->content_type = sl_strdup("application/json");
        r->tag = 0;
        sl_info("event=page_file source=%s run=%s url=%s bytes=%zu", src->name,
                c->out.run, r->masked_url, len);
        if (fetch_http_decode(&c->http, r, why, sizeof(why)) < 0) {
                snprintf(errstr, errstr_size, "%s: %s", path, why);
                goto out;
        }
        if (publish(r, c, errstr, errstr_size) < 0)
                goto out;
        /* the cursor is left alone: a page from a file is no sync */
        if (fetch_out_wait(&c->out, 120000, errstr, errstr_size) < 0) {
                rc = SL_ERR_RETRY;
                goto out;
        }
done:
        rc = SL_OK;
        sl_info("event=sync_done source=%s run=%s pages=%ld records=%ld "
                "dead_pages=%ld ms=%lld cpu_ms=%lld file=%s",
                src->name, c->out.run, c->pages, c->records, c->dead_pages,
                (long long)(sl_now_ms() - c->t0),
                (long long)(sl_cpu_ms() - c->cpu0), path);
out:
        fetch_req_destroy(r);
        free(abs);
        free(text);
        return rc;
}

int fetch_sync(struct fetch_ctx *c, char *errstr, size_t errstr_size)
{
        const struct fetch_source *src = c->src;
        int64_t now_ms = sl_wall_ms();
        int rc = SL_OK;

        fetch_out_new_run(&c->out);
        c->pages = c->records = c->total_pages = c->dead_pages = 0;
        c->bad_records = 0;
        c->t0 = c->last_progress = sl_now_ms();
        c->cpu0 = sl_cpu_ms();
        c->last_tty = 0;
        /* SLUICE_PROGRESS=0 keeps a terminal free of the live line */
        c->tty = isatty(STDERR_FILENO) &&
                 !(getenv("SLUICE_PROGRESS") &&
                   strcmp(getenv("SLUICE_PROGRESS"), "0") == 0);
        c->http.requests = c->http.retries = c->http.throttled = 0;
        c->http.pauses = 0;
        c->http.pause_ms = c->http.last_pause_at = 0;
        sl_time_format(now_ms, c->now, sizeof(c->now));
        memset(&c->vars, 0, sizeof(c->vars));
        fetch_vars_set(&c->vars, "now", c->now);
        sl_info("event=sync_start source=%s run=%s cursor=%s", src->name,
                c->out.run, c->cursor ? c->cursor : "-");
        if (!src->cursor_field) {
                fetch_vars_set(&c->vars, "cursor", c->cursor ? c->cursor : "");
                rc = run_window(c, errstr, errstr_size);
                if (rc == SL_OK &&
                    fetch_out_state(&c->out, c->cursor, c->pages, c->records,
                                    errstr, errstr_size) < 0)
                        rc = SL_ERR_RETRY;
                goto out;
        }
        if (!c->cursor && !src->inc_start) {
                /* First sync without a start bound: one full pull (the way
                 * NVD asks for an initial load), then incremental from the
                 * newest value seen. */
                fetch_vars_set(&c->vars, "window.start", "");
                fetch_vars_set(&c->vars, "window.end", "");
                fetch_vars_set(&c->vars, "cursor", "");
                sl_info("event=full_pull source=%s", src->name);
                rc = run_window(c, errstr, errstr_size);
                if (rc != SL_OK)
                        goto out;
                if (c->max_seen)
                        c->cursor = sl_strdup(c->max_seen);
                if (fetch_out_state(&c->out, c->cursor, c->pages, c->records,
                                    errstr, errstr_size) < 0)
                        rc = SL_ERR_RETRY;
                sl_info("event=cursor source=%s cursor=%s", src->name,
                        c->cursor ? c->cursor : "-");
                goto out;
        }
        for (;;) {
                const char *from = c->cursor ? c->cursor : src->inc_start;
                int64_t from_ms, to_ms;
                int last;

                if (fetch_time_parse(from, &from_ms) < 0) {
                        snprintf(errstr, errstr_size,
                                 "cursor \"%s\" is not an RFC 3339 time", from);
                        rc = SL_ERR_FATAL;
                        break;
                }
                to_ms = src->window_days
                            ? from_ms + src->window_days * 86400000LL
                            : now_ms;
                last = to_ms >= now_ms;
                if (last)
                        to_ms = now_ms;
                sl_time_format(from_ms, c->win_start, sizeof(c->win_start));
                sl_time_format(to_ms, c->win_end, sizeof(c->win_end));
                fetch_vars_set(&c->vars, "window.start", c->win_start);
                fetch_vars_set(&c->vars, "window.end", c->win_end);
                fetch_vars_set(&c->vars, "cursor", from);
                sl_info("event=window source=%s start=%s end=%s", src->name,
                        c->win_start, c->win_end);
                rc = run_window(c, errstr, errstr_size);
                if (rc != SL_OK)
                        break;
                /* delivered: now the cursor may move. A past window is
                 * complete up to its end; the last one up to the newest
                 * record seen (the server may still be indexing "now"). */
                if (!last) {
                        free(c->cursor);
                        c->cursor = sl_strdup(c->win_end);
                } else if (c->max_seen &&
                           (!c->cursor || strcmp(c->max_seen, c->cursor) > 0)) {
                        free(c->cursor);
                        c->cursor = sl_strdup(c->max_seen);
                }
                if (fetch_out_state(&c->out, c->cursor, c->pages, c->records,
                                    errstr, errstr_size) < 0) {
                        rc = SL_ERR_RETRY;
                        break;
                }
                sl_info("event=cursor source=%s cursor=%s", src->name,
                        c->cursor ? c->cursor : "-");
                if (last)
                        break;
        }
out:
        progress(c, 1);
        if (rc == SL_OK)
                sl_info("event=sync_done source=%s run=%s pages=%ld "
                        "records=%ld dead_pages=%ld bad_records=%ld ms=%lld "
                        "cpu_ms=%lld ratelimit_pauses=%ld "
                        "ratelimit_wait_ms=%lld",
                        src->name, c->out.run, c->pages, c->records,
                        c->dead_pages, c->bad_records,
                        (long long)(sl_now_ms() - c->t0),
                        (long long)(sl_cpu_ms() - c->cpu0), c->http.pauses,
                        (long long)c->http.pause_ms);
        return rc;
}
