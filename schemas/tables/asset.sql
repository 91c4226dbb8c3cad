-- asset: the assets Tenable findings name (transformers/maps/tenable.json).
-- Coalesce key: asset_uuid; version: last_seen.
CREATE TABLE IF NOT EXISTS asset (
        asset_uuid uuid NOT NULL,
        hostname text,
        ipv4 inet,
        fqdn text,
        netbios_name text,
        mac_address text,
        operating_system text[],
        device_type text,
        bios_uuid uuid,
        tracked boolean,
        last_seen timestamptz,
        _lineage jsonb,
        _loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS asset_key ON asset (asset_uuid);
-- The version: the last_found of the finding that named the asset, so the
-- newest sighting's hostname, OS and MAC win whatever order the findings
-- load in (a table before it gains the column).
ALTER TABLE asset ADD COLUMN IF NOT EXISTS last_seen timestamptz;
