//! Device groups and their members in PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::ClientWrapper;
use domain::{
    Actor, Description, Device, DeviceGroup, DeviceName, GroupChanges, GroupFilter, GroupName,
    GroupSlug, ListQuery, NewDeviceGroup, Page, ReadingQuery, TenantId, Timestamp, Unit,
};
use ports::{
    CreateGroupError, DeviceGroupRepository, FilterPreview, GroupDetail, GroupKey, GroupReading,
    LookupError, Member, MembershipError, ReadingStream, StoreError, UpdateGroupError,
};
use tokio_postgres::types::Json;
use tokio_postgres::{Row, Statement};
use uuid::Uuid;

use crate::error::{corrupt_row, query_error, unique_violation};
use crate::lists::{fetch_page, name_filter};
use crate::membership;
use crate::pool::PgStore;
use crate::rows::{
    device_from_row, group_columns, group_from_row, timestamp, window_from_row, DEVICE_COLUMNS,
    DEVICE_STATE_JOIN,
};
use crate::shared::{first_missing_device, live_windows_sql};
use crate::tree;
use crate::tx::TenantTx;

pub(crate) fn list_sql() -> String {
    format!(
        "SELECT {} FROM device_groups g WHERE g.tenant_id = $1 AND {} ORDER BY g.name COLLATE \"C\" LIMIT $3 OFFSET $4",
        group_columns!("g"),
        name_filter("g.name")
    )
}
pub(crate) fn count_sql() -> String {
    format!(
        "SELECT count(*) FROM device_groups g WHERE g.tenant_id = $1 AND {}",
        name_filter("g.name")
    )
}
pub(crate) const GET_BY_ID: &str = concat!(
    "SELECT ",
    group_columns!("g"),
    " FROM device_groups g WHERE g.tenant_id = $1 AND g.id = $2"
);
const GET_BY_SLUG: &str = concat!(
    "SELECT ",
    group_columns!("g"),
    " FROM device_groups g WHERE g.tenant_id = $1 AND g.group_id = $2"
);
/// A page of a group's devices (`$1` tenant, `$2` name filter, `$3` limit, `$4` offset, `$5`
/// the group's id or, with `by_slug`, its slug) and their count (`$1`, `$2`, `$5`, as `$3`).
fn members_page_sql(by_slug: bool) -> (String, String) {
    let group = |n: u8| {
        if by_slug {
            format!("(SELECT id FROM device_groups WHERE tenant_id = $1 AND group_id = ${n})")
        } else {
            format!("${n}::uuid")
        }
    };
    let from = "FROM device_group_members m \
                JOIN devices d ON d.tenant_id = m.tenant_id AND d.id = m.device_id";
    (
        format!(
            "SELECT {DEVICE_COLUMNS} {from} {DEVICE_STATE_JOIN} WHERE m.tenant_id = $1 AND m.group_id = {} AND {} \
             ORDER BY d.name COLLATE \"C\", d.id LIMIT $3 OFFSET $4",
            group(5),
            name_filter("d.name")
        ),
        format!(
            "SELECT count(*) {from} WHERE m.tenant_id = $1 AND m.group_id = {} AND {}",
            group(3),
            name_filter("d.name")
        ),
    )
}
pub(crate) const FIND_BY_ID: &str = "SELECT id FROM device_groups WHERE tenant_id = $1 AND id = $2";
pub(crate) const FIND_BY_SLUG: &str =
    "SELECT id FROM device_groups WHERE tenant_id = $1 AND group_id = $2";
const LOCK_BY_ID: &str = "SELECT id, filter IS NOT NULL AS dynamic FROM device_groups \
     WHERE tenant_id = $1 AND id = $2 FOR UPDATE";
const LOCK_BY_SLUG: &str = "SELECT id, filter IS NOT NULL AS dynamic FROM device_groups \
     WHERE tenant_id = $1 AND group_id = $2 FOR UPDATE";
const INSERT: &str = "INSERT INTO device_groups (tenant_id, id, group_id, name, description, created_by, updated_by, parent_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $6, $7)";
// $4 says whether the description is being set (to $5, which may be NULL) or kept, $7 the
// same of the parent ($8).
// greatest() keeps updated_at from going backwards if the server clock does.
const UPDATE: &str = "UPDATE device_groups SET name = COALESCE($3, name), \
     description = CASE WHEN $4 THEN $5 ELSE description END, \
     parent_id = CASE WHEN $7 THEN $8 ELSE parent_id END, \
     updated_at = greatest(now(), updated_at), updated_by = $6 WHERE tenant_id = $1 AND id = $2";
const TOUCH: &str =
    "UPDATE device_groups SET updated_at = greatest(now(), updated_at), updated_by = $3 WHERE tenant_id = $1 AND id = $2";
const DELETE: &str = "DELETE FROM device_groups WHERE tenant_id = $1 AND id = $2";
const DROP_OTHER_MEMBERS: &str =
    "DELETE FROM device_group_members WHERE tenant_id = $1 AND group_id = $2 AND NOT (device_id = ANY($3))";
const ADD_MEMBERS: &str = "INSERT INTO device_group_members (tenant_id, group_id, device_id) \
     SELECT $1, $2, unnest($3::uuid[]) ON CONFLICT DO NOTHING";
const REMOVE_MEMBER: &str =
    "DELETE FROM device_group_members WHERE tenant_id = $1 AND group_id = $2 AND device_id = $3";
const DEVICE_EXISTS: &str = "SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE";

/// The statement that reads a group's members with their kept state and whether they have
/// open alerts (`open_alert`: NULL without one, else whether one is acknowledged), public for
/// the plan test: one pass over the members, joined to devices, latest readings and the
/// open alerts of the members only (the tenant may have many: every silent device has a stale
/// one), by hash or index as the group's size makes cheaper. Unordered:
/// [`load_detail`] sorts.
#[doc(hidden)]
#[must_use]
pub fn members_sql() -> String {
    format!(
        "SELECT {DEVICE_COLUMNS}, o.acknowledged AS open_alert \
         FROM device_group_members m \
         JOIN devices d ON d.tenant_id = m.tenant_id AND d.id = m.device_id \
         {DEVICE_STATE_JOIN} \
         LEFT JOIN (SELECT a.device_id, bool_or(a.ack_by IS NOT NULL) AS acknowledged \
                    FROM alerts a JOIN device_group_members am \
                      ON am.tenant_id = a.tenant_id AND am.device_id = a.device_id \
                    WHERE a.tenant_id = $1 AND am.group_id = $2 AND a.state = 'open' \
                    GROUP BY a.device_id) o \
           ON o.device_id = d.id \
         WHERE m.tenant_id = $1 AND m.group_id = $2"
    )
}

/// For the rest of the transaction, statements are planned for their parameters (the
/// size-dependent statements are sent after it). The best plans of the members' and readings'
/// statements depend on the group's size (hash joins for thousands of members, index lookups for
/// ten); a generic plan, which PostgreSQL settles on after five runs, is several times slower for
/// one end or the other (4x for the readings of a 10-device group). Planning costs about a
/// millisecond.
pub(crate) const CUSTOM_PLANS: &str =
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)";

/// For the members of group `$2`, the groups a live window names that they are in, directly
/// or through a descendant: one row per (member, named group). Starting from the few named
/// groups (and their trees) keeps this small however large the group is (public for the plan
/// test).
#[doc(hidden)]
#[must_use]
pub fn window_memberships_sql() -> String {
    format!(
        "WITH RECURSIVE {} \
         SELECT DISTINCT o.device_id, n.slug AS group_id FROM named n \
         JOIN device_group_members o ON o.tenant_id = $1 AND o.group_id = n.id \
         JOIN device_group_members m ON m.tenant_id = $1 AND m.group_id = $2 AND m.device_id = o.device_id",
        tree::named_trees(&tree::live_window_slugs("now()"))
    )
}

/// [`window_memberships_sql`] for the devices of group `$2`'s tree.
fn tree_window_memberships_sql() -> String {
    format!(
        "WITH RECURSIVE {} \
         SELECT DISTINCT o.device_id, n.slug AS group_id FROM named n \
         JOIN device_group_members o ON o.tenant_id = $1 AND o.group_id = n.id \
         WHERE o.device_id IN ({})",
        tree::named_trees(&tree::live_window_slugs("now()")),
        tree::tree_devices()
    )
}

/// [`members_sql`] for the devices of group `$2`'s tree, each once.
#[doc(hidden)]
#[must_use]
pub fn tree_members_sql() -> String {
    format!(
        "WITH members AS MATERIALIZED ({}) \
         SELECT {DEVICE_COLUMNS}, o.acknowledged AS open_alert \
         FROM members m \
         JOIN devices d ON d.tenant_id = $1 AND d.id = m.device_id \
         {DEVICE_STATE_JOIN} \
         LEFT JOIN (SELECT a.device_id, bool_or(a.ack_by IS NOT NULL) AS acknowledged \
                    FROM alerts a JOIN members am ON am.device_id = a.device_id \
                    WHERE a.tenant_id = $1 AND a.state = 'open' \
                    GROUP BY a.device_id) o \
           ON o.device_id = d.id",
        tree::tree_devices()
    )
}

/// Newest readings of a group's members, newest first, by whichever of two paths reads fewer
/// rows; both are in one statement, and the one whose gate is false is never run.
/// - Per member: each member contributes at most `limit` of its own (an index range scan per
///   member) and the newest `limit` of those are kept: up to `members × limit` rows.
/// - Walk: the tenant's readings are walked newest first on `readings_tenant_ts_idx` (index
///   only), each checked against the members' hash, until `limit` match: about
///   `limit × tenant devices ÷ members` rows.
///
/// So the walk is chosen once `members² ≥ tenant devices` (counting devices stops there).
/// The CASE keeps the membership test a hashed filter: as a plain `IN`, the planner would make it
/// a join that probes an index for every walked row.
///
/// Public for the plan test.
#[doc(hidden)]
pub const GROUP_READINGS: &str = "WITH size AS ( \
        SELECT count(*) * count(*) AS squared FROM device_group_members \
        WHERE tenant_id = $1 AND group_id = $2), \
     path AS ( \
        SELECT (SELECT count(*) FROM (SELECT FROM devices WHERE tenant_id = $1 \
                                      LIMIT (SELECT squared FROM size) + 1) few) \
               > (SELECT squared FROM size) AS per_member) \
     SELECT id, name, unit, ts, value FROM ( \
       (SELECT d.id, d.name, d.unit, r.ts, r.value \
        FROM device_group_members m \
        JOIN devices d ON d.tenant_id = m.tenant_id AND d.id = m.device_id \
        CROSS JOIN LATERAL (SELECT ts, value FROM readings r \
           WHERE r.tenant_id = m.tenant_id AND r.device_id = m.device_id AND r.ts >= $3 \
             AND ($5::timestamptz IS NULL OR r.ts < $5) \
             AND ($6::timestamptz IS NULL OR r.ts < $6 OR (r.ts = $6 AND m.device_id > $7)) \
           ORDER BY r.ts DESC LIMIT $4::bigint + $8::bigint) r \
        WHERE m.tenant_id = $1 AND m.group_id = $2 AND (SELECT per_member FROM path) \
        ORDER BY r.ts DESC, d.id LIMIT $4::bigint + $8::bigint) \
       UNION ALL \
       (SELECT d.id, d.name, d.unit, r.ts, r.value \
        FROM readings r \
        JOIN devices d ON d.tenant_id = r.tenant_id AND d.id = r.device_id \
        WHERE r.tenant_id = $1 AND r.ts >= $3 AND ($5::timestamptz IS NULL OR r.ts < $5) \
          AND ($6::timestamptz IS NULL OR r.ts < $6 OR (r.ts = $6 AND r.device_id > $7)) \
          AND NOT (SELECT per_member FROM path) \
          AND CASE WHEN r.device_id IN (SELECT device_id FROM device_group_members \
                                        WHERE tenant_id = $1 AND group_id = $2) THEN true END \
        ORDER BY r.ts DESC, r.device_id LIMIT $4::bigint + $8::bigint) \
     ) newest ORDER BY ts DESC, id LIMIT $4 OFFSET $8";

/// [`GROUP_READINGS`] over the devices of group `$2`'s tree, each once.
#[doc(hidden)]
#[must_use]
pub fn tree_readings_sql() -> String {
    format!(
        "WITH members AS MATERIALIZED ({}), \
         size AS (SELECT count(*) * count(*) AS squared FROM members), \
         path AS ( \
            SELECT (SELECT count(*) FROM (SELECT FROM devices WHERE tenant_id = $1 \
                                          LIMIT (SELECT squared FROM size) + 1) few) \
                   > (SELECT squared FROM size) AS per_member) \
         SELECT id, name, unit, ts, value FROM ( \
           (SELECT d.id, d.name, d.unit, r.ts, r.value \
            FROM members m \
            JOIN devices d ON d.tenant_id = $1 AND d.id = m.device_id \
            CROSS JOIN LATERAL (SELECT ts, value FROM readings r \
               WHERE r.tenant_id = $1 AND r.device_id = m.device_id AND r.ts >= $3 \
                 AND ($5::timestamptz IS NULL OR r.ts < $5) \
                 AND ($6::timestamptz IS NULL OR r.ts < $6 OR (r.ts = $6 AND m.device_id > $7)) \
               ORDER BY r.ts DESC LIMIT $4::bigint + $8::bigint) r \
            WHERE (SELECT per_member FROM path) \
            ORDER BY r.ts DESC, d.id LIMIT $4::bigint + $8::bigint) \
           UNION ALL \
           (SELECT d.id, d.name, d.unit, r.ts, r.value \
            FROM readings r \
            JOIN devices d ON d.tenant_id = r.tenant_id AND d.id = r.device_id \
            WHERE r.tenant_id = $1 AND r.ts >= $3 AND ($5::timestamptz IS NULL OR r.ts < $5) \
              AND ($6::timestamptz IS NULL OR r.ts < $6 OR (r.ts = $6 AND r.device_id > $7)) \
              AND NOT (SELECT per_member FROM path) \
              AND CASE WHEN r.device_id IN (SELECT device_id FROM members) THEN true END \
            ORDER BY r.ts DESC, r.device_id LIMIT $4::bigint + $8::bigint) \
         ) newest ORDER BY ts DESC, id LIMIT $4 OFFSET $8",
        tree::tree_devices()
    )
}

/// [`EXPORT_MEMBERS`] for the devices of group `$2`'s tree.
fn tree_export_members_sql() -> String {
    format!(
        "SELECT d.id, d.name, d.unit FROM devices d WHERE d.tenant_id = $1 AND d.id IN ({})",
        tree::tree_devices()
    )
}

/// The members of group `$2` as its readings show them.
const EXPORT_MEMBERS: &str = "SELECT d.id, d.name, d.unit FROM device_group_members m \
     JOIN devices d ON d.tenant_id = m.tenant_id AND d.id = m.device_id \
     WHERE m.tenant_id = $1 AND m.group_id = $2";

/// The readings of devices `$2` in the order of [`GROUP_READINGS`], streamed by an export:
/// a walk of the readings by time, never a sort of them all, so its first rows come at once.
const GROUP_EXPORT: &str = "SELECT r.device_id, r.ts, r.value FROM readings r \
     WHERE r.tenant_id = $1 AND r.device_id = ANY($2) AND r.ts >= $3 \
       AND ($5::timestamptz IS NULL OR r.ts < $5) \
       AND ($6::timestamptz IS NULL OR r.ts < $6 OR (r.ts = $6 AND r.device_id > $7)) \
     ORDER BY r.ts DESC, r.device_id LIMIT $4 OFFSET $8";

/// The group's id, optionally locking its row for the rest of the transaction.
async fn find_group(
    tx: &TenantTx,
    tenant: &TenantId,
    key: &GroupKey,
    lock: bool,
) -> Result<Option<Uuid>, StoreError> {
    let row = match key {
        GroupKey::Id(id) => {
            let sql = if lock { LOCK_BY_ID } else { FIND_BY_ID };
            let statement = tx.prepare_cached(sql).await.map_err(query_error)?;
            tx.query_opt(&statement, &[&tenant.as_str(), id]).await
        }
        GroupKey::Slug(slug) => {
            let sql = if lock { LOCK_BY_SLUG } else { FIND_BY_SLUG };
            let statement = tx.prepare_cached(sql).await.map_err(query_error)?;
            tx.query_opt(&statement, &[&tenant.as_str(), &slug.as_str()])
                .await
        }
    }
    .map_err(query_error)?;
    row.map(|r| r.try_get("id").map_err(query_error))
        .transpose()
}

/// The group's id and whether it is dynamic, its row locked for the rest of the transaction.
async fn lock_group(
    tx: &TenantTx,
    tenant: &TenantId,
    key: &GroupKey,
) -> Result<Option<(Uuid, bool)>, StoreError> {
    let row = match key {
        GroupKey::Id(id) => {
            let statement = tx.prepare_cached(LOCK_BY_ID).await.map_err(query_error)?;
            tx.query_opt(&statement, &[&tenant.as_str(), id]).await
        }
        GroupKey::Slug(slug) => {
            let statement = tx.prepare_cached(LOCK_BY_SLUG).await.map_err(query_error)?;
            tx.query_opt(&statement, &[&tenant.as_str(), &slug.as_str()])
                .await
        }
    }
    .map_err(query_error)?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("dynamic")?)))
        .transpose()
        .map_err(query_error)
}

/// The devices filter `$2` selects: the first `$3` by name, and how many there are.
fn preview_sql() -> [String; 2] {
    [
        format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d {DEVICE_STATE_JOIN} WHERE {} \
             ORDER BY d.name COLLATE \"C\" LIMIT $3",
            membership::SELECTED
        ),
        format!(
            "SELECT count(*) FROM devices d WHERE {}",
            membership::SELECTED
        ),
    ]
}

/// The statements of a group's detail, prepared on one connection.
struct DetailStatements {
    group: Statement,
    windows: Statement,
    custom_plans: Statement,
    members: Statement,
    memberships: Statement,
}

/// What the detail statements return, undecoded.
type DetailRows = (Option<Row>, Vec<Row>, u64, Vec<Row>, Vec<Row>);

impl DetailStatements {
    /// `tree`: the statements of the group's tree ([`DeviceGroupRepository::get_group_tree`]).
    async fn prepare(client: &ClientWrapper, tree: bool) -> Result<Self, StoreError> {
        let windows_sql = live_windows_sql();
        let (members_sql, memberships_sql) = if tree {
            (tree_members_sql(), tree_window_memberships_sql())
        } else {
            (members_sql(), window_memberships_sql())
        };
        let (group, windows, custom_plans, members, memberships) = tokio::try_join!(
            client.prepare_cached(GET_BY_ID),
            client.prepare_cached(&windows_sql),
            client.prepare_cached(CUSTOM_PLANS),
            client.prepare_cached(&members_sql),
            client.prepare_cached(&memberships_sql),
        )
        .map_err(query_error)?;
        Ok(Self {
            group,
            windows,
            custom_plans,
            members,
            memberships,
        })
    }

    /// The group, its members with their latest readings, their window memberships and the live
    /// windows: polled together, the statements are pipelined, one round trip, and none scans the
    /// readings table. The group and window statements go before the custom-plan switch, keeping
    /// their generic plans.
    async fn fetch(
        &self,
        client: &ClientWrapper,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync); 2],
    ) -> Result<DetailRows, tokio_postgres::Error> {
        tokio::try_join!(
            biased;
            client.query_opt(&self.group, params),
            client.query(&self.windows, &params[..1]),
            client.execute(&self.custom_plans, &[]),
            client.query(&self.members, params),
            client.query(&self.memberships, params),
        )
    }
}

/// The group's detail inside a write transaction. `None` when the tenant has no group `id`.
async fn load_detail(
    tx: &TenantTx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<GroupDetail>, StoreError> {
    let statements = DetailStatements::prepare(tx, false).await?;
    let tenant_id = tenant.as_str();
    let rows = statements
        .fetch(tx, &[&tenant_id, &id])
        .await
        .map_err(query_error)?;
    decode_detail_off_io(rows).await
}

/// The position of `open_alert` in a row of [`members_sql`], right after the device's.
const OPEN_ALERT: usize = crate::rows::DEVICE_COLUMN_COUNT;

/// Member rows, or window rows (each with up to 3,000 list entries to parse), beyond which
/// decoding is worth moving off the I/O thread, which other requests' connections share.
const DECODE_OFF_IO_ROWS: usize = 512;
const DECODE_OFF_IO_WINDOWS: usize = 32;

/// [`decode_detail`], on the blocking pool for a large detail: a tenant with many windows of
/// long lists must not stall the other requests of this thread.
async fn decode_detail_off_io(rows: DetailRows) -> Result<Option<GroupDetail>, StoreError> {
    let (_, windows, _, members, memberships) = &rows;
    if windows.len() <= DECODE_OFF_IO_WINDOWS
        && members.len() + memberships.len() <= DECODE_OFF_IO_ROWS
    {
        return decode_detail(rows);
    }
    tokio::task::spawn_blocking(move || decode_detail(rows))
        .await
        .map_err(|e| StoreError::Unknown(anyhow::anyhow!("decoding a group detail failed: {e}")))?
}

/// The detail from its rows; `None` when the group row is missing.
fn decode_detail(
    (group, windows, _, members, memberships): DetailRows,
) -> Result<Option<GroupDetail>, StoreError> {
    let Some(group) = group else {
        return Ok(None);
    };
    let mut window_groups = window_groups_by_device(&memberships)?;
    let mut members = members
        .iter()
        .map(|row| {
            let device = device_from_row(row)?;
            let open_alert: Option<bool> = row.try_get(OPEN_ALERT).map_err(query_error)?;
            Ok(Member {
                window_groups: window_groups.remove(&device.id).unwrap_or_default(),
                device,
                alerts: domain::MemberAlerts {
                    open: open_alert.is_some(),
                    acknowledged: open_alert.unwrap_or(false),
                },
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // Sorted here rather than in SQL: cheaper for the service than for the shared database.
    // Byte order of the names, as `COLLATE "C"` would give, then id.
    members.sort_unstable_by(|a, b| {
        (a.device.spec.name.as_str().as_bytes(), a.device.id)
            .cmp(&(b.device.spec.name.as_str().as_bytes(), b.device.id))
    });
    Ok(Some(GroupDetail {
        group: group_from_row(&group)?,
        members,
        windows: windows
            .iter()
            .map(window_from_row)
            .collect::<Result<Vec<_>, _>>()?,
    }))
}

/// Whether the write failed on the parent's foreign key: the parent is gone.
fn parent_missing(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
        && e.as_db_error().and_then(|db| db.constraint()) == Some("device_groups_parent_fkey")
}

/// A group this transaction created or locked is gone: the database broke its promise.
fn vanished(id: Uuid) -> StoreError {
    StoreError::Unknown(anyhow::anyhow!(
        "group {id} vanished inside its own transaction"
    ))
}

/// The rows of [`window_memberships_sql`] as each member's named groups, each slug parsed once.
fn window_groups_by_device(
    rows: &[Row],
) -> Result<std::collections::HashMap<Uuid, Vec<GroupSlug>>, StoreError> {
    let mut slugs: std::collections::HashMap<String, GroupSlug> = std::collections::HashMap::new();
    let mut by_device: std::collections::HashMap<Uuid, Vec<GroupSlug>> =
        std::collections::HashMap::new();
    for row in rows {
        let device: Uuid = row.try_get("device_id").map_err(query_error)?;
        let raw: String = row.try_get("group_id").map_err(query_error)?;
        let slug = match slugs.get(&raw) {
            Some(slug) => slug.clone(),
            None => {
                let slug = GroupSlug::parse(&raw).map_err(|e| corrupt_row("group", e))?;
                slugs.insert(raw, slug.clone());
                slug
            }
        };
        by_device.entry(device).or_default().push(slug);
    }
    Ok(by_device)
}

async fn replace_members(
    tx: &TenantTx,
    tenant: &TenantId,
    group: Uuid,
    members: &[Uuid],
) -> Result<(), StoreError> {
    let drop = tx
        .prepare_cached(DROP_OTHER_MEMBERS)
        .await
        .map_err(query_error)?;
    tx.execute(&drop, &[&tenant.as_str(), &group, &members])
        .await
        .map_err(query_error)?;
    add_members(tx, tenant, group, members).await
}

async fn add_members(
    tx: &TenantTx,
    tenant: &TenantId,
    group: Uuid,
    members: &[Uuid],
) -> Result<(), StoreError> {
    if members.is_empty() {
        return Ok(());
    }
    let add = tx.prepare_cached(ADD_MEMBERS).await.map_err(query_error)?;
    tx.execute(&add, &[&tenant.as_str(), &group, &members])
        .await
        .map_err(query_error)?;
    Ok(())
}

async fn touch(
    tx: &TenantTx,
    tenant: &TenantId,
    actor: &Actor,
    group: Uuid,
) -> Result<(), StoreError> {
    let statement = tx.prepare_cached(TOUCH).await.map_err(query_error)?;
    tx.execute(&statement, &[&tenant.as_str(), &group, &actor.as_str()])
        .await
        .map_err(query_error)?;
    Ok(())
}

impl PgStore {
    /// [`DeviceGroupRepository::export_group_readings`] (of the group's tree with `tree`): the
    /// members read first (the answer shows their names and units), then their readings
    /// streamed.
    async fn export_group(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
        tree: bool,
    ) -> Result<ReadingStream<GroupReading>, LookupError> {
        let export = self.export_tx(tenant).await?;
        let id = find_group(&export, tenant, group, false)
            .await?
            .ok_or(LookupError::NotFound)?;
        let tenant_id = tenant.as_str();
        let members_sql = if tree {
            tree_export_members_sql()
        } else {
            EXPORT_MEMBERS.to_owned()
        };
        let rows = export
            .query(&members_sql, &[&tenant_id, &id])
            .await
            .map_err(query_error)?;
        let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("device", reason);
        let mut shown = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get("name").map_err(query_error)?;
            let unit: String = row.try_get("unit").map_err(query_error)?;
            shown.insert(
                row.try_get::<_, Uuid>("id").map_err(query_error)?,
                (
                    DeviceName::parse(&name).map_err(|e| corrupt(&e))?,
                    Unit::parse(&unit).map_err(|e| corrupt(&e))?,
                ),
            );
        }
        let ids: Vec<Uuid> = shown.keys().copied().collect();
        let limit = i64::from(query.limit());
        let since = query.since().get();
        let until = query.until().map(Timestamp::get);
        let after_ts = query.after().map(|a| a.timestamp.get());
        let after_id = query.after().map(|a| a.device_id);
        let offset = i64::from(query.offset());
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &tenant_id, &ids, &since, &limit, &until, &after_ts, &after_id, &offset,
        ];
        let decode = move |row: &Row| -> Result<GroupReading, StoreError> {
            let device_id: Uuid = row.try_get("device_id").map_err(query_error)?;
            let (device_name, unit) = shown
                .get(&device_id)
                .cloned()
                .ok_or_else(|| corrupt_row("reading", "of a device not in the group"))?;
            Ok(GroupReading {
                device_id,
                device_name,
                unit,
                timestamp: timestamp(row, "ts")?,
                value: row.try_get("value").map_err(query_error)?,
            })
        };
        Ok(crate::exports::stream(export, GROUP_EXPORT, &params, decode).await?)
    }

    /// [`DeviceGroupRepository::get_group`], or with `tree` [`DeviceGroupRepository::get_group_tree`].
    async fn detail_of(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        tree: bool,
    ) -> Result<GroupDetail, LookupError> {
        let detail = match group {
            // The id is known: one round trip, which also tells whether the group exists.
            GroupKey::Id(id) => {
                let tx = self.reader(tenant).await?;
                let statements = DetailStatements::prepare(tx.client(), tree).await?;
                let tenant_id = tenant.as_str();
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, id];
                let rows = tx
                    .run(|client| statements.fetch(client, &params))
                    .await
                    .map_err(query_error)?;
                decode_detail_off_io(rows).await?
            }
            GroupKey::Slug(_) => {
                let tx = self.begin(tenant).await?;
                let id = find_group(&tx, tenant, group, false)
                    .await?
                    .ok_or(LookupError::NotFound)?;
                let statements = DetailStatements::prepare(&tx, tree).await?;
                let tenant_id = tenant.as_str();
                let rows = statements
                    .fetch(&tx, &[&tenant_id, &id])
                    .await
                    .map_err(query_error)?;
                let detail = decode_detail_off_io(rows).await?;
                tx.commit_read().await.map_err(query_error)?;
                detail
            }
        };
        detail.ok_or(LookupError::NotFound)
    }

    /// [`DeviceGroupRepository::group_readings`], or with `tree`
    /// [`DeviceGroupRepository::tree_readings`].
    async fn readings_of(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
        tree: bool,
    ) -> Result<Vec<GroupReading>, LookupError> {
        let sql = if tree {
            tree_readings_sql()
        } else {
            GROUP_READINGS.to_owned()
        };
        let limit = i64::from(query.limit());
        let since = query.since().get();
        let until = query.until().map(Timestamp::get);
        let after_ts = query.after().map(|a| a.timestamp.get());
        let after_id = query.after().map(|a| a.device_id);
        let offset = i64::from(query.offset());
        let tenant_id = tenant.as_str();
        let rows = match group {
            // The id is known: whether the group exists is asked in the same round trip (with
            // the readings and the COMMIT).
            GroupKey::Id(id) => {
                let tx = self.reader(tenant).await?;
                let statement = tx.prepare(&sql).await.map_err(query_error)?;
                let find = tx.prepare(FIND_BY_ID).await.map_err(query_error)?;
                let custom_plans = tx.prepare(CUSTOM_PLANS).await.map_err(query_error)?;
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
                    &tenant_id, id, &since, &limit, &until, &after_ts, &after_id, &offset,
                ];
                let (found, _, rows) = tx
                    .run(|client| async {
                        tokio::try_join!(
                            biased;
                            client.query_opt(&find, &params[..2]),
                            client.execute(&custom_plans, &[]),
                            client.query(&statement, &params),
                        )
                    })
                    .await
                    .map_err(query_error)?;
                if found.is_none() {
                    return Err(LookupError::NotFound);
                }
                rows
            }
            GroupKey::Slug(_) => {
                let tx = self.begin(tenant).await?;
                let statement = tx.prepare_cached(&sql).await.map_err(query_error)?;
                let custom_plans = tx.prepare_cached(CUSTOM_PLANS).await.map_err(query_error)?;
                let id = find_group(&tx, tenant, group, false)
                    .await?
                    .ok_or(LookupError::NotFound)?;
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
                    &tenant_id, &id, &since, &limit, &until, &after_ts, &after_id, &offset,
                ];
                let (_, rows) = tx
                    .commit_with(async {
                        tokio::try_join!(
                            biased;
                            tx.execute(&custom_plans, &[]),
                            tx.query(&statement, &params),
                        )
                    })
                    .await
                    .map_err(query_error)?;
                rows
            }
        };
        let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("reading", reason);
        Ok(rows
            .iter()
            .map(|row| {
                let name: String = row.try_get("name").map_err(query_error)?;
                let unit: String = row.try_get("unit").map_err(query_error)?;
                Ok(GroupReading {
                    device_id: row.try_get("id").map_err(query_error)?,
                    device_name: DeviceName::parse(&name).map_err(|e| corrupt(&e))?,
                    unit: Unit::parse(&unit).map_err(|e| corrupt(&e))?,
                    timestamp: timestamp(row, "ts")?,
                    value: row.try_get("value").map_err(query_error)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?)
    }
}

#[async_trait]
impl DeviceGroupRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn export_group_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<ReadingStream<GroupReading>, LookupError> {
        self.export_group(tenant, group, query, false).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn export_tree_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<ReadingStream<GroupReading>, LookupError> {
        self.export_group(tenant, group, query, true).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn get_group_tree(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
    ) -> Result<GroupDetail, LookupError> {
        self.detail_of(tenant, group, true).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn tree_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<Vec<GroupReading>, LookupError> {
        self.readings_of(tenant, group, query, true).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, groups = ids.len()))]
    async fn group_slugs(
        &self,
        tenant: &TenantId,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, GroupSlug>, StoreError> {
        if ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let tx = self.reader(tenant).await?;
        let statement = tx.prepare(tree::SLUGS).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, &ids];
        let rows = tx
            .run(|client| client.query(&statement, &params))
            .await
            .map_err(query_error)?;
        rows.iter()
            .map(|row| {
                let slug: &str = row.try_get(1).map_err(query_error)?;
                Ok((
                    row.try_get(0).map_err(query_error)?,
                    GroupSlug::parse(slug).map_err(|e| corrupt_row("group", e))?,
                ))
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn preview_filter(
        &self,
        tenant: &TenantId,
        filter: &GroupFilter,
        limit: usize,
    ) -> Result<FilterPreview, StoreError> {
        let tx = self.reader(tenant).await?;
        let [page_sql, count_sql] = preview_sql();
        let page = tx.prepare(&page_sql).await.map_err(query_error)?;
        let count = tx.prepare(&count_sql).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let stored = Json(membership::filter_to_json(filter));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&tenant_id, &stored, &limit];
        // The page and the count: one round trip.
        let (rows, counted) = tx
            .run(|client| async {
                tokio::try_join!(
                    biased;
                    client.query(&page, &params),
                    client.query_one(&count, &params[..2]),
                )
            })
            .await
            .map_err(query_error)?;
        let count: i64 = counted.try_get(0).map_err(query_error)?;
        Ok(FilterPreview {
            count: u64::try_from(count).unwrap_or_default(),
            devices: rows
                .iter()
                .map(device_from_row)
                .collect::<Result<Vec<_>, _>>()?,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_groups(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<Page<DeviceGroup>, StoreError> {
        let (rows, total) = fetch_page(self, &list_sql(), &count_sql(), tenant, query).await?;
        Ok(Page {
            items: rows.iter().map(group_from_row).collect::<Result<_, _>>()?,
            total,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn get_group_row(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
    ) -> Result<DeviceGroup, LookupError> {
        let tx = self.reader(tenant).await?;
        let tenant_id = tenant.as_str();
        let (sql, key): (&str, Box<dyn tokio_postgres::types::ToSql + Sync + Send>) = match group {
            GroupKey::Id(id) => (GET_BY_ID, Box::new(*id)),
            GroupKey::Slug(slug) => (GET_BY_SLUG, Box::new(slug.as_str().to_owned())),
        };
        let statement = tx.prepare(sql).await.map_err(query_error)?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, key.as_ref()];
        let row = tx
            .run(|client| client.query_opt(&statement, &params))
            .await
            .map_err(query_error)?;
        Ok(group_from_row(&row.ok_or(LookupError::NotFound)?)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_members(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: &ListQuery,
    ) -> Result<Page<Device>, LookupError> {
        let tx = self.reader(tenant).await?;
        let (page_sql, count_sql) = members_page_sql(matches!(group, GroupKey::Slug(_)));
        let (find_sql, key): (&str, Box<dyn tokio_postgres::types::ToSql + Sync + Send>) =
            match group {
                GroupKey::Id(id) => (FIND_BY_ID, Box::new(*id)),
                GroupKey::Slug(slug) => (FIND_BY_SLUG, Box::new(slug.as_str().to_owned())),
            };
        let find = tx.prepare(find_sql).await.map_err(query_error)?;
        let page = tx.prepare(&page_sql).await.map_err(query_error)?;
        let count = tx.prepare(&count_sql).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let filter = query.name_contains();
        let limit = query.limit().map(i64::from);
        let offset = i64::from(query.offset());
        let key = key.as_ref();
        // Existence, page and count in one round trip: an unknown group and an empty one differ.
        let find_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant_id, key];
        let page_params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&tenant_id, &filter, &limit, &offset, key];
        let count_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&tenant_id, &filter, key];
        let (found, rows, total) = tx
            .run(|client| async {
                tokio::try_join!(
                    biased;
                    client.query_opt(&find, &find_params),
                    client.query(&page, &page_params),
                    client.query_one(&count, &count_params),
                )
            })
            .await
            .map_err(query_error)?;
        if found.is_none() {
            return Err(LookupError::NotFound);
        }
        let total: i64 = total.try_get(0).map_err(query_error)?;
        Ok(Page {
            items: rows.iter().map(device_from_row).collect::<Result<_, _>>()?,
            total: u64::try_from(total).unwrap_or_default(),
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn create_group(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: NewDeviceGroup,
    ) -> Result<GroupDetail, CreateGroupError> {
        let tx = self.begin(tenant).await?;
        if group.filter.is_some() {
            membership::lock(&tx, tenant).await?;
            if !membership::room_for_dynamic(&tx, tenant, group.id).await? {
                return Err(CreateGroupError::TooManyDynamic);
            }
        }
        if let Some(parent) = group.parent_id {
            tree::lock_tree(&tx, tenant).await?;
            match tree::judge_placement(&tx, tenant, group.id, parent, false).await? {
                tree::Judged::NoParent => return Err(CreateGroupError::ParentNotFound(parent)),
                tree::Judged::Placed(placement) => placement.check()?,
            }
        }
        let statement = tx.prepare_cached(INSERT).await.map_err(query_error)?;
        let description = group.description.as_ref().map(Description::as_str);
        let inserted = tx
            .execute(
                &statement,
                &[
                    &tenant.as_str(),
                    &group.id,
                    &group.group_id.as_str(),
                    &group.name.as_str(),
                    &description,
                    &actor.as_str(),
                    &group.parent_id,
                ],
            )
            .await;
        if let Err(e) = inserted {
            return Err(match (unique_violation(&e), group.parent_id) {
                (Some("device_groups_group_id_key"), _) => {
                    CreateGroupError::GroupIdTaken(group.group_id)
                }
                (Some("device_groups_name_key"), _) => CreateGroupError::NameTaken(group.name),
                // The parent was deleted since it was judged.
                (_, Some(parent)) if parent_missing(&e) => CreateGroupError::ParentNotFound(parent),
                _ => query_error(e).into(),
            });
        }
        if let Some(missing) = first_missing_device(&tx, tenant, &group.members).await? {
            return Err(CreateGroupError::DeviceNotFound(missing));
        }
        add_members(&tx, tenant, group.id, &group.members).await?;
        if let Some(filter) = &group.filter {
            membership::set_filter(&tx, tenant, group.id, Some(filter)).await?;
        }
        let detail = load_detail(&tx, tenant, group.id)
            .await?
            .ok_or_else(|| vanished(group.id))?;
        tx.commit().await.map_err(query_error)?;
        Ok(detail)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn get_group(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
    ) -> Result<GroupDetail, LookupError> {
        self.detail_of(tenant, group, false).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn update_group(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        changes: GroupChanges,
    ) -> Result<GroupDetail, UpdateGroupError> {
        let tx = self.begin(tenant).await?;
        if changes.filter.is_some() {
            // Before the group's row, which device writes' new memberships wait on.
            membership::lock(&tx, tenant).await?;
        }
        if changes.parent_id.is_some() {
            tree::lock_tree(&tx, tenant).await?;
        }
        // Locked: concurrent updates of one group apply one after the other, never interleaved.
        let (id, dynamic) = lock_group(&tx, tenant, group)
            .await?
            .ok_or(UpdateGroupError::NotFound)?;
        let dynamic_after = match &changes.filter {
            Some(filter) => filter.is_some(),
            None => dynamic,
        };
        if dynamic_after && changes.members.is_some() {
            return Err(UpdateGroupError::DefinedByFilter);
        }
        if matches!(changes.filter, Some(Some(_)))
            && !dynamic
            && !membership::room_for_dynamic(&tx, tenant, id).await?
        {
            return Err(UpdateGroupError::TooManyDynamic);
        }
        if let Some(Some(parent)) = changes.parent_id {
            match tree::judge_placement(&tx, tenant, id, parent, true).await? {
                tree::Judged::NoParent => return Err(UpdateGroupError::ParentNotFound(parent)),
                tree::Judged::Placed(placement) => placement.check()?,
            }
        }
        if !changes.is_empty() {
            let statement = tx.prepare_cached(UPDATE).await.map_err(query_error)?;
            let name = changes.name.as_ref().map(GroupName::as_str);
            let sets_description = changes.description.is_some();
            let description = changes
                .description
                .as_ref()
                .and_then(|d| d.as_ref().map(Description::as_str));
            let sets_parent = changes.parent_id.is_some();
            let parent = changes.parent_id.flatten();
            let updated = tx
                .execute(
                    &statement,
                    &[
                        &tenant.as_str(),
                        &id,
                        &name,
                        &sets_description,
                        &description,
                        &actor.as_str(),
                        &sets_parent,
                        &parent,
                    ],
                )
                .await;
            if let Err(e) = updated {
                return Err(match (unique_violation(&e), changes.name, parent) {
                    (Some("device_groups_name_key"), Some(name), _) => {
                        UpdateGroupError::NameTaken(name)
                    }
                    (_, _, Some(parent)) if parent_missing(&e) => {
                        UpdateGroupError::ParentNotFound(parent)
                    }
                    _ => query_error(e).into(),
                });
            }
            if let Some(members) = &changes.members {
                if let Some(missing) = first_missing_device(&tx, tenant, members).await? {
                    return Err(UpdateGroupError::DeviceNotFound(missing));
                }
                replace_members(&tx, tenant, id, members).await?;
            }
            if let Some(filter) = &changes.filter {
                membership::set_filter(&tx, tenant, id, filter.as_ref()).await?;
            }
        }
        let detail = load_detail(&tx, tenant, id)
            .await?
            .ok_or_else(|| vanished(id))?;
        tx.commit().await.map_err(query_error)?;
        Ok(detail)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn delete_group(&self, tenant: &TenantId, group: &GroupKey) -> Result<(), LookupError> {
        let tx = self.begin(tenant).await?;
        // Before the group's row: a device write may be inserting a membership of it.
        membership::lock(&tx, tenant).await?;
        let id = find_group(&tx, tenant, group, true)
            .await?
            .ok_or(LookupError::NotFound)?;
        let statement = tx.prepare_cached(DELETE).await.map_err(query_error)?;
        tx.execute(&statement, &[&tenant.as_str(), &id])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn add_member(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        device: Uuid,
    ) -> Result<(), MembershipError> {
        let tx = self.begin(tenant).await?;
        let (id, dynamic) = lock_group(&tx, tenant, group)
            .await?
            .ok_or(MembershipError::GroupNotFound)?;
        if dynamic {
            return Err(MembershipError::DefinedByFilter);
        }
        let exists = tx
            .prepare_cached(DEVICE_EXISTS)
            .await
            .map_err(query_error)?;
        if tx
            .query_opt(&exists, &[&tenant.as_str(), &device])
            .await
            .map_err(query_error)?
            .is_none()
        {
            return Err(MembershipError::DeviceNotFound);
        }
        let add = tx.prepare_cached(ADD_MEMBERS).await.map_err(query_error)?;
        let added = tx
            .execute(&add, &[&tenant.as_str(), &id, &vec![device]])
            .await
            .map_err(query_error)?;
        if added > 0 {
            touch(&tx, tenant, actor, id).await?;
        }
        tx.commit().await.map_err(query_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn remove_member(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        device: Uuid,
    ) -> Result<(), MembershipError> {
        let tx = self.begin(tenant).await?;
        let (id, dynamic) = lock_group(&tx, tenant, group)
            .await?
            .ok_or(MembershipError::GroupNotFound)?;
        if dynamic {
            return Err(MembershipError::DefinedByFilter);
        }
        let remove = tx
            .prepare_cached(REMOVE_MEMBER)
            .await
            .map_err(query_error)?;
        if tx
            .execute(&remove, &[&tenant.as_str(), &id, &device])
            .await
            .map_err(query_error)?
            == 0
        {
            return Err(MembershipError::NotMember);
        }
        touch(&tx, tenant, actor, id).await?;
        tx.commit().await.map_err(query_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn group_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<Vec<GroupReading>, LookupError> {
        self.readings_of(tenant, group, query, false).await
    }
}
