//! Bucketed reads in PostgreSQL: readings grouped by `width_bucket` over the bucket boundaries
//! the domain computed for the zone (so DST and month lengths are the domain's, exactly), one
//! row per device and non-empty bucket; no raw reading leaves the database.
//!
//! Whole UTC hours inside a bucket (and the range) are read from the hourly rollups (V13) unless
//! still pending (then from `readings`); the rest (range edges, sub-hour buckets, the half hours
//! of zones such as Asia/Kolkata) from `readings`: the cost grows with buckets and hours, not
//! with readings. The parts are disjoint and together cover the range exactly: [`raw_edges`]
//! lists the raw edges, and the hour parts take the whole hours no raw edge touches.

use domain::bucket::{BucketQuery, BucketStats, SeriesChoice, SeriesStats};
use domain::{DeviceName, TenantId, Timestamp, Unit};
use ports::{GroupBucketsError, GroupKey, LookupError, StoreError};
use time::{Duration, OffsetDateTime};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{corrupt_row, query_error};
use crate::groups::{CUSTOM_PLANS, FIND_BY_ID, FIND_BY_SLUG};
use crate::pool::PgStore;

/// The first and last value without sorting: the least and greatest `[epoch, value]` pair
/// (epoch seconds as float8 keep microseconds for any reading's year).
const PAIR_FIRST: &str = "ARRAY[date_part('epoch', h.first_ts), h.first_value]";
const PAIR_LAST: &str = "ARRAY[date_part('epoch', h.last_ts), h.last_value]";
const PAIR_RAW: &str = "ARRAY[date_part('epoch', r.ts), r.value]";

/// Readings of the devices `{devices}` selects within the ranges `ranges` lists (a `FROM`
/// item with columns `a`, `b`), each range through the index (`LATERAL`), as parts.
fn raw_parts(ranges: &str, filter: &str, devices: &str, pair: &str) -> String {
    format!(
        "SELECT r.device_id, width_bucket(r.ts, $3::timestamptz[]) AS i, 1 AS n, r.value AS s, \
                r.value AS lo, r.value AS hi, {pair} AS f, {pair} AS l \
         FROM {ranges} CROSS JOIN LATERAL ( \
            SELECT r.device_id, r.ts, r.value FROM readings r \
            WHERE r.tenant_id = $1 AND r.device_id {devices} \
              AND r.ts >= e.a AND r.ts < e.b AND r.ts >= $4 AND r.ts < $5) r{filter}"
    )
}

/// An hour `{h}` wholly inside one bucket and the range: one the rollups may serve.
fn whole_hour(h: &str) -> String {
    format!(
        "{h} >= $4 AND {h} + interval '1 hour' <= $5 \
         AND width_bucket({h}, $3::timestamptz[]) \
           = width_bucket({h} + interval '3599.999999 seconds', $3::timestamptz[])"
    )
}

/// Per device (`{devices}` selects them) and bucket: the rolled-up hours wholly inside a bucket
/// and the range, the readings of the hours among those still pending, and the readings of the
/// raw edges (`$6`..`$7`). `$1` tenant, `$3` boundaries, `$4`..`$5` the instants counted.
/// Without `rollups`, every part is read from `readings` (the benchmark's comparison, with the
/// whole range as the one raw edge).
fn parts_sql(devices: &str, ends: bool, rollups: bool) -> String {
    let (first, last, pair) = if ends {
        (PAIR_FIRST, PAIR_LAST, PAIR_RAW)
    } else {
        ("NULL::float8[]", "NULL::float8[]", "NULL::float8[]")
    };
    let edges = raw_parts(
        "unnest($6::timestamptz[], $7::timestamptz[]) AS e(a, b)",
        "",
        devices,
        pair,
    );
    if !rollups {
        return edges;
    }
    let pending = raw_parts(
        "(SELECT p.bucket AS a, p.bucket + interval '1 hour' AS b FROM reading_rollups_pending p \
          WHERE p.tenant_id = $1) e",
        &format!(" WHERE {}", whole_hour("e.a")),
        devices,
        pair,
    );
    // An hour that straddles a bucket boundary (half-hour zones) gets a null `i`, which every
    // aggregate over the parts leaves out: as a filter here, it would hide from the planner how
    // many hours a range holds, and with it the plan that suits a large group.
    format!(
        "SELECT h.device_id, CASE WHEN width_bucket(h.bucket, $3::timestamptz[]) \
                   = width_bucket(h.bucket + interval '3599.999999 seconds', $3::timestamptz[]) \
                THEN width_bucket(h.bucket, $3::timestamptz[]) END AS i, h.n, h.total AS s, \
                h.lo, h.hi, {first} AS f, {last} AS l \
         FROM reading_rollups_hour h \
         WHERE h.tenant_id = $1 AND h.device_id {devices} \
           AND h.bucket >= $4::timestamptz AND h.bucket <= $5::timestamptz - interval '1 hour' \
           AND NOT EXISTS (SELECT 1 FROM reading_rollups_pending p \
                           WHERE p.tenant_id = $1 AND p.bucket = h.bucket) \
         UNION ALL {edges} \
         UNION ALL {pending}"
    )
}

/// The aggregate columns over `parts`.
const MERGED: &str = "i - 1 AS i, sum(n)::bigint AS n, sum(s) AS s, min(lo) AS lo, max(hi) AS hi, \
     (min(f))[2] AS first, (max(l))[2] AS last";

/// `$1` tenant, `$2` device, `$3` boundaries, `$4`..`$5` the instants counted, `$6`..`$7` the
/// raw edges.
pub(crate) fn device_sql(ends: bool) -> String {
    format!(
        "SELECT {MERGED} FROM ({}) parts GROUP BY i HAVING i IS NOT NULL ORDER BY i",
        parts_sql("= $2", ends, true)
    )
}

const DEVICE_ROW: &str = "SELECT name, unit FROM devices WHERE tenant_id = $1 AND id = $2";

const DEVICE_BEFORE: &str = "SELECT value FROM readings \
     WHERE tenant_id = $1 AND device_id = $2 AND ts < $3 ORDER BY ts DESC LIMIT 1";

/// `$1` tenant, `$2` group, `$3` boundaries, `$4`..`$5` the instants counted, `$6`..`$7` the
/// raw edges, `$8` the listed devices (or null: all members), `$9` most series, `$10` whether
/// the reading before `$11` is wanted.
pub(crate) fn group_sql(ends: bool) -> String {
    group_sql_over(ends, true, false)
}

/// [`group_sql`] over the devices of group `$2`'s tree.
fn tree_sql(ends: bool) -> String {
    group_sql_over(ends, true, true)
}

/// [`group_sql`] aggregating readings only, for the benchmark's comparison.
pub(crate) fn group_raw_sql() -> String {
    group_sql_over(false, false, false)
}

fn group_sql_over(ends: bool, rollups: bool, tree: bool) -> String {
    // The members inline (not a CTE) wherever they filter, so the planner knows how many there
    // are: a large group is then a hash semi-join over a range of hours, not one index scan per
    // member. (`IN` counts a device of several of a tree's groups once.)
    let groups = if tree {
        format!("ANY({})", crate::tree::tree_ids())
    } else {
        "$2".to_owned()
    };
    let members = format!(
        "IN (SELECT m.device_id FROM device_group_members m \
         WHERE m.tenant_id = $1 AND m.group_id = {groups} \
           AND ($8::uuid[] IS NULL OR m.device_id = ANY($8::uuid[])))"
    );
    let members = members.as_str();
    let tail = "before AS ( \
            SELECT c.*, CASE WHEN $10 THEN (SELECT b.value FROM readings b \
               WHERE b.tenant_id = $1 AND b.device_id = c.id AND b.ts < $11 \
               ORDER BY b.ts DESC LIMIT 1) END AS before \
            FROM chosen c) \
         SELECT c.id, c.name, c.unit, c.before, a.i, a.n, a.s, a.lo, a.hi, a.first, a.last \
         FROM before c JOIN agg a ON a.device_id = c.id ORDER BY c.id, a.i";
    let chosen = "chosen AS ( \
            SELECT d.id, d.name, d.unit FROM counts t \
            JOIN devices d ON d.tenant_id = $1 AND d.id = t.device_id WHERE t.total > 0 \
            ORDER BY t.total DESC, d.name COLLATE \"C\", d.id LIMIT $9)";
    if !rollups {
        // Readings alone (the benchmark's comparison): one pass over them, kept for both uses.
        return format!(
            "WITH parts AS MATERIALIZED ({}), \
             counts AS (SELECT device_id, sum(n) AS total FROM parts GROUP BY device_id), \
             {chosen}, \
             agg AS ( \
                SELECT device_id, {MERGED} FROM parts \
                WHERE device_id IN (SELECT id FROM chosen) GROUP BY device_id, i), \
             {tail}",
            parts_sql(members, ends, false)
        );
    }
    // Two passes over the hours: counts of every member (narrow rows) choose the series, then
    // only the chosen members' hours are aggregated per bucket (an index scan each).
    format!(
        "WITH counts AS ( \
            SELECT device_id, sum(n) FILTER (WHERE i IS NOT NULL) AS total FROM ({}) p \
            GROUP BY device_id), \
         {chosen}, \
         agg AS ( \
            SELECT device_id, {MERGED} FROM ({}) p \
            WHERE i IS NOT NULL GROUP BY device_id, i), \
         {tail}",
        parts_sql(members, false, true),
        parts_sql("IN (SELECT id FROM chosen)", ends, true)
    )
}

/// The first listed device that is no member of group `$2`.
const OUTSIDER: &str = "SELECT x.id FROM unnest($3::uuid[]) WITH ORDINALITY AS x(id, n) \
     WHERE NOT EXISTS (SELECT 1 FROM device_group_members m \
        WHERE m.tenant_id = $1 AND m.group_id = $2 AND m.device_id = x.id) \
     ORDER BY x.n LIMIT 1";

/// [`OUTSIDER`] of group `$2`'s tree.
fn tree_outsider_sql() -> String {
    format!(
        "SELECT x.id FROM unnest($3::uuid[]) WITH ORDINALITY AS x(id, n) \
         WHERE NOT EXISTS (SELECT 1 FROM device_group_members m \
            WHERE m.tenant_id = $1 AND m.group_id = ANY({}) AND m.device_id = x.id) \
         ORDER BY x.n LIMIT 1",
        crate::tree::tree_ids()
    )
}

/// What a bucketed statement needs: the boundaries, the instants counted, the raw edges.
struct Counted {
    bounds: Vec<OffsetDateTime>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    edge_starts: Vec<OffsetDateTime>,
    edge_ends: Vec<OffsetDateTime>,
}

/// The instants a query counts: its range within its grid; `None` when that is empty.
fn counted(query: &BucketQuery) -> Option<Counted> {
    let bounds = query.grid.instants();
    let (first, last) = (*bounds.first()?, *bounds.last()?);
    let from = query.since.max(first);
    let to = query.until.map_or(last, |until| until.min(last));
    if from >= to {
        return None;
    }
    let (edge_starts, edge_ends) = raw_edges(&bounds, from, to).into_iter().unzip();
    Some(Counted {
        bounds: bounds.iter().map(|b| b.get()).collect(),
        from: from.get(),
        to: to.get(),
        edge_starts,
        edge_ends,
    })
}

fn floor_hour(t: OffsetDateTime) -> OffsetDateTime {
    let seconds = t.unix_timestamp().div_euclid(3_600) * 3_600;
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(t)
}

fn ceil_hour(t: OffsetDateTime) -> OffsetDateTime {
    let floor = floor_hour(t);
    if floor == t {
        t
    } else {
        floor + Duration::HOUR
    }
}

/// The parts of each bucket, clipped to `[from, to)`, that are no whole UTC hour, merged where
/// they touch: the rollups serve exactly the rest.
fn raw_edges(
    bounds: &[Timestamp],
    from: Timestamp,
    to: Timestamp,
) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    let mut edges: Vec<(OffsetDateTime, OffsetDateTime)> = Vec::new();
    let mut push = |a: OffsetDateTime, b: OffsetDateTime| {
        if a >= b {
            return;
        }
        match edges.last_mut() {
            Some(last) if last.1 == a => last.1 = b,
            _ => edges.push((a, b)),
        }
    };
    for pair in bounds.windows(2) {
        let a = pair[0].max(from).get();
        let b = pair[1].min(to).get();
        if a >= b {
            continue;
        }
        let (whole_from, whole_to) = (ceil_hour(a), floor_hour(b));
        if whole_from < whole_to {
            push(a, whole_from);
            push(whole_to, b);
        } else {
            push(a, b);
        }
    }
    edges
}

/// Whether the stores must compute first and last (asked for, or carried by `fill=previous`).
fn needs_ends(query: &BucketQuery) -> bool {
    query.aggregates.wants_ends() || query.wants_before()
}

fn stats_from_row(row: &Row) -> Result<BucketStats, StoreError> {
    let index: i32 = row.try_get("i").map_err(query_error)?;
    let count: i64 = row.try_get("n").map_err(query_error)?;
    let first: Option<f64> = row.try_get("first").map_err(query_error)?;
    let last: Option<f64> = row.try_get("last").map_err(query_error)?;
    Ok(BucketStats {
        index: usize::try_from(index).map_err(|e| corrupt_row("bucket", e))?,
        count: u64::try_from(count).map_err(|e| corrupt_row("bucket", e))?,
        sum: row.try_get("s").map_err(query_error)?,
        min: row.try_get("lo").map_err(query_error)?,
        max: row.try_get("hi").map_err(query_error)?,
        // Not computed when not needed: never shown then.
        first: first.unwrap_or(f64::NAN),
        last: last.unwrap_or(f64::NAN),
    })
}

impl PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub(crate) async fn bucket_device(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: &BucketQuery,
    ) -> Result<SeriesStats, LookupError> {
        let tx = self.reader(tenant).await?;
        let exists = tx.prepare(DEVICE_ROW).await.map_err(query_error)?;
        let custom_plans = tx.prepare(CUSTOM_PLANS).await.map_err(query_error)?;
        let statement = tx
            .prepare(&device_sql(needs_ends(query)))
            .await
            .map_err(query_error)?;
        let before = tx.prepare(DEVICE_BEFORE).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let since = query.since.get();
        let range = counted(query);
        let (found, _, rows, before) = tx
            .run(|client| async {
                let aggregate = async {
                    match &range {
                        Some(c) => {
                            let params: [&(dyn ToSql + Sync); 7] = [
                                &tenant_id,
                                &device,
                                &c.bounds,
                                &c.from,
                                &c.to,
                                &c.edge_starts,
                                &c.edge_ends,
                            ];
                            client.query(&statement, &params).await
                        }
                        None => Ok(Vec::new()),
                    }
                };
                let before = async {
                    if query.wants_before() {
                        client
                            .query_opt(&before, &[&tenant_id, &device, &since])
                            .await
                    } else {
                        Ok(None)
                    }
                };
                let key: [&(dyn ToSql + Sync); 2] = [&tenant_id, &device];
                tokio::try_join!(
                    biased;
                    client.query_opt(&exists, &key),
                    client.execute(&custom_plans, &[]),
                    aggregate,
                    before,
                )
            })
            .await
            .map_err(query_error)?;
        let Some(found) = found else {
            return Err(LookupError::NotFound);
        };
        let name: String = found.try_get("name").map_err(query_error)?;
        let unit: String = found.try_get("unit").map_err(query_error)?;
        Ok(SeriesStats {
            device_id: device,
            device_name: DeviceName::parse(&name).map_err(|e| corrupt_row("device", e))?,
            unit: Unit::parse(&unit).map_err(|e| corrupt_row("device", e))?,
            buckets: rows.iter().map(stats_from_row).collect::<Result<_, _>>()?,
            before: before
                .map(|row| row.try_get::<_, f64>("value"))
                .transpose()
                .map_err(query_error)?,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub(crate) async fn bucket_group(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        choice: &SeriesChoice,
        query: &BucketQuery,
        tree: bool,
    ) -> Result<Vec<SeriesStats>, GroupBucketsError> {
        let tenant_id = tenant.as_str();
        let tx = self.reader(tenant).await?;
        let find = tx.prepare(FIND_BY_ID).await.map_err(query_error)?;
        let custom_plans = tx.prepare(CUSTOM_PLANS).await.map_err(query_error)?;
        let (outsider_sql, sql) = if tree {
            (tree_outsider_sql(), tree_sql(needs_ends(query)))
        } else {
            (OUTSIDER.to_owned(), group_sql(needs_ends(query)))
        };
        let outsider = tx.prepare(&outsider_sql).await.map_err(query_error)?;
        let statement = tx.prepare(&sql).await.map_err(query_error)?;
        let listed: Option<Vec<Uuid>> = choice.devices().map(<[Uuid]>::to_vec);
        let cap = i64::try_from(choice.cap()).unwrap_or(i64::MAX);
        let wants_before = query.wants_before();
        let since = query.since.get();
        let range = counted(query);
        // The group's id, then its members' series: in one transaction, so both see the same
        // membership. A slug costs one more round trip than an id.
        let id: Uuid = match group {
            GroupKey::Id(id) => *id,
            GroupKey::Slug(slug) => {
                let by_slug = tx.prepare(FIND_BY_SLUG).await.map_err(query_error)?;
                let slug = slug.as_str();
                let row = tx
                    .run(|client| async { client.query_opt(&by_slug, &[&tenant_id, &slug]).await })
                    .await
                    .map_err(query_error)?
                    .ok_or(GroupBucketsError::NotFound)?;
                row.try_get("id").map_err(query_error)?
            }
        };
        let (found, _, outside, rows) = tx
            .run(|client| async {
                let check = async {
                    match &listed {
                        Some(ids) => client.query_opt(&outsider, &[&tenant_id, &id, ids]).await,
                        None => Ok(None),
                    }
                };
                let aggregate = async {
                    match &range {
                        Some(c) => {
                            let params: [&(dyn ToSql + Sync); 11] = [
                                &tenant_id,
                                &id,
                                &c.bounds,
                                &c.from,
                                &c.to,
                                &c.edge_starts,
                                &c.edge_ends,
                                &listed,
                                &cap,
                                &wants_before,
                                &since,
                            ];
                            client.query(&statement, &params).await
                        }
                        None => Ok(Vec::new()),
                    }
                };
                let key: [&(dyn ToSql + Sync); 2] = [&tenant_id, &id];
                // Plans fitted to the range, group and boundaries at hand (see `CUSTOM_PLANS`):
                // a generic plan of the bucket statement is several times slower.
                tokio::try_join!(
                    biased;
                    client.query_opt(&find, &key),
                    client.execute(&custom_plans, &[]),
                    check,
                    aggregate,
                )
            })
            .await
            .map_err(query_error)?;
        if found.is_none() {
            return Err(GroupBucketsError::NotFound);
        }
        if let Some(row) = outside {
            return Err(GroupBucketsError::NotMember(
                row.try_get("id").map_err(query_error)?,
            ));
        }
        let mut series: Vec<SeriesStats> = Vec::new();
        for row in &rows {
            let device: Uuid = row.try_get("id").map_err(query_error)?;
            if series.last().is_none_or(|s| s.device_id != device) {
                let name: String = row.try_get("name").map_err(query_error)?;
                let unit: String = row.try_get("unit").map_err(query_error)?;
                series.push(SeriesStats {
                    device_id: device,
                    device_name: DeviceName::parse(&name).map_err(|e| corrupt_row("device", e))?,
                    unit: Unit::parse(&unit).map_err(|e| corrupt_row("device", e))?,
                    buckets: Vec::new(),
                    before: row.try_get("before").map_err(query_error)?,
                });
            }
            if let Some(open) = series.last_mut() {
                open.buckets.push(stats_from_row(row)?);
            }
        }
        Ok(series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn t(value: OffsetDateTime) -> Timestamp {
        Timestamp::new(value).expect("in range")
    }

    #[test]
    fn raw_edges_are_what_whole_hours_leave_of_each_bucket() {
        // Kolkata days: each day's first and last half hour, merged across midnight.
        let bounds = [
            t(datetime!(2025-01-01 18:30 UTC)),
            t(datetime!(2025-01-02 18:30 UTC)),
            t(datetime!(2025-01-03 18:30 UTC)),
        ];
        assert_eq!(
            raw_edges(&bounds, bounds[0], bounds[2]),
            vec![
                (
                    datetime!(2025-01-01 18:30 UTC),
                    datetime!(2025-01-01 19:00 UTC)
                ),
                (
                    datetime!(2025-01-02 18:00 UTC),
                    datetime!(2025-01-02 19:00 UTC)
                ),
                (
                    datetime!(2025-01-03 18:00 UTC),
                    datetime!(2025-01-03 18:30 UTC)
                ),
            ]
        );
        // Hourly UTC buckets over an unaligned range: the partial hours at both ends only.
        let hours = [
            t(datetime!(2025-01-01 10:00 UTC)),
            t(datetime!(2025-01-01 11:00 UTC)),
            t(datetime!(2025-01-01 12:00 UTC)),
            t(datetime!(2025-01-01 13:00 UTC)),
        ];
        assert_eq!(
            raw_edges(
                &hours,
                t(datetime!(2025-01-01 10:20 UTC)),
                t(datetime!(2025-01-01 12:10 UTC))
            ),
            vec![
                (
                    datetime!(2025-01-01 10:20 UTC),
                    datetime!(2025-01-01 11:00 UTC)
                ),
                (
                    datetime!(2025-01-01 12:00 UTC),
                    datetime!(2025-01-01 12:10 UTC)
                ),
            ]
        );
        // Quarter hours: no whole hour inside any bucket, all raw, in one range.
        let quarters = [
            t(datetime!(2025-01-01 10:00 UTC)),
            t(datetime!(2025-01-01 10:15 UTC)),
            t(datetime!(2025-01-01 10:30 UTC)),
        ];
        assert_eq!(
            raw_edges(&quarters, quarters[0], quarters[2]),
            vec![(
                datetime!(2025-01-01 10:00 UTC),
                datetime!(2025-01-01 10:30 UTC)
            )]
        );
        // Aligned hours: nothing raw.
        assert!(raw_edges(&hours, hours[0], hours[3]).is_empty());
    }
}
