-- Issue 15: what each logged event is about, so the stream, its replay and webhooks can show
-- the subject as it was right after the event, even when it has changed or gone since.
--
-- Snapshot choice: `subject` holds a copy of the subject taken in the event's transaction.
--   * alert.*: the alert as that change left it, in the shape of an `alerts` row (its columns
--     as JSON keys: state, severity, last_value, suppressed_by, the acknowledgement, ...), read
--     back with jsonb_populate_record(NULL::alerts, subject). Several changes of one alert in
--     one write (a batch that opens then escalates) each get the alert as their own change left
--     it. `device_name` is the device's name then.
--   * window.*: the `maintenance_windows` row as it was right after the event (for a deletion,
--     the row being deleted), read back the same way; so a deleted window still replays.
--   * device.state: {"alert_status", "freshness"}, with `device_id` and `device_name`.
-- `group_ids` are group UUIDs (device_groups.id): for alert and device events the groups the
-- device belonged to then, for window events the groups its scope names (by slug) then.
--
-- `at` is the event's instant (for alert events the one of alert_events: a reading's own
-- instant for changes a reading made). `recorded_at` is when it was written: the retention
-- prunes by it, always a prefix of each tenant's seqs (see events_prune), so a reader knows
-- exactly what it missed from the lowest seq retained.
ALTER TABLE events
    ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN alert_id    uuid,
    ADD COLUMN device_id   uuid,
    ADD COLUMN device_name text,
    ADD COLUMN window_id   text,
    ADD COLUMN group_ids   uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN subject     jsonb NOT NULL DEFAULT '{}';
-- Reads go by the primary key (tenant_id, seq); pruning by age.
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

-- The occurrence of each window last announced as started (a row while `window.started` was
-- logged and `window.ended` not yet): what makes each start and end logged once, whichever
-- instance's evaluator (or window write) sees it first. Not derived data: no revision trigger.
CREATE TABLE window_announcements (
    tenant_id text        NOT NULL,
    window_id text        NOT NULL,
    starts_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, window_id)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON window_announcements TO iot_app;
ALTER TABLE window_announcements ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON window_announcements TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- The evaluator's tenants now include those with windows to announce (enabled ones not
-- expired, and any with an announcement still standing).
CREATE OR REPLACE FUNCTION alert_evaluator_tenants() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT tenant_id FROM alerts WHERE state = 'open'
    UNION
    SELECT tenant_id FROM devices WHERE stale_after_s IS NOT NULL
    UNION
    SELECT tenant_id FROM maintenance_windows WHERE enabled AND (ends_at IS NULL OR ends_at > now())
    UNION
    SELECT tenant_id FROM window_announcements
$$;

-- Deletes events recorded before `before` in every tenant, about `batch` at a time: each
-- tenant loses a prefix of its seqs (up to the highest seq among the oldest `batch` rows), so
-- what is retained is always contiguous up to the last seq.
CREATE FUNCTION events_prune(before timestamptz, batch integer) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH oldest AS (
        SELECT tenant_id, seq FROM events WHERE recorded_at < before
        ORDER BY recorded_at, seq LIMIT batch),
    upto AS (SELECT tenant_id, max(seq) AS seq FROM oldest GROUP BY tenant_id),
    gone AS (
        DELETE FROM events e USING upto u
        WHERE e.tenant_id = u.tenant_id AND e.seq <= u.seq
        RETURNING 1)
    SELECT count(*) FROM gone
$$;
REVOKE ALL ON FUNCTION events_prune(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION events_prune(timestamptz, integer) TO iot_app;
