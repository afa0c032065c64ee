-- Device lists are ordered by name in byte order (`ORDER BY name COLLATE "C"`), which the unique
-- (tenant_id, name) index, in the database's collation, cannot give: every match was sorted to
-- cut a page. In byte order, a page is a walk of the index that stops once it is full.
CREATE INDEX devices_name_order_idx ON devices (tenant_id, name COLLATE "C");
