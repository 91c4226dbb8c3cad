-- finding: Tenable vulnerability export findings
-- (transformers/maps/tenable.json). Coalesce key: asset_uuid, plugin_id,
-- port, protocol. Version column: last_found.
CREATE TABLE IF NOT EXISTS finding (
        asset_uuid uuid NOT NULL,
        plugin_id integer NOT NULL,
        port integer NOT NULL,
        protocol text NOT NULL,
        service text,
        plugin_name text,
        plugin_family text,
        severity text,
        severity_id integer,
        state text,
        first_found timestamptz,
        last_found timestamptz,
        cvss3_base_score numeric,
        cvss_base_score numeric,
        cves text[],
        has_patch boolean,
        hostname text,
        ipv4 inet,
        output text,
        scan_uuid text,
        _lineage jsonb,
        _loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS finding_key
        ON finding (asset_uuid, plugin_id, port, protocol);
