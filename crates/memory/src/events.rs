//! The event log in memory (issue 15): each tenant's events, numbered by the counter its alert
//! events use, kept under the tenant's lock with the writes that cause them, at most
//! [`MemoryStore::EVENTS_PER_TENANT_MAX`] a tenant (past it the oldest go, as if pruned: a
//! reader that missed them is told so by `EventPage::lost_after`). Each recorded event is
//! queued to the webhook outbox before the tenant's lock is released.

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use domain::{
    Alert, AlertRecord, AlertStatus, DeviceName, DeviceState, Freshness, MaintenanceWindow,
    StreamEventType, TenantId, Timestamp, Transition, WindowDefinition, WindowSlug,
};
use ports::{DeviceStateChange, EventLog, EventPage, EventSubject, LoggedEvent, StoreError};
use uuid::Uuid;

use crate::{MemoryStore, TenantData};

/// One tenant's log.
#[derive(Default)]
pub(crate) struct Log {
    /// Oldest first, seqs contiguous; each with the instant it was recorded (what pruning
    /// goes by).
    events: VecDeque<(Timestamp, LoggedEvent)>,
    /// Recorded by the write under way, not yet queued to the webhook outbox.
    pub(crate) unsent: Vec<(i64, StreamEventType, Timestamp)>,
    /// The occurrence of each window announced as started (its start), until its end is.
    announced: HashMap<WindowSlug, Timestamp>,
}

/// A device's freshness as the log records it (the rule of the PostgreSQL store's
/// `keeping::recorded_freshness`): stale while a stale alert is open, no data before a first
/// reading, fresh otherwise.
fn recorded_freshness(state: &DeviceState, stale_open: bool) -> Freshness {
    if stale_open {
        Freshness::Stale
    } else if state.last_reading.is_none() {
        Freshness::NoData
    } else {
        Freshness::Fresh
    }
}

/// The occurrence of the window applying at `now` (its start), if any.
fn current_occurrence(window: &WindowDefinition, now: Timestamp) -> Option<Timestamp> {
    window
        .occurrences(now, 1)
        .into_iter()
        .next()
        .filter(|o| o.contains(now))
        .map(|o| o.starts_at)
}

impl TenantData {
    fn push_event(&mut self, event: LoggedEvent) {
        self.log
            .unsent
            .push((event.seq, event.event_type, event.at));
        self.log.events.push_back((Timestamp::now(), event));
        while self.log.events.len() > MemoryStore::EVENTS_PER_TENANT_MAX {
            self.log.events.pop_front();
        }
    }

    /// The UUIDs of the groups the device is in, ascending.
    fn device_group_ids(&self, device: Uuid) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .groups
            .iter()
            .filter(|g| self.members.contains(&(g.id, device)))
            .map(|g| g.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Records the transition (alert and history) and logs its events, each with the alert as
    /// the transition left it.
    pub(crate) fn record_alert(&mut self, transition: Transition) {
        let alert: AlertRecord = transition.alert.clone();
        let numbered = self.alerts.record(transition);
        if numbered.is_empty() {
            return;
        }
        let device_name = self.device(alert.device_id).map_or_else(
            || DeviceName::parse("unknown").expect("a valid name"),
            |d| d.spec.name.clone(),
        );
        let group_ids = self.device_group_ids(alert.device_id);
        for event in numbered {
            self.push_event(LoggedEvent {
                seq: event.seq,
                event_type: StreamEventType::Alert(event.event.event_type),
                at: event.event.at,
                group_ids: group_ids.clone(),
                subject: EventSubject::Alert(Alert {
                    record: alert.clone(),
                    device_name: device_name.clone(),
                }),
            });
        }
    }

    /// The device's status and freshness as the log records them.
    fn device_mark(&self, device: Uuid) -> Option<(AlertStatus, Freshness)> {
        let d = self.device(device)?;
        let stale_open = self
            .alerts
            .open_of(device, domain::AlertKind::Stale)
            .is_some();
        Some((
            d.state.alert_status,
            recorded_freshness(&d.state, stale_open),
        ))
    }

    /// Runs `change`, then logs `device.state` for each of `devices` whose status or recorded
    /// freshness it changed.
    pub(crate) fn logging_device_states<T>(
        &mut self,
        devices: &[Uuid],
        now: Timestamp,
        change: impl FnOnce(&mut Self) -> T,
    ) -> T {
        let before: Vec<_> = devices.iter().map(|d| self.device_mark(*d)).collect();
        let answer = change(self);
        for (device, before) in devices.iter().zip(before) {
            let after = self.device_mark(*device);
            let (Some(before), Some((alert_status, freshness)), Some(d)) =
                (before, after, self.device(*device))
            else {
                continue;
            };
            if before == (alert_status, freshness) {
                continue;
            }
            let device_name = d.spec.name.clone();
            let group_ids = self.device_group_ids(*device);
            let event = LoggedEvent {
                seq: self.alerts.next_seq(),
                event_type: StreamEventType::DeviceState,
                at: now,
                group_ids,
                subject: EventSubject::Device(DeviceStateChange {
                    device_id: *device,
                    device_name,
                    alert_status,
                    freshness,
                }),
            };
            self.push_event(event);
        }
        answer
    }

    fn log_window(
        &mut self,
        window: &MaintenanceWindow,
        event_type: StreamEventType,
        at: Timestamp,
    ) {
        let named = window.definition.group_ids.as_deref().unwrap_or_default();
        let mut group_ids: Vec<Uuid> = self
            .groups
            .iter()
            .filter(|g| named.contains(&g.group_id))
            .map(|g| g.id)
            .collect();
        group_ids.sort_unstable();
        let event = LoggedEvent {
            seq: self.alerts.next_seq(),
            event_type,
            at,
            group_ids,
            subject: EventSubject::Window(window.clone()),
        };
        self.push_event(event);
    }

    /// Whether a window's announcement is behind at `now` (for the evaluator's look).
    pub(crate) fn windows_to_announce(&self, now: Timestamp) -> bool {
        self.windows.iter().any(|w| {
            self.log.announced.get(&w.window_id).copied() != current_occurrence(&w.definition, now)
        })
    }

    /// Logs the starts and ends of window occurrences not yet announced at `now` (of one
    /// window, or of all).
    pub(crate) fn announce_windows(&mut self, only: Option<&WindowSlug>, now: Timestamp) {
        let moves: Vec<(MaintenanceWindow, Option<Timestamp>, Option<Timestamp>)> = self
            .windows
            .iter()
            .filter(|w| only.is_none_or(|id| *id == w.window_id))
            .filter_map(|w| {
                let announced = self.log.announced.get(&w.window_id).copied();
                let current = current_occurrence(&w.definition, now);
                (announced != current).then(|| (w.clone(), announced, current))
            })
            .collect();
        for (window, announced, current) in moves {
            if announced.is_some() {
                self.log_window(&window, StreamEventType::WindowEnded, now);
            }
            match current {
                Some(start) => {
                    self.log_window(&window, StreamEventType::WindowStarted, now);
                    self.log.announced.insert(window.window_id.clone(), start);
                }
                None => {
                    self.log.announced.remove(&window.window_id);
                }
            }
        }
    }

    /// Logs the end of a window about to be deleted, if its start was announced.
    pub(crate) fn window_deleted(&mut self, window: &MaintenanceWindow, now: Timestamp) {
        if self.log.announced.remove(&window.window_id).is_some() {
            self.log_window(window, StreamEventType::WindowEnded, now);
        }
    }

    fn events_after(&self, after: i64, limit: usize) -> EventPage {
        let events = &self.log.events;
        let first = events.front().map(|(_, e)| e.seq);
        // Seqs are contiguous: the position of `after + 1` is its distance from the first.
        let skip = first.map_or(0, |first| {
            usize::try_from(after.saturating_add(1).saturating_sub(first)).unwrap_or(0)
        });
        EventPage {
            events: events
                .iter()
                .skip(skip)
                .take(limit)
                .map(|(_, e)| e.clone())
                .collect(),
            first_retained: first,
            last_seq: self.alerts.last_seq(),
        }
    }

    /// Drops events recorded before `before`, at most `limit`; how many went.
    fn prune(&mut self, before: Timestamp, limit: u64) -> u64 {
        let mut gone = 0;
        while gone < limit
            && self
                .log
                .events
                .front()
                .is_some_and(|(recorded, _)| *recorded < before)
        {
            self.log.events.pop_front();
            gone += 1;
        }
        gone
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn events_after(
        &self,
        tenant: &TenantId,
        after: i64,
        limit: u32,
    ) -> Result<EventPage, StoreError> {
        let limit = limit.clamp(1, 1_000) as usize;
        Ok(self
            .read(tenant, move |data| data.events_after(after, limit))
            .await?
            .unwrap_or_default())
    }

    async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let mut gone = 0;
        for (_, data) in self.all_tenants() {
            let left = u64::from(limit).saturating_sub(gone);
            if left == 0 {
                break;
            }
            let mut guard = data.write().await;
            gone += guard.prune(before, left);
        }
        Ok(gone)
    }
}
