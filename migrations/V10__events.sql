-- Issue 15: the event log every delivery reads (the live stream, its replay after a reconnect,
-- webhooks). One row per event the tenant's clients may receive, numbered by the same counter
-- as alert_events (alert_event_counters): an alert event with seq N is stream event N, and a
-- window or device-state event takes the next number. The counter's lock makes a tenant's
-- events commit in seq order, so a reader that has seen seq N misses nothing by asking for
-- seq > N. Rows older than the retention are deleted by the service; alert_events (an alert's
-- history) are kept.
--
-- Skeleton: the columns that describe each event's subject are added by the stream's work.
CREATE TABLE events (
    tenant_id text        NOT NULL,
    seq       bigint      NOT NULL,
    type      text        NOT NULL CHECK (type IN (
                  'alert.opened', 'alert.escalated', 'alert.deescalated', 'alert.resolved',
                  'alert.suppressed', 'alert.unsuppressed', 'alert.acknowledged',
                  'alert.unacknowledged', 'window.started', 'window.ended', 'device.state')),
    at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON events TO iot_app;
ALTER TABLE events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON events TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
