//! Readings in PostgreSQL: batch ingest in one statement, and per-device reads.

use async_trait::async_trait;
use domain::{ReadingBatch, ReadingPoint, ReadingQuery, TenantId};
use ports::{IngestError, LookupError, ReadingRepository, StoreError};
use uuid::Uuid;

use crate::error::{is_transient, query_error};
use crate::pool::PgStore;
use crate::rows::timestamp;
use crate::shared::first_missing_device;

/// Upserts the batch into `readings` and moves each device's `latest_readings` row forward, in
/// one statement. A reading re-sent for the same device and instant replaces the stored value;
/// the latest row only ever moves to an instant at or after the one it holds.
pub(crate) const INGEST: &str = "WITH batch AS ( \
        SELECT * FROM unnest($2::uuid[], $3::timestamptz[], $4::float8[]) AS b(device_id, ts, value) \
     ), stored AS ( \
        INSERT INTO readings (tenant_id, device_id, ts, value) \
        SELECT $1, device_id, ts, value FROM batch \
        ON CONFLICT (tenant_id, device_id, ts) DO UPDATE SET value = EXCLUDED.value \
        RETURNING 1 \
     ), latest AS ( \
        INSERT INTO latest_readings (tenant_id, device_id, ts, value) \
        SELECT DISTINCT ON (device_id) $1, device_id, ts, value FROM batch ORDER BY device_id, ts DESC \
        ON CONFLICT (tenant_id, device_id) DO UPDATE SET ts = EXCLUDED.ts, value = EXCLUDED.value \
        WHERE latest_readings.ts <= EXCLUDED.ts \
     ) SELECT count(*) FROM stored";
/// How often an ingest transaction is tried when it loses a deadlock or serialisation race.
pub(crate) const INGEST_ATTEMPTS: u32 = 3;
pub(crate) const DEVICE_EXISTS: &str = "SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2";
pub(crate) const DEVICE_READINGS: &str = "SELECT ts, value FROM readings \
     WHERE tenant_id = $1 AND device_id = $2 AND ts >= $3 AND ($5::timestamptz IS NULL OR ts < $5) \
     ORDER BY ts DESC LIMIT $4";

#[async_trait]
impl ReadingRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant, readings = batch.readings().len()))]
    async fn ingest(&self, tenant: &TenantId, batch: ReadingBatch) -> Result<u64, IngestError> {
        let readings = batch.readings();
        // In batch order, so the first unknown one reported is the first offender.
        let distinct = domain::group::without_repeats(readings.iter().map(|r| r.device_id));
        // Rows go in sorted by key, so concurrent batches lock shared rows in the same order
        // and cannot deadlock on each other.
        let mut sorted: Vec<&domain::Reading> = readings.iter().collect();
        sorted.sort_by_key(|r| (r.device_id, r.timestamp));
        let devices: Vec<Uuid> = sorted.iter().map(|r| r.device_id).collect();
        let instants: Vec<time::OffsetDateTime> =
            sorted.iter().map(|r| r.timestamp.get()).collect();
        let values: Vec<f64> = sorted.iter().map(|r| r.value.get()).collect();

        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = self.begin(tenant).await?;
            // Locks the devices against deletion until commit, so the check below stays true.
            if let Some(unknown) = first_missing_device(&tx, tenant, &distinct).await? {
                return Err(IngestError::UnknownDevice(unknown));
            }
            let statement = tx.prepare_cached(INGEST).await.map_err(query_error)?;
            let stored = tx
                .query_one(
                    &statement,
                    &[&tenant.as_str(), &devices, &instants, &values],
                )
                .await;
            let stored = match stored {
                // A deadlock with a writer that does not sort (or a serialisation failure) only
                // means "try again": the transaction was rolled back whole.
                Err(e) if is_transient(&e) && attempt < INGEST_ATTEMPTS => continue,
                other => other.map_err(query_error)?,
            };
            tx.commit().await.map_err(query_error)?;
            let stored: i64 = stored.get(0);
            return Ok(u64::try_from(stored).unwrap_or_default());
        }
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn device_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: ReadingQuery,
    ) -> Result<Vec<ReadingPoint>, LookupError> {
        let tx = self.reader(tenant).await?;
        let exists = tx.prepare(DEVICE_EXISTS).await.map_err(query_error)?;
        let statement = tx.prepare(DEVICE_READINGS).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let limit = i64::from(query.limit());
        let since = query.since().get();
        let until = query.until().map(domain::Timestamp::get);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&tenant_id, &device, &since, &limit, &until];
        // One round trip: whether the device exists and its readings, in one transaction.
        let (found, rows) = tx
            .run(|client| async {
                tokio::try_join!(
                    biased;
                    client.query_opt(&exists, &params[..2]),
                    client.query(&statement, &params),
                )
            })
            .await
            .map_err(query_error)?;
        if found.is_none() {
            return Err(LookupError::NotFound);
        }
        Ok(rows
            .iter()
            .map(|row| {
                Ok(ReadingPoint {
                    timestamp: timestamp(row, "ts")?,
                    value: row.try_get("value").map_err(query_error)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?)
    }
}
