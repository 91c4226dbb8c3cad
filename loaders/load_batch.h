/* load_batch: the rows of one mapped.<table> topic waiting to be written,
 * and the flush that writes them: dedupe by key, COPY into a staging table,
 * one INSERT ... ON CONFLICT per op, bisection to isolate the rows
 * PostgreSQL rejects (dead-lettered to dlq.load), the consumed offsets and
 * the run report, all in one transaction. */
#ifndef LOAD_BATCH_H
#define LOAD_BATCH_H

#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_arena.h"
#include "load_schema.h"
#include "sl_util.h"

enum load_unit_state {
        LOAD_UNIT_PENDING = 0,
        LOAD_UNIT_SUPERSEDED, /* a newer message for the same key won */
        LOAD_UNIT_REJECTED,   /* dead-lettered */
};

/* One consumed message. */
struct load_unit {
        json_t *env; /* the envelope (owned); NULL when not JSON. Its raw
                        nodes (load_env.h) point into rkm's payload or text */
        rd_kafka_message_t *rkm; /* the message, kept (owned), or NULL */
        char *text;              /* a copy of the value (owned), or NULL */
        char *raw;               /* the value when it is not JSON (owned) */
        size_t raw_len;
        char *msgkey; /* the Kafka key (owned), or NULL */
        size_t msgkey_len;
        int32_t partition;
        int64_t offset;
        char op;    /* 'u' upsert, 'd' delete, 'r' replace */
        char *dkey; /* dedupe key (owned) */
        enum load_unit_state state;
        char *error;    /* why rejected (owned), or NULL */
        char *field;    /* the column the error names (owned), or NULL */
        char *sqlstate; /* PostgreSQL's SQLSTATE (owned), or NULL */
};

struct load_part {
        int32_t partition;
        int64_t first;
        int64_t last;
};

struct load_batch {
        char *topic; /* mapped.<table> */
        char *table; /* <table> */
        struct load_unit *units;
        size_t n, cap;
        size_t bytes;
        int64_t opened_ms;      /* sl_now_ms() of the first message */
        int64_t opened_wall_ms; /* sl_wall_ms() of the first message */
        struct load_part *parts;
        int nparts;
        int lane;              /* which of the loader's connections writes it */
        struct sl_arena arena; /* the envelopes' trees */
};

/* What one flush did (rows; rejected and superseded count messages). */
struct load_stats {
        long messages, inserted, updated, unchanged, deleted, rejected,
            superseded;
};

/* What a flush needs. The loader owns every member. */
struct load_ctx {
        PGconn *conn;
        rd_kafka_t *consumer; /* for the lag-tool commit; may be NULL */
        rd_kafka_t *producer; /* dead letters */
        const char *dlq_topic;
        const char *group;
        const char *instance;
        int lane;                   /* which of the loader's connections */
        struct load_table **tables; /* catalog cache */
        int ntables;
        /* delivery failures seen; counted by whichever thread serves the
         * delivery report (each lane's flush thread polls the shared
         * producer) */
        atomic_int dlq_failed;
};

/* New empty batch for topic (mapped.<table>); free with
 * load_batch_destroy(). */
struct load_batch *load_batch_new(const char *topic);
void load_batch_destroy(struct load_batch *b);
/* Empties the batch (drops its messages). */
void load_batch_clear(struct load_batch *b);

/* Parses the message's envelope (an unparsable one is kept, to be
 * dead-lettered at flush). load_batch_take keeps rkm itself until the
 * batch is cleared, and the envelope's big values stay in its payload
 * (zero-copy); load_batch_add copies the value and leaves rkm to the
 * caller. Every batch holding messages must be cleared before the
 * consumer that gave them is destroyed. */
void load_batch_take(struct load_batch *b, rd_kafka_message_t *rkm);
void load_batch_add(struct load_batch *b, const rd_kafka_message_t *rkm);

/* Writes the batch in one transaction. The table's shape comes from
 * ctx's catalog cache, read again (once per batch at most) when a message
 * names a column the cache lacks, or when PostgreSQL refuses the batch's
 * first write because the table changed (42703, 42804, 42846, 42P01: the
 * batch is then rolled back and written again with the new shape); each
 * change is logged as event=table_columns_changed. SL_OK: committed (st
 * filled), the batch may be cleared. SL_ERR_RETRY: nothing was committed (the
 * transaction was rolled back); errstr says why; the caller reconnects
 * and rewinds. SL_ERR_FATAL: the table cannot be written at all (it does
 * not exist in the schema, or has no unique index on the batch's key);
 * nothing was written, errstr says why, and the caller parks the table
 * (its other tables are not at fault). */
enum sl_status load_batch_flush(struct load_ctx *ctx, struct load_batch *b,
                                struct load_stats *st, char *errstr,
                                size_t errstr_size);

/* Delivery report callback for the dead-letter producer: counts
 * failures into the load_ctx passed as the message opaque. */
void load_dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                    void *opaque);

/* Drops the catalog cache (after a reconnect or a schema change). */
void load_ctx_forget_tables(struct load_ctx *ctx);

/* The policy for a PostgreSQL error: SL_ERR_RETRY for connection, resource,
 * shutdown, serialization and deadlock errors (classes 08, 53, 57, 58, 40,
 * 55P03) or a lost connection; SL_ERR_RECORD for data errors (classes 21,
 * 22, 23, 42, 44, 54, P0). */
enum sl_status load_pg_classify(const char *sqlstate, int conn_ok);

#endif
