/* fetch_http: runs a set of HTTP requests in parallel on one libcurl multi
 * handle (connections are reused), each start gated by the source's rate
 * window and concurrency cap, each answer checked (status, Content-Length
 * against bytes received, JSON that parses) and retried with the backoff
 * its throttle headers ask for. */
#ifndef FETCH_HTTP_H
#define FETCH_HTTP_H

#include "fetch_out.h"
#include "fetch_policy.h"
#include "fetch_salvage.h"
#include "fetch_source.h"
#include "sl_jsonscan.h"
#include "sl_util.h"

#include <curl/curl.h>
#include <jansson.h>

struct fetch_req {
        /* filled by the caller */
        char *url;        /* owned */
        char *masked_url; /* owned: secrets replaced by *** (logs, headers) */
        const char *method;
        char *body; /* owned, or NULL */
        int body_json;
        long tag;      /* the caller's (page number) */
        int accept[4]; /* non-2xx statuses handed back, not retried */
        int accept_n;
        int raw; /* do not parse the body as JSON */
        /* body is a SOAP envelope (src->soap): sent with the version's
         * Content-Type and this action (borrowed from the source; NULL:
         * none) */
        int soap;
        const char *soap_action;
        /* resp is already a JSON page made from XML (a streamed file):
         * decoding skips an XML source's conversion */
        int converted;
        /* bad for good, the page goes to done() with dead set rather than
         * failing the run: set by a caller that can go on without it
         * (parallel pages of a known set) */
        int dead_letter;
        /* a plain member path to read from the answer's first bytes
         * (sl_json_prefix_member) while the rest is still arriving: when
         * found, fetch_http.peeked is called with it, once per request */
        const char *peek_path;

        /* the answer, valid in the done callback */
        long status;
        struct sl_buf resp;
        char *content_type; /* owned, or NULL */
        char *link;         /* owned, or NULL */
        json_t *json;       /* new reference, or NULL */
        /* with sparse decoding (fetch_http.sparse_path), json is the page
         * without its records: they stay text, located here */
        long nrec; /* -1: not located, count json's */
        struct sl_json_span *recs;
        size_t arr_open, arr_close;
        int64_t fetched_wall_ms;
        /* with dead_letter: the page is bad for good (not JSON
         * after every attempt, over a limit); done() gets it with the
         * reason, to dead-letter instead of failing the run */
        int dead;
        char *dead_reason; /* owned, with dead */
        /* records set aside from the page (fetch_salvage: invalid UTF-8,
         * a number out of range), each now `null` in resp: the caller
         * dead-letters them (owned; nbad entries) */
        struct fetch_bad_record *bad;
        long nbad;

        /* private */
        int attempts;
        int64_t started_ms; /* monotonic, at the last start */
        int64_t not_before;
        int active;
        int done;
        int too_big;    /* the body passed limits.max_page_bytes */
        int bad_body;   /* the verdict is about the body's content */
        int peek_state; /* 0 looking, 1 found (in peek), 2 told, -1 no */
        struct sl_json_span peek;
        struct fetch_http *http;
        CURL *curl;
        struct curl_slist *slist;
        char *hdr_retry_after, *hdr_reset, *hdr_retryafter, *hdr_remaining,
            *hdr_length, *hdr_message;
};

struct fetch_http {
        CURLM *multi;
        const struct fetch_source *src;
        struct fetch_rate rate;
        struct curl_slist *headers; /* static request headers, with auth */
        char *user;                 /* basic auth, or NULL */
        char *password;
        long max_active;
        /* the records path, when pages may be decoded without their
         * records (validated, located, kept as text: the page's other
         * values are all the fetcher reads); NULL: decode whole pages */
        const char *sparse_path;
        /* called about every 100 ms while waiting (the stand-by lock);
         * non-zero stops the run */
        int (*idle)(void *opaque);
        void *idle_opaque;
        /* a request's peek_path value seen in its answer's first bytes
         * (r->peek, in r->resp), called between transfers: may add
         * requests to the running set with fetch_http_add; non-zero stops
         * the run (errstr set) */
        int (*peeked)(struct fetch_req *r, void *opaque, char *errstr,
                      size_t errstr_size);
        void *peeked_opaque;
        /* the running set (fetch_http_run's, and what was added to it) */
        struct fetch_req **set;
        size_t set_n, set_cap, set_remaining;
        int peek_pending;
        /* counters for progress logs and tests */
        long requests, retries, throttled;
        /* x-ratelimit pauses: how many, their total wait, when the last
         * started (monotonic ms, 0: none); one is logged at info after a
         * quiet spell (fetch_pause_loud), the rest at debug */
        long pauses;
        int64_t pause_ms, last_pause_at;
};

/* 0, or -1 with errstr (an unset credential variable). */
int fetch_http_init(struct fetch_http *h, const struct fetch_source *src,
                    char *errstr, size_t errstr_size);
void fetch_http_free(struct fetch_http *h);

/* Checks an answer's body as every page is checked (valid JSON within
 * limits.max_depth, the records located when h->sparse_path is set) and
 * decodes it into r->json. 0, or -1 with why (r->bad_body set). For a page
 * that did not come over HTTP (`sluice fetch --page FILE`). */
int fetch_http_decode(struct fetch_http *h, struct fetch_req *r, char *why,
                      size_t why_size);

/* New request for url (taken over), with its masked form (taken over). */
struct fetch_req *fetch_req_new(char *url, char *masked_url,
                                const char *method);
void fetch_req_destroy(struct fetch_req *r);

/* Called for each answered request in completion order. Returns 0 to go
 * on, non-zero to stop the run (errstr set). */
typedef int (*fetch_done_fn)(struct fetch_req *r, void *opaque, char *errstr,
                             size_t errstr_size);

/* Runs reqs[0..n) until each is answered and `done` accepted it. Returns
 * SL_OK, SL_ERR_RETRY (retries exhausted on a transient fault, or
 * stopped), or SL_ERR_FATAL (a permanent error answer) with errstr. */
int fetch_http_run(struct fetch_http *h, struct fetch_req **reqs, size_t n,
                   fetch_done_fn done, void *opaque, char *errstr,
                   size_t errstr_size);

/* Adds r to the set fetch_http_run is running, from a done or peeked
 * callback: it is started like the others and handed to done() when
 * answered. The caller still owns r and destroys it after the run. */
void fetch_http_add(struct fetch_http *h, struct fetch_req *r);

#endif
