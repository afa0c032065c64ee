//! Readings: ingest, and what it counts.

use domain::{ReadingBatch, TenantId};
use ports::{IngestError, ReadingRepository};

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
