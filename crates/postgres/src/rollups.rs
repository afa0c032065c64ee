//! The hourly rollups' background job (V13): recomputes each pending hour that has ended from
//! `readings`, in bounded steps, and clears its mark in the same transaction. Reads never wait
//! for it: a pending hour is read from `readings` (see `buckets.rs`).

use std::collections::BTreeSet;

use anyhow::Context as _;
use domain::Timestamp;
use time::OffsetDateTime;

use crate::pool::PgStore;

/// The distinct UTC hours of `instants`, in order: the pending marks a batch needs.
pub(crate) fn hours_of(instants: impl Iterator<Item = Timestamp>) -> Vec<OffsetDateTime> {
    let hours: BTreeSet<i64> = instants
        .map(|t| t.get().unix_timestamp().div_euclid(3_600))
        .collect();
    hours
        .into_iter()
        .filter_map(|h| OffsetDateTime::from_unix_timestamp(h * 3_600).ok())
        .collect()
}

/// One pending hour that has ended before `$1`, locked; one an ingest holds is left for later.
const CLAIM: &str = "SELECT tenant_id, bucket FROM reading_rollups_pending \
     WHERE bucket < $1 ORDER BY bucket LIMIT 1 FOR UPDATE SKIP LOCKED";
const CLEAR_HOUR: &str = "DELETE FROM reading_rollups_hour WHERE tenant_id = $1 AND bucket = $2";
/// The hour's rollups, recomputed whole (a re-sent reading replaced a value; a device's readings
/// may all be gone).
pub(crate) const ROLL_HOUR: &str = "INSERT INTO reading_rollups_hour \
        (tenant_id, device_id, bucket, n, total, lo, hi, first_ts, first_value, last_ts, last_value) \
     SELECT $1, device_id, $2, count(*), sum(value), min(value), max(value), \
            min(ts), (min(ARRAY[date_part('epoch', ts), value]))[2], \
            max(ts), (max(ARRAY[date_part('epoch', ts), value]))[2] \
     FROM readings WHERE tenant_id = $1 AND ts >= $2 AND ts < $2 + interval '1 hour' \
     GROUP BY device_id";
const UNMARK: &str = "DELETE FROM reading_rollups_pending WHERE tenant_id = $1 AND bucket = $2";

impl PgStore {
    /// Rolls up at most `max_hours` pending (tenant, hour) pairs that ended before `now`'s hour,
    /// oldest first, each in its own transaction; answers how many. Safe to run from several
    /// instances at once (each claims different hours).
    ///
    /// # Errors
    /// When the database cannot be reached or a statement fails; hours done before stay done.
    pub async fn roll_up_hours(&self, now: OffsetDateTime, max_hours: u32) -> anyhow::Result<u32> {
        // Not a pooled connection: the pools are the request threads' (see `PgStore`).
        let mut client = self
            .own_connection()
            .await
            .context("failed to get a connection for the reading rollups")?;
        let ended = hours_of(std::iter::once(Timestamp::new(now)?))
            .pop()
            .context("no hour for now")?;
        let mut done = 0;
        while done < max_hours {
            let tx = client.transaction().await?;
            let Some(row) = tx.query_opt(CLAIM, &[&ended]).await? else {
                break;
            };
            let tenant: String = row.try_get("tenant_id")?;
            let hour: OffsetDateTime = row.try_get("bucket")?;
            tx.execute(CLEAR_HOUR, &[&tenant, &hour]).await?;
            tx.execute(ROLL_HOUR, &[&tenant, &hour])
                .await
                .with_context(|| format!("failed to roll up {hour} of tenant {tenant}"))?;
            tx.execute(UNMARK, &[&tenant, &hour]).await?;
            tx.commit().await?;
            done += 1;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_batch_marks_each_of_its_utc_hours_once() {
        let t = |v| Timestamp::new(v).expect("in range");
        assert_eq!(
            hours_of(
                [
                    t(datetime!(2025-06-01 10:59:59.9 UTC)),
                    t(datetime!(2025-06-01 10:00 UTC)),
                    t(datetime!(2025-06-01 08:30 +05:30)),
                    t(datetime!(2025-06-01 11:00 UTC)),
                ]
                .into_iter()
            ),
            vec![
                datetime!(2025-06-01 03:00 UTC),
                datetime!(2025-06-01 10:00 UTC),
                datetime!(2025-06-01 11:00 UTC),
            ]
        );
    }
}
