-- host_reputation: what URLhaus knows of a host (domain or address), one
-- row per service and host, from `sluice lookup
-- lookups/defs/urlhaus_host.json` answers (transformers/maps/
-- urlhaus_host.json); a host URLhaus does not know has no row. Coalesce
-- key: source, host. Version column: first_seen, which stays the same for
-- a host: an equal version is not older, so the answer that arrives last
-- wins, and answers about one host are keyed by it on raw.urlhaus_host,
-- so they arrive in the order they were fetched.
CREATE TABLE IF NOT EXISTS host_reputation (
        source text NOT NULL,
        host text NOT NULL,
        url_count integer,
        urls_online integer,
        threats text[],
        first_seen timestamptz,
        spamhaus_dbl text,
        surbl text,
        reference text,
        _lineage jsonb,
        _loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS host_reputation_key ON host_reputation (source, host);
