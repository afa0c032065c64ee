//! Dynamic groups on PostgreSQL: a filter is stored as JSON (read by the SQL function
//! `group_filter_matches` of migration V15), and a dynamic group's members are rows of
//! `device_group_members` like a static group's, selected again in the transaction of every
//! write that could change them: a device written, or a filter set.
//!
//! A device write and a filter write running at once could each miss the other (the device
//! judged against the filters before the new one commits, the filter against the devices
//! before the device commits), and a group or device deleted meanwhile would fail the other's
//! insert of a membership. So every writer of dynamic memberships (device creates, updates and
//! deletes; group creates and updates that set a filter; group deletes) holds the tenant's
//! membership lock until it commits, taken before any row lock it could wait on: whichever
//! comes second then sees what the first wrote. Held alone rather than shared by device writes,
//! it also keeps two device writes from moving memberships (and the member counts they lock)
//! in opposite orders. Device writes are rare beside ingest, which never takes it.

use domain::{DeviceStatus, GroupFilter, MemberConditions, ScopeLabel, TenantId};
use ports::StoreError;
use serde_json::{json, Map, Value};
use tokio_postgres::types::Json;
use uuid::Uuid;

use crate::error::{corrupt_row, query_error};
use crate::rows::{labels_from_json, labels_to_json};
use crate::tx::TenantTx;

/// The tenant's membership lock (keys of other tenants may collide: they then only wait for
/// each other).
const MEMBERSHIP_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('dynamic_groups:' || $1, 0))";

/// How many dynamic groups the tenant has, but `$2`.
const COUNT_DYNAMIC: &str =
    "SELECT count(*) FROM device_groups WHERE tenant_id = $1 AND filter IS NOT NULL AND id <> $2";

/// Device `$2` put in every dynamic group of tenant `$1` whose filter selects it, and out of
/// every other dynamic group.
const REFRESH_DEVICE: &str = "WITH d AS ( \
         SELECT site_id, device_type, status, labels FROM devices WHERE tenant_id = $1 AND id = $2), \
     wanted AS ( \
         SELECT g.id FROM device_groups g, d WHERE g.tenant_id = $1 AND g.filter IS NOT NULL \
           AND group_filter_matches(g.filter, d.site_id, d.device_type, d.status, d.labels)), \
     dropped AS ( \
         DELETE FROM device_group_members m USING device_groups g \
         WHERE m.tenant_id = $1 AND m.device_id = $2 AND g.tenant_id = $1 AND g.id = m.group_id \
           AND g.filter IS NOT NULL AND m.group_id NOT IN (SELECT id FROM wanted)) \
     INSERT INTO device_group_members (tenant_id, group_id, device_id) \
     SELECT $1, id, $2 FROM wanted ORDER BY id ON CONFLICT DO NOTHING";

/// Group `$2` of tenant `$1` holding exactly the devices its filter `$3` selects.
const REFRESH_GROUP: &str = "WITH wanted AS ( \
         SELECT d.id FROM devices d WHERE d.tenant_id = $1 \
           AND group_filter_matches($3::jsonb, d.site_id, d.device_type, d.status, d.labels)), \
     dropped AS ( \
         DELETE FROM device_group_members m WHERE m.tenant_id = $1 AND m.group_id = $2 \
           AND m.device_id NOT IN (SELECT id FROM wanted)) \
     INSERT INTO device_group_members (tenant_id, group_id, device_id) \
     SELECT $1, $2, id FROM wanted ORDER BY id ON CONFLICT DO NOTHING";

/// Sets (or, with NULL, clears) group `$2`'s filter.
const SET_FILTER: &str = "UPDATE device_groups SET filter = $3 WHERE tenant_id = $1 AND id = $2";

/// Devices `d` a filter `$2` selects (in statements bound to tenant `$1`).
pub(crate) const SELECTED: &str = "d.tenant_id = $1 \
     AND group_filter_matches($2::jsonb, d.site_id, d.device_type, d.status, d.labels)";

/// Takes the tenant's membership lock until the transaction ends (see the module's docs).
pub(crate) async fn lock(tx: &TenantTx, tenant: &TenantId) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(MEMBERSHIP_LOCK)
        .await
        .map_err(query_error)?;
    tx.execute(&statement, &[&tenant.as_str()])
        .await
        .map_err(query_error)?;
    Ok(())
}

/// Whether the tenant may have one more dynamic group than it has besides group `id` (at most
/// [`domain::membership::DYNAMIC_GROUPS_MAX`]). The caller holds [`lock`].
pub(crate) async fn room_for_dynamic(
    tx: &TenantTx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<bool, StoreError> {
    let statement = tx
        .prepare_cached(COUNT_DYNAMIC)
        .await
        .map_err(query_error)?;
    let others: i64 = tx
        .query_one(&statement, &[&tenant.as_str(), &id])
        .await
        .map_err(query_error)?
        .get(0);
    Ok(usize::try_from(others).unwrap_or(usize::MAX) < domain::membership::DYNAMIC_GROUPS_MAX)
}

/// Puts device `id`, as now written, in the dynamic groups that select it and out of the
/// others. The caller holds [`lock`].
pub(crate) async fn refresh_device(
    tx: &TenantTx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(REFRESH_DEVICE)
        .await
        .map_err(query_error)?;
    tx.execute(&statement, &[&tenant.as_str(), &id])
        .await
        .map_err(query_error)?;
    Ok(())
}

/// Stores `filter` on group `id` (`None`: the group becomes static, keeping its members) and,
/// for a filter, makes the members exactly the devices it selects now. The caller holds
/// [`lock`].
pub(crate) async fn set_filter(
    tx: &TenantTx,
    tenant: &TenantId,
    id: Uuid,
    filter: Option<&GroupFilter>,
) -> Result<(), StoreError> {
    let stored = filter.map(|f| Json(filter_to_json(f)));
    let set = tx.prepare_cached(SET_FILTER).await.map_err(query_error)?;
    tx.execute(&set, &[&tenant.as_str(), &id, &stored])
        .await
        .map_err(query_error)?;
    if let Some(stored) = stored {
        let refresh = tx
            .prepare_cached(REFRESH_GROUP)
            .await
            .map_err(query_error)?;
        tx.execute(&refresh, &[&tenant.as_str(), &id, &stored])
            .await
            .map_err(query_error)?;
    }
    Ok(())
}

/// The stored shape of a filter: `{"all": true}`, or the conditions given and no other key.
pub(crate) fn filter_to_json(filter: &GroupFilter) -> Value {
    let GroupFilter::Matching(c) = filter else {
        return json!({"all": true});
    };
    let scope =
        |values: &[ScopeLabel]| json!(values.iter().map(ScopeLabel::as_str).collect::<Vec<_>>());
    let mut stored = Map::new();
    if let Some(sites) = c.site_ids() {
        stored.insert("site_ids".to_owned(), scope(sites));
    }
    if let Some(types) = c.device_types() {
        stored.insert("device_types".to_owned(), scope(types));
    }
    if let Some(labels) = c.labels() {
        stored.insert("labels".to_owned(), labels_to_json(labels));
    }
    if let Some(statuses) = c.statuses() {
        let words: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        stored.insert("statuses".to_owned(), json!(words));
    }
    Value::Object(stored)
}

/// A filter from its stored shape (see [`filter_to_json`]).
pub(crate) fn filter_from_json(value: &Value) -> Result<GroupFilter, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("group filter", reason);
    if value.get("all") == Some(&Value::Bool(true)) {
        return Ok(GroupFilter::All);
    }
    let strings = |key: &str| -> Result<Option<Vec<String>>, StoreError> {
        match value.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| corrupt(&format!("non-string in {key}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(corrupt(&format!("{key} is {other}"))),
        }
    };
    let scope = |key: &str| -> Result<Option<Vec<ScopeLabel>>, StoreError> {
        strings(key)?
            .map(|v| ScopeLabel::parse_list(&v))
            .transpose()
            .map_err(|e| corrupt(&e))
    };
    let statuses = strings("statuses")?
        .map(|words| {
            words
                .iter()
                .map(|w| DeviceStatus::parse(w))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|e| corrupt(&e))?;
    let labels = value.get("labels").map(labels_from_json).transpose()?;
    MemberConditions::new(scope("site_ids")?, scope("device_types")?, labels, statuses)
        .map(GroupFilter::Matching)
        .map_err(|e| corrupt(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Labels;

    #[test]
    fn a_filter_reads_back_as_it_was_stored() {
        let filter = GroupFilter::Matching(
            MemberConditions::new(
                Some(vec![ScopeLabel::parse("s1").unwrap()]),
                None,
                Some(Labels::parse([("floor", "3")]).unwrap()),
                Some(vec![DeviceStatus::Error]),
            )
            .unwrap(),
        );
        let stored = filter_to_json(&filter);
        assert_eq!(
            stored,
            json!({"site_ids": ["s1"], "labels": {"floor": "3"}, "statuses": ["error"]})
        );
        assert_eq!(filter_from_json(&stored).unwrap(), filter);
        assert_eq!(filter_to_json(&GroupFilter::All), json!({"all": true}));
        assert_eq!(
            filter_from_json(&json!({"all": true})).unwrap(),
            GroupFilter::All
        );
        assert!(filter_from_json(&json!({})).is_err());
    }
}
