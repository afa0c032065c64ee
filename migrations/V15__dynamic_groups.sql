-- Issue 17: dynamic groups and label-scoped windows.
--
-- A dynamic group has a `filter` (NULL: a static group). Its members are still rows of
-- device_group_members, kept in step by the service in the transaction of every device write
-- and every filter change, so every read (detail, alerts, readings, a device's groups, window
-- scope) and the member counts treat both kinds alike and stay as cheap as for static groups.
ALTER TABLE device_groups
    ADD COLUMN filter jsonb
        CONSTRAINT device_groups_filter_object CHECK (filter IS NULL OR jsonb_typeof(filter) = 'object');

-- Every device write looks up its tenant's dynamic groups.
CREATE INDEX device_groups_dynamic_idx ON device_groups (tenant_id) WHERE filter IS NOT NULL;

-- Labels a device must all carry to be in a window's scope (NULL: no such condition).
ALTER TABLE maintenance_windows
    ADD COLUMN labels jsonb
        CONSTRAINT maintenance_windows_labels_object CHECK (labels IS NULL OR jsonb_typeof(labels) = 'object');

-- Whether a device with these values is selected by a group filter as the service stores it:
-- {"all": true}, or any of "site_ids", "device_types", "statuses" (arrays of strings, the
-- device's value among them) and "labels" (an object the device's labels contain), all of which
-- must hold. The same rule as the domain's GroupFilter::matches. A SQL function so that it is
-- inlined: with the filter known, the planner folds the keys it lacks away.
CREATE FUNCTION group_filter_matches(f jsonb, site_id text, device_type text, status text, labels jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(f ? 'all' OR (
        (NOT f ? 'site_ids' OR site_id IN (SELECT jsonb_array_elements_text(f -> 'site_ids')))
        AND (NOT f ? 'device_types' OR device_type IN (SELECT jsonb_array_elements_text(f -> 'device_types')))
        AND (NOT f ? 'labels' OR labels @> (f -> 'labels'))
        AND (NOT f ? 'statuses' OR status IN (SELECT jsonb_array_elements_text(f -> 'statuses')))
    ), false)
$$;
