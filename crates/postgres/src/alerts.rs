//! Alerts in PostgreSQL: lists, one alert with its events, acknowledgements, and what a window
//! muted. Alerts are opened and changed by the writes that change a device's state
//! (`keeping`), and by the evaluator.

use async_trait::async_trait;
use domain::alerting::{self, AckError};
use domain::{
    Acknowledgement, Alert, AlertCursor, AlertEvent, AlertRecord, DeviceName, EventType,
    NewAlertEvent, Severity, TenantId, Timestamp, WindowSlug,
};
use ports::{
    AckAlertError, AlertListError, AlertPage, AlertQuery, AlertRepository, GroupKey, LookupError,
    StoreError,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{corrupt_row, query_error};
use crate::keeping::{
    alert_from_row, window_slugs, ChangeParams, Changes, WriteStatements, ALERT_COLUMNS,
};
use crate::pool::PgStore;
use crate::rows::timestamp;

/// A page of alerts: `$2` state, `$3` severity, `$4` kind, `$5` device, `$6`/`$7` the group by
/// id or slug, `$8` suppressed, `$9` acknowledged (NULL: any), after the cursor `$10`/`$11`
/// (exclusive), `$12` rows at most; newest opened first, then greatest id.
fn list_sql() -> String {
    format!(
        "SELECT {ALERT_COLUMNS}, d.name AS device_name FROM alerts a \
         JOIN devices d ON d.tenant_id = a.tenant_id AND d.id = a.device_id \
         WHERE a.tenant_id = $1 \
           AND ($2::text IS NULL OR a.state = $2) \
           AND ($3::text IS NULL OR a.severity = $3) \
           AND ($4::text IS NULL OR a.kind = $4) \
           AND ($5::uuid IS NULL OR a.device_id = $5) \
           AND (($6::uuid IS NULL AND $7::text IS NULL) OR a.device_id IN ( \
                SELECT m.device_id FROM device_group_members m \
                JOIN device_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
                WHERE m.tenant_id = $1 AND (g.id = $6 OR g.group_id = $7))) \
           AND ($8::bool IS NULL OR (cardinality(a.suppressed_by) > 0) = $8) \
           AND ($9::bool IS NULL OR (a.ack_by IS NOT NULL) = $9) \
           AND ($10::timestamptz IS NULL OR (a.opened_at, a.id) < ($10, $11::uuid)) \
         ORDER BY a.opened_at DESC, a.id DESC LIMIT $12"
    )
}
const GROUP_EXISTS: &str =
    "SELECT 1 FROM device_groups WHERE tenant_id = $1 AND (id = $2 OR group_id = $3)";
const DEVICE_EXISTS: &str = "SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2";
fn get_sql() -> String {
    format!(
        "SELECT {ALERT_COLUMNS}, d.name AS device_name FROM alerts a \
         JOIN devices d ON d.tenant_id = a.tenant_id AND d.id = a.device_id \
         WHERE a.tenant_id = $1 AND a.id = $2"
    )
}
/// Locks the device of alert `$2`, as every writer of its alerts does (see `keeping`).
const LOCK_DEVICE_OF_ALERT: &str = "SELECT d.id FROM devices d \
     WHERE d.tenant_id = $1 AND d.id = (SELECT device_id FROM alerts WHERE tenant_id = $1 AND id = $2) \
     FOR NO KEY UPDATE";
const EVENTS: &str = "SELECT seq, alert_id, type, at, severity, value, window_ids \
     FROM alert_events WHERE tenant_id = $1 AND alert_id = $2 ORDER BY seq";
/// Alerts with an event muted by window `$2` at an instant in `[$3, $4)` (`$4` NULL: no end),
/// oldest opened first.
fn muted_sql() -> String {
    format!(
        "SELECT {ALERT_COLUMNS}, d.name AS device_name FROM alerts a \
         JOIN devices d ON d.tenant_id = a.tenant_id AND d.id = a.device_id \
         WHERE a.tenant_id = $1 AND a.id IN ( \
            SELECT e.alert_id FROM alert_events e \
            WHERE e.tenant_id = $1 AND e.window_ids <> '{{}}' AND $2 = ANY(e.window_ids) \
              AND e.at >= $3 AND ($4::timestamptz IS NULL OR e.at < $4)) \
         ORDER BY a.opened_at, a.id"
    )
}

/// An alert with its device's name, from a row of [`ALERT_COLUMNS`] and `device_name`.
fn alert_with_name(row: &Row) -> Result<Alert, StoreError> {
    let name: &str = row.try_get("device_name").map_err(query_error)?;
    Ok(Alert {
        record: alert_from_row(row)?,
        device_name: DeviceName::parse(name).map_err(|e| corrupt_row("device", e))?,
    })
}

fn event_from_row(row: &Row) -> Result<AlertEvent, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("alert event", reason);
    let event_type: &str = row.try_get("type").map_err(query_error)?;
    let severity: &str = row.try_get("severity").map_err(query_error)?;
    let window_ids: Vec<String> = row.try_get("window_ids").map_err(query_error)?;
    Ok(AlertEvent {
        seq: row.try_get("seq").map_err(query_error)?,
        alert_id: row.try_get("alert_id").map_err(query_error)?,
        event: NewAlertEvent {
            event_type: EventType::parse(event_type).ok_or_else(|| corrupt(&event_type))?,
            at: timestamp(row, "at")?,
            severity: Severity::parse(severity).ok_or_else(|| corrupt(&severity))?,
            value: row.try_get("value").map_err(query_error)?,
            window_ids: window_slugs(&window_ids)?,
        },
    })
}

impl PgStore {
    /// Runs `change` on the alert under its device's lock and records what it returns, in one
    /// transaction. `Ok(None)` from `change`: nothing to record.
    async fn change_alert(
        &self,
        tenant: &TenantId,
        id: Uuid,
        change: impl FnOnce(&AlertRecord) -> Result<Option<alerting::Transition>, AckError>,
    ) -> Result<Alert, AckAlertError> {
        let tx = self.begin(tenant).await?;
        let select_sql = get_sql();
        let (lock, select, writes) = tokio::try_join!(
            tx.prepare_cached(LOCK_DEVICE_OF_ALERT),
            tx.prepare_cached(&select_sql),
            async { Ok::<_, tokio_postgres::Error>(WriteStatements::prepare(&tx).await) },
        )
        .map_err(query_error)?;
        let writes = writes?;
        // Locked, then read in a statement of its own: the alert as the lock's previous holder
        // left it (every writer of it holds the lock until it commits). One round trip.
        let tenant_id = tenant.as_str();
        let params: [&(dyn ToSql + Sync); 2] = [&tenant_id, &id];
        let (_, row) = tokio::try_join!(
            biased;
            tx.execute(&lock, &params),
            tx.query_opt(&select, &params),
        )
        .map_err(query_error)?;
        let row = row.ok_or(AckAlertError::NotFound)?;
        let mut alert = alert_with_name(&row)?;
        let transition =
            change(&alert.record).map_err(|AckError::Resolved| AckAlertError::Resolved)?;
        let Some(transition) = transition else {
            tx.commit_read().await.map_err(query_error)?;
            return Ok(alert);
        };
        alert.record = transition.alert.clone();
        let mut changes = Changes::default();
        changes.record(transition);
        writes
            .run(&tx, &ChangeParams::of(tenant, &changes))
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        Ok(alert)
    }
}

#[async_trait]
impl AlertRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_alerts(
        &self,
        tenant: &TenantId,
        query: &AlertQuery,
    ) -> Result<AlertPage, AlertListError> {
        let tx = self.reader(tenant).await?;
        let list = tx.prepare(&list_sql()).await.map_err(query_error)?;
        let group_exists = tx.prepare(GROUP_EXISTS).await.map_err(query_error)?;
        let device_exists = tx.prepare(DEVICE_EXISTS).await.map_err(query_error)?;
        let f = &query.filter;
        let tenant_id = tenant.as_str();
        let (group_id, group_slug) = match &f.group {
            None => (None, None),
            Some(GroupKey::Id(id)) => (Some(*id), None),
            Some(GroupKey::Slug(slug)) => (None, Some(slug.as_str())),
        };
        let state = f.state.map(domain::AlertState::as_str);
        let severity = f.severity.map(Severity::as_str);
        let kind = f.kind.map(domain::AlertKind::as_str);
        let after_at = query.after.map(|c| c.opened_at.get());
        let after_id = query.after.map(|c| c.id);
        // One more than asked: whether there is a next page.
        let limit = i64::from(query.limit) + 1;
        let params: [&(dyn ToSql + Sync); 12] = [
            &tenant_id,
            &state,
            &severity,
            &kind,
            &f.device_id,
            &group_id,
            &group_slug,
            &f.suppressed,
            &f.acknowledged,
            &after_at,
            &after_id,
            &limit,
        ];
        // Whether the group and device named exist, and the page: one round trip.
        let (group, device, rows) = tx
            .run(|client| async {
                tokio::try_join!(
                    biased;
                    async {
                        if f.group.is_none() {
                            return Ok(None);
                        }
                        client
                            .query_opt(&group_exists, &[&tenant_id, &group_id, &group_slug])
                            .await
                            .map(Some)
                    },
                    async {
                        let Some(device) = &f.device_id else {
                            return Ok(None);
                        };
                        client
                            .query_opt(&device_exists, &[&tenant_id, device])
                            .await
                            .map(Some)
                    },
                    client.query(&list, &params),
                )
            })
            .await
            .map_err(query_error)?;
        if matches!(group, Some(None)) {
            return Err(AlertListError::GroupNotFound);
        }
        if matches!(device, Some(None)) {
            return Err(AlertListError::DeviceNotFound);
        }
        let mut alerts = rows
            .iter()
            .map(alert_with_name)
            .collect::<Result<Vec<_>, _>>()?;
        let page = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let next = if alerts.len() > page {
            alerts.truncate(page);
            alerts.last().map(|a| AlertCursor {
                opened_at: a.record.opened_at,
                id: a.record.id,
            })
        } else {
            None
        };
        Ok(AlertPage { alerts, next })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn get_alert(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<(Alert, Vec<AlertEvent>), LookupError> {
        let tx = self.reader(tenant).await?;
        let alert = tx.prepare(&get_sql()).await.map_err(query_error)?;
        let events = tx.prepare(EVENTS).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn ToSql + Sync); 2] = [&tenant_id, &id];
        let (row, events) = tx
            .run(|client| async {
                tokio::try_join!(
                    biased;
                    client.query_opt(&alert, &params),
                    client.query(&events, &params),
                )
            })
            .await
            .map_err(query_error)?;
        let alert = alert_with_name(&row.ok_or(LookupError::NotFound)?)?;
        let events = events
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((alert, events))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn acknowledge(
        &self,
        tenant: &TenantId,
        id: Uuid,
        ack: Acknowledgement,
    ) -> Result<Alert, AckAlertError> {
        self.change_alert(tenant, id, |alert| {
            alerting::acknowledge(alert, ack).map(Some)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn unacknowledge(
        &self,
        tenant: &TenantId,
        id: Uuid,
        at: Timestamp,
    ) -> Result<Alert, AckAlertError> {
        self.change_alert(tenant, id, |alert| alerting::unacknowledge(alert, at))
            .await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn muted_by_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
        from: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<Vec<Alert>, StoreError> {
        let tx = self.reader(tenant).await?;
        let statement = tx.prepare(&muted_sql()).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let window = window_id.as_str();
        let from = from.get();
        let until = until.map(Timestamp::get);
        let params: [&(dyn ToSql + Sync); 4] = [&tenant_id, &window, &from, &until];
        let rows = tx
            .run(|client| client.query(&statement, &params))
            .await
            .map_err(query_error)?;
        rows.iter().map(alert_with_name).collect()
    }
}
