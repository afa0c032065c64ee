//! Stories of raw readings (issue 16): pages that continue after a position or skip an offset,
//! exports that stream what pages answer, and range deletes that keep the device's state true.

use futures_util::StreamExt as _;
use time::Duration;
use uuid::Uuid;

use super::{alice, batch, new_device, new_group, tenant};
use crate::{
    AlertRepository, DeviceGroupRepository, DeviceRepository, EventLog, GroupKey, GroupReading,
    LookupError, ReadingRepository,
};
use domain::{
    AlertState, AlertStatus, EventType, Reading, ReadingPosition, ReadingQuery, ReadingValue,
    Timestamp,
};

fn plus(t: Timestamp, seconds: i64) -> Timestamp {
    t.checked_add(Duration::seconds(seconds)).expect("in range")
}

fn reading(device: Uuid, at: Timestamp, value: f64) -> Reading {
    Reading {
        device_id: device,
        timestamp: at,
        value: ReadingValue::new(value).expect("finite"),
    }
}

fn between(start: Timestamp, end: Timestamp, limit: i64) -> ReadingQuery {
    ReadingQuery::between(Some(start), Some(end), end, limit).expect("valid query")
}

fn position(r: &GroupReading) -> ReadingPosition {
    ReadingPosition {
        timestamp: r.timestamp,
        device_id: r.device_id,
    }
}

/// Pages continued strictly after the last reading of the previous one give every reading once,
/// in the one order (newest first, ties by device id), even when readings arrive between pages;
/// an offset skips as many; a device's pages alike.
pub async fn reading_pages_continue_after_a_position_without_repeats_or_gaps<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-reading-pages");
    let (x, y) = (new_device("page-x"), new_device("page-y"));
    for d in [&x, &y] {
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
    }
    let mut g = new_group("grp-pages", "Pages");
    g.members = vec![x.id, y.id];
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let base = Timestamp::now()
        .checked_add(Duration::hours(-2))
        .expect("in range");
    // Seven instants, both devices at each of the even ones: ties to order by device id.
    let mut readings = Vec::new();
    for i in 0..7_u8 {
        let at = plus(base, i64::from(i) * 60);
        readings.push(reading(x.id, at, f64::from(i)));
        if i % 2 == 0 {
            readings.push(reading(y.id, at, 100.0 + f64::from(i)));
        }
    }
    store.ingest(&t, batch(readings)).await.expect("ingested");
    let (start, end) = (base, plus(base, 3_600));
    let group = GroupKey::Id(g.id);
    let whole = store
        .group_readings(&t, &group, between(start, end, 100))
        .await
        .expect("read");
    assert_eq!(whole.len(), 11);

    let mut paged: Vec<GroupReading> = Vec::new();
    let mut query = between(start, end, 3);
    loop {
        let page = store.group_readings(&t, &group, query).await.expect("read");
        assert!(page.len() <= 3, "at most the limit");
        let Some(last) = page.last() else { break };
        query = query.resumed(start, Some(end), position(last));
        paged.extend(page);
        if paged.len() == 3 {
            // A reading arriving mid-walk, newer than every page: not in the walk.
            store
                .ingest(&t, batch(vec![reading(x.id, plus(base, 30 * 60), 9.0)]))
                .await
                .expect("ingested");
        }
    }
    assert_eq!(paged, whole, "every reading once, in order");

    let skipped = store
        .group_readings(
            &t,
            &group,
            between(start, plus(base, 7 * 60), 4)
                .skipping(5)
                .expect("valid"),
        )
        .await
        .expect("read");
    assert_eq!(skipped, whole[5..9], "an offset skips as many");

    let device_whole: Vec<f64> = store
        .device_readings(&t, x.id, between(start, end, 100))
        .await
        .expect("read")
        .iter()
        .map(|p| p.value)
        .collect();
    assert_eq!(device_whole, [9.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]);
    let after = ReadingPosition {
        timestamp: plus(base, 4 * 60),
        device_id: x.id,
    };
    let rest: Vec<f64> = store
        .device_readings(
            &t,
            x.id,
            between(start, end, 2).resumed(start, Some(end), after),
        )
        .await
        .expect("read")
        .iter()
        .map(|p| p.value)
        .collect();
    assert_eq!(rest, [3.0, 2.0], "strictly after the position");
    let offset: Vec<f64> = store
        .device_readings(&t, x.id, between(start, end, 2).skipping(7).expect("valid"))
        .await
        .expect("read")
        .iter()
        .map(|p| p.value)
        .collect();
    assert_eq!(offset, [0.0]);
}

/// An export streams exactly what one page of its whole range would answer, however long (past
/// the embedded store's chunk); an unknown device or group is not found.
pub async fn exports_stream_what_a_page_answers<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-exports");
    let (x, y) = (new_device("export-x"), new_device("export-y"));
    for d in [&x, &y] {
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
    }
    let mut g = new_group("grp-export", "Export");
    g.members = vec![x.id, y.id];
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let base = Timestamp::now()
        .checked_add(Duration::hours(-3))
        .expect("in range");
    let readings: Vec<Reading> = (0..2_600_i32)
        .map(|i| reading(x.id, plus(base, i64::from(i)), f64::from(i)))
        .chain((0..1_000_i32).map(|i| reading(y.id, plus(base, i64::from(i) * 2), -f64::from(i))))
        .collect();
    store.ingest(&t, batch(readings)).await.expect("ingested");
    let (start, end) = (base, plus(base, 3_600));
    let group = GroupKey::Id(g.id);

    let page = store
        .group_readings(&t, &group, between(start, end, 10_000))
        .await
        .expect("read");
    assert_eq!(page.len(), 3_600);
    let export = between(start, end, 1).exporting(5_000_000).expect("valid");
    let streamed: Vec<GroupReading> = store
        .export_group_readings(&t, &group, export)
        .await
        .expect("started")
        .map(|r| r.expect("a reading"))
        .collect()
        .await;
    assert_eq!(streamed, page);
    let capped = between(start, end, 1).exporting(2_500).expect("valid");
    let streamed: Vec<GroupReading> = store
        .export_group_readings(&t, &group, capped)
        .await
        .expect("started")
        .map(|r| r.expect("a reading"))
        .collect()
        .await;
    assert_eq!(streamed, page[..2_500], "limited");

    let device_page = store
        .device_readings(&t, x.id, between(start, end, 10_000))
        .await
        .expect("read");
    let device_streamed: Vec<_> = store
        .export_device_readings(&t, x.id, export)
        .await
        .expect("started")
        .map(|r| r.expect("a reading"))
        .collect()
        .await;
    assert_eq!(device_streamed.len(), 2_600);
    assert_eq!(device_streamed, device_page);

    assert!(matches!(
        store
            .export_device_readings(&t, Uuid::new_v4(), export)
            .await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store
            .export_group_readings(&t, &GroupKey::Id(Uuid::new_v4()), export)
            .await,
        Err(LookupError::NotFound)
    ));
    let other = tenant("contract-exports-other");
    assert!(matches!(
        store.export_device_readings(&other, x.id, export).await,
        Err(LookupError::NotFound)
    ));
}

/// Deleting a range counts what went; when the latest reading went, the newest remaining one is
/// the latest and the state is judged from it, with the events ingest would record; with none
/// left, the device has no reading. Another tenant's or an unknown device is not found.
pub async fn deleting_a_range_of_readings_keeps_the_latest_and_the_state_true<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository + AlertRepository + EventLog,
{
    let t = tenant("contract-range-delete");
    let d = new_device("delete-me"); // warning above 30
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let base = Timestamp::now()
        .checked_add(Duration::minutes(-30))
        .expect("in range");
    store
        .ingest(
            &t,
            batch(vec![
                reading(d.id, plus(base, 0), 10.0),
                reading(d.id, plus(base, 60), 20.0),
                reading(d.id, plus(base, 120), 35.0),
            ]),
        )
        .await
        .expect("ingested");
    let before = store.get_device(&t, d.id).await.expect("found");
    assert_eq!(before.state.alert_status, AlertStatus::Warning);
    let last_seq = store.events_after(&t, 0, 1).await.expect("read").last_seq;

    // Nothing in the range: nothing changes.
    let none = store
        .delete_device_readings(&t, d.id, plus(base, 1), plus(base, 2))
        .await
        .expect("deleted");
    assert_eq!(none, 0);
    assert_eq!(
        store.get_device(&t, d.id).await.expect("found").state,
        before.state
    );

    // The latest goes: the reading before it is the latest, and judged.
    let gone = store
        .delete_device_readings(&t, d.id, plus(base, 90), plus(base, 600))
        .await
        .expect("deleted");
    assert_eq!(gone, 1);
    let after = store.get_device(&t, d.id).await.expect("found");
    let latest = after.state.last_reading.expect("a reading left");
    assert_eq!((latest.timestamp, latest.value), (plus(base, 60), 20.0));
    assert_eq!(after.state.alert_status, AlertStatus::Normal);
    let logged = store.events_after(&t, last_seq, 10).await.expect("read");
    let types: Vec<&str> = logged
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, ["alert.resolved", "device.state"]);
    let query = crate::AlertQuery {
        filter: crate::AlertFilter::default(),
        limit: 10,
        after: None,
    };
    let alerts = store.list_alerts(&t, &query).await.expect("listed");
    assert_eq!(alerts.alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts
            .alerts
            .iter()
            .all(|a| a.record.state == AlertState::Resolved),
        "the alert resolved: {alerts:?}"
    );
    let (_, history) = store
        .get_alert(&t, alerts.alerts[0].record.id)
        .await
        .expect("found");
    assert_eq!(
        history.last().map(|e| e.event.event_type),
        Some(EventType::Resolved)
    );
    let left = store
        .device_readings(&t, d.id, between(plus(base, -60), plus(base, 3_600), 100))
        .await
        .expect("read");
    assert_eq!(left.len(), 2);

    // Everything goes: no reading, the state of a device without one.
    let rest = store
        .delete_device_readings(&t, d.id, plus(base, -60), plus(base, 3_600))
        .await
        .expect("deleted");
    assert_eq!(rest, 2);
    let empty = store.get_device(&t, d.id).await.expect("found");
    assert_eq!(empty.state, domain::DeviceState::default());

    assert!(matches!(
        store
            .delete_device_readings(&t, Uuid::new_v4(), base, plus(base, 1))
            .await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store
            .delete_device_readings(
                &tenant("contract-range-delete-other"),
                d.id,
                base,
                plus(base, 1)
            )
            .await,
        Err(LookupError::NotFound)
    ));
}
