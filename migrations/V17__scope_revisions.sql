-- The scope revision: like the status revision (V7), but moved only by writes that change which
-- devices a summary counts or how it judges them (devices, groups, memberships, windows), and by
-- the ingest's freshness-only changes that no event records. Every other change of a device's
-- status, freshness or alerts records an event in the tenant's log (`events`, numbered in commit
-- order), so a kept summary at (scope revision, last seq) is brought up to date by the states of
-- the devices its newer events name, instead of being read again whole: under ingest, where the
-- status revision moves many times a second, that keeps a large group's summary one small
-- statement away.
CREATE TABLE tenant_scope_revisions (
    tenant_id text     NOT NULL,
    shard     smallint NOT NULL,
    revision  bigint   NOT NULL,
    PRIMARY KEY (tenant_id, shard)
);

GRANT SELECT, INSERT, UPDATE ON tenant_scope_revisions TO iot_app;
ALTER TABLE tenant_scope_revisions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_scope_revisions TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- As bump_tenant_status_revision: a write bound to no tenant moves every tenant's.
CREATE FUNCTION bump_tenant_scope_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenant text := nullif(current_setting('app.tenant_id', true), '');
BEGIN
    IF tenant IS NULL THEN
        UPDATE tenant_scope_revisions SET revision = revision + 1;
    ELSE
        INSERT INTO tenant_scope_revisions (tenant_id, shard, revision)
        VALUES (tenant, pg_backend_pid() % 256, 1)
        ON CONFLICT (tenant_id, shard) DO UPDATE SET revision = tenant_scope_revisions.revision + 1;
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['devices', 'device_groups', 'device_group_members',
                             'maintenance_windows']
    LOOP
        EXECUTE format(
            'CREATE TRIGGER scope_revision AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION bump_tenant_scope_revision()', t);
    END LOOP;
END
$$;

-- A write bound to no tenant that changes alerts or devices' kept states (an operator's repair,
-- a restore) may change any summary without a scope write or an event: it moves every tenant's
-- scope revision too. (The log's pruning deletes events unbound; a reader that finds the events
-- it needs pruned reads afresh, so that needs no trigger.)
CREATE FUNCTION bump_scope_revision_unbound() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nullif(current_setting('app.tenant_id', true), '') IS NULL THEN
        UPDATE tenant_scope_revisions SET revision = revision + 1;
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['alerts', 'latest_readings']
    LOOP
        EXECUTE format(
            'CREATE TRIGGER scope_revision_unbound AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE '
            'ON %I FOR EACH STATEMENT EXECUTE FUNCTION bump_scope_revision_unbound()', t);
    END LOOP;
END
$$;
