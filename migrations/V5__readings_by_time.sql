-- The newest readings of a large group are found by walking the tenant's readings newest first
-- and keeping those of members, instead of reading every member's own history. The index gives
-- that walk in the response's order (newest first, then device id) and carries the value, so the
-- walk reads no table pages and stops after `limit` matches.
CREATE INDEX readings_tenant_ts_idx ON readings (tenant_id, ts DESC, device_id) INCLUDE (value);
