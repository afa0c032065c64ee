//! Readings: ingest, and what it counts; bucketed reads.

use domain::bucket::{BucketQuery, SeriesChoice, SeriesStats, MAX_SERIES};
use domain::{ReadingBatch, TenantId};
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
/// [`MAX_SERIES`] members would get one.
pub async fn group_buckets(
    readings: &dyn ReadingRepository,
    tenant: &TenantId,
    group: &GroupKey,
    choice: &SeriesChoice,
    query: &BucketQuery,
) -> Result<Vec<SeriesStats>, GroupBucketsError> {
    let mut series = readings.group_buckets(tenant, group, choice, query).await?;
    series.retain(|s| !s.buckets.is_empty());
    if series.len() > MAX_SERIES {
        return Err(GroupBucketsError::TooManySeries);
    }
    choice.pick(&mut series);
    Ok(series)
}
