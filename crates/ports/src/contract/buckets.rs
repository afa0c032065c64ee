//! Stories of bucketed reads (issue 16): aggregates per aligned bucket over the readings in the
//! range only, the reading before the range for `fill=previous`, and which members of a group
//! get a series.

use time::macros::datetime;
use uuid::Uuid;

use super::{alice, at, batch, new_device, new_group, reading, tenant};
use crate::{
    DeviceGroupRepository, DeviceRepository, GroupBucketsError, GroupKey, LookupError,
    ReadingRepository,
};
use domain::bucket::{
    Aggregates, BucketGrid, BucketQuery, BucketStats, Fill, Interval, SeriesChoice, Zone,
};

fn query(
    interval: &str,
    zone: &str,
    since: time::OffsetDateTime,
    until: time::OffsetDateTime,
    fill: Fill,
) -> BucketQuery {
    let grid = BucketGrid::new(
        Interval::parse(interval).expect("interval"),
        &Zone::parse(zone).expect("zone"),
        at(since),
        at(until),
    )
    .expect("few buckets");
    BucketQuery {
        since: at(since),
        until: Some(at(until)),
        grid,
        aggregates: Aggregates::parse("avg,first,last").expect("aggregates"),
        fill,
    }
}

/// A device's days in Berlin across the autumn DST change: each day's readings aggregated in
/// the store, readings before `since` left out of the partly covered first day, the reading
/// before the range told apart.
pub async fn device_buckets_aggregate_the_range_on_the_zones_calendar<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-buckets");
    let d = new_device("bucketed");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    store
        .ingest(
            &t,
            batch(vec![
                // Before the range: not counted, but known for fill=previous.
                reading(d.id, datetime!(2025-10-25 01:00 +02:00), 100.0),
                reading(d.id, datetime!(2025-10-25 09:00 +02:00), 1.0),
                reading(d.id, datetime!(2025-10-25 13:00 +02:00), 3.0),
                reading(d.id, datetime!(2025-10-25 23:59 +02:00), 2.0),
                // 2025-10-26 lasts 25 hours in Berlin: 23:30 +01:00 is still that day.
                reading(d.id, datetime!(2025-10-26 00:00 +02:00), 10.0),
                reading(d.id, datetime!(2025-10-26 23:30 +01:00), 20.0),
                // 2025-10-27 has none; 2025-10-28 one, after the range end: not counted.
                reading(d.id, datetime!(2025-10-28 12:00 +01:00), 50.0),
            ]),
        )
        .await
        .expect("ingested");
    let q = query(
        "1d",
        "Europe/Berlin",
        datetime!(2025-10-25 06:00 +02:00),
        datetime!(2025-10-28 06:00 +01:00),
        Fill::Previous,
    );
    assert_eq!(q.grid.len(), 4);
    let series = store.device_buckets(&t, d.id, &q).await.expect("read");
    assert_eq!(series.device_id, d.id);
    assert_eq!(series.device_name, d.spec.name);
    assert_eq!(series.before, Some(100.0));
    let day = |b: &BucketStats| (b.index, b.count, b.sum, b.min, b.max, b.first, b.last);
    assert_eq!(
        series.buckets.iter().map(day).collect::<Vec<_>>(),
        vec![
            (0, 3, 6.0, 1.0, 3.0, 1.0, 2.0),
            (1, 2, 30.0, 10.0, 20.0, 10.0, 20.0),
        ]
    );

    let plain = BucketQuery {
        fill: Fill::None,
        ..q.clone()
    };
    assert_eq!(
        store
            .device_buckets(&t, d.id, &plain)
            .await
            .expect("read")
            .before,
        None,
        "asked for fill=previous only"
    );
    assert!(matches!(
        store.device_buckets(&t, Uuid::new_v4(), &q).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store
            .device_buckets(&tenant("contract-buckets-other"), d.id, &q)
            .await,
        Err(LookupError::NotFound)
    ));
}

/// A group's series: members with readings counted, narrowed to a list of members (anything
/// else named is refused), and to the `top` with most readings, ties by name.
pub async fn group_buckets_choose_members_with_readings<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-group-buckets");
    let mut ids = Vec::new();
    for name in ["a-quiet", "b-busy", "c-one", "d-one"] {
        let d = new_device(name);
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
        ids.push(d.id);
    }
    let outsider = new_device("outsider");
    store
        .create_device(&t, &alice(), outsider.clone())
        .await
        .expect("created");
    let mut g = new_group("grp-buckets", "Buckets");
    g.members = ids.clone();
    let group = GroupKey::Id(g.id);
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let (quiet, busy, one_c, one_d) = (ids[0], ids[1], ids[2], ids[3]);
    store
        .ingest(
            &t,
            batch(vec![
                reading(busy, datetime!(2025-06-01 10:05 UTC), 1.0),
                reading(busy, datetime!(2025-06-01 10:10 UTC), 2.0),
                reading(busy, datetime!(2025-06-01 11:10 UTC), 4.0),
                reading(one_c, datetime!(2025-06-01 11:00 UTC), 5.0),
                reading(one_d, datetime!(2025-06-01 11:00 UTC), 6.0),
                reading(quiet, datetime!(2025-06-01 08:00 UTC), 7.0),
                reading(outsider.id, datetime!(2025-06-01 10:00 UTC), 8.0),
            ]),
        )
        .await
        .expect("ingested");
    let q = query(
        "1h",
        "Asia/Kolkata",
        datetime!(2025-06-01 10:00 UTC),
        datetime!(2025-06-01 12:00 UTC),
        Fill::None,
    );
    // Kolkata hours start at :30 UTC: 09:30, 10:30, 11:30 (to 12:30).
    assert_eq!(q.grid.len(), 3);
    let all = store
        .group_buckets(&t, &group, &SeriesChoice::default(), &q)
        .await
        .expect("read");
    let mut got: Vec<(Uuid, Vec<(usize, u64)>)> = all
        .iter()
        .map(|s| {
            (
                s.device_id,
                s.buckets.iter().map(|b| (b.index, b.count)).collect(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (busy, vec![(0, 2), (1, 1)]),
        (one_c, vec![(1, 1)]),
        (one_d, vec![(1, 1)]),
    ];
    want.sort();
    assert_eq!(got, want, "only members with readings in range");

    let top = store
        .group_buckets(
            &t,
            &group,
            &SeriesChoice::new(None, Some(2)).expect("valid"),
            &q,
        )
        .await
        .expect("read");
    let mut chosen: Vec<Uuid> = top.iter().map(|s| s.device_id).collect();
    chosen.sort();
    let mut expected = vec![busy, one_c];
    expected.sort();
    assert_eq!(chosen, expected, "most readings, ties by name");

    let listed = store
        .group_buckets(
            &t,
            &group,
            &SeriesChoice::new(Some(vec![one_d, quiet]), None).expect("valid"),
            &q,
        )
        .await
        .expect("read");
    assert_eq!(
        listed.iter().map(|s| s.device_id).collect::<Vec<_>>(),
        vec![one_d]
    );

    assert!(matches!(
        store
            .group_buckets(
                &t,
                &group,
                &SeriesChoice::new(Some(vec![busy, outsider.id]), None).expect("valid"),
                &q,
            )
            .await,
        Err(GroupBucketsError::NotMember(id)) if id == outsider.id
    ));
    assert!(matches!(
        store
            .group_buckets(
                &t,
                &GroupKey::Id(Uuid::new_v4()),
                &SeriesChoice::default(),
                &q
            )
            .await,
        Err(GroupBucketsError::NotFound)
    ));
    assert!(matches!(
        store
            .group_buckets(
                &tenant("contract-group-buckets-other"),
                &group,
                &SeriesChoice::default(),
                &q
            )
            .await,
        Err(GroupBucketsError::NotFound)
    ));
}

/// Buckets stay true to the readings whatever order they arrive in: a re-sent reading replaces
/// its value, a late one joins its hour, and a range or zone that cuts hours in half counts
/// exactly the readings inside (PostgreSQL serves whole hours from rollups, the rest from the
/// readings).
pub async fn buckets_stay_true_after_resent_and_late_readings<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-bucket-truth");
    let d = new_device("truth");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let send =
        |at: time::OffsetDateTime, v: f64| store.ingest(&t, batch(vec![reading(d.id, at, v)]));
    send(datetime!(2025-06-01 10:10 UTC), 1.0)
        .await
        .expect("in");
    send(datetime!(2025-06-01 10:50 UTC), 5.0)
        .await
        .expect("in");
    // Re-sent: replaces 1.0. Late: before the hour's latest.
    send(datetime!(2025-06-01 10:10 UTC), 7.0)
        .await
        .expect("in");
    send(datetime!(2025-06-01 10:05 UTC), 2.0)
        .await
        .expect("in");
    // Either side of Kolkata's midnight (18:30 UTC).
    send(datetime!(2025-06-01 18:15 UTC), 3.0)
        .await
        .expect("in");
    send(datetime!(2025-06-01 18:45 UTC), 4.0)
        .await
        .expect("in");

    let stats = |series: &domain::bucket::SeriesStats| {
        series
            .buckets
            .iter()
            .map(|b| (b.index, b.count, b.sum, b.min, b.max, b.first, b.last))
            .collect::<Vec<_>>()
    };
    let hour = query(
        "1h",
        "UTC",
        datetime!(2025-06-01 10:00 UTC),
        datetime!(2025-06-01 11:00 UTC),
        Fill::None,
    );
    let whole = store.device_buckets(&t, d.id, &hour).await.expect("read");
    assert_eq!(stats(&whole), vec![(0, 3, 14.0, 2.0, 7.0, 2.0, 5.0)]);

    let cut = query(
        "1h",
        "UTC",
        datetime!(2025-06-01 10:07 UTC),
        datetime!(2025-06-01 10:30 UTC),
        Fill::None,
    );
    let part = store.device_buckets(&t, d.id, &cut).await.expect("read");
    assert_eq!(stats(&part), vec![(0, 1, 7.0, 7.0, 7.0, 7.0, 7.0)]);

    let days = query(
        "1d",
        "Asia/Kolkata",
        datetime!(2025-06-01 00:00 UTC),
        datetime!(2025-06-02 00:00 UTC),
        Fill::None,
    );
    let kolkata = store.device_buckets(&t, d.id, &days).await.expect("read");
    assert_eq!(
        stats(&kolkata),
        vec![
            (0, 4, 17.0, 2.0, 7.0, 2.0, 3.0),
            (1, 1, 4.0, 4.0, 4.0, 4.0, 4.0),
        ]
    );
}

/// Sub-day buckets start where the zone's clock shows a multiple of the interval past midnight:
/// Berlin's 6-hour buckets of its 25-hour day are 00-06 (7 hours, both 02:30s in it), 06, 12,
/// 18; its spring day's 2-hour buckets start at 00 and 04 (02:00 never shows).
pub async fn sub_day_buckets_follow_the_wall_clock_through_dst<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-bucket-clock");
    let d = new_device("clock");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    store
        .ingest(
            &t,
            batch(vec![
                reading(d.id, datetime!(2025-10-26 00:30 +02:00), 1.0),
                reading(d.id, datetime!(2025-10-26 02:30 +02:00), 2.0),
                reading(d.id, datetime!(2025-10-26 02:30 +01:00), 3.0),
                reading(d.id, datetime!(2025-10-26 05:59 +01:00), 4.0),
                reading(d.id, datetime!(2025-10-26 06:00 +01:00), 5.0),
                reading(d.id, datetime!(2025-03-30 01:30 +01:00), 6.0),
                reading(d.id, datetime!(2025-03-30 03:59 +02:00), 7.0),
                reading(d.id, datetime!(2025-03-30 04:00 +02:00), 8.0),
            ]),
        )
        .await
        .expect("ingested");
    let counts = |series: &domain::bucket::SeriesStats| {
        series
            .buckets
            .iter()
            .map(|b| (b.index, b.count, b.sum))
            .collect::<Vec<_>>()
    };
    let autumn = query(
        "6h",
        "Europe/Berlin",
        datetime!(2025-10-26 00:00 +02:00),
        datetime!(2025-10-27 00:00 +01:00),
        Fill::None,
    );
    assert_eq!(autumn.grid.len(), 4);
    let six = store.device_buckets(&t, d.id, &autumn).await.expect("read");
    assert_eq!(counts(&six), vec![(0, 4, 10.0), (1, 1, 5.0)]);

    let spring = query(
        "7200",
        "Europe/Berlin",
        datetime!(2025-03-30 00:00 +01:00),
        datetime!(2025-03-30 06:00 +02:00),
        Fill::None,
    );
    assert_eq!(spring.grid.len(), 2);
    let two = store.device_buckets(&t, d.id, &spring).await.expect("read");
    assert_eq!(counts(&two), vec![(0, 2, 13.0), (1, 1, 8.0)]);
}
