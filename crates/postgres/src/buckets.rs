//! Bucketed reads in PostgreSQL: readings grouped by `width_bucket` over the bucket boundaries
//! the domain computed for the zone (so DST and month lengths are the domain's, exactly), one
//! row per device and non-empty bucket; no raw reading leaves the database.

use domain::bucket::{BucketQuery, BucketStats, SeriesChoice, SeriesStats};
use domain::{DeviceName, TenantId, Unit};
use ports::{GroupBucketsError, GroupKey, LookupError, StoreError};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{corrupt_row, query_error};
use crate::groups::{FIND_BY_ID, FIND_BY_SLUG};
use crate::pool::PgStore;

/// The first and last value of a bucket without sorting: the least and greatest
/// `[epoch, value]` pair (epoch seconds as float8 keep microseconds for any reading's year).
const ENDS: &str = "(min(ARRAY[date_part('epoch', r.ts), r.value]))[2] AS first, \
                    (max(ARRAY[date_part('epoch', r.ts), r.value]))[2] AS last";
const NO_ENDS: &str = "NULL::float8 AS first, NULL::float8 AS last";

/// `$1` tenant, `$2` device, `$3` boundaries, `$4`..`$5` the instants counted, `$6` whether
/// the reading before `$7` is wanted.
fn device_sql(ends: bool) -> String {
    format!(
        "SELECT width_bucket(r.ts, $3::timestamptz[]) - 1 AS i, count(*) AS n, \
                sum(r.value) AS s, min(r.value) AS lo, max(r.value) AS hi, {} \
         FROM readings r \
         WHERE r.tenant_id = $1 AND r.device_id = $2 AND r.ts >= $4 AND r.ts < $5 \
         GROUP BY 1 ORDER BY 1",
        if ends { ENDS } else { NO_ENDS }
    )
}

const DEVICE_ROW: &str = "SELECT name, unit FROM devices WHERE tenant_id = $1 AND id = $2";

const DEVICE_BEFORE: &str = "SELECT value FROM readings \
     WHERE tenant_id = $1 AND device_id = $2 AND ts < $3 ORDER BY ts DESC LIMIT 1";

/// `$1` tenant, `$2` group, `$3` boundaries, `$4`..`$5` the instants counted, `$6` the listed
/// devices (or null: all members), `$7` most series, `$8` whether the reading before `$9` is
/// wanted.
fn group_sql(ends: bool) -> String {
    format!(
        "WITH listed AS ( \
            SELECT m.device_id FROM device_group_members m \
            WHERE m.tenant_id = $1 AND m.group_id = $2 \
              AND ($6::uuid[] IS NULL OR m.device_id = ANY($6::uuid[]))), \
         agg AS ( \
            SELECT r.device_id, width_bucket(r.ts, $3::timestamptz[]) - 1 AS i, count(*) AS n, \
                   sum(r.value) AS s, min(r.value) AS lo, max(r.value) AS hi, {} \
            FROM readings r \
            WHERE r.tenant_id = $1 AND r.device_id IN (SELECT device_id FROM listed) \
              AND r.ts >= $4 AND r.ts < $5 \
            GROUP BY 1, 2), \
         chosen AS ( \
            SELECT d.id, d.name, d.unit FROM ( \
               SELECT device_id, sum(n) AS total FROM agg GROUP BY device_id) t \
            JOIN devices d ON d.tenant_id = $1 AND d.id = t.device_id \
            ORDER BY t.total DESC, d.name COLLATE \"C\", d.id LIMIT $7), \
         before AS ( \
            SELECT c.*, CASE WHEN $8 THEN (SELECT b.value FROM readings b \
               WHERE b.tenant_id = $1 AND b.device_id = c.id AND b.ts < $9 \
               ORDER BY b.ts DESC LIMIT 1) END AS before \
            FROM chosen c) \
         SELECT c.id, c.name, c.unit, c.before, a.i, a.n, a.s, a.lo, a.hi, a.first, a.last \
         FROM before c JOIN agg a ON a.device_id = c.id ORDER BY c.id, a.i",
        if ends { ENDS } else { NO_ENDS }
    )
}

/// The first listed device that is no member of group `$2`.
const OUTSIDER: &str = "SELECT x.id FROM unnest($3::uuid[]) WITH ORDINALITY AS x(id, n) \
     WHERE NOT EXISTS (SELECT 1 FROM device_group_members m \
        WHERE m.tenant_id = $1 AND m.group_id = $2 AND m.device_id = x.id) \
     ORDER BY x.n LIMIT 1";

/// The instants a query counts: its range within its grid; `None` when that is empty.
fn counted(query: &BucketQuery) -> Option<(Vec<OffsetDateTime>, OffsetDateTime, OffsetDateTime)> {
    let bounds = query.grid.instants();
    let (first, last) = (*bounds.first()?, *bounds.last()?);
    let from = query.since.max(first);
    let to = query.until.map_or(last, |until| until.min(last));
    (from < to).then(|| {
        (
            bounds.iter().map(|b| b.get()).collect(),
            from.get(),
            to.get(),
        )
    })
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
        let statement = tx
            .prepare(&device_sql(needs_ends(query)))
            .await
            .map_err(query_error)?;
        let before = tx.prepare(DEVICE_BEFORE).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let since = query.since.get();
        let range = counted(query);
        let (found, rows, before) = tx
            .run(|client| async {
                let aggregate = async {
                    match &range {
                        Some((bounds, from, to)) => {
                            let params: [&(dyn ToSql + Sync); 5] =
                                [&tenant_id, &device, bounds, from, to];
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
    ) -> Result<Vec<SeriesStats>, GroupBucketsError> {
        let tenant_id = tenant.as_str();
        let tx = self.reader(tenant).await?;
        let find = tx.prepare(FIND_BY_ID).await.map_err(query_error)?;
        let outsider = tx.prepare(OUTSIDER).await.map_err(query_error)?;
        let statement = tx
            .prepare(&group_sql(needs_ends(query)))
            .await
            .map_err(query_error)?;
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
        let (found, outside, rows) = tx
            .run(|client| async {
                let check = async {
                    match &listed {
                        Some(ids) => client.query_opt(&outsider, &[&tenant_id, &id, ids]).await,
                        None => Ok(None),
                    }
                };
                let aggregate = async {
                    match &range {
                        Some((bounds, from, to)) => {
                            let params: [&(dyn ToSql + Sync); 9] = [
                                &tenant_id,
                                &id,
                                bounds,
                                from,
                                to,
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
                tokio::try_join!(
                    biased;
                    client.query_opt(&find, &key),
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
