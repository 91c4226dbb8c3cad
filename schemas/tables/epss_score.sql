-- epss_score: FIRST EPSS scores, one row per CVE, from `sluice lookup
-- lookups/defs/epss.json` answers (transformers/maps/epss.json). Coalesce
-- key: cve_id. Version column: score_date (an older day's score never
-- overwrites a newer one). Join on vulnerability.cve_id.
CREATE TABLE IF NOT EXISTS epss_score (
        cve_id text NOT NULL,
        epss numeric,
        percentile numeric,
        score_date date,
        _lineage jsonb,
        _loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS epss_score_key ON epss_score (cve_id);
