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

/// Both revisions of the tenant, in one snapshot (one statement).
pub(crate) const REVISIONS: &str = concat!(
    "SELECT (SELECT coalesce(sum(revision), 0)::bigint FROM tenant_revisions WHERE tenant_id = $1), ",
    "(SELECT coalesce(sum(revision), 0)::bigint FROM tenant_status_revisions WHERE tenant_id = $1)"
);

/// Both revisions (the row whose `device_id` is NULL) and, only when the full revision is not
/// `$3` and the status revision is `$4` (a kept detail's), the latest reading of each member of
/// group `$2`. One statement: one snapshot, so no status change can slip in between the
/// revisions and the readings. The gate is an InitPlan, a one-time filter: when it is false the
/// members are never scanned.
pub(crate) const MEMBERS_LATEST: &str = "WITH r AS MATERIALIZED ( \
        SELECT (SELECT coalesce(sum(revision), 0)::bigint FROM tenant_revisions \
                WHERE tenant_id = $1) AS revision, \
               (SELECT coalesce(sum(revision), 0)::bigint FROM tenant_status_revisions \
                WHERE tenant_id = $1) AS status_revision) \
     SELECT revision, status_revision, NULL::uuid AS device_id, NULL::timestamptz AS ts, \
            NULL::float8 AS value FROM r \
     UNION ALL \
     SELECT NULL, NULL, l.device_id, l.ts, l.value \
     FROM device_group_members m \
     JOIN latest_readings l ON l.tenant_id = m.tenant_id AND l.device_id = m.device_id \
     WHERE m.tenant_id = $1 AND m.group_id = $2 \
       AND (SELECT revision <> $3 AND status_revision = $4 FROM r)";

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
