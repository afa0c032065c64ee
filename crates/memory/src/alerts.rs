//! Alerts in the embedded store: kept with the tenant's other rows, under its lock, so a write
//! that changes a device's state records the alert changes it causes atomically, as
//! PostgreSQL's transaction does. The rules themselves are `domain::alerting`'s.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use domain::alerting::{self, AckError};
use domain::window::CoverageIndex;
use domain::{
    Acknowledgement, Alert, AlertCursor, AlertEvent, AlertKind, AlertRecord, Device, DeviceSpec,
    DeviceState, Freshness, GroupSlug, ReadingPoint, TenantId, Timestamp, Transition, WindowSlug,
};
use ports::{
    AckAlertError, AlertEvaluator, AlertListError, AlertPage, AlertQuery, AlertRepository,
    Evaluation, LookupError, StoreError,
};
use uuid::Uuid;

use crate::{MemoryStore, TenantData, Usage};

/// One alert and its events, oldest first.
pub(crate) struct AlertEntry {
    record: AlertRecord,
    events: Vec<AlertEvent>,
}

/// A tenant's alerts, with the indexes its reads and writes look them up by.
#[derive(Default)]
pub(crate) struct Alerts {
    by_id: HashMap<Uuid, AlertEntry>,
    /// Every alert in list order, read backwards: (opened_at, id) ascending.
    order: BTreeSet<(Timestamp, Uuid)>,
    /// The open alert of each device and kind: at most one, by construction.
    open: HashMap<(Uuid, AlertKind), Uuid>,
    /// The last `seq` given to one of the tenant's events.
    seq: i64,
}

impl Alerts {
    pub(crate) fn open_of(&self, device: Uuid, kind: AlertKind) -> Option<&AlertRecord> {
        self.open
            .get(&(device, kind))
            .and_then(|id| self.by_id.get(id))
            .map(|e| &e.record)
    }

    /// Whether the device has an open alert, and whether one of them is acknowledged.
    pub(crate) fn member_alerts(&self, device: Uuid) -> domain::MemberAlerts {
        let open: Vec<&AlertRecord> = [AlertKind::Threshold, AlertKind::Stale]
            .into_iter()
            .filter_map(|kind| self.open_of(device, kind))
            .collect();
        domain::MemberAlerts {
            open: !open.is_empty(),
            acknowledged: open.iter().any(|a| a.acknowledgement.is_some()),
        }
    }

    /// The next number of the tenant's counter (for the event log's other events).
    pub(crate) fn next_seq(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }

    /// The last number given out.
    pub(crate) fn last_seq(&self) -> i64 {
        self.seq
    }

    /// Stores the transition's alert and numbers its events, which it answers. Room for the
    /// events is reserved by the caller first (see `TenantData::record_alert`, which logs them).
    pub(crate) fn record(&mut self, transition: Transition) -> Vec<AlertEvent> {
        let Transition { alert, events } = transition;
        let (id, key) = (alert.id, (alert.device_id, alert.kind));
        if alert.is_open() {
            self.open.insert(key, id);
        } else if self.open.get(&key) == Some(&id) {
            self.open.remove(&key);
        }
        let entry = self.by_id.entry(id).or_insert_with(|| {
            self.order.insert((alert.opened_at, id));
            AlertEntry {
                record: alert.clone(),
                events: Vec::new(),
            }
        });
        entry.record = alert;
        let mut numbered = Vec::with_capacity(events.len());
        for event in events {
            self.seq += 1;
            let event = AlertEvent {
                seq: self.seq,
                alert_id: id,
                event,
            };
            numbered.push(event.clone());
            entry.events.push(event);
        }
        numbered
    }

    /// Removes the device's alerts and events; answers how many events went.
    pub(crate) fn remove_device(&mut self, device: Uuid) -> u64 {
        let ids: Vec<Uuid> = self
            .by_id
            .values()
            .filter(|e| e.record.device_id == device)
            .map(|e| e.record.id)
            .collect();
        let mut events = 0;
        for id in ids {
            if let Some(entry) = self.by_id.remove(&id) {
                self.order.remove(&(entry.record.opened_at, id));
                events += entry.events.len() as u64;
            }
        }
        self.open.retain(|(d, _), _| *d != device);
        events
    }
}

/// How many events the transitions record.
pub(crate) fn event_count(transitions: &[Transition]) -> u64 {
    transitions.iter().map(|t| t.events.len() as u64).sum()
}

/// The enabled windows active at `now` (indexed), to find those covering one device at a time.
pub(crate) struct Coverage<'a> {
    data: &'a TenantData,
    index: CoverageIndex<'a>,
    /// Whether any window is active at all: when none is, nothing covers anything.
    any: bool,
    /// The groups some active window names, each with its tree: all a device's memberships are
    /// checked against.
    named_groups: Vec<(Vec<Uuid>, &'a GroupSlug)>,
}

impl<'a> Coverage<'a> {
    pub(crate) fn at(data: &'a TenantData, now: Timestamp) -> Self {
        let active: Vec<&'a domain::WindowDefinition> = data
            .windows
            .iter()
            .map(|w| &w.definition)
            .filter(|w| w.is_active(now))
            .collect();
        let named: HashSet<&GroupSlug> = active
            .iter()
            .filter_map(|w| w.group_ids.as_ref())
            .flatten()
            .collect();
        Self {
            data,
            index: CoverageIndex::active_at(data.windows.iter().map(|w| &w.definition), now),
            any: !active.is_empty(),
            named_groups: data.named_trees(&named),
        }
    }

    /// The ids of the active windows covering the device, ascending.
    pub(crate) fn of(&self, device: &Device) -> Vec<WindowSlug> {
        if !self.any {
            return Vec::new();
        }
        let data = self.data;
        let groups: Vec<GroupSlug> = data.covering_slugs(&self.named_groups, device.id);
        let spec = &device.spec;
        let mut ids: Vec<WindowSlug> = self
            .index
            .covering(
                spec.site_id.as_ref(),
                spec.device_type.as_ref(),
                &spec.labels,
                &groups,
            )
            .into_iter()
            .map(|position| data.windows[position].window_id.clone())
            .collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids
    }
}

impl TenantData {
    fn alert_view(&self, record: &AlertRecord) -> Option<Alert> {
        let device = self.devices.get(&record.device_id)?;
        Some(Alert {
            record: record.clone(),
            device_name: device.spec.name.clone(),
        })
    }

    fn list_alerts(&self, query: &AlertQuery) -> Result<AlertPage, AlertListError> {
        let filter = &query.filter;
        let members: Option<HashSet<Uuid>> = match &filter.group {
            None => None,
            Some(key) => {
                let index = self.group_index(key).ok_or(AlertListError::GroupNotFound)?;
                Some(self.member_ids(self.groups[index].id).collect())
            }
        };
        if let Some(device) = filter.device_id {
            if self.device(device).is_none() {
                return Err(AlertListError::DeviceNotFound);
            }
        }
        let upper = query
            .after
            .map_or(Bound::Unbounded, |c| Bound::Excluded((c.opened_at, c.id)));
        let limit = query.limit as usize;
        let mut alerts: Vec<Alert> = self
            .alerts
            .order
            .range((Bound::Unbounded, upper))
            .rev()
            .filter_map(|(_, id)| self.alerts.by_id.get(id))
            .map(|e| &e.record)
            .filter(|a| {
                filter.state.is_none_or(|s| a.state == s)
                    && filter.severity.is_none_or(|s| a.severity == s)
                    && filter.kind.is_none_or(|k| a.kind == k)
                    && filter.device_id.is_none_or(|d| a.device_id == d)
                    && members.as_ref().is_none_or(|m| m.contains(&a.device_id))
                    && filter.suppressed.is_none_or(|s| a.suppressed() == s)
                    && filter
                        .acknowledged
                        .is_none_or(|k| a.acknowledgement.is_some() == k)
            })
            .take(limit + 1)
            .filter_map(|a| self.alert_view(a))
            .collect();
        let next = if alerts.len() > limit {
            alerts.truncate(limit);
            alerts.last().map(|a| AlertCursor {
                opened_at: a.record.opened_at,
                id: a.record.id,
            })
        } else {
            None
        };
        Ok(AlertPage { alerts, next })
    }

    /// What time alone changes at `now`: devices turning stale, stale alerts of devices no longer
    /// stale, windows starting or ending to cover open alerts, acknowledgements running out.
    fn time_passes(&self, now: Timestamp) -> Vec<Transition> {
        let mut candidates: Vec<Uuid> = self
            .devices
            .values()
            .filter(|d| d.spec.stale_after.is_some())
            .map(|d| d.id)
            .chain(self.alerts.open.keys().map(|(device, _)| *device))
            .collect();
        if candidates.is_empty() {
            return Vec::new();
        }
        candidates.sort_unstable();
        candidates.dedup();
        let coverage = Coverage::at(self, now);
        let mut transitions = Vec::new();
        for id in candidates {
            let Some(device) = self.devices.get(&id) else {
                continue;
            };
            let covering = coverage.of(device);
            let freshness = device.state.freshness(device.spec.stale_after, now);
            let stale = self.alerts.open_of(id, AlertKind::Stale);
            let stale_change = match (stale, freshness) {
                (None, Freshness::Stale) | (Some(_), Freshness::Fresh | Freshness::NoData) => {
                    alerting::on_freshness(stale, id, freshness, now, None, &covering, Uuid::new_v4)
                }
                _ => None,
            };
            // A stale alert just opened or resolved is already reconciled with the windows.
            let stale_left = match stale_change {
                Some(t) => {
                    transitions.push(t);
                    None
                }
                None => stale.cloned(),
            };
            let threshold = self.alerts.open_of(id, AlertKind::Threshold).cloned();
            for open in [threshold, stale_left].into_iter().flatten() {
                let mut alert = open;
                let mut events = Vec::new();
                if let Some(t) = alerting::on_coverage(&alert, &covering, now) {
                    alert = t.alert;
                    events.extend(t.events);
                }
                if let Some(t) = alerting::on_time(&alert, now) {
                    alert = t.alert;
                    events.extend(t.events);
                }
                if alert != self.alerts.by_id[&alert.id].record {
                    transitions.push(Transition { alert, events });
                }
            }
        }
        transitions
    }
}

/// Records the transitions, all or none: room for their events first.
pub(crate) fn record_all(
    data: &mut TenantData,
    usage: &Usage,
    transitions: Vec<Transition>,
) -> Result<u64, StoreError> {
    let events = event_count(&transitions);
    usage.alert_events.reserve(events)?;
    let mut devices: Vec<Uuid> = transitions.iter().map(|t| t.alert.device_id).collect();
    devices.sort_unstable();
    devices.dedup();
    data.logging_device_states(&devices, Timestamp::now(), |data| {
        for t in transitions {
            data.record_alert(t);
        }
    });
    Ok(events)
}

fn ack_error(e: AckError) -> AckAlertError {
    match e {
        AckError::Resolved => AckAlertError::Resolved,
    }
}

#[async_trait]
impl AlertRepository for MemoryStore {
    async fn list_alerts(
        &self,
        tenant: &TenantId,
        query: &AlertQuery,
    ) -> Result<AlertPage, AlertListError> {
        let query = query.clone();
        let missing = (
            query.filter.group.is_some(),
            query.filter.device_id.is_some(),
        );
        match self
            .read(tenant, move |data| data.list_alerts(&query))
            .await?
        {
            Some(page) => page,
            None if missing.0 => Err(AlertListError::GroupNotFound),
            None if missing.1 => Err(AlertListError::DeviceNotFound),
            None => Ok(AlertPage {
                alerts: Vec::new(),
                next: None,
            }),
        }
    }

    async fn get_alert(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<(Alert, Vec<AlertEvent>), LookupError> {
        self.read(tenant, move |data| {
            let entry = data.alerts.by_id.get(&id)?;
            Some((data.alert_view(&entry.record)?, entry.events.clone()))
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    async fn acknowledge(
        &self,
        tenant: &TenantId,
        id: Uuid,
        ack: Acknowledgement,
    ) -> Result<Alert, AckAlertError> {
        self.write(tenant, move |data, usage| {
            let entry = data.alerts.by_id.get(&id).ok_or(AckAlertError::NotFound)?;
            let transition = alerting::acknowledge(&entry.record, ack).map_err(ack_error)?;
            record_all(data, usage, vec![transition])?;
            let record = &data.alerts.by_id[&id].record;
            data.alert_view(record).ok_or(AckAlertError::NotFound)
        })
        .await?
        .unwrap_or(Err(AckAlertError::NotFound))
    }

    async fn unacknowledge(
        &self,
        tenant: &TenantId,
        id: Uuid,
        at: Timestamp,
    ) -> Result<Alert, AckAlertError> {
        self.write(tenant, move |data, usage| {
            let entry = data.alerts.by_id.get(&id).ok_or(AckAlertError::NotFound)?;
            if let Some(transition) =
                alerting::unacknowledge(&entry.record, at).map_err(ack_error)?
            {
                record_all(data, usage, vec![transition])?;
            }
            let record = &data.alerts.by_id[&id].record;
            data.alert_view(record).ok_or(AckAlertError::NotFound)
        })
        .await?
        .unwrap_or(Err(AckAlertError::NotFound))
    }

    async fn muted_by_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
        from: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<Vec<Alert>, StoreError> {
        let window_id = window_id.clone();
        let found = self
            .read(tenant, move |data| {
                data.alerts
                    .order
                    .iter()
                    .filter_map(|(_, id)| data.alerts.by_id.get(id))
                    .filter(|entry| {
                        entry.events.iter().any(|e| {
                            e.event.at >= from
                                && until.is_none_or(|until| e.event.at < until)
                                && e.event.window_ids.contains(&window_id)
                        })
                    })
                    .filter_map(|entry| data.alert_view(&entry.record))
                    .collect()
            })
            .await?;
        Ok(found.unwrap_or_default())
    }
}

#[async_trait]
impl AlertEvaluator for MemoryStore {
    /// Each tenant in turn, under its write lock: a pass is one change per tenant, and passes
    /// running at once take turns, the later one finding nothing left to record.
    async fn evaluate(&self, now: Timestamp) -> Result<Evaluation, StoreError> {
        let mut evaluation = Evaluation::default();
        let mut failed = None;
        for (tenant, data) in self.all_tenants() {
            evaluation.tenants += 1;
            // Looked at under the read lock first: a tenant with nothing to record keeps its
            // writers and readers going; one with something is judged again under the write
            // lock, so what is recorded is what holds then.
            let reader = Arc::clone(&data).read_owned().await;
            let idle = crate::off_the_request_threads(move || {
                reader.time_passes(now).is_empty()
                    && !reader.windows_to_announce(Timestamp::now().max(now))
            })
            .await;
            if matches!(idle, Ok(true)) {
                continue;
            }
            let recorded = self
                .write_on(&tenant, data, move |data, usage| {
                    // Judged at the clock of the lock, not the pass's start: a request writing
                    // meanwhile judged at its own (later) clock, and an older instant would
                    // undo what it recorded (a window it saw end would be seen active again).
                    let now = Timestamp::now().max(now);
                    data.announce_windows(None, now);
                    let transitions = data.time_passes(now);
                    record_all(data, usage, transitions)
                })
                .await
                .and_then(|r| r);
            match recorded {
                Ok(events) => evaluation.events += events,
                // One tenant's failure (the store full) does not stop the others.
                Err(e) => failed = Some(e),
            }
        }
        failed.map_or(Ok(evaluation), Err)
    }
}

impl TenantData {
    /// What a batch of readings makes of its devices' states and alerts, judged reading by
    /// reading in time order (ties as the batch leaves them: one per device and instant), with
    /// windows and freshness as they are at `now`. Nothing is changed yet: the caller reserves
    /// room, then applies the answer.
    pub(crate) fn judge_readings<'a>(
        &'a self,
        readings: &[domain::Reading],
        now: Timestamp,
    ) -> (Vec<(Uuid, DeviceState)>, Vec<Transition>) {
        let mut by_device: Vec<(Uuid, Vec<ReadingPoint>)> = Vec::new();
        let mut position: HashMap<Uuid, usize> = HashMap::new();
        for r in readings {
            let at = *position.entry(r.device_id).or_insert_with(|| {
                by_device.push((r.device_id, Vec::new()));
                by_device.len() - 1
            });
            by_device[at].1.push(ReadingPoint {
                timestamp: r.timestamp,
                value: r.value.get(),
            });
        }
        let mut coverage: Option<Coverage<'a>> = None;
        let mut states = Vec::new();
        let mut transitions = Vec::new();
        for (id, mut points) in by_device {
            let Some(device) = self.devices.get(&id) else {
                continue;
            };
            points.sort_by_key(|p| p.timestamp);
            let mut covering: Option<Vec<WindowSlug>> = None;
            let mut covering_of = |coverage: &mut Option<Coverage<'a>>| -> Vec<WindowSlug> {
                covering
                    .get_or_insert_with(|| {
                        coverage
                            .get_or_insert_with(|| Coverage::at(self, now))
                            .of(device)
                    })
                    .clone()
            };
            let (mut state, mut changed) = (device.state, false);
            let mut threshold = self.alerts.open_of(id, AlertKind::Threshold).cloned();
            let mut stale = self.alerts.open_of(id, AlertKind::Stale).cloned();
            let mut value_moved = false;
            for point in points {
                let Some(next) = state.after_reading(&device.spec.thresholds, point) else {
                    continue;
                };
                changed = true;
                if next.alert_status != state.alert_status {
                    let covering = covering_of(&mut coverage);
                    if let Some(t) = alerting::on_status(
                        threshold.as_ref(),
                        id,
                        next.alert_status,
                        point.timestamp,
                        Some(point.value),
                        &covering,
                        Uuid::new_v4,
                    ) {
                        threshold = t.alert.is_open().then(|| t.alert.clone());
                        transitions.push(t);
                        value_moved = false;
                    }
                } else if let Some(open) = threshold.as_mut() {
                    // Same status: only the alert's last value follows, without an event.
                    open.last_value = Some(point.value);
                    value_moved = true;
                }
                state = next;
                if stale.is_some()
                    && state.freshness(device.spec.stale_after, now) == Freshness::Fresh
                {
                    let covering = covering_of(&mut coverage);
                    if let Some(t) = alerting::on_freshness(
                        stale.as_ref(),
                        id,
                        Freshness::Fresh,
                        now,
                        Some(point.value),
                        &covering,
                        Uuid::new_v4,
                    ) {
                        stale = None;
                        transitions.push(t);
                    }
                }
            }
            if let (true, Some(alert)) = (value_moved, threshold) {
                transitions.push(Transition {
                    alert,
                    events: Vec::new(),
                });
            }
            if changed {
                states.push((id, state));
            }
        }
        (states, transitions)
    }

    /// The device's state under its new spec, judged at `now`, and what that does to its
    /// threshold alert; `None` when nothing is to be recorded.
    pub(crate) fn judge_thresholds(
        &self,
        device: &Device,
        spec: &DeviceSpec,
        now: Timestamp,
    ) -> (DeviceState, Option<Transition>) {
        if spec.thresholds == device.spec.thresholds {
            return (device.state, None);
        }
        let next = device.state.after_thresholds(&spec.thresholds, now);
        if next.alert_status == device.state.alert_status {
            return (next, None);
        }
        // Covered as the device will be: its site and type may change in the same update.
        let judged = Device {
            spec: spec.clone(),
            ..device.clone()
        };
        let covering = Coverage::at(self, now).of(&judged);
        let transition = alerting::on_threshold_change(
            self.alerts.open_of(device.id, AlertKind::Threshold),
            device.id,
            next.alert_status,
            now,
            next.last_reading.map(|r| r.value),
            &covering,
            Uuid::new_v4,
        );
        (next, transition)
    }

    /// The device's state once its latest reading is removed, `remaining` the newest left,
    /// judged at `now`, and what that does to its alerts: the threshold alert as a threshold
    /// change would move it, and a stale alert resolved when the device is no longer stale.
    /// Nothing is changed yet.
    pub(crate) fn judge_removal(
        &self,
        device: &Device,
        remaining: Option<ReadingPoint>,
        now: Timestamp,
    ) -> (DeviceState, Vec<Transition>) {
        let next = device
            .state
            .after_latest_removed(&device.spec.thresholds, remaining);
        let mut transitions = Vec::new();
        let mut covering: Option<Vec<WindowSlug>> = None;
        let mut covering_now = || {
            covering
                .get_or_insert_with(|| Coverage::at(self, now).of(device))
                .clone()
        };
        if next.alert_status != device.state.alert_status {
            let covering = covering_now();
            transitions.extend(alerting::on_threshold_change(
                self.alerts.open_of(device.id, AlertKind::Threshold),
                device.id,
                next.alert_status,
                now,
                next.last_reading.map(|r| r.value),
                &covering,
                Uuid::new_v4,
            ));
        }
        let freshness = next.freshness(device.spec.stale_after, now);
        if let Some(stale) = self.alerts.open_of(device.id, AlertKind::Stale) {
            if freshness != Freshness::Stale {
                let covering = covering_now();
                transitions.extend(alerting::on_freshness(
                    Some(stale),
                    device.id,
                    freshness,
                    now,
                    next.last_reading.map(|r| r.value),
                    &covering,
                    Uuid::new_v4,
                ));
            }
        }
        (next, transitions)
    }

    /// For each of `devices` the tenant has, the windows covering it at `now`, ascending.
    pub(crate) fn covering_windows(
        &self,
        devices: &[Uuid],
        now: Timestamp,
    ) -> HashMap<Uuid, Vec<WindowSlug>> {
        let coverage = Coverage::at(self, now);
        devices
            .iter()
            .filter_map(|id| self.devices.get(id))
            .map(|device| (device.id, coverage.of(device)))
            .collect()
    }
}
