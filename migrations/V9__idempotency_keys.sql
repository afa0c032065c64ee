-- Idempotency-Key of creates, per tenant: a row is a key held by a request (status NULL) since
-- `at`, or the answer that request gave (status, location, body) stored at `at`. Answers count
-- for 24 hours and holds for a lease of minutes (the service's constants); older rows are
-- ignored, taken over by a new claim, and deleted a bounded batch at a time by later claims of
-- the tenant. `fingerprint` is the service's hash of the request (route and body bytes).
--
-- Not tenant data that views are derived from: no revision trigger.
CREATE TABLE idempotency_keys (
    tenant_id   text        NOT NULL,
    key         text        NOT NULL,
    fingerprint bytea       NOT NULL,
    token       uuid        NOT NULL,
    at          timestamptz NOT NULL,
    status      smallint,
    location    text,
    body        bytea,
    PRIMARY KEY (tenant_id, key),
    CHECK ((status IS NULL) = (body IS NULL))
);

-- The purge's oldest-first batches.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (tenant_id, at);

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO iot_app;
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
