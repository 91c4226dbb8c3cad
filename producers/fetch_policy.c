/* fetch_policy: rate window, backoff, throttle waits, Link headers,
 * templates and URL masking. No I/O here. */
#include "fetch_policy.h"
#include "sl_tz.h"
#include "sl_util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fetch_rate_init(struct fetch_rate *r, long limit, int64_t window_ms)
{
        memset(r, 0, sizeof(*r));
        r->limit = limit;
        r->window_ms = window_ms;
        if (limit > 0)
                r->done_ms = sl_calloc((size_t)limit, sizeof(*r->done_ms));
}

void fetch_rate_free(struct fetch_rate *r)
{
        free(r->done_ms);
        r->done_ms = NULL;
}

/* When the slot that counts from slot_ms is free again. Both clocks, ours
 * and the server's, count whole milliseconds: a request sent at our slot +
 * window could be stamped up to 2 ms inside the server's window (a throttle
 * answer 999 ms after the request ten before it, in 2 of 8 bench runs on a
 * loaded machine), hence the tick on top. */
static int64_t slot_free_at(const struct fetch_rate *r, int64_t slot_ms)
{
        return slot_ms + r->window_ms + FETCH_RATE_TICK_MS;
}

static void expire(struct fetch_rate *r, int64_t now_ms)
{
        while (r->used > 0 && slot_free_at(r, r->done_ms[r->head]) <= now_ms) {
                r->head = (r->head + 1) % r->limit;
                r->used--;
        }
}

int64_t fetch_rate_take(struct fetch_rate *r, int64_t now_ms)
{
        if (r->blocked_until > now_ms)
                return r->blocked_until - now_ms;
        if (r->limit <= 0) {
                r->in_flight++;
                return 0;
        }
        expire(r, now_ms);
        if (r->used + r->in_flight < r->limit) {
                r->in_flight++;
                return 0;
        }
        if (r->used == 0)
                return 10; /* every slot is in flight: wait for answers */
        return slot_free_at(r, r->done_ms[r->head]) - now_ms;
}

int64_t fetch_rate_margin_ms(const struct fetch_rate *r)
{
        int64_t m = r->window_ms / 50;

        return m < 25 ? 25 : m;
}

void fetch_rate_done(struct fetch_rate *r, int64_t now_ms, int64_t slot_ms)
{
        long i;

        if (r->in_flight > 0)
                r->in_flight--;
        if (r->limit <= 0)
                return;
        if (slot_ms > now_ms)
                slot_ms = now_ms;
        expire(r, now_ms);
        if (r->used == r->limit) {
                /* cannot happen while takes and dones pair up; keep the
                 * newest times */
                r->head = (r->head + 1) % r->limit;
                r->used--;
        }
        /* answers come back out of send order: keep the ring sorted, so
         * that its head is always the next slot to free */
        for (i = r->used; i > 0; i--) {
                int64_t prev = r->done_ms[(r->head + i - 1) % r->limit];
                if (prev <= slot_ms)
                        break;
                r->done_ms[(r->head + i) % r->limit] = prev;
        }
        r->done_ms[(r->head + i) % r->limit] = slot_ms;
        r->used++;
}

void fetch_rate_block(struct fetch_rate *r, int64_t until_ms)
{
        if (until_ms > r->blocked_until)
                r->blocked_until = until_ms;
}

int64_t fetch_backoff_ms(long base_ms, long max_ms, int attempt, uint32_t rnd)
{
        int64_t cap = base_ms > 0 ? base_ms : 1;

        for (int i = 1; i < attempt && cap < max_ms; i++)
                cap *= 2;
        if (cap > max_ms)
                cap = max_ms;
        return (int64_t)((uint64_t)rnd % (uint64_t)(cap + 1));
}

/* The longest wait a throttle header can ask for. A server's value is
 * input: one past this (or past int64 milliseconds) is capped here. */
#define MAX_WAIT_S 86400LL

/* Epoch seconds as text: ms from now, at least 0, at most MAX_WAIT_S;
 * -1 when not a number. */
static int64_t epoch_wait(const char *s, int64_t now_wall_ms)
{
        long long v;
        int64_t now_s = now_wall_ms / 1000;
        int64_t w;

        if (!s || sl_parse_ll(s, &v) < 0 || v < 0)
                return -1;
        if (v - now_s > MAX_WAIT_S)
                return MAX_WAIT_S * 1000;
        w = (int64_t)v * 1000 - now_wall_ms;
        return w > 0 ? w : 0;
}

int64_t fetch_throttle_wait_ms(const char *retry_after,
                               const char *retryafter_epoch,
                               const char *ratelimit_reset, int64_t now_wall_ms)
{
        int64_t w;

        if (retry_after && *retry_after) {
                long long secs;
                time_t when;

                if (sl_parse_ll(retry_after, &secs) == 0) {
                        if (secs > MAX_WAIT_S)
                                secs = MAX_WAIT_S;
                        return secs > 0 ? (int64_t)secs * 1000 : 0;
                }
                when = curl_getdate(retry_after, NULL);
                if (when != (time_t)-1) {
                        if ((int64_t)when - now_wall_ms / 1000 > MAX_WAIT_S)
                                return MAX_WAIT_S * 1000;
                        w = (int64_t)when * 1000 - now_wall_ms;
                        return w > 0 ? w : 0;
                }
        }
        w = epoch_wait(retryafter_epoch, now_wall_ms);
        if (w >= 0)
                return w;
        return epoch_wait(ratelimit_reset, now_wall_ms);
}

char *fetch_link_next(const char *link)
{
        const char *p = link;

        /* link-value = "<" URI ">" *( ";" param ) , separated by ',' */
        while (p && *p) {
                const char *lt = strchr(p, '<');
                const char *gt, *end, *rel;

                if (!lt)
                        return NULL;
                gt = strchr(lt, '>');
                if (!gt)
                        return NULL;
                end = strchr(gt, ',');
                if (!end)
                        end = gt + strlen(gt);
                rel = gt;
                while ((rel = strstr(rel, "rel=")) && rel < end) {
                        const char *v = rel + 4;
                        size_t n;
                        if (*v == '"')
                                v++;
                        n = strcspn(v, "\" ;,");
                        /* rel may hold several space-separated types */
                        while (v < end) {
                                n = strcspn(v, "\" ;,");
                                if (n == 4 && strncmp(v, "next", 4) == 0)
                                        return sl_strndup(
                                            lt + 1, (size_t)(gt - lt - 1));
                                if (v[n] != ' ')
                                        break;
                                v += n + 1;
                        }
                        rel += 4;
                }
                p = *end ? end + 1 : end;
        }
        return NULL;
}

void fetch_vars_set(struct fetch_vars *v, const char *name, const char *value)
{
        for (int i = 0; i < v->n; i++) {
                if (strcmp(v->names[i], name) == 0) {
                        v->values[i] = value;
                        return;
                }
        }
        if (v->n < 8) {
                v->names[v->n] = name;
                v->values[v->n] = value;
                v->n++;
        }
}

char *fetch_template(const char *tmpl, const struct fetch_vars *vars,
                     int *secret, char *errstr, size_t errstr_size)
{
        return fetch_template_opt(tmpl, vars, secret, NULL, errstr,
                                  errstr_size);
}

/* Appends s with XML's five special characters as references. */
static void put_xml_escaped(struct sl_buf *b, const char *s)
{
        for (; *s; s++) {
                switch (*s) {
                case '&':
                        sl_buf_puts(b, "&amp;");
                        break;
                case '<':
                        sl_buf_puts(b, "&lt;");
                        break;
                case '>':
                        sl_buf_puts(b, "&gt;");
                        break;
                case '"':
                        sl_buf_puts(b, "&quot;");
                        break;
                case '\'':
                        sl_buf_puts(b, "&apos;");
                        break;
                default:
                        sl_buf_append(b, s, 1);
                        break;
                }
        }
}

static char *expand(const char *tmpl, const struct fetch_vars *vars,
                    int *secret, int *omit, int xml, char *errstr,
                    size_t errstr_size)
{
        struct sl_buf b;
        const char *p = tmpl;

        if (secret)
                *secret = 0;
        if (omit)
                *omit = 0;
        sl_buf_init(&b, 0);
        while (*p) {
                const char *start = strstr(p, "${");
                const char *end;
                char name[128];
                const char *val = NULL;
                int optional;

                if (!start) {
                        sl_buf_puts(&b, p);
                        break;
                }
                sl_buf_append(&b, p, (size_t)(start - p));
                end = strchr(start, '}');
                if (!end || end - start - 2 >= (long)sizeof(name)) {
                        snprintf(errstr, errstr_size,
                                 "unterminated ${...} in \"%.60s\"", tmpl);
                        goto fail;
                }
                snprintf(name, sizeof(name), "%.*s", (int)(end - start - 2),
                         start + 2);
                optional = *name && name[strlen(name) - 1] == '?';
                if (optional)
                        name[strlen(name) - 1] = '\0';
                if (sl_str_has_prefix(name, "env:")) {
                        val = getenv(name + 4);
                        if (!val) {
                                snprintf(errstr, errstr_size,
                                         "environment variable %s is not set",
                                         name + 4);
                                goto fail;
                        }
                        if (secret)
                                *secret = 1;
                } else {
                        for (int i = 0; vars && i < vars->n; i++)
                                if (strcmp(vars->names[i], name) == 0)
                                        val = vars->values[i];
                        if (!val) {
                                snprintf(errstr, errstr_size,
                                         "unknown or unset template "
                                         "variable ${%s}",
                                         name);
                                goto fail;
                        }
                }
                if (optional && !*val && omit)
                        *omit = 1;
                if (xml)
                        put_xml_escaped(&b, val);
                else
                        sl_buf_puts(&b, val);
                p = end + 1;
        }
        return sl_buf_steal(&b, NULL);
fail:
        sl_buf_free(&b);
        return NULL;
}

char *fetch_template_opt(const char *tmpl, const struct fetch_vars *vars,
                         int *secret, int *omit, char *errstr,
                         size_t errstr_size)
{
        return expand(tmpl, vars, secret, omit, 0, errstr, errstr_size);
}

char *fetch_template_xml(const char *tmpl, const struct fetch_vars *vars,
                         int *secret, char *errstr, size_t errstr_size)
{
        return expand(tmpl, vars, secret, NULL, 1, errstr, errstr_size);
}

char *fetch_url_mask(const char *url, const char *const *names, int n)
{
        const char *q = strchr(url, '?');
        struct sl_buf b;

        if (!q || n == 0)
                return sl_strdup(url);
        sl_buf_init(&b, 0);
        sl_buf_append(&b, url, (size_t)(q - url) + 1);
        q++;
        while (*q) {
                size_t len = strcspn(q, "&#");
                const char *eq = memchr(q, '=', len);
                size_t klen = eq ? (size_t)(eq - q) : len;
                int hide = 0;

                for (int i = 0; i < n; i++)
                        if (strlen(names[i]) == klen &&
                            strncmp(names[i], q, klen) == 0)
                                hide = eq != NULL;
                if (hide) {
                        sl_buf_append(&b, q, klen + 1);
                        sl_buf_puts(&b, "***");
                } else {
                        sl_buf_append(&b, q, len);
                }
                q += len;
                if (*q == '&') {
                        sl_buf_append(&b, "&", 1);
                        q++;
                } else if (*q == '#') {
                        sl_buf_puts(&b, q);
                        break;
                }
        }
        return sl_buf_steal(&b, NULL);
}

static int digits(const char *s, int n, int *out)
{
        int v = 0;

        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
}

int fetch_time_parse(const char *t, int64_t *ms)
{
        int y, mo, d, h = 0, mi = 0, s = 0, frac = 0;
        const char *p;

        if (strlen(t) < 10 || digits(t, 4, &y) || t[4] != '-' ||
            digits(t + 5, 2, &mo) || t[7] != '-' || digits(t + 8, 2, &d))
                return -1;
        p = t + 10;
        if (*p == 'T' || *p == ' ') {
                if (digits(p + 1, 2, &h) || p[3] != ':' ||
                    digits(p + 4, 2, &mi) || p[6] != ':' ||
                    digits(p + 7, 2, &s))
                        return -1;
                p += 9;
                if (*p == '.') {
                        int scale = 100;
                        p++;
                        while (isdigit((unsigned char)*p)) {
                                frac += (*p - '0') * scale;
                                scale /= 10;
                                p++;
                        }
                }
        }
        if (*p == 'Z')
                p++;
        else if (strcmp(p, "+00:00") == 0)
                p += 6;
        if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
            s > 60)
                return -1;
        *ms = ((sl_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
              (int64_t)s * 1000 + frac;
        return 0;
}

int fetch_time_add_days(const char *t, long days, char *out, size_t size)
{
        int64_t ms;

        if (fetch_time_parse(t, &ms) < 0)
                return -1;
        sl_time_format(ms + (int64_t)days * 86400000, out, size);
        return 0;
}

/* host[:port] of url (user info dropped) into out. */
static void url_host(const char *url, char *out, size_t size)
{
        const char *p = strstr(url, "://");
        const char *at;
        size_t n;

        p = p ? p + 3 : url;
        n = strcspn(p, "/?#");
        at = memchr(p, '@', n);
        if (at) {
                n -= (size_t)(at + 1 - p);
                p = at + 1;
        }
        snprintf(out, size, "%.*s", (int)n, p);
}

/* Why OpenSSL refused the chain (X509_V_ERR_*), in words; NULL when the
 * code is not one of the usual ones. */
static const char *verify_reason(long vr)
{
        switch (vr) {
        case 2:
        case 20:
        case 21:
                return "it is signed by an unknown CA";
        case 18:
                return "it is self-signed";
        case 19:
                return "its chain ends in a self-signed CA that is not "
                       "trusted";
        case 9:
                return "it is not yet valid";
        case 10:
                return "it has expired";
        case 23:
                return "it is revoked";
        case 62:
        case 64:
                return "it does not name this host";
        default:
                return NULL;
        }
}

int fetch_curl_permanent(int curl_code, long verify_result, const char *source,
                         const char *url, char *why, size_t why_size)
{
        const char *curl_says = curl_easy_strerror((CURLcode)curl_code);
        const char *reason;
        char host[256];

        url_host(url, host, sizeof(host));
        switch (curl_code) {
        case CURLE_PEER_FAILED_VERIFICATION:
                /* The chain gave no reason of its own (X509_V_OK, or
                 * X509_V_ERR_UNSPECIFIED as libcurl 7.88 on OpenSSL 3
                 * leaves it): libcurl's own host name check refused. */
                reason = verify_result == 0 || verify_result == 1
                             ? "it does not name this host"
                             : verify_reason(verify_result);
                snprintf(why, why_size,
                         "source %s: the TLS certificate of %s is not "
                         "trusted: %s (%s; X509 verify result %ld); trust "
                         "its CA with \"tls\": {\"ca_file\": \"ca.pem\"} "
                         "in the source and use the host name the "
                         "certificate names, or for a test server only "
                         "\"tls\": {\"verify\": false}",
                         source, host, reason ? reason : "not verified",
                         curl_says, verify_result);
                return 1;
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
                snprintf(why, why_size,
                         "source %s: TLS to %s cannot be set up (%s): check "
                         "the source's \"tls\": {\"ca_file\": ...} (a "
                         "readable PEM file) and SSL_CERT_FILE / "
                         "SSL_CERT_DIR",
                         source, host, curl_says);
                return 1;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                snprintf(why, why_size,
                         "source %s: %s: %s (only http and https URLs are "
                         "followed, redirects included)",
                         source, host, curl_says);
                return 1;
        default:
                return 0;
        }
}

/* Whether the query parameter q[0..len) is named name (encoded). */
static int param_is(const char *q, size_t len, const char *name)
{
        size_t n = strlen(name);

        return len >= n && strncmp(q, name, n) == 0 &&
               (len == n || q[n] == '=');
}

char *fetch_url_set_param(const char *url, const char *name, const char *value)
{
        const char *q = strchr(url, '?');
        const char *frag = strchr(url, '#');
        struct sl_buf b;
        char sep = '?';

        if (frag && q && q > frag)
                q = NULL;
        sl_buf_init(&b, 0);
        if (!q) {
                sl_buf_append(&b, url,
                              frag ? (size_t)(frag - url) : strlen(url));
        } else {
                sl_buf_append(&b, url, (size_t)(q - url));
                q++;
                while (*q && *q != '#') {
                        size_t len = strcspn(q, "&#");
                        if (len && !param_is(q, len, name)) {
                                sl_buf_append(&b, &sep, 1);
                                sl_buf_append(&b, q, len);
                                sep = '&';
                        }
                        q += len;
                        if (*q == '&')
                                q++;
                }
        }
        sl_buf_printf(&b, "%c%s=%s", sep, name, value);
        if (frag)
                sl_buf_puts(&b, frag);
        return sl_buf_steal(&b, NULL);
}

int fetch_pause_loud(int64_t last_pause_ms, int64_t now_ms)
{
        return last_pause_ms <= 0 ||
               now_ms - last_pause_ms >= FETCH_PAUSE_QUIET_MS;
}

uint64_t fetch_hash(const void *data, size_t len)
{
        const unsigned char *p = data;
        uint64_t h = 14695981039346656037ULL;

        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= 1099511628211ULL;
        }
        return h;
}
