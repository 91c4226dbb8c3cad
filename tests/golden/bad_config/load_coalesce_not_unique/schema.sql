-- the coalesce column id has an index, but not a unique one
CREATE TABLE bc_nonunique (id text NOT NULL, v text,
                           _lineage jsonb, _loaded_at timestamptz);
CREATE INDEX bc_nonunique_id ON bc_nonunique (id);
