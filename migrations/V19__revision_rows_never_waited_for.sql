-- A tenant's revisions (V6, V7, V17) were moved on the row of shard `pg_backend_pid() % 256`,
-- held until commit. Two backends whose pids share that remainder then shared a row: a writer
-- waiting for it while holding a lock the other waited for closed a cycle, and PostgreSQL broke
-- the deadlock by failing one of them (a device write racing a filter write did, in a test).
--
-- Now a transaction never waits for another's revision row. Its first move takes a row of the
-- tenant no other transaction holds (SKIP LOCKED), or adds a row under a new shard number from a
-- sequence (a key no other row has, so the insert waits for no one); it remembers the row for
-- the rest of the transaction, so later moves go to the row it already holds. A tenant then has
-- about as many rows as it had writers at once. The revision is still the sum of its rows,
-- moved in the writer's own transaction.
--
-- Rows of the old scheme (shards 0 to 255, which an instance not yet upgraded still writes) are
-- folded here into one row per tenant under a new number, and never taken by the new writers: an
-- old instance then waits only for old instances, as it always did.
CREATE SEQUENCE revision_shards START 1000000;
GRANT USAGE ON SEQUENCE revision_shards TO iot_app;

ALTER TABLE tenant_revisions ALTER COLUMN shard TYPE integer;
ALTER TABLE tenant_status_revisions ALTER COLUMN shard TYPE integer;
ALTER TABLE tenant_scope_revisions ALTER COLUMN shard TYPE integer;

WITH folded AS (DELETE FROM tenant_revisions RETURNING tenant_id, revision)
INSERT INTO tenant_revisions (tenant_id, shard, revision)
SELECT tenant_id, nextval('revision_shards'), sum(revision) FROM folded GROUP BY tenant_id;
WITH folded AS (DELETE FROM tenant_status_revisions RETURNING tenant_id, revision)
INSERT INTO tenant_status_revisions (tenant_id, shard, revision)
SELECT tenant_id, nextval('revision_shards'), sum(revision) FROM folded GROUP BY tenant_id;
WITH folded AS (DELETE FROM tenant_scope_revisions RETURNING tenant_id, revision)
INSERT INTO tenant_scope_revisions (tenant_id, shard, revision)
SELECT tenant_id, nextval('revision_shards'), sum(revision) FROM folded GROUP BY tenant_id;

-- Each table gets its own function: the table is named in the statements (plans cached), and
-- each remembers its own row (`app.<table>_held`: `<shard>:<tenant>`, local to the transaction,
-- so a transaction bound to another tenant later never takes it for its own).
CREATE FUNCTION move_tenant_revision(tenant text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    held text := current_setting('app.tenant_revisions_held', true);
    picked integer;
BEGIN
    IF held LIKE '%:%' AND substr(held, strpos(held, ':') + 1) = tenant THEN
        picked := split_part(held, ':', 1)::integer;
        UPDATE tenant_revisions SET revision = revision + 1 WHERE tenant_id = tenant AND shard = picked;
        IF FOUND THEN
            RETURN picked;
        END IF;
    END IF;
    SELECT shard INTO picked FROM tenant_revisions
    WHERE tenant_id = tenant AND shard >= 1000000 LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        UPDATE tenant_revisions SET revision = revision + 1 WHERE tenant_id = tenant AND shard = picked;
    ELSE
        picked := nextval('revision_shards');
        INSERT INTO tenant_revisions (tenant_id, shard, revision) VALUES (tenant, picked, 1);
    END IF;
    PERFORM set_config('app.tenant_revisions_held', picked || ':' || tenant, true);
    RETURN picked;
END
$$;

CREATE FUNCTION move_tenant_status_revision(tenant text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    held text := current_setting('app.tenant_status_revisions_held', true);
    picked integer;
BEGIN
    IF held LIKE '%:%' AND substr(held, strpos(held, ':') + 1) = tenant THEN
        picked := split_part(held, ':', 1)::integer;
        UPDATE tenant_status_revisions SET revision = revision + 1 WHERE tenant_id = tenant AND shard = picked;
        IF FOUND THEN
            RETURN picked;
        END IF;
    END IF;
    SELECT shard INTO picked FROM tenant_status_revisions
    WHERE tenant_id = tenant AND shard >= 1000000 LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        UPDATE tenant_status_revisions SET revision = revision + 1 WHERE tenant_id = tenant AND shard = picked;
    ELSE
        picked := nextval('revision_shards');
        INSERT INTO tenant_status_revisions (tenant_id, shard, revision) VALUES (tenant, picked, 1);
    END IF;
    PERFORM set_config('app.tenant_status_revisions_held', picked || ':' || tenant, true);
    RETURN picked;
END
$$;

CREATE FUNCTION move_tenant_scope_revision(tenant text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    held text := current_setting('app.tenant_scope_revisions_held', true);
    picked integer;
BEGIN
    IF held LIKE '%:%' AND substr(held, strpos(held, ':') + 1) = tenant THEN
        picked := split_part(held, ':', 1)::integer;
        UPDATE tenant_scope_revisions SET revision = revision + 1 WHERE tenant_id = tenant AND shard = picked;
        IF FOUND THEN
            RETURN picked;
        END IF;
    END IF;
    SELECT shard INTO picked FROM tenant_scope_revisions
    WHERE tenant_id = tenant AND shard >= 1000000 LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        UPDATE tenant_scope_revisions SET revision = revision + 1 WHERE tenant_id = tenant AND shard = picked;
    ELSE
        picked := nextval('revision_shards');
        INSERT INTO tenant_scope_revisions (tenant_id, shard, revision) VALUES (tenant, picked, 1);
    END IF;
    PERFORM set_config('app.tenant_scope_revisions_held', picked || ':' || tenant, true);
    RETURN picked;
END
$$;

-- A write bound to no tenant (maintenance, an operator) moves every tenant's revision of
-- `revisions`: the rows no one holds are folded into one new row per tenant holding their sum
-- plus one, and a tenant whose rows are all held gets a new row of one. It waits for no writer,
-- and folds back the rows bound writers added while rows were held (so a tenant keeps a few).
-- Rare, so one function for the three tables, its statement built each time.
CREATE FUNCTION move_every_revision(revisions text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'WITH folded AS ( '
        '    DELETE FROM %1$I WHERE (tenant_id, shard) IN ( '
        '        SELECT tenant_id, shard FROM %1$I FOR UPDATE SKIP LOCKED) '
        '    RETURNING tenant_id, revision), '
        'tenants AS (SELECT DISTINCT tenant_id FROM %1$I) '
        'INSERT INTO %1$I (tenant_id, shard, revision) '
        'SELECT t.tenant_id, nextval(''revision_shards''), '
        '       1 + coalesce((SELECT sum(f.revision) FROM folded f '
        '                     WHERE f.tenant_id = t.tenant_id), 0) '
        'FROM tenants t',
        revisions);
END
$$;

-- The triggers keep their names and tables; only how they move the revision changes.
CREATE OR REPLACE FUNCTION bump_tenant_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenant text := nullif(current_setting('app.tenant_id', true), '');
BEGIN
    IF tenant IS NULL THEN
        PERFORM move_every_revision('tenant_revisions');
    ELSE
        PERFORM move_tenant_revision(tenant);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION bump_tenant_status_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenant text := nullif(current_setting('app.tenant_id', true), '');
BEGIN
    IF tenant IS NULL THEN
        PERFORM move_every_revision('tenant_status_revisions');
    ELSE
        PERFORM move_tenant_status_revision(tenant);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION bump_tenant_scope_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenant text := nullif(current_setting('app.tenant_id', true), '');
BEGIN
    IF tenant IS NULL THEN
        PERFORM move_every_revision('tenant_scope_revisions');
    ELSE
        PERFORM move_tenant_scope_revision(tenant);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION bump_scope_revision_unbound() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nullif(current_setting('app.tenant_id', true), '') IS NULL THEN
        PERFORM move_every_revision('tenant_scope_revisions');
    END IF;
    RETURN NULL;
END
$$;
