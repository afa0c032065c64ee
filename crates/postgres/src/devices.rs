//! Devices in PostgreSQL.

use async_trait::async_trait;
use domain::{
    Actor, Device, DeviceChanges, DeviceGroup, DeviceSpec, ListQuery, NewDevice, Page, TenantId,
};
use ports::{CreateDeviceError, DeviceRepository, LookupError, StoreError, UpdateDeviceError};
use uuid::Uuid;

use crate::error::{query_error, unique_violation};
use crate::keeping::{
    after_thresholds, alert_from_row, device_states_of_sql, judge_with_coverage, kept_from_row,
    open_alerts_sql, ChangeParams, WriteStatements, LOCK_DEVICES_FOR_STATE,
};
use crate::lists::{fetch_page, name_filter};
use crate::pool::PgStore;
use crate::rows::{
    device_from_row, group_columns, group_from_row, DEVICE_COLUMNS, DEVICE_COLUMNS_NO_STATE,
    DEVICE_STATE_JOIN,
};

fn list_sql() -> String {
    format!(
        "SELECT {DEVICE_COLUMNS} FROM devices d {DEVICE_STATE_JOIN} WHERE d.tenant_id = $1 AND {} \
         ORDER BY d.name COLLATE \"C\" LIMIT $3 OFFSET $4",
        name_filter("d.name")
    )
}
fn count_sql() -> String {
    format!(
        "SELECT count(*) FROM devices d WHERE d.tenant_id = $1 AND {}",
        name_filter("d.name")
    )
}
pub(crate) fn get_sql() -> String {
    format!(
        "SELECT {DEVICE_COLUMNS} FROM devices d {DEVICE_STATE_JOIN} WHERE d.tenant_id = $1 AND d.id = $2"
    )
}
fn insert_sql() -> String {
    format!(
        "INSERT INTO devices AS d (tenant_id, id, name, unit, status, site_id, device_type, \
         threshold_critical_lower, threshold_warning_lower, threshold_warning_upper, threshold_critical_upper, \
         created_by, updated_by, stale_after_s) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13) \
         RETURNING {DEVICE_COLUMNS_NO_STATE}"
    )
}
fn update_sql() -> String {
    format!(
        "UPDATE devices AS d SET name = $3, unit = $4, status = $5, site_id = $6, device_type = $7, \
         threshold_critical_lower = $8, threshold_warning_lower = $9, threshold_warning_upper = $10, \
         threshold_critical_upper = $11, updated_at = greatest(now(), d.updated_at), updated_by = $12, \
         stale_after_s = $13 \
         WHERE d.tenant_id = $1 AND d.id = $2 RETURNING {DEVICE_COLUMNS_NO_STATE}"
    )
}
const DELETE: &str = "DELETE FROM devices WHERE tenant_id = $1 AND id = $2";
const EXISTS: &str = "SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2";
const GROUPS_OF_DEVICE: &str = concat!(
    "SELECT ", group_columns!("g"),
    " FROM device_groups g JOIN device_group_members dm ON dm.tenant_id = g.tenant_id AND dm.group_id = g.id",
    " WHERE g.tenant_id = $1 AND dm.device_id = $2 ORDER BY g.name COLLATE \"C\""
);

/// A spec as the SQL parameters of an insert or update take it.
struct SpecParams {
    name: String,
    unit: String,
    status: &'static str,
    site_id: Option<String>,
    device_type: Option<String>,
    /// In column order: critical_lower, warning_lower, warning_upper, critical_upper.
    bounds: [Option<f64>; 4],
    stale_after_s: Option<i32>,
}

impl SpecParams {
    fn of(spec: &DeviceSpec) -> Self {
        let t = &spec.thresholds;
        Self {
            name: spec.name.as_str().to_owned(),
            unit: spec.unit.as_str().to_owned(),
            status: spec.status.as_str(),
            site_id: spec.site_id.as_ref().map(|s| s.as_str().to_owned()),
            device_type: spec.device_type.as_ref().map(|s| s.as_str().to_owned()),
            bounds: [
                t.critical_lower(),
                t.warning_lower(),
                t.warning_upper(),
                t.critical_upper(),
            ],
            // At most 31,536,000: always an i32.
            stale_after_s: spec
                .stale_after
                .map(|s| i32::try_from(s.secs()).unwrap_or(i32::MAX)),
        }
    }
}

#[async_trait]
impl DeviceRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_devices(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<Page<Device>, StoreError> {
        let (rows, total) = fetch_page(self, &list_sql(), &count_sql(), tenant, query).await?;
        Ok(Page {
            items: rows.iter().map(device_from_row).collect::<Result<_, _>>()?,
            total,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn create_device(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        device: NewDevice,
    ) -> Result<Device, CreateDeviceError> {
        let tx = self.begin(tenant).await?;
        let statement = tx
            .prepare_cached(&insert_sql())
            .await
            .map_err(query_error)?;
        let p = SpecParams::of(&device.spec);
        let b = &p.bounds;
        let inserted = tx
            .query_one(
                &statement,
                &[
                    &tenant.as_str(),
                    &device.id,
                    &p.name,
                    &p.unit,
                    &p.status,
                    &p.site_id,
                    &p.device_type,
                    &b[0],
                    &b[1],
                    &b[2],
                    &b[3],
                    &actor.as_str(),
                    &p.stale_after_s,
                ],
            )
            .await;
        let row = match inserted {
            Ok(row) => row,
            Err(e) => {
                return Err(match unique_violation(&e) {
                    Some("devices_name_key") => CreateDeviceError::NameTaken(device.spec.name),
                    _ => query_error(e).into(),
                })
            }
        };
        tx.commit().await.map_err(query_error)?;
        Ok(device_from_row(&row)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn get_device(&self, tenant: &TenantId, id: Uuid) -> Result<Device, LookupError> {
        let tx = self.reader(tenant).await?;
        let statement = tx.prepare(&get_sql()).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &id];
        let row = tx
            .run(|client| client.query_opt(&statement, &params))
            .await
            .map_err(query_error)?;
        Ok(device_from_row(&row.ok_or(LookupError::NotFound)?)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn update_device(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: Uuid,
        changes: DeviceChanges,
    ) -> Result<Device, UpdateDeviceError> {
        let tx = self.begin(tenant).await?;
        let tenant_id = tenant.as_str();
        let (select_sql, states_sql, open_sql) =
            (get_sql(), device_states_of_sql(), open_alerts_sql());
        let (select, lock, states, open_alerts, writes) = tokio::try_join!(
            tx.prepare_cached(&select_sql),
            tx.prepare_cached(LOCK_DEVICES_FOR_STATE),
            tx.prepare_cached(&states_sql),
            tx.prepare_cached(&open_sql),
            async { Ok::<_, tokio_postgres::Error>(WriteStatements::prepare(&tx).await) },
        )
        .map_err(query_error)?;
        let writes = writes?;
        let ids = vec![id];
        let by_ids: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &ids];
        let by_id: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &id];
        // Locked first (as every writer of a device's state locks it), then read as the lock
        // leaves it: one round trip.
        let (_, locked, current, open) = tokio::try_join!(
            biased;
            tx.execute(&lock, &by_ids),
            tx.query_opt(&states, &by_ids),
            tx.query_opt(&select, &by_id),
            tx.query(&open_alerts, &by_ids),
        )
        .map_err(query_error)?;
        let (Some(locked), Some(current)) = (locked, current) else {
            return Err(UpdateDeviceError::NotFound);
        };
        let mut kept = kept_from_row(&locked)?;
        for row in &open {
            kept.hold(alert_from_row(row)?);
        }
        let before = device_from_row(&current)?;
        let spec = before.spec.clone().apply(changes)?;
        let statement = tx
            .prepare_cached(&update_sql())
            .await
            .map_err(query_error)?;
        let p = SpecParams::of(&spec);
        let b = &p.bounds;
        let updated = tx
            .query_one(
                &statement,
                &[
                    &tenant_id,
                    &id,
                    &p.name,
                    &p.unit,
                    &p.status,
                    &p.site_id,
                    &p.device_type,
                    &b[0],
                    &b[1],
                    &b[2],
                    &b[3],
                    &actor.as_str(),
                    &p.stale_after_s,
                ],
            )
            .await;
        let row = match updated {
            Ok(row) => row,
            Err(e) => {
                return Err(match unique_violation(&e) {
                    Some("devices_name_key") => UpdateDeviceError::NameTaken(spec.name),
                    _ => query_error(e).into(),
                })
            }
        };
        // New thresholds judge the latest reading again, in this transaction; the windows
        // covering the device are those of its new site and type.
        kept.site_id.clone_from(&spec.site_id);
        kept.device_type.clone_from(&spec.device_type);
        let now = domain::Timestamp::now();
        let changes = judge_with_coverage(
            &tx,
            tenant,
            std::slice::from_ref(&kept),
            now,
            |device, covering| after_thresholds(device, &spec.thresholds, now, covering),
        )
        .await?;
        let state = changes
            .states
            .last()
            .map_or(kept.state, |(_, state)| *state);
        if !changes.is_empty() {
            writes
                .run(&tx, &ChangeParams::of(tenant, &changes))
                .await
                .map_err(query_error)?;
        }
        tx.commit().await.map_err(query_error)?;
        let mut device = device_from_row(&row)?;
        device.state = state;
        Ok(device)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn delete_device(&self, tenant: &TenantId, id: Uuid) -> Result<(), LookupError> {
        let tx = self.begin(tenant).await?;
        let statement = tx.prepare_cached(DELETE).await.map_err(query_error)?;
        let deleted = tx
            .execute(&statement, &[&tenant.as_str(), &id])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        if deleted == 0 {
            return Err(LookupError::NotFound);
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn groups_of_device(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Vec<DeviceGroup>, LookupError> {
        let tx = self.begin(tenant).await?;
        let exists = tx.prepare_cached(EXISTS).await.map_err(query_error)?;
        if tx
            .query_opt(&exists, &[&tenant.as_str(), &id])
            .await
            .map_err(query_error)?
            .is_none()
        {
            return Err(LookupError::NotFound);
        }
        let statement = tx
            .prepare_cached(GROUPS_OF_DEVICE)
            .await
            .map_err(query_error)?;
        let rows = tx
            .query(&statement, &[&tenant.as_str(), &id])
            .await
            .map_err(query_error)?;
        tx.commit_read().await.map_err(query_error)?;
        Ok(rows
            .iter()
            .map(group_from_row)
            .collect::<Result<Vec<_>, _>>()?)
    }
}
