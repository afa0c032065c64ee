-- Hourly rollups of readings (issue 16.2): per device and UTC hour, what every bucket aggregate
-- needs (count, sum, min, max, first and last reading), so that bucketed reads over days read one
-- row per device-hour instead of every reading. Kept at ingest in the same transaction as the
-- readings (an upsert that merges); an hour a batch reaches into at or before its latest kept
-- reading (a re-sent or late reading) is marked dirty and recomputed from `readings` before the
-- transaction commits, so committed rollups always equal the readings. Whole hours serve
-- buckets; the parts of buckets that are no whole UTC hours (range edges, half-hour zones) are
-- read from `readings`.
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
    dirty       boolean          NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, device_id, bucket),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id) ON DELETE CASCADE
);

-- Empty outside an ingest transaction: finding a batch's dirty hours is one probe.
CREATE INDEX reading_rollups_hour_dirty_idx ON reading_rollups_hour (tenant_id) WHERE dirty;

INSERT INTO reading_rollups_hour
    (tenant_id, device_id, bucket, n, total, lo, hi, first_ts, first_value, last_ts, last_value)
SELECT tenant_id, device_id, date_trunc('hour', ts, 'UTC'), count(*), sum(value), min(value),
       max(value), min(ts), (min(ARRAY[date_part('epoch', ts), value]))[2],
       max(ts), (max(ARRAY[date_part('epoch', ts), value]))[2]
FROM readings
GROUP BY tenant_id, device_id, date_trunc('hour', ts, 'UTC');

GRANT SELECT, INSERT, UPDATE, DELETE ON reading_rollups_hour TO iot_app;
ALTER TABLE reading_rollups_hour ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reading_rollups_hour TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
