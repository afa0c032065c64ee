//! Stories of the device state kept at write time and of the alerts built on it (issue 14).
//!
//! Ingest judges freshness and window coverage at the wall clock, so readings that must be fresh
//! are stamped relative to [`Timestamp::now`]; the evaluator is always given its instant.

use std::collections::HashSet;

use time::macros::datetime;
use time::Duration;
use uuid::Uuid;

use super::{alice, at, batch, new_device, new_group, new_window, reading, scoped_device, tenant};
use crate::{
    AckAlertError, AlertEvaluator, AlertFilter, AlertListError, AlertQuery, AlertRepository,
    DeviceGroupRepository, DeviceRepository, GroupKey, LookupError, MaintenanceWindowRepository,
    ReadingRepository,
};
use domain::{
    AckMode, AckNote, Acknowledgement, Alert, AlertEvent, AlertKind, AlertState, AlertStatus,
    DeviceChanges, DeviceName, EventType, Freshness, GroupSlug, ListQuery, Reading, ReadingPoint,
    ReadingValue, ScopeLabel, Severity, StaleAfter, TenantId, Timestamp, WindowChanges,
    WindowSchedule, WindowSlug,
};

fn plus(t: Timestamp, seconds: i64) -> Timestamp {
    t.checked_add(Duration::seconds(seconds)).expect("in range")
}

fn reading_at(device: Uuid, timestamp: Timestamp, value: f64) -> Reading {
    Reading {
        device_id: device,
        timestamp,
        value: ReadingValue::new(value).expect("finite"),
    }
}

async fn send<S: ReadingRepository>(store: &S, t: &TenantId, device: Uuid, at: Timestamp, v: f64) {
    store
        .ingest(t, batch(vec![reading_at(device, at, v)]))
        .await
        .expect("ingested");
}

fn everything() -> AlertFilter {
    AlertFilter::default()
}

fn of_device(device: Uuid) -> AlertFilter {
    AlertFilter {
        device_id: Some(device),
        ..AlertFilter::default()
    }
}

/// Every alert the filter selects, read page by page (`limit` a page), checking that no alert
/// comes twice and that the last page says so.
async fn all_alerts<S: AlertRepository>(
    store: &S,
    t: &TenantId,
    filter: AlertFilter,
    limit: u32,
) -> Vec<Alert> {
    let mut found: Vec<Alert> = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_alerts(
                t,
                &AlertQuery {
                    filter: filter.clone(),
                    limit,
                    after,
                },
            )
            .await
            .expect("listed");
        assert!(
            page.alerts.len() <= limit as usize,
            "a page holds at most its limit"
        );
        found.extend(page.alerts);
        match page.next {
            None => break,
            Some(next) => after = Some(next),
        }
        assert!(found.len() < 10_000, "paging never ends");
    }
    let ids: HashSet<Uuid> = found.iter().map(|a| a.record.id).collect();
    assert_eq!(ids.len(), found.len(), "no alert is listed twice");
    found
}

async fn ids<S: AlertRepository>(store: &S, t: &TenantId, filter: AlertFilter) -> Vec<Uuid> {
    all_alerts(store, t, filter, 1000)
        .await
        .into_iter()
        .map(|a| a.record.id)
        .collect()
}

/// The device's only open alert of `kind`, if any (and there is never more than one).
async fn open_alert<S: AlertRepository>(
    store: &S,
    t: &TenantId,
    device: Uuid,
    kind: AlertKind,
) -> Option<Alert> {
    let filter = AlertFilter {
        state: Some(AlertState::Open),
        kind: Some(kind),
        ..of_device(device)
    };
    let mut open = all_alerts(store, t, filter, 1000).await;
    assert!(open.len() <= 1, "at most one open {kind:?} alert: {open:?}");
    open.pop()
}

async fn events_of<S: AlertRepository>(store: &S, t: &TenantId, id: Uuid) -> Vec<AlertEvent> {
    let (alert, events) = store.get_alert(t, id).await.expect("found");
    assert_eq!(alert.record.id, id);
    assert!(
        events.windows(2).all(|w| w[0].seq < w[1].seq),
        "events oldest first, seq strictly increasing: {events:?}"
    );
    assert!(events.iter().all(|e| e.alert_id == id));
    events
}

fn types(events: &[AlertEvent]) -> Vec<EventType> {
    events.iter().map(|e| e.event.event_type).collect()
}

fn slug(value: &str) -> WindowSlug {
    WindowSlug::parse(value).expect("valid slug")
}

fn group_slug(value: &str) -> GroupSlug {
    GroupSlug::parse(value).expect("valid slug")
}

fn ack(mode: AckMode, until: Option<Timestamp>) -> Acknowledgement {
    Acknowledgement::new(
        alice(),
        Timestamp::now(),
        mode,
        until,
        Some(AckNote::parse("on it").expect("valid")),
    )
    .expect("valid acknowledgement")
}

fn thresholds_changed(warning_upper: f64) -> DeviceChanges {
    DeviceChanges {
        thresholds: [None, None, Some(Some(warning_upper)), None],
        ..DeviceChanges::default()
    }
}

/// A device's state follows its newest reading, judged by its thresholds (critical below -10 or
/// above 40, warning below 0 or above 30): `since` is when the status began, an older reading
/// changes nothing, a reading at the latest's instant replaces it, and a batch is taken in time
/// order.
pub async fn device_state_follows_the_newest_reading<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository + ReadingRepository + AlertRepository,
{
    let t = tenant("contract-state");
    let d = new_device("state-a");
    let created = store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    assert_eq!(created.state, domain::DeviceState::default());
    let fresh = store.get_device(&t, d.id).await.expect("found");
    assert_eq!(
        (
            fresh.state.alert_status,
            fresh.state.since,
            fresh.state.last_reading
        ),
        (AlertStatus::Normal, None, None),
        "no reading: no since, no last reading"
    );
    let t1 = at(datetime!(2025-06-01 10:00 UTC));
    let t2 = at(datetime!(2025-06-01 11:00 UTC));
    let t3 = at(datetime!(2025-06-01 12:00 UTC));
    let point = |timestamp, value| Some(ReadingPoint { timestamp, value });

    send(store, &t, d.id, t1, 20.0).await;
    let s = store.get_device(&t, d.id).await.expect("found").state;
    assert_eq!(
        (s.alert_status, s.since, s.last_reading),
        (AlertStatus::Normal, Some(t1), point(t1, 20.0))
    );
    send(store, &t, d.id, t2, 25.0).await;
    let s = store.get_device(&t, d.id).await.expect("found").state;
    assert_eq!(
        (s.alert_status, s.since, s.last_reading),
        (AlertStatus::Normal, Some(t1), point(t2, 25.0)),
        "still normal: since stays"
    );
    send(store, &t, d.id, t3, 35.0).await;
    let s = store.get_device(&t, d.id).await.expect("found").state;
    assert_eq!(
        (s.alert_status, s.since, s.last_reading),
        (AlertStatus::Warning, Some(t3), point(t3, 35.0))
    );
    let warning = open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .expect("a warning opens an alert");

    // Older than the latest: stored as a reading, but neither the state nor the alert moves.
    send(store, &t, d.id, at(datetime!(2025-06-01 09:00 UTC)), 50.0).await;
    let s = store.get_device(&t, d.id).await.expect("found").state;
    assert_eq!(
        (s.alert_status, s.since, s.last_reading),
        (AlertStatus::Warning, Some(t3), point(t3, 35.0)),
        "an older reading changes nothing"
    );
    let (same, same_events) = store.get_alert(&t, warning.record.id).await.expect("found");
    assert_eq!(same.record, warning.record, "nor does it touch the alert");
    assert_eq!(types(&same_events), [EventType::Opened]);

    // Re-sent at the latest's instant: it replaces the latest reading and is judged.
    send(store, &t, d.id, t3, 45.0).await;
    let s = store.get_device(&t, d.id).await.expect("found").state;
    assert_eq!(
        (s.alert_status, s.since, s.last_reading),
        (AlertStatus::Critical, Some(t3), point(t3, 45.0)),
        "a same-instant re-send replaces"
    );

    // One batch, out of order: judged in time order, so it ends normal.
    let t4 = at(datetime!(2025-06-01 13:00 UTC));
    let t5 = at(datetime!(2025-06-01 14:00 UTC));
    store
        .ingest(
            &t,
            batch(vec![reading_at(d.id, t5, 20.0), reading_at(d.id, t4, 35.0)]),
        )
        .await
        .expect("ingested");
    let device = store.get_device(&t, d.id).await.expect("found");
    assert_eq!(
        (
            device.state.alert_status,
            device.state.since,
            device.state.last_reading
        ),
        (AlertStatus::Normal, Some(t5), point(t5, 20.0))
    );
    let events = events_of(store, &t, warning.record.id).await;
    assert_eq!(
        types(&events),
        [
            EventType::Opened,
            EventType::Escalated,
            EventType::Deescalated,
            EventType::Resolved
        ]
    );
    let ats: Vec<Timestamp> = events.iter().map(|e| e.event.at).collect();
    assert_eq!(ats, [t3, t3, t4, t5], "each event at its reading's instant");
    let values: Vec<Option<f64>> = events.iter().map(|e| e.event.value).collect();
    assert_eq!(values, [Some(35.0), Some(45.0), Some(35.0), Some(20.0)]);

    // Lists and group details carry the same kept state.
    let listed = store
        .list_devices(&t, &domain::DeviceFilter::all(), &ListQuery::default())
        .await
        .expect("listed");
    assert_eq!(listed.items[0].state, device.state);
    let mut g = new_group("grp-state", "State");
    g.members = vec![d.id];
    let detail = store.create_group(&t, &alice(), g).await.expect("created");
    assert_eq!(detail.members[0].device.state, device.state);
}

/// New thresholds judge the latest reading again: a status that changes begins at the change,
/// and the threshold alert follows with events that carry no reading's value.
pub async fn new_thresholds_judge_the_latest_reading_again<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + AlertRepository,
{
    let t = tenant("contract-thresholds");
    let d = new_device("thr-a");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let t1 = at(datetime!(2025-06-01 10:00 UTC));
    send(store, &t, d.id, t1, 35.0).await;
    let warning = open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .expect("opened");

    let before = Timestamp::now();
    let widened = store
        .update_device(&t, &alice(), d.id, thresholds_changed(38.0))
        .await
        .expect("updated");
    let after = Timestamp::now();
    let since = widened.state.since.expect("has a reading");
    assert_eq!(widened.state.alert_status, AlertStatus::Normal);
    assert!(
        before <= since && since <= after,
        "since is the change's time: {since:?} not in [{before:?}, {after:?}]"
    );
    assert_eq!(widened.state.last_reading.map(|r| r.value), Some(35.0));
    assert_eq!(
        store.get_device(&t, d.id).await.expect("found").state,
        widened.state
    );
    let (resolved, events) = store.get_alert(&t, warning.record.id).await.expect("found");
    assert_eq!(resolved.record.state, AlertState::Resolved);
    assert_eq!(resolved.record.resolved_at, Some(since));
    assert_eq!(resolved.record.last_value, Some(35.0));
    assert_eq!(types(&events), [EventType::Opened, EventType::Resolved]);
    assert_eq!(
        (events[1].event.at, events[1].event.value),
        (since, None),
        "no reading caused it"
    );

    // A change that leaves the status alone keeps `since` and records nothing.
    let renamed = DeviceChanges {
        name: Some(DeviceName::parse("thr-a2").expect("valid")),
        ..thresholds_changed(37.0)
    };
    let kept = store
        .update_device(&t, &alice(), d.id, renamed)
        .await
        .expect("updated");
    assert_eq!(kept.state, widened.state);
    assert_eq!(ids(store, &t, of_device(d.id)).await.len(), 1);

    // Narrowed again: a new alert opens at the change, its last value the latest reading's.
    let narrowed = store
        .update_device(&t, &alice(), d.id, thresholds_changed(30.0))
        .await
        .expect("updated");
    let since = narrowed.state.since.expect("has a reading");
    assert_eq!(narrowed.state.alert_status, AlertStatus::Warning);
    assert!(since >= widened.state.since.expect("set"));
    let reopened = open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .expect("opened again");
    assert_ne!(reopened.record.id, warning.record.id, "a new episode");
    assert_eq!(
        (reopened.record.opened_at, reopened.record.last_value),
        (since, Some(35.0))
    );
    let events = events_of(store, &t, reopened.record.id).await;
    assert_eq!(types(&events), [EventType::Opened]);
    assert_eq!(events[0].event.value, None);

    // Without a reading there is nothing to judge.
    let e = new_device("thr-empty");
    store
        .create_device(&t, &alice(), e.clone())
        .await
        .expect("created");
    let empty = store
        .update_device(&t, &alice(), e.id, thresholds_changed(10.0))
        .await
        .expect("updated");
    assert_eq!(empty.state, domain::DeviceState::default());
    assert!(ids(store, &t, of_device(e.id)).await.is_empty());
}

/// `stale_after` is kept, changed and cleared like any other field, and with the kept last
/// reading it is all freshness is judged from.
pub async fn stale_after_round_trips_and_feeds_freshness<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository + ReadingRepository,
{
    let t = tenant("contract-stale-after");
    let minute = StaleAfter::from_secs(60).ok();
    let mut d = new_device("stale-a");
    d.spec.stale_after = minute;
    let created = store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    assert_eq!(created.spec.stale_after, minute);
    let read = store.get_device(&t, d.id).await.expect("found");
    assert_eq!(read.spec.stale_after, minute);
    assert_eq!(
        read.state
            .freshness(read.spec.stale_after, Timestamp::now()),
        Freshness::NoData
    );
    let last = plus(Timestamp::now(), -10);
    send(store, &t, d.id, last, 1.0).await;
    let read = store.get_device(&t, d.id).await.expect("found");
    assert_eq!(read.state.last_reading.map(|r| r.timestamp), Some(last));
    assert_eq!(
        read.state.stale_from(read.spec.stale_after),
        Some(
            plus(last, 60)
                .checked_add(Duration::microseconds(1))
                .expect("in range")
        )
    );
    assert_eq!(
        read.state.freshness(read.spec.stale_after, plus(last, 60)),
        Freshness::Fresh
    );
    assert_eq!(
        read.state.freshness(read.spec.stale_after, plus(last, 61)),
        Freshness::Stale
    );

    let day = StaleAfter::from_secs(86_400).ok();
    let raised = store
        .update_device(
            &t,
            &alice(),
            d.id,
            DeviceChanges {
                stale_after: Some(day),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(raised.spec.stale_after, day);
    let renamed = store
        .update_device(
            &t,
            &alice(),
            d.id,
            DeviceChanges {
                name: Some(DeviceName::parse("stale-a2").expect("valid")),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(renamed.spec.stale_after, day, "other changes keep it");
    let cleared = store
        .update_device(
            &t,
            &alice(),
            d.id,
            DeviceChanges {
                stale_after: Some(None),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(cleared.spec.stale_after, None);
    let listed = store
        .list_devices(&t, &domain::DeviceFilter::all(), &ListQuery::default())
        .await
        .expect("listed");
    assert_eq!(listed.items[0].spec.stale_after, None);
    assert_eq!(
        listed.items[0]
            .state
            .freshness(None, plus(Timestamp::now(), 1_000_000)),
        Freshness::Fresh,
        "never stale without stale_after"
    );

    let mut g = new_group("grp-stale", "Stale");
    let mut e = new_device("stale-b");
    e.spec.stale_after = minute;
    store
        .create_device(&t, &alice(), e.clone())
        .await
        .expect("created");
    g.members = vec![e.id];
    let detail = store.create_group(&t, &alice(), g).await.expect("created");
    assert_eq!(detail.members[0].device.spec.stale_after, minute);
}

/// A threshold alert opens when the status leaves normal, follows it between warning and
/// critical (peak kept), resolves when normal again; its events come in order, the tenant's
/// `seq` strictly increasing across alerts, and the alert carries its device's current name.
pub async fn a_threshold_alert_follows_the_status_with_its_events_in_order<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + AlertRepository,
{
    let t = tenant("contract-threshold-alert");
    let d = new_device("alert-a");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let minute = |m: i64| plus(at(datetime!(2025-06-01 10:00 UTC)), m * 60);
    send(store, &t, d.id, minute(0), 20.0).await;
    assert!(
        ids(store, &t, everything()).await.is_empty(),
        "normal opens nothing"
    );
    send(store, &t, d.id, minute(1), 35.0).await;
    let opened = open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .expect("opened");
    let r = &opened.record;
    assert_eq!(
        (r.device_id, r.kind, r.severity, r.peak_severity, r.state),
        (
            d.id,
            AlertKind::Threshold,
            Severity::Warning,
            Severity::Warning,
            AlertState::Open
        )
    );
    assert_eq!(
        (r.opened_at, r.resolved_at, r.last_value),
        (minute(1), None, Some(35.0))
    );
    assert!(r.suppressed_by.is_empty() && r.acknowledgement.is_none());
    assert_eq!(opened.device_name.as_str(), "alert-a");

    send(store, &t, d.id, minute(2), 36.0).await;
    let still = store.get_alert(&t, r.id).await.expect("found");
    assert_eq!(still.0.record.last_value, Some(36.0), "last_value follows");
    assert_eq!(
        types(&still.1),
        [EventType::Opened],
        "same status: no event"
    );
    send(store, &t, d.id, minute(3), 45.0).await;
    send(store, &t, d.id, minute(4), 33.0).await;
    let mid = store.get_alert(&t, r.id).await.expect("found").0.record;
    assert_eq!(
        (mid.severity, mid.peak_severity, mid.state),
        (Severity::Warning, Severity::Critical, AlertState::Open)
    );
    send(store, &t, d.id, minute(5), 20.0).await;
    let (done, events) = {
        let (alert, _) = store.get_alert(&t, r.id).await.expect("found");
        (alert, events_of(store, &t, r.id).await)
    };
    assert_eq!(
        (
            done.record.state,
            done.record.resolved_at,
            done.record.last_value
        ),
        (AlertState::Resolved, Some(minute(5)), Some(20.0))
    );
    assert_eq!(done.record.peak_severity, Severity::Critical);
    assert_eq!(
        types(&events),
        [
            EventType::Opened,
            EventType::Escalated,
            EventType::Deescalated,
            EventType::Resolved
        ]
    );
    let severities: Vec<Severity> = events.iter().map(|e| e.event.severity).collect();
    assert_eq!(
        severities,
        [
            Severity::Warning,
            Severity::Critical,
            Severity::Warning,
            Severity::Warning
        ]
    );
    let ats: Vec<Timestamp> = events.iter().map(|e| e.event.at).collect();
    assert_eq!(ats, [minute(1), minute(3), minute(4), minute(5)]);
    assert!(events
        .iter()
        .all(|e| !e.event.suppressed() && e.event.window_ids.is_empty()));
    assert!(open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .is_none());

    // The next episode is a new alert, numbered after the first one's events.
    send(store, &t, d.id, minute(6), -20.0).await;
    let second = open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .expect("opened again");
    assert_ne!(second.record.id, r.id);
    assert_eq!(second.record.severity, Severity::Critical, "below -10");
    let second_events = events_of(store, &t, second.record.id).await;
    assert!(
        second_events[0].seq > events.last().expect("some").seq,
        "seq increases across the tenant's alerts"
    );

    // Another device's alert shares the tenant's numbering.
    let e = new_device("alert-b");
    store
        .create_device(&t, &alice(), e.clone())
        .await
        .expect("created");
    send(store, &t, e.id, minute(7), 50.0).await;
    let third = open_alert(store, &t, e.id, AlertKind::Threshold)
        .await
        .expect("opened");
    let third_events = events_of(store, &t, third.record.id).await;
    assert!(third_events[0].seq > second_events[0].seq);
    let mut seqs: Vec<i64> = events
        .iter()
        .chain(&second_events)
        .chain(&third_events)
        .map(|e| e.seq)
        .collect();
    let count = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), count, "no seq twice in a tenant");

    // The alert shows its device's name as it is now.
    store
        .update_device(
            &t,
            &alice(),
            e.id,
            DeviceChanges {
                name: Some(DeviceName::parse("alert-b2").expect("valid")),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    let renamed = store.get_alert(&t, third.record.id).await.expect("found").0;
    assert_eq!(renamed.device_name.as_str(), "alert-b2");
}

/// However writes and evaluator passes interleave, a device has at most one open alert of each
/// kind, and each change is recorded once.
pub async fn at_most_one_alert_is_open_per_device_and_kind<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + AlertRepository + AlertEvaluator,
{
    let t = tenant("contract-one-open");
    let mut d = new_device("one-a");
    d.spec.stale_after = StaleAfter::from_secs(60).ok();
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let base = plus(Timestamp::now(), -3_600);
    // Concurrent ingests on one device, each leaving normal or returning to it.
    let writes = (0..16).map(|i| {
        let value = if i % 2 == 0 { 35.0 } else { 20.0 };
        let readings = batch(vec![reading_at(d.id, plus(base, i), value)]);
        let t = t.clone();
        async move { store.ingest(&t, readings).await }
    });
    for result in futures_util::future::join_all(writes).await {
        result.expect("ingested");
    }
    let _ = open_alert(store, &t, d.id, AlertKind::Threshold).await;
    for alert in all_alerts(store, &t, of_device(d.id), 1000).await {
        let events = events_of(store, &t, alert.record.id).await;
        assert_eq!(types(&events)[0], EventType::Opened);
        let opened = types(&events)
            .iter()
            .filter(|t| **t == EventType::Opened)
            .count();
        assert_eq!(opened, 1, "one opening per alert");
    }
    // The newest reading (index 15) is normal, whatever order they arrived in.
    assert_eq!(
        store
            .get_device(&t, d.id)
            .await
            .expect("found")
            .state
            .alert_status,
        AlertStatus::Normal
    );
    assert!(open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .is_none());

    // A threshold alert and a stale alert may be open together; a worse reading opens no second.
    send(store, &t, d.id, plus(base, 100), 35.0).await;
    send(store, &t, d.id, plus(base, 101), 45.0).await;
    let now = Timestamp::now();
    let passes = (0..4).map(|_| store.evaluate(now));
    for result in futures_util::future::join_all(passes).await {
        result.expect("evaluated");
    }
    let threshold = open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .expect("open");
    let stale = open_alert(store, &t, d.id, AlertKind::Stale)
        .await
        .expect("the device went stale an hour ago");
    assert_eq!(
        types(&events_of(store, &t, stale.record.id).await),
        [EventType::Opened],
        "concurrent passes record the opening once"
    );
    assert_eq!(
        types(&events_of(store, &t, threshold.record.id).await),
        [EventType::Opened, EventType::Escalated]
    );
    let again = store.evaluate(now).await.expect("evaluated");
    assert_eq!(
        again.events, 0,
        "nothing left to record at the same instant"
    );
}

/// A device turns stale by time alone: the evaluator, given an instant past the limit, opens a
/// `warning` stale alert; the next reading resolves it; one whose limit is lifted is resolved by
/// the evaluator.
pub async fn stale_alerts_open_by_the_evaluator_and_resolve_at_the_next_reading<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + AlertRepository + AlertEvaluator,
{
    let t = tenant("contract-stale-alerts");
    let mut d = new_device("stale-a");
    d.spec.stale_after = StaleAfter::from_secs(60).ok();
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let silent = new_device("stale-never");
    store
        .create_device(&t, &alice(), silent.clone())
        .await
        .expect("created");
    let start = Timestamp::now();
    send(store, &t, d.id, plus(start, -10), 20.0).await;
    send(store, &t, silent.id, plus(start, -10_000), 20.0).await;

    store.evaluate(plus(start, 40)).await.expect("evaluated");
    assert!(
        ids(store, &t, everything()).await.is_empty(),
        "not stale yet; no stale_after: never"
    );
    let late = plus(start, 120);
    let pass = store.evaluate(late).await.expect("evaluated");
    assert!(pass.events >= 1, "{pass:?}");
    let stale = open_alert(store, &t, d.id, AlertKind::Stale)
        .await
        .expect("opened by the evaluator");
    let r = &stale.record;
    assert_eq!(
        (r.severity, r.peak_severity, r.opened_at, r.last_value),
        (Severity::Warning, Severity::Warning, late, None)
    );
    let opened = events_of(store, &t, r.id).await;
    assert_eq!(types(&opened), [EventType::Opened]);
    assert_eq!((opened[0].event.at, opened[0].event.value), (late, None));
    let again = store.evaluate(late).await.expect("evaluated");
    assert_eq!(
        again.events, 0,
        "a second pass at the same instant records nothing"
    );
    store.evaluate(plus(late, 600)).await.expect("evaluated");
    assert_eq!(
        events_of(store, &t, r.id).await.len(),
        1,
        "still stale: nothing new"
    );

    // An older reading does not make it fresh.
    send(store, &t, d.id, plus(start, -20), 20.0).await;
    assert!(open_alert(store, &t, d.id, AlertKind::Stale)
        .await
        .is_some());
    let fresh_at = Timestamp::now();
    send(store, &t, d.id, fresh_at, 21.0).await;
    let (resolved, events_after) = store.get_alert(&t, r.id).await.expect("found");
    assert_eq!(resolved.record.state, AlertState::Resolved);
    assert_eq!(resolved.record.last_value, Some(21.0));
    assert_eq!(
        types(&events_after),
        [EventType::Opened, EventType::Resolved]
    );
    assert_eq!(
        events_after[1].event.value,
        Some(21.0),
        "the reading that ended it"
    );
    assert_eq!(events_after[1].event.severity, Severity::Warning);
    assert!(resolved.record.resolved_at.expect("resolved") >= fresh_at);

    // Stale again; then the limit is lifted: the evaluator resolves it.
    let later = plus(Timestamp::now(), 120);
    store.evaluate(later).await.expect("evaluated");
    let second = open_alert(store, &t, d.id, AlertKind::Stale)
        .await
        .expect("stale again");
    assert_ne!(second.record.id, r.id);
    store
        .update_device(
            &t,
            &alice(),
            d.id,
            DeviceChanges {
                stale_after: Some(None),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    store.evaluate(later).await.expect("evaluated");
    let (lifted, lifted_events) = store.get_alert(&t, second.record.id).await.expect("found");
    assert_eq!(lifted.record.state, AlertState::Resolved);
    assert_eq!(
        types(&lifted_events).last(),
        Some(&EventType::Resolved),
        "no longer stale"
    );
    assert_eq!(lifted_events.last().map(|e| e.event.value), Some(None));
    assert!(open_alert(store, &t, silent.id, AlertKind::Stale)
        .await
        .is_none());
}

/// An alert opened while a window covers its device is muted by it, and so is each event while
/// it does; when coverage ends (the window ends, is disabled or deleted) the evaluator records
/// `unsuppressed` once, and `suppressed` when a window starts covering an open alert.
/// `muted_by_window` finds alerts by the instants of their muted events.
pub async fn windows_mute_alerts_and_their_end_renotifies<S>(store: &S)
where
    S: DeviceRepository
        + ReadingRepository
        + MaintenanceWindowRepository
        + AlertRepository
        + AlertEvaluator,
{
    let t = tenant("contract-muting");
    let d = new_device("mute-a");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let start = Timestamp::now();
    let mut first = new_window("mw-first", at(datetime!(2025-01-01 0:00 UTC)));
    first.definition.schedule =
        WindowSchedule::new(at(datetime!(2025-01-01 0:00 UTC)), Some(plus(start, 3_600)))
            .expect("valid");
    store
        .create_window(&t, &alice(), first.clone())
        .await
        .expect("created");

    let opened_at = plus(start, -60);
    send(store, &t, d.id, opened_at, 35.0).await;
    let alert = open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .expect("opened");
    let id = alert.record.id;
    assert_eq!(alert.record.suppressed_by, [slug("mw-first")]);
    let opened = events_of(store, &t, id).await;
    assert!(opened[0].event.suppressed());
    assert_eq!(opened[0].event.window_ids, [slug("mw-first")]);
    send(store, &t, d.id, plus(start, -30), 45.0).await;
    let escalated = events_of(store, &t, id).await;
    assert_eq!(types(&escalated), [EventType::Opened, EventType::Escalated]);
    assert_eq!(
        escalated[1].event.window_ids,
        [slug("mw-first")],
        "muted too"
    );

    // Still covered: nothing to record.
    store.evaluate(plus(start, 60)).await.expect("evaluated");
    assert_eq!(events_of(store, &t, id).await.len(), 2);

    // The window ends: the re-notification, once.
    let after_end = plus(start, 7_200);
    let pass = store.evaluate(after_end).await.expect("evaluated");
    assert_eq!(pass.events, 1, "{pass:?}");
    let ended = events_of(store, &t, id).await;
    assert_eq!(
        types(&ended)[2..],
        [EventType::Unsuppressed],
        "the window's end renotifies"
    );
    let unsuppressed = &ended[2].event;
    assert_eq!(
        (unsuppressed.at, unsuppressed.severity, unsuppressed.value),
        (after_end, Severity::Critical, None)
    );
    assert!(!unsuppressed.suppressed() && unsuppressed.window_ids.is_empty());
    let now_alert = store.get_alert(&t, id).await.expect("found").0;
    assert!(now_alert.record.suppressed_by.is_empty());
    let again = store.evaluate(after_end).await.expect("evaluated");
    assert_eq!(again.events, 0);
    assert_eq!(events_of(store, &t, id).await.len(), 3, "recorded once");

    // A window that starts covering the open alert mutes it.
    let second = new_window("mw-second", at(datetime!(2025-01-01 0:00 UTC)));
    store
        .create_window(&t, &alice(), second.clone())
        .await
        .expect("created");
    store.evaluate(after_end).await.expect("evaluated");
    let muted = events_of(store, &t, id).await;
    assert_eq!(types(&muted)[3..], [EventType::Suppressed]);
    assert_eq!(
        (muted[3].event.at, muted[3].event.window_ids.clone()),
        (after_end, vec![slug("mw-second")])
    );
    assert_eq!(
        store
            .get_alert(&t, id)
            .await
            .expect("found")
            .0
            .record
            .suppressed_by,
        [slug("mw-second")]
    );
    // Disabled: unmuted.
    store
        .update_window(
            &t,
            &alice(),
            &slug("mw-second"),
            WindowChanges {
                enabled: Some(false),
                ..WindowChanges::default()
            },
        )
        .await
        .expect("updated");
    let disabled_at = plus(after_end, 10);
    store.evaluate(disabled_at).await.expect("evaluated");
    assert_eq!(
        types(&events_of(store, &t, id).await)[4..],
        [EventType::Unsuppressed]
    );
    // Enabled again, then deleted: muted, then unmuted.
    store
        .update_window(
            &t,
            &alice(),
            &slug("mw-second"),
            WindowChanges {
                enabled: Some(true),
                ..WindowChanges::default()
            },
        )
        .await
        .expect("updated");
    let enabled_at = plus(after_end, 20);
    store.evaluate(enabled_at).await.expect("evaluated");
    store
        .delete_window(&t, &slug("mw-second"))
        .await
        .expect("deleted");
    store
        .evaluate(plus(after_end, 30))
        .await
        .expect("evaluated");
    let all = events_of(store, &t, id).await;
    assert_eq!(
        types(&all)[5..],
        [EventType::Suppressed, EventType::Unsuppressed]
    );

    // Which alerts each window muted, by the instants of their muted events.
    let muted_by = |window: &'static str, from: Timestamp, until: Option<Timestamp>| {
        let t = t.clone();
        async move {
            store
                .muted_by_window(&t, &slug(window), from, until)
                .await
                .expect("read")
                .into_iter()
                .map(|a| a.record.id)
                .collect::<Vec<Uuid>>()
        }
    };
    assert_eq!(muted_by("mw-first", plus(start, -3_600), None).await, [id]);
    assert_eq!(
        muted_by("mw-first", opened_at, Some(plus(start, -30))).await,
        [id],
        "from is inclusive"
    );
    assert!(
        muted_by("mw-first", plus(start, -3_600), Some(opened_at))
            .await
            .is_empty(),
        "until is exclusive"
    );
    assert!(
        muted_by("mw-first", plus(start, -29), None)
            .await
            .is_empty(),
        "nothing muted by it after its last muted event"
    );
    assert_eq!(
        muted_by("mw-second", after_end, Some(plus(after_end, 1))).await,
        [id],
        "a deleted window's record stays"
    );
    assert!(muted_by("mw-none", plus(start, -3_600), None)
        .await
        .is_empty());

    // Oldest opened first.
    let e = new_device("mute-b");
    store
        .create_device(&t, &alice(), e.clone())
        .await
        .expect("created");
    let third = new_window("mw-third", at(datetime!(2025-01-01 0:00 UTC)));
    store
        .create_window(&t, &alice(), third)
        .await
        .expect("created");
    send(store, &t, e.id, plus(start, -120), 35.0).await;
    let older = open_alert(store, &t, e.id, AlertKind::Threshold)
        .await
        .expect("opened");
    assert_eq!(
        older.record.suppressed_by,
        [slug("mw-first"), slug("mw-third")],
        "every covering window, ascending"
    );
    assert_eq!(
        muted_by("mw-first", plus(start, -3_600), None).await,
        [older.record.id, id],
        "oldest opened first"
    );
    assert_eq!(
        muted_by("mw-third", plus(start, -3_600), None).await,
        [older.record.id]
    );
}

/// Acknowledgements replace one another, can be withdrawn, and end by themselves as their mode
/// says; a resolved alert takes none, and an alert the tenant does not have is not found.
pub async fn acknowledgements_end_as_their_mode_says<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + AlertRepository + AlertEvaluator,
{
    let t = tenant("contract-ack");
    let d = new_device("ack-a");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let minute = |m: i64| plus(at(datetime!(2025-06-01 10:00 UTC)), m * 60);
    send(store, &t, d.id, minute(0), 35.0).await;
    let id = open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .expect("opened")
        .record
        .id;

    let held = ack(AckMode::UntilResolved, None);
    let acked = store
        .acknowledge(&t, id, held.clone())
        .await
        .expect("acknowledged");
    assert_eq!(acked.record.acknowledgement, Some(held.clone()));
    assert_eq!(acked.device_name.as_str(), "ack-a");
    let (read, evs) = store.get_alert(&t, id).await.expect("found");
    assert_eq!(read.record.acknowledgement, Some(held.clone()));
    let stored = read.record.acknowledgement.expect("kept");
    assert_eq!(
        (
            stored.by.as_str(),
            stored.note.as_ref().map(AckNote::as_str)
        ),
        ("alice", Some("on it"))
    );
    assert_eq!(types(&evs), [EventType::Opened, EventType::Acknowledged]);
    assert_eq!(
        (evs[1].event.at, evs[1].event.value, evs[1].event.severity),
        (held.at, None, Severity::Warning)
    );

    // A new one replaces it; withdrawing records once.
    let escalating = ack(AckMode::UntilEscalated, None);
    store
        .acknowledge(&t, id, escalating.clone())
        .await
        .expect("acknowledged");
    assert_eq!(
        store
            .get_alert(&t, id)
            .await
            .expect("found")
            .0
            .record
            .acknowledgement,
        Some(escalating)
    );
    let withdrawn_at = Timestamp::now();
    let withdrawn = store
        .unacknowledge(&t, id, withdrawn_at)
        .await
        .expect("withdrawn");
    assert_eq!(withdrawn.record.acknowledgement, None);
    let none_left = store
        .unacknowledge(&t, id, Timestamp::now())
        .await
        .expect("nothing to withdraw");
    assert_eq!(none_left.record.acknowledgement, None);
    let evs = events_of(store, &t, id).await;
    assert_eq!(
        types(&evs),
        [
            EventType::Opened,
            EventType::Acknowledged,
            EventType::Acknowledged,
            EventType::Unacknowledged
        ],
        "withdrawing nothing records nothing"
    );
    assert_eq!(evs[3].event.at, withdrawn_at);

    // until_escalated ends when the alert escalates, in the same change.
    store
        .acknowledge(&t, id, ack(AckMode::UntilEscalated, None))
        .await
        .expect("acknowledged");
    send(store, &t, d.id, minute(1), 45.0).await;
    let (escalated, evs) = store.get_alert(&t, id).await.expect("found");
    assert_eq!(escalated.record.acknowledgement, None);
    assert_eq!(
        types(&evs)[4..],
        [
            EventType::Acknowledged,
            EventType::Escalated,
            EventType::Unacknowledged
        ]
    );
    assert_eq!(evs[6].event.at, minute(1));

    // `until` is ended by the evaluator when it comes.
    let now = Timestamp::now();
    let until = plus(now, 3_600);
    store
        .acknowledge(&t, id, ack(AckMode::Until, Some(until)))
        .await
        .expect("acknowledged");
    store.evaluate(plus(now, 1_800)).await.expect("evaluated");
    let holding = store.get_alert(&t, id).await.expect("found");
    assert!(holding.0.record.acknowledgement.is_some(), "not yet");
    assert_eq!(holding.1.len(), 8);
    store.evaluate(until).await.expect("evaluated");
    let (expired, evs) = store.get_alert(&t, id).await.expect("found");
    assert_eq!(expired.record.acknowledgement, None);
    assert_eq!(
        types(&evs)[7..],
        [EventType::Acknowledged, EventType::Unacknowledged]
    );
    assert_eq!(evs[8].event.at, until);
    let again = store.evaluate(until).await.expect("evaluated");
    assert_eq!(again.events, 0);

    // A held acknowledgement simply ends with the alert.
    store
        .acknowledge(&t, id, ack(AckMode::UntilResolved, None))
        .await
        .expect("acknowledged");
    send(store, &t, d.id, minute(2), 20.0).await;
    let evs = events_of(store, &t, id).await;
    assert_eq!(
        types(&evs)[9..],
        [EventType::Acknowledged, EventType::Resolved]
    );

    assert!(matches!(
        store
            .acknowledge(&t, id, ack(AckMode::UntilResolved, None))
            .await,
        Err(AckAlertError::Resolved)
    ));
    assert!(matches!(
        store.unacknowledge(&t, id, Timestamp::now()).await,
        Err(AckAlertError::Resolved)
    ));
    assert_eq!(
        events_of(store, &t, id).await.len(),
        11,
        "refusals record nothing"
    );
    for (who, which) in [
        (t.clone(), Uuid::new_v4()),
        (tenant("contract-ack-other"), id),
    ] {
        assert!(matches!(
            store
                .acknowledge(&who, which, ack(AckMode::UntilResolved, None))
                .await,
            Err(AckAlertError::NotFound)
        ));
        assert!(matches!(
            store.unacknowledge(&who, which, Timestamp::now()).await,
            Err(AckAlertError::NotFound)
        ));
        assert!(matches!(
            store.get_alert(&who, which).await,
            Err(LookupError::NotFound)
        ));
    }
}

/// The alerts of [`alert_lists_filter_order_and_page`] and their devices.
struct ListFixture {
    group: Uuid,
    /// Critical, acknowledged, in the group.
    a1: Uuid,
    /// Warning, muted by a window, in the group.
    a2: Uuid,
    /// Resolved.
    a3: Uuid,
    /// Warning, on a3's device.
    a4: Uuid,
    a3_device: Uuid,
    /// Stale.
    a5: Uuid,
    /// Two critical alerts opened at one instant, greater id first.
    tied: [Uuid; 2],
}

async fn list_fixture<S>(store: &S, t: &TenantId) -> ListFixture
where
    S: DeviceRepository
        + DeviceGroupRepository
        + ReadingRepository
        + MaintenanceWindowRepository
        + AlertRepository
        + AlertEvaluator,
{
    let d1 = new_device("list-1");
    let d2 = scoped_device("list-2", Some("s-muted"), None);
    let d3 = new_device("list-3");
    let mut d4 = new_device("list-4");
    d4.spec.stale_after = StaleAfter::from_secs(60).ok();
    let (d5, d6) = (new_device("list-5"), new_device("list-6"));
    for d in [&d1, &d2, &d3, &d4, &d5, &d6] {
        store
            .create_device(t, &alice(), d.clone())
            .await
            .expect("created");
    }
    let mut g = new_group("grp-alerts", "Alerts");
    g.members = vec![d1.id, d2.id];
    store
        .create_group(t, &alice(), g.clone())
        .await
        .expect("created");
    let mut w = new_window("mw-muted", at(datetime!(2025-01-01 0:00 UTC)));
    w.definition.site_ids = Some(vec![ScopeLabel::parse("s-muted").expect("valid")]);
    store.create_window(t, &alice(), w).await.expect("created");

    let hour = |h: u8| {
        at(datetime!(2025-06-01 0:00 UTC)
            .replace_hour(h)
            .expect("valid"))
    };
    send(store, t, d1.id, hour(10), 45.0).await;
    send(store, t, d2.id, hour(11), 35.0).await;
    send(store, t, d3.id, hour(12), 35.0).await;
    send(store, t, d3.id, hour(13), 20.0).await;
    send(store, t, d3.id, hour(14), 35.0).await;
    send(store, t, d4.id, hour(15), 20.0).await;
    store
        .ingest(
            t,
            batch(vec![
                reading(d5.id, datetime!(2025-06-01 9:00 UTC), 45.0),
                reading(d6.id, datetime!(2025-06-01 9:00 UTC), 45.0),
            ]),
        )
        .await
        .expect("ingested");
    store.evaluate(Timestamp::now()).await.expect("evaluated");
    let only = |device: Uuid, kind: AlertKind| async move {
        let filter = AlertFilter {
            kind: Some(kind),
            ..of_device(device)
        };
        let found = ids(store, t, filter).await;
        found
    };
    let a1 = only(d1.id, AlertKind::Threshold).await[0];
    store
        .acknowledge(t, a1, ack(AckMode::UntilResolved, None))
        .await
        .expect("acknowledged");
    let d3_alerts = only(d3.id, AlertKind::Threshold).await;
    assert_eq!(d3_alerts.len(), 2);
    let mut tied = [
        only(d5.id, AlertKind::Threshold).await[0],
        only(d6.id, AlertKind::Threshold).await[0],
    ];
    tied.sort_unstable_by(|a, b| b.cmp(a));
    ListFixture {
        group: g.id,
        a1,
        a2: only(d2.id, AlertKind::Threshold).await[0],
        a3: d3_alerts[1],
        a4: d3_alerts[0],
        a3_device: d3.id,
        a5: only(d4.id, AlertKind::Stale).await[0],
        tied,
    }
}

/// Lists select by state, severity, kind, group (by id or slug), device, muting and
/// acknowledgement; newest `opened_at` first, ties greater id first; a cursor pages through
/// without repeats or gaps.
pub async fn alert_lists_filter_order_and_page<S>(store: &S)
where
    S: DeviceRepository
        + DeviceGroupRepository
        + ReadingRepository
        + MaintenanceWindowRepository
        + AlertRepository
        + AlertEvaluator,
{
    let t = tenant("contract-alert-lists");
    let f = list_fixture(store, &t).await;
    let [t1, t2] = f.tied;
    let all = vec![f.a5, f.a4, f.a3, f.a2, f.a1, t1, t2];
    assert_eq!(
        ids(store, &t, everything()).await,
        all,
        "newest first, ties by greater id"
    );
    for limit in [1, 2, 3, 7, 100] {
        let paged: Vec<Uuid> = all_alerts(store, &t, everything(), limit)
            .await
            .into_iter()
            .map(|a| a.record.id)
            .collect();
        assert_eq!(paged, all, "pages of {limit}: no repeat, no gap");
    }
    let first = store
        .list_alerts(
            &t,
            &AlertQuery {
                filter: everything(),
                limit: 7,
                after: None,
            },
        )
        .await
        .expect("listed");
    assert_eq!(first.alerts.len(), 7);
    assert_eq!(first.next, None, "a page that ends the list says so");
    let two = store
        .list_alerts(
            &t,
            &AlertQuery {
                filter: everything(),
                limit: 2,
                after: None,
            },
        )
        .await
        .expect("listed");
    let cursor = two.next.expect("more to come");
    assert_eq!(cursor.id, f.a4, "the cursor is the page's last alert");

    let by = |filter: AlertFilter| ids(store, &t, filter);
    let open = |filter: AlertFilter| AlertFilter {
        state: Some(AlertState::Open),
        ..filter
    };
    assert_eq!(
        by(open(everything())).await,
        [f.a5, f.a4, f.a2, f.a1, t1, t2]
    );
    assert_eq!(
        by(AlertFilter {
            state: Some(AlertState::Resolved),
            ..everything()
        })
        .await,
        [f.a3]
    );
    assert_eq!(
        by(AlertFilter {
            severity: Some(Severity::Critical),
            ..everything()
        })
        .await,
        [f.a1, t1, t2]
    );
    assert_eq!(
        by(AlertFilter {
            severity: Some(Severity::Warning),
            ..everything()
        })
        .await,
        [f.a5, f.a4, f.a3, f.a2]
    );
    assert_eq!(
        by(AlertFilter {
            kind: Some(AlertKind::Stale),
            ..everything()
        })
        .await,
        [f.a5]
    );
    assert_eq!(
        by(AlertFilter {
            kind: Some(AlertKind::Threshold),
            ..everything()
        })
        .await,
        [f.a4, f.a3, f.a2, f.a1, t1, t2]
    );
    for key in [
        GroupKey::Id(f.group),
        GroupKey::Slug(group_slug("grp-alerts")),
    ] {
        assert_eq!(
            by(AlertFilter {
                group: Some(key),
                ..everything()
            })
            .await,
            [f.a2, f.a1]
        );
    }
    assert_eq!(by(of_device(f.a3_device)).await, [f.a4, f.a3]);
    assert_eq!(
        by(AlertFilter {
            suppressed: Some(true),
            ..everything()
        })
        .await,
        [f.a2]
    );
    assert_eq!(
        by(AlertFilter {
            suppressed: Some(false),
            ..everything()
        })
        .await,
        [f.a5, f.a4, f.a3, f.a1, t1, t2]
    );
    assert_eq!(
        by(AlertFilter {
            acknowledged: Some(true),
            ..everything()
        })
        .await,
        [f.a1]
    );
    assert_eq!(
        by(AlertFilter {
            acknowledged: Some(false),
            ..everything()
        })
        .await,
        [f.a5, f.a4, f.a3, f.a2, t1, t2]
    );
    assert_eq!(
        by(open(AlertFilter {
            severity: Some(Severity::Warning),
            kind: Some(AlertKind::Threshold),
            ..everything()
        }))
        .await,
        [f.a4, f.a2],
        "filters combine"
    );
    let paged: Vec<Uuid> = all_alerts(
        store,
        &t,
        open(AlertFilter {
            severity: Some(Severity::Critical),
            ..everything()
        }),
        1,
    )
    .await
    .into_iter()
    .map(|a| a.record.id)
    .collect();
    assert_eq!(paged, [f.a1, t1, t2], "paging a filtered list across a tie");

    let listed = all_alerts(store, &t, of_device(f.a3_device), 10).await;
    assert_eq!(listed[0].device_name.as_str(), "list-3");
    assert_eq!(
        listed[0],
        store.get_alert(&t, f.a4).await.expect("found").0,
        "a listed alert is the alert"
    );
}

/// A filter naming a group or device the tenant does not have is refused, not empty.
pub async fn alert_lists_refuse_unknown_groups_and_devices<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository + AlertRepository,
{
    let t = tenant("contract-alert-unknown");
    let other = tenant("contract-alert-unknown-other");
    let d = new_device("unknown-a");
    store
        .create_device(&other, &alice(), d.clone())
        .await
        .expect("created");
    let g = new_group("grp-theirs", "Theirs");
    store
        .create_group(&other, &alice(), g.clone())
        .await
        .expect("created");
    let own = new_device("unknown-own");
    store
        .create_device(&t, &alice(), own.clone())
        .await
        .expect("created");
    let query = |filter: AlertFilter| AlertQuery {
        filter,
        limit: 10,
        after: None,
    };
    for group in [
        GroupKey::Id(g.id),
        GroupKey::Slug(group_slug("grp-theirs")),
        GroupKey::Id(Uuid::new_v4()),
    ] {
        let listed = store
            .list_alerts(
                &t,
                &query(AlertFilter {
                    group: Some(group),
                    ..everything()
                }),
            )
            .await;
        assert!(
            matches!(listed, Err(AlertListError::GroupNotFound)),
            "{listed:?}"
        );
    }
    for device in [d.id, Uuid::new_v4()] {
        let listed = store.list_alerts(&t, &query(of_device(device))).await;
        assert!(
            matches!(listed, Err(AlertListError::DeviceNotFound)),
            "{listed:?}"
        );
    }
    let none = store
        .list_alerts(&t, &query(of_device(own.id)))
        .await
        .expect("a device without alerts is no missing one");
    assert!(none.alerts.is_empty() && none.next.is_none());
    let empty = store
        .list_alerts(&tenant("contract-alert-nobody"), &query(everything()))
        .await
        .expect("a tenant without data has no alerts");
    assert!(empty.alerts.is_empty());
}

/// A group's members carry their kept state and whether they have an open (and an
/// acknowledged) alert.
pub async fn group_details_carry_member_alerts_and_state<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository + ReadingRepository + AlertRepository,
{
    let t = tenant("contract-member-alerts");
    let names = ["ma-1", "ma-2", "ma-3", "ma-4"];
    let mut devices = Vec::new();
    for name in names {
        let d = new_device(name);
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
        devices.push(d.id);
    }
    let mut g = new_group("grp-member-alerts", "Member alerts");
    g.members = devices.clone();
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let t1 = at(datetime!(2025-06-01 10:00 UTC));
    let t2 = at(datetime!(2025-06-01 11:00 UTC));
    send(store, &t, devices[0], t1, 45.0).await;
    send(store, &t, devices[1], t1, 35.0).await;
    send(store, &t, devices[2], t1, 35.0).await;
    send(store, &t, devices[2], t2, 20.0).await;
    let acked = open_alert(store, &t, devices[0], AlertKind::Threshold)
        .await
        .expect("open");
    store
        .acknowledge(&t, acked.record.id, ack(AckMode::UntilResolved, None))
        .await
        .expect("acknowledged");

    let detail = store
        .get_group(&t, &GroupKey::Id(g.id))
        .await
        .expect("found");
    let seen: Vec<(&str, bool, bool, AlertStatus)> = detail
        .members
        .iter()
        .map(|m| {
            (
                m.device.spec.name.as_str(),
                m.alerts.open,
                m.alerts.acknowledged,
                m.device.state.alert_status,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ma-1", true, true, AlertStatus::Critical),
            ("ma-2", true, false, AlertStatus::Warning),
            ("ma-3", false, false, AlertStatus::Normal),
            ("ma-4", false, false, AlertStatus::Normal),
        ]
    );
    assert_eq!(
        detail.members[2].device.state.since,
        Some(t2),
        "the reading that started normal"
    );
    assert_eq!(detail.members[3].device.state.last_reading, None);
    let summary = detail.summary(Timestamp::now());
    assert_eq!((summary.open_alerts, summary.acknowledged), (2, 1));
    assert_eq!(
        (summary.normal, summary.warning, summary.critical),
        (2, 1, 1)
    );
    assert_eq!((summary.fresh, summary.no_data), (3, 1));

    // Withdrawn: still open, no longer acknowledged.
    store
        .unacknowledge(&t, acked.record.id, Timestamp::now())
        .await
        .expect("withdrawn");
    let detail = store
        .get_group(&t, &group_key_slug("grp-member-alerts"))
        .await
        .expect("found");
    assert_eq!(
        (
            detail.members[0].alerts.open,
            detail.members[0].alerts.acknowledged
        ),
        (true, false)
    );
}

fn group_key_slug(value: &str) -> GroupKey {
    GroupKey::Slug(group_slug(value))
}

/// `covering_windows` names, for each listed device of the tenant, the enabled windows active
/// at the instant whose scope covers it, ascending by id.
pub async fn covering_windows_are_the_active_ones_in_scope<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository + MaintenanceWindowRepository,
{
    let t = tenant("contract-covering");
    let a = scoped_device("cov-a", Some("s1"), Some("pump"));
    let b = scoped_device("cov-b", Some("s2"), None);
    let c = scoped_device("cov-c", None, None);
    for d in [&a, &b, &c] {
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
    }
    let mut g = new_group("grp-cov", "Covered");
    g.members = vec![c.id];
    store.create_group(&t, &alice(), g).await.expect("created");
    let now = Timestamp::now();
    let since = at(datetime!(2025-01-01 0:00 UTC));
    let mut site = new_window("mw-site", since);
    site.definition.site_ids = Some(vec![ScopeLabel::parse("s1").expect("valid")]);
    let everywhere = new_window("mw-all", since);
    let mut group = new_window("mw-group", since);
    group.definition.group_ids = Some(vec![group_slug("grp-cov")]);
    let mut off = new_window("mw-off", since);
    off.definition.enabled = false;
    let mut later = new_window("mw-later", plus(now, 3_600));
    later.definition.site_ids = Some(vec![ScopeLabel::parse("s2").expect("valid")]);
    let mut ended = new_window("mw-ended", since);
    ended.definition.schedule = WindowSchedule::new(since, Some(plus(now, 60))).expect("valid");
    for w in [site, everywhere, group, off, later, ended] {
        store.create_window(&t, &alice(), w).await.expect("created");
    }
    let unknown = Uuid::new_v4();
    let covering = store
        .covering_windows(&t, &[a.id, b.id, c.id, unknown], now)
        .await
        .expect("read");
    let names = |device: Uuid| -> Option<Vec<&str>> {
        covering
            .get(&device)
            .map(|ws| ws.iter().map(WindowSlug::as_str).collect())
    };
    assert_eq!(names(a.id), Some(vec!["mw-all", "mw-ended", "mw-site"]));
    assert_eq!(names(b.id), Some(vec!["mw-all", "mw-ended"]));
    assert_eq!(names(c.id), Some(vec!["mw-all", "mw-ended", "mw-group"]));
    assert!(
        !covering.contains_key(&unknown),
        "unknown devices are left out"
    );

    let later_on = store
        .covering_windows(&t, &[a.id, b.id], plus(now, 7_200))
        .await
        .expect("read");
    let later_names: Vec<Vec<&str>> = [a.id, b.id]
        .iter()
        .map(|d| later_on[d].iter().map(WindowSlug::as_str).collect())
        .collect();
    assert_eq!(
        later_names,
        [vec!["mw-all", "mw-site"], vec!["mw-all", "mw-later"]],
        "activity at the instant given"
    );
    let only_a = store
        .covering_windows(&t, &[a.id], now)
        .await
        .expect("read");
    assert_eq!(only_a.len(), 1, "only the devices asked for");
    assert!(store
        .covering_windows(&tenant("contract-covering-other"), &[a.id], now)
        .await
        .expect("read")
        .is_empty());
}

/// Deleting a device takes its alerts and their events; other devices' alerts stay.
pub async fn deleting_a_device_takes_its_alerts<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + AlertRepository,
{
    let t = tenant("contract-delete-alerts");
    let (a, b) = (new_device("del-a"), new_device("del-b"));
    for d in [&a, &b] {
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
    }
    send(store, &t, a.id, at(datetime!(2025-06-01 10:00 UTC)), 35.0).await;
    send(store, &t, a.id, at(datetime!(2025-06-01 11:00 UTC)), 20.0).await;
    send(store, &t, a.id, at(datetime!(2025-06-01 12:00 UTC)), 45.0).await;
    send(store, &t, b.id, at(datetime!(2025-06-01 10:00 UTC)), 45.0).await;
    let gone = ids(store, &t, of_device(a.id)).await;
    assert_eq!(gone.len(), 2);
    let kept = ids(store, &t, of_device(b.id)).await;
    store.delete_device(&t, a.id).await.expect("deleted");
    for id in &gone {
        assert!(matches!(
            store.get_alert(&t, *id).await,
            Err(LookupError::NotFound)
        ));
    }
    assert_eq!(ids(store, &t, everything()).await, kept);
    assert!(matches!(
        store
            .list_alerts(
                &t,
                &AlertQuery {
                    filter: of_device(a.id),
                    limit: 10,
                    after: None
                }
            )
            .await,
        Err(AlertListError::DeviceNotFound)
    ));
    assert_eq!(events_of(store, &t, kept[0]).await.len(), 1);
}

/// One tenant's alerts are invisible to another, whatever ids or window slugs it names.
pub async fn tenants_never_see_each_others_alerts<S>(store: &S)
where
    S: DeviceRepository
        + ReadingRepository
        + MaintenanceWindowRepository
        + AlertRepository
        + AlertEvaluator,
{
    let t = tenant("contract-alerts-mine");
    let other = tenant("contract-alerts-theirs");
    let mut d = new_device("same-name");
    d.spec.stale_after = StaleAfter::from_secs(60).ok();
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let theirs = new_device("same-name");
    store
        .create_device(&other, &alice(), theirs.clone())
        .await
        .expect("created");
    store
        .create_window(
            &t,
            &alice(),
            new_window("mw-shared", at(datetime!(2025-01-01 0:00 UTC))),
        )
        .await
        .expect("created");
    let start = Timestamp::now();
    send(store, &t, d.id, plus(start, -30), 45.0).await;
    store.evaluate(plus(start, 120)).await.expect("evaluated");
    let mine = ids(store, &t, everything()).await;
    assert_eq!(mine.len(), 2, "threshold and stale");

    assert!(ids(store, &other, everything()).await.is_empty());
    for id in &mine {
        assert!(matches!(
            store.get_alert(&other, *id).await,
            Err(LookupError::NotFound)
        ));
    }
    assert!(store
        .muted_by_window(&other, &slug("mw-shared"), plus(start, -3_600), None)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        store
            .muted_by_window(&t, &slug("mw-shared"), plus(start, -3_600), None)
            .await
            .expect("read")
            .len(),
        2
    );
    // Their own alert is numbered and listed apart.
    send(store, &other, theirs.id, plus(start, -30), 45.0).await;
    let their_ids = ids(store, &other, everything()).await;
    assert_eq!(their_ids.len(), 1);
    assert_eq!(ids(store, &t, everything()).await, mine);
    assert!(
        store
            .covering_windows(&other, &[theirs.id], start)
            .await
            .expect("read")
            .get(&theirs.id)
            .is_some_and(Vec::is_empty),
        "another tenant's window covers nothing of theirs"
    );
}

/// Coverage ends, and starts, as well by a change of the window's scope or of the device's
/// groups or site as by time: the evaluator records each once.
pub async fn coverage_follows_scope_and_membership_changes<S>(store: &S)
where
    S: DeviceRepository
        + DeviceGroupRepository
        + ReadingRepository
        + MaintenanceWindowRepository
        + AlertRepository
        + AlertEvaluator,
{
    let t = tenant("contract-coverage-changes");
    let d = new_device("cover-a");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let mut g = new_group("grp-covered", "Covered");
    g.members = vec![d.id];
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let mut w = new_window("mw-by-group", at(datetime!(2025-01-01 0:00 UTC)));
    w.definition.group_ids = Some(vec![group_slug("grp-covered")]);
    store.create_window(&t, &alice(), w).await.expect("created");
    let start = Timestamp::now();
    send(store, &t, d.id, plus(start, -60), 35.0).await;
    let id = open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .expect("opened")
        .record
        .id;
    assert_eq!(
        store
            .get_alert(&t, id)
            .await
            .expect("found")
            .0
            .record
            .suppressed_by,
        [slug("mw-by-group")],
        "covered through its group"
    );
    let step = |n: i64| plus(start, n * 10);
    let mine = &t;
    let evaluated = |n: i64| async move {
        store.evaluate(step(n)).await.expect("evaluated");
        types(&events_of(store, mine, id).await)
    };

    store
        .remove_member(&t, &alice(), &group_key_slug("grp-covered"), d.id)
        .await
        .expect("removed");
    assert_eq!(
        evaluated(1).await.last(),
        Some(&EventType::Unsuppressed),
        "left the group"
    );
    store
        .add_member(&t, &alice(), &group_key_slug("grp-covered"), d.id)
        .await
        .expect("added");
    assert_eq!(
        evaluated(2).await.last(),
        Some(&EventType::Suppressed),
        "back in the group"
    );
    let elsewhere = WindowChanges {
        site_ids: Some(Some(vec![ScopeLabel::parse("s-elsewhere").expect("valid")])),
        ..WindowChanges::default()
    };
    store
        .update_window(&t, &alice(), &slug("mw-by-group"), elsewhere)
        .await
        .expect("updated");
    assert_eq!(
        evaluated(3).await.last(),
        Some(&EventType::Unsuppressed),
        "the window's scope moved away"
    );
    let moved = DeviceChanges {
        site_id: Some(Some(ScopeLabel::parse("s-elsewhere").expect("valid"))),
        ..DeviceChanges::default()
    };
    store
        .update_device(&t, &alice(), d.id, moved)
        .await
        .expect("updated");
    let types = evaluated(4).await;
    assert_eq!(
        types.last(),
        Some(&EventType::Suppressed),
        "the device moved in"
    );
    assert_eq!(
        types,
        [
            EventType::Opened,
            EventType::Unsuppressed,
            EventType::Suppressed,
            EventType::Unsuppressed,
            EventType::Suppressed
        ]
    );
    assert_eq!(evaluated(4).await.len(), 5, "each change recorded once");
    store
        .delete_group(&t, &group_key_slug("grp-covered"))
        .await
        .expect("deleted");
    assert_eq!(
        evaluated(5).await.last(),
        Some(&EventType::Unsuppressed),
        "its group is gone"
    );
}

/// An alert is muted while its device is in a window's scope through a dynamic group or the
/// window's labels, and unmuted when a device write takes it out: the evaluator judges scope
/// with the memberships and labels of the moment.
pub async fn coverage_follows_dynamic_membership<S>(store: &S)
where
    S: DeviceRepository
        + DeviceGroupRepository
        + ReadingRepository
        + MaintenanceWindowRepository
        + AlertRepository
        + AlertEvaluator,
{
    let t = tenant("contract-dynamic-coverage");
    let mut d = new_device("dyn-a");
    d.spec.labels = domain::Labels::parse([("zone", "north")]).expect("valid");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let mut g = new_group("grp-north", "North");
    g.filter = Some(domain::GroupFilter::Matching(
        domain::MemberConditions::new(
            None,
            None,
            Some(domain::Labels::parse([("zone", "north")]).expect("valid")),
            None,
        )
        .expect("a condition"),
    ));
    store.create_group(&t, &alice(), g).await.expect("created");
    let mut w = new_window("mw-north", at(datetime!(2025-01-01 0:00 UTC)));
    w.definition.group_ids = Some(vec![group_slug("grp-north")]);
    store.create_window(&t, &alice(), w).await.expect("created");
    let start = Timestamp::now();
    send(store, &t, d.id, plus(start, -60), 35.0).await;
    let id = open_alert(store, &t, d.id, AlertKind::Threshold)
        .await
        .expect("opened")
        .record
        .id;
    let suppressed_by = || async {
        store
            .get_alert(&t, id)
            .await
            .expect("found")
            .0
            .record
            .suppressed_by
    };
    assert_eq!(
        suppressed_by().await,
        [slug("mw-north")],
        "muted through the dynamic group"
    );
    let step = |n: i64| plus(start, n * 10);
    let mine = &t;
    let evaluated = |n: i64| async move {
        store.evaluate(step(n)).await.expect("evaluated");
        types(&events_of(store, mine, id).await)
    };
    let relabel = |pairs: &'static [(&'static str, &'static str)]| async move {
        let changes = DeviceChanges {
            labels: Some(domain::Labels::parse(pairs.iter().copied()).expect("valid")),
            ..DeviceChanges::default()
        };
        store
            .update_device(mine, &alice(), d.id, changes)
            .await
            .expect("updated");
    };
    relabel(&[("zone", "south")]).await;
    assert_eq!(
        evaluated(1).await.last(),
        Some(&EventType::Unsuppressed),
        "left the dynamic group"
    );
    relabel(&[("zone", "north")]).await;
    assert_eq!(
        evaluated(2).await.last(),
        Some(&EventType::Suppressed),
        "back in the dynamic group"
    );
    // Now by label instead of by group.
    let by_label = WindowChanges {
        group_ids: Some(None),
        labels: Some(Some(
            domain::Labels::parse([("rack", "r9")]).expect("valid"),
        )),
        ..WindowChanges::default()
    };
    store
        .update_window(&t, &alice(), &slug("mw-north"), by_label)
        .await
        .expect("updated");
    assert_eq!(
        evaluated(3).await.last(),
        Some(&EventType::Unsuppressed),
        "the device lacks the window's label"
    );
    relabel(&[("zone", "north"), ("rack", "r9")]).await;
    assert_eq!(
        evaluated(4).await.last(),
        Some(&EventType::Suppressed),
        "the device carries the window's label"
    );
    assert_eq!(suppressed_by().await, [slug("mw-north")]);
}
