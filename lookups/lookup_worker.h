/* lookup_worker: the `sluice lookup` loop: consume the input topic in a
 * consumer group, find each message's observables, answer each from the
 * cache or by asking the API (paced by the shared buckets and quota),
 * publish answers to raw.<lookup> and failures to dlq.lookup, wait for
 * their delivery, then commit the input offsets. */
#ifndef LOOKUP_WORKER_H
#define LOOKUP_WORKER_H

#include "lookup_def.h"

#include <stddef.h>

#define LOOKUP_DLQ_TOPIC "dlq.lookup"

struct lookup_opts {
        const char *group;    /* consumer group */
        const char *base_url; /* replaces the definition's, or NULL */
        int batch_max;        /* messages per commit */
};

/* Runs until sl_stop is set or a fatal error. d is borrowed. 0 on a clean
 * stop, -1 with errstr. */
int lookup_run(const struct lookup_def *d, const struct lookup_opts *opts,
               char *errstr, size_t errstr_size);

#endif
