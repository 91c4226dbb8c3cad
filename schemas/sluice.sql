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

-- One row per applied migration: a file tables/NNN_name.sql of a schema
-- directory (dir: the directory as given, '' for the first one), applied
-- once, in version order, and never again; its checksum must not change.
CREATE TABLE IF NOT EXISTS sluice.schema_migrations (
        dir         text NOT NULL,
        version     bigint NOT NULL,
        name        text NOT NULL,
        checksum    text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (dir, version)
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

-- The version of each parent's child set, per child table (table_name is
-- schema.table): a `replace` envelope carrying its parent's `version` is
-- applied only when that version is not older than the one stored here,
-- and stores it, in the transaction that writes the set
-- (docs/contracts.md, Versions). The row
-- is taken with INSERT ... ON CONFLICT DO UPDATE, which locks it, so two
-- loaders applying versions of one parent's set wait for each other.
-- parent_key is the envelope's key (the parent key columns as named in
-- the child table), version the envelope's version, both as JSON.
CREATE TABLE IF NOT EXISTS sluice.child_versions (
        table_name  text NOT NULL,
        parent_key  jsonb NOT NULL,
        version     jsonb NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (table_name, parent_key)
);

-- sluice.version_ge(a, b): a is not older than b. Two numbers compare as
-- numbers; two strings that are both RFC 3339 timestamps with a zone
-- compare as instants (so ".5Z" and ".500000Z" are the same version);
-- any other pair compares as text, byte by byte. A null is never older.
CREATE OR REPLACE FUNCTION sluice.version_ge(a jsonb, b jsonb)
RETURNS boolean LANGUAGE sql STABLE AS $$
SELECT CASE
        WHEN a IS NULL OR b IS NULL OR jsonb_typeof(a) = 'null'
             OR jsonb_typeof(b) = 'null' THEN true
        WHEN jsonb_typeof(a) = 'number' AND jsonb_typeof(b) = 'number'
             THEN a::numeric >= b::numeric
        WHEN jsonb_typeof(a) = 'string' AND jsonb_typeof(b) = 'string'
             AND (a #>> '{}') ~ '^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?([Zz]|[+-]\d\d(:?\d\d)?)$'
             AND (b #>> '{}') ~ '^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?([Zz]|[+-]\d\d(:?\d\d)?)$'
             THEN (a #>> '{}')::timestamptz >= (b #>> '{}')::timestamptz
        ELSE (a #>> '{}') COLLATE "C" >= (b #>> '{}') COLLATE "C"
END
$$;

-- The tables a loader cannot write (missing from the target schema, or
-- without a unique index on the coalesce key) and has parked: their
-- partitions are paused while every other table keeps landing. Each
-- loader keeps its own rows (refreshed when it looks at the table again,
-- at most a minute apart; removed when the table lands again or the
-- loader stops), and `sluice status` lists them.
CREATE TABLE IF NOT EXISTS sluice.parked_tables (
        consumer_group  text NOT NULL,
        instance        text NOT NULL,
        table_name      text NOT NULL,
        topic           text NOT NULL,
        reason          text NOT NULL,
        parked_at       timestamptz NOT NULL,
        checked_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer_group, instance, table_name)
);

-- Lookups (`sluice lookup`, docs/lookups.md). One row per lookup and
-- observable: what the API answered and until when that stays fresh. A
-- worker claims a row before asking (claimed_by, claim_until; outcome
-- 'pending'), marks it 'sent' just before the request goes out, and
-- writes the outcome, the answer and expires_at when it comes back;
-- published turns true once the answer (or the dead letter) is delivered.
-- A claim that ran out while 'sent' means a worker died with the request
-- in flight: the API may have seen it, so it is not asked again before
-- error_seconds (the observable goes to dlq.lookup).
CREATE TABLE IF NOT EXISTS sluice.lookup_cache (
        lookup       text NOT NULL,
        observable   text NOT NULL,
        obs_type     text NOT NULL,
        outcome      text NOT NULL,
        fetched_at   timestamptz,
        expires_at   timestamptz,
        claimed_by   text,
        claim_until  timestamptz,
        http_status  integer,
        answer       text,
        error        text,
        published    boolean NOT NULL DEFAULT false,
        PRIMARY KEY (lookup, observable),
        CHECK (outcome IN ('pending', 'sent', 'found', 'not_found', 'error'))
);

-- Token buckets of the lookups' rate_limits (scope '*' paces the whole
-- lookup, a type name the requests about that type), shared by every
-- worker: a token is taken under the row's lock.
CREATE TABLE IF NOT EXISTS sluice.lookup_buckets (
        lookup      text NOT NULL,
        scope       text NOT NULL,
        tokens      double precision NOT NULL,
        refilled_at timestamptz NOT NULL,
        PRIMARY KEY (lookup, scope)
);

-- Requests made in the current quota period (a calendar minute, hour,
-- day or month in UTC), per lookup.
CREATE TABLE IF NOT EXISTS sluice.lookup_quota (
        lookup        text PRIMARY KEY,
        period_start  timestamptz NOT NULL,
        used          bigint NOT NULL,
        quota         bigint NOT NULL
);

-- Every lookup a worker ran, for `sluice status`: its input topic and
-- consumer group (whose lag is the lookup's backlog). Written at start-up.
CREATE TABLE IF NOT EXISTS sluice.lookups (
        lookup      text PRIMARY KEY,
        topic       text NOT NULL,
        group_id    text NOT NULL,
        started_at  timestamptz NOT NULL DEFAULT now()
);
