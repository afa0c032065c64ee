-- Who created and last changed each row: the `sub` of the caller's token. Rows written before
-- this migration are attributed to 'unknown'.
ALTER TABLE devices
    ADD COLUMN created_by text NOT NULL DEFAULT 'unknown',
    ADD COLUMN updated_by text NOT NULL DEFAULT 'unknown';
ALTER TABLE device_groups
    ADD COLUMN created_by text NOT NULL DEFAULT 'unknown',
    ADD COLUMN updated_by text NOT NULL DEFAULT 'unknown';
ALTER TABLE maintenance_windows
    ADD COLUMN created_by text NOT NULL DEFAULT 'unknown',
    ADD COLUMN updated_by text NOT NULL DEFAULT 'unknown';
