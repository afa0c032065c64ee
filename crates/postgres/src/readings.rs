//! Readings in PostgreSQL: batch ingest, keeping each device's state and alerts in the same
//! transaction, and per-device reads.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::bucket::{BucketQuery, SeriesChoice, SeriesStats};
use domain::{ReadingBatch, ReadingPoint, ReadingQuery, TenantId, Timestamp};
use ports::{
    GroupBucketsError, GroupKey, IngestError, LookupError, ReadingRepository, ReadingStream,
    StoreError,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{is_transient, query_error};
use crate::keeping::{
    after_readings, after_removal, alert_from_row, device_states_of_sql, judge_with_coverage,
    kept_from_row, open_alerts_sql, ChangeParams, Kept, WriteStatements, LOCK_DEVICES_FOR_STATE,
};
use crate::pool::PgStore;
use crate::rows::timestamp;
use crate::tx::TenantTx;

/// Upserts the batch into `readings`. A reading re-sent for the same device and instant
/// replaces the stored value. (The devices' latest readings and states are written apart,
/// from what the domain made of the batch: `keeping::KEEP_STATE`.) In the same statement, marks
/// the UTC hours the batch reaches as pending for the hourly rollups (V13; `rollups.rs`): a row
/// or two per batch, none written when the marks exist (see `HOLD_PENDING`).
pub(crate) const INGEST: &str = "WITH stored AS ( \
        INSERT INTO readings (tenant_id, device_id, ts, value) \
        SELECT $1, * FROM unnest($2::uuid[], $3::timestamptz[], $4::float8[]) \
        ON CONFLICT (tenant_id, device_id, ts) DO UPDATE SET value = EXCLUDED.value \
        RETURNING 1 \
     ), pending AS ( \
        INSERT INTO reading_rollups_pending (tenant_id, bucket) \
        SELECT DISTINCT $1, date_trunc('hour', t, 'UTC') AS hour FROM unnest($3::timestamptz[]) t \
        ON CONFLICT (tenant_id, bucket) DO NOTHING \
     ) SELECT count(*) FROM stored";
/// The pending marks (V13) of the hours `$2` a batch reaches that exist already, share-locked
/// until the ingest commits, before `INGEST` adds the missing ones: a roll-up skips an hour an
/// ingest holds, and one under way makes the ingest wait and then mark the hour anew. So no
/// hour loses its mark while a reading of it is uncommitted, and concurrent ingests never wait
/// for each other.
pub(crate) const HOLD_PENDING: &str = "SELECT 1 FROM reading_rollups_pending \
     WHERE tenant_id = $1 AND bucket = ANY($2::timestamptz[]) FOR SHARE";
/// How often an ingest transaction is tried when it loses a deadlock or serialisation race.
pub(crate) const INGEST_ATTEMPTS: u32 = 3;
pub(crate) const DEVICE_EXISTS: &str = "SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2";
/// `$6`: the instant a page continues strictly before (a cursor's); `$7`: readings to skip.
pub(crate) const DEVICE_READINGS: &str = "SELECT ts, value FROM readings \
     WHERE tenant_id = $1 AND device_id = $2 AND ts >= $3 AND ($5::timestamptz IS NULL OR ts < $5) \
       AND ($6::timestamptz IS NULL OR ts < $6) \
     ORDER BY ts DESC LIMIT $4 OFFSET $7";

/// Deletes the device's readings in `[$3, $4)`, counting them, with the UTC hours they were in
/// (their rollups are to be made again).
pub(crate) const DELETE_READINGS: &str = "WITH gone AS ( \
        DELETE FROM readings WHERE tenant_id = $1 AND device_id = $2 AND ts >= $3 AND ts < $4 \
        RETURNING ts) \
     SELECT count(*), coalesce(array_agg(DISTINCT date_trunc('hour', ts, 'UTC')), '{}') \
     FROM gone";
/// Marks hours `$2` pending for the rollup job (after `HOLD_PENDING` on them, as ingest does).
const MARK_PENDING: &str = "INSERT INTO reading_rollups_pending (tenant_id, bucket) \
     SELECT $1, unnest($2::timestamptz[]) ON CONFLICT (tenant_id, bucket) DO NOTHING";
/// The device's newest reading.
const NEWEST_READING: &str = "SELECT ts, value FROM readings \
     WHERE tenant_id = $1 AND device_id = $2 ORDER BY ts DESC LIMIT 1";
/// Forgets the kept state of a device left without readings (`KEEP_STATE` keeps only states
/// with a reading).
const FORGET_STATE: &str = "DELETE FROM latest_readings WHERE tenant_id = $1 AND device_id = $2";

/// Brings the hourly rollups (V13) in line with a range delete, in its transaction: the hours
/// that lost readings are marked pending again, so reads take them from the readings until the
/// rollup job has made them anew. The existing marks are share-locked first, as an ingest holds
/// them: a roll-up under way (which read the readings before this delete) is waited for, and
/// its cleared mark is set again.
pub(crate) async fn readings_deleted(
    tx: &TenantTx,
    tenant: &TenantId,
    hours: &[OffsetDateTime],
) -> Result<(), StoreError> {
    if hours.is_empty() {
        return Ok(());
    }
    let (hold, mark) = tokio::try_join!(
        tx.prepare_cached(HOLD_PENDING),
        tx.prepare_cached(MARK_PENDING)
    )
    .map_err(query_error)?;
    let tenant_id = tenant.as_str();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &hours];
    tx.query(&hold, &params).await.map_err(query_error)?;
    tx.execute(&mark, &params).await.map_err(query_error)?;
    Ok(())
}

#[async_trait]
impl ReadingRepository for PgStore {
    /// Four round trips, as many as a plain insert takes: BEGIN with the tenant binding; the
    /// devices locked with their state and open alerts; the readings, the new states, alerts
    /// and events, all pipelined; COMMIT. One more, only when an alert changes: the windows
    /// covering its device.
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
        // Each device's readings in time order.
        let mut points: HashMap<Uuid, Vec<ReadingPoint>> = HashMap::with_capacity(distinct.len());
        for r in &sorted {
            points.entry(r.device_id).or_default().push(ReadingPoint {
                timestamp: r.timestamp,
                value: r.value.get(),
            });
        }
        let mut ids = distinct.clone();
        ids.sort_unstable();

        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .ingest_once(
                    tenant,
                    &distinct,
                    &ids,
                    &points,
                    [&devices, &instants, &values],
                )
                .await
            {
                // A deadlock with a writer that does not sort (or a serialisation failure)
                // only means "try again": the transaction was rolled back whole.
                Err(Attempt::Transient(_)) if attempt < INGEST_ATTEMPTS => continue,
                Err(Attempt::Transient(e)) => return Err(query_error(e).into()),
                Err(Attempt::Failed(e)) => return Err(e),
                Ok(stored) => return Ok(stored),
            }
        }
    }

    async fn device_buckets(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: &BucketQuery,
    ) -> Result<SeriesStats, LookupError> {
        self.bucket_device(tenant, device, query).await
    }

    async fn group_buckets(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        choice: &SeriesChoice,
        query: &BucketQuery,
    ) -> Result<Vec<SeriesStats>, GroupBucketsError> {
        self.bucket_group(tenant, group, choice, query, false).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn tree_buckets(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        choice: &SeriesChoice,
        query: &BucketQuery,
    ) -> Result<Vec<SeriesStats>, GroupBucketsError> {
        self.bucket_group(tenant, group, choice, query, true).await
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
        let after = query.after().map(|a| a.timestamp.get());
        let offset = i64::from(query.offset());
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
            [&tenant_id, &device, &since, &limit, &until, &after, &offset];
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
            .map(reading_point)
            .collect::<Result<Vec<_>, StoreError>>()?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn export_device_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: ReadingQuery,
    ) -> Result<ReadingStream<ReadingPoint>, LookupError> {
        self.export_device(tenant, device, query).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn delete_device_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u64, LookupError> {
        self.delete_readings(tenant, device, start, end).await
    }
}

fn reading_point(row: &tokio_postgres::Row) -> Result<ReadingPoint, StoreError> {
    Ok(ReadingPoint {
        timestamp: timestamp(row, "ts")?,
        value: row.try_get("value").map_err(query_error)?,
    })
}

impl PgStore {
    /// [`ReadingRepository::export_device_readings`].
    async fn export_device(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: ReadingQuery,
    ) -> Result<ReadingStream<ReadingPoint>, LookupError> {
        let export = self.export_tx(tenant).await?;
        let tenant_id = tenant.as_str();
        let exists = export
            .query_opt(DEVICE_EXISTS, &[&tenant_id, &device])
            .await
            .map_err(query_error)?;
        if exists.is_none() {
            return Err(LookupError::NotFound);
        }
        let limit = i64::from(query.limit());
        let since = query.since().get();
        let until = query.until().map(domain::Timestamp::get);
        let after = query.after().map(|a| a.timestamp.get());
        let offset = i64::from(query.offset());
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
            [&tenant_id, &device, &since, &limit, &until, &after, &offset];
        Ok(crate::exports::stream(export, DEVICE_READINGS, &params, reading_point).await?)
    }

    /// [`ReadingRepository::delete_device_readings`], in one transaction: the device locked as
    /// every writer of its state locks it, its readings deleted, the hook of what is kept from
    /// them, and its state judged again when its latest reading went.
    async fn delete_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u64, LookupError> {
        let tx = self.begin(tenant).await?;
        let tenant_id = tenant.as_str();
        let (states_sql, open_sql) = (device_states_of_sql(), open_alerts_sql());
        let (lock, states, open_alerts, delete, newest, forget) = tokio::try_join!(
            tx.prepare_cached(LOCK_DEVICES_FOR_STATE),
            tx.prepare_cached(&states_sql),
            tx.prepare_cached(&open_sql),
            tx.prepare_cached(DELETE_READINGS),
            tx.prepare_cached(NEWEST_READING),
            tx.prepare_cached(FORGET_STATE),
        )
        .map_err(query_error)?;
        let writes = WriteStatements::prepare(&tx).await?;
        let ids = vec![device];
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &ids];
        let (_, locked, open) = tokio::try_join!(
            biased;
            tx.execute(&lock, &params),
            tx.query(&states, &params),
            tx.query(&open_alerts, &params),
        )
        .map_err(query_error)?;
        let Some(row) = locked.first() else {
            return Err(LookupError::NotFound);
        };
        let mut kept = kept_from_row(row)?;
        for row in &open {
            kept.hold(alert_from_row(row)?);
        }
        let (start_at, end_at) = (start.get(), end.get());
        let gone = tx
            .query_one(&delete, &[&tenant_id, &device, &start_at, &end_at])
            .await
            .map_err(query_error)?;
        let deleted: i64 = gone.try_get(0).map_err(query_error)?;
        let hours: Vec<OffsetDateTime> = gone.try_get(1).map_err(query_error)?;
        readings_deleted(&tx, tenant, &hours).await?;
        let latest_went = kept
            .state
            .last_reading
            .is_some_and(|last| start <= last.timestamp && last.timestamp < end);
        if latest_went {
            let remaining = tx
                .query_opt(&newest, &[&tenant_id, &device])
                .await
                .map_err(query_error)?
                .map(|row| reading_point(&row))
                .transpose()?;
            let now = Timestamp::now();
            let changes = judge_with_coverage(
                &tx,
                tenant,
                std::slice::from_ref(&kept),
                now,
                |device, covering| after_removal(device, remaining, now, covering),
            )
            .await?;
            if remaining.is_none() {
                tx.execute(&forget, &[&tenant_id, &device])
                    .await
                    .map_err(query_error)?;
            }
            writes
                .run(&tx, &ChangeParams::of(tenant, &changes))
                .await
                .map_err(query_error)?;
        }
        tx.commit().await.map_err(query_error)?;
        Ok(u64::try_from(deleted).unwrap_or_default())
    }
}

/// How one ingest attempt failed.
enum Attempt {
    /// Lost a race; the next attempt may succeed.
    Transient(tokio_postgres::Error),
    Failed(IngestError),
}

impl From<StoreError> for Attempt {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.into())
    }
}

fn attempt_error(e: tokio_postgres::Error) -> Attempt {
    if is_transient(&e) {
        Attempt::Transient(e)
    } else {
        Attempt::Failed(query_error(e).into())
    }
}

impl PgStore {
    /// One transaction of [`ReadingRepository::ingest`]: `distinct` devices in batch order,
    /// `ids` sorted, `points` each device's readings in time order, `rows` the readings sorted
    /// by device and instant as the three columns of `INGEST`.
    async fn ingest_once(
        &self,
        tenant: &TenantId,
        distinct: &[Uuid],
        ids: &[Uuid],
        points: &HashMap<Uuid, Vec<ReadingPoint>>,
        rows: [&(dyn tokio_postgres::types::ToSql + Sync); 3],
    ) -> Result<u64, Attempt> {
        let tx = self.begin(tenant).await?;
        let tenant_id = tenant.as_str();
        let hours = crate::rollups::hours_of(points.values().flatten().map(|p| p.timestamp));
        let (states_sql, open_sql) = (device_states_of_sql(), open_alerts_sql());
        let (hold, lock, states, open_alerts, ingest, writes) = tokio::try_join!(
            tx.prepare_cached(HOLD_PENDING),
            tx.prepare_cached(LOCK_DEVICES_FOR_STATE),
            tx.prepare_cached(&states_sql),
            tx.prepare_cached(&open_sql),
            tx.prepare_cached(INGEST),
            async { Ok::<_, tokio_postgres::Error>(WriteStatements::prepare(&tx).await) },
        )
        .map_err(attempt_error)?;
        let writes = writes?;
        // The devices, locked until commit (against deletion and against other writers of their
        // state), then their state and open alerts as the lock leaves them: one round trip.
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &ids];
        let hold_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &hours];
        let (_, _, locked, open) = tokio::try_join!(
            biased;
            tx.execute(&hold, &hold_params),
            tx.execute(&lock, &params),
            tx.query(&states, &params),
            tx.query(&open_alerts, &params),
        )
        .map_err(attempt_error)?;
        let mut kept: HashMap<Uuid, Kept> = locked
            .iter()
            .map(|row| kept_from_row(row).map(|k| (k.id, k)))
            .collect::<Result<_, _>>()?;
        if let Some(unknown) = distinct.iter().find(|id| !kept.contains_key(id)) {
            return Err(Attempt::Failed(IngestError::UnknownDevice(*unknown)));
        }
        for row in &open {
            let alert = alert_from_row(row)?;
            if let Some(device) = kept.get_mut(&alert.device_id) {
                device.hold(alert);
            }
        }
        let kept: Vec<Kept> = ids.iter().filter_map(|id| kept.remove(id)).collect();
        // The clock of this instance: freshness and the windows covering a device are judged
        // now, whatever instants the readings carry.
        let now = Timestamp::now();
        let changes = judge_with_coverage(&tx, tenant, &kept, now, |device, covering| {
            let readings = points.get(&device.id).map_or(&[][..], Vec::as_slice);
            after_readings(device, readings, now, covering)
        })
        .await?;
        let params = ChangeParams::of(tenant, &changes);
        let [devices, instants, values] = rows;
        let ingest_params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&tenant_id, devices, instants, values];
        let (stored, ()) = tokio::try_join!(
            biased;
            tx.query_one(&ingest, &ingest_params),
            writes.run(&tx, &params),
        )
        .map_err(attempt_error)?;
        tx.commit().await.map_err(attempt_error)?;
        let stored: i64 = stored.try_get(0).map_err(query_error)?;
        Ok(u64::try_from(stored).unwrap_or_default())
    }
}
