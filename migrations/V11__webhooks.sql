-- Issue 15: webhook subscriptions and their outbox. A delivery row is written in the same
-- transaction as the event it delivers (the trigger on `events` below), so a committed event is
-- never lost by a restart or a crash; the service's worker sends it, records each attempt, and
-- retries on a schedule. A delivery's `id` is its `webhook-id` (stable over retries).
--
-- Not tenant data that views are derived from: no revision trigger.
CREATE TABLE webhook_subscriptions (
    tenant_id       text        NOT NULL,
    id              uuid        NOT NULL,
    url             text        NOT NULL CHECK (length(url) <= 2048),
    event_types     text[]      NOT NULL,
    description     text        NOT NULL,
    -- `whsec_` + base64 of the signing key (the service needs it to sign, so it is not hashed).
    secret          text        NOT NULL,
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text,
    created_at      timestamptz NOT NULL,
    -- Since when its deliveries have failed with no success in between (NULL: not failing).
    failing_since   timestamptz,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE webhook_deliveries (
    tenant_id        text        NOT NULL,
    id               uuid        NOT NULL,
    subscription_id  uuid        NOT NULL,
    -- The event delivered; NULL for `webhook.test`.
    event_seq        bigint,
    event_type       text        NOT NULL,
    event_at         timestamptz NOT NULL,
    -- The exact body sent: rendered at the first attempt (given at once for a test), then the
    -- same on every retry.
    payload          jsonb,
    state            text        NOT NULL DEFAULT 'pending'
                                 CHECK (state IN ('pending', 'delivered', 'failed')),
    created_at       timestamptz NOT NULL,
    -- When the worker may (re)try it; while an attempt is under way, when its lease ends. NULL
    -- once delivered or failed.
    next_attempt_at  timestamptz,
    -- The token of the claim under way (NULL: none).
    lease            uuid,
    attempt_count    integer     NOT NULL DEFAULT 0,
    first_failure_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    -- One delivery per event and subscription: its id is the stable `webhook-id`.
    UNIQUE (tenant_id, subscription_id, event_seq),
    FOREIGN KEY (tenant_id, subscription_id) REFERENCES webhook_subscriptions (tenant_id, id)
        ON DELETE CASCADE,
    CHECK ((state = 'pending') = (next_attempt_at IS NOT NULL))
);

-- The worker's claims: due pending deliveries, oldest due first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
-- A subscription's deliveries, newest first.
CREATE INDEX webhook_deliveries_by_subscription
    ON webhook_deliveries (tenant_id, subscription_id, created_at DESC, id DESC);
-- The purge of finished deliveries.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (created_at)
    WHERE state <> 'pending';

-- Each attempt of a delivery (its latest 20: older ones are deleted as new ones come).
CREATE TABLE webhook_attempts (
    tenant_id   text        NOT NULL,
    delivery_id uuid        NOT NULL,
    n           integer     NOT NULL,
    at          timestamptz NOT NULL,
    status      smallint,
    duration_ms bigint      NOT NULL,
    error       text,
    PRIMARY KEY (tenant_id, delivery_id, n),
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries (tenant_id, id)
        ON DELETE CASCADE
);

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_subscriptions, webhook_deliveries,
    webhook_attempts TO iot_app;
ALTER TABLE webhook_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_subscriptions TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY tenant_isolation ON webhook_deliveries TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY tenant_isolation ON webhook_attempts TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- The outbox write: one pending delivery per new event and enabled subscription naming its
-- type, in the event's transaction. It runs with the rights of the role inserting the events
-- (`iot_app` bound to the tenant): row-level security shows it that tenant's subscriptions
-- only, and an event can only be inserted for the bound tenant anyway.
CREATE FUNCTION webhook_enqueue() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO webhook_deliveries (tenant_id, id, subscription_id, event_seq, event_type,
                                    event_at, created_at, next_attempt_at)
    SELECT e.tenant_id, gen_random_uuid(), s.id, e.seq, e.type, e.at, now(), now()
    FROM new_events e
    JOIN webhook_subscriptions s
      ON s.tenant_id = e.tenant_id AND s.enabled AND e.type = ANY (s.event_types)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_enqueue_webhooks AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_enqueue();

-- The tenants with deliveries due at `at` (the worker's question across tenants, which
-- row-level security would otherwise answer with none).
CREATE FUNCTION webhook_due_tenants(at timestamptz) RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT DISTINCT tenant_id FROM webhook_deliveries
    WHERE state = 'pending' AND next_attempt_at <= at
$$;
REVOKE ALL ON FUNCTION webhook_due_tenants(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_due_tenants(timestamptz) TO iot_app;

-- Deletes up to `batch` finished deliveries created before `before`, in every tenant.
CREATE FUNCTION webhook_purge_finished(before timestamptz, batch integer) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM webhook_deliveries WHERE (tenant_id, id) IN (
            SELECT tenant_id, id FROM webhook_deliveries
            WHERE state <> 'pending' AND created_at < before
            ORDER BY created_at LIMIT batch FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*) FROM gone
$$;
REVOKE ALL ON FUNCTION webhook_purge_finished(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_purge_finished(timestamptz, integer) TO iot_app;
