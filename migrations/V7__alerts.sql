-- Issue 14: freshness, the device state kept at write time, alerts with their events, and the
-- status revision. The service judges every status in Rust (the domain's rules); the SQL
-- function below only backfills the state of readings stored before this migration.

-- How long after its latest reading a device counts as stale (NULL: never).
ALTER TABLE devices ADD COLUMN stale_after_s integer
    CONSTRAINT devices_stale_after_s_check CHECK (stale_after_s BETWEEN 1 AND 31536000);
-- The evaluator's look for tenants with devices that may turn stale.
CREATE INDEX devices_stale_after_idx ON devices (tenant_id) WHERE stale_after_s IS NOT NULL;

-- domain::alert::alert_status, for the backfill (a test checks that both agree).
CREATE FUNCTION judge_alert_status(value double precision,
                                   critical_lower double precision,
                                   warning_lower double precision,
                                   warning_upper double precision,
                                   critical_upper double precision)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN value < critical_lower OR value > critical_upper THEN 'critical'
        WHEN value < warning_lower OR value > warning_upper THEN 'warning'
        ELSE 'normal'
    END
$$;

-- The device state lives with the latest reading: a device without a reading has no row and
-- the default state (normal, no since). `since` may be NULL only in rows an older instance
-- wrote during an upgrade; it then reads as the reading's instant.
ALTER TABLE latest_readings
    ADD COLUMN alert_status text NOT NULL DEFAULT 'normal'
        CONSTRAINT latest_readings_alert_status_check
        CHECK (alert_status IN ('normal', 'warning', 'critical')),
    ADD COLUMN since timestamptz;
UPDATE latest_readings l
SET since = l.ts,
    alert_status = judge_alert_status(l.value, d.threshold_critical_lower, d.threshold_warning_lower,
                                      d.threshold_warning_upper, d.threshold_critical_upper)
FROM devices d
WHERE d.tenant_id = l.tenant_id AND d.id = l.device_id;

-- One episode of a device out of the ordinary. The acknowledgement columns are all NULL or
-- all set (but until and note).
CREATE TABLE alerts (
    tenant_id     text             NOT NULL,
    id            uuid             NOT NULL,
    device_id     uuid             NOT NULL,
    kind          text             NOT NULL CHECK (kind IN ('threshold', 'stale')),
    severity      text             NOT NULL CHECK (severity IN ('warning', 'critical')),
    peak_severity text             NOT NULL CHECK (peak_severity IN ('warning', 'critical')),
    state         text             NOT NULL CHECK (state IN ('open', 'resolved')),
    opened_at     timestamptz      NOT NULL,
    resolved_at   timestamptz,
    last_value    double precision,
    suppressed_by text[]           NOT NULL DEFAULT '{}',
    ack_by        text,
    ack_at        timestamptz,
    ack_mode      text CHECK (ack_mode IN ('until_resolved', 'until_escalated', 'until')),
    ack_until     timestamptz,
    ack_note      text,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT alerts_resolved_check CHECK ((state = 'resolved') = (resolved_at IS NOT NULL)),
    CONSTRAINT alerts_ack_check CHECK (
        (ack_by IS NULL) = (ack_at IS NULL) AND (ack_by IS NULL) = (ack_mode IS NULL))
);
-- At most one open alert per device and kind, whatever the concurrency. Also how a device's
-- open alerts are found (ingest, group details, the evaluator).
CREATE UNIQUE INDEX alerts_one_open_per_device_kind ON alerts (tenant_id, device_id, kind)
    WHERE state = 'open';
-- Lists, newest opened first, and a device's history (and the cascade from devices).
CREATE INDEX alerts_opened_idx ON alerts (tenant_id, opened_at DESC, id DESC);
CREATE INDEX alerts_device_idx ON alerts (tenant_id, device_id, opened_at DESC, id DESC);

-- Every change of an alert, numbered per tenant in commit order (see alert_event_counters).
CREATE TABLE alert_events (
    tenant_id  text             NOT NULL,
    seq        bigint           NOT NULL,
    alert_id   uuid             NOT NULL,
    type       text             NOT NULL CHECK (type IN ('opened', 'escalated', 'deescalated',
                                    'resolved', 'suppressed', 'unsuppressed', 'acknowledged',
                                    'unacknowledged')),
    at         timestamptz      NOT NULL,
    severity   text             NOT NULL CHECK (severity IN ('warning', 'critical')),
    value      double precision,
    window_ids text[]           NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, seq),
    FOREIGN KEY (tenant_id, alert_id) REFERENCES alerts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX alert_events_alert_idx ON alert_events (tenant_id, alert_id, seq);
-- A window's report looks for muted events by time; only they have window ids.
CREATE INDEX alert_events_muted_idx ON alert_events (tenant_id, at) WHERE window_ids <> '{}';

-- The last seq given out per tenant. A transaction that records events takes its numbers here
-- as its last statement and holds the row's lock until it commits, so a tenant's events commit
-- in the order of their numbers (a sequence would hand out numbers in start order instead,
-- and a reader could see seq 8 committed before seq 7).
CREATE TABLE alert_event_counters (
    tenant_id text   NOT NULL,
    last_seq  bigint NOT NULL,
    PRIMARY KEY (tenant_id)
);

-- The status revision: like tenant_revisions (V6), but not moved by readings and the kept
-- state, which most often change no status. A status change always records an alert event,
-- so writes to alerts and events move it; the ingest moves it itself when a reading changes
-- only a device's freshness (its first reading, or one ending a staleness with no alert yet).
CREATE TABLE tenant_status_revisions (
    tenant_id text     NOT NULL,
    shard     smallint NOT NULL,
    revision  bigint   NOT NULL,
    PRIMARY KEY (tenant_id, shard)
);

CREATE FUNCTION bump_tenant_status_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenant text := nullif(current_setting('app.tenant_id', true), '');
BEGIN
    IF tenant IS NULL THEN
        UPDATE tenant_status_revisions SET revision = revision + 1;
    ELSE
        INSERT INTO tenant_status_revisions (tenant_id, shard, revision)
        VALUES (tenant, pg_backend_pid() % 256, 1)
        ON CONFLICT (tenant_id, shard) DO UPDATE SET revision = tenant_status_revisions.revision + 1;
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['alerts', 'alert_events', 'alert_event_counters',
                             'tenant_status_revisions']
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO iot_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I TO iot_app '
            'USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
    -- The whole revision moves with every write, the new tables' too.
    FOREACH t IN ARRAY ARRAY['alerts', 'alert_events', 'alert_event_counters']
    LOOP
        EXECUTE format(
            'CREATE TRIGGER revision AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION bump_tenant_revision()', t);
    END LOOP;
    -- The status revision with every write but readings and the kept state.
    FOREACH t IN ARRAY ARRAY['devices', 'device_groups', 'device_group_members',
                             'maintenance_windows', 'alert_events']
    LOOP
        EXECUTE format(
            'CREATE TRIGGER status_revision AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION bump_tenant_status_revision()', t);
    END LOOP;
END
$$;
-- An open alert's last_value follows every reading of its device; an update of that column
-- alone (a reading that changes no status) leaves the status revision where it is.
CREATE TRIGGER status_revision AFTER INSERT OR DELETE OR TRUNCATE ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION bump_tenant_status_revision();
CREATE TRIGGER status_revision_changes AFTER UPDATE OF tenant_id, id, device_id, kind, severity,
    peak_severity, state, opened_at, resolved_at, suppressed_by, ack_by, ack_at, ack_mode,
    ack_until, ack_note ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION bump_tenant_status_revision();

-- The evaluator works as iot_app, which row-level security binds to one tenant at a time: this
-- function (run with its owner's rights) tells it which tenants have anything time could
-- change, without showing it any of their data.
CREATE FUNCTION alert_evaluator_tenants() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT tenant_id FROM alerts WHERE state = 'open'
    UNION
    SELECT tenant_id FROM devices WHERE stale_after_s IS NOT NULL
$$;
REVOKE ALL ON FUNCTION alert_evaluator_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alert_evaluator_tenants() TO iot_app;
