//! The statements the benchmark's PostgreSQL references run (`scripts/bench/prepare.py`), by
//! name, built from the very consts and functions the adapter runs: `iot-api sql-catalog` prints
//! them, so no script reads SQL out of this crate's source.

use crate::{buckets, devices, groups, keeping, readings, rollups, shared, tx};

/// `(name, statement)` for each statement of the catalog, with the column lists filled in and
/// the parameters left as `$n`. Every one prepares on a migrated database (a test sees to it).
#[must_use]
pub fn sql_catalog() -> Vec<(&'static str, String)> {
    vec![
        ("BIND_TENANT", tx::BIND_TENANT.to_owned()),
        ("REVISION", shared::REVISION.to_owned()),
        ("STATUS_REVISION", shared::STATUS_REVISION.to_owned()),
        ("REVISIONS", shared::REVISIONS.to_owned()),
        ("MEMBERS_LATEST", shared::MEMBERS_LATEST.to_owned()),
        ("CUSTOM_PLANS", groups::CUSTOM_PLANS.to_owned()),
        ("MEMBERS", groups::members_sql()),
        ("WINDOW_MEMBERSHIPS", groups::window_memberships_sql()),
        ("GROUP_BY_ID", groups::GET_BY_ID.to_owned()),
        ("GROUP_READINGS", groups::GROUP_READINGS.to_owned()),
        ("FIND_GROUP", groups::FIND_BY_ID.to_owned()),
        ("GROUP_LIST_PAGE", groups::list_sql()),
        ("GROUP_LIST_COUNT", groups::count_sql()),
        ("LIVE_WINDOWS", shared::live_windows_sql()),
        ("GET_DEVICE", devices::get_sql()),
        ("DEVICE_EXISTS", readings::DEVICE_EXISTS.to_owned()),
        ("DEVICE_READINGS", readings::DEVICE_READINGS.to_owned()),
        ("LOCK_DEVICES", keeping::LOCK_DEVICES_FOR_STATE.to_owned()),
        ("DEVICE_STATES", keeping::device_states_of_sql()),
        ("OPEN_ALERTS", keeping::open_alerts_sql()),
        ("INGEST", readings::INGEST.to_owned()),
        ("KEEP_STATE", keeping::KEEP_STATE.to_owned()),
        ("HOLD_PENDING", readings::HOLD_PENDING.to_owned()),
        ("ROLL_HOUR", rollups::ROLL_HOUR.to_owned()),
        ("DEVICE_BUCKETS", buckets::device_sql(false)),
        ("GROUP_BUCKETS", buckets::group_sql(false)),
        ("GROUP_BUCKETS_RAW", buckets::group_raw_sql()),
    ]
}
