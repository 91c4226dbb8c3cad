/* fetch_out: everything the fetcher writes to or reads from Kafka: raw
 * pages (split into chunks of whole records when too large), delivery
 * checks, the cursor in sluice.state, and the stand-by lock. */
#ifndef FETCH_OUT_H
#define FETCH_OUT_H

#include "fetch_backpressure.h"
#include "sl_jsonscan.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

struct sl_buf;

#define FETCH_STATE_TOPIC "sluice.state"
#define FETCH_LOCK_TOPIC  "sluice.fetch_lock"

struct fetch_out {
        rd_kafka_t *rk; /* owned */
        char topic[160];
        char source[128];
        char run[64];
        const char *records_path; /* borrowed */
        size_t max_bytes;
        /* delivery reports, counted by the callback */
        long produced;
        long delivered;
        long failed;
        char last_error[256];
        /* bytes of split pages' blocks not yet wholly delivered: a block
         * lives until its last chunk is, which librdkafka's queue limit
         * (it counts queued chunks) does not bound */
        size_t block_bytes;
        struct fetch_bp bp; /* waits for the raw topic's readers */
};
/* Before splitting a page, the fetcher waits for deliveries while its
 * blocks hold more than this. */
#define FETCH_BLOCKS_MAX ((size_t)48 << 20)

/* 0, or -1 with errstr. The producer is idempotent (sl_kafka). */
int fetch_out_init(struct fetch_out *o, const char *source,
                   const char *records_path, size_t max_bytes, char *errstr,
                   size_t errstr_size);
void fetch_out_free(struct fetch_out *o);
/* Starts a new run id "<unix-ms>-<pid>". */
void fetch_out_new_run(struct fetch_out *o);

/* The page and its metadata, as received. */
struct fetch_page {
        long page;
        const char *body;
        size_t len;
        json_t *json; /* borrowed: the parsed body, or NULL; with nrec >= 0
                         its records array is left empty (fetch_http) */
        long nrec;    /* records located in body, or -1: count json's */
        const struct sl_json_span *recs; /* with nrec >= 0 */
        size_t arr_open, arr_close;      /* the records array's brackets */
        const char *url;                 /* masked */
        long http_status;
        const char *content_type;
        const char *source_format; /* "xml": converted to JSON, or NULL */
        int64_t fetched_wall_ms;
        /* the buffer body lies in, or NULL (body borrowed): a page split
         * into chunks may be split in it (fetch_split_in_place), which
         * takes its memory over and leaves it empty */
        struct sl_buf *own;
};

/* Queues the page (or its chunks). Returns the number of records in it, or
 * -1 with errstr. */
long fetch_out_page(struct fetch_out *o, const struct fetch_page *p,
                    char *errstr, size_t errstr_size);

/* Queues a dead letter to dlq.fetch for a page that is bad for good
 * (docs/contracts.md): the reason, the page's lineage, and its bytes
 * (with_body; "page" as UTF-8 text, "page_base64" exact, up to 256 KiB).
 * 0, or -1 with errstr. */
#define FETCH_DLQ_TOPIC "dlq.fetch"
int fetch_out_dead(struct fetch_out *o, const struct fetch_page *p,
                   const char *reason, int with_body, char *errstr,
                   size_t errstr_size);

/* Waits up to timeout_ms for every queued message's delivery report. 0 when
 * all were delivered, -1 with errstr otherwise. */
int fetch_out_wait(struct fetch_out *o, int timeout_ms, char *errstr,
                   size_t errstr_size);

/* Writes {"source","cursor","run","pages","records","updated_at"} (pages
 * and records of the sync so far) to sluice.state and waits
 * for its delivery. cursor may be NULL (JSON null). 0 or -1. */
int fetch_out_state(struct fetch_out *o, const char *cursor, long pages,
                    long records, char *errstr, size_t errstr_size);

/* Reads sluice.state from the beginning: the latest value for source.
 * New reference in *state (NULL when none). 0, or -1 with errstr. */
int fetch_state_read(const char *source, json_t **state, char *errstr,
                     size_t errstr_size);

/* A page split into chunks of whole records, each a page of its own. */
struct fetch_chunks {
        char *block;        /* owned: every chunk, each NUL-terminated */
        size_t block_bytes; /* its size */
        size_t n;           /* chunks */
        char **chunk;       /* owned array; the chunks' starts in block */
        size_t *len;        /* owned array; their lengths (no NUL) */
};

/* Splits text into chunks of whole records of at most max_bytes (a single
 * larger record gets a chunk of its own). The records array is found by
 * path (a "$" or "$.a.b" member path). Returns the number of chunks, set in
 * *c (free with fetch_chunks_free), or 0 when the path does not lead to an
 * array in the text. */
size_t fetch_split(const char *text, size_t len, const char *path,
                   size_t max_bytes, struct fetch_chunks *c);
/* The same from records already located (sl_json_locate_array). */
size_t fetch_split_spans(const char *text, size_t len, size_t arr_open,
                         size_t arr_close, const struct sl_json_span *recs,
                         size_t nrec, size_t max_bytes, struct fetch_chunks *c);
/* fetch_split_spans without a second copy of the page: the chunks are
 * laid out in body itself (capacity cap bytes), each chunk's records
 * moved once, in the order and spacing the page has them. On success body
 * becomes c->block (taken over: free with fetch_chunks_free) and the
 * number of chunks (>= 2) is returned. 0, with body untouched, when the
 * page makes fewer than 2 chunks, the chunks need more than cap bytes, or
 * the space between two chunks' records is wider than their envelope
 * (the caller then splits by copying). */
size_t fetch_split_in_place(char *body, size_t len, size_t cap, size_t arr_open,
                            size_t arr_close, const struct sl_json_span *recs,
                            size_t nrec, size_t max_bytes,
                            struct fetch_chunks *c);
void fetch_chunks_free(struct fetch_chunks *c);

/* The stand-by lock: membership of consumer group sluice-fetch-<source>
 * on FETCH_LOCK_TOPIC; whoever is assigned partition 0 owns the source. */
struct fetch_lock {
        rd_kafka_t *rk;
        int owner;
        int lost;
};

int fetch_lock_init(struct fetch_lock *l, const char *source, char *errstr,
                    size_t errstr_size);
/* Serves the group protocol for up to timeout_ms; returns owner. */
int fetch_lock_poll(struct fetch_lock *l, int timeout_ms);
void fetch_lock_free(struct fetch_lock *l);
/* For a process about to exit that never owned the lock: leaves the
 * member to the process's end instead of closing it. librdkafka 2.0.2
 * aborts (rd_kafka_sticky_assignor_state_destroy: Assertion
 * `assignor_state' failed) when a cooperative-sticky member that was
 * never assigned anything is destroyed at the wrong moment of its join:
 * `sluice cursor set` refused by a running fetcher aborted 1 time in 12.
 * The member leaves the group when its session times out; the owner
 * keeps its partition meanwhile (cooperative rebalancing). */
void fetch_lock_abandon(struct fetch_lock *l);

#endif
