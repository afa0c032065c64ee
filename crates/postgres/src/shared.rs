//! What more than one repository runs: tenant-wide statements and the device lock of writes
//! that name devices.

use domain::TenantId;
use ports::StoreError;
use uuid::Uuid;

use crate::error::query_error;
use crate::rows::WINDOW_COLUMNS;
use crate::tx::TenantTx;

/// The tenant's revision: the sum over its shards, 0 before its first write.
pub(crate) const REVISION: &str =
    "SELECT coalesce(sum(revision), 0)::bigint FROM tenant_revisions WHERE tenant_id = $1";

/// The tenant's status revision (migration V7), 0 before its first write.
pub(crate) const STATUS_REVISION: &str =
    "SELECT coalesce(sum(revision), 0)::bigint FROM tenant_status_revisions WHERE tenant_id = $1";

/// The tenant's full and scope revisions, in one snapshot (one statement).
pub(crate) const REVISIONS: &str = concat!(
    "SELECT (SELECT coalesce(sum(revision), 0)::bigint FROM tenant_revisions WHERE tenant_id = $1), ",
    "(SELECT coalesce(sum(revision), 0)::bigint FROM tenant_scope_revisions WHERE tenant_id = $1)"
);

/// The full and scope revisions (the row whose `device_id` is NULL) and, only when the full
/// revision is not `$3` and the scope revision is `$4` (a kept detail's), each member of group
/// `$2` with its kept state and whether it has open alerts (NULL without one, else whether one
/// is acknowledged). One statement: one snapshot, so no change can slip in between the
/// revisions and the states. The gate is an InitPlan, a one-time filter: when it is false the
/// members are never scanned.
pub(crate) const MEMBERS_LATEST: &str = "WITH r AS MATERIALIZED ( \
        SELECT (SELECT coalesce(sum(revision), 0)::bigint FROM tenant_revisions \
                WHERE tenant_id = $1) AS revision, \
               (SELECT coalesce(sum(revision), 0)::bigint FROM tenant_scope_revisions \
                WHERE tenant_id = $1) AS scope) \
     SELECT revision, scope, NULL::uuid AS device_id, NULL::timestamptz AS ts, \
            NULL::float8 AS value, NULL::text AS alert_status, NULL::timestamptz AS since, \
            NULL::boolean AS open_alert FROM r \
     UNION ALL \
     SELECT NULL, NULL, m.device_id, l.ts, l.value, l.alert_status, coalesce(l.since, l.ts), \
            o.acknowledged \
     FROM device_group_members m \
     LEFT JOIN latest_readings l ON l.tenant_id = m.tenant_id AND l.device_id = m.device_id \
     LEFT JOIN (SELECT a.device_id, bool_or(a.ack_by IS NOT NULL) AS acknowledged \
                FROM alerts a JOIN device_group_members am \
                  ON am.tenant_id = a.tenant_id AND am.device_id = a.device_id \
                WHERE a.tenant_id = $1 AND am.group_id = $2 AND a.state = 'open' \
                GROUP BY a.device_id) o ON o.device_id = m.device_id \
     WHERE m.tenant_id = $1 AND m.group_id = $2 \
       AND (SELECT revision <> $3 AND scope = $4 FROM r)";

/// The tenant's state mark (scope revision, last event seq; migration V17), 0 before any write.
pub(crate) const STATE_MARK: &str = concat!(
    "SELECT (SELECT coalesce(sum(revision), 0)::bigint FROM tenant_scope_revisions ",
    "WHERE tenant_id = $1), ",
    "coalesce((SELECT last_seq FROM alert_event_counters WHERE tenant_id = $1), 0)"
);

/// The state mark and the lowest event seq the log holds (the row whose `device_id` is NULL),
/// then, only when the scope revision is `$2` and the log holds every event after seq `$3`,
/// each device (at most `$4`) the events after `$3` name, with its kept state and whether it
/// has open alerts (NULL without one, else whether one is acknowledged). One statement: one
/// snapshot, and a tenant's events commit in the order of their seqs, so the states are those
/// of the mark returned. A deleted device moved the scope, so every named device has a row.
pub(crate) const STATE_CHANGES: &str = "WITH r AS MATERIALIZED ( \
        SELECT (SELECT coalesce(sum(revision), 0)::bigint FROM tenant_scope_revisions \
                WHERE tenant_id = $1) AS scope, \
               coalesce((SELECT last_seq FROM alert_event_counters WHERE tenant_id = $1), 0) \
                   AS seq, \
               (SELECT min(seq) FROM events WHERE tenant_id = $1) AS first_seq), \
     changed AS MATERIALIZED ( \
        SELECT DISTINCT e.device_id FROM events e \
        WHERE e.tenant_id = $1 AND e.seq > $3 AND e.device_id IS NOT NULL \
          AND (SELECT scope = $2 AND seq > $3 AND coalesce(first_seq, seq + 1) <= $3 + 1 FROM r) \
        LIMIT $4) \
     SELECT scope, seq, NULL::uuid AS device_id, NULL::timestamptz AS ts, NULL::float8 AS value, \
            NULL::text AS alert_status, NULL::timestamptz AS since, NULL::boolean AS open_alert, \
            first_seq \
     FROM r \
     UNION ALL \
     SELECT NULL, NULL, d.id, l.ts, l.value, l.alert_status, coalesce(l.since, l.ts), \
            o.acknowledged, NULL \
     FROM changed c \
     JOIN devices d ON d.tenant_id = $1 AND d.id = c.device_id \
     LEFT JOIN latest_readings l ON l.tenant_id = $1 AND l.device_id = d.id \
     LEFT JOIN LATERAL (SELECT bool_or(a.ack_by IS NOT NULL) AS acknowledged FROM alerts a \
                        WHERE a.tenant_id = $1 AND a.device_id = d.id AND a.state = 'open') o \
       ON true";

/// The windows that may mute alerts now: enabled and not ended.
pub(crate) fn live_windows_sql() -> String {
    format!(
        "SELECT {WINDOW_COLUMNS} FROM maintenance_windows w WHERE w.tenant_id = $1 AND w.enabled \
         AND (w.ends_at IS NULL OR w.ends_at > now())"
    )
}

/// Locks the listed devices that exist against a concurrent delete until the transaction ends.
pub(crate) const LOCK_DEVICES: &str =
    "SELECT id FROM devices WHERE tenant_id = $1 AND id = ANY($2) FOR KEY SHARE";

/// The first of `ids` the tenant has no device for; the others stay locked against deletion.
pub(crate) async fn first_missing_device(
    tx: &TenantTx,
    tenant: &TenantId,
    ids: &[Uuid],
) -> Result<Option<Uuid>, StoreError> {
    if ids.is_empty() {
        return Ok(None);
    }
    let statement = tx.prepare_cached(LOCK_DEVICES).await.map_err(query_error)?;
    let rows = tx
        .query(&statement, &[&tenant.as_str(), &ids])
        .await
        .map_err(query_error)?;
    let found: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.get::<_, Uuid>(0)).collect();
    Ok(ids.iter().copied().find(|id| !found.contains(id)))
}
