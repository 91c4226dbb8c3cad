-- asset: the assets Tenable findings name (transformers/maps/tenable.json).
-- Coalesce key: asset_uuid.
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
        _lineage jsonb,
        _loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS asset_key ON asset (asset_uuid);
