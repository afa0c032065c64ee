//! Readings: ingest, and what it counts; bucketed reads.

use domain::bucket::{BucketQuery, SeriesChoice, SeriesStats, MAX_BUCKETS_PER_ANSWER, MAX_SERIES};
use domain::{ReadingBatch, TenantId, Timestamp};
use ports::{GroupBucketsError, GroupKey, IngestError, LookupError, ReadingRepository};
use uuid::Uuid;

/// Stores `batch` (all or nothing) and counts what was stored in `iot_readings_ingested_total`.
///
/// # Errors
/// The store's [`IngestError`]; nothing is stored then.
pub async fn ingest(
    readings: &dyn ReadingRepository,
    tenant: &TenantId,
    batch: ReadingBatch,
) -> Result<u64, IngestError> {
    let stored = readings.ingest(tenant, batch).await?;
    metrics::counter!("iot_readings_ingested_total").increment(stored);
    Ok(stored)
}

/// Deletes the device's readings in `[start, end)` (its state judged again by the store when
/// its latest reading goes) and counts them in `iot_readings_deleted_total`.
///
/// # Errors
/// The store's [`LookupError`]; nothing is deleted then.
pub async fn delete_range(
    readings: &dyn ReadingRepository,
    tenant: &TenantId,
    device: Uuid,
    start: Timestamp,
    end: Timestamp,
) -> Result<u64, LookupError> {
    let deleted = readings
        .delete_device_readings(tenant, device, start, end)
        .await?;
    metrics::counter!("iot_readings_deleted_total").increment(deleted);
    Ok(deleted)
}

/// The device's readings in buckets: one series, empty when nothing was counted.
///
/// # Errors
/// The store's [`LookupError`].
pub async fn device_buckets(
    readings: &dyn ReadingRepository,
    tenant: &TenantId,
    device: Uuid,
    query: &BucketQuery,
) -> Result<SeriesStats, LookupError> {
    readings.device_buckets(tenant, device, query).await
}

/// The group's members' readings in buckets: one series per chosen member with readings in the
/// range, ordered by device name.
///
/// # Errors
/// The store's [`GroupBucketsError`], and [`GroupBucketsError::TooManySeries`] when more than
/// [`MAX_SERIES`] members would get one; [`GroupBucketsError::TooManyBuckets`] (before reading)
/// when the series the choice allows times the buckets of each exceed
/// [`MAX_BUCKETS_PER_ANSWER`].
pub async fn group_buckets(
    readings: &dyn ReadingRepository,
    tenant: &TenantId,
    group: &GroupKey,
    choice: &SeriesChoice,
    query: &BucketQuery,
) -> Result<Vec<SeriesStats>, GroupBucketsError> {
    buckets_of(readings, tenant, group, choice, query, false).await
}

/// As [`group_buckets`], over the group's tree (the group and its descendants, each device once).
///
/// # Errors
/// As [`group_buckets`].
pub async fn tree_buckets(
    readings: &dyn ReadingRepository,
    tenant: &TenantId,
    group: &GroupKey,
    choice: &SeriesChoice,
    query: &BucketQuery,
) -> Result<Vec<SeriesStats>, GroupBucketsError> {
    buckets_of(readings, tenant, group, choice, query, true).await
}

async fn buckets_of(
    readings: &dyn ReadingRepository,
    tenant: &TenantId,
    group: &GroupKey,
    choice: &SeriesChoice,
    query: &BucketQuery,
    tree: bool,
) -> Result<Vec<SeriesStats>, GroupBucketsError> {
    if choice.most_series().saturating_mul(query.grid.len()) > MAX_BUCKETS_PER_ANSWER {
        return Err(GroupBucketsError::TooManyBuckets);
    }
    let mut series = if tree {
        readings.tree_buckets(tenant, group, choice, query).await?
    } else {
        readings.group_buckets(tenant, group, choice, query).await?
    };
    series.retain(|s| !s.buckets.is_empty());
    if series.len() > MAX_SERIES {
        return Err(GroupBucketsError::TooManySeries);
    }
    choice.pick(&mut series);
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::bucket::{Aggregates, BucketGrid, BucketStats, Fill, Interval, Zone, MAX_SERIES};
    use domain::{DeviceName, Timestamp, Unit};
    use ports::MockReadingRepository;
    use time::macros::datetime;

    fn query() -> BucketQuery {
        let at = |t| Timestamp::new(t).expect("in range");
        BucketQuery {
            since: at(datetime!(2025-06-01 0:00 UTC)),
            until: Some(at(datetime!(2025-06-02 0:00 UTC))),
            grid: BucketGrid::new(
                Interval::Within(3_600),
                &Zone::utc(),
                at(datetime!(2025-06-01 0:00 UTC)),
                at(datetime!(2025-06-02 0:00 UTC)),
            )
            .expect("few"),
            aggregates: Aggregates::default(),
            fill: Fill::None,
        }
    }

    fn series(n: usize) -> Vec<SeriesStats> {
        (0..n)
            .map(|k| SeriesStats {
                device_id: Uuid::from_u128(k as u128),
                device_name: DeviceName::parse(&format!("d{k:04}")).expect("valid"),
                unit: Unit::parse("").expect("valid"),
                buckets: vec![BucketStats::of(0, 1.0)],
                before: None,
            })
            .collect()
    }

    #[tokio::test]
    async fn more_series_than_an_answer_holds_are_refused_and_fewer_ordered_by_name() {
        let tenant = TenantId::parse("t").expect("valid");
        let group = GroupKey::Id(Uuid::nil());
        let mut store = MockReadingRepository::new();
        store
            .expect_group_buckets()
            .times(1)
            .returning(|_, _, _, _| Ok(series(MAX_SERIES + 1)));
        let refused =
            group_buckets(&store, &tenant, &group, &SeriesChoice::default(), &query()).await;
        assert!(matches!(refused, Err(GroupBucketsError::TooManySeries)));

        let mut store = MockReadingRepository::new();
        store
            .expect_group_buckets()
            .times(1)
            .returning(|_, _, _, _| {
                let mut all = series(3);
                all.reverse();
                Ok(all)
            });
        let answered = group_buckets(&store, &tenant, &group, &SeriesChoice::default(), &query())
            .await
            .expect("answered");
        let names: Vec<&str> = answered.iter().map(|s| s.device_name.as_str()).collect();
        assert_eq!(names, ["d0000", "d0001", "d0002"]);
    }
}
