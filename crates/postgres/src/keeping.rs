//! The device state and the alerts kept at write time: what the writes that change a device's
//! latest reading or thresholds (ingest, device updates), acknowledgements and the evaluator
//! share. The domain judges (`DeviceState`, `domain::alerting`'s rules); this module loads what
//! they judge, in as few round trips as it can, and writes back what they return with array
//! parameters.
//!
//! Every writer of a device's state or alerts first holds the device's row lock
//! (`FOR NO KEY UPDATE`, taken in id order when there are several), then reads state and open
//! alerts: so it judges what the previous writer committed, and concurrent writers of one
//! device apply one after the other. The lock does not block readings' foreign-key checks
//! (`FOR KEY SHARE`). The partial unique index `alerts_one_open_per_device_kind` stands behind
//! the lock: two open alerts of one kind for one device cannot be stored at all.

use std::collections::HashMap;

use domain::alerting::{self, Transition};
use domain::{
    AckMode, AckNote, Acknowledgement, AlertKind, AlertRecord, AlertState, AlertStatus,
    DeviceState, Freshness, GroupSlug, Labels, NewAlertEvent, ReadingPoint, ScopeLabel, Severity,
    StaleAfter, StreamEventType, TenantId, Thresholds, Timestamp, WindowSlug,
};
use ports::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};
use uuid::Uuid;

use crate::error::{corrupt_row, query_error};
use crate::rows::{actor, state_from_row, timestamp, window_from_row, WINDOW_COLUMNS};

/// Alert columns, qualified by the alias `a`, as [`alert_from_row`] reads them.
pub(crate) const ALERT_COLUMNS: &str =
    "a.id, a.device_id, a.kind, a.severity, a.peak_severity, a.state, a.opened_at, \
     a.resolved_at, a.last_value, a.suppressed_by, a.ack_by, a.ack_at, a.ack_mode, a.ack_until, \
     a.ack_note";

/// The open alerts of devices `$2` (all kinds).
pub(crate) fn open_alerts_sql() -> String {
    format!(
        "SELECT {ALERT_COLUMNS} FROM alerts a \
         WHERE a.tenant_id = $1 AND a.device_id = ANY($2) AND a.state = 'open'"
    )
}

/// Locks those of devices `$2` the tenant has, in id order (as every writer of several devices
/// takes them), until the transaction ends.
pub(crate) const LOCK_DEVICES_FOR_STATE: &str = "SELECT d.id FROM devices d \
     WHERE d.tenant_id = $1 AND d.id = ANY($2) ORDER BY d.id FOR NO KEY UPDATE";

/// As [`LOCK_DEVICES_FOR_STATE`], skipping (and leaving out of the answer) devices another
/// transaction holds: for the evaluator, which never waits for a writer.
pub(crate) const LOCK_FREE_DEVICES_FOR_STATE: &str = "SELECT d.id FROM devices d \
     WHERE d.tenant_id = $1 AND d.id = ANY($2) ORDER BY d.id FOR NO KEY UPDATE SKIP LOCKED";

/// What the state of devices `$2` is judged from, as [`kept_from_row`] decodes it. Sent after
/// the lock, in a statement of its own: in READ COMMITTED a statement sees what was committed
/// when it started, so this one sees what the lock's previous holder wrote (a locking
/// statement's other columns may predate the wait for the lock).
pub(crate) fn device_states_sql(condition: &str) -> String {
    format!(
        "SELECT d.id, d.site_id, d.device_type, \
            d.threshold_critical_lower, d.threshold_warning_lower, d.threshold_warning_upper, \
            d.threshold_critical_upper, d.stale_after_s, \
            l.ts, l.value, l.alert_status, coalesce(l.since, l.ts) \
         FROM devices d \
         LEFT JOIN latest_readings l ON l.tenant_id = d.tenant_id AND l.device_id = d.id \
         WHERE d.tenant_id = $1 AND {condition}"
    )
}

/// [`device_states_sql`] of devices `$2`.
pub(crate) fn device_states_of_sql() -> String {
    device_states_sql("d.id = ANY($2)")
}

/// Writes each listed device's state (`$2` ids, `$3` instants and `$4` values of the latest
/// reading, `$5` statuses, `$6` since).
pub(crate) const KEEP_STATE: &str = "INSERT INTO latest_readings AS l \
        (tenant_id, device_id, ts, value, alert_status, since) \
     SELECT $1, * FROM unnest($2::uuid[], $3::timestamptz[], $4::float8[], $5::text[], \
                              $6::timestamptz[]) \
     ON CONFLICT (tenant_id, device_id) DO UPDATE SET ts = EXCLUDED.ts, value = EXCLUDED.value, \
        alert_status = EXCLUDED.alert_status, since = EXCLUDED.since";

/// Stores alerts whole, by id (new ones inserted, known ones replaced). Window ids travel
/// comma-joined (slugs hold no comma).
const UPSERT_ALERTS: &str = "INSERT INTO alerts (tenant_id, id, device_id, kind, severity, \
        peak_severity, state, opened_at, resolved_at, last_value, suppressed_by, ack_by, ack_at, \
        ack_mode, ack_until, ack_note) \
     SELECT $1, a.id, a.device_id, a.kind, a.severity, a.peak_severity, a.state, a.opened_at, \
        a.resolved_at, a.last_value, string_to_array(a.suppressed_by, ','), a.ack_by, a.ack_at, \
        a.ack_mode, a.ack_until, a.ack_note \
     FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], \
                 $8::timestamptz[], $9::timestamptz[], $10::float8[], $11::text[], $12::text[], \
                 $13::timestamptz[], $14::text[], $15::timestamptz[], $16::text[]) \
        AS a(id, device_id, kind, severity, peak_severity, state, opened_at, resolved_at, \
             last_value, suppressed_by, ack_by, ack_at, ack_mode, ack_until, ack_note) \
     ON CONFLICT (tenant_id, id) DO UPDATE SET severity = EXCLUDED.severity, \
        peak_severity = EXCLUDED.peak_severity, state = EXCLUDED.state, \
        resolved_at = EXCLUDED.resolved_at, last_value = EXCLUDED.last_value, \
        suppressed_by = EXCLUDED.suppressed_by, ack_by = EXCLUDED.ack_by, \
        ack_at = EXCLUDED.ack_at, ack_mode = EXCLUDED.ack_mode, \
        ack_until = EXCLUDED.ack_until, ack_note = EXCLUDED.ack_note";

/// Appends events in the order given, numbered from the tenant's counter: the alert events
/// (`$2`..`$8`) first, both to the alert history and to the event log, then the other events
/// (`$9`..`$13`: device states and windows) to the log only. Each log row takes its subject's
/// snapshot (migration V12): an alert's as given (`$8`), a device's name and groups, a
/// window's row and the groups its scope names, as they are at this point of the transaction.
/// The counter's row stays locked until the transaction ends, so this runs last: a tenant's
/// event-recording transactions queue here only for the moment before their COMMIT, and commit
/// in seq order.
const INSERT_EVENTS: &str = "WITH numbers AS ( \
        INSERT INTO alert_event_counters AS c (tenant_id, last_seq) \
        VALUES ($1, cardinality($2::uuid[]) + cardinality($9::text[])) \
        ON CONFLICT (tenant_id) DO UPDATE \
            SET last_seq = c.last_seq + cardinality($2::uuid[]) + cardinality($9::text[]) \
        RETURNING c.last_seq - cardinality($2::uuid[]) - cardinality($9::text[]) AS base), \
     alert AS ( \
        SELECT numbers.base + e.n AS seq, e.* \
        FROM numbers, unnest($2::uuid[], $3::text[], $4::timestamptz[], $5::text[], \
                             $6::float8[], $7::text[], $8::jsonb[]) WITH ORDINALITY \
            AS e(alert_id, type, at, severity, value, window_ids, subject, n)), \
     history AS ( \
        INSERT INTO alert_events (tenant_id, seq, alert_id, type, at, severity, value, \
                                  window_ids) \
        SELECT $1, seq, alert_id, type, at, severity, value, string_to_array(window_ids, ',') \
        FROM alert), \
     other AS ( \
        SELECT numbers.base + cardinality($2::uuid[]) + o.n AS seq, o.type, o.at, o.device_id, \
            o.window_id, coalesce(o.subject, (SELECT to_jsonb(w) FROM maintenance_windows w \
                WHERE w.tenant_id = $1 AND w.window_id = o.window_id)) AS subject \
        FROM numbers, unnest($9::text[], $10::timestamptz[], $11::uuid[], $12::text[], \
                             $13::jsonb[]) WITH ORDINALITY \
            AS o(type, at, device_id, window_id, subject, n)), \
     logged AS ( \
        SELECT seq, 'alert.' || type AS type, at, alert_id, (subject->>'device_id')::uuid AS device_id, \
            NULL::text AS window_id, subject FROM alert \
        UNION ALL \
        SELECT seq, type, at, NULL::uuid, device_id, window_id, subject FROM other) \
     INSERT INTO events (tenant_id, seq, type, at, alert_id, device_id, device_name, window_id, \
                         group_ids, subject) \
     SELECT $1, l.seq, l.type, l.at, l.alert_id, l.device_id, d.name, l.window_id, \
        CASE WHEN l.window_id IS NULL THEN ARRAY( \
            SELECT m.group_id FROM device_group_members m \
            WHERE m.tenant_id = $1 AND m.device_id = l.device_id ORDER BY m.group_id) \
        ELSE ARRAY( \
            SELECT g.id FROM device_groups g WHERE g.tenant_id = $1 AND g.group_id IN ( \
                SELECT jsonb_array_elements_text(CASE \
                    WHEN jsonb_typeof(l.subject->'group_ids') = 'array' \
                    THEN l.subject->'group_ids' ELSE '[]'::jsonb END)) \
            ORDER BY g.id) END, \
        l.subject \
     FROM logged l LEFT JOIN devices d ON d.tenant_id = $1 AND d.id = l.device_id";

/// Moves open alerts' `last_value` (`$2` ids, `$3` values) and nothing else: the status
/// revision's trigger on `alerts` ignores updates of that column alone (migration V7).
const FOLLOW_VALUES: &str = "UPDATE alerts a SET last_value = v.value \
     FROM unnest($2::uuid[], $3::float8[]) AS v(id, value) \
     WHERE a.tenant_id = $1 AND a.id = v.id";

/// Moves the tenant's status revision (see migration V7) for a write that changes what a
/// summary counts without touching an alert: a device's freshness. When `$2`, no event records
/// that change, so the scope revision moves too (migration V17) and kept summaries read afresh.
/// (By the functions of migration V19, which never wait for another writer's revision row.)
const BUMP_STATUS_REVISION: &str = "SELECT \
        (SELECT move_tenant_scope_revision($1) WHERE $2::boolean), \
        move_tenant_status_revision($1)";

/// The windows that may cover a device at `$2`: enabled and not ended then.
fn windows_at_sql() -> String {
    format!(
        "SELECT {WINDOW_COLUMNS} FROM maintenance_windows w WHERE w.tenant_id = $1 AND w.enabled \
         AND (w.ends_at IS NULL OR w.ends_at > $2)"
    )
}

/// For devices `$3`, their labels, when a window of [`windows_at_sql`] asks for labels.
const NAMED_LABELS: &str = "SELECT d.id, d.labels FROM devices d \
     WHERE d.tenant_id = $1 AND d.id = ANY($3) AND d.labels <> '{}'::jsonb AND EXISTS ( \
        SELECT 1 FROM maintenance_windows w \
        WHERE w.tenant_id = $1 AND w.enabled AND w.labels IS NOT NULL \
          AND (w.ends_at IS NULL OR w.ends_at > $2))";

/// For devices `$3`, the groups a window of [`windows_at_sql`] names that they are in, directly
/// or through one of the group's descendants (a named group covers its whole tree).
fn named_memberships_sql() -> String {
    format!(
        "WITH RECURSIVE {} \
         SELECT DISTINCT m.device_id, n.slug AS group_id FROM named n \
         JOIN device_group_members m ON m.tenant_id = $1 AND m.group_id = n.id \
         WHERE m.device_id = ANY($3)",
        crate::tree::named_trees(&crate::tree::live_window_slugs("$2"))
    )
}

/// What a device's state and alerts are judged from, as loaded under its row lock.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub id: Uuid,
    pub site_id: Option<ScopeLabel>,
    pub device_type: Option<ScopeLabel>,
    pub thresholds: Thresholds,
    pub stale_after: Option<StaleAfter>,
    pub state: DeviceState,
    pub threshold_alert: Option<AlertRecord>,
    pub stale_alert: Option<AlertRecord>,
}

impl Kept {
    pub(crate) fn scope(&self) -> Scope {
        Scope {
            id: self.id,
            site_id: self.site_id.clone(),
            device_type: self.device_type.clone(),
        }
    }

    /// Files an open alert under its kind.
    pub(crate) fn hold(&mut self, alert: AlertRecord) {
        match alert.kind {
            AlertKind::Threshold => self.threshold_alert = Some(alert),
            AlertKind::Stale => self.stale_alert = Some(alert),
        }
    }
}

/// A device from a row of [`device_states_sql`] (open alerts still to [`Kept::hold`]).
pub(crate) fn kept_from_row(row: &Row) -> Result<Kept, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("device", reason);
    let label = |index: usize| -> Result<Option<ScopeLabel>, StoreError> {
        let value: Option<&str> = row.try_get(index).map_err(query_error)?;
        value
            .map(ScopeLabel::parse)
            .transpose()
            .map_err(|e| corrupt(&e))
    };
    let bound = |index: usize| -> Result<Option<f64>, StoreError> {
        row.try_get(index).map_err(query_error)
    };
    Ok(Kept {
        id: row.try_get(0).map_err(query_error)?,
        site_id: label(1)?,
        device_type: label(2)?,
        thresholds: Thresholds::new(bound(3)?, bound(4)?, bound(5)?, bound(6)?)
            .map_err(|e| corrupt(&e))?,
        stale_after: stale_after(row, 7)?,
        state: state_from_row(row, 8)?,
        threshold_alert: None,
        stale_alert: None,
    })
}

/// A stored `stale_after_s`.
pub(crate) fn stale_after(row: &Row, index: usize) -> Result<Option<StaleAfter>, StoreError> {
    row.try_get::<_, Option<i32>>(index)
        .map_err(query_error)?
        .map(|s| StaleAfter::from_secs(i64::from(s)))
        .transpose()
        .map_err(|e| corrupt_row("stale_after_s", e))
}

/// An alert from a row of [`ALERT_COLUMNS`].
pub(crate) fn alert_from_row(row: &Row) -> Result<AlertRecord, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("alert", reason);
    let text =
        |column: &str| -> Result<&str, StoreError> { row.try_get(column).map_err(query_error) };
    let severity = |column: &str| -> Result<Severity, StoreError> {
        let value = text(column)?;
        Severity::parse(value).ok_or_else(|| corrupt(&value))
    };
    let optional_time = |column: &str| -> Result<Option<Timestamp>, StoreError> {
        row.try_get::<_, Option<time::OffsetDateTime>>(column)
            .map_err(query_error)?
            .map(|_| timestamp(row, column))
            .transpose()
    };
    let kind = text("kind")?;
    let state = text("state")?;
    let suppressed_by: Vec<String> = row.try_get("suppressed_by").map_err(query_error)?;
    let ack_by: Option<&str> = row.try_get("ack_by").map_err(query_error)?;
    let acknowledgement = match ack_by {
        None => None,
        Some(_) => {
            let mode = text("ack_mode")?;
            let note: Option<&str> = row.try_get("ack_note").map_err(query_error)?;
            Some(Acknowledgement {
                by: actor(row, "ack_by")?,
                at: timestamp(row, "ack_at")?,
                mode: AckMode::parse(mode).ok_or_else(|| corrupt(&mode))?,
                until: optional_time("ack_until")?,
                note: note
                    .map(AckNote::parse)
                    .transpose()
                    .map_err(|e| corrupt(&e))?,
            })
        }
    };
    Ok(AlertRecord {
        id: row.try_get("id").map_err(query_error)?,
        device_id: row.try_get("device_id").map_err(query_error)?,
        kind: AlertKind::parse(kind).ok_or_else(|| corrupt(&kind))?,
        severity: severity("severity")?,
        peak_severity: severity("peak_severity")?,
        state: AlertState::parse(state).ok_or_else(|| corrupt(&state))?,
        opened_at: timestamp(row, "opened_at")?,
        resolved_at: optional_time("resolved_at")?,
        last_value: row.try_get("last_value").map_err(query_error)?,
        suppressed_by: window_slugs(&suppressed_by)?,
        acknowledgement,
    })
}

/// Stored window ids.
pub(crate) fn window_slugs(values: &[String]) -> Result<Vec<WindowSlug>, StoreError> {
    values
        .iter()
        .map(|v| WindowSlug::parse(v).map_err(|e| corrupt_row("window id", e)))
        .collect()
}

/// A rule needs the windows covering the device now, and they were not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NeedsCoverage;

/// What writes record: the devices' new states, their alerts (whole, each once, as last
/// changed), open alerts of which only `last_value` moved, and the events, in order.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub states: Vec<(Uuid, DeviceState)>,
    pub alerts: Vec<AlertRecord>,
    /// Written apart from `alerts`, by a statement that does not move the status revision: a
    /// reading that changes no status moves the open alert's value and nothing else.
    pub values: Vec<(Uuid, f64)>,
    pub events: Vec<(Uuid, NewAlertEvent)>,
    /// Each of `events`' alert as its change left it (the event log's snapshot).
    pub event_alerts: Vec<AlertRecord>,
    /// `device.state` events, after the alert events.
    pub device_states: Vec<DeviceStateEvent>,
    /// `window.started` / `window.ended` events, last.
    pub window_events: Vec<WindowEvent>,
    /// A summary may count differently (a freshness changed) though no alert did.
    pub status_moved: bool,
    /// Of `status_moved`: a freshness changed that no `device.state` event records (a device
    /// stale by time alone, before the evaluator opened its stale alert, got a reading).
    pub unlogged_freshness: bool,
}

/// A device's status or recorded freshness changed (see [`recorded_freshness`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeviceStateEvent {
    pub device_id: Uuid,
    pub alert_status: AlertStatus,
    pub freshness: Freshness,
    pub at: Timestamp,
}

/// An occurrence of a window began or ended (its row is the snapshot, read in the write).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowEvent {
    pub window_id: WindowSlug,
    pub event_type: StreamEventType,
    pub at: Timestamp,
}

/// A device's freshness as the event log records it: stale while a stale alert is open (the
/// evaluator opens it when the device turns stale, a reading or the evaluator resolves it), no
/// data before its first reading, fresh otherwise. So a `device.state` event goes out exactly
/// when the status, the stale alert, or the first reading changes it.
pub(crate) fn recorded_freshness(state: &DeviceState, stale_open: bool) -> Freshness {
    if stale_open {
        Freshness::Stale
    } else if state.last_reading.is_none() {
        Freshness::NoData
    } else {
        Freshness::Fresh
    }
}

impl Changes {
    pub(crate) fn record(&mut self, transition: Transition) {
        let id = transition.alert.id;
        self.values.retain(|(alert, _)| *alert != id);
        for event in transition.events {
            self.events.push((id, event));
            self.event_alerts.push(transition.alert.clone());
        }
        match self.alerts.iter_mut().find(|a| a.id == id) {
            Some(stored) => *stored = transition.alert,
            None => self.alerts.push(transition.alert),
        }
    }

    /// An open alert whose only change is its `last_value` (a transition without events,
    /// judged with the windows it records).
    fn follow_value(&mut self, alert: AlertRecord) {
        match (
            self.alerts.iter_mut().find(|a| a.id == alert.id),
            alert.last_value,
        ) {
            (Some(stored), _) => *stored = alert,
            (None, Some(value)) => {
                self.values.retain(|(id, _)| *id != alert.id);
                self.values.push((alert.id, value));
            }
            (None, None) => {}
        }
    }

    /// Logs `device.state` when the device's status or recorded freshness differs from what
    /// `kept` had; whether it did.
    fn log_device_state(
        &mut self,
        kept: &Kept,
        state: &DeviceState,
        stale_open: bool,
        at: Timestamp,
    ) -> bool {
        let before = (
            kept.state.alert_status,
            recorded_freshness(&kept.state, kept.stale_alert.is_some()),
        );
        let after = (state.alert_status, recorded_freshness(state, stale_open));
        if before != after {
            self.device_states.push(DeviceStateEvent {
                device_id: kept.id,
                alert_status: after.0,
                freshness: after.1,
                at,
            });
        }
        before != after
    }

    pub(crate) fn merge(&mut self, other: Self) {
        self.states.extend(other.states);
        self.values.extend(other.values);
        self.events.extend(other.events);
        self.event_alerts.extend(other.event_alerts);
        self.device_states.extend(other.device_states);
        self.window_events.extend(other.window_events);
        for alert in other.alerts {
            match self.alerts.iter_mut().find(|a| a.id == alert.id) {
                Some(stored) => *stored = alert,
                None => self.alerts.push(alert),
            }
        }
        self.status_moved |= other.status_moved;
        self.unlogged_freshness |= other.unlogged_freshness;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.states.is_empty()
            && self.alerts.is_empty()
            && self.values.is_empty()
            && self.events.is_empty()
            && self.device_states.is_empty()
            && self.window_events.is_empty()
            && !self.status_moved
    }
}

/// What `readings` (the device's, in time order) do to a device's state and alerts, judged at
/// `now`: [`DeviceState::after_reading`] one by one (older than the latest: ignored); at each
/// status change (or a non-normal status without its alert), [`alerting::on_status`] with the
/// windows covering the device now; while the status holds, the open alert's `last_value`
/// follows (its windows as recorded, so nothing else moves); and a stale alert resolves
/// ([`alerting::on_freshness`]) when the newest reading makes the device no longer stale.
///
/// # Errors
/// [`NeedsCoverage`] when a rule needs `covering` and it is `None`; nothing is judged then.
pub(crate) fn after_readings(
    kept: &Kept,
    readings: &[ReadingPoint],
    now: Timestamp,
    covering: Option<&[WindowSlug]>,
) -> Result<Changes, NeedsCoverage> {
    let mut changes = Changes::default();
    let mut state = kept.state;
    let mut open = kept.threshold_alert.clone();
    let mut newest = None;
    for reading in readings {
        let Some(next) = state.after_reading(&kept.thresholds, *reading) else {
            continue;
        };
        newest = Some(reading.value);
        let changed = next.alert_status != state.alert_status;
        let unheld = next.alert_status != AlertStatus::Normal && open.is_none();
        if changed || unheld {
            let transition = alerting::on_status(
                open.as_ref(),
                kept.id,
                next.alert_status,
                reading.timestamp,
                Some(reading.value),
                covering.ok_or(NeedsCoverage)?,
                Uuid::new_v4,
            );
            if let Some(transition) = transition {
                open = transition.alert.is_open().then(|| transition.alert.clone());
                changes.record(transition);
            }
        } else if let Some(current) = &open {
            // The same status, judged with the windows the alert records: no event, only
            // `last_value` moves.
            let followed = alerting::on_status(
                Some(current),
                kept.id,
                next.alert_status,
                reading.timestamp,
                Some(reading.value),
                &current.suppressed_by,
                Uuid::new_v4,
            );
            if let Some(transition) = followed {
                debug_assert!(transition.events.is_empty());
                open = Some(transition.alert.clone());
                changes.follow_value(transition.alert);
            }
        }
        state = next;
    }
    let Some(value) = newest else {
        return Ok(changes);
    };
    let freshness = state.freshness(kept.stale_after, now);
    let mut stale_open = kept.stale_alert.is_some();
    if let Some(stale) = &kept.stale_alert {
        if freshness != Freshness::Stale {
            let resolved = alerting::on_freshness(
                Some(stale),
                kept.id,
                freshness,
                now,
                Some(value),
                covering.ok_or(NeedsCoverage)?,
                Uuid::new_v4,
            );
            if let Some(transition) = resolved {
                stale_open = transition.alert.is_open();
                changes.record(transition);
            }
        }
    }
    let logged = changes.log_device_state(kept, &state, stale_open, now);
    changes.status_moved = state.alert_status != kept.state.alert_status
        || freshness != kept.state.freshness(kept.stale_after, now);
    changes.unlogged_freshness = changes.status_moved && !logged;
    changes.states.push((kept.id, state));
    Ok(changes)
}

/// What new thresholds do to a device's state and threshold alert at `now`
/// ([`DeviceState::after_thresholds`], then [`alerting::on_threshold_change`] when the status
/// changed).
///
/// # Errors
/// [`NeedsCoverage`] when the status changes and `covering` is `None`.
pub(crate) fn after_thresholds(
    kept: &Kept,
    thresholds: &Thresholds,
    now: Timestamp,
    covering: Option<&[WindowSlug]>,
) -> Result<Changes, NeedsCoverage> {
    let mut changes = Changes::default();
    let state = kept.state.after_thresholds(thresholds, now);
    if state == kept.state {
        return Ok(changes);
    }
    if state.alert_status != kept.state.alert_status {
        let transition = alerting::on_threshold_change(
            kept.threshold_alert.as_ref(),
            kept.id,
            state.alert_status,
            now,
            state.last_reading.map(|r| r.value),
            covering.ok_or(NeedsCoverage)?,
            Uuid::new_v4,
        );
        if let Some(transition) = transition {
            changes.record(transition);
        }
        changes.status_moved = true;
    }
    // A status change is always logged, so it needs no scope move.
    changes.log_device_state(kept, &state, kept.stale_alert.is_some(), now);
    changes.states.push((kept.id, state));
    Ok(changes)
}

/// What removing the device's latest reading does at `now`, `remaining` the newest reading
/// left ([`DeviceState::after_latest_removed`]): the threshold alert moves as a threshold change
/// moves it ([`alerting::on_threshold_change`], when the status changed), and an open stale
/// alert resolves when the device is no longer stale, as after a reading.
///
/// # Errors
/// [`NeedsCoverage`] when a rule needs `covering` and it is `None`.
pub(crate) fn after_removal(
    kept: &Kept,
    remaining: Option<ReadingPoint>,
    now: Timestamp,
    covering: Option<&[WindowSlug]>,
) -> Result<Changes, NeedsCoverage> {
    let mut changes = Changes::default();
    let state = kept.state.after_latest_removed(&kept.thresholds, remaining);
    let value = state.last_reading.map(|r| r.value);
    if state.alert_status != kept.state.alert_status {
        let transition = alerting::on_threshold_change(
            kept.threshold_alert.as_ref(),
            kept.id,
            state.alert_status,
            now,
            value,
            covering.ok_or(NeedsCoverage)?,
            Uuid::new_v4,
        );
        if let Some(transition) = transition {
            changes.record(transition);
        }
    }
    let freshness = state.freshness(kept.stale_after, now);
    let mut stale_open = kept.stale_alert.is_some();
    if let Some(stale) = &kept.stale_alert {
        if freshness != Freshness::Stale {
            let resolved = alerting::on_freshness(
                Some(stale),
                kept.id,
                freshness,
                now,
                value,
                covering.ok_or(NeedsCoverage)?,
                Uuid::new_v4,
            );
            if let Some(transition) = resolved {
                stale_open = transition.alert.is_open();
                changes.record(transition);
            }
        }
    }
    let logged = changes.log_device_state(kept, &state, stale_open, now);
    changes.status_moved = state.alert_status != kept.state.alert_status
        || freshness != kept.state.freshness(kept.stale_after, now);
    changes.unlogged_freshness = changes.status_moved && !logged;
    changes.states.push((kept.id, state));
    Ok(changes)
}

/// What time alone does to a device at `now`: a stale alert opens when the device is stale
/// and has none, or resolves when it no longer is; then each open alert catches up with the
/// windows covering the device ([`alerting::on_coverage`]) and with its acknowledgement's
/// `until` ([`alerting::on_time`]).
pub(crate) fn on_the_clock(kept: &Kept, now: Timestamp, covering: &[WindowSlug]) -> Changes {
    let mut changes = Changes::default();
    let freshness = kept.state.freshness(kept.stale_after, now);
    let stale = match (&kept.stale_alert, freshness) {
        (None, Freshness::Stale) | (Some(_), Freshness::Fresh | Freshness::NoData) => {
            alerting::on_freshness(
                kept.stale_alert.as_ref(),
                kept.id,
                freshness,
                now,
                None,
                covering,
                Uuid::new_v4,
            )
        }
        _ => None,
    };
    let stale_alert = match stale {
        // Just opened with the windows of now, or resolved: nothing more for it to catch up.
        Some(transition) => {
            let stale_open = transition.alert.is_open();
            changes.record(transition);
            changes.log_device_state(kept, &kept.state, stale_open, now);
            None
        }
        None => kept.stale_alert.clone(),
    };
    for open in [kept.threshold_alert.clone(), stale_alert]
        .into_iter()
        .flatten()
    {
        let mut current = open;
        if let Some(transition) = alerting::on_coverage(&current, covering, now) {
            current = transition.alert.clone();
            changes.record(transition);
        }
        if let Some(transition) = alerting::on_time(&current, now) {
            changes.record(transition);
        }
    }
    changes
}

/// What the windows covering a device are judged from.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub id: Uuid,
    pub site_id: Option<ScopeLabel>,
    pub device_type: Option<ScopeLabel>,
}

/// The statements of [`load_coverage`], prepared.
pub(crate) struct CoverageStatements {
    windows: Statement,
    memberships: Statement,
    labels: Statement,
}

/// What [`CoverageStatements::fetch`] returns: windows, named memberships, asked-for labels.
pub(crate) type CoverageRows = (Vec<Row>, Vec<Row>, Vec<Row>);

impl CoverageStatements {
    pub(crate) async fn prepare(
        client: &deadpool_postgres::ClientWrapper,
    ) -> Result<Self, StoreError> {
        let (windows_sql, memberships_sql) = (windows_at_sql(), named_memberships_sql());
        let (windows, memberships, labels) = tokio::try_join!(
            client.prepare_cached(&windows_sql),
            client.prepare_cached(&memberships_sql),
            client.prepare_cached(NAMED_LABELS),
        )
        .map_err(query_error)?;
        Ok(Self {
            windows,
            memberships,
            labels,
        })
    }

    /// The windows, named memberships and labels, one round trip (all sent at once).
    pub(crate) async fn fetch(
        &self,
        client: &deadpool_postgres::ClientWrapper,
        tenant: &TenantId,
        devices: &[Uuid],
        now: Timestamp,
    ) -> Result<CoverageRows, tokio_postgres::Error> {
        let tenant_id = tenant.as_str();
        let at = now.get();
        let params: [&(dyn ToSql + Sync); 3] = [&tenant_id, &at, &devices];
        tokio::try_join!(
            biased;
            client.query(&self.windows, &params[..2]),
            client.query(&self.memberships, &params),
            client.query(&self.labels, &params),
        )
    }
}

/// The ids of the windows active at `now` that cover each device (ascending), from the rows
/// of [`CoverageStatements::fetch`].
pub(crate) fn coverage(
    (windows, memberships, labelled): &CoverageRows,
    devices: &[Scope],
    now: Timestamp,
) -> Result<HashMap<Uuid, Vec<WindowSlug>>, StoreError> {
    let windows = windows
        .iter()
        .map(window_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let mut groups: HashMap<Uuid, Vec<GroupSlug>> = HashMap::new();
    for row in memberships {
        let slug: &str = row.try_get(1).map_err(query_error)?;
        groups
            .entry(row.try_get(0).map_err(query_error)?)
            .or_default()
            .push(GroupSlug::parse(slug).map_err(|e| corrupt_row("group id", e))?);
    }
    let mut labels: HashMap<Uuid, Labels> = HashMap::new();
    for row in labelled {
        let value: serde_json::Value = row.try_get(1).map_err(query_error)?;
        labels.insert(
            row.try_get(0).map_err(query_error)?,
            crate::rows::labels_from_json(&value)?,
        );
    }
    let none = Labels::none();
    let index =
        domain::window::CoverageIndex::active_at(windows.iter().map(|w| &w.definition), now);
    Ok(devices
        .iter()
        .map(|d| {
            let member_of = groups.get(&d.id).map_or(&[][..], Vec::as_slice);
            let mut ids: Vec<WindowSlug> = index
                .covering(
                    d.site_id.as_ref(),
                    d.device_type.as_ref(),
                    labels.get(&d.id).unwrap_or(&none),
                    member_of,
                )
                .into_iter()
                .map(|p| windows[p].window_id.clone())
                .collect();
            ids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
            (d.id, ids)
        })
        .collect())
}

/// Loads the windows covering each device now, one round trip on `client` (inside the
/// caller's transaction).
pub(crate) async fn load_coverage(
    client: &deadpool_postgres::ClientWrapper,
    tenant: &TenantId,
    devices: &[Scope],
    now: Timestamp,
) -> Result<HashMap<Uuid, Vec<WindowSlug>>, StoreError> {
    if devices.is_empty() {
        return Ok(HashMap::new());
    }
    let statements = CoverageStatements::prepare(client).await?;
    let ids: Vec<Uuid> = devices.iter().map(|d| d.id).collect();
    let rows = statements
        .fetch(client, tenant, &ids, now)
        .await
        .map_err(query_error)?;
    coverage(&rows, devices, now)
}

/// Judges `kept` devices with `judge`, loading the windows covering those that need them (one
/// more round trip, only then).
pub(crate) async fn judge_with_coverage(
    client: &deadpool_postgres::ClientWrapper,
    tenant: &TenantId,
    kept: &[Kept],
    now: Timestamp,
    judge: impl Fn(&Kept, Option<&[WindowSlug]>) -> Result<Changes, NeedsCoverage>,
) -> Result<Changes, StoreError> {
    let mut changes = Changes::default();
    let mut waiting = Vec::new();
    for device in kept {
        match judge(device, None) {
            Ok(judged) => changes.merge(judged),
            Err(NeedsCoverage) => waiting.push(device),
        }
    }
    if waiting.is_empty() {
        return Ok(changes);
    }
    let scopes: Vec<Scope> = waiting.iter().map(|d| d.scope()).collect();
    let covering = load_coverage(client, tenant, &scopes, now).await?;
    for device in waiting {
        let windows = covering.get(&device.id).map_or(&[][..], Vec::as_slice);
        let judged = judge(device, Some(windows)).map_err(|NeedsCoverage| {
            StoreError::Unknown(anyhow::anyhow!("coverage was loaded but not found"))
        })?;
        changes.merge(judged);
    }
    Ok(changes)
}

/// The write statements of [`Changes`], prepared.
pub(crate) struct WriteStatements {
    state: Statement,
    alerts: Statement,
    values: Statement,
    events: Statement,
    bump: Statement,
}

/// [`Changes`] as array parameters.
pub(crate) struct ChangeParams {
    tenant: String,
    state: StateParams,
    alerts: AlertParams,
    values: (Vec<Uuid>, Vec<f64>),
    events: EventParams,
    status_moved: bool,
    scope_moved: bool,
}

/// Columns of `KEEP_STATE`.
#[derive(Default)]
struct StateParams {
    id: Vec<Uuid>,
    ts: Vec<time::OffsetDateTime>,
    value: Vec<f64>,
    status: Vec<&'static str>,
    since: Vec<time::OffsetDateTime>,
}

/// Columns of `INSERT_EVENTS`.
#[derive(Default)]
struct EventParams {
    alert_id: Vec<Uuid>,
    event_type: Vec<&'static str>,
    at: Vec<time::OffsetDateTime>,
    severity: Vec<&'static str>,
    value: Vec<Option<f64>>,
    window_ids: Vec<String>,
    subject: Vec<serde_json::Value>,
    /// The other events' columns.
    other: OtherEventParams,
}

/// Columns of `INSERT_EVENTS`' other events.
#[derive(Default)]
struct OtherEventParams {
    event_type: Vec<&'static str>,
    at: Vec<time::OffsetDateTime>,
    device_id: Vec<Option<Uuid>>,
    window_id: Vec<Option<String>>,
    /// `None`: the window's row.
    subject: Vec<Option<serde_json::Value>>,
}

fn rfc3339(t: Timestamp) -> serde_json::Value {
    t.get()
        .format(&time::format_description::well_known::Rfc3339)
        .map_or(serde_json::Value::Null, serde_json::Value::String)
}

/// An alert in the shape of its `alerts` row, as JSON (the event log's snapshot, read back with
/// `jsonb_populate_record(NULL::alerts, ...)`).
pub(crate) fn alert_json(a: &AlertRecord) -> serde_json::Value {
    let ack = a.acknowledgement.as_ref();
    serde_json::json!({
        "id": a.id,
        "device_id": a.device_id,
        "kind": a.kind.as_str(),
        "severity": a.severity.as_str(),
        "peak_severity": a.peak_severity.as_str(),
        "state": a.state.as_str(),
        "opened_at": rfc3339(a.opened_at),
        "resolved_at": a.resolved_at.map(rfc3339),
        "last_value": a.last_value,
        "suppressed_by": a.suppressed_by.iter().map(WindowSlug::as_str).collect::<Vec<_>>(),
        "ack_by": ack.map(|k| k.by.as_str()),
        "ack_at": ack.map(|k| rfc3339(k.at)),
        "ack_mode": ack.map(|k| k.mode.as_str()),
        "ack_until": ack.and_then(|k| k.until).map(rfc3339),
        "ack_note": ack.and_then(|k| k.note.as_ref()).map(AckNote::as_str),
    })
}

/// Columns of `UPSERT_ALERTS`.
#[derive(Default)]
struct AlertParams {
    id: Vec<Uuid>,
    device_id: Vec<Uuid>,
    kind: Vec<&'static str>,
    severity: Vec<&'static str>,
    peak_severity: Vec<&'static str>,
    state: Vec<&'static str>,
    opened_at: Vec<time::OffsetDateTime>,
    resolved_at: Vec<Option<time::OffsetDateTime>>,
    last_value: Vec<Option<f64>>,
    suppressed_by: Vec<String>,
    ack_by: Vec<Option<String>>,
    ack_at: Vec<Option<time::OffsetDateTime>>,
    ack_mode: Vec<Option<&'static str>>,
    ack_until: Vec<Option<time::OffsetDateTime>>,
    ack_note: Vec<Option<String>>,
}

fn joined(ids: &[WindowSlug]) -> String {
    ids.iter()
        .map(WindowSlug::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

impl ChangeParams {
    pub(crate) fn of(tenant: &TenantId, changes: &Changes) -> Self {
        let mut state = StateParams::default();
        for (id, s) in &changes.states {
            // A state without a reading is the default one, which has no row to keep.
            let (Some(last), Some(since)) = (s.last_reading, s.since) else {
                continue;
            };
            state.id.push(*id);
            state.ts.push(last.timestamp.get());
            state.value.push(last.value);
            state.status.push(s.alert_status.as_str());
            state.since.push(since.get());
        }
        // Resolved first: an alert that resolves frees its device's place for one that opens
        // in the same write (the unique index is checked row by row).
        let mut ordered: Vec<&AlertRecord> = changes.alerts.iter().collect();
        ordered.sort_by_key(|a| a.is_open());
        let mut alerts = AlertParams::default();
        for a in ordered {
            alerts.id.push(a.id);
            alerts.device_id.push(a.device_id);
            alerts.kind.push(a.kind.as_str());
            alerts.severity.push(a.severity.as_str());
            alerts.peak_severity.push(a.peak_severity.as_str());
            alerts.state.push(a.state.as_str());
            alerts.opened_at.push(a.opened_at.get());
            alerts.resolved_at.push(a.resolved_at.map(Timestamp::get));
            alerts.last_value.push(a.last_value);
            alerts.suppressed_by.push(joined(&a.suppressed_by));
            let ack = a.acknowledgement.as_ref();
            alerts.ack_by.push(ack.map(|k| k.by.as_str().to_owned()));
            alerts.ack_at.push(ack.map(|k| k.at.get()));
            alerts.ack_mode.push(ack.map(|k| k.mode.as_str()));
            alerts
                .ack_until
                .push(ack.and_then(|k| k.until).map(Timestamp::get));
            alerts.ack_note.push(
                ack.and_then(|k| k.note.as_ref())
                    .map(|n| n.as_str().to_owned()),
            );
        }
        let mut events = EventParams::default();
        for (id, e) in &changes.events {
            events.alert_id.push(*id);
            events.event_type.push(e.event_type.as_str());
            events.at.push(e.at.get());
            events.severity.push(e.severity.as_str());
            events.value.push(e.value);
            events.window_ids.push(joined(&e.window_ids));
        }
        events.subject = changes.event_alerts.iter().map(alert_json).collect();
        let other = &mut events.other;
        for d in &changes.device_states {
            other.event_type.push(StreamEventType::DeviceState.as_str());
            other.at.push(d.at.get());
            other.device_id.push(Some(d.device_id));
            other.window_id.push(None);
            other.subject.push(Some(serde_json::json!({
                "alert_status": d.alert_status.as_str(),
                "freshness": d.freshness.as_str(),
            })));
        }
        for w in &changes.window_events {
            other.event_type.push(w.event_type.as_str());
            other.at.push(w.at.get());
            other.device_id.push(None);
            other.window_id.push(Some(w.window_id.as_str().to_owned()));
            other.subject.push(None);
        }
        Self {
            tenant: tenant.as_str().to_owned(),
            state,
            alerts,
            values: changes.values.iter().copied().unzip(),
            events,
            status_moved: changes.status_moved,
            scope_moved: changes.unlogged_freshness,
        }
    }
}

impl WriteStatements {
    pub(crate) async fn prepare(
        client: &deadpool_postgres::ClientWrapper,
    ) -> Result<Self, StoreError> {
        let (state, alerts, values, events, bump) = tokio::try_join!(
            client.prepare_cached(KEEP_STATE),
            client.prepare_cached(UPSERT_ALERTS),
            client.prepare_cached(FOLLOW_VALUES),
            client.prepare_cached(INSERT_EVENTS),
            client.prepare_cached(BUMP_STATUS_REVISION),
        )
        .map_err(query_error)?;
        Ok(Self {
            state,
            alerts,
            values,
            events,
            bump,
        })
    }

    /// Sends the writes `p` needs, in order (state, alerts, values, events: the counter last), as one
    /// pipeline; a write with nothing to write is not sent.
    pub(crate) async fn run(
        &self,
        client: &deadpool_postgres::ClientWrapper,
        p: &ChangeParams,
    ) -> Result<(), tokio_postgres::Error> {
        let tenant = p.tenant.as_str();
        let state = async {
            let s = &p.state;
            if s.id.is_empty() {
                return Ok(0);
            }
            client
                .execute(
                    &self.state,
                    &[&tenant, &s.id, &s.ts, &s.value, &s.status, &s.since],
                )
                .await
        };
        let alerts = async {
            let a = &p.alerts;
            if a.id.is_empty() {
                return Ok(0);
            }
            client
                .execute(
                    &self.alerts,
                    &[
                        &tenant,
                        &a.id,
                        &a.device_id,
                        &a.kind,
                        &a.severity,
                        &a.peak_severity,
                        &a.state,
                        &a.opened_at,
                        &a.resolved_at,
                        &a.last_value,
                        &a.suppressed_by,
                        &a.ack_by,
                        &a.ack_at,
                        &a.ack_mode,
                        &a.ack_until,
                        &a.ack_note,
                    ],
                )
                .await
        };
        let values = async {
            if p.values.0.is_empty() {
                return Ok(0);
            }
            client
                .execute(&self.values, &[&tenant, &p.values.0, &p.values.1])
                .await
        };
        let bump = async {
            if !p.status_moved {
                return Ok(0);
            }
            client.execute(&self.bump, &[&tenant, &p.scope_moved]).await
        };
        let events = async {
            let e = &p.events;
            let o = &e.other;
            if e.alert_id.is_empty() && o.event_type.is_empty() {
                return Ok(0);
            }
            client
                .execute(
                    &self.events,
                    &[
                        &tenant,
                        &e.alert_id,
                        &e.event_type,
                        &e.at,
                        &e.severity,
                        &e.value,
                        &e.window_ids,
                        &e.subject,
                        &o.event_type,
                        &o.at,
                        &o.device_id,
                        &o.window_id,
                        &o.subject,
                    ],
                )
                .await
        };
        tokio::try_join!(biased; state, alerts, values, bump, events)?;
        Ok(())
    }
}

/// The occurrence of a window that applies at `now` (its start), if any: what its
/// announcement should be. A disabled window has none.
pub(crate) fn current_occurrence(
    window: &domain::WindowDefinition,
    now: Timestamp,
) -> Option<Timestamp> {
    window
        .occurrences(now, 1)
        .into_iter()
        .next()
        .filter(|o| o.contains(now))
        .map(|o| o.starts_at)
}

/// Moves a window's announcement from `announced` to `current` (compare-and-set, so of two
/// transactions seeing the same change only one logs it: the other, waiting for its row lock,
/// then finds the announcement moved) and adds the events that move logs to `changes`: ended
/// for the old occurrence, started for the new.
pub(crate) async fn announce_window(
    client: &deadpool_postgres::ClientWrapper,
    tenant: &TenantId,
    window_id: &WindowSlug,
    announced: Option<Timestamp>,
    current: Option<Timestamp>,
    now: Timestamp,
    changes: &mut Changes,
) -> Result<(), tokio_postgres::Error> {
    const END: &str = "DELETE FROM window_announcements \
         WHERE tenant_id = $1 AND window_id = $2 AND starts_at = $3";
    const START: &str = "INSERT INTO window_announcements (tenant_id, window_id, starts_at) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    const MOVE: &str = "UPDATE window_announcements SET starts_at = $4 \
         WHERE tenant_id = $1 AND window_id = $2 AND starts_at = $3";
    let (tenant_id, slug) = (tenant.as_str(), window_id.as_str());
    let moved = match (announced, current) {
        (a, c) if a == c => return Ok(()),
        (Some(a), None) => {
            let statement = client.prepare_cached(END).await?;
            client
                .execute(&statement, &[&tenant_id, &slug, &a.get()])
                .await?
        }
        (None, Some(c)) => {
            let statement = client.prepare_cached(START).await?;
            client
                .execute(&statement, &[&tenant_id, &slug, &c.get()])
                .await?
        }
        (Some(a), Some(c)) => {
            let statement = client.prepare_cached(MOVE).await?;
            client
                .execute(&statement, &[&tenant_id, &slug, &a.get(), &c.get()])
                .await?
        }
        (None, None) => return Ok(()),
    };
    if moved == 0 {
        return Ok(());
    }
    let event = |event_type| WindowEvent {
        window_id: window_id.clone(),
        event_type,
        at: now,
    };
    if announced.is_some() {
        changes
            .window_events
            .push(event(StreamEventType::WindowEnded));
    }
    if current.is_some() {
        changes
            .window_events
            .push(event(StreamEventType::WindowStarted));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::parse_status;
    use time::macros::datetime;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::new(datetime!(2026-01-01 00:00 UTC) + time::Duration::seconds(seconds))
            .expect("in range")
    }

    fn point(seconds: i64, value: f64) -> ReadingPoint {
        ReadingPoint {
            timestamp: at(seconds),
            value,
        }
    }

    fn kept() -> Kept {
        Kept {
            id: Uuid::from_u128(1),
            site_id: None,
            device_type: None,
            thresholds: Thresholds::new(None, None, Some(30.0), Some(40.0)).expect("ordered"),
            stale_after: StaleAfter::from_secs(60).ok(),
            state: DeviceState::default(),
            threshold_alert: None,
            stale_alert: None,
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            AlertStatus::Normal,
            AlertStatus::Warning,
            AlertStatus::Critical,
        ] {
            assert_eq!(parse_status(s.as_str()).ok(), Some(s));
        }
    }

    #[test]
    fn coverage_is_asked_for_only_when_an_alert_changes() {
        let device = kept();
        let quiet = after_readings(&device, &[point(1, 10.0), point(2, 20.0)], at(3), None)
            .expect("no alert changes: no coverage needed");
        assert!(quiet.events.is_empty());
        assert_eq!(quiet.states.len(), 1);
        assert!(quiet.status_moved, "no data -> fresh");
        assert_eq!(
            after_readings(&device, &[point(1, 35.0)], at(3), None).unwrap_err(),
            NeedsCoverage
        );
        let opened = after_readings(&device, &[point(1, 35.0), point(2, 45.0)], at(3), Some(&[]))
            .expect("judged");
        let types: Vec<_> = opened.events.iter().map(|(_, e)| e.event_type).collect();
        assert_eq!(
            types,
            [domain::EventType::Opened, domain::EventType::Escalated]
        );
        assert_eq!(
            opened.alerts.len(),
            1,
            "one alert, stored once as last changed"
        );
        assert_eq!(opened.alerts[0].severity, Severity::Critical);
    }

    #[test]
    fn an_older_reading_changes_nothing() {
        let mut device = kept();
        device.state = device
            .state
            .after_reading(&device.thresholds, point(10, 20.0))
            .expect("newer");
        let changes = after_readings(&device, &[point(5, 99.0)], at(11), None).expect("judged");
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn the_clock_opens_and_resolves_stale_alerts() {
        let mut device = kept();
        device.state = device
            .state
            .after_reading(&device.thresholds, point(0, 20.0))
            .expect("newer");
        assert!(on_the_clock(&device, at(30), &[]).is_empty());
        let opened = on_the_clock(&device, at(61), &[]);
        assert_eq!(opened.alerts.len(), 1);
        device.hold(opened.alerts[0].clone());
        assert!(on_the_clock(&device, at(62), &[]).is_empty(), "once");
        device.stale_after = None;
        let resolved = on_the_clock(&device, at(63), &[]);
        assert_eq!(resolved.alerts[0].state, AlertState::Resolved);
    }
}
