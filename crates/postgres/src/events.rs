//! The event log in PostgreSQL (issue 15): reading a tenant's events with their snapshots, and
//! pruning old ones. Events are written by the transactions that cause them
//! (`keeping::WriteStatements`); see migration V12 for what a row keeps.

use async_trait::async_trait;
use domain::{Alert, DeviceName, Freshness, StreamEventType, TenantId, Timestamp};
use ports::{DeviceStateChange, EventLog, EventPage, EventSubject, LoggedEvent, StoreError};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{corrupt_row, query_error};
use crate::keeping::{alert_from_row, ALERT_COLUMNS};
use crate::pool::PgStore;
use crate::rows::{parse_status, timestamp, window_from_row, WINDOW_COLUMNS};

/// The events after seq `$2`, at most `$3`, with the log's bounds, in one statement (so one
/// snapshot): a row with NULL events when there are none. The snapshots are read back in the
/// shape of their tables' rows, so the tables' decoders read them.
fn events_after_sql() -> String {
    format!(
        "WITH bounds AS ( \
            SELECT (SELECT min(seq) FROM events WHERE tenant_id = $1) AS first_seq, \
                   coalesce((SELECT last_seq FROM alert_event_counters WHERE tenant_id = $1), 0) \
                       AS last_seq) \
         SELECT b.first_seq, b.last_seq, e.seq AS event_seq, e.type AS event_type, \
            e.at AS event_at, e.group_ids AS event_group_ids, e.device_id AS subject_device_id, \
            e.device_name AS subject_device_name, e.subject AS subject_json, \
            {ALERT_COLUMNS}, {WINDOW_COLUMNS} \
         FROM bounds b \
         LEFT JOIN LATERAL (SELECT * FROM events x WHERE x.tenant_id = $1 AND x.seq > $2 \
                            ORDER BY x.seq LIMIT $3) e ON true \
         LEFT JOIN LATERAL jsonb_populate_record(NULL::alerts, \
            CASE WHEN e.type LIKE 'alert.%' THEN e.subject END) a ON true \
         LEFT JOIN LATERAL jsonb_populate_record(NULL::maintenance_windows, \
            CASE WHEN e.type LIKE 'window.%' THEN e.subject END) w ON true \
         ORDER BY e.seq"
    )
}

const PRUNE: &str = "SELECT events_prune($1, $2)";

fn freshness(value: &str) -> Option<Freshness> {
    [Freshness::Fresh, Freshness::Stale, Freshness::NoData]
        .into_iter()
        .find(|f| f.as_str() == value)
}

fn event_from_row(row: &Row) -> Result<LoggedEvent, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("event", reason);
    let kind: &str = row.try_get("event_type").map_err(query_error)?;
    let event_type = StreamEventType::parse(kind).ok_or_else(|| corrupt(&kind))?;
    let device_name = || -> Result<DeviceName, StoreError> {
        let name: Option<&str> = row.try_get("subject_device_name").map_err(query_error)?;
        DeviceName::parse(name.unwrap_or_default()).map_err(|e| corrupt(&e))
    };
    let subject = match event_type {
        StreamEventType::Alert(_) => EventSubject::Alert(Alert {
            record: alert_from_row(row)?,
            device_name: device_name()?,
        }),
        StreamEventType::WindowStarted | StreamEventType::WindowEnded => {
            EventSubject::Window(window_from_row(row)?)
        }
        StreamEventType::DeviceState => {
            let json: serde_json::Value = row.try_get("subject_json").map_err(query_error)?;
            let field = |key: &str| json.get(key).and_then(serde_json::Value::as_str);
            let status = field("alert_status").ok_or_else(|| corrupt(&json))?;
            let fresh = field("freshness").ok_or_else(|| corrupt(&json))?;
            let device_id: Option<Uuid> = row.try_get("subject_device_id").map_err(query_error)?;
            EventSubject::Device(DeviceStateChange {
                device_id: device_id.ok_or_else(|| corrupt(&"no device"))?,
                device_name: device_name()?,
                alert_status: parse_status(status)?,
                freshness: freshness(fresh).ok_or_else(|| corrupt(&fresh))?,
            })
        }
    };
    Ok(LoggedEvent {
        seq: row.try_get("event_seq").map_err(query_error)?,
        event_type,
        at: timestamp(row, "event_at")?,
        group_ids: row.try_get("event_group_ids").map_err(query_error)?,
        subject,
    })
}

#[async_trait]
impl EventLog for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant, after))]
    async fn events_after(
        &self,
        tenant: &TenantId,
        after: i64,
        limit: u32,
    ) -> Result<EventPage, StoreError> {
        let tx = self.reader(tenant).await?;
        let statement = tx.prepare(&events_after_sql()).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let limit = i64::from(limit.clamp(1, 1_000));
        let params: [&(dyn ToSql + Sync); 3] = [&tenant_id, &after, &limit];
        let rows = tx
            .run(|client| client.query(&statement, &params))
            .await
            .map_err(query_error)?;
        let mut page = EventPage::default();
        for row in &rows {
            page.first_retained = row.try_get(0).map_err(query_error)?;
            page.last_seq = row.try_get(1).map_err(query_error)?;
            let seq: Option<i64> = row.try_get("event_seq").map_err(query_error)?;
            if seq.is_some() {
                page.events.push(event_from_row(row)?);
            }
        }
        Ok(page)
    }

    #[tracing::instrument(skip_all)]
    async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let tx = self.service_reader().await?;
        let statement = tx.prepare(PRUNE).await.map_err(query_error)?;
        let at = before.get();
        let batch = i32::try_from(limit).unwrap_or(i32::MAX);
        let params: [&(dyn ToSql + Sync); 2] = [&at, &batch];
        let row = tx
            .run(|c| c.query_one(&statement, &params))
            .await
            .map_err(query_error)?;
        let gone: i64 = row.get(0);
        Ok(u64::try_from(gone).unwrap_or(0))
    }
}
