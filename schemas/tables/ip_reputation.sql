-- ip_reputation: what reputation services say of an address, one row per
-- service and address, from `sluice lookup lookups/defs/abuseipdb.json`
-- answers (transformers/maps/abuseipdb.json). Coalesce key: source, ip.
-- Version column: last_reported_at (reports only accumulate).
CREATE TABLE IF NOT EXISTS ip_reputation (
        source text NOT NULL,
        ip inet NOT NULL,
        abuse_confidence_score integer,
        country_code text,
        usage_type text,
        isp text,
        domain text,
        is_whitelisted boolean,
        total_reports integer,
        distinct_reporters integer,
        last_reported_at timestamptz,
        _lineage jsonb,
        _loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS ip_reputation_key ON ip_reputation (source, ip);
