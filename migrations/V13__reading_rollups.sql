-- Hourly rollups of readings (issue 16.2): per device and UTC hour, what every bucket aggregate
-- needs (count, sum, min, max, first and last reading), so that bucketed reads over days read one
-- row per device-hour instead of every reading.
--
-- Kept by a bounded background job, with `readings` as the truth for what it has not done yet:
-- an ingest marks the hours its batch reaches as pending (one row per tenant and hour, in the
-- ingest's own statement: the hot path adds a row or two, not one per reading); the job
-- recomputes each pending hour once it has ended, from `readings`, and clears the mark in the
-- same transaction. A bucketed read takes a whole hour from the rollups only when it is not
-- pending, and reads it from `readings` otherwise (the current hour, late readings), so answers
-- never depend on how far the job has got.
CREATE TABLE reading_rollups_hour (
    tenant_id   text             NOT NULL,
    device_id   uuid             NOT NULL,
    bucket      timestamptz      NOT NULL,
    n           bigint           NOT NULL,
    total       double precision NOT NULL,
    lo          double precision NOT NULL,
    hi          double precision NOT NULL,
    first_ts    timestamptz      NOT NULL,
    first_value double precision NOT NULL,
    last_ts     timestamptz      NOT NULL,
    last_value  double precision NOT NULL,
    PRIMARY KEY (tenant_id, device_id, bucket),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id) ON DELETE CASCADE
);
-- A tenant's hour across its devices: the job's replace, and a group's read of a range.
CREATE INDEX reading_rollups_hour_bucket_idx ON reading_rollups_hour (tenant_id, bucket);

CREATE TABLE reading_rollups_pending (
    tenant_id text        NOT NULL,
    bucket    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, bucket)
);

INSERT INTO reading_rollups_hour
    (tenant_id, device_id, bucket, n, total, lo, hi, first_ts, first_value, last_ts, last_value)
SELECT tenant_id, device_id, date_trunc('hour', ts, 'UTC'), count(*), sum(value), min(value),
       max(value), min(ts), (min(ARRAY[date_part('epoch', ts), value]))[2],
       max(ts), (max(ARRAY[date_part('epoch', ts), value]))[2]
FROM readings
GROUP BY tenant_id, device_id, date_trunc('hour', ts, 'UTC');

GRANT SELECT, INSERT, UPDATE, DELETE ON reading_rollups_hour, reading_rollups_pending TO iot_app;
ALTER TABLE reading_rollups_hour ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reading_rollups_hour TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE reading_rollups_pending ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reading_rollups_pending TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
