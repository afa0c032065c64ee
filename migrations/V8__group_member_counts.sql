-- A group's member count, kept as memberships change instead of counted at every read: the
-- group list counted every membership of the tenant per request (10 ms for 111 groups holding
-- 21,000 memberships). A statement trigger adds each statement's net change per group, sharded
-- by backend like tenant_revisions, so concurrent writers of one group seldom wait on one row;
-- a group's count is the sum of its rows. Rows of a deleted group are removed with it.
CREATE TABLE group_member_counts (
    tenant_id text     NOT NULL,
    group_id  uuid     NOT NULL,
    shard     smallint NOT NULL,
    members   bigint   NOT NULL,
    PRIMARY KEY (tenant_id, group_id, shard)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON group_member_counts TO iot_app;
ALTER TABLE group_member_counts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON group_member_counts TO iot_app
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- Memberships written while the counts are taken and the triggers created would be missed.
LOCK TABLE device_group_members IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO group_member_counts (tenant_id, group_id, shard, members)
SELECT tenant_id, group_id, 0, count(*) FROM device_group_members GROUP BY tenant_id, group_id;

-- Rows are added in group order, so two writers on one shard take their locks in one order.
CREATE FUNCTION count_added_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO group_member_counts AS c (tenant_id, group_id, shard, members)
    SELECT tenant_id, group_id, pg_backend_pid() % 64, count(*)
      FROM added GROUP BY tenant_id, group_id ORDER BY tenant_id, group_id
    ON CONFLICT (tenant_id, group_id, shard) DO UPDATE SET members = c.members + EXCLUDED.members;
    RETURN NULL;
END
$$;

-- A group deleted with its memberships (the cascade) has no group row left: its counts go.
CREATE FUNCTION count_removed_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO group_member_counts AS c (tenant_id, group_id, shard, members)
    SELECT r.tenant_id, r.group_id, pg_backend_pid() % 64, -count(*)
      FROM removed r
     WHERE EXISTS (SELECT 1 FROM device_groups g WHERE g.tenant_id = r.tenant_id AND g.id = r.group_id)
     GROUP BY r.tenant_id, r.group_id ORDER BY r.tenant_id, r.group_id
    ON CONFLICT (tenant_id, group_id, shard) DO UPDATE SET members = c.members + EXCLUDED.members;
    RETURN NULL;
END
$$;

CREATE FUNCTION forget_group_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM group_member_counts c USING removed g
     WHERE c.tenant_id = g.tenant_id AND c.group_id = g.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER member_counts_added AFTER INSERT ON device_group_members
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION count_added_members();
CREATE TRIGGER member_counts_removed AFTER DELETE ON device_group_members
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION count_removed_members();
CREATE TRIGGER member_counts_forgotten AFTER DELETE ON device_groups
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION forget_group_counts();
