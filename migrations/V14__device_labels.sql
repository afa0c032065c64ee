-- Issue 17: device labels, a JSON object of string pairs (at most 32; the service checks keys
-- and values). Device lists filter by them with containment (`labels @> '{"k": "v"}'`), which
-- the GIN index below answers without reading every device; dynamic groups and label-scoped
-- windows are meant to select devices the same way.
ALTER TABLE devices
    ADD COLUMN labels jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT devices_labels_object CHECK (jsonb_typeof(labels) = 'object');

-- jsonb_path_ops: smaller and faster than the default opclass for `@>`, the only operator used.
CREATE INDEX devices_labels_idx ON devices USING gin (labels jsonb_path_ops);
