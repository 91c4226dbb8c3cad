/* load_worker: the loader's consume loop: regex subscription to mapped.*,
 * seek to sluice.offsets on assignment, per-topic batches flushed by rows,
 * bytes or age, and recovery (rollback, reconnect with backoff, rewind to
 * the committed offsets) when PostgreSQL fails. */
#ifndef LOAD_WORKER_H
#define LOAD_WORKER_H

#include <stddef.h>

struct load_opts {
        const char *group;     /* consumer group (sluice-load) */
        const char *schemas;   /* schema directory, or NULL for default */
        const char *topics;    /* subscription regex (^mapped\..*) */
        const char *dlq_topic; /* dlq.load */
        long batch_rows;       /* flush at this many messages */
        long batch_bytes;      /* ... or this many bytes */
        long pending_bytes;    /* the open batches of every table and lane
                                  together: over it, the largest flush */
        long linger_ms;        /* ... or when the oldest is this old */
        long max_backoff_ms;   /* cap of the retry backoff */
        long connections;      /* PostgreSQL connections (lanes), each
                                  writing its share of the partitions */
        int schemas_only;      /* apply the schemas, then return 0 */
};

/* Runs the loader until SIGTERM/SIGINT (sl_stop). Returns an exit code:
 * 0 after a clean shutdown, 1 when the database or the brokers could not
 * be reached at start, or on a fatal Kafka error. */
int load_worker_run(const struct load_opts *o);

#endif
