-- salesforce_record: sObjects read through the Salesforce partner SOAP API
-- (producers/sources/salesforce.json, transformers/maps/salesforce.json):
-- cases, opportunities, or whatever the source's SOQL selects. Coalesce
-- key: record_id, the 18-character Id. Version: system_modstamp, when the
-- query selects SystemModstamp (the newest edit wins).
CREATE TABLE IF NOT EXISTS salesforce_record (
        record_id text NOT NULL,
        sobject_type text NOT NULL,
        name text,
        stage_name text,
        system_modstamp timestamptz,
        fields jsonb,
        _lineage jsonb,
        _loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS salesforce_record_key
        ON salesforce_record (record_id);
