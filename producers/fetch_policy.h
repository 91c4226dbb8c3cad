/* fetch_policy: the fetcher's pure decisions, kept apart from I/O so they
 * are unit-tested: the rate window, backoff, how long a throttle answer
 * says to wait, Link headers, templates and secret masking in URLs. */
#ifndef FETCH_POLICY_H
#define FETCH_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* At most `limit` requests in any rolling window of `window_ms`. A request
 * holds a slot from its start until its answer arrives, and the window of
 * that slot counts from the answer: the server decided on the request
 * before we saw the answer, so the server never sees more than `limit` in
 * any of its own windows, however long the request took. */
struct fetch_rate {
        long limit; /* 0: unlimited */
        int64_t window_ms;
        int64_t *done_ms; /* slot times, oldest first (ring) */
        long head;
        long used;
        long in_flight;
        int64_t blocked_until; /* a throttle answer pauses everyone */
};

void fetch_rate_init(struct fetch_rate *r, long limit, int64_t window_ms);
void fetch_rate_free(struct fetch_rate *r);
/* What a slot is held past its window: the clocks' granularity. */
#define FETCH_RATE_TICK_MS 2

/* 0 when a request may start at now_ms (then it is counted as in
 * flight), else the ms to wait before asking again. */
int64_t fetch_rate_take(struct fetch_rate *r, int64_t now_ms);
/* The request taken at fetch_rate_take() got its answer at now_ms; its
 * slot counts from slot_ms (<= now_ms: when it was sent, plus a margin;
 * fetch_rate_margin_ms) until slot_ms + the window. */
void fetch_rate_done(struct fetch_rate *r, int64_t now_ms, int64_t slot_ms);
/* The margin a request's slot keeps past its send time: the server counts
 * from the request's arrival, which a later request on a faster path
 * could otherwise beat. 2 % of the window, at least 25 ms. */
int64_t fetch_rate_margin_ms(const struct fetch_rate *r);
/* Nobody starts before until_ms. */
void fetch_rate_block(struct fetch_rate *r, int64_t until_ms);

/* Full-jitter exponential backoff for attempt n (1 = first retry):
 * uniform in [0, min(max_ms, base_ms * 2^(n-1))]. `rnd` is a random
 * 32-bit value (tests pass fixed ones). */
int64_t fetch_backoff_ms(long base_ms, long max_ms, int attempt, uint32_t rnd);

/* How long a throttle answer asks to wait, from its headers (values as
 * received; NULL when absent): Retry-After (delta seconds or an HTTP
 * date), X-Ratelimit-Retryafter (epoch seconds), x-ratelimit-reset (epoch
 * seconds). now_wall_ms is the wall clock. Returns the wait in ms (>= 0),
 * or -1 when no header says. */
int64_t fetch_throttle_wait_ms(const char *retry_after,
                               const char *retryafter_epoch,
                               const char *ratelimit_reset,
                               int64_t now_wall_ms);

/* The target of rel="next" in a Link header value. New; free with free().
 * NULL when there is none. */
char *fetch_link_next(const char *link);

/* Variables for templates: ${name} is looked up here, ${env:NAME} in the
 * environment. */
struct fetch_vars {
        const char *names[8];
        const char *values[8];
        int n;
};

void fetch_vars_set(struct fetch_vars *v, const char *name, const char *value);

/* Expands a template. New; free with free(). NULL with errstr naming the
 * unset variable or unknown ${name}. `secret` (may be NULL) is set to 1
 * when the result holds a value from the environment. */
char *fetch_template(const char *tmpl, const struct fetch_vars *vars,
                     int *secret, char *errstr, size_t errstr_size);

/* Same, and `omit` (may be NULL) is set to 1 when a variable written
 * ${name?} expanded to the empty string: the caller leaves out the whole
 * query parameter (`updated=>=${cursor?}` on a first, full sync). */
char *fetch_template_opt(const char *tmpl, const struct fetch_vars *vars,
                         int *secret, int *omit, char *errstr,
                         size_t errstr_size);

/* Same as fetch_template, each substituted value XML-escaped (& < > " '
 * as references): a SOAP envelope's cursor and secrets cannot change its
 * markup. */
char *fetch_template_xml(const char *tmpl, const struct fetch_vars *vars,
                         int *secret, char *errstr, size_t errstr_size);

/* The URL with every query parameter called `name` (as encoded in the URL)
 * removed and name=value (both already encoded) added once at the end of
 * the query, before any fragment. New; free with free(). */
char *fetch_url_set_param(const char *url, const char *name, const char *value);

/* Whether a rate-limit pause starting at now_ms is logged at info: the
 * first one, or the first after FETCH_PAUSE_QUIET_MS without one (the rest
 * go to debug, counted in the progress and sync_done events).
 * last_pause_ms is when the previous one started, 0 when none. */
#define FETCH_PAUSE_QUIET_MS 60000
int fetch_pause_loud(int64_t last_pause_ms, int64_t now_ms);

/* 64-bit FNV-1a of data: telling pages and URLs apart within a sync. */
uint64_t fetch_hash(const void *data, size_t len);

/* The URL with the values of the named query parameters replaced by ***.
 * New; free with free(). */
char *fetch_url_mask(const char *url, const char *const *names, int n);

/* Adds days to an RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SS[.fff]Z" and writes
 * it back in the same form with milliseconds. 0 or -1 when unparsable. */
int fetch_time_add_days(const char *t, long days, char *out, size_t size);
/* Parses such a time into ms since the epoch. 0 or -1. */
int fetch_time_parse(const char *t, int64_t *ms);

/* Whether a transfer that failed with libcurl's curl_code would fail the
 * same way however often it is tried: a server certificate that does not
 * verify (unknown or self-signed CA, expired, another host's name), a CA
 * file that cannot be read, a URL or protocol libcurl refuses. Then 1,
 * with why naming the source and the URL's host, what is wrong and how to
 * fix it; else 0 (transient: back off and retry). verify_result is
 * libcurl's CURLINFO_SSL_VERIFYRESULT (an X509_V_ERR_* code; 0 when the
 * chain verified). */
int fetch_curl_permanent(int curl_code, long verify_result, const char *source,
                         const char *url, char *why, size_t why_size);

#endif
