-- Maintenance windows may be narrowed to the members of some groups (customer slugs).
ALTER TABLE maintenance_windows ADD COLUMN group_ids text[];
