//! Wire shapes of the customer API's maintenance windows (seed 001),
//! `/customer/maintenance-windows`, and their conversion to and from the domain.

use domain::{
    GroupSlug, Labels, MaintenanceWindow, Recurrence, RecurrenceParts, ScopeLabel, Timestamp,
    WindowChanges, WindowDefinition, WindowName, WindowSchedule, WindowStatus,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::devices::{labels_at, DeviceView};
use super::params::{instant, not_null};
use crate::error::ApiError;
use crate::json::present;

/// A daily slot `[start, end)` in local time of `timezone`, on the days that match both `dow`
/// and `days_of_month`. An end not after the start runs past midnight; such a slot belongs to
/// the day it starts on. Keys left out take their defaults and are left out of answers too.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recurring {
    /// Days of the week, 0 = Sunday … 6 = Saturday; absent means every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schemas::days_of_week, example = json!([1, 2, 3, 4, 5]))]
    pub dow: Option<Vec<i64>>,
    /// Days of the month, 1 to 31, or -1 to -31 counting from the month's end (-1 = last day);
    /// absent means every day. With `dow`, both must hold (`dow: [1]` with 1..7 = first Monday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schemas::days_of_month, example = json!([1, 2, 3, 4, 5, 6, 7]))]
    pub days_of_month: Option<Vec<i64>>,
    /// Hour the slot starts, 0 to 23, inclusive.
    #[schema(minimum = 0, maximum = 23, example = 2)]
    pub start_hour: i64,
    /// Minute the slot starts, 0 to 59. Default 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schema(minimum = 0, maximum = 59)]
    pub start_minute: Option<i64>,
    /// Hour the slot ends, 1 to 24, exclusive; or 0 with `end_minute` 1 to 59 for a slot that
    /// ends in the hour after midnight (22:00 to 00:30 is `"end_hour": 0, "end_minute": 30`).
    #[schema(minimum = 0, maximum = 24, example = 4)]
    pub end_hour: i64,
    /// Minute the slot ends, 0 to 59 (0 when `end_hour` is 24; 1 to 59 when it is 0). Default 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schema(minimum = 0, maximum = 59)]
    pub end_minute: Option<i64>,
    /// IANA time zone the hours are read in, such as `Europe/Berlin`. Default `UTC`.
    #[serde(default, skip_serializing_if = "is_utc")]
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
}

#[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)]
fn is_zero(value: &Option<i64>) -> bool {
    value.is_none_or(|v| v == 0)
}

#[allow(clippy::ref_option)]
fn is_utc(value: &Option<String>) -> bool {
    value
        .as_deref()
        .is_none_or(|v| v == domain::recurrence::DEFAULT_TIMEZONE)
}

impl From<&Recurrence> for Recurring {
    fn from(r: &Recurrence) -> Self {
        Self {
            dow: r
                .days()
                .map(|days| days.iter().map(|d| i64::from(*d)).collect()),
            days_of_month: r
                .days_of_month()
                .map(|days| days.iter().map(|d| i64::from(*d)).collect()),
            start_hour: i64::from(r.start_hour()),
            start_minute: Some(i64::from(r.start_minute())),
            end_hour: i64::from(r.end_hour()),
            end_minute: Some(i64::from(r.end_minute())),
            timezone: Some(r.timezone().to_owned()),
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

/// Body of `POST /customer/maintenance-windows`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MaintenanceWindowCreate)]
pub struct MaintenanceWindowCreateBody {
    /// Display name, 1 to 128 characters.
    #[schema(
        example = "Nightly patching",
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// When the window opens (RFC 3339; a time without offset is taken as UTC).
    #[schema(format = DateTime, example = "2025-10-20T22:00:00Z")]
    pub starts_at: String,
    /// When the window closes (exclusive); later than `starts_at`. Absent or null: open-ended.
    #[schema(format = DateTime)]
    pub ends_at: Option<String>,
    /// Restricts the window to a daily slot.
    pub recurring: Option<Recurring>,
    /// Sites covered, at most 1,000; null covers every site.
    #[schema(schema_with = crate::schemas::label_list)]
    pub site_ids: Option<Vec<String>>,
    /// Device types covered, at most 1,000; null covers every type.
    #[schema(schema_with = crate::schemas::label_list)]
    pub device_types: Option<Vec<String>>,
    /// Groups (customer slugs) to narrow the scope to their members, at most 1,000; null does
    /// not narrow.
    #[schema(schema_with = crate::schemas::slug_list)]
    pub group_ids: Option<Vec<String>>,
    /// Labels a device must all carry to be covered (1 to 32 pairs, as device labels); null
    /// does not narrow.
    #[schema(schema_with = crate::schemas::window_labels)]
    pub labels: Option<serde_json::Value>,
    /// Whether the window acts at all. Default true.
    #[serde(default = "enabled_by_default")]
    #[schema(default = true)]
    pub enabled: bool,
}

/// Body of `PATCH /customer/maintenance-windows/{window_id}`. Absent fields stay as they are;
/// `null` clears `ends_at`, `recurring`, `site_ids`, `device_types`, `group_ids` and `labels`, and is refused for the
/// others. The result must still be a valid window.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MaintenanceWindowUpdate)]
pub struct MaintenanceWindowUpdateBody {
    /// New name, 1 to 128 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: Option<Option<String>>,
    /// New start (RFC 3339).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: Option<Option<String>>,
    /// New end (RFC 3339), or null for open-ended.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<Option<String>>,
    /// New daily slot, or null for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Recurring>)]
    pub recurring: Option<Option<Recurring>>,
    /// New site list (at most 1,000), or null for every site.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::label_list)]
    pub site_ids: Option<Option<Vec<String>>>,
    /// New device-type list (at most 1,000), or null for every type.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::label_list)]
    pub device_types: Option<Option<Vec<String>>>,
    /// New group list (at most 1,000), or null to stop narrowing by group.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::slug_list)]
    pub group_ids: Option<Option<Vec<String>>>,
    /// New labels a device must all carry, or null to stop narrowing by label.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::window_labels_update)]
    pub labels: Option<Option<serde_json::Value>>,
    /// Turn the window on or off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub enabled: Option<Option<bool>>,
}

/// A maintenance window.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceWindowView {
    /// The window's slug (`mw-` and 8 hex digits).
    #[schema(example = "mw-1a2b3c4d")]
    pub window_id: String,
    /// Display name.
    pub name: String,
    /// When the window opens (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// When the window closes (exclusive), or null when open-ended.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub ends_at: Option<OffsetDateTime>,
    /// The daily slot, or null.
    #[schema(required = true)]
    pub recurring: Option<Recurring>,
    /// Sites covered, or null for all.
    #[schema(required = true)]
    pub site_ids: Option<Vec<String>>,
    /// Device types covered, or null for all.
    #[schema(required = true)]
    pub device_types: Option<Vec<String>>,
    /// Groups whose members alone the window covers, or null.
    #[schema(required = true)]
    pub group_ids: Option<Vec<String>>,
    /// Labels a device must all carry to be covered, or null.
    #[schema(required = true)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// Whether the window acts.
    pub enabled: bool,
    /// Where the window stands now: disabled, expired, active or scheduled.
    pub status: WindowStatusDto,
    /// When the window was created (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the window last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Subject (`sub` of the token) that created it.
    pub created_by: String,
    /// Subject (`sub` of the token) that changed it last.
    pub updated_by: String,
}

/// `GET /customer/maintenance-windows`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MaintenanceWindowList)]
pub struct MaintenanceWindowListView {
    /// The tenant's windows, latest start first.
    pub windows: Vec<MaintenanceWindowView>,
    /// Number of windows in `windows`.
    pub total: u64,
}

/// Answer of `DELETE /customer/maintenance-windows/{window_id}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MaintenanceWindowDeleted)]
pub struct MaintenanceWindowDeletedView {
    /// The deleted window's slug.
    pub window_id: String,
    /// Always true.
    pub deleted: bool,
}

fn labels(values: Option<&Vec<ScopeLabel>>) -> Option<Vec<String>> {
    values.map(|v| v.iter().map(|l| l.as_str().to_owned()).collect())
}

impl MaintenanceWindowView {
    /// The window as seen at `now` (its `status` depends on it).
    #[must_use]
    pub fn at(w: &MaintenanceWindow, now: Timestamp) -> Self {
        let d = &w.definition;
        Self {
            window_id: w.window_id.as_str().to_owned(),
            name: d.name.as_str().to_owned(),
            starts_at: d.schedule.starts_at().get(),
            ends_at: d.schedule.ends_at().map(Timestamp::get),
            recurring: d.recurring.as_ref().map(Recurring::from),
            site_ids: labels(d.site_ids.as_ref()),
            device_types: labels(d.device_types.as_ref()),
            group_ids: d
                .group_ids
                .as_ref()
                .map(|ids| ids.iter().map(|g| g.as_str().to_owned()).collect()),
            labels: d.labels.as_ref().map(|l| {
                l.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            }),
            enabled: d.enabled,
            status: d.status(now).into(),
            created_at: w.created_at.get(),
            updated_at: w.updated_at.get(),
            created_by: w.created_by.as_str().to_owned(),
            updated_by: w.updated_by.as_str().to_owned(),
        }
    }
}

impl From<&MaintenanceWindow> for MaintenanceWindowView {
    fn from(w: &MaintenanceWindow) -> Self {
        Self::at(w, Timestamp::now())
    }
}

/// Where a window stands now.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schema(as = WindowStatus)]
pub enum WindowStatusDto {
    /// Not enabled.
    Disabled,
    /// Its `ends_at` has passed.
    Expired,
    /// It covers the current instant.
    Active,
    /// Enabled and not ended, but not covering the current instant.
    Scheduled,
}

impl From<WindowStatus> for WindowStatusDto {
    fn from(s: WindowStatus) -> Self {
        match s {
            WindowStatus::Disabled => Self::Disabled,
            WindowStatus::Expired => Self::Expired,
            WindowStatus::Active => Self::Active,
            WindowStatus::Scheduled => Self::Scheduled,
        }
    }
}

fn recurrence(r: &Recurring) -> Result<Recurrence, ApiError> {
    Recurrence::from_parts(RecurrenceParts {
        dow: r.dow.as_deref(),
        days_of_month: r.days_of_month.as_deref(),
        start_hour: r.start_hour,
        start_minute: r.start_minute,
        end_hour: r.end_hour,
        end_minute: r.end_minute,
        timezone: r.timezone.as_deref(),
    })
    .map_err(|e| ApiError::invalid(&e.field(), e))
}

fn group_slugs(values: Option<&[String]>) -> Result<Option<Vec<GroupSlug>>, ApiError> {
    let limit = domain::window::SCOPE_LIST_MAX;
    if let Some(ids) = values.filter(|ids| ids.len() > limit) {
        return Err(ApiError::invalid(
            "group_ids",
            format!("must hold at most {limit} entries, got {}", ids.len()),
        ));
    }
    values
        .map(|ids| {
            ids.iter()
                .enumerate()
                .map(|(i, id)| {
                    GroupSlug::parse(id)
                        .map_err(|e| ApiError::invalid(&format!("group_ids[{i}]"), e))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
}

/// A window's `labels` as sent: as device labels, and not empty (null says "no condition").
fn window_labels(value: serde_json::Value) -> Result<Labels, ApiError> {
    let labels = labels_at("labels", Some(value))?;
    if labels.is_empty() {
        return Err(ApiError::invalid(
            "labels",
            "must hold at least one label (null: no condition on labels)",
        ));
    }
    Ok(labels)
}

/// A list of sites or types as sent at `field`, naming the entry at fault.
pub(crate) fn scope(
    field: &str,
    values: Option<&[String]>,
) -> Result<Option<Vec<ScopeLabel>>, ApiError> {
    values
        .map(|v| {
            ScopeLabel::parse_list(v).map_err(|e| match e {
                domain::window::ScopeListError::Entry { index, reason } => {
                    ApiError::invalid(&format!("{field}[{index}]"), reason)
                }
                too_many @ domain::window::ScopeListError::TooMany(_) => {
                    ApiError::invalid(field, too_many)
                }
            })
        })
        .transpose()
}

impl MaintenanceWindowCreateBody {
    /// # Errors
    /// 422 naming the first invalid field.
    pub fn try_into_domain(self) -> Result<WindowDefinition, ApiError> {
        let starts_at = instant("starts_at", &self.starts_at)?;
        let ends_at = self
            .ends_at
            .as_deref()
            .map(|v| instant("ends_at", v))
            .transpose()?;
        Ok(WindowDefinition {
            labels: self.labels.map(window_labels).transpose()?,
            name: WindowName::parse(&self.name).map_err(|e| ApiError::invalid("name", e))?,
            schedule: WindowSchedule::new(starts_at, ends_at)
                .map_err(|e| ApiError::invalid(&e.field(), e))?,
            recurring: self.recurring.as_ref().map(recurrence).transpose()?,
            site_ids: scope("site_ids", self.site_ids.as_deref())?,
            device_types: scope("device_types", self.device_types.as_deref())?,
            group_ids: group_slugs(self.group_ids.as_deref())?,
            enabled: self.enabled,
        })
    }
}

impl MaintenanceWindowUpdateBody {
    /// # Errors
    /// 400 `No fields to update` for an empty body; 422 naming the first invalid field.
    pub fn try_into_domain(self) -> Result<WindowChanges, ApiError> {
        let changes = WindowChanges {
            labels: self
                .labels
                .map(|l| l.map(window_labels).transpose())
                .transpose()?,
            name: not_null("name", self.name)?
                .map(|n| WindowName::parse(&n).map_err(|e| ApiError::invalid("name", e)))
                .transpose()?,
            starts_at: not_null("starts_at", self.starts_at)?
                .map(|v| instant("starts_at", &v))
                .transpose()?,
            ends_at: self
                .ends_at
                .map(|v| v.map(|v| instant("ends_at", &v)).transpose())
                .transpose()?,
            recurring: self
                .recurring
                .map(|r| r.as_ref().map(recurrence).transpose())
                .transpose()?,
            site_ids: self
                .site_ids
                .map(|v| scope("site_ids", v.as_deref()))
                .transpose()?,
            device_types: self
                .device_types
                .map(|v| scope("device_types", v.as_deref()))
                .transpose()?,
            group_ids: self
                .group_ids
                .map(|v| group_slugs(v.as_deref()))
                .transpose()?,
            enabled: not_null("enabled", self.enabled)?,
        };
        if changes.is_empty() {
            return Err(ApiError::bad_request("No fields to update"));
        }
        Ok(changes)
    }
}

/// Query of `GET /customer/maintenance-windows`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowListParams {
    /// Only windows with this status now.
    #[param(value_type = Option<WindowStatusDto>)]
    pub status: Option<String>,
}

/// Query of `GET /customer/maintenance-windows/{window_id}/occurrences`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OccurrenceParams {
    /// List occurrences that end after this instant (RFC 3339). Default: now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Most occurrences to return, 1 to 100. Default 10.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// Most occurrences one request lists.
pub const MAX_OCCURRENCES: usize = 100;

impl OccurrenceParams {
    /// # Errors
    /// 422 naming `from` or `limit`.
    pub fn parse(&self, now: Timestamp) -> Result<(Timestamp, usize), ApiError> {
        let from = self
            .from
            .as_deref()
            .map_or(Ok(now), |v| instant("from", v))?;
        let limit = match self.limit.as_deref() {
            None => 10,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_OCCURRENCES).contains(l))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "limit",
                        format!("must be an integer from 1 to {MAX_OCCURRENCES}, got '{raw}'"),
                    )
                })?,
        };
        Ok((from, limit))
    }
}

/// One stretch of time a window applies.
#[derive(Debug, Serialize, ToSchema)]
pub struct OccurrenceView {
    /// When it starts (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// When it ends (exclusive), or null for an open-ended window.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub ends_at: Option<OffsetDateTime>,
}

/// `GET /customer/maintenance-windows/{window_id}/occurrences`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WindowOccurrences)]
pub struct WindowOccurrencesView {
    /// The window's slug.
    pub window_id: String,
    /// Occurrences ending after `from`, in time order; never overlapping.
    pub occurrences: Vec<OccurrenceView>,
}

/// A device in a window's scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowDeviceView {
    /// The device.
    #[serde(flatten)]
    pub device: DeviceView,
    /// Whether the window covers the device now (it is in scope and the window is active).
    pub active_now: bool,
}

/// `GET /customer/maintenance-windows/{window_id}/devices`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WindowDevices)]
pub struct WindowDevicesView {
    /// The window's slug.
    pub window_id: String,
    /// Devices in the window's scope (sites, types, groups), ordered by name.
    pub devices: Vec<WindowDeviceView>,
    /// Number of devices.
    pub total: u64,
}

/// Query of the window writes (`POST` and `PATCH`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRunParams {
    /// `true`: validate and answer what the write would do (the window as it would be, the
    /// devices in its scope, warnings), storing nothing. Default `false`.
    #[param(value_type = Option<bool>)]
    pub dry_run: Option<String>,
}

impl DryRunParams {
    /// # Errors
    /// 422 naming `dry_run` for anything but `true` or `false`.
    pub fn requested(&self) -> Result<bool, ApiError> {
        match self.dry_run.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::invalid("dry_run", "must be true or false")),
        }
    }
}

/// Answer of a window write with `dry_run=true`: nothing was stored.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MaintenanceWindowDryRun)]
pub struct WindowDryRunView {
    /// The window as the write would make it (a create's `window_id` is only a sample: the
    /// real create draws its own).
    pub window: MaintenanceWindowView,
    /// How many devices its scope (sites, types, groups) holds now, whatever the time.
    pub devices_in_scope: u64,
    /// The first 100 of them, by name.
    pub devices: Vec<DeviceView>,
    /// `covers no device`, `covers every device of the tenant`, and one `names a group that
    /// does not exist: <slug>` per unknown slug of `group_ids`.
    pub warnings: Vec<String>,
}

/// What a window write answers: the window, or with `dry_run=true` what it would be.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Documents the two answers; handlers build each directly.
pub enum WindowWriteAnswer {
    Window(MaintenanceWindowView),
    DryRun(WindowDryRunView),
}

/// The next stretch of a window that may mute a device.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeviceMaintenanceWindow)]
pub struct DeviceWindowView {
    /// The window as `GET /customer/maintenance-windows/{window_id}` shows it.
    pub window: MaintenanceWindowView,
    /// Whether it mutes the device now.
    pub active_now: bool,
    /// The occurrence under way, else the next one; null when none is to come.
    #[schema(required = true)]
    pub next_occurrence: Option<OccurrenceView>,
}

/// `GET /api/devices/{id}/maintenance`: why the device is, or will be, muted.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeviceMaintenance)]
pub struct DeviceMaintenanceView {
    /// The device.
    pub device_id: uuid::Uuid,
    /// Enabled, unexpired windows whose scope includes the device, latest start first.
    pub windows: Vec<DeviceWindowView>,
}

impl DeviceWindowView {
    /// `c` as seen at `now`.
    #[must_use]
    pub fn at(c: &domain::DeviceCoverage, now: Timestamp) -> Self {
        Self {
            window: MaintenanceWindowView::at(&c.window, now),
            active_now: c.active_now,
            next_occurrence: c.next_occurrence.map(|o| OccurrenceView {
                starts_at: o.starts_at.get(),
                ends_at: o.ends_at.map(Timestamp::get),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::customer_groups::DeviceGroupUpdateBody;

    #[test]
    fn dry_run_is_true_or_false() {
        let params = |v: &str| DryRunParams {
            dry_run: Some(v.to_owned()),
        };
        assert!(params("true").requested().unwrap());
        assert!(!params("false").requested().unwrap());
        assert!(!DryRunParams { dry_run: None }.requested().unwrap());
        assert_eq!(
            params("yes").requested().unwrap_err().detail(),
            "dry_run: must be true or false"
        );
    }

    #[test]
    fn an_empty_window_patch_has_no_fields_to_update() {
        let err = MaintenanceWindowUpdateBody::default()
            .try_into_domain()
            .unwrap_err();
        assert_eq!(err.detail(), "No fields to update");
        assert_eq!(err.status(), actix_web::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn null_is_refused_for_fields_that_cannot_be_cleared() {
        let patch = MaintenanceWindowUpdateBody {
            enabled: Some(None),
            ..Default::default()
        };
        assert_eq!(
            patch.try_into_domain().unwrap_err().detail(),
            "enabled: must not be null"
        );
        let patch = DeviceGroupUpdateBody {
            filter: None,
            name: Some(None),
            ..Default::default()
        };
        assert_eq!(
            patch.try_into_domain().unwrap_err().detail(),
            "name: must not be null"
        );
    }
}
