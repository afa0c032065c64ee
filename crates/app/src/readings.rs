//! Readings: ingest, and what it counts.

use domain::{ReadingBatch, TenantId, Timestamp};
use ports::{IngestError, LookupError, ReadingRepository};
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
