/* Unit tests of the fetcher's pure decisions: rate window, backoff,
 * throttle waits, Link headers, templates, URL masking, page splitting,
 * which libcurl errors are permanent. */
#include "fetch_out.h"
#include "fetch_policy.h"
#include "tap.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

static void test_rate(void)
{
        struct fetch_rate r;

        fetch_rate_init(&r, 2, 1000);
        TAP_INT_EQ(fetch_rate_take(&r, 0), 0, "rate: first slot");
        TAP_INT_EQ(fetch_rate_take(&r, 0), 0, "rate: second slot");
        TAP_OK(fetch_rate_take(&r, 0) > 0, "rate: third waits while two fly");
        fetch_rate_done(&r, 500, 500);
        fetch_rate_done(&r, 700, 700);
        TAP_INT_EQ(fetch_rate_take(&r, 800), 700 + FETCH_RATE_TICK_MS,
                   "rate: window counts from the first answer, plus the "
                   "clocks' tick");
        TAP_OK(fetch_rate_take(&r, 1500) > 0,
               "rate: not free at exactly the window's end (a server "
               "counting whole ms may still see it inside)");
        TAP_INT_EQ(fetch_rate_take(&r, 1500 + FETCH_RATE_TICK_MS), 0,
                   "rate: free after window + tick");
        fetch_rate_block(&r, 5000);
        TAP_INT_EQ(fetch_rate_take(&r, 4000), 1000, "rate: block holds all");
        fetch_rate_free(&r);

        /* slots count from the send: answers out of send order */
        fetch_rate_init(&r, 2, 1000);
        fetch_rate_take(&r, 0);
        fetch_rate_take(&r, 0);
        fetch_rate_done(&r, 400, 100); /* sent at 100, answered first */
        fetch_rate_done(&r, 600, 50);  /* sent at 50, answered later */
        TAP_INT_EQ(fetch_rate_take(&r, 700), 350 + FETCH_RATE_TICK_MS,
                   "rate: the earliest send frees first (1052 - 700)");
        TAP_INT_EQ(fetch_rate_take(&r, 1050 + FETCH_RATE_TICK_MS), 0,
                   "rate: free at send + window + tick");
        TAP_OK(fetch_rate_take(&r, 1050 + FETCH_RATE_TICK_MS) > 0,
               "rate: the second slot is held until 1102");
        fetch_rate_done(&r, 1200, 1300);
        TAP_INT_EQ(fetch_rate_take(&r, 1200), 0,
                   "rate: a slot never starts after its answer");
        TAP_INT_EQ(fetch_rate_margin_ms(&r), 25, "rate: margin floor 25 ms");
        fetch_rate_free(&r);
        fetch_rate_init(&r, 5, 30000);
        TAP_INT_EQ(fetch_rate_margin_ms(&r), 600,
                   "rate: margin 2 %% of a 30 s window");
        fetch_rate_free(&r);
}

static void test_backoff(void)
{
        TAP_INT_EQ(fetch_backoff_ms(100, 1000, 1, 0xffffffffu) <= 100, 1,
                   "backoff: first within base");
        TAP_INT_EQ(fetch_backoff_ms(100, 1000, 3, 400), 400,
                   "backoff: attempt 3 allows up to 400");
        TAP_INT_EQ(fetch_backoff_ms(100, 1000, 3, 401), 0,
                   "backoff: jitter wraps within the cap");
        TAP_OK(fetch_backoff_ms(100, 1000, 30, 0xffffffffu) <= 1000,
               "backoff: capped");
}

static void test_throttle(void)
{
        int64_t now = 1700000000000LL;

        TAP_INT_EQ(fetch_throttle_wait_ms("7", NULL, NULL, now), 7000,
                   "throttle: Retry-After seconds");
        TAP_INT_EQ(fetch_throttle_wait_ms("Tue, 14 Nov 2023 22:13:30 GMT", NULL,
                                          NULL, now),
                   10000, "throttle: Retry-After HTTP date");
        TAP_INT_EQ(fetch_throttle_wait_ms(NULL, "1700000003", NULL, now), 3000,
                   "throttle: X-Ratelimit-Retryafter epoch");
        TAP_INT_EQ(fetch_throttle_wait_ms(NULL, NULL, "1700000005", now), 5000,
                   "throttle: x-ratelimit-reset epoch");
        TAP_INT_EQ(fetch_throttle_wait_ms(NULL, NULL, NULL, now), -1,
                   "throttle: no header");
        /* a hostile server's huge values are capped at a day, not
         * overflowed (found by tests/fuzz/fuzz_fetch_policy) */
        TAP_INT_EQ(
            fetch_throttle_wait_ms(NULL, "999999999999999999", NULL, now),
            86400000, "throttle: huge epoch capped at a day");
        TAP_INT_EQ(
            fetch_throttle_wait_ms("999999999999999999", NULL, NULL, now),
            86400000, "throttle: huge Retry-After capped at a day");
}

static void test_link(void)
{
        char *n = fetch_link_next("<https://a/x?p=1>; rel=\"prev\", "
                                  "<https://a/x?p=3>; rel=\"next\"");

        TAP_STR_EQ(n, "https://a/x?p=3", "link: rel=next among several");
        free(n);
        n = fetch_link_next("<https://a/x?p=1>; rel=\"prev\"");
        TAP_OK(n == NULL, "link: none");
        free(n);
}

static void test_template_mask(void)
{
        struct fetch_vars v = {0};
        char err[256];
        int secret = 0;
        char *s;
        const char *names[] = {"api_key"};

        fetch_vars_set(&v, "window.start", "2024-01-01T00:00:00.000Z");
        setenv("FETCH_TEST_KEY", "abc", 1);
        s = fetch_template("${window.start}/${env:FETCH_TEST_KEY}", &v, &secret,
                           err, sizeof(err));
        TAP_STR_EQ(s, "2024-01-01T00:00:00.000Z/abc", "template: expands");
        TAP_INT_EQ(secret, 1, "template: env value marked secret");
        free(s);
        s = fetch_template("${nope}", &v, NULL, err, sizeof(err));
        TAP_OK(s == NULL && strstr(err, "${nope}"), "template: unknown name");
        s = fetch_url_mask("http://h/p?a=1&api_key=abc&b=2", names, 1);
        TAP_STR_EQ(s, "http://h/p?a=1&api_key=***&b=2", "mask: query value");
        free(s);
}

/* issue 23: ${name?} leaves a parameter out; followed URLs get a
 * parameter set once, never appended twice */
static void test_optional_set_param(void)
{
        struct fetch_vars v = {0};
        char err[256];
        int omit = -1;
        char *s;

        fetch_vars_set(&v, "cursor", "");
        s = fetch_template_opt(">=${cursor?}", &v, NULL, &omit, err,
                               sizeof(err));
        TAP_STR_EQ(s, ">=", "optional: expands to what is around it");
        TAP_INT_EQ(omit, 1, "optional: empty value asks to leave it out");
        free(s);
        s = fetch_template_opt(">=${cursor}", &v, NULL, &omit, err,
                               sizeof(err));
        TAP_INT_EQ(omit, 0, "optional: a plain ${cursor} never omits");
        free(s);
        fetch_vars_set(&v, "cursor", "2024-01-01");
        s = fetch_template_opt(">=${cursor?}", &v, NULL, &omit, err,
                               sizeof(err));
        TAP_STR_EQ(s, ">=2024-01-01", "optional: set value expands");
        TAP_INT_EQ(omit, 0, "optional: set value is sent");
        free(s);

        s = fetch_url_set_param("http://h/p?page=2&apiKey=old&x=1", "apiKey",
                                "k");
        TAP_STR_EQ(s, "http://h/p?page=2&x=1&apiKey=k",
                   "set_param: replaces, never duplicates");
        free(s);
        s = fetch_url_set_param("http://h/p?apiKey=a&apiKey=b#f", "apiKey",
                                "k");
        TAP_STR_EQ(s, "http://h/p?apiKey=k#f",
                   "set_param: every copy goes, fragment kept");
        free(s);
        s = fetch_url_set_param("http://h/p", "apiKeyX", "1");
        TAP_STR_EQ(s, "http://h/p?apiKeyX=1", "set_param: no query yet");
        free(s);
        s = fetch_url_set_param("http://h/p?apiKeyX=2", "apiKey", "1");
        TAP_STR_EQ(s, "http://h/p?apiKeyX=2&apiKey=1",
                   "set_param: a longer name is another parameter");
        free(s);

        TAP_INT_EQ(fetch_pause_loud(0, 5000), 1, "pause: the first is loud");
        TAP_INT_EQ(fetch_pause_loud(5000, 6000), 0,
                   "pause: one a second later is quiet");
        TAP_INT_EQ(fetch_pause_loud(5000, 5000 + FETCH_PAUSE_QUIET_MS), 1,
                   "pause: loud again after a quiet spell");
        TAP_OK(fetch_hash("ab", 2) != fetch_hash("ba", 2),
               "hash: order matters");
}

static void test_split(void)
{
        const char *page = "{\"n\": 3, \"items\": [{\"a\": 1.10}, "
                           "{\"a\": 2}, {\"a\": 3}], \"z\": true}";
        struct fetch_chunks c;
        size_t n = fetch_split(page, strlen(page), "$.items", 50, &c);

        TAP_INT_EQ(n, 2, "split: two chunks of at most 50 bytes");
        if (n == 2) {
                TAP_INT_EQ(c.len[0], strlen(c.chunk[0]),
                           "split: the length excludes the NUL");
                TAP_STR_EQ(c.chunk[0],
                           "{\"n\": 3, \"items\": [{\"a\": 1.10}],"
                           " \"z\": true}",
                           "split: first keeps the envelope, bytes exact");
                TAP_STR_EQ(c.chunk[1],
                           "{\"n\": 3, \"items\": [{\"a\": 2},{\"a\":"
                           " 3}], \"z\": true}",
                           "split: second has the rest");
        }
        fetch_chunks_free(&c);
        n = fetch_split(page, strlen(page), "$.missing", 10, &c);
        TAP_INT_EQ(n, 0, "split: no array at the path");
        TAP_OK(c.block == NULL && c.chunk == NULL, "split: nothing to free");
        {
                const char *empty = "{\"items\": []}";
                n = fetch_split(empty, strlen(empty), "$.items", 10, &c);
        }
        TAP_INT_EQ(n, 1, "split: an empty array is one chunk");
        if (n == 1)
                TAP_STR_EQ(c.chunk[0], "{\"items\": []}",
                           "split: the page as it was");
        fetch_chunks_free(&c);
}

/* The same split in the page's own buffer: the chunks are the page's
 * envelope around runs of its records as the page spaced them; a buffer
 * without room, or spacing wider than the envelope, is left untouched for
 * the copying split. */
static void test_split_in_place(void)
{
        const char *page = "{\"n\": 3, \"items\": [{\"a\": 1.10}, "
                           "{\"a\": 2}, {\"a\": 3}], \"z\": true}";
        size_t len = strlen(page), nrec = 0, open = 0, close = 0, cap;
        struct sl_json_span *recs = NULL;
        struct fetch_chunks c;
        char *body;
        size_t n;
        long got =
            sl_json_locate_array(page, len, "$.items", &open, &close, &recs);

        TAP_INT_EQ(got, 3, "in place: three records located");
        if (got != 3)
                return;
        nrec = (size_t)got;
        cap = 3 * len;
        body = malloc(cap);
        memcpy(body, page, len + 1);
        n = fetch_split_in_place(body, len, len + 1, open, close, recs, nrec,
                                 50, &c);
        TAP_INT_EQ(n, 0, "in place: no room after the page, refused");
        TAP_STR_EQ(body, page, "in place: a refused page is untouched");
        n = fetch_split_in_place(body, len, cap, open, close, recs, nrec, 50,
                                 &c);
        TAP_INT_EQ(n, 2, "in place: two chunks of at most 50 bytes");
        if (n == 2) {
                TAP_OK(c.block == body, "in place: the page's buffer is "
                                        "the block");
                TAP_INT_EQ(c.len[0], strlen(c.chunk[0]),
                           "in place: the length excludes the NUL");
                TAP_STR_EQ(c.chunk[0],
                           "{\"n\": 3, \"items\": [{\"a\": 1.10}],"
                           " \"z\": true}",
                           "in place: first keeps the envelope");
                TAP_STR_EQ(c.chunk[1],
                           "{\"n\": 3, \"items\": [{\"a\": 2}, {\"a\":"
                           " 3}], \"z\": true}",
                           "in place: second keeps the page's spacing");
                fetch_chunks_free(&c);
        } else {
                free(body);
        }
        free(recs);
        {
                /* records further apart than an envelope is long */
                const char *wide = "{\"i\":[1,                    2,   "
                                   "                 3]}";
                size_t wl = strlen(wide);

                recs = NULL;
                got =
                    sl_json_locate_array(wide, wl, "$.i", &open, &close, &recs);
                body = malloc(4 * wl);
                memcpy(body, wide, wl + 1);
                n = got == 3 ? fetch_split_in_place(body, wl, 4 * wl, open,
                                                    close, recs, 3, 8, &c)
                             : 99;
                TAP_INT_EQ(n, 0, "in place: wide spacing refused");
                TAP_STR_EQ(body, wide, "in place: and left untouched");
                free(body);
                free(recs);
        }
}

static void test_time(void)
{
        char out[40];

        TAP_INT_EQ(fetch_time_add_days("2024-02-28T10:00:00.000Z", 2, out,
                                       sizeof(out)),
                   0, "time: parses");
        TAP_STR_EQ(out, "2024-03-01T10:00:00.000Z", "time: leap year");
        TAP_INT_EQ(
            fetch_time_add_days("2019-11-27T16:15:11.043", 0, out, sizeof(out)),
            0, "time: NVD form without offset");
        TAP_STR_EQ(out, "2019-11-27T16:15:11.043Z", "time: keeps ms");
        TAP_INT_EQ(fetch_time_add_days("yesterday", 1, out, sizeof(out)), -1,
                   "time: refuses text");
}

/* Certificate failures are permanent and say how to fix them; a reset or
 * a timeout is transient. */
static void test_curl_permanent(void)
{
        char why[512];

        TAP_INT_EQ(fetch_curl_permanent(
                       CURLE_PEER_FAILED_VERIFICATION, 18, "kev",
                       "https://u:p@h.example:8443/x?a=1", why, sizeof(why)),
                   1, "curl: an untrusted certificate is permanent");
        TAP_OK(strstr(why, "source kev") && strstr(why, "h.example:8443") &&
                   !strstr(why, "u:p") && strstr(why, "self-signed") &&
                   strstr(why, "\"ca_file\"") &&
                   strstr(why, "\"verify\": false"),
               "curl: names source, host, reason and both fixes: %s", why);
        TAP_INT_EQ(fetch_curl_permanent(CURLE_PEER_FAILED_VERIFICATION, 20, "s",
                                        "https://h/", why, sizeof(why)),
                   1, "curl: an unknown CA is permanent");
        TAP_OK(strstr(why, "unknown CA") != NULL, "curl: says unknown CA");
        fetch_curl_permanent(CURLE_PEER_FAILED_VERIFICATION, 1, "s",
                             "https://localhost:1/", why, sizeof(why));
        TAP_OK(strstr(why, "does not name this host") &&
                   strstr(why, "localhost:1"),
               "curl: a verified chain that failed names the host: %s", why);
        TAP_INT_EQ(fetch_curl_permanent(CURLE_SSL_CACERT_BADFILE, 0, "s",
                                        "https://h/", why, sizeof(why)),
                   1, "curl: an unreadable CA file is permanent");
        TAP_INT_EQ(fetch_curl_permanent(CURLE_UNSUPPORTED_PROTOCOL, 0, "s",
                                        "file:///etc/passwd", why, sizeof(why)),
                   1, "curl: an unsupported protocol is permanent");
        TAP_INT_EQ(fetch_curl_permanent(CURLE_SSL_CONNECT_ERROR, 0, "s",
                                        "https://h/", why, sizeof(why)),
                   0, "curl: a failed handshake is retried");
        TAP_INT_EQ(fetch_curl_permanent(CURLE_COULDNT_CONNECT, 0, "s",
                                        "https://h/", why, sizeof(why)),
                   0, "curl: a refused connection is retried");
        TAP_INT_EQ(fetch_curl_permanent(CURLE_OPERATION_TIMEDOUT, 0, "s",
                                        "https://h/", why, sizeof(why)),
                   0, "curl: a timeout is retried");
}

int main(void)
{
        test_rate();
        test_backoff();
        test_throttle();
        test_link();
        test_template_mask();
        test_optional_set_param();
        test_split();
        test_split_in_place();
        test_time();
        test_curl_permanent();
        return TAP_DONE();
}
