//! Row decoders and the column lists they read: what a stored device, group or window looks
//! like to the domain. A corrupt value is an error, never a panic.

use domain::{
    Actor, AlertStatus, Description, Device, DeviceGroup, DeviceName, DeviceSpec, DeviceState,
    DeviceStatus, GroupName, GroupSlug, Labels, MaintenanceWindow, ReadingPoint, Recurrence,
    RecurrenceParts, ScopeLabel, StaleAfter, Thresholds, Timestamp, Unit, WindowDefinition,
    WindowName, WindowSchedule, WindowSlug,
};
use ports::StoreError;
use std::collections::BTreeMap;

use serde_json::Value;
use tokio_postgres::types::Json;
use tokio_postgres::Row;

use crate::error::{corrupt_row, query_error};

/// The columns every group read returns, in the order [`group_from_row`] expects.
macro_rules! group_columns {
    ($g:literal) => {
        concat!(
            $g,
            ".id, ",
            $g,
            ".group_id, ",
            $g,
            ".name, ",
            $g,
            ".description, ",
            $g,
            ".created_at, ",
            $g,
            ".updated_at, ",
            $g,
            ".created_by, ",
            $g,
            ".updated_by, ",
            $g,
            ".filter, ",
            $g,
            ".parent_id, ",
            "(SELECT coalesce(sum(c.members), 0)::bigint FROM group_member_counts c WHERE c.tenant_id = ",
            $g,
            ".tenant_id AND c.group_id = ",
            $g,
            ".id) AS member_count"
        )
    };
}
pub(crate) use group_columns;

/// A group from a row of [`group_columns!`].
pub(crate) fn group_from_row(row: &Row) -> Result<DeviceGroup, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("group", reason);
    let slug: String = row.try_get("group_id").map_err(query_error)?;
    let name: String = row.try_get("name").map_err(query_error)?;
    let description: Option<String> = row.try_get("description").map_err(query_error)?;
    let member_count: i64 = row.try_get("member_count").map_err(query_error)?;
    let filter: Option<Value> = row.try_get("filter").map_err(query_error)?;
    Ok(DeviceGroup {
        id: row.try_get("id").map_err(query_error)?,
        group_id: GroupSlug::parse(&slug).map_err(|e| corrupt(&e))?,
        name: GroupName::parse(&name).map_err(|e| corrupt(&e))?,
        description: description
            .as_deref()
            .map(Description::parse)
            .transpose()
            .map_err(|e| corrupt(&e))?,
        filter: filter
            .as_ref()
            .map(crate::membership::filter_from_json)
            .transpose()?,
        member_count: u64::try_from(member_count).map_err(|e| corrupt(&e))?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
        created_by: actor(row, "created_by")?,
        updated_by: actor(row, "updated_by")?,
        parent_id: row.try_get("parent_id").map_err(query_error)?,
    })
}

/// Device columns, qualified by the alias `d`, then its kept state from the latest-reading row
/// `l` (joined with [`DEVICE_STATE_JOIN`]), in the order [`device_from_row`] reads them.
pub(crate) const DEVICE_COLUMNS: &str =
    "d.id, d.name, d.unit, d.status, d.site_id, d.device_type, \
     d.threshold_critical_lower, d.threshold_warning_lower, d.threshold_warning_upper, \
     d.threshold_critical_upper, d.created_at, d.updated_at, d.created_by, d.updated_by, \
     d.stale_after_s, l.ts AS state_ts, l.value AS state_value, l.alert_status AS state_status, \
     coalesce(l.since, l.ts) AS state_since, d.labels";

/// How many columns [`DEVICE_COLUMNS`] holds.
pub(crate) const DEVICE_COLUMN_COUNT: usize = column::LABELS + 1;

/// Joins a device `d` to its kept state `l` (none before its first reading).
pub(crate) const DEVICE_STATE_JOIN: &str =
    "LEFT JOIN latest_readings l ON l.tenant_id = d.tenant_id AND l.device_id = d.id";

/// [`DEVICE_COLUMNS`] for a statement that returns a device row without its state (an
/// insert's or update's `RETURNING`): the state columns are NULL (the default state).
pub(crate) const DEVICE_COLUMNS_NO_STATE: &str =
    "d.id, d.name, d.unit, d.status, d.site_id, d.device_type, \
     d.threshold_critical_lower, d.threshold_warning_lower, d.threshold_warning_upper, \
     d.threshold_critical_upper, d.created_at, d.updated_at, d.created_by, d.updated_by, \
     d.stale_after_s, NULL::timestamptz AS state_ts, NULL::float8 AS state_value, \
     NULL::text AS state_status, NULL::timestamptz AS state_since, d.labels";

/// Positions of [`DEVICE_COLUMNS`] in a row that starts with them: a group's detail decodes
/// thousands of rows, and finding a column by name is a scan of the row's column names.
mod column {
    pub const ID: usize = 0;
    pub const NAME: usize = 1;
    pub const UNIT: usize = 2;
    pub const STATUS: usize = 3;
    pub const SITE_ID: usize = 4;
    pub const DEVICE_TYPE: usize = 5;
    pub const CRITICAL_LOWER: usize = 6;
    pub const WARNING_LOWER: usize = 7;
    pub const WARNING_UPPER: usize = 8;
    pub const CRITICAL_UPPER: usize = 9;
    pub const CREATED_AT: usize = 10;
    pub const UPDATED_AT: usize = 11;
    pub const CREATED_BY: usize = 12;
    pub const UPDATED_BY: usize = 13;
    pub const STALE_AFTER: usize = 14;
    /// The first of the four columns [`super::state_from_row`] reads.
    pub const STATE_TS: usize = 15;
    /// After the four state columns.
    pub const LABELS: usize = STATE_TS + 4;
}

/// A device from a row whose first columns are [`DEVICE_COLUMNS`].
pub(crate) fn device_from_row(row: &Row) -> Result<Device, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("device", reason);
    let text =
        |index: usize| -> Result<&str, StoreError> { row.try_get(index).map_err(query_error) };
    let label = |index: usize| -> Result<Option<ScopeLabel>, StoreError> {
        let value: Option<&str> = row.try_get(index).map_err(query_error)?;
        value
            .map(ScopeLabel::parse)
            .transpose()
            .map_err(|e| corrupt(&e))
    };
    let bound = |index: usize| -> Result<Option<f64>, StoreError> {
        row.try_get(index).map_err(query_error)
    };
    Ok(Device {
        id: row.try_get(column::ID).map_err(query_error)?,
        spec: DeviceSpec {
            name: DeviceName::parse(text(column::NAME)?).map_err(|e| corrupt(&e))?,
            unit: Unit::parse(text(column::UNIT)?).map_err(|e| corrupt(&e))?,
            status: DeviceStatus::parse(text(column::STATUS)?).map_err(|e| corrupt(&e))?,
            site_id: label(column::SITE_ID)?,
            device_type: label(column::DEVICE_TYPE)?,
            thresholds: Thresholds::new(
                bound(column::CRITICAL_LOWER)?,
                bound(column::WARNING_LOWER)?,
                bound(column::WARNING_UPPER)?,
                bound(column::CRITICAL_UPPER)?,
            )
            .map_err(|e| corrupt(&e))?,
            stale_after: row
                .try_get::<_, Option<i32>>(column::STALE_AFTER)
                .map_err(query_error)?
                .map(|s| StaleAfter::from_secs(i64::from(s)))
                .transpose()
                .map_err(|e| corrupt(&e))?,
            labels: Labels::parse(
                row.try_get::<_, Json<BTreeMap<String, String>>>(column::LABELS)
                    .map_err(|e| corrupt(&e))?
                    .0,
            )
            .map_err(|e| corrupt(&e))?,
        },
        state: state_from_row(row, column::STATE_TS)?,
        created_at: timestamp(row, column::CREATED_AT)?,
        updated_at: timestamp(row, column::UPDATED_AT)?,
        created_by: actor(row, column::CREATED_BY)?,
        updated_by: actor(row, column::UPDATED_BY)?,
    })
}

/// A device state from four columns from `first` on: the latest reading's instant and value,
/// the status and since when it holds; all NULL (no reading) is the default state.
pub(crate) fn state_from_row(row: &Row, first: usize) -> Result<DeviceState, StoreError> {
    let ts: Option<time::OffsetDateTime> = row.try_get(first).map_err(query_error)?;
    if ts.is_none() {
        return Ok(DeviceState::default());
    }
    let status: &str = row.try_get(first + 2).map_err(query_error)?;
    Ok(DeviceState {
        alert_status: parse_status(status)?,
        since: Some(timestamp(row, first + 3)?),
        last_reading: Some(ReadingPoint {
            timestamp: timestamp(row, first)?,
            value: row.try_get(first + 1).map_err(query_error)?,
        }),
    })
}

/// A stored alert status.
pub(crate) fn parse_status(value: &str) -> Result<AlertStatus, StoreError> {
    match value {
        "normal" => Ok(AlertStatus::Normal),
        "warning" => Ok(AlertStatus::Warning),
        "critical" => Ok(AlertStatus::Critical),
        other => Err(corrupt_row("alert status", other)),
    }
}

/// Window columns, qualified by the alias `w`.
pub(crate) const WINDOW_COLUMNS: &str =
    "w.window_id, w.name, w.starts_at, w.ends_at, w.recurring, w.site_ids, \
     w.device_types, w.group_ids, w.labels, w.enabled, w.created_at, w.updated_at, w.created_by, w.updated_by";

/// A recurrence from its stored shape (written by `windows::recurrence_to_json`).
fn recurrence_from_json(value: &Value) -> Result<Recurrence, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("recurring", reason);
    let number = |key: &str| value.get(key).and_then(Value::as_i64);
    let list = |key: &str| -> Result<Option<Vec<i64>>, StoreError> {
        match value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|d| {
                    d.as_i64()
                        .ok_or_else(|| corrupt(&format!("non-integer in {key}")))
                })
                .collect::<Result<Vec<i64>, _>>()
                .map(Some),
            Some(other) => Err(corrupt(&format!("{key} is {other}"))),
        }
    };
    let (dow, days_of_month) = (list("dow")?, list("days_of_month")?);
    Recurrence::from_parts(RecurrenceParts {
        dow: dow.as_deref(),
        days_of_month: days_of_month.as_deref(),
        start_hour: number("start_hour").ok_or_else(|| corrupt(&"no start_hour"))?,
        start_minute: number("start_minute"),
        end_hour: number("end_hour").ok_or_else(|| corrupt(&"no end_hour"))?,
        end_minute: number("end_minute"),
        timezone: value.get("timezone").and_then(Value::as_str),
    })
    .map_err(|e| corrupt(&e))
}

/// Labels from a JSON object of strings (a window's `labels`, a filter's).
pub(crate) fn labels_from_json(value: &Value) -> Result<Labels, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("labels", reason);
    let Value::Object(pairs) = value else {
        return Err(corrupt(&format!("not an object: {value}")));
    };
    let pairs = pairs
        .iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|v| (k.clone(), v.to_owned()))
                .ok_or_else(|| corrupt(&format!("{k} is not a string")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Labels::parse(pairs).map_err(|e| corrupt(&e))
}

/// Labels as the JSON object of strings they are stored as.
pub(crate) fn labels_to_json(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect(),
    )
}

/// A window from a row of [`WINDOW_COLUMNS`].
pub(crate) fn window_from_row(row: &Row) -> Result<MaintenanceWindow, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("window", reason);
    let slug: String = row.try_get("window_id").map_err(query_error)?;
    let name: String = row.try_get("name").map_err(query_error)?;
    let recurring: Option<Value> = row.try_get("recurring").map_err(query_error)?;
    let scope = |column: &str| -> Result<Option<Vec<ScopeLabel>>, StoreError> {
        let values: Option<Vec<String>> = row.try_get(column).map_err(query_error)?;
        values
            .map(|v| ScopeLabel::parse_list(&v))
            .transpose()
            .map_err(|e| corrupt(&e))
    };
    let group_ids: Option<Vec<String>> = row.try_get("group_ids").map_err(query_error)?;
    let labels: Option<Value> = row.try_get("labels").map_err(query_error)?;
    let ends_at = row
        .try_get::<_, Option<time::OffsetDateTime>>("ends_at")
        .map_err(query_error)?
        .map(|_| timestamp(row, "ends_at"))
        .transpose()?;
    Ok(MaintenanceWindow {
        window_id: WindowSlug::parse(&slug).map_err(|e| corrupt(&e))?,
        definition: WindowDefinition {
            name: WindowName::parse(&name).map_err(|e| corrupt(&e))?,
            schedule: WindowSchedule::new(timestamp(row, "starts_at")?, ends_at)
                .map_err(|e| corrupt(&e))?,
            recurring: recurring.as_ref().map(recurrence_from_json).transpose()?,
            site_ids: scope("site_ids")?,
            device_types: scope("device_types")?,
            group_ids: group_ids
                .map(|ids| {
                    ids.iter()
                        .map(|id| GroupSlug::parse(id))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(|e| corrupt(&e))?,
            labels: labels.as_ref().map(labels_from_json).transpose()?,
            enabled: row.try_get("enabled").map_err(query_error)?,
        },
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
        created_by: actor(row, "created_by")?,
        updated_by: actor(row, "updated_by")?,
    })
}

/// The actor stored in `column`.
pub(crate) fn actor<I>(row: &Row, column: I) -> Result<Actor, StoreError>
where
    I: tokio_postgres::row::RowIndex + std::fmt::Display,
{
    let value: &str = row.try_get(&column).map_err(query_error)?;
    Actor::parse(value).map_err(|e| corrupt_row(&format!("column {column}"), e))
}

/// The instant stored in `column`.
pub(crate) fn timestamp<I>(row: &Row, column: I) -> Result<Timestamp, StoreError>
where
    I: tokio_postgres::row::RowIndex + std::fmt::Display,
{
    let value: time::OffsetDateTime = row.try_get(&column).map_err(query_error)?;
    Timestamp::new(value).map_err(|e| corrupt_row(&format!("column {column}"), e))
}

#[cfg(test)]
mod tests {
    use super::{column, DEVICE_COLUMNS};

    #[test]
    fn the_column_positions_follow_the_column_list() {
        let names: Vec<&str> = DEVICE_COLUMNS
            .split(',')
            .map(|c| c.trim().trim_start_matches("d."))
            .collect();
        let positions = [
            ("id", column::ID),
            ("name", column::NAME),
            ("unit", column::UNIT),
            ("status", column::STATUS),
            ("site_id", column::SITE_ID),
            ("device_type", column::DEVICE_TYPE),
            ("threshold_critical_lower", column::CRITICAL_LOWER),
            ("threshold_warning_lower", column::WARNING_LOWER),
            ("threshold_warning_upper", column::WARNING_UPPER),
            ("threshold_critical_upper", column::CRITICAL_UPPER),
            ("created_at", column::CREATED_AT),
            ("updated_at", column::UPDATED_AT),
            ("created_by", column::CREATED_BY),
            ("updated_by", column::UPDATED_BY),
            ("stale_after_s", column::STALE_AFTER),
            ("l.ts AS state_ts", column::STATE_TS),
            ("l.value AS state_value", column::STATE_TS + 1),
            ("l.alert_status AS state_status", column::STATE_TS + 2),
            ("coalesce(l.since", column::STATE_TS + 3),
            // One further along in the split: the coalesce's comma.
            ("labels", column::LABELS + 1),
        ];
        assert_eq!(
            names.len(),
            positions.len() + 1,
            "coalesce(a, b) holds a comma"
        );
        for (name, position) in positions {
            assert_eq!(names[position], name);
        }
    }
}
