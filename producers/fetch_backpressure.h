/* fetch_backpressure: the fetcher waits, rather than publishing into a
 * hole, while the consumer groups of its raw topic lag close to what the
 * broker keeps of a partition. The embedded broker (librdkafka's mock
 * cluster, told by its cluster id) keeps the newest 5 MiB of batches or
 * 100 000 batches per partition; a real Kafka what the topic's
 * retention.bytes says (DescribeConfigs), and nothing limits it when that
 * is unset (time retention is far longer than any lag). docs/
 * embedded-broker.md, "Back-pressure", says how the lag is estimated.
 *
 * Environment: SLUICE_BACKPRESSURE_GROUPS (comma-separated groups to wait
 * for; default sluice-transform; "none" turns it off),
 * SLUICE_BACKPRESSURE_BYTES (the per-partition limit, overriding what the
 * broker says). */
#ifndef FETCH_BACKPRESSURE_H
#define FETCH_BACKPRESSURE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#define FETCH_BP_MAX_GROUPS 16

struct fetch_bp {
        int state; /* 0 limit not yet known, 1 on, -1 off */
        char topic[160];
        char source[128];
        char *groups[FETCH_BP_MAX_GROUPS];    /* owned */
        rd_kafka_t *grk[FETCH_BP_MAX_GROUPS]; /* owned: reads the group's
                                                committed offsets, never
                                                joins it */
        int ngroups;
        int64_t limit_bytes;        /* per partition */
        int64_t limit_batches;      /* per partition, 0 = none */
        size_t chunk_bytes;         /* pages above this are split */
        double bytes_out, msgs_out; /* published by this process */
        int64_t room;               /* bytes publishable without asking */
};

/* Reads the environment; the limit is learnt on the first page. 0, or -1
 * with errstr on a bad value. */
int fetch_bp_init(struct fetch_bp *bp, const char *source, const char *topic,
                  size_t chunk_bytes, char *errstr, size_t errstr_size);
void fetch_bp_free(struct fetch_bp *bp);

/* Before publishing a page of len bytes through producer rk: returns at
 * once while the groups have room, else serves rk's delivery reports and
 * waits until they do (or sl_stop). */
void fetch_bp_wait(struct fetch_bp *bp, rd_kafka_t *rk, size_t len);

#endif
