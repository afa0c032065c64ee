//! Nested groups (issue 17): the SQL that walks a tenant's tree of groups. Every walk is a
//! recursive CTE over `device_groups` on `device_groups_parent_idx`, bounded by the most levels
//! a tree may have, so even a cycle the service failed to refuse could not make it loop.

use domain::group::{Placement, GROUP_LEVELS_MAX};
use domain::TenantId;
use ports::StoreError;
use uuid::Uuid;

use crate::error::query_error;
use crate::tx::TenantTx;

/// The ids of group `$2` and all its descendants, as one array: an uncorrelated `ARRAY(…)`
/// subquery, so PostgreSQL runs it once per statement (an InitPlan), however many rows use it.
pub(crate) fn tree_ids() -> String {
    format!(
        "ARRAY(WITH RECURSIVE tree(id, level) AS ( \
            SELECT $2::uuid, 1 \
            UNION ALL \
            SELECT c.id, t.level + 1 FROM tree t \
            JOIN device_groups c ON c.tenant_id = $1 AND c.parent_id = t.id \
            WHERE t.level < {GROUP_LEVELS_MAX}) \
          SELECT id FROM tree)"
    )
}

/// The devices of group `$2`'s tree, each once (a member of several of its groups too).
pub(crate) fn tree_devices() -> String {
    format!(
        "SELECT DISTINCT tm.device_id FROM device_group_members tm \
         WHERE tm.tenant_id = $1 AND tm.group_id = ANY({})",
        tree_ids()
    )
}

/// The slugs of the groups whose trees hold device `$2`: its groups and their ancestors, the
/// walk up bounded by the most levels a tree may have.
pub(crate) fn groups_reaching_device() -> String {
    format!(
        "WITH RECURSIVE up(id, level) AS ( \
            SELECT dm.group_id, 1 FROM device_group_members dm \
            WHERE dm.tenant_id = $1 AND dm.device_id = $2 \
            UNION \
            SELECT g.parent_id, u.level + 1 FROM up u \
            JOIN device_groups g ON g.tenant_id = $1 AND g.id = u.id \
            WHERE g.parent_id IS NOT NULL AND u.level < {GROUP_LEVELS_MAX}) \
         SELECT DISTINCT g.group_id FROM up JOIN device_groups g ON g.tenant_id = $1 AND g.id = up.id"
    )
}

/// A CTE `named(slug, id, level)`: the groups whose slugs `slugs` (a subquery or array
/// expression of text) selects, each with all its descendants under the named group's slug. A
/// window's `group_ids` naming a group covers the members of its whole tree. Starts a `WITH
/// RECURSIVE` list.
pub(crate) fn named_trees(slugs: &str) -> String {
    format!(
        "named(slug, id, level) AS ( \
            SELECT g.group_id, g.id, 1 FROM device_groups g \
            WHERE g.tenant_id = $1 AND g.group_id IN ({slugs}) \
            UNION ALL \
            SELECT n.slug, c.id, n.level + 1 FROM named n \
            JOIN device_groups c ON c.tenant_id = $1 AND c.parent_id = n.id \
            WHERE n.level < {GROUP_LEVELS_MAX})"
    )
}

/// The live windows' named slugs as of `at` (an SQL expression), for [`named_trees`].
pub(crate) fn live_window_slugs(at: &str) -> String {
    format!(
        "SELECT unnest(w.group_ids) FROM maintenance_windows w \
         WHERE w.tenant_id = $1 AND w.enabled AND w.group_ids IS NOT NULL \
           AND (w.ends_at IS NULL OR w.ends_at > {at})"
    )
}

/// Serialises the tenant's re-parentings (and creations under a parent): two of them judged
/// against the same tree could together make a cycle, or a level too many, that neither makes
/// alone. Taken first in its transaction, before any row lock, so it cannot close a deadlock.
const LOCK_TREE: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('iot-api/group-tree/' || $1, 0))";

/// Where group `$3` (with its subtree; with `$4` false, a new group without one) would stand
/// under parent `$2`: the parent's level (NULL when the tenant has no such group), the levels of
/// the subtree, and whether the parent is in it. The walks stop past twice the limit: a deeper
/// or cyclic tree is refused all the same.
const PLACEMENT: &str = "WITH RECURSIVE up(id, parent_id, level) AS ( \
        SELECT g.id, g.parent_id, 1 FROM device_groups g WHERE g.tenant_id = $1 AND g.id = $2 \
        UNION ALL \
        SELECT g.id, g.parent_id, u.level + 1 FROM up u \
        JOIN device_groups g ON g.tenant_id = $1 AND g.id = u.parent_id WHERE u.level < 16), \
     down(id, level) AS ( \
        SELECT $3::uuid, 1 \
        UNION ALL \
        SELECT c.id, d.level + 1 FROM down d \
        JOIN device_groups c ON c.tenant_id = $1 AND c.parent_id = d.id \
        WHERE $4 AND d.level < 16) \
     SELECT (SELECT max(level) FROM up)::int4 AS parent_level, \
            (SELECT max(level) FROM down)::int4 AS subtree_levels, \
            EXISTS (SELECT 1 FROM up WHERE id = $3) AS parent_in_subtree";

/// What placing group `id` under `parent` would do.
pub(crate) enum Judged {
    /// The tenant has no group `parent`.
    NoParent,
    Placed(Placement),
}

/// Judges placing `id` (`moving`: an existing group, whose subtree moves with it) under
/// `parent`; the caller holds the tree lock ([`lock_tree`]).
pub(crate) async fn judge_placement(
    tx: &TenantTx,
    tenant: &TenantId,
    id: Uuid,
    parent: Uuid,
    moving: bool,
) -> Result<Judged, StoreError> {
    let statement = tx.prepare_cached(PLACEMENT).await.map_err(query_error)?;
    let row = tx
        .query_one(&statement, &[&tenant.as_str(), &parent, &id, &moving])
        .await
        .map_err(query_error)?;
    let parent_level: Option<i32> = row.try_get("parent_level").map_err(query_error)?;
    let Some(parent_level) = parent_level else {
        return Ok(Judged::NoParent);
    };
    let subtree_levels: Option<i32> = row.try_get("subtree_levels").map_err(query_error)?;
    let level = |n: i32| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(Judged::Placed(Placement {
        parent_level: level(parent_level),
        subtree_levels: level(subtree_levels.unwrap_or(1)),
        parent_in_subtree: row.try_get("parent_in_subtree").map_err(query_error)?,
    }))
}

/// Takes the tenant's tree lock (see [`LOCK_TREE`]) for the rest of the transaction.
pub(crate) async fn lock_tree(tx: &TenantTx, tenant: &TenantId) -> Result<(), StoreError> {
    let statement = tx.prepare_cached(LOCK_TREE).await.map_err(query_error)?;
    tx.execute(&statement, &[&tenant.as_str()])
        .await
        .map_err(query_error)?;
    Ok(())
}

/// The slugs of groups `$2`.
pub(crate) const SLUGS: &str =
    "SELECT id, group_id FROM device_groups WHERE tenant_id = $1 AND id = ANY($2)";
