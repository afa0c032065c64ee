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
