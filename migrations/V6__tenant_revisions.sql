-- A tenant's revision: the sum of the tenant's rows here, which only grows (rows are added to,
-- never deleted) and grows in the same transaction as any write of the tenant's data, so it
-- changes exactly when something of the tenant is committed. A reader that finds the same sum as
-- before knows that what it derived from the tenant's data then (a rendered group detail) still
-- holds, without reading that data again.
CREATE TABLE tenant_revisions (
    tenant_id text     NOT NULL,
    shard     smallint NOT NULL,
    revision  bigint   NOT NULL,
    PRIMARY KEY (tenant_id, shard)
);

GRANT SELECT, INSERT, UPDATE ON tenant_revisions TO iot_app;
ALTER TABLE tenant_revisions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_revisions TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- Every write moves its tenant's revision, whatever wrote it: the service's own transactions,
-- an older instance still running during an upgrade, or an operator. A statement trigger on each
-- tenant table adds one to the revision of the tenant the transaction is bound to; a write
-- bound to no tenant (maintenance, an operator working as the owner) may have changed any
-- tenant's data, so it moves every tenant's revision. 256 shards by backend: concurrent writers
-- of one tenant seldom share a row, whose lock each holds until it commits.
CREATE FUNCTION bump_tenant_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenant text := nullif(current_setting('app.tenant_id', true), '');
BEGIN
    IF tenant IS NULL THEN
        UPDATE tenant_revisions SET revision = revision + 1;
    ELSE
        INSERT INTO tenant_revisions (tenant_id, shard, revision)
        VALUES (tenant, pg_backend_pid() % 256, 1)
        ON CONFLICT (tenant_id, shard) DO UPDATE SET revision = tenant_revisions.revision + 1;
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['devices', 'device_groups', 'device_group_members', 'readings',
                             'latest_readings', 'maintenance_windows']
    LOOP
        EXECUTE format(
            'CREATE TRIGGER revision AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION bump_tenant_revision()', t);
    END LOOP;
END
$$;
