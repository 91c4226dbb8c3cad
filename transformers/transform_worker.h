/* transform_worker.h: the `sluice transform` loop: consume raw.<source>
 * pages in a consumer group, apply every map that reads the topic, produce
 * rows and dead letters, wait for their delivery, then commit the input
 * offsets (a crash repeats work, never loses it). */
#ifndef SLUICE_TRANSFORM_WORKER_H
#define SLUICE_TRANSFORM_WORKER_H

#include "map.h"

#include <stddef.h>

struct transform_opts {
        const char *group;     /* consumer group */
        int batch_max;         /* messages per commit */
        int stats_interval_ms; /* periodic counters in the log */
};

/* Runs until sl_stop is set or a fatal Kafka error. The maps are borrowed.
 * Returns 0 on a clean stop, -1 with errstr on a failure to start or a
 * fatal error. */
int transform_run(struct map **maps, size_t nmaps,
                  const struct transform_opts *opts, char *errstr,
                  size_t errstr_size);

#endif
