//! Stories of the event log (issue 15): what the live stream and webhooks deliver. Every number
//! of a tenant's counter is one logged event, in order; alert events carry the number of their
//! alert's history; device states are logged only when a status or freshness changes; window
//! starts and ends once each; pruning is told to readers.

use time::Duration;
use uuid::Uuid;

use super::{alice, batch, new_device, new_group, new_window, tenant};
use crate::{
    AlertEvaluator, AlertRepository, DeviceGroupRepository, DeviceRepository, EventLog, EventPage,
    EventSubject, LoggedEvent, MaintenanceWindowRepository, NewWebhook, ReadingRepository,
    WebhookRepository,
};
use domain::{
    AckMode, Acknowledgement, AlertState, AlertStatus, EventType, Freshness, GroupSlug, Reading,
    ReadingValue, Severity, StaleAfter, TenantId, Timestamp, WindowChanges, WindowSchedule,
};

fn plus(t: Timestamp, seconds: i64) -> Timestamp {
    t.checked_add(Duration::seconds(seconds)).expect("in range")
}

async fn send<S: ReadingRepository>(store: &S, t: &TenantId, device: Uuid, at: Timestamp, v: f64) {
    let reading = Reading {
        device_id: device,
        timestamp: at,
        value: ReadingValue::new(v).expect("finite"),
    };
    store
        .ingest(t, batch(vec![reading]))
        .await
        .expect("ingested");
}

/// The whole retained log after `after`, checked: seqs contiguous from `after + 1` (or the
/// first retained), ascending.
async fn log_after<S: EventLog>(
    store: &S,
    t: &TenantId,
    after: i64,
) -> (Vec<LoggedEvent>, EventPage) {
    let mut all = Vec::new();
    let mut cursor = after;
    loop {
        let page = store.events_after(t, cursor, 2).await.expect("read");
        assert!(page.events.len() <= 2, "at most the limit");
        if page.events.is_empty() {
            assert_eq!(cursor, page.last_seq.max(after), "read up to the last seq");
            return (all, page);
        }
        for e in &page.events {
            assert_eq!(
                e.seq,
                cursor + 1,
                "contiguous and ordered: {:?}",
                page.events
            );
            cursor = e.seq;
        }
        all.extend(page.events);
    }
}

fn types(events: &[LoggedEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

fn device_state(event: &LoggedEvent) -> (AlertStatus, Freshness) {
    match &event.subject {
        EventSubject::Device(d) => (d.alert_status, d.freshness),
        other => panic!("a device state, got {other:?}"),
    }
}

/// An ingest that opens an alert logs `alert.opened` with the seq of the alert's history, and
/// `device.state`; a reading that changes neither status nor freshness logs nothing; each
/// event shows its subject as that event left it, with the device's groups.
pub async fn ingest_logs_alert_and_device_state_events_in_order<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository + ReadingRepository + AlertRepository + EventLog,
{
    let t = tenant("contract-log");
    let d = new_device("log-a");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let mut g = new_group("grp-log", "Log");
    g.members = vec![d.id];
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let empty = store.events_after(&t, 0, 10).await.expect("read");
    assert_eq!(empty, EventPage::default(), "nothing logged by creations");

    let now = Timestamp::now();
    send(store, &t, d.id, plus(now, -30), 20.0).await;
    let (first, page) = log_after(store, &t, 0).await;
    assert_eq!(
        types(&first),
        ["device.state"],
        "the first reading ends no_data"
    );
    assert_eq!(
        device_state(&first[0]),
        (AlertStatus::Normal, Freshness::Fresh)
    );
    assert_eq!(first[0].group_ids, [g.id]);
    assert_eq!((page.first_retained, page.last_seq), (Some(1), 1));

    send(store, &t, d.id, plus(now, -20), 21.0).await;
    assert!(
        log_after(store, &t, 1).await.0.is_empty(),
        "nothing changed: nothing logged"
    );

    send(store, &t, d.id, plus(now, -10), 35.0).await;
    let (opened, _) = log_after(store, &t, 1).await;
    assert_eq!(types(&opened), ["alert.opened", "device.state"]);
    assert_eq!(
        device_state(&opened[1]),
        (AlertStatus::Warning, Freshness::Fresh)
    );
    let EventSubject::Alert(alert) = &opened[0].subject else {
        panic!("an alert: {opened:?}");
    };
    assert_eq!(
        (
            alert.record.state,
            alert.record.severity,
            alert.record.last_value
        ),
        (AlertState::Open, Severity::Warning, Some(35.0))
    );
    assert_eq!(alert.device_name, d.spec.name);
    assert_eq!(opened[0].group_ids, [g.id]);
    let (_, history) = store.get_alert(&t, alert.record.id).await.expect("found");
    assert_eq!(
        history[0].seq, opened[0].seq,
        "the history's number is the log's"
    );
    assert_eq!(history[0].event.event_type, EventType::Opened);

    send(store, &t, d.id, plus(now, -5), 45.0).await;
    let ack = Acknowledgement::new(
        alice(),
        Timestamp::now(),
        AckMode::UntilResolved,
        None,
        None,
    )
    .expect("valid");
    store
        .acknowledge(&t, alert.record.id, ack)
        .await
        .expect("acknowledged");
    let (later, page) = log_after(store, &t, opened[1].seq).await;
    assert_eq!(
        types(&later),
        ["alert.escalated", "device.state", "alert.acknowledged"]
    );
    let EventSubject::Alert(escalated) = &later[0].subject else {
        panic!("an alert: {later:?}");
    };
    assert_eq!(escalated.record.severity, Severity::Critical);
    assert!(
        escalated.record.acknowledgement.is_none(),
        "as the escalation left it"
    );
    let EventSubject::Alert(acked) = &later[2].subject else {
        panic!("an alert: {later:?}");
    };
    assert_eq!(
        acked.record.acknowledgement.as_ref().map(|a| a.by.clone()),
        Some(alice())
    );
    let (_, history) = store.get_alert(&t, alert.record.id).await.expect("found");
    let seqs: Vec<i64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [opened[0].seq, later[0].seq, later[2].seq]);
    assert_eq!(page.last_seq, later[2].seq);
    let (all, _) = log_after(store, &t, 0).await;
    assert_eq!(all.len(), 6, "every number is one event: {all:?}");
}

/// A device turning stale (the evaluator) and fresh again (a reading) logs its state each time.
pub async fn staleness_is_logged_as_device_state<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + AlertEvaluator + EventLog,
{
    let t = tenant("contract-log-stale");
    let mut d = new_device("log-stale");
    d.spec.stale_after = Some(StaleAfter::from_secs(60).expect("valid"));
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let now = Timestamp::now();
    send(store, &t, d.id, plus(now, -30), 20.0).await;
    let (logged, _) = log_after(store, &t, 0).await;
    assert_eq!(types(&logged), ["device.state"]);
    store.evaluate(plus(now, 120)).await.expect("evaluated");
    store.evaluate(plus(now, 130)).await.expect("evaluated");
    let (stale, _) = log_after(store, &t, 1).await;
    assert_eq!(types(&stale), ["alert.opened", "device.state"], "once");
    assert_eq!(
        device_state(&stale[1]),
        (AlertStatus::Normal, Freshness::Stale)
    );
    send(store, &t, d.id, Timestamp::now(), 21.0).await;
    let (fresh, _) = log_after(store, &t, 3).await;
    assert_eq!(types(&fresh), ["alert.resolved", "device.state"]);
    assert_eq!(
        device_state(&fresh[1]),
        (AlertStatus::Normal, Freshness::Fresh)
    );
}

/// A window's start and end are logged once each, however many evaluator passes see them,
/// with the groups its scope names; disabling or deleting an active window logs its end, the
/// deleted one still shown as it was.
pub async fn window_starts_and_ends_are_logged_once<S>(store: &S)
where
    S: DeviceGroupRepository + MaintenanceWindowRepository + AlertEvaluator + EventLog,
{
    let t = tenant("contract-log-windows");
    let g = new_group("grp-win", "Win");
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let now = Timestamp::now();

    // Deleted while active: its end, with the window as it was.
    let open_ended = new_window("mw-log-del", plus(now, -60));
    store
        .create_window(&t, &alice(), open_ended.clone())
        .await
        .expect("created");
    store.evaluate(now).await.expect("evaluated");
    store
        .delete_window(&t, &open_ended.window_id)
        .await
        .expect("deleted");
    let (deleted, _) = log_after(store, &t, 0).await;
    assert_eq!(types(&deleted), ["window.started", "window.ended"]);
    let EventSubject::Window(gone) = &deleted[1].subject else {
        panic!("a window: {deleted:?}");
    };
    assert_eq!(gone.window_id, open_ended.window_id);
    assert!(deleted[1].group_ids.is_empty());

    // Disabled while active: its end at once, and only once.
    let disabled = new_window("mw-log-off", plus(now, -60));
    store
        .create_window(&t, &alice(), disabled.clone())
        .await
        .expect("created");
    store.evaluate(Timestamp::now()).await.expect("evaluated");
    let off = WindowChanges {
        enabled: Some(false),
        ..WindowChanges::default()
    };
    store
        .update_window(&t, &alice(), &disabled.window_id, off)
        .await
        .expect("updated");
    store.evaluate(Timestamp::now()).await.expect("evaluated");
    let (switched, _) = log_after(store, &t, 2).await;
    assert_eq!(types(&switched), ["window.started", "window.ended"]);
    let EventSubject::Window(off) = &switched[1].subject else {
        panic!("a window: {switched:?}");
    };
    assert!(!off.definition.enabled, "as the event left it");

    // Started and ended by time, each once across passes, with the groups it names.
    let now = Timestamp::now();
    let mut w = new_window("mw-log", plus(now, -60));
    w.definition.schedule =
        WindowSchedule::new(plus(now, -60), Some(plus(now, 3_600))).expect("valid");
    w.definition.group_ids = Some(vec![GroupSlug::parse("grp-win").expect("valid")]);
    store
        .create_window(&t, &alice(), w.clone())
        .await
        .expect("created");
    store.evaluate(now).await.expect("evaluated");
    store.evaluate(plus(now, 1)).await.expect("evaluated");
    let (started, _) = log_after(store, &t, 4).await;
    assert_eq!(types(&started), ["window.started"], "once across passes");
    assert_eq!(started[0].group_ids, [g.id]);
    let EventSubject::Window(window) = &started[0].subject else {
        panic!("a window: {started:?}");
    };
    assert_eq!(window.window_id, w.window_id);
    store.evaluate(plus(now, 7_200)).await.expect("evaluated");
    store.evaluate(plus(now, 7_201)).await.expect("evaluated");
    let (ended, _) = log_after(store, &t, 5).await;
    assert_eq!(types(&ended), ["window.ended"], "once across passes");
}

/// A tenant reads its own log only, numbered from 1 whatever other tenants logged.
pub async fn tenants_never_see_each_others_events<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + EventLog,
{
    let (a, b) = (tenant("contract-log-a"), tenant("contract-log-b"));
    let (da, db) = (new_device("log-ta"), new_device("log-tb"));
    store
        .create_device(&a, &alice(), da.clone())
        .await
        .expect("created");
    store
        .create_device(&b, &alice(), db.clone())
        .await
        .expect("created");
    let now = Timestamp::now();
    send(store, &a, da.id, plus(now, -10), 35.0).await;
    let other = store.events_after(&b, 0, 100).await.expect("read");
    assert_eq!(other, EventPage::default(), "nothing of tenant a");
    assert!(other.lost_after(2), "a seq of another tenant reads as lost");
    send(store, &b, db.id, plus(now, -10), 20.0).await;
    let (own, page) = log_after(store, &b, 0).await;
    assert_eq!(types(&own), ["device.state"]);
    assert_eq!((own[0].seq, page.last_seq), (1, 1));
    let (theirs, _) = log_after(store, &a, 0).await;
    assert_eq!(theirs.len(), 2);
}

/// Pruning takes the oldest events in bounded batches, and a reader that missed them is told.
pub async fn pruned_events_are_reported_lost<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + EventLog,
{
    let t = tenant("contract-log-prune");
    let d = new_device("log-prune");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let now = Timestamp::now();
    for (k, v) in [20.0, 35.0, 20.0].into_iter().enumerate() {
        send(store, &t, d.id, plus(now, -30 + k as i64), v).await;
    }
    let (all, _) = log_after(store, &t, 0).await;
    let last = all.last().expect("logged").seq;
    assert_eq!(last, 5, "{:?}", types(&all));
    assert_eq!(
        store.prune(plus(now, -3_600), 100).await.expect("pruned"),
        0,
        "none that old"
    );
    let later = plus(Timestamp::now(), 1);
    assert_eq!(store.prune(later, 1).await.expect("pruned"), 1, "bounded");
    let page = store.events_after(&t, 0, 10).await.expect("read");
    assert_eq!(page.first_retained, Some(2));
    assert!(page.lost_after(0));
    assert!(!page.lost_after(1));
    assert_eq!(page.events.first().map(|e| e.seq), Some(2));
    assert_eq!(store.prune(later, 100).await.expect("pruned"), 4);
    let page = store.events_after(&t, 0, 10).await.expect("read");
    assert_eq!((page.first_retained, page.last_seq), (None, last));
    assert!(page.events.is_empty());
    assert!(page.lost_after(0) && page.lost_after(3));
    assert!(!page.lost_after(last), "a reader up to date missed nothing");
    send(store, &t, d.id, plus(now, -1), 35.0).await;
    let page = store.events_after(&t, last, 10).await.expect("read");
    assert_eq!(
        page.events.first().map(|e| e.seq),
        Some(last + 1),
        "numbers go on"
    );
}

/// Each logged event of a type a tenant's enabled subscription names is queued for it (the
/// outbox written with the event), others are not.
pub async fn logged_events_queue_webhook_deliveries<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + WebhookRepository + EventLog,
{
    let t = tenant("contract-log-hooks");
    let d = new_device("log-hook");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let hook = store
        .create_webhook(
            &t,
            NewWebhook {
                id: Uuid::new_v4(),
                url: "https://hooks.example/in".to_owned(),
                event_types: vec!["alert.opened".to_owned(), "device.state".to_owned()],
                description: "log".to_owned(),
                secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
                created_at: Timestamp::now(),
            },
        )
        .await
        .expect("created");
    let now = Timestamp::now();
    send(store, &t, d.id, plus(now, -20), 35.0).await;
    send(store, &t, d.id, plus(now, -10), 45.0).await;
    let (logged, _) = log_after(store, &t, 0).await;
    assert_eq!(
        types(&logged),
        [
            "alert.opened",
            "device.state",
            "alert.escalated",
            "device.state"
        ]
    );
    let mut queued: Vec<(Option<i64>, String)> = store
        .list_deliveries(&t, hook.id, 100)
        .await
        .expect("listed")
        .into_iter()
        .map(|d| (d.event_seq, d.event_type))
        .collect();
    queued.sort();
    assert_eq!(
        queued,
        [
            (Some(1), "alert.opened".to_owned()),
            (Some(2), "device.state".to_owned()),
            (Some(4), "device.state".to_owned()),
        ],
        "the subscribed types only, one delivery per event"
    );
}
