/* sl_http: the worker's operations endpoint (libmicrohttpd, one internal
 * thread): GET /metrics (Prometheus text 0.0.4 from sl_metrics), /healthz
 * (200 while the main loop ticks) and /readyz (200 when the brokers answer
 * a metadata probe and, for roles that need it, PostgreSQL accepts
 * connections). Off unless a port is given. */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <stddef.h>

struct sl_http_opts {
        int port;         /* 0 = off */
        const char *bind; /* address to listen on (default 127.0.0.1) */
        int need_db;      /* /readyz also probes PostgreSQL */
        int stall_s;      /* /healthz fails after this long without a tick */
};

/* Fills o from SLUICE_HTTP_PORT / SLUICE_HTTP_BIND /
 * SLUICE_HTTP_STALL_SECONDS, then removes --http-port N, --http-port=N,
 * --http-bind A and --http-bind=A from argv (so the role never sees them),
 * updating *argc. 0, or -1 with errstr on a bad value. */
int sl_http_args(struct sl_http_opts *o, int *argc, char **argv, char *errstr,
                 size_t errstr_size);

/* The lines a worker's --help prints for the flags above. */
#define SL_HTTP_USAGE                                                          \
        "  --http-port N       serve /metrics, /healthz, /readyz on port N "   \
        "(0 = off;\n"                                                          \
        "                      also SLUICE_HTTP_PORT)\n"                       \
        "  --http-bind ADDR    address to listen on (default 127.0.0.1; "      \
        "also\n"                                                               \
        "                      SLUICE_HTTP_BIND)\n"

/* Starts the server when o->port > 0 (a no-op otherwise). 0, or -1 with
 * errstr (address in use, bad bind address). */
int sl_http_start(const struct sl_http_opts *o, char *errstr,
                  size_t errstr_size);
/* Stops it and releases the probe connections. Safe when not started. */
void sl_http_stop(void);

/* The main loop turned: /healthz stays 200 while this is called. Cheap;
 * call every turn. */
void sl_http_tick(void);

/* The result of the readiness probes (cached for a few seconds): 1 ready,
 * 0 not; why (may be NULL) gets the reason. Safe from any thread. */
int sl_http_ready(char *why, size_t why_size);

/* A trouble of the role's own that the probes cannot see (the loader's
 * parked tables): while set, /readyz answers 503 with it as the reason
 * once the probes pass. NULL or "" clears it. Safe from any thread. */
void sl_http_set_degraded(const char *why);

#endif
