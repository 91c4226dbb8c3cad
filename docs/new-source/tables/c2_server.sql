-- c2_server: botnet command-and-control addresses from the Feodo Tracker
-- (docs/new-source/maps/feodo.json). Coalesce key: ip_address, port.
-- Version column: last_online (an older listing never overwrites a newer).
CREATE TABLE IF NOT EXISTS c2_server (
        ip_address inet NOT NULL,
        port integer NOT NULL,
        status text,
        hostname text,
        as_number bigint,
        as_name text,
        country text,
        first_seen timestamptz,
        last_online date,
        malware text,
        _lineage jsonb,
        _loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS c2_server_key
        ON c2_server (ip_address, port);
