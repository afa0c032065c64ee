-- Readings are partitioned by time (monthly ranges on ts), so retention drops whole partitions
-- instead of deleting rows, and queries over recent data touch recent partitions only. The
-- primary key includes ts, as partitioning requires, and still leads with tenant_id.
--
-- Monthly partitions are created ahead by the service (PgStore::maintain_partitions); a reading
-- outside them lands in readings_default and is moved into its month's partition when that
-- partition is created.

ALTER TABLE readings RENAME TO readings_unpartitioned;
ALTER INDEX readings_pkey RENAME TO readings_unpartitioned_pkey;
ALTER TABLE readings_unpartitioned RENAME CONSTRAINT readings_tenant_id_device_id_fkey
    TO readings_unpartitioned_tenant_id_device_id_fkey;

CREATE TABLE readings (
    tenant_id text             NOT NULL,
    device_id uuid             NOT NULL,
    ts        timestamptz      NOT NULL,
    value     double precision NOT NULL,
    PRIMARY KEY (tenant_id, device_id, ts),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id) ON DELETE CASCADE
) PARTITION BY RANGE (ts);

CREATE TABLE readings_default PARTITION OF readings DEFAULT;

INSERT INTO readings SELECT tenant_id, device_id, ts, value FROM readings_unpartitioned;
DROP TABLE readings_unpartitioned;

GRANT SELECT, INSERT, UPDATE, DELETE ON readings TO iot_app;
ALTER TABLE readings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON readings TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
