//! The time-driven evaluator in PostgreSQL: what time alone changes (devices turning stale,
//! windows starting or ending, acknowledgements running out), for every tenant with work.
//!
//! Several instances may run passes at once. Each change is recorded once because a pass
//! writes only under the device rows' locks (`FOR NO KEY UPDATE SKIP LOCKED`: a device another
//! writer holds waits for the next pass) and judges again what it reads after taking them;
//! the partial unique index on open alerts stands behind it.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::{TenantId, Timestamp};
use ports::{AlertEvaluator, Evaluation, StoreError};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::error::query_error;
use crate::keeping::{
    alert_from_row, announce_window, coverage, current_occurrence, device_states_of_sql,
    device_states_sql, kept_from_row, load_coverage, on_the_clock, open_alerts_sql, ChangeParams,
    Changes, CoverageStatements, Kept, WriteStatements, ALERT_COLUMNS, LOCK_FREE_DEVICES_FOR_STATE,
};
use crate::pool::PgStore;
use crate::rows::{timestamp, window_from_row, WINDOW_COLUMNS};

/// The tenant's windows whose announcement may have to move at `$2` (migration V12): enabled
/// ones not expired, and those announced as started, with the occurrence announced.
fn windows_to_announce_sql() -> String {
    format!(
        "SELECT {WINDOW_COLUMNS}, an.starts_at AS announced_from FROM maintenance_windows w \
         LEFT JOIN window_announcements an \
            ON an.tenant_id = w.tenant_id AND an.window_id = w.window_id \
         WHERE w.tenant_id = $1 AND (an.window_id IS NOT NULL \
            OR (w.enabled AND (w.ends_at IS NULL OR w.ends_at > $2)))"
    )
}

/// The tenants with anything time could change (migration V7's function, which sees past
/// row-level security).
const TENANTS_WITH_WORK: &str = "SELECT t FROM alert_evaluator_tenants() t";

/// The devices of the tenant that time may change at `$2`: those with an open alert, and those
/// whose latest reading is older than their `stale_after_s` (a pre-filter: the domain judges).
fn candidates_sql() -> String {
    device_states_sql(
        "(d.id IN (SELECT device_id FROM alerts WHERE tenant_id = $1 AND state = 'open') \
          OR (d.stale_after_s IS NOT NULL \
              AND l.ts <= $2::timestamptz - make_interval(secs => d.stale_after_s)))",
    )
}

fn tenant_open_alerts_sql() -> String {
    format!("SELECT {ALERT_COLUMNS} FROM alerts a WHERE a.tenant_id = $1 AND a.state = 'open'")
}

#[async_trait]
impl AlertEvaluator for PgStore {
    #[tracing::instrument(skip_all)]
    async fn evaluate(&self, now: Timestamp) -> Result<Evaluation, StoreError> {
        let tenants = self.tenants_with_work().await?;
        let mut evaluation = Evaluation::default();
        let mut failure = None;
        for tenant in tenants {
            evaluation.tenants += 1;
            // One tenant's failure does not hold up the others.
            if let Err(e) = self.announce_windows(&tenant, now).await {
                tracing::warn!(tenant = %tenant, error = %e, "announcing a tenant's windows failed");
                failure.get_or_insert(e);
            }
            match self.evaluate_tenant(&tenant, now).await {
                Ok(events) => evaluation.events += events,
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "evaluating a tenant's alerts failed");
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(evaluation),
        }
    }
}

impl PgStore {
    async fn tenants_with_work(&self) -> Result<Vec<TenantId>, StoreError> {
        let tx = self.service_reader().await?;
        let statement = tx.prepare(TENANTS_WITH_WORK).await.map_err(query_error)?;
        let rows = tx
            .run(|client| client.query(&statement, &[]))
            .await
            .map_err(query_error)?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let id: &str = row.get(0);
                TenantId::parse(id)
                    .inspect_err(
                        |e| tracing::warn!(tenant = id, error = %e, "stored tenant id is invalid"),
                    )
                    .ok()
            })
            .collect())
    }

    /// Logs the windows' starts and ends that time brought: each window whose current
    /// occurrence is not the one announced moves its announcement, compare-and-set, so of
    /// several passes at once only one logs each change. Judged on a snapshot first (a tenant
    /// with nothing to announce costs one read).
    async fn announce_windows(&self, tenant: &TenantId, now: Timestamp) -> Result<(), StoreError> {
        let now = Timestamp::now().max(now);
        let tx = self.reader(tenant).await?;
        let statement = tx
            .prepare(&windows_to_announce_sql())
            .await
            .map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let at = now.get();
        let params: [&(dyn ToSql + Sync); 2] = [&tenant_id, &at];
        let rows = tx
            .run(|client| client.query(&statement, &params))
            .await
            .map_err(query_error)?;
        // Its connection back before the next is taken (see `devices_due`).
        drop(tx);
        let mut moves = Vec::new();
        for row in &rows {
            let window = window_from_row(row)?;
            let announced: Option<time::OffsetDateTime> =
                row.try_get("announced_from").map_err(query_error)?;
            let announced = announced
                .map(|_| timestamp(row, "announced_from"))
                .transpose()?;
            let current = current_occurrence(&window.definition, now);
            if announced != current {
                moves.push((window.window_id, announced, current));
            }
        }
        if moves.is_empty() {
            return Ok(());
        }
        let tx = self.begin(tenant).await?;
        let mut changes = Changes::default();
        for (window_id, announced, current) in &moves {
            announce_window(
                &tx,
                tenant,
                window_id,
                *announced,
                *current,
                now,
                &mut changes,
            )
            .await
            .map_err(query_error)?;
        }
        if !changes.is_empty() {
            let writes = WriteStatements::prepare(&tx).await?;
            writes
                .run(&tx, &ChangeParams::of(tenant, &changes))
                .await
                .map_err(query_error)?;
        }
        tx.commit().await.map_err(query_error)?;
        Ok(())
    }

    /// One tenant's pass: what time changes is first judged on a snapshot, without locks (a
    /// tenant with nothing to do costs two read round trips); the devices with changes are
    /// then locked, read and judged again, and the changes written, in one transaction.
    async fn evaluate_tenant(&self, tenant: &TenantId, now: Timestamp) -> Result<u64, StoreError> {
        let due = self.devices_due(tenant, now).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let tx = self.begin(tenant).await?;
        let tenant_id = tenant.as_str();
        let (states_sql, open_sql) = (device_states_of_sql(), open_alerts_sql());
        let (lock, states, open_alerts, writes) = tokio::try_join!(
            tx.prepare_cached(LOCK_FREE_DEVICES_FOR_STATE),
            tx.prepare_cached(&states_sql),
            tx.prepare_cached(&open_sql),
            async { Ok::<_, tokio_postgres::Error>(WriteStatements::prepare(&tx).await) },
        )
        .map_err(query_error)?;
        let writes = writes?;
        let params: [&(dyn ToSql + Sync); 2] = [&tenant_id, &due];
        let (locked, rows, open) = tokio::try_join!(
            biased;
            tx.query(&lock, &params),
            tx.query(&states, &params),
            tx.query(&open_alerts, &params),
        )
        .map_err(query_error)?;
        // Judged at the clock of the locks, not the pass's start: a request that wrote these
        // devices meanwhile judged at its own (later) clock, and an older instant would undo
        // what it recorded (a window it saw end would be seen active again).
        let now = Timestamp::now().max(now);
        let locked: std::collections::HashSet<Uuid> =
            locked.iter().map(|r| r.get::<_, Uuid>(0)).collect();
        let kept = held(&rows, &open, |id| locked.contains(&id))?;
        let scopes: Vec<_> = kept.iter().map(Kept::scope).collect();
        let covering = load_coverage(&tx, tenant, &scopes, now).await?;
        let mut changes = Changes::default();
        for device in &kept {
            let windows = covering.get(&device.id).map_or(&[][..], Vec::as_slice);
            changes.merge(on_the_clock(device, now, windows));
        }
        let events = u64::try_from(changes.events.len()).unwrap_or(u64::MAX);
        if changes.is_empty() {
            tx.commit_read().await.map_err(query_error)?;
            return Ok(0);
        }
        writes
            .run(&tx, &ChangeParams::of(tenant, &changes))
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        Ok(events)
    }

    /// The devices of the tenant to which time brings a change at `now`, judged on a snapshot.
    async fn devices_due(
        &self,
        tenant: &TenantId,
        now: Timestamp,
    ) -> Result<Vec<Uuid>, StoreError> {
        let tx = self.reader(tenant).await?;
        let candidates = tx.prepare(&candidates_sql()).await.map_err(query_error)?;
        let open_alerts = tx
            .prepare(&tenant_open_alerts_sql())
            .await
            .map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let at = now.get();
        let params: [&(dyn ToSql + Sync); 2] = [&tenant_id, &at];
        let (rows, open) = tx
            .run(|client| async {
                tokio::try_join!(
                    biased;
                    client.query(&candidates, &params),
                    client.query(&open_alerts, &params[..1]),
                )
            })
            .await
            .map_err(query_error)?;
        // Its connection back before the next is taken: concurrent passes must not hold two
        // each (a pool of n would wait on itself with n passes).
        drop(tx);
        let kept = held(&rows, &open, |_| true)?;
        if kept.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = kept.iter().map(|d| d.id).collect();
        let scopes: Vec<_> = kept.iter().map(Kept::scope).collect();
        // The windows covering them, in a second read (their ids are known now).
        let tx = self.reader(tenant).await?;
        let statements = CoverageStatements::prepare(tx.client()).await?;
        let rows = tx
            .run(|client| statements.fetch(client, tenant, &ids, now))
            .await
            .map_err(query_error)?;
        let covering = coverage(&rows, &scopes, now)?;
        Ok(kept
            .iter()
            .filter(|device| {
                let windows = covering.get(&device.id).map_or(&[][..], Vec::as_slice);
                !on_the_clock(device, now, windows).is_empty()
            })
            .map(|device| device.id)
            .collect())
    }
}

/// The devices of `rows` that `keep` selects, in id order, with their open alerts.
fn held(
    rows: &[tokio_postgres::Row],
    open: &[tokio_postgres::Row],
    keep: impl Fn(Uuid) -> bool,
) -> Result<Vec<Kept>, StoreError> {
    let mut kept: HashMap<Uuid, Kept> = HashMap::with_capacity(rows.len());
    for row in rows {
        let device = kept_from_row(row)?;
        if keep(device.id) {
            kept.insert(device.id, device);
        }
    }
    for row in open {
        let alert = alert_from_row(row)?;
        if let Some(device) = kept.get_mut(&alert.device_id) {
            device.hold(alert);
        }
    }
    let mut kept: Vec<Kept> = kept.into_values().collect();
    kept.sort_unstable_by_key(|d| d.id);
    Ok(kept)
}
