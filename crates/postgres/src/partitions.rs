//! Time partitions of `readings`: monthly ranges created ahead of time, and retention that
//! drops whole partitions once they lie entirely before the cutoff.
//!
//! Runs as the connecting (owner) role, outside any tenant transaction: it changes the schema,
//! not a tenant's rows. Instances serialise it with an advisory lock.

use std::time::Duration;

use anyhow::Context as _;
use time::{Date, Month, OffsetDateTime};

use crate::pool::PgStore;

/// Key of the advisory lock serialising partition maintenance between instances.
const MAINTENANCE_LOCK_KEY: i64 = 0x0069_6f74_5f70_6172; // "iot_par"
const PREFIX: &str = "readings_p";

/// What one maintenance run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PartitionReport {
    /// Partitions created, by name.
    pub created: Vec<String>,
    /// Partitions dropped by retention, by name.
    pub dropped: Vec<String>,
    /// Readings deleted by retention from the default partition (readings outside the monthly
    /// partitions).
    pub deleted_from_default: u64,
}

fn month_start(date: Date) -> Date {
    date.replace_day(1).expect("day 1 exists in every month")
}

fn next_month(first: Date) -> Option<Date> {
    let (year, month) = if first.month() == Month::December {
        (first.year() + 1, Month::January)
    } else {
        (first.year(), first.month().next())
    };
    Date::from_calendar_date(year, month, 1).ok()
}

fn partition_name(first: Date) -> String {
    format!("{PREFIX}{:04}{:02}", first.year(), u8::from(first.month()))
}

/// The month a partition name stands for.
fn month_of(name: &str) -> Option<Date> {
    let digits = name.strip_prefix(PREFIX)?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits[..4].parse().ok()?;
    let month: u8 = digits[4..].parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, 1).ok()
}

fn literal(day: Date) -> String {
    format!(
        "'{:04}-{:02}-{:02} 00:00:00+00'",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

impl PgStore {
    /// Creates the partitions of the month of `now` and of the `months_ahead` months after it,
    /// and with a `retention`, drops the partitions that end before `now - retention` and
    /// deletes older readings from the default partition. Safe to run from several instances.
    ///
    /// # Errors
    /// When the database cannot be reached or a statement fails; what was done before stays.
    pub async fn maintain_partitions(
        &self,
        now: OffsetDateTime,
        retention: Option<Duration>,
        months_ahead: u32,
    ) -> anyhow::Result<PartitionReport> {
        // Not a pooled connection: the pools are the request threads' (see `PgStore`).
        let mut client = self
            .own_connection()
            .await
            .context("failed to get a connection for partition maintenance")?;
        let mut report = PartitionReport::default();

        let mut first = month_start(now.date());
        for _ in 0..=months_ahead {
            let Some(end) = next_month(first) else { break };
            let name = partition_name(first);
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MAINTENANCE_LOCK_KEY])
                .await?;
            let exists = tx
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .await?
                .get::<_, bool>(0);
            if !exists {
                // Rows of this month may already sit in the default partition: move them, with
                // the default partition locked so none arrives between the move and the attach.
                let (from, to) = (literal(first), literal(end));
                tx.batch_execute(&format!(
                    "LOCK TABLE readings_default IN ACCESS EXCLUSIVE MODE;
                     CREATE TABLE {name} (LIKE readings INCLUDING DEFAULTS);
                     INSERT INTO {name} SELECT * FROM readings_default WHERE ts >= {from} AND ts < {to};
                     DELETE FROM readings_default WHERE ts >= {from} AND ts < {to};
                     ALTER TABLE readings ATTACH PARTITION {name} FOR VALUES FROM ({from}) TO ({to});"
                ))
                .await
                .with_context(|| format!("failed to create partition {name}"))?;
                report.created.push(name);
            }
            tx.commit().await?;
            first = end;
        }

        if let Some(retention) = retention {
            let cutoff = now - retention;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MAINTENANCE_LOCK_KEY])
                .await?;
            let partitions = tx
                .query(
                    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                     WHERE i.inhparent = 'readings'::regclass",
                    &[],
                )
                .await?;
            let mut dropped_until: Option<OffsetDateTime> = None;
            for row in partitions {
                let name: String = row.get(0);
                let Some(month) = month_of(&name) else {
                    continue;
                };
                let ends = next_month(month)
                    .and_then(|d| d.with_hms(0, 0, 0).ok())
                    .map(|d| d.assume_utc());
                if let Some(ends) = ends.filter(|ends| *ends <= cutoff) {
                    tx.batch_execute(&format!("DROP TABLE {name}"))
                        .await
                        .with_context(|| format!("failed to drop {name}"))?;
                    report.dropped.push(name);
                    dropped_until = dropped_until.max(Some(ends));
                }
            }
            report.deleted_from_default = tx
                .execute("DELETE FROM readings_default WHERE ts < $1", &[&cutoff])
                .await?;
            // The hourly rollups (V13) of readings gone: every hour before the end of a dropped
            // month, and (rarely) hours left without readings by the default partition's delete.
            if let Some(until) = dropped_until {
                tx.execute(
                    "DELETE FROM reading_rollups_hour WHERE bucket < $1",
                    &[&until],
                )
                .await?;
                tx.execute(
                    "DELETE FROM reading_rollups_pending WHERE bucket < $1",
                    &[&until],
                )
                .await?;
            }
            if report.deleted_from_default > 0 {
                tx.execute(
                    "DELETE FROM reading_rollups_hour h WHERE h.bucket < $1 AND NOT EXISTS ( \
                        SELECT 1 FROM readings r WHERE r.tenant_id = h.tenant_id \
                        AND r.device_id = h.device_id AND r.ts >= h.bucket \
                        AND r.ts < h.bucket + interval '1 hour')",
                    &[&cutoff],
                )
                .await?;
            }
            if !report.dropped.is_empty() || report.deleted_from_default > 0 {
                // Readings are gone: views kept of any tenant's readings are stale. (Dropping a
                // partition, or deleting from one directly, fires no trigger of `readings`.)
                tx.execute("SELECT move_every_revision('tenant_revisions')", &[])
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn partition_names_round_trip_to_their_month() {
        assert_eq!(partition_name(date!(2026 - 11 - 01)), "readings_p202611");
        assert_eq!(month_of("readings_p202611"), Some(date!(2026 - 11 - 01)));
        assert_eq!(month_of("readings_default"), None);
        assert_eq!(month_of("readings_p2026111"), None);
        assert_eq!(
            next_month(date!(2026 - 12 - 01)),
            Some(date!(2027 - 01 - 01))
        );
    }
}
