-- Issue 17: nested groups. A group may sit under a parent of its own tenant (the composite key
-- makes a parent of another tenant impossible); deleting a parent moves its children to the top
-- (PostgreSQL 15's column list: only parent_id is cleared, never tenant_id). Cycles and the
-- depth limit (8 levels) are checked by the service under a per-tenant advisory lock, since a
-- check constraint cannot see other rows.
ALTER TABLE device_groups
    ADD COLUMN parent_id uuid,
    ADD CONSTRAINT device_groups_parent_fkey FOREIGN KEY (tenant_id, parent_id)
        REFERENCES device_groups (tenant_id, id) ON DELETE SET NULL (parent_id),
    ADD CONSTRAINT device_groups_not_own_parent CHECK (parent_id IS NULL OR parent_id <> id);

-- A group's children: each step of the descendants walk (a recursive CTE) and the SET NULL of
-- a deleted parent. Partial: most groups are at the top.
CREATE INDEX device_groups_parent_idx ON device_groups (tenant_id, parent_id)
    WHERE parent_id IS NOT NULL;
