//! Maintenance windows in PostgreSQL. `recurring` is stored as `jsonb` in the API's shape.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::{
    Actor, Device, GroupSlug, ListQuery, MaintenanceWindow, NewMaintenanceWindow, Page, Recurrence,
    ScopeLabel, TenantId, Timestamp, WindowChanges, WindowDefinition, WindowSlug,
};
use ports::{
    CreateWindowError, LookupError, MaintenanceWindowRepository, ScopePreview, StoreError,
    UpdateWindowError,
};
use serde_json::{json, Value};
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{corrupt_row, query_error, unique_violation};
use crate::keeping::{
    announce_window, coverage as coverage_of, current_occurrence, ChangeParams, Changes,
    CoverageStatements, Scope, WindowEvent, WriteStatements,
};
use crate::lists::{fetch_page, name_filter};
use crate::pool::PgStore;
use crate::rows::{
    device_from_row, labels_to_json, window_from_row, DEVICE_COLUMNS, DEVICE_STATE_JOIN,
    WINDOW_COLUMNS,
};
use crate::tx::TenantTx;

fn list_sql() -> String {
    format!(
        "SELECT {WINDOW_COLUMNS} FROM maintenance_windows w WHERE w.tenant_id = $1 AND {} \
         ORDER BY w.starts_at DESC, w.window_id COLLATE \"C\" LIMIT $3 OFFSET $4",
        name_filter("w.name")
    )
}
fn count_sql() -> String {
    format!(
        "SELECT count(*) FROM maintenance_windows w WHERE w.tenant_id = $1 AND {}",
        name_filter("w.name")
    )
}
/// A transaction lock on the tenant's window count (keys of other tenants may collide: they
/// then only wait for each other's creations).
const LOCK_TENANT_WINDOWS: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('maintenance_windows:' || $1, 0))";
const COUNT_TENANT_WINDOWS: &str = "SELECT count(*) FROM maintenance_windows WHERE tenant_id = $1";
fn get_sql(lock: bool) -> String {
    let lock = if lock { " FOR UPDATE" } else { "" };
    format!("SELECT {WINDOW_COLUMNS} FROM maintenance_windows w WHERE w.tenant_id = $1 AND w.window_id = $2{lock}")
}
fn insert_sql() -> String {
    format!(
        "INSERT INTO maintenance_windows AS w (tenant_id, window_id, name, starts_at, ends_at, recurring, \
         site_ids, device_types, group_ids, enabled, created_by, updated_by, labels) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12) \
         RETURNING {WINDOW_COLUMNS}"
    )
}
fn update_sql() -> String {
    format!(
        "UPDATE maintenance_windows AS w SET name = $3, starts_at = $4, ends_at = $5, recurring = $6, \
         site_ids = $7, device_types = $8, group_ids = $9, enabled = $10, labels = $12, \
         updated_at = greatest(now(), w.updated_at), updated_by = $11 \
         WHERE w.tenant_id = $1 AND w.window_id = $2 RETURNING {WINDOW_COLUMNS}"
    )
}
/// A window's scope over devices `d`: each list that is set (`$2` sites, `$3` types, `$4`
/// group slugs) must hold the device's value, and the device must carry the labels `$5`; a
/// named group holds the members of its whole tree. The groups are found once per statement (an uncorrelated subquery), not per device.
fn scope_conditions() -> String {
    format!(
        "d.tenant_id = $1 \
         AND ($2::text[] IS NULL OR d.site_id = ANY($2)) \
         AND ($3::text[] IS NULL OR d.device_type = ANY($3)) \
         AND ($5::jsonb IS NULL OR d.labels @> $5) \
         AND ($4::text[] IS NULL OR EXISTS ( \
             SELECT 1 FROM device_group_members m \
             WHERE m.tenant_id = d.tenant_id AND m.device_id = d.id AND m.group_id = ANY(ARRAY( \
                WITH RECURSIVE {} SELECT id FROM named))))",
        crate::tree::named_trees("SELECT unnest($4::text[])")
    )
}
/// Devices in a window's scope, by name.
fn scope_sql() -> String {
    format!(
        "SELECT {DEVICE_COLUMNS} FROM devices d {DEVICE_STATE_JOIN} WHERE {} \
         ORDER BY d.name COLLATE \"C\"",
        scope_conditions()
    )
}
/// A dry run's look at a scope: its first `$6` devices, how many it holds, how many devices
/// the tenant has, and which of the slugs `$4` name no group.
fn preview_sql() -> [String; 3] {
    [
        format!("{} LIMIT $6", scope_sql()),
        format!(
            "SELECT (SELECT count(*) FROM devices d WHERE {}), \
             (SELECT count(*) FROM devices WHERE tenant_id = $1)",
            scope_conditions()
        ),
        UNKNOWN_GROUPS.to_owned(),
    ]
}
/// Those of the slugs `$2` that name no group of tenant `$1`, in the order given.
const UNKNOWN_GROUPS: &str = "SELECT u.slug FROM unnest($2::text[]) WITH ORDINALITY AS u(slug, n) \
     WHERE NOT EXISTS (SELECT 1 FROM device_groups g WHERE g.tenant_id = $1 AND g.group_id = u.slug) \
     ORDER BY u.n";
const DELETE: &str = "DELETE FROM maintenance_windows WHERE tenant_id = $1 AND window_id = $2";
/// The occurrence of window `$2` last announced as started (see migration V12).
const ANNOUNCED: &str =
    "SELECT starts_at FROM window_announcements WHERE tenant_id = $1 AND window_id = $2";
/// A deleted window's announcement, gone with it.
const DROP_ANNOUNCEMENT: &str = "DELETE FROM window_announcements \
     WHERE tenant_id = $1 AND window_id = $2 RETURNING starts_at";
/// What the windows covering devices `$2` are judged from, besides their memberships.
const DEVICE_SCOPES: &str =
    "SELECT id, site_id, device_type FROM devices WHERE tenant_id = $1 AND id = ANY($2)";

/// The stored shape of a recurrence (read back by `rows::recurrence_from_json`).
fn recurrence_to_json(r: &Recurrence) -> Value {
    let mut value = json!({
        "start_hour": r.start_hour(),
        "start_minute": r.start_minute(),
        "end_hour": r.end_hour(),
        "end_minute": r.end_minute(),
        "timezone": r.timezone(),
    });
    if let Some(days) = r.days() {
        value["dow"] = json!(days);
    }
    if let Some(days) = r.days_of_month() {
        value["days_of_month"] = json!(days);
    }
    value
}

fn labels(values: Option<&Vec<ScopeLabel>>) -> Option<Vec<&str>> {
    values.map(|v| v.iter().map(ScopeLabel::as_str).collect())
}

/// The labels a window asks for, as its `labels` column stores them.
fn labels_json(d: &WindowDefinition) -> Option<Json<Value>> {
    d.labels.as_ref().map(|l| Json(labels_to_json(l)))
}

fn slugs(values: Option<&Vec<GroupSlug>>) -> Option<Vec<&str>> {
    values.map(|v| v.iter().map(GroupSlug::as_str).collect())
}

/// Runs an insert or update whose parameters after tenant and slug are the definition's.
async fn write(
    tx: &TenantTx,
    sql: &str,
    tenant: &TenantId,
    actor: &Actor,
    window_id: &WindowSlug,
    d: &WindowDefinition,
) -> Result<Row, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query_one(
        &statement,
        &[
            &tenant.as_str(),
            &window_id.as_str(),
            &d.name.as_str(),
            &d.schedule.starts_at().get(),
            &d.schedule.ends_at().map(domain::Timestamp::get),
            &d.recurring.as_ref().map(recurrence_to_json),
            &labels(d.site_ids.as_ref()),
            &labels(d.device_types.as_ref()),
            &slugs(d.group_ids.as_ref()),
            &d.enabled,
            &actor.as_str(),
            &labels_json(d),
        ],
    )
    .await
}

async fn find(
    tx: &TenantTx,
    tenant: &TenantId,
    window_id: &WindowSlug,
    lock: bool,
) -> Result<Option<Row>, StoreError> {
    let statement = tx
        .prepare_cached(&get_sql(lock))
        .await
        .map_err(query_error)?;
    tx.query_opt(&statement, &[&tenant.as_str(), &window_id.as_str()])
        .await
        .map_err(query_error)
}

#[async_trait]
impl MaintenanceWindowRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_windows(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<Page<MaintenanceWindow>, StoreError> {
        let (rows, total) = fetch_page(self, &list_sql(), &count_sql(), tenant, query).await?;
        Ok(Page {
            items: rows.iter().map(window_from_row).collect::<Result<_, _>>()?,
            total,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn create_window(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        window: NewMaintenanceWindow,
    ) -> Result<MaintenanceWindow, CreateWindowError> {
        let tx = self.begin(tenant).await?;
        // The lock serialises the tenant's creations until commit, so the count stays true.
        tx.execute(LOCK_TENANT_WINDOWS, &[&tenant.as_str()])
            .await
            .map_err(query_error)?;
        let kept: i64 = tx
            .query_one(COUNT_TENANT_WINDOWS, &[&tenant.as_str()])
            .await
            .map_err(query_error)?
            .get(0);
        let limit = domain::window::WINDOWS_PER_TENANT_MAX;
        if usize::try_from(kept).unwrap_or(usize::MAX) >= limit {
            return Err(CreateWindowError::TooMany(limit));
        }
        let row = match write(
            &tx,
            &insert_sql(),
            tenant,
            actor,
            &window.window_id,
            &window.definition,
        )
        .await
        {
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
        let tx = self.begin(tenant).await?;
        let row = find(&tx, tenant, window_id, false).await?;
        tx.commit_read().await.map_err(query_error)?;
        Ok(window_from_row(&row.ok_or(LookupError::NotFound)?)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn update_window(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        window_id: &WindowSlug,
        changes: WindowChanges,
    ) -> Result<MaintenanceWindow, UpdateWindowError> {
        let tx = self.begin(tenant).await?;
        // Locked, so a concurrent update cannot slip between the check and the write.
        let current = find(&tx, tenant, window_id, true)
            .await?
            .ok_or(UpdateWindowError::NotFound)?;
        let definition = window_from_row(&current)?.definition.apply(changes)?;
        let row = write(&tx, &update_sql(), tenant, actor, window_id, &definition)
            .await
            .map_err(query_error)?;
        // Disabled, enabled or rescheduled: its start or end is logged now, not at the
        // evaluator's next pass.
        let announced = tx
            .query_opt(ANNOUNCED, &[&tenant.as_str(), &window_id.as_str()])
            .await
            .map_err(query_error)?
            .map(|r| crate::rows::timestamp(&r, 0))
            .transpose()?;
        let now = Timestamp::now();
        let mut changes = Changes::default();
        announce_window(
            &tx,
            tenant,
            window_id,
            announced,
            current_occurrence(&definition, now),
            now,
            &mut changes,
        )
        .await
        .map_err(query_error)?;
        if !changes.is_empty() {
            let writes = WriteStatements::prepare(&tx).await?;
            writes
                .run(&tx, &ChangeParams::of(tenant, &changes))
                .await
                .map_err(query_error)?;
        }
        tx.commit().await.map_err(query_error)?;
        Ok(window_from_row(&row)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn delete_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<(), LookupError> {
        let tx = self.begin(tenant).await?;
        let statement = tx.prepare_cached(DELETE).await.map_err(query_error)?;
        // An active window's end is logged, its row the event's snapshot: before it goes.
        let announced = tx
            .query_opt(DROP_ANNOUNCEMENT, &[&tenant.as_str(), &window_id.as_str()])
            .await
            .map_err(query_error)?;
        if announced.is_some() {
            let changes = Changes {
                window_events: vec![WindowEvent {
                    window_id: window_id.clone(),
                    event_type: domain::StreamEventType::WindowEnded,
                    at: Timestamp::now(),
                }],
                ..Changes::default()
            };
            let writes = WriteStatements::prepare(&tx).await?;
            writes
                .run(&tx, &ChangeParams::of(tenant, &changes))
                .await
                .map_err(query_error)?;
        }
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

    #[tracing::instrument(skip_all, fields(tenant = %tenant, devices = devices.len()))]
    async fn covering_windows(
        &self,
        tenant: &TenantId,
        devices: &[Uuid],
        now: Timestamp,
    ) -> Result<HashMap<Uuid, Vec<WindowSlug>>, StoreError> {
        if devices.is_empty() {
            return Ok(HashMap::new());
        }
        let tx = self.reader(tenant).await?;
        let scopes = tx.prepare(DEVICE_SCOPES).await.map_err(query_error)?;
        let coverage = CoverageStatements::prepare(tx.client()).await?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &devices];
        // The devices, the windows and the memberships they name: one round trip.
        let (rows, windows) = tx
            .run(|client| async {
                tokio::try_join!(
                    biased;
                    client.query(&scopes, &params),
                    coverage.fetch(client, tenant, devices, now),
                )
            })
            .await
            .map_err(query_error)?;
        let scopes = rows
            .iter()
            .map(|row| {
                let label = |index: usize| -> Result<Option<ScopeLabel>, StoreError> {
                    let value: Option<&str> = row.try_get(index).map_err(query_error)?;
                    value
                        .map(ScopeLabel::parse)
                        .transpose()
                        .map_err(|e| corrupt_row("device", e))
                };
                Ok(Scope {
                    id: row.try_get(0).map_err(query_error)?,
                    site_id: label(1)?,
                    device_type: label(2)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        coverage_of(&windows, &scopes, now)
    }

    async fn window_devices(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<(MaintenanceWindow, Vec<Device>), LookupError> {
        let tx = self.begin(tenant).await?;
        let window = window_from_row(
            &find(&tx, tenant, window_id, false)
                .await?
                .ok_or(LookupError::NotFound)?,
        )?;
        let d = &window.definition;
        let statement = tx.prepare_cached(&scope_sql()).await.map_err(query_error)?;
        let rows = tx
            .query(
                &statement,
                &[
                    &tenant.as_str(),
                    &labels(d.site_ids.as_ref()),
                    &labels(d.device_types.as_ref()),
                    &slugs(d.group_ids.as_ref()),
                    &labels_json(d),
                ],
            )
            .await
            .map_err(query_error)?;
        tx.commit_read().await.map_err(query_error)?;
        let devices = rows
            .iter()
            .map(device_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((window, devices))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn unknown_groups(
        &self,
        tenant: &TenantId,
        slugs: &[GroupSlug],
    ) -> Result<Vec<GroupSlug>, StoreError> {
        if slugs.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.reader(tenant).await?;
        let statement = tx.prepare(UNKNOWN_GROUPS).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let asked: Vec<&str> = slugs.iter().map(GroupSlug::as_str).collect();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &asked];
        let rows = tx
            .run(|client| client.query(&statement, &params))
            .await
            .map_err(query_error)?;
        unknown_from_rows(&rows)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn preview_scope(
        &self,
        tenant: &TenantId,
        definition: &WindowDefinition,
        limit: usize,
    ) -> Result<ScopePreview, StoreError> {
        let tx = self.reader(tenant).await?;
        let [page_sql, count_sql, unknown_sql] = preview_sql();
        let page = tx.prepare(&page_sql).await.map_err(query_error)?;
        let counts = tx.prepare(&count_sql).await.map_err(query_error)?;
        let unknown = tx.prepare(&unknown_sql).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let d = definition;
        let (sites, types, groups) = (
            labels(d.site_ids.as_ref()),
            labels(d.device_types.as_ref()),
            slugs(d.group_ids.as_ref()),
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let asked: Vec<&str> = groups.clone().unwrap_or_default();
        let wanted_labels = labels_json(d);
        let scope: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&tenant_id, &sites, &types, &groups, &wanted_labels, &limit];
        let by_slugs: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &asked];
        // The page, the counts and the unknown slugs: one round trip.
        let (rows, counted, missing) = tx
            .run(|client| async {
                tokio::try_join!(
                    biased;
                    client.query(&page, &scope),
                    client.query_one(&counts, &scope[..5]),
                    client.query(&unknown, &by_slugs),
                )
            })
            .await
            .map_err(query_error)?;
        let count = |index: usize| -> Result<u64, StoreError> {
            let n: i64 = counted.try_get(index).map_err(query_error)?;
            Ok(u64::try_from(n).unwrap_or_default())
        };
        Ok(ScopePreview {
            devices: rows
                .iter()
                .map(device_from_row)
                .collect::<Result<Vec<_>, _>>()?,
            in_scope: count(0)?,
            tenant_devices: count(1)?,
            unknown_groups: unknown_from_rows(&missing)?,
        })
    }
}

/// The slugs of [`UNKNOWN_GROUPS`] rows, each once.
fn unknown_from_rows(rows: &[Row]) -> Result<Vec<GroupSlug>, StoreError> {
    let mut found: Vec<GroupSlug> = Vec::new();
    for row in rows {
        let slug: &str = row.try_get(0).map_err(query_error)?;
        let slug = GroupSlug::parse(slug).map_err(|e| corrupt_row("group slug", e))?;
        if !found.contains(&slug) {
            found.push(slug);
        }
    }
    Ok(found)
}
