//! Alerts: episodes of a device out of the ordinary, and the events that tell their story.
//!
//! The rules here are the only place that says when an alert opens, changes, is muted or ends;
//! each store applies them inside the transaction that changes what they judge, and records the
//! events they return with the tenant's next sequence numbers.

use thiserror::Error;
use uuid::Uuid;

use crate::alert::AlertStatus;
use crate::device::DeviceName;
use crate::state::Freshness;
use crate::text::{self, TextError};
use crate::window::{Occurrence, WindowSlug};
use crate::{Actor, Timestamp};

/// Longest acknowledgement note.
pub const ACK_NOTE_MAX: usize = 500;
/// Most alerts one list answer holds.
pub const ALERT_PAGE_MAX: u32 = 1000;
/// Alerts one list answer holds when the client does not say.
pub const ALERT_PAGE_DEFAULT: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// The status left `normal`.
    Threshold,
    /// No reading for longer than the device's `stale_after_s`.
    Stale,
}

impl AlertKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Threshold => "threshold",
            Self::Stale => "stale",
        }
    }

    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "threshold" => Some(Self::Threshold),
            "stale" => Some(Self::Stale),
            _ => None,
        }
    }
}

/// How bad an alert is: a status other than `normal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    #[must_use]
    pub fn of(status: AlertStatus) -> Option<Self> {
        match status {
            AlertStatus::Normal => None,
            AlertStatus::Warning => Some(Self::Warning),
            AlertStatus::Critical => Some(Self::Critical),
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "warning" => Some(Self::Warning),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    Open,
    Resolved,
}

impl AlertState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }

    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "open" => Some(Self::Open),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// How long an acknowledgement holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckMode {
    /// Until the alert resolves.
    UntilResolved,
    /// Until the alert resolves or escalates.
    UntilEscalated,
    /// Until an instant (or the alert resolves first).
    Until,
}

impl AckMode {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UntilResolved => "until_resolved",
            Self::UntilEscalated => "until_escalated",
            Self::Until => "until",
        }
    }

    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "until_resolved" => Some(Self::UntilResolved),
            "until_escalated" => Some(Self::UntilEscalated),
            "until" => Some(Self::Until),
            _ => None,
        }
    }
}

/// A note left with an acknowledgement: at most [`ACK_NOTE_MAX`] characters, no NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckNote(String);

impl AckNote {
    /// # Errors
    /// [`TextError`] when too long or holding NUL.
    pub fn parse(value: &str) -> Result<Self, TextError> {
        text::free_text(value, ACK_NOTE_MAX).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Someone said they are on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub by: Actor,
    pub at: Timestamp,
    pub mode: AckMode,
    /// Set for [`AckMode::Until`] only.
    pub until: Option<Timestamp>,
    pub note: Option<AckNote>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AckRequestError {
    #[error("until: required when mode is until")]
    UntilMissing,
    #[error("until: only allowed when mode is until")]
    UntilNotAllowed,
    #[error("until: must be in the future")]
    UntilPast,
}

impl AckRequestError {
    #[must_use]
    pub fn field(&self) -> &'static str {
        "until"
    }
}

impl Acknowledgement {
    /// An acknowledgement by `by` at `at`.
    ///
    /// # Errors
    /// [`AckRequestError`] when `until` is missing for [`AckMode::Until`], given for another
    /// mode, or not after `at`.
    pub fn new(
        by: Actor,
        at: Timestamp,
        mode: AckMode,
        until: Option<Timestamp>,
        note: Option<AckNote>,
    ) -> Result<Self, AckRequestError> {
        match (mode, until) {
            (AckMode::Until, None) => return Err(AckRequestError::UntilMissing),
            (AckMode::Until, Some(until)) if until <= at => return Err(AckRequestError::UntilPast),
            (AckMode::UntilResolved | AckMode::UntilEscalated, Some(_)) => {
                return Err(AckRequestError::UntilNotAllowed)
            }
            _ => {}
        }
        Ok(Self {
            by,
            at,
            mode,
            until,
            note,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Opened,
    Escalated,
    Deescalated,
    Resolved,
    Suppressed,
    Unsuppressed,
    Acknowledged,
    Unacknowledged,
}

impl EventType {
    pub const ALL: [Self; 8] = [
        Self::Opened,
        Self::Escalated,
        Self::Deescalated,
        Self::Resolved,
        Self::Suppressed,
        Self::Unsuppressed,
        Self::Acknowledged,
        Self::Unacknowledged,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Escalated => "escalated",
            Self::Deescalated => "deescalated",
            Self::Resolved => "resolved",
            Self::Suppressed => "suppressed",
            Self::Unsuppressed => "unsuppressed",
            Self::Acknowledged => "acknowledged",
            Self::Unacknowledged => "unacknowledged",
        }
    }

    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

/// An alert as stored: everything but the device's name, which a reader joins in.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub id: Uuid,
    pub device_id: Uuid,
    pub kind: AlertKind,
    /// Now.
    pub severity: Severity,
    /// The worst it has been.
    pub peak_severity: Severity,
    pub state: AlertState,
    pub opened_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// The latest reading's value seen while open; `None` when no reading was (stale alerts).
    pub last_value: Option<f64>,
    /// The active windows covering the device as last recorded, by id; empty: not muted.
    pub suppressed_by: Vec<WindowSlug>,
    pub acknowledgement: Option<Acknowledgement>,
}

impl AlertRecord {
    #[must_use]
    pub fn suppressed(&self) -> bool {
        !self.suppressed_by.is_empty()
    }

    #[must_use]
    pub fn is_open(&self) -> bool {
        self.state == AlertState::Open
    }
}

/// An alert as a reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub record: AlertRecord,
    pub device_name: DeviceName,
}

/// One change of an alert, before the store numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlertEvent {
    pub event_type: EventType,
    pub at: Timestamp,
    /// The alert's severity after the change.
    pub severity: Severity,
    /// The reading that caused it; `None` when no reading did.
    pub value: Option<f64>,
    /// The windows covering the device when it happened; empty: not muted.
    pub window_ids: Vec<WindowSlug>,
}

impl NewAlertEvent {
    #[must_use]
    pub fn suppressed(&self) -> bool {
        !self.window_ids.is_empty()
    }
}

/// A recorded change, numbered in its tenant's order.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub seq: i64,
    pub alert_id: Uuid,
    pub event: NewAlertEvent,
}

/// An alert after a change, with the events that tell it (in order; may be empty when only
/// `last_value` moved). The store upserts `alert` by id and appends `events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub alert: AlertRecord,
    pub events: Vec<NewAlertEvent>,
}

/// The threshold alert's answer to the device's status becoming `status` at `at` because of a
/// reading of `value` (or a threshold change: `value` is then the latest reading's). `open` is
/// the device's open threshold alert; `covering` the active windows covering the device now.
/// `None`: nothing to record.
#[must_use]
pub fn on_status(
    open: Option<&AlertRecord>,
    device_id: Uuid,
    status: AlertStatus,
    at: Timestamp,
    value: Option<f64>,
    covering: &[WindowSlug],
    new_id: impl FnOnce() -> Uuid,
) -> Option<Transition> {
    let severity = Severity::of(status);
    let Some(open) = open else {
        let severity = severity?;
        let alert = AlertRecord {
            id: new_id(),
            device_id,
            kind: AlertKind::Threshold,
            severity,
            peak_severity: severity,
            state: AlertState::Open,
            opened_at: at,
            resolved_at: None,
            last_value: value,
            suppressed_by: covering.to_vec(),
            acknowledgement: None,
        };
        let events = vec![event(EventType::Opened, at, severity, value, covering)];
        return Some(Transition { alert, events });
    };
    let mut transition = reconcile(open, covering, at);
    let alert = &mut transition.alert;
    alert.last_value = value.or(alert.last_value);
    match severity {
        None => {
            alert.state = AlertState::Resolved;
            alert.resolved_at = Some(at);
            let severity = alert.severity;
            transition
                .events
                .push(event(EventType::Resolved, at, severity, value, covering));
        }
        Some(severity) if severity > alert.severity => {
            alert.severity = severity;
            alert.peak_severity = alert.peak_severity.max(severity);
            transition
                .events
                .push(event(EventType::Escalated, at, severity, value, covering));
            if alert
                .acknowledgement
                .as_ref()
                .is_some_and(|a| a.mode == AckMode::UntilEscalated)
            {
                transition.alert.acknowledgement = None;
                transition.events.push(event(
                    EventType::Unacknowledged,
                    at,
                    severity,
                    None,
                    covering,
                ));
            }
        }
        Some(severity) if severity < alert.severity => {
            alert.severity = severity;
            transition
                .events
                .push(event(EventType::Deescalated, at, severity, value, covering));
        }
        Some(_) => {}
    }
    Some(transition)
}

/// The threshold alert's answer to new thresholds judging the latest reading (`latest_value`)
/// again at `at`: as [`on_status`], but no reading caused it, so its events carry no value;
/// the alert's `last_value` is still the latest reading's.
#[must_use]
pub fn on_threshold_change(
    open: Option<&AlertRecord>,
    device_id: Uuid,
    status: AlertStatus,
    at: Timestamp,
    latest_value: Option<f64>,
    covering: &[WindowSlug],
    new_id: impl FnOnce() -> Uuid,
) -> Option<Transition> {
    let mut transition = on_status(open, device_id, status, at, None, covering, new_id)?;
    transition.alert.last_value = latest_value.or(transition.alert.last_value);
    Some(transition)
}

/// The stale alert's answer to the device's freshness at `at`; `value` is the reading that made
/// it fresh again, if one did. `None`: nothing to record.
#[must_use]
pub fn on_freshness(
    open: Option<&AlertRecord>,
    device_id: Uuid,
    freshness: Freshness,
    at: Timestamp,
    value: Option<f64>,
    covering: &[WindowSlug],
    new_id: impl FnOnce() -> Uuid,
) -> Option<Transition> {
    match (open, freshness) {
        (None, Freshness::Stale) => {
            let alert = AlertRecord {
                id: new_id(),
                device_id,
                kind: AlertKind::Stale,
                severity: Severity::Warning,
                peak_severity: Severity::Warning,
                state: AlertState::Open,
                opened_at: at,
                resolved_at: None,
                last_value: None,
                suppressed_by: covering.to_vec(),
                acknowledgement: None,
            };
            let events = vec![event(
                EventType::Opened,
                at,
                Severity::Warning,
                None,
                covering,
            )];
            Some(Transition { alert, events })
        }
        (Some(open), Freshness::Fresh | Freshness::NoData) => {
            let mut transition = reconcile(open, covering, at);
            transition.alert.state = AlertState::Resolved;
            transition.alert.resolved_at = Some(at);
            transition.alert.last_value = value.or(transition.alert.last_value);
            transition.events.push(event(
                EventType::Resolved,
                at,
                open.severity,
                value,
                covering,
            ));
            Some(transition)
        }
        _ => None,
    }
}

/// The open alert's answer to the windows covering its device at `at` being `covering`: a
/// `suppressed` event when muting starts, `unsuppressed` when it ends (the re-notification), and
/// a silent update when only which windows mute it changed. `None`: nothing changed.
#[must_use]
pub fn on_coverage(
    open: &AlertRecord,
    covering: &[WindowSlug],
    at: Timestamp,
) -> Option<Transition> {
    if !open.is_open() || open.suppressed_by == covering {
        return None;
    }
    Some(reconcile(open, covering, at))
}

/// The open alert's answer to time passing: an acknowledgement whose `until` has come ends.
#[must_use]
pub fn on_time(open: &AlertRecord, now: Timestamp) -> Option<Transition> {
    let ack = open.acknowledgement.as_ref()?;
    if !open.is_open() || ack.until.is_none_or(|until| until > now) {
        return None;
    }
    let mut alert = open.clone();
    alert.acknowledgement = None;
    let events = vec![event(
        EventType::Unacknowledged,
        now,
        open.severity,
        None,
        &open.suppressed_by,
    )];
    Some(Transition { alert, events })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AckError {
    #[error("Alert is resolved")]
    Resolved,
}

/// Acknowledges the alert (again: a new acknowledgement replaces the old).
///
/// # Errors
/// [`AckError::Resolved`] for a resolved alert.
pub fn acknowledge(alert: &AlertRecord, ack: Acknowledgement) -> Result<Transition, AckError> {
    if !alert.is_open() {
        return Err(AckError::Resolved);
    }
    let mut after = alert.clone();
    let events = vec![event(
        EventType::Acknowledged,
        ack.at,
        alert.severity,
        None,
        &alert.suppressed_by,
    )];
    after.acknowledgement = Some(ack);
    Ok(Transition {
        alert: after,
        events,
    })
}

/// Withdraws the acknowledgement; `None` when there is none (nothing to record).
///
/// # Errors
/// [`AckError::Resolved`] for a resolved alert.
pub fn unacknowledge(alert: &AlertRecord, at: Timestamp) -> Result<Option<Transition>, AckError> {
    if !alert.is_open() {
        return Err(AckError::Resolved);
    }
    if alert.acknowledgement.is_none() {
        return Ok(None);
    }
    let mut after = alert.clone();
    after.acknowledgement = None;
    let events = vec![event(
        EventType::Unacknowledged,
        at,
        alert.severity,
        None,
        &alert.suppressed_by,
    )];
    Ok(Some(Transition {
        alert: after,
        events,
    }))
}

/// The alert with `suppressed_by` brought to `covering`, and the event that says so when muting
/// starts or ends.
fn reconcile(open: &AlertRecord, covering: &[WindowSlug], at: Timestamp) -> Transition {
    let mut alert = open.clone();
    let mut events = Vec::new();
    if open.suppressed_by != covering {
        match (open.suppressed(), covering.is_empty()) {
            (false, false) => events.push(event(
                EventType::Suppressed,
                at,
                open.severity,
                None,
                covering,
            )),
            (true, true) => events.push(event(
                EventType::Unsuppressed,
                at,
                open.severity,
                None,
                covering,
            )),
            _ => {}
        }
        alert.suppressed_by = covering.to_vec();
    }
    Transition { alert, events }
}

fn event(
    event_type: EventType,
    at: Timestamp,
    severity: Severity,
    value: Option<f64>,
    covering: &[WindowSlug],
) -> NewAlertEvent {
    NewAlertEvent {
        event_type,
        at,
        severity,
        value,
        window_ids: covering.to_vec(),
    }
}

/// What a window's latest started occurrence did: the alerts it muted (those with an event
/// recorded as suppressed by it during the occurrence) and which of them were still open when
/// it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowReport {
    pub window_id: WindowSlug,
    /// `ends_at` is `None` while the occurrence runs.
    pub occurrence: Occurrence,
    pub alerts: Vec<Alert>,
    pub still_open_at_end: Vec<Uuid>,
}

/// Where a list of alerts goes on: after the alert opened at `opened_at` with `id`, in the
/// list's order (newest `opened_at` first, then greatest id first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertCursor {
    pub opened_at: Timestamp,
    pub id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::new(time::macros::datetime!(2026-01-01 00:00 UTC) + Duration::seconds(seconds))
            .expect("in range")
    }

    fn window(n: u32) -> WindowSlug {
        WindowSlug::generate(n)
    }

    fn id() -> Uuid {
        Uuid::from_u128(7)
    }

    fn types(t: &Transition) -> Vec<EventType> {
        t.events.iter().map(|e| e.event_type).collect()
    }

    fn opened(status: AlertStatus, covering: &[WindowSlug]) -> AlertRecord {
        on_status(None, id(), status, at(0), Some(35.0), covering, id)
            .expect("opens")
            .alert
    }

    #[test]
    fn a_threshold_alert_opens_follows_the_status_and_resolves() {
        assert_eq!(
            on_status(None, id(), AlertStatus::Normal, at(0), Some(1.0), &[], id),
            None
        );
        let open =
            on_status(None, id(), AlertStatus::Warning, at(0), Some(35.0), &[], id).expect("opens");
        assert_eq!(types(&open), [EventType::Opened]);
        assert_eq!(open.alert.severity, Severity::Warning);
        let up = on_status(
            Some(&open.alert),
            id(),
            AlertStatus::Critical,
            at(1),
            Some(45.0),
            &[],
            id,
        )
        .expect("changes");
        assert_eq!(types(&up), [EventType::Escalated]);
        assert_eq!(up.alert.peak_severity, Severity::Critical);
        let down = on_status(
            Some(&up.alert),
            id(),
            AlertStatus::Warning,
            at(2),
            Some(35.0),
            &[],
            id,
        )
        .expect("changes");
        assert_eq!(types(&down), [EventType::Deescalated]);
        assert_eq!(
            (down.alert.severity, down.alert.peak_severity),
            (Severity::Warning, Severity::Critical)
        );
        let same = on_status(
            Some(&down.alert),
            id(),
            AlertStatus::Warning,
            at(3),
            Some(36.0),
            &[],
            id,
        )
        .expect("value moves");
        assert!(same.events.is_empty());
        assert_eq!(same.alert.last_value, Some(36.0));
        let end = on_status(
            Some(&same.alert),
            id(),
            AlertStatus::Normal,
            at(4),
            Some(20.0),
            &[],
            id,
        )
        .expect("resolves");
        assert_eq!(types(&end), [EventType::Resolved]);
        assert_eq!(
            (end.alert.state, end.alert.resolved_at),
            (AlertState::Resolved, Some(at(4)))
        );
        assert_eq!(end.events[0].value, Some(20.0));
    }

    #[test]
    fn a_threshold_change_is_no_reading_but_keeps_the_latest_value() {
        let t = on_threshold_change(
            None,
            id(),
            AlertStatus::Critical,
            at(5),
            Some(50.0),
            &[],
            id,
        )
        .expect("opens");
        assert_eq!(t.events[0].value, None);
        assert_eq!(t.alert.last_value, Some(50.0));
    }

    #[test]
    fn events_under_a_window_are_muted_and_its_end_renotifies() {
        let w = [window(1)];
        let open = opened(AlertStatus::Warning, &w);
        assert!(open.suppressed());
        let ended = on_coverage(&open, &[], at(5)).expect("muting ends");
        assert_eq!(types(&ended), [EventType::Unsuppressed]);
        assert!(!ended.alert.suppressed());
        assert_eq!(on_coverage(&ended.alert, &[], at(6)), None);
        let again = on_coverage(&ended.alert, &w, at(7)).expect("muting starts");
        assert_eq!(types(&again), [EventType::Suppressed]);
        assert!(again.events[0].suppressed());
        let other = [window(2)];
        let swapped = on_coverage(&again.alert, &other, at(8)).expect("other window");
        assert!(swapped.events.is_empty(), "still muted: nothing to tell");
        assert_eq!(swapped.alert.suppressed_by, other);
    }

    #[test]
    fn a_status_change_first_catches_up_with_coverage() {
        let open = opened(AlertStatus::Warning, &[window(1)]);
        let up = on_status(
            Some(&open),
            id(),
            AlertStatus::Critical,
            at(9),
            Some(45.0),
            &[],
            id,
        )
        .expect("changes");
        assert_eq!(types(&up), [EventType::Unsuppressed, EventType::Escalated]);
        assert!(!up.events[1].suppressed());
    }

    #[test]
    fn acknowledgements_end_as_their_mode_says() {
        let open = opened(AlertStatus::Warning, &[]);
        let actor = Actor::parse("ops").expect("valid");
        let ack = Acknowledgement::new(actor.clone(), at(1), AckMode::UntilEscalated, None, None)
            .expect("valid");
        let acked = acknowledge(&open, ack).expect("open");
        assert_eq!(types(&acked), [EventType::Acknowledged]);
        let up = on_status(
            Some(&acked.alert),
            id(),
            AlertStatus::Critical,
            at(2),
            Some(45.0),
            &[],
            id,
        )
        .expect("changes");
        assert_eq!(
            types(&up),
            [EventType::Escalated, EventType::Unacknowledged]
        );
        assert_eq!(up.alert.acknowledgement, None);

        let timed = Acknowledgement::new(actor.clone(), at(1), AckMode::Until, Some(at(60)), None)
            .expect("valid");
        let acked = acknowledge(&open, timed).expect("open").alert;
        assert_eq!(on_time(&acked, at(59)), None);
        let expired = on_time(&acked, at(60)).expect("expires");
        assert_eq!(types(&expired), [EventType::Unacknowledged]);

        let held =
            Acknowledgement::new(actor, at(1), AckMode::UntilResolved, None, None).expect("valid");
        let acked = acknowledge(&open, held).expect("open").alert;
        let up = on_status(
            Some(&acked),
            id(),
            AlertStatus::Critical,
            at(2),
            None,
            &[],
            id,
        )
        .expect("changes");
        assert!(up.alert.acknowledgement.is_some(), "until_resolved holds");
        let end = on_status(
            Some(&up.alert),
            id(),
            AlertStatus::Normal,
            at(3),
            None,
            &[],
            id,
        )
        .expect("resolves");
        assert_eq!(
            types(&end),
            [EventType::Resolved],
            "it simply ends with the alert"
        );
        assert_eq!(
            acknowledge(
                &end.alert,
                Acknowledgement::new(
                    Actor::parse("x").expect("valid"),
                    at(4),
                    AckMode::UntilResolved,
                    None,
                    None
                )
                .expect("valid")
            ),
            Err(AckError::Resolved)
        );
    }

    #[test]
    fn an_acknowledgement_request_is_checked() {
        let actor = Actor::parse("ops").expect("valid");
        assert_eq!(
            Acknowledgement::new(actor.clone(), at(10), AckMode::Until, None, None),
            Err(AckRequestError::UntilMissing)
        );
        assert_eq!(
            Acknowledgement::new(actor.clone(), at(10), AckMode::Until, Some(at(10)), None),
            Err(AckRequestError::UntilPast)
        );
        assert_eq!(
            Acknowledgement::new(actor, at(10), AckMode::UntilResolved, Some(at(20)), None),
            Err(AckRequestError::UntilNotAllowed)
        );
        assert!(AckNote::parse(&"x".repeat(ACK_NOTE_MAX)).is_ok());
        assert!(AckNote::parse(&"x".repeat(ACK_NOTE_MAX + 1)).is_err());
    }

    #[test]
    fn a_stale_alert_opens_as_a_warning_and_resolves_at_the_next_fresh_reading() {
        let open = on_freshness(None, id(), Freshness::Stale, at(0), None, &[], id).expect("opens");
        assert_eq!(
            (open.alert.kind, open.alert.severity, open.events[0].value),
            (AlertKind::Stale, Severity::Warning, None)
        );
        assert_eq!(
            on_freshness(
                Some(&open.alert),
                id(),
                Freshness::Stale,
                at(1),
                None,
                &[],
                id
            ),
            None
        );
        let end = on_freshness(
            Some(&open.alert),
            id(),
            Freshness::Fresh,
            at(2),
            Some(3.0),
            &[],
            id,
        )
        .expect("resolves");
        assert_eq!(types(&end), [EventType::Resolved]);
        assert_eq!(end.events[0].value, Some(3.0));
        assert_eq!(
            on_freshness(None, id(), Freshness::Fresh, at(2), None, &[], id),
            None
        );
    }
}
