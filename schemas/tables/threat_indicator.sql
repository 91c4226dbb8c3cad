-- threat_indicator: indicators of compromise from threat feeds (URLhaus:
-- transformers/maps/urlhaus.json). Coalesce key: source, indicator_type,
-- indicator. Version column: last_seen.
CREATE TABLE IF NOT EXISTS threat_indicator (
        source text NOT NULL,
        indicator_type text NOT NULL,
        indicator text NOT NULL,
        external_id text,
        status text,
        threat text,
        tags text[],
        first_seen timestamptz,
        last_seen timestamptz,
        reference text,
        reporter text,
        _lineage jsonb,
        _loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS threat_indicator_key
        ON threat_indicator (source, indicator_type, indicator);
