/* sl_http: libmicrohttpd server for /metrics, /healthz and /readyz, and the
 * readiness probes behind /readyz. The probes run on the server's thread
 * with their own Kafka handle and a libpq ping, so a role only ticks. */
#include "sl_http.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_loss.h"
#include "sl_metrics.h"
#include "sl_util.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PROBE_TTL_MS     2000 /* a probe result serves this long */
#define PROBE_TIMEOUT_MS 1500
#define METRICS_MAX      ((size_t)16 << 20)

static const char not_found[] = "not found: try /metrics, /healthz, /readyz\n";

static struct MHD_Daemon *daemon_h;
static struct sl_http_opts opts;
static _Atomic int64_t last_tick_ms;
static _Atomic int64_t gauge_tick_ms; /* when the tick gauge was last set */
static _Atomic int ticked;
static int64_t started_ms;

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static rd_kafka_t *probe_rk; /* owned; created after the first tick */
static int64_t probe_at_ms = -PROBE_TTL_MS;
static int probe_ready;
static char probe_why[256] = "starting";
static char degraded[256]; /* sl_http_set_degraded; under probe_lock */

static int parse_port(const char *s, int *port, char *errstr,
                      size_t errstr_size)
{
        int v;

        if (sl_parse_int(s, &v) < 0 || v < 0 || v > 65535) {
                snprintf(errstr, errstr_size,
                         "http port wants 0..65535, got \"%s\"", s);
                return -1;
        }
        *port = v;
        return 0;
}

int sl_http_args(struct sl_http_opts *o, int *argc, char **argv, char *errstr,
                 size_t errstr_size)
{
        const char *env_port = getenv("SLUICE_HTTP_PORT");
        const char *env_bind = getenv("SLUICE_HTTP_BIND");
        const char *env_stall = getenv("SLUICE_HTTP_STALL_SECONDS");
        int out = 1;

        memset(o, 0, sizeof(*o));
        o->bind = env_bind && *env_bind ? env_bind : "127.0.0.1";
        o->stall_s = 120;
        if (env_port && *env_port &&
            parse_port(env_port, &o->port, errstr, errstr_size) < 0)
                return -1;
        if (env_stall && *env_stall &&
            (sl_parse_int(env_stall, &o->stall_s) < 0 || o->stall_s < 1)) {
                snprintf(errstr, errstr_size,
                         "SLUICE_HTTP_STALL_SECONDS wants seconds, got \"%s\"",
                         env_stall);
                return -1;
        }
        for (int i = 1; i < *argc; i++) {
                const char *a = argv[i];
                const char *val = NULL;
                int is_port = 0;

                if (strcmp(a, "--") == 0) {
                        /* the rest belongs to the role */
                        for (; i < *argc; i++)
                                argv[out++] = argv[i];
                        break;
                }
                if (strcmp(a, "--http-port") == 0 ||
                    strcmp(a, "--http-bind") == 0) {
                        if (i + 1 >= *argc) {
                                snprintf(errstr, errstr_size,
                                         "%s wants a value", a);
                                return -1;
                        }
                        is_port = a[7] == 'p';
                        val = argv[++i];
                } else if (sl_str_has_prefix(a, "--http-port=")) {
                        is_port = 1;
                        val = a + strlen("--http-port=");
                } else if (sl_str_has_prefix(a, "--http-bind=")) {
                        val = a + strlen("--http-bind=");
                } else {
                        argv[out++] = argv[i];
                        continue;
                }
                if (is_port) {
                        if (parse_port(val, &o->port, errstr, errstr_size) < 0)
                                return -1;
                } else {
                        o->bind = val;
                }
        }
        argv[out] = NULL;
        *argc = out;
        return 0;
}

void sl_http_tick(void)
{
        int64_t now = sl_now_ms();

        /* the gauge only once a second (the lock is not free), counted
         * from its own last update: a loop turning faster than once a
         * second still moves it */
        if (now - atomic_load(&gauge_tick_ms) >= 1000 ||
            !atomic_load(&ticked)) {
                sl_metric_set(SL_M_LAST_TICK, NULL,
                              (double)sl_wall_ms() / 1000.0);
                atomic_store(&gauge_tick_ms, now);
        }
        atomic_store(&last_tick_ms, now);
        atomic_store(&ticked, 1);
}

/* Call with probe_lock held. */
static int probe_kafka(char *why, size_t why_size)
{
        char errstr[512];
        rd_kafka_conf_t *conf;

        if (!probe_rk) {
                conf = sl_kafka_conf_new("producer", errstr, sizeof(errstr));
                if (!conf) {
                        snprintf(why, why_size, "kafka: %.200s", errstr);
                        return 0;
                }
                /* the probe's own statistics would count brokers twice */
                rd_kafka_conf_set(conf, "statistics.interval.ms", "0", NULL, 0);
                /* takes ownership of conf */
                probe_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                        sizeof(errstr));
                if (!probe_rk) {
                        rd_kafka_conf_destroy(conf);
                        snprintf(why, why_size, "kafka: %.200s", errstr);
                        return 0;
                }
                conf = NULL;
        }
        rd_kafka_poll(probe_rk, 0); /* its events, if any, go */
        if (sl_kafka_ping(probe_rk, PROBE_TIMEOUT_MS, errstr, sizeof(errstr)) <
            0) {
                snprintf(why, why_size, "kafka: %.200s", errstr);
                return 0;
        }
        return 1;
}

/* libpq's own words for a failed ping (PQping keeps them): one connection
 * attempt, its message's first line. "" when it connects after all. */
static void db_reason(const char *url, char *reason, size_t reason_size)
{
        const char *keys[] = {"dbname", "connect_timeout", NULL};
        const char *vals[] = {url && *url ? url : "", "2", NULL};
        PGconn *conn = PQconnectdbParams(keys, vals, url && *url);
        const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
        size_t n;

        reason[0] = '\0';
        if (!conn || PQstatus(conn) != CONNECTION_OK) {
                n = strcspn(msg, "\n");
                snprintf(reason, reason_size, "%.*s", (int)n, msg);
        }
        PQfinish(conn);
}

static int probe_db(char *why, size_t why_size)
{
        const char *url = getenv("DATABASE_URL");
        char conninfo[64];
        PGPing p;

        /* libpq's variables (PGHOST, ...) fill what the string leaves out */
        snprintf(conninfo, sizeof(conninfo), "connect_timeout=2");
        if (url && *url) {
                const char *keys[] = {"dbname", "connect_timeout", NULL};
                const char *vals[] = {url, "2", NULL};
                p = PQpingParams(keys, vals, 1);
        } else {
                p = PQping(conninfo);
        }
        if (p != PQPING_OK) {
                char reason[200];
                db_reason(url, reason, sizeof(reason));
                /* a long reason is cut, not an error: why is a probe line */
                int n = snprintf(why, why_size, "database: %s%s",
                                 p == PQPING_REJECT ? "rejecting connections"
                                 : p == PQPING_NO_RESPONSE
                                     ? "no response"
                                     : "bad connection settings",
                                 reason[0] ? ": " : "");
                if (n > 0 && (size_t)n + 1 < why_size) {
                        size_t rl = strnlen(reason, why_size - (size_t)n - 1);
                        memcpy(why + n, reason, rl);
                        why[(size_t)n + rl] = '\0';
                }
                return 0;
        }
        return 1;
}

int sl_http_ready(char *why, size_t why_size)
{
        int64_t now = sl_now_ms();
        int ready;

        pthread_mutex_lock(&probe_lock);
        if (now - probe_at_ms >= PROBE_TTL_MS) {
                char w[256] = "";
                int k = 0, d = 1;

                /* the role parses its --kafka flags before its loop
                 * turns; a role that never ticks is probed after 3 s */
                if (!atomic_load(&ticked) && sl_now_ms() - started_ms < 3000) {
                        snprintf(w, sizeof(w), "starting");
                } else {
                        k = probe_kafka(w, sizeof(w));
                        sl_metric_set(SL_M_KAFKA_UP, NULL, k);
                        if (opts.need_db) {
                                char dw[128] = "";
                                d = probe_db(dw, sizeof(dw));
                                sl_metric_set(SL_M_DB_UP, NULL, d);
                                if (!d && k)
                                        snprintf(w, sizeof(w), "%s", dw);
                        }
                }
                ready = k && d;
                if (ready)
                        snprintf(w, sizeof(w), "ok");
                /* messages lost to retention: shown until acknowledged */
                if (ready && !sl_loss_ready(w, sizeof(w)))
                        ready = 0;
                /* a change only: not a line per scrape */
                if (ready != probe_ready || strcmp(w, probe_why) != 0)
                        sl_info("event=readiness ready=%d why=\"%s\"", ready,
                                w);
                probe_ready = ready;
                snprintf(probe_why, sizeof(probe_why), "%s", w);
                probe_at_ms = sl_now_ms();
                sl_metric_set(SL_M_READY, NULL, ready);
        }
        ready = probe_ready;
        if (why)
                snprintf(why, why_size, "%s", probe_why);
        /* the role's own trouble, once the probes pass */
        if (ready && degraded[0]) {
                ready = 0;
                if (why)
                        snprintf(why, why_size, "%s", degraded);
        }
        sl_metric_set(SL_M_READY, NULL, ready);
        pthread_mutex_unlock(&probe_lock);
        return ready;
}

void sl_http_set_degraded(const char *why)
{
        pthread_mutex_lock(&probe_lock);
        snprintf(degraded, sizeof(degraded), "%s", why ? why : "");
        pthread_mutex_unlock(&probe_lock);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *ctype, const char *body, size_t len)
{
        struct MHD_Response *resp;
        enum MHD_Result r;

        resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
                                               MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", ctype);
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        r = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
        static const char text[] = "text/plain; charset=utf-8";
        char body[400];

        (void)cls;
        (void)version;
        (void)upload_data;
        (void)upload_data_size;
        (void)req_cls;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text,
                             "GET only\n", 9);
        if (strcmp(url, "/metrics") == 0) {
                struct sl_buf b;
                enum MHD_Result r;

                sl_http_ready(NULL, 0); /* refreshes the up gauges */
                sl_buf_init(&b, METRICS_MAX);
                sl_metrics_render(&b);
                r = reply(conn, MHD_HTTP_OK,
                          "text/plain; version=0.0.4; charset=utf-8",
                          b.data ? b.data : "", b.len);
                sl_buf_free(&b);
                return r;
        }
        if (strcmp(url, "/healthz") == 0 || strcmp(url, "/ping") == 0) {
                int64_t idle = sl_now_ms() - atomic_load(&last_tick_ms);
                /* a role that never ticks cannot be judged stalled */
                int alive = !atomic_load(&ticked) ||
                            idle < (int64_t)opts.stall_s * 1000;
                int n = snprintf(body, sizeof(body),
                                 alive ? "ok\n"
                                       : "stalled: no main loop turn for "
                                         "%lld s\n",
                                 (long long)(idle / 1000));
                return reply(conn,
                             alive ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                             text, body, (size_t)n);
        }
        if (strcmp(url, "/readyz") == 0 || strcmp(url, "/ready") == 0) {
                char why[256];
                int ready = sl_http_ready(why, sizeof(why));
                int n =
                    snprintf(body, sizeof(body), "%s\n", ready ? "ready" : why);
                return reply(conn,
                             ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                             text, body, (size_t)n);
        }
        return reply(conn, MHD_HTTP_NOT_FOUND, text, not_found,
                     sizeof(not_found) - 1);
}

int sl_http_start(const struct sl_http_opts *o, char *errstr,
                  size_t errstr_size)
{
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
        const struct sockaddr *sa;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;

        if (o->port <= 0 || daemon_h)
                return 0;
        opts = *o;
        memset(&sin, 0, sizeof(sin));
        memset(&sin6, 0, sizeof(sin6));
        if (inet_pton(AF_INET, o->bind, &sin.sin_addr) == 1) {
                sin.sin_family = AF_INET;
                sin.sin_port = htons((uint16_t)o->port);
                sa = (const struct sockaddr *)&sin;
        } else if (inet_pton(AF_INET6, o->bind, &sin6.sin6_addr) == 1) {
                sin6.sin6_family = AF_INET6;
                sin6.sin6_port = htons((uint16_t)o->port);
                sa = (const struct sockaddr *)&sin6;
                flags |= MHD_USE_IPv6;
        } else {
                snprintf(errstr, errstr_size,
                         "http bind address \"%s\" is not an IP address",
                         o->bind);
                return -1;
        }
        started_ms = sl_now_ms();
        atomic_store(&last_tick_ms, started_ms);
        sl_metrics_process_init();
        daemon_h = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL,
                                    handle, NULL, MHD_OPTION_SOCK_ADDR, sa,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                    MHD_OPTION_END);
        if (!daemon_h) {
                snprintf(errstr, errstr_size,
                         "could not listen on %s:%d (in use?)", o->bind,
                         o->port);
                return -1;
        }
        /* consumer lag and broker states come from librdkafka's stats */
        sl_kafka_stats_interval(5000);
        sl_info("event=http_listening bind=%s port=%d need_db=%d", o->bind,
                o->port, o->need_db);
        return 0;
}

void sl_http_stop(void)
{
        if (daemon_h) {
                MHD_stop_daemon(daemon_h);
                daemon_h = NULL;
        }
        pthread_mutex_lock(&probe_lock);
        if (probe_rk) {
                rd_kafka_destroy(probe_rk);
                probe_rk = NULL;
        }
        pthread_mutex_unlock(&probe_lock);
        sl_loss_shutdown(); /* /readyz's loss check is over too */
}
