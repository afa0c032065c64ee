//! Maintenance windows in PostgreSQL. `recurring` is stored as `jsonb` in the seed's shape.

use async_trait::async_trait;
use domain::{
    MaintenanceWindow, NewMaintenanceWindow, Recurrence, ScopeLabel, TenantId, WindowChanges,
    WindowDefinition, WindowName, WindowSchedule, WindowSlug,
};
use ports::{
    CreateWindowError, LookupError, MaintenanceWindowRepository, StoreError, UpdateWindowError,
};
use serde_json::{json, Value};
use tokio_postgres::Row;

use crate::error::{corrupt_row, query_error, unique_violation};
use crate::groups::timestamp;
use crate::{tenant_transaction, PgStore};

const COLUMNS: &str =
    "window_id, name, starts_at, ends_at, recurring, site_ids, device_types, enabled, created_at, updated_at";

fn list_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM maintenance_windows WHERE tenant_id = $1 \
         ORDER BY starts_at DESC, window_id COLLATE \"C\""
    )
}
fn get_sql(lock: bool) -> String {
    let lock = if lock { " FOR UPDATE" } else { "" };
    format!(
        "SELECT {COLUMNS} FROM maintenance_windows WHERE tenant_id = $1 AND window_id = $2{lock}"
    )
}
fn insert_sql() -> String {
    format!(
        "INSERT INTO maintenance_windows (tenant_id, window_id, name, starts_at, ends_at, recurring, \
         site_ids, device_types, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    )
}
fn update_sql() -> String {
    format!(
        "UPDATE maintenance_windows SET name = $3, starts_at = $4, ends_at = $5, recurring = $6, \
         site_ids = $7, device_types = $8, enabled = $9, updated_at = greatest(now(), updated_at) \
         WHERE tenant_id = $1 AND window_id = $2 RETURNING {COLUMNS}"
    )
}
const DELETE: &str = "DELETE FROM maintenance_windows WHERE tenant_id = $1 AND window_id = $2";

fn recurrence_to_json(r: &Recurrence) -> Value {
    let mut value = json!({ "start_hour": r.start_hour(), "end_hour": r.end_hour() });
    if let Some(days) = r.days() {
        value["dow"] = json!(days);
    }
    value
}

fn recurrence_from_json(value: &Value) -> Result<Recurrence, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("recurring", reason);
    let hour = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_i64)
            .ok_or_else(|| corrupt(&format!("no {key}")))
    };
    let days = match value.get("dow") {
        None | Some(Value::Null) => None,
        Some(Value::Array(days)) => Some(
            days.iter()
                .map(|d| d.as_i64().ok_or_else(|| corrupt(&"non-integer day")))
                .collect::<Result<Vec<i64>, _>>()?,
        ),
        Some(other) => return Err(corrupt(&format!("dow is {other}"))),
    };
    Recurrence::new(days.as_deref(), hour("start_hour")?, hour("end_hour")?)
        .map_err(|e| corrupt(&e))
}

fn labels(values: Option<&Vec<ScopeLabel>>) -> Option<Vec<&str>> {
    values.map(|v| v.iter().map(ScopeLabel::as_str).collect())
}

fn window_from_row(row: &Row) -> Result<MaintenanceWindow, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("window", reason);
    let slug: String = row.try_get("window_id").map_err(query_error)?;
    let name: String = row.try_get("name").map_err(query_error)?;
    let recurring: Option<Value> = row.try_get("recurring").map_err(query_error)?;
    let scope = |column: &str| -> Result<Option<Vec<ScopeLabel>>, StoreError> {
        let values: Option<Vec<String>> = row.try_get(column).map_err(query_error)?;
        values
            .map(|v| ScopeLabel::parse_list(&v))
            .transpose()
            .map_err(|e| corrupt(&e))
    };
    let ends_at = row
        .try_get::<_, Option<time::OffsetDateTime>>("ends_at")
        .map_err(query_error)?
        .map(|_| timestamp(row, "ends_at"))
        .transpose()?;
    Ok(MaintenanceWindow {
        window_id: WindowSlug::parse(&slug).map_err(|e| corrupt(&e))?,
        definition: WindowDefinition {
            name: WindowName::parse(&name).map_err(|e| corrupt(&e))?,
            schedule: WindowSchedule::new(timestamp(row, "starts_at")?, ends_at)
                .map_err(|e| corrupt(&e))?,
            recurring: recurring.as_ref().map(recurrence_from_json).transpose()?,
            site_ids: scope("site_ids")?,
            device_types: scope("device_types")?,
            enabled: row.try_get("enabled").map_err(query_error)?,
        },
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

#[async_trait]
impl MaintenanceWindowRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_windows(&self, tenant: &TenantId) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let mut client = self.client().await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        let statement = tx.prepare_cached(&list_sql()).await.map_err(query_error)?;
        let rows = tx
            .query(&statement, &[&tenant.as_str()])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        rows.iter().map(window_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn create_window(
        &self,
        tenant: &TenantId,
        window: NewMaintenanceWindow,
    ) -> Result<MaintenanceWindow, CreateWindowError> {
        let mut client = self.client().await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        let statement = tx
            .prepare_cached(&insert_sql())
            .await
            .map_err(query_error)?;
        let d = &window.definition;
        let inserted = tx
            .query_one(
                &statement,
                &[
                    &tenant.as_str(),
                    &window.window_id.as_str(),
                    &d.name.as_str(),
                    &d.schedule.starts_at().get(),
                    &d.schedule.ends_at().map(domain::Timestamp::get),
                    &d.recurring.as_ref().map(recurrence_to_json),
                    &labels(d.site_ids.as_ref()),
                    &labels(d.device_types.as_ref()),
                    &d.enabled,
                ],
            )
            .await;
        let row = match inserted {
            Ok(row) => row,
            Err(e) => {
                return Err(match unique_violation(&e) {
                    Some("maintenance_windows_pkey") => {
                        CreateWindowError::WindowIdTaken(window.window_id)
                    }
                    _ => query_error(e).into(),
                })
            }
        };
        tx.commit().await.map_err(query_error)?;
        Ok(window_from_row(&row)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn get_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<MaintenanceWindow, LookupError> {
        let mut client = self.client().await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        let statement = tx
            .prepare_cached(&get_sql(false))
            .await
            .map_err(query_error)?;
        let row = tx
            .query_opt(&statement, &[&tenant.as_str(), &window_id.as_str()])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        Ok(window_from_row(&row.ok_or(LookupError::NotFound)?)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn update_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
        changes: WindowChanges,
    ) -> Result<MaintenanceWindow, UpdateWindowError> {
        let mut client = self.client().await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        // Locked, so a concurrent update cannot slip between the check and the write.
        let select = tx
            .prepare_cached(&get_sql(true))
            .await
            .map_err(query_error)?;
        let current = tx
            .query_opt(&select, &[&tenant.as_str(), &window_id.as_str()])
            .await
            .map_err(query_error)?
            .ok_or(UpdateWindowError::NotFound)?;
        let d = window_from_row(&current)?.definition.apply(changes)?;
        let update = tx
            .prepare_cached(&update_sql())
            .await
            .map_err(query_error)?;
        let row = tx
            .query_one(
                &update,
                &[
                    &tenant.as_str(),
                    &window_id.as_str(),
                    &d.name.as_str(),
                    &d.schedule.starts_at().get(),
                    &d.schedule.ends_at().map(domain::Timestamp::get),
                    &d.recurring.as_ref().map(recurrence_to_json),
                    &labels(d.site_ids.as_ref()),
                    &labels(d.device_types.as_ref()),
                    &d.enabled,
                ],
            )
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        Ok(window_from_row(&row)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn delete_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<(), LookupError> {
        let mut client = self.client().await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        let statement = tx.prepare_cached(DELETE).await.map_err(query_error)?;
        let deleted = tx
            .execute(&statement, &[&tenant.as_str(), &window_id.as_str()])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        if deleted == 0 {
            return Err(LookupError::NotFound);
        }
        Ok(())
    }
}
