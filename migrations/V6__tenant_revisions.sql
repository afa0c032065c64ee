-- A tenant's revision: every write transaction adds one to a row of the tenant here, in the same
-- transaction, so the sum of the tenant's rows changes exactly when something of the tenant is
-- committed. A reader that finds the same sum as before knows that what it derived from the
-- tenant's data then (a rendered group detail) still holds, without reading that data again.
-- The rows are shards chosen by backend, so concurrent writers of a tenant seldom wait on one
-- another's row lock; rows are only ever added to, never deleted, so the sum only grows.
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
