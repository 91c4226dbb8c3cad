-- sluice's own bookkeeping. Applied by `sluice load` at start-up before the
-- table files; every statement is idempotent so a re-apply is harmless.

CREATE SCHEMA IF NOT EXISTS sluice;

-- One row per applied schema file; version grows each time the file's
-- checksum changes and it is applied again.
CREATE TABLE IF NOT EXISTS sluice.schema_version (
        file        text PRIMARY KEY,
        version     integer NOT NULL,
        checksum    text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now()
);

-- The loader's consumed positions, written in the same transaction as the
-- rows they produced; the loader seeks to them on partition assignment.
CREATE TABLE IF NOT EXISTS sluice.offsets (
        consumer_group  text NOT NULL,
        topic           text NOT NULL,
        partition       integer NOT NULL,
        next_offset     bigint NOT NULL,
        updated_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer_group, topic, partition)
);

-- One row per committed batch: the run report.
CREATE TABLE IF NOT EXISTS sluice.load_batches (
        id              bigserial PRIMARY KEY,
        consumer_group  text NOT NULL,
        instance        text NOT NULL,
        table_name      text NOT NULL,
        topic           text NOT NULL,
        -- [{"partition": P, "first_offset": A, "last_offset": B}, ...]
        offsets         jsonb NOT NULL,
        messages        integer NOT NULL,
        inserted        integer NOT NULL,
        updated         integer NOT NULL,
        unchanged       integer NOT NULL,
        deleted         integer NOT NULL,
        rejected        integer NOT NULL,
        superseded      integer NOT NULL,
        started_at      timestamptz NOT NULL,
        finished_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS load_batches_table_idx
        ON sluice.load_batches (table_name, finished_at);
