/* fetch_http: parallel requests on a libcurl multi handle with the rate
 * window, retries and checks of complete answers. */
#include "fetch_http.h"
#include "fetch_xml.h"
#include "sl_http.h"
#include "sl_jsonscan.h"
#include "sl_log.h"
#include "sl_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RESP_MAX ((size_t)512 << 20)
/* room reserved beyond a Content-Length: a page too large for one message
 * is split into chunks in its own buffer (fetch_split_in_place), each
 * chunk with a copy of the page's envelope */
#define RESP_SLACK(cl) (((size_t)(cl) >> 8) + ((size_t)64 << 10))

int fetch_http_init(struct fetch_http *h, const struct fetch_source *src,
                    char *errstr, size_t errstr_size)
{
        const char *secret = NULL;

        memset(h, 0, sizeof(*h));
        h->src = src;
        h->max_active = src->concurrency > 0 ? src->concurrency : 1;
        fetch_rate_init(&h->rate, src->rate_requests,
                        (int64_t)(src->rate_seconds * 1000.0));
        if (!src->tls_verify)
                sl_warn("event=tls_verify_off source=%s file=%s msg=\"server "
                        "certificates are not verified (tls.verify is "
                        "false)\"",
                        src->name, src->path);
        h->multi = curl_multi_init();
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          h->max_active);
        if (src->auth != FETCH_AUTH_NONE) {
                secret = getenv(src->auth_env);
                if (!secret || !*secret) {
                        if (!src->auth_optional) {
                                snprintf(errstr, errstr_size,
                                         "%s: auth: environment variable %s "
                                         "is not set",
                                         src->path, src->auth_env);
                                curl_multi_cleanup(h->multi);
                                h->multi = NULL;
                                return -1;
                        }
                        secret = NULL;
                }
        }
        if (secret && src->auth == FETCH_AUTH_HEADER) {
                char *line = sl_asprintf("%s: %s", src->auth_name, secret);
                h->headers = curl_slist_append(h->headers, line);
                free(line);
        } else if (secret && src->auth == FETCH_AUTH_BEARER) {
                char *line = sl_asprintf("Authorization: Bearer %s", secret);
                h->headers = curl_slist_append(h->headers, line);
                free(line);
        } else if (secret && src->auth == FETCH_AUTH_BASIC) {
                const char *user = getenv(src->auth_user_env);
                if (!user) {
                        snprintf(errstr, errstr_size,
                                 "%s: auth: environment variable %s is not "
                                 "set",
                                 src->path, src->auth_user_env);
                        curl_slist_free_all(h->headers);
                        h->headers = NULL;
                        curl_multi_cleanup(h->multi);
                        h->multi = NULL;
                        return -1;
                }
                h->user = sl_strdup(user);
                h->password = sl_strdup(secret);
        }
        if (src->headers) {
                const char *key;
                json_t *v;
                json_object_foreach(src->headers, key, v)
                {
                        char *val = fetch_template(json_string_value(v), NULL,
                                                   NULL, errstr, errstr_size);
                        char *line;
                        if (!val) {
                                /* name the file and the header: the bare
                                 * template error does not say where */
                                char detail[256];
                                snprintf(detail, sizeof(detail), "%s", errstr);
                                snprintf(errstr, errstr_size,
                                         "%s: request.headers.%s: %s",
                                         src->path, key, detail);
                                fetch_http_free(h);
                                return -1;
                        }
                        line = sl_asprintf("%s: %s", key, val);
                        h->headers = curl_slist_append(h->headers, line);
                        free(line);
                        free(val);
                }
        }
        return 0;
}

void fetch_http_free(struct fetch_http *h)
{
        if (h->multi)
                curl_multi_cleanup(h->multi);
        curl_slist_free_all(h->headers);
        free(h->user);
        if (h->password) {
                memset(h->password, 0, strlen(h->password));
                free(h->password);
        }
        fetch_rate_free(&h->rate);
        free(h->set);
        memset(h, 0, sizeof(*h));
}

struct fetch_req *fetch_req_new(char *url, char *masked_url, const char *method)
{
        struct fetch_req *r = sl_calloc(1, sizeof(*r));

        r->url = url;
        r->masked_url = masked_url;
        r->method = method;
        r->nrec = -1;
        sl_buf_init(&r->resp, RESP_MAX);
        return r;
}

static void clear_answer(struct fetch_req *r)
{
        sl_buf_reset(&r->resp);
        free(r->content_type);
        free(r->link);
        free(r->hdr_retry_after);
        free(r->hdr_reset);
        free(r->hdr_retryafter);
        free(r->hdr_remaining);
        free(r->hdr_length);
        free(r->hdr_message);
        r->content_type = r->link = r->hdr_retry_after = r->hdr_reset = NULL;
        r->hdr_retryafter = r->hdr_remaining = r->hdr_length = NULL;
        r->hdr_message = NULL;
        json_decref(r->json);
        r->json = NULL;
        free(r->recs);
        r->recs = NULL;
        fetch_bad_records_free(r->bad, r->nbad);
        r->bad = NULL;
        r->nbad = 0;
        r->nrec = -1;
        r->status = 0;
        r->bad_body = 0;
        r->dead = 0;
        free(r->dead_reason);
        r->dead_reason = NULL;
}

void fetch_req_destroy(struct fetch_req *r)
{
        if (!r)
                return;
        clear_answer(r);
        sl_buf_free(&r->resp);
        free(r->url);
        free(r->masked_url);
        free(r->body);
        free(r);
}

/* How far into an answer its peek_path is looked for: a total or a page
 * count sits in the first hundred bytes of the APIs that have one (61 of
 * NVD's); past this the caller waits for the whole page, as without it. */
#define PEEK_MAX ((size_t)64 * 1024)

/* Looks for r's peek_path in the body so far, in a 2xx answer only. */
static void peek(struct fetch_req *r)
{
        long status = 0;
        int found;

        curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299) {
                r->peek_state = -1;
                return;
        }
        found = sl_json_prefix_member(
            r->resp.data, r->resp.len < PEEK_MAX ? r->resp.len : PEEK_MAX,
            r->peek_path, &r->peek);
        if (found == 1) {
                r->peek_state = 1;
                r->http->peek_pending = 1;
        } else if (found < 0 || r->resp.len >= PEEK_MAX) {
                r->peek_state = -1;
        }
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
        struct fetch_req *r = opaque;

        if (sl_buf_append(&r->resp, ptr, size * nmemb) < 0) {
                r->too_big = 1;
                return 0; /* over the cap: abort the transfer */
        }
        if (r->peek_path && r->peek_state == 0)
                peek(r);
        return size * nmemb;
}

/* Keeps one header value; a later one replaces an earlier one. */
static void keep(char **slot, const char *v, size_t n)
{
        free(*slot);
        *slot = sl_strndup(v, n);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *opaque)
{
        struct fetch_req *r = opaque;
        size_t n = size * nmemb;
        const char *colon = memchr(ptr, ':', n);
        size_t klen, vlen;
        const char *v;

        if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
                /* a new response (after a redirect or 100): forget the last */
                clear_answer(r);
                return n;
        }
        if (!colon)
                return n;
        klen = (size_t)(colon - ptr);
        v = colon + 1;
        while (v < ptr + n && (*v == ' ' || *v == '\t'))
                v++;
        vlen = (size_t)(ptr + n - v);
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
                            v[vlen - 1] == ' '))
                vlen--;
#define IS(name) (klen == strlen(name) && strncasecmp(ptr, name, klen) == 0)
        if (IS("content-type"))
                keep(&r->content_type, v, vlen);
        else if (IS("link"))
                keep(&r->link, v, vlen);
        else if (IS("retry-after"))
                keep(&r->hdr_retry_after, v, vlen);
        else if (IS("x-ratelimit-reset"))
                keep(&r->hdr_reset, v, vlen);
        else if (IS("x-ratelimit-retryafter"))
                keep(&r->hdr_retryafter, v, vlen);
        else if (IS("x-ratelimit-remaining"))
                keep(&r->hdr_remaining, v, vlen);
        else if (IS("content-length")) {
                long long cl;
                keep(&r->hdr_length, v, vlen);
                /* more than the limit announced: refused now, not after
                 * reading up to the limit (a 2 GiB announcement cost
                 * 256 MiB of memory first); judge() says why */
                if (sl_parse_ll(r->hdr_length, &cl) == 0 && cl > 0 &&
                    r->resp.max > 0 && (unsigned long long)cl > r->resp.max) {
                        r->too_big = 1;
                        return 0;
                }
                /* the body's room at once, not by doubling (identity
                 * bodies; a compressed one only starts smaller) */
                if (sl_parse_ll(r->hdr_length, &cl) == 0 && cl > 0 &&
                    (unsigned long long)cl <= r->resp.max)
                        sl_buf_reserve(&r->resp, (size_t)cl + RESP_SLACK(cl));
        } else if (IS("message"))
                keep(&r->hdr_message, v, vlen);
#undef IS
        return n;
}

/* SOAP 1.1: text/xml and a SOAPAction header (quoted, "" when the
 * operation has none); 1.2: application/soap+xml with the action as a
 * parameter of the content type. */
static void soap_headers(struct fetch_http *h, struct fetch_req *r)
{
        const char *a = r->soap_action;
        char *line;

        if (h->src->soap_version == 12) {
                line = a ? sl_asprintf("Content-Type: application/soap+xml; "
                                       "charset=utf-8; action=\"%s\"",
                                       a)
                         : sl_strdup("Content-Type: application/soap+xml; "
                                     "charset=utf-8");
                r->slist = curl_slist_append(r->slist, line);
                free(line);
                r->slist = curl_slist_append(
                    r->slist, "Accept: application/soap+xml, text/xml");
                return;
        }
        r->slist = curl_slist_append(r->slist,
                                     "Content-Type: text/xml; charset=utf-8");
        line = sl_asprintf("SOAPAction: \"%s\"", a ? a : "");
        r->slist = curl_slist_append(r->slist, line);
        free(line);
        r->slist = curl_slist_append(r->slist, "Accept: text/xml");
}

static void start(struct fetch_http *h, struct fetch_req *r)
{
        const struct fetch_source *src = h->src;
        CURL *curl = curl_easy_init();

        clear_answer(r);
        r->too_big = 0;
        r->http = h;
        if (r->peek_state != 2) /* told once: not again on a retry */
                r->peek_state = 0;
        if (src->max_page_bytes > 0 && (size_t)src->max_page_bytes < RESP_MAX)
                r->resp.max = (size_t)src->max_page_bytes;
        r->curl = curl;
        curl_easy_setopt(curl, CURLOPT_URL, r->url);
        /* plain HTTP(S) only, redirects included: no file:// or others */
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        /* libcurl verifies by default; say so, so that no build or
         * environment default can turn it off behind the definition */
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER,
                         src->tls_verify ? 1L : 0L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST,
                         src->tls_verify ? 2L : 0L);
        if (src->tls_ca_file)
                curl_easy_setopt(curl, CURLOPT_CAINFO, src->tls_ca_file);
        curl_easy_setopt(curl, CURLOPT_PRIVATE, r);
        /* 512 KiB reads, not curl's 16 KiB: a 4.5 MB page in ~10 reads
         * and write callbacks instead of ~280 (the bench's 10-page sync:
         * medians 111 -> 104 and 107 -> 94 ms in two rounds of 8 and 10
         * interleaved pairs, sync CPU 129 -> 124 and 126 -> 111 ms);
         * curl clamps it where its maximum is lower */
        curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "sluice/0.1");
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                         src->connect_timeout_ms);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, src->total_timeout_ms);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, src->low_speed_bytes);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, src->low_speed_seconds);
        r->slist = NULL;
        for (struct curl_slist *s = h->headers; s; s = s->next)
                r->slist = curl_slist_append(r->slist, s->data);
        if (r->body_json)
                r->slist = curl_slist_append(r->slist,
                                             "Content-Type: application/json");
        if (r->soap)
                soap_headers(h, r);
        else
                r->slist =
                    curl_slist_append(r->slist, "Accept: application/json");
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, r->slist);
        if (h->user) {
                curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
                curl_easy_setopt(curl, CURLOPT_USERNAME, h->user);
                curl_easy_setopt(curl, CURLOPT_PASSWORD, h->password);
        }
        if (strcmp(r->method, "POST") == 0) {
                curl_easy_setopt(curl, CURLOPT_POST, 1L);
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS,
                                 r->body ? r->body : "");
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
                                 (long)(r->body ? strlen(r->body) : 0));
        }
        r->attempts++;
        r->started_ms = sl_now_ms();
        r->active = 1;
        h->requests++;
        curl_multi_add_handle(h->multi, curl);
}

static void finish(struct fetch_http *h, struct fetch_req *r)
{
        curl_multi_remove_handle(h->multi, r->curl);
        curl_easy_cleanup(r->curl);
        curl_slist_free_all(r->slist);
        r->curl = NULL;
        r->slist = NULL;
        r->active = 0;
}

static int is_throttle(const struct fetch_source *src, long status)
{
        for (int i = 0; i < src->throttle_n; i++)
                if (src->throttle_status[i] == status)
                        return 1;
        return 0;
}

static int accepted(const struct fetch_req *r)
{
        for (int i = 0; i < r->accept_n; i++)
                if (r->accept[i] == r->status)
                        return 1;
        return 0;
}

enum verdict { V_OK, V_RETRY, V_THROTTLE, V_FATAL };

/* A JSON body: validated in one pass that builds nothing (the depth limit
 * checked on the way, so a hostile page never reaches a decoder's
 * recursion), which also locates the records array; then, when it could,
 * only the rest of the page is decoded; otherwise the whole page. */
/* Decodes a validated page (or its skeleton, the records array emptied),
 * saying so when a member name repeats in one object: JSON keeps the
 * last, so the earlier value (two "vulnerabilities" arrays: the first's
 * records) is never read. A warning naming the page and a counter; the
 * page goes on as Jansson reads it. Names repeated inside the records of
 * a located array are the transformer's to read. */
static json_t *load_unique(struct fetch_http *h, struct fetch_req *r,
                           const char *text, size_t len, json_error_t *jerr)
{
        json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, jerr);
        char q[300];

        if (j || json_error_code(jerr) != json_error_duplicate_key)
                return j;
        sl_metric_inc(SL_M_FETCH_DUP_MEMBERS, SL_LV(h->src->name));
        sl_warn("event=duplicate_members source=%s page=%ld url=%s "
                "position=%d msg=%s",
                h->src->name, r->tag, r->masked_url, jerr->position,
                sl_log_quote(jerr->text, q, sizeof(q)));
        return json_loadb(text, len, 0, jerr);
}

static enum verdict decode(struct fetch_http *h, struct fetch_req *r, char *why,
                           size_t why_size)
{
        const char *text = r->resp.data ? r->resp.data : "";
        size_t len = r->resp.len;
        struct sl_json_error je;
        json_error_t jerr;
        /* with the records' path, they are located in the same pass */
        int rc = h->sparse_path
                     ? sl_json_validate_locate(
                           text, len, (int)h->src->max_depth, h->sparse_path,
                           &r->nrec, &r->arr_open, &r->arr_close, &r->recs, &je)
                     : sl_json_validate(text, len, (int)h->src->max_depth, &je);

        /* bad records, not a bad page: they are set aside (the caller
         * dead-letters them) and the others go on; a bad envelope or an
         * array that cannot be walked is still a bad page */
        if (rc == -1 && h->sparse_path && len && !r->bad) {
                r->nbad = fetch_salvage(r->resp.data, len, h->sparse_path,
                                        (int)h->src->max_depth, &r->bad);
                if (r->nbad > 0) {
                        free(r->recs);
                        r->recs = NULL;
                        rc = sl_json_validate_locate(
                            text, len, (int)h->src->max_depth, h->sparse_path,
                            &r->nrec, &r->arr_open, &r->arr_close, &r->recs,
                            &je);
                } else {
                        r->nbad = 0;
                }
        }
        r->bad_body = rc < 0;
        if (rc == SL_JSON_TOO_DEEP) {
                snprintf(why, why_size,
                         "page nests deeper than limits.max_depth (%ld)",
                         h->src->max_depth);
                return V_FATAL;
        }
        if (rc < 0) {
                snprintf(why, why_size, "body is not JSON (%s at byte %zu)",
                         je.text, je.position);
                return V_RETRY;
        }
        if (r->nrec >= 0) {
                /* the page with an empty records array */
                size_t head = r->arr_open + 1, tail = len - r->arr_close;
                char *skel = sl_malloc(head + tail + 1);
                memcpy(skel, text, head);
                memcpy(skel + head, text + r->arr_close, tail);
                r->json = load_unique(h, r, skel, head + tail, &jerr);
                free(skel);
        } else {
                r->json = load_unique(h, r, text, len, &jerr);
        }
        if (!r->json) {
                /* validated, so only memory can fail here */
                snprintf(why, why_size, "body could not be decoded (%s)",
                         jerr.text);
                return V_RETRY;
        }
        return V_OK;
}

/* A page's body: an XML source's becomes its JSON page first
 * (fetch_xml: what cannot be parsed is retried, what is refused is bad
 * for good), then it is checked and decoded as every page is. */
static enum verdict decode_page(struct fetch_http *h, struct fetch_req *r,
                                char *why, size_t why_size)
{
        if (h->src->xml && !r->converted) {
                int rc = fetch_xml_body(h->src, &r->resp, why, why_size);
                if (rc != FETCH_XML_OK) {
                        r->bad_body = 1;
                        return rc == FETCH_XML_REFUSED ? V_FATAL : V_RETRY;
                }
                free(r->content_type);
                r->content_type = sl_strdup("application/json");
        }
        return decode(h, r, why, why_size);
}

int fetch_http_decode(struct fetch_http *h, struct fetch_req *r, char *why,
                      size_t why_size)
{
        return decode_page(h, r, why, why_size) == V_OK ? 0 : -1;
}

/* A SOAP Fault in the answer, whatever its status (1.1 answers faults
 * with 500, some servers with 200): 1 with *v, retried when its code's
 * local name is in soap.retry_faults, else bad for good; 0: no fault. */
static int soap_fault(struct fetch_http *h, struct fetch_req *r, char *why,
                      size_t why_size, enum verdict *v)
{
        const struct fetch_source *src = h->src;
        char code[192], reason[512], q[600];
        const char *local;
        size_t n;

        if (!r->resp.len ||
            fetch_xml_soap_fault(r->resp.data, r->resp.len, code, sizeof(code),
                                 reason, sizeof(reason)) != 1)
                return 0;
        local = fetch_xml_fault_local(code, &n);
        *v = V_FATAL;
        for (size_t i = 0; i < src->soap_retry_faults_n; i++)
                if (strlen(src->soap_retry_faults[i]) == n &&
                    strncmp(src->soap_retry_faults[i], local, n) == 0)
                        *v = V_RETRY;
        snprintf(why, why_size, "SOAP fault %s (HTTP %ld): %s",
                 code[0] ? code : "(no faultcode)", r->status,
                 sl_log_quote(reason, q, sizeof(q)));
        return 1;
}

/* Judges a finished transfer; why gets the reason for logs. */
static enum verdict judge(struct fetch_http *h, struct fetch_req *r,
                          CURLcode cc, char *why, size_t why_size)
{
        curl_off_t clen = -1;
        json_error_t jerr;

        if (cc == CURLE_WRITE_ERROR && r->too_big) {
                /* the same page will be as large next time */
                r->bad_body = 1;
                snprintf(why, why_size,
                         "page larger than limits.max_page_bytes (%ld "
                         "bytes)%s%s",
                         h->src->max_page_bytes,
                         r->hdr_length ? ": Content-Length announces " : "",
                         r->hdr_length ? r->hdr_length : "");
                return V_FATAL;
        }
        if (cc != CURLE_OK) {
                long vr = 0;
                curl_easy_getinfo(r->curl, CURLINFO_SSL_VERIFYRESULT, &vr);
                if (fetch_curl_permanent((int)cc, vr, h->src->name,
                                         r->masked_url, why, why_size))
                        return V_FATAL;
                snprintf(why, why_size, "%s", curl_easy_strerror(cc));
                return V_RETRY;
        }
        curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->status);
        if (is_throttle(h->src, r->status)) {
                snprintf(why, why_size, "throttled with %ld", r->status);
                return V_THROTTLE;
        }
        if (accepted(r)) {
                /* an answer the caller reads (409 active_job_id) */
                if (!r->raw && r->resp.len)
                        r->json =
                            json_loadb(r->resp.data, r->resp.len, 0, &jerr);
                return V_OK;
        }
        if (h->src->soap && !r->raw) {
                enum verdict v;
                if (soap_fault(h, r, why, why_size, &v))
                        return v;
        }
        if (r->status >= 500 || r->status == 408) {
                snprintf(why, why_size, "server error %ld", r->status);
                return V_RETRY;
        }
        if (r->status < 200 || r->status >= 300) {
                char q[256];
                snprintf(why, why_size, "answer %ld%s%s", r->status,
                         r->hdr_message ? " message=" : "",
                         r->hdr_message
                             ? sl_log_quote(r->hdr_message, q, sizeof(q))
                             : "");
                return V_FATAL;
        }
        curl_easy_getinfo(r->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
        if (clen >= 0 && (size_t)clen != r->resp.len &&
            !(r->hdr_length == NULL)) {
                /* libcurl decodes compressed bodies: only compare the
                 * length of an identity body */
                curl_off_t got = 0;
                curl_easy_getinfo(r->curl, CURLINFO_SIZE_DOWNLOAD_T, &got);
                if (got != clen) {
                        snprintf(why, why_size,
                                 "short body: %lld of %lld bytes",
                                 (long long)got, (long long)clen);
                        return V_RETRY;
                }
        }
        if (!r->raw)
                return decode_page(h, r, why, why_size);
        return V_OK;
}

static uint32_t rnd32(void)
{
        static uint64_t s;

        if (!s)
                s = (uint64_t)sl_wall_ms() * 6364136223846793005ULL + 1;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        return (uint32_t)(s >> 33);
}

/* Counts the answer by status (0: none) and its latency. Before
 * finish(): the easy handle is still there. */
static void observe(struct fetch_http *h, struct fetch_req *r, CURLcode cc)
{
        curl_off_t us = 0;
        char status[24];

        snprintf(status, sizeof(status), "%ld", cc == CURLE_OK ? r->status : 0);
        sl_metric_inc(SL_M_HTTP_RESPONSES, SL_LV(h->src->name, status));
        if (curl_easy_getinfo(r->curl, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK)
                sl_metric_observe(SL_M_HTTP_SECONDS, SL_LV(h->src->name),
                                  (double)us / 1e6);
}

/* When r's request went out (the connection made), plus the rate
 * window's margin: a server counts its window from a request's arrival,
 * between this and the answer. Counting from the answer instead gave
 * away the answer's latency out of every window (0.90 x the limit in
 * bench/results.md). Without a send time, the answer's. */
static int64_t sent_at(struct fetch_http *h, struct fetch_req *r, CURLcode cc,
                       int64_t now)
{
        curl_off_t pre = 0;

        (void)cc;
        if (curl_easy_getinfo(r->curl, CURLINFO_PRETRANSFER_TIME_T, &pre) !=
                CURLE_OK ||
            pre <= 0)
                return now;
        return r->started_ms + pre / 1000 + fetch_rate_margin_ms(&h->rate);
}

/* After an answer: what to do with r. Returns SL_OK (done or will retry)
 * or a failure for the run. */
static int settle(struct fetch_http *h, struct fetch_req *r, CURLcode cc,
                  char *errstr, size_t errstr_size)
{
        const struct fetch_source *src = h->src;
        int64_t now = sl_now_ms();
        int64_t wait = -1;
        enum verdict v;
        char why[512];

        fetch_rate_done(&h->rate, now, sent_at(h, r, cc, now));
        r->fetched_wall_ms = sl_wall_ms();
        v = judge(h, r, cc, why, sizeof(why));
        observe(h, r, cc);
        if (v == V_OK && r->hdr_remaining &&
            strcmp(r->hdr_remaining, "0") == 0) {
                /* the server says the next one would be refused */
                int64_t w = fetch_throttle_wait_ms(NULL, NULL, r->hdr_reset,
                                                   r->fetched_wall_ms);
                if (w > 0) {
                        sl_metric_inc(SL_M_RATELIMIT_WAITS, SL_LV(src->name));
                        sl_metric_add(SL_M_RATELIMIT_WAIT_SECS,
                                      SL_LV(src->name), (double)w / 1000.0);
                        fetch_rate_block(&h->rate, now + w);
                        h->pauses++;
                        h->pause_ms += w;
                        sl_log(fetch_pause_loud(h->last_pause_at, now)
                                   ? LOG_INFO
                                   : LOG_DEBUG,
                               "event=ratelimit_pause source=%s wait_ms=%lld "
                               "pauses=%ld",
                               src->name, (long long)w, h->pauses);
                        h->last_pause_at = now;
                }
        }
        finish(h, r);
        if (v == V_OK) {
                r->done = 1;
                return SL_OK;
        }
        sl_metric_inc(SL_M_ERRORS, SL_LV("http"));
        if (r->bad_body && r->dead_letter &&
            (v == V_FATAL || r->attempts >= src->max_attempts)) {
                /* bad for good, and the run can go on without it */
                char q[600];
                r->dead = 1;
                r->dead_reason = sl_asprintf("%s: %s", r->masked_url, why);
                r->done = 1;
                sl_warn("event=page_dead source=%s url=%s attempts=%d "
                        "reason=%s",
                        src->name, r->masked_url, r->attempts,
                        sl_log_quote(why, q, sizeof(q)));
                return SL_OK;
        }
        if (v == V_FATAL) {
                snprintf(errstr, errstr_size, "%s: %s", r->masked_url, why);
                return SL_ERR_FATAL;
        }
        if (v == V_THROTTLE) {
                h->throttled++;
                wait = fetch_throttle_wait_ms(r->hdr_retry_after,
                                              r->hdr_retryafter, r->hdr_reset,
                                              r->fetched_wall_ms);
        }
        if (r->attempts >= src->max_attempts) {
                snprintf(errstr, errstr_size,
                         "%s: %s; gave up after %d "
                         "attempts",
                         r->masked_url, why, r->attempts);
                return SL_ERR_RETRY;
        }
        if (wait < 0)
                wait =
                    fetch_backoff_ms(src->backoff_base_ms, src->backoff_max_ms,
                                     r->attempts, rnd32());
        else
                wait += 50; /* header times are whole seconds: a margin */
        if (v == V_THROTTLE) {
                fetch_rate_block(&h->rate, now + wait);
                sl_metric_inc(SL_M_RATELIMIT_WAITS, SL_LV(src->name));
                sl_metric_add(SL_M_RATELIMIT_WAIT_SECS, SL_LV(src->name),
                              (double)wait / 1000.0);
        }
        r->not_before = now + wait;
        h->retries++;
        sl_metric_inc(SL_M_HTTP_RETRIES, SL_LV(src->name));
        {
                char q[600];
                sl_warn("event=retry source=%s url=%s attempt=%d wait_ms=%lld "
                        "reason=%s",
                        src->name, r->masked_url, r->attempts, (long long)wait,
                        sl_log_quote(why, q, sizeof(q)));
        }
        return SL_OK;
}

void fetch_http_add(struct fetch_http *h, struct fetch_req *r)
{
        if (h->set_n == h->set_cap) {
                h->set_cap = h->set_cap ? h->set_cap * 2 : 16;
                h->set = sl_realloc(h->set, h->set_cap * sizeof(*h->set));
        }
        r->done = 0;
        h->set[h->set_n++] = r;
        h->set_remaining++;
}

/* Tells the caller of each answer whose peek_path showed up (before its
 * transfer is settled: a page done in the same pass is told first). */
static int tell_peeks(struct fetch_http *h, size_t from, char *errstr,
                      size_t errstr_size)
{
        h->peek_pending = 0;
        for (size_t i = from; i < h->set_n; i++) {
                struct fetch_req *r = h->set[i];
                if (r->peek_state != 1)
                        continue;
                r->peek_state = 2;
                if (h->peeked &&
                    h->peeked(r, h->peeked_opaque, errstr, errstr_size))
                        return -1;
        }
        return 0;
}

int fetch_http_run(struct fetch_http *h, struct fetch_req **reqs, size_t n,
                   fetch_done_fn done, void *opaque, char *errstr,
                   size_t errstr_size)
{
        size_t next = 0; /* lowest index not yet done */
        long active = 0;
        int rc = SL_OK;
        int64_t last_idle = 0;

        /* the running set: reqs, and whatever callbacks add */
        h->set_n = h->set_remaining = 0;
        for (size_t i = 0; i < n; i++)
                fetch_http_add(h, reqs[i]);
        reqs = NULL;
        while (h->set_remaining > 0) {
                int64_t now = sl_now_ms();
                int64_t wait_ms = 100;
                int still = 0, ended = 0;
                CURLMsg *msg;
                int left;

                sl_http_tick();
                if (sl_stop) {
                        snprintf(errstr, errstr_size, "stopped");
                        rc = SL_ERR_RETRY;
                        goto out;
                }
                if (h->idle && now - last_idle >= 100) {
                        last_idle = now;
                        if (h->idle(h->idle_opaque)) {
                                snprintf(errstr, errstr_size,
                                         "lost the source lock");
                                rc = SL_ERR_RETRY;
                                goto out;
                        }
                }
                while (next < h->set_n && h->set[next]->done)
                        next++;
                /* start what the cap, the rate window and backoff allow,
                 * lowest pages first */
                for (size_t i = next; i < h->set_n && active < h->max_active;
                     i++) {
                        struct fetch_req *r = h->set[i];
                        int64_t w;
                        if (r->done || r->active)
                                continue;
                        if (r->not_before > now) {
                                if (r->not_before - now < wait_ms)
                                        wait_ms = r->not_before - now;
                                continue;
                        }
                        w = fetch_rate_take(&h->rate, now);
                        if (w > 0) {
                                if (w < wait_ms)
                                        wait_ms = w;
                                break;
                        }
                        start(h, r);
                        active++;
                }
                curl_multi_perform(h->multi, &still);
                if (h->peek_pending) {
                        size_t before = h->set_n;
                        if (tell_peeks(h, next, errstr, errstr_size) < 0) {
                                rc = SL_ERR_RETRY;
                                goto out;
                        }
                        /* start what was added now, not after a poll */
                        if (h->set_n > before)
                                ended++;
                }
                while ((msg = curl_multi_info_read(h->multi, &left))) {
                        struct fetch_req *r = NULL;
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
                                          (char **)&r);
                        active--;
                        ended++;
                        rc =
                            settle(h, r, msg->data.result, errstr, errstr_size);
                        if (rc != SL_OK)
                                goto out;
                        if (r->done) {
                                h->set_remaining--;
                                if (done &&
                                    done(r, opaque, errstr, errstr_size)) {
                                        rc = SL_ERR_RETRY;
                                        goto out;
                                }
                                clear_answer(r);
                                /* the body is published: give its memory
                                 * back now, not when the whole set ends
                                 * (a 200k-record sync kept 101 pages of
                                 * 4.5 MB: 476 MB) */
                                sl_buf_free(&r->resp);
                        }
                }
                if (h->set_remaining == 0)
                        break;
                /* an answer freed a slot: start the next request now, not
                 * after a poll's timeout (with every slot freed at once,
                 * the set stood still for 100 ms) */
                if (ended)
                        continue;
                if (wait_ms < 1)
                        wait_ms = 1;
                if (active > 0)
                        curl_multi_poll(h->multi, NULL, 0,
                                        (int)(wait_ms > 100 ? 100 : wait_ms),
                                        NULL);
                else
                        sl_sleep_ms(wait_ms > 100 ? 100 : wait_ms);
        }
out:
        for (size_t i = 0; i < h->set_n; i++) {
                if (h->set[i]->active) {
                        int64_t now = sl_now_ms();
                        fetch_rate_done(&h->rate, now, now);
                        finish(h, h->set[i]);
                }
        }
        h->set_n = h->set_remaining = 0;
        return rc;
}
