//! Devices in PostgreSQL.

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::{
    Actor, Device, DeviceChanges, DeviceFilter, DeviceGroup, DeviceSpec, GroupSlug, Labels,
    ListQuery, NewDevice, Page, TenantId,
};
use ports::{CreateDeviceError, DeviceRepository, LookupError, StoreError, UpdateDeviceError};
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

use crate::error::{corrupt_row, query_error, unique_violation};
use crate::keeping::{
    after_thresholds, alert_from_row, device_states_of_sql, judge_with_coverage, kept_from_row,
    open_alerts_sql, ChangeParams, WriteStatements, LOCK_DEVICES_FOR_STATE,
};
use crate::lists::name_filter;
use crate::membership;
use crate::pool::PgStore;
use crate::rows::{
    device_from_row, group_columns, group_from_row, DEVICE_COLUMNS, DEVICE_COLUMNS_NO_STATE,
    DEVICE_STATE_JOIN,
};

/// The SQL of a filtered list page and of its count. `$1` is the tenant, `$2` the name filter,
/// then one parameter per condition of `filter` that is set (in [`FilterParams`] order); the
/// page adds its limit and offset after them. Only the conditions given are in the statement,
/// so the planner sees `labels @> $n` alone and takes the GIN index for it.
fn list_sql(filter: &DeviceFilter) -> (String, String) {
    let mut conditions = vec![name_filter("d.name")];
    let mut next = 3;
    let mut add = |condition: &str| {
        conditions.push(condition.replace('$', &format!("${next}")));
        next += 1;
    };
    if filter.site_id.is_some() {
        add("d.site_id = $");
    }
    if filter.device_type.is_some() {
        add("d.device_type = $");
    }
    if filter.status.is_some() {
        add("d.status = $");
    }
    if filter.alert_status.is_some() {
        // No kept state (no reading yet) is `normal`, as the domain says.
        add("coalesce(l.alert_status, 'normal') = $");
    }
    if !filter.labels().is_empty() {
        add("d.labels @> $::jsonb");
    }
    let conditions = conditions.join(" AND ");
    let (limit, offset) = (next, next + 1);
    let page = if filter.alert_status.is_some() {
        // The kept state decides which devices match: joined before the page is cut.
        format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d {DEVICE_STATE_JOIN} \
             WHERE d.tenant_id = $1 AND {conditions} \
             ORDER BY d.name COLLATE \"C\" LIMIT ${limit} OFFSET ${offset}"
        )
    } else {
        // The page is cut first, then only its devices are joined to their kept state: joining
        // every match before the sort cost a lookup per match (30 ms for a page of 100 out of
        // 10,000).
        format!(
            "SELECT {DEVICE_COLUMNS} FROM ( \
                SELECT * FROM devices d WHERE d.tenant_id = $1 AND {conditions} \
                ORDER BY d.name COLLATE \"C\" LIMIT ${limit} OFFSET ${offset}) d \
             {DEVICE_STATE_JOIN} ORDER BY d.name COLLATE \"C\""
        )
    };
    let join = if filter.alert_status.is_some() {
        DEVICE_STATE_JOIN
    } else {
        ""
    };
    // The counts only when the scope revision (migration V17) is not `$n` (the kept counts').
    // A CASE evaluates its subqueries only in the branch taken.
    let counts = format!(
        "WITH r AS MATERIALIZED (SELECT coalesce(sum(revision), 0)::bigint AS scope \
            FROM tenant_scope_revisions WHERE tenant_id = $1) \
         SELECT r.scope, \
            CASE WHEN r.scope = ${next} THEN NULL ELSE ( \
                SELECT count(*) FROM devices d {join} WHERE d.tenant_id = $1 AND {conditions}) END, \
            CASE WHEN r.scope = ${next} THEN NULL ELSE ( \
                SELECT count(*) FROM devices d WHERE d.tenant_id = $1) END \
         FROM r"
    );
    (page, counts)
}

/// For the rest of the transaction, a sort (incremental ones included: the unique
/// `(tenant_id, name)` index is ordered by the tenant, then the database's collation) costs more
/// than any other plan: a page of a filter that matches most devices is then a walk of
/// `devices_name_order_idx` (migration V18) that stops once the page is full. The planner cannot
/// see that itself: it has no statistics of label containment to tell a filter matching 10,000
/// devices from one matching 100.
const NO_SORT: &str = "SELECT set_config('enable_sort', 'off', true), \
     set_config('enable_incremental_sort', 'off', true)";

/// The counts a device list needs: the filter's matches (the total it answers) and the tenant's
/// devices (which tell how selective the filter is), at the scope revision they were read at.
/// Only writes of devices change them, and every such write moves the scope revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListCounts {
    scope: i64,
    matches: i64,
    total: i64,
}

impl ListCounts {
    /// Whether walking the devices in name order, skipping those that do not match, reads
    /// fewer devices than reading every match and sorting them: the walk reads about
    /// `(offset + limit) × total / matches` devices to fill the page.
    fn walk_is_cheaper(self, limit: Option<i64>, offset: i64) -> bool {
        let Some(limit) = limit else {
            return false;
        };
        let wanted = i128::from(offset) + i128::from(limit);
        wanted * i128::from(self.total) <= i128::from(self.matches) * i128::from(self.matches)
    }
}

/// Kept [`ListCounts`] by tenant and filter (its conditions and name filter, spelt by `Debug`),
/// the least used going first beyond [`KeptListCounts::BYTES`].
pub(crate) struct KeptListCounts(quick_cache::sync::Cache<(String, String), ListCounts, KeySize>);

/// What a kept count weighs: its key's text (a filter of 32 long labels is kilobytes) and the
/// entry.
#[derive(Clone)]
struct KeySize;

impl quick_cache::Weighter<(String, String), ListCounts> for KeySize {
    fn weight(&self, key: &(String, String), _: &ListCounts) -> u64 {
        (key.0.len() + key.1.len() + std::mem::size_of::<((String, String), ListCounts)>()) as u64
    }
}

impl KeptListCounts {
    /// Memory the kept counts may take.
    const BYTES: u64 = 1024 * 1024;

    fn get(&self, key: &(String, String)) -> Option<ListCounts> {
        self.0.get(key)
    }

    fn insert(&self, key: (String, String), counts: ListCounts) {
        self.0.insert(key, counts);
    }
}

impl Default for KeptListCounts {
    fn default() -> Self {
        Self(quick_cache::sync::Cache::with_weighter(
            1024,
            Self::BYTES,
            KeySize,
        ))
    }
}

/// The values of a filter's conditions that are set, in the order [`list_sql`] numbers them.
struct FilterParams {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl FilterParams {
    fn of(filter: &DeviceFilter) -> Self {
        let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(site) = &filter.site_id {
            values.push(Box::new(site.as_str().to_owned()));
        }
        if let Some(kind) = &filter.device_type {
            values.push(Box::new(kind.as_str().to_owned()));
        }
        if let Some(status) = filter.status {
            values.push(Box::new(status.as_str()));
        }
        if let Some(status) = filter.alert_status {
            values.push(Box::new(status.as_str()));
        }
        if !filter.labels().is_empty() {
            values.push(Box::new(Json(labels_json(filter.labels()))));
        }
        Self { values }
    }
}

/// Labels as the `labels` column holds them.
fn labels_json(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
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
         created_by, updated_by, stale_after_s, labels) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14) \
         RETURNING {DEVICE_COLUMNS_NO_STATE}"
    )
}
fn update_sql() -> String {
    format!(
        "UPDATE devices AS d SET name = $3, unit = $4, status = $5, site_id = $6, device_type = $7, \
         threshold_critical_lower = $8, threshold_warning_lower = $9, threshold_warning_upper = $10, \
         threshold_critical_upper = $11, updated_at = greatest(now(), d.updated_at), updated_by = $12, \
         stale_after_s = $13, labels = $14 \
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
    labels: Json<BTreeMap<String, String>>,
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
            labels: Json(labels_json(&spec.labels)),
        }
    }
}

#[async_trait]
impl DeviceRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_devices(
        &self,
        tenant: &TenantId,
        filter: &DeviceFilter,
        query: &ListQuery,
    ) -> Result<Page<Device>, StoreError> {
        if filter.matches_nothing() {
            return Ok(Page {
                items: Vec::new(),
                total: 0,
            });
        }
        let (page_sql, counts_sql) = list_sql(filter);
        let tenant_id = tenant.as_str();
        let name = query.name_contains();
        let limit = query.limit().map(i64::from);
        let offset = i64::from(query.offset());
        let conditions = FilterParams::of(filter);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant_id, &name];
        params.extend(
            conditions
                .values
                .iter()
                .map(|v| v.as_ref() as &(dyn ToSql + Sync)),
        );
        // What the alert status filter matches moves with readings, not with the scope.
        let key = (filter.alert_status.is_none())
            .then(|| (tenant_id.to_owned(), format!("{filter:?}/{name:?}")));
        let kept = key.as_ref().and_then(|k| self.list_counts.get(k));
        let counts = {
            let tx = self.reader(tenant).await?;
            let statement = tx.prepare(&counts_sql).await.map_err(query_error)?;
            // -1: no kept counts (a sum of revisions is never negative).
            let kept_scope = kept.map_or(-1, |k| k.scope);
            let mut with_scope = params.clone();
            with_scope.push(&kept_scope);
            let row = tx
                .run(|client| client.query_one(&statement, &with_scope))
                .await
                .map_err(query_error)?;
            let scope: i64 = row.get(0);
            match (
                kept,
                row.get::<_, Option<i64>>(1),
                row.get::<_, Option<i64>>(2),
            ) {
                (Some(kept), None, None) if kept.scope == scope => kept,
                (_, Some(matches), Some(total)) => {
                    let counts = ListCounts {
                        scope,
                        matches,
                        total,
                    };
                    if let Some(key) = key {
                        self.list_counts.insert(key, counts);
                    }
                    counts
                }
                _ => return Err(StoreError::Unknown(anyhow::anyhow!("counts not read"))),
            }
        };
        let rows = if counts.matches == 0 || offset >= counts.matches {
            Vec::new()
        } else {
            let walk = filter.alert_status.is_none() && counts.walk_is_cheaper(limit, offset);
            // The walk is a statement of its own, so its plans (a generic one is kept after a
            // few runs, whatever the settings then) are only ever made with sorts off.
            let page_sql = if walk {
                format!("{page_sql} /* walk */")
            } else {
                page_sql
            };
            let tx = self.reader(tenant).await?;
            let page = tx.prepare(&page_sql).await.map_err(query_error)?;
            let no_sort = tx.prepare(NO_SORT).await.map_err(query_error)?;
            params.push(&limit);
            params.push(&offset);
            // Both sent at the first poll (see `ReadTx::run`), so both run inside the
            // transaction, in order.
            tx.run(|client| async {
                let no_sort = async {
                    if walk {
                        client.execute(&no_sort, &[]).await?;
                    }
                    Ok(())
                };
                let ((), rows) = tokio::try_join!(biased; no_sort, client.query(&page, &params))?;
                Ok(rows)
            })
            .await
            .map_err(query_error)?
        };
        Ok(Page {
            total: u64::try_from(counts.matches).unwrap_or_default(),
            items: rows.iter().map(device_from_row).collect::<Result<_, _>>()?,
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
        // Before any row lock (the module docs of `membership`): the insert's own included.
        membership::lock(&tx, tenant).await?;
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
                    &p.labels,
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
        membership::refresh_device(&tx, tenant, device.id).await?;
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
        // Before the device's row lock (the module docs of `membership`).
        membership::lock(&tx, tenant).await?;
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
                    &p.labels,
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
        // Its dynamic groups follow the new values before the windows are judged by them.
        membership::refresh_device(&tx, tenant, id).await?;
        // New thresholds judge the latest reading again, in this transaction; the windows
        // covering the device are those of its new site, type, labels and groups.
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
        // Before the device's row: a filter write may be inserting its memberships.
        membership::lock(&tx, tenant).await?;
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

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn groups_reaching_device(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Vec<GroupSlug>, LookupError> {
        let tx = self.reader(tenant).await?;
        let reaching_sql = crate::tree::groups_reaching_device();
        let (exists, reaching) =
            tokio::try_join!(tx.prepare(EXISTS), tx.prepare(&reaching_sql)).map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &id];
        let (found, rows) = tx
            .run(|client| async {
                tokio::try_join!(
                    biased;
                    client.query_opt(&exists, &params),
                    client.query(&reaching, &params),
                )
            })
            .await
            .map_err(query_error)?;
        if found.is_none() {
            return Err(LookupError::NotFound);
        }
        rows.iter()
            .map(|row| {
                let slug: &str = row.try_get(0).map_err(query_error)?;
                GroupSlug::parse(slug).map_err(|e| corrupt_row("device group", e).into())
            })
            .collect()
    }
}
