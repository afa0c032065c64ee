//! Wire shapes of the Group API (seed 002), `/api/groups`: groups by UUID with their devices,
//! alert summary and readings, and their conversion to and from the domain.

use domain::{AlertStatus, AlertSummary, DeviceGroup, GroupDetail, GroupName, Timestamp};
use ports::GroupReading;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::devices::{DeviceStateView, DeviceStatusDto};
use super::group_filter::{GroupFilterBody, GroupFilterView};
use crate::error::{ApiError, GroupApiCode};
use crate::json::present;

/// Longest group name the Group API accepts (seed 002: "1-100 chars").
pub const GROUP_API_NAME_MAX: usize = 100;

/// Body of `POST /api/groups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GroupCreate)]
pub struct GroupCreateBody {
    /// Group name, 1 to 100 characters, unique within the tenant.
    #[schema(
        example = "Building A Sensors",
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// Group description, at most 500 characters.
    #[schema(
        example = "All temperature sensors in Building A",
        max_length = 500,
        pattern = r"^[^\u0000]*$"
    )]
    pub description: Option<String>,
    /// Devices to put in the group (repeats are ignored). Default: none.
    #[schema(schema_with = crate::schemas::device_ids)]
    pub device_ids: Option<Vec<String>>,
    /// Makes the group dynamic: its members are the devices the filter selects, now and as
    /// devices change (never together with `device_ids`).
    pub filter: Option<GroupFilterBody>,
    /// The UUID of the group to nest it under (of this tenant; trees are at most 8 levels
    /// deep). Default: none, a top-level group.
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<String>,
}

/// Body of `PUT /api/groups/{group_id}`: every field optional; `device_ids` replaces the whole
/// member list.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GroupUpdate)]
pub struct GroupUpdateBody {
    /// New name, 1 to 100 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: Option<Option<String>>,
    /// New description (at most 500 characters), or null to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\u0000]*$")]
    pub description: Option<Option<String>>,
    /// The new member list, replacing the old one (refused for a dynamic group: 409).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::member_ids)]
    pub device_ids: Option<Option<Vec<String>>>,
    /// A new filter (the members become the devices it selects), or null to make the group
    /// static, keeping the members it has. Never together with `device_ids`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<GroupFilterBody>)]
    pub filter: Option<Option<GroupFilterBody>>,
    /// The UUID of the group to move it under (with its descendants), or null to move it to the
    /// top. Not itself or one of its descendants; the moved subtree must stay within 8 levels.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<String>>,
}

/// A device's alert status from its latest reading.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schema(as = AlertStatus)]
pub enum AlertStatusDto {
    Normal,
    Warning,
    Critical,
}

impl From<AlertStatus> for AlertStatusDto {
    fn from(s: AlertStatus) -> Self {
        match s {
            AlertStatus::Normal => Self::Normal,
            AlertStatus::Warning => Self::Warning,
            AlertStatus::Critical => Self::Critical,
        }
    }
}

/// A member device as the Group API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDeviceView {
    /// Device UUID.
    pub id: Uuid,
    /// Device name.
    pub name: String,
    /// Measurement unit.
    pub unit: String,
    /// Device status (connected/disconnected/error).
    pub status: DeviceStatusDto,
    /// Alert status from the latest reading (normal/warning/critical), maintenance or not.
    pub alert_status: AlertStatusDto,
    /// Whether an active maintenance window covers the device now.
    pub in_maintenance: bool,
    /// The device's kept state (its `alert_status` and `in_maintenance` are the two above).
    pub state: DeviceStateView,
}

/// Count of a group's devices by freshness; the three add up to the number of devices.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FreshnessSummary)]
pub struct FreshnessSummaryView {
    /// Devices whose latest reading is recent enough (or without `stale_after_s`).
    pub fresh: u64,
    /// Devices with `stale_after_s` whose latest reading is older than that.
    pub stale: u64,
    /// Devices without any reading.
    pub no_data: u64,
}

/// Count of a group's devices by alert status; `normal + warning + critical` is the number of
/// devices. Maintenance is counted apart and does not change those three.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertSummaryView {
    /// Devices whose latest reading is within all thresholds, or that have none.
    pub normal: u64,
    /// Devices whose latest reading is beyond a warning threshold but no critical one.
    pub warning: u64,
    /// Devices whose latest reading is beyond a critical threshold.
    pub critical: u64,
    /// Devices covered by an active maintenance window.
    pub in_maintenance: u64,
    /// Devices in maintenance whose status is warning or critical: alerts muted.
    pub suppressed: u64,
    /// Count of devices by freshness.
    pub freshness: FreshnessSummaryView,
    /// Devices with at least one open alert.
    pub open_alerts: u64,
    /// Devices with an open alert that is acknowledged.
    pub acknowledged: u64,
}

/// A group with its devices and alert summary.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetailView {
    /// Group UUID.
    pub id: Uuid,
    /// The group's slug in the customer API.
    pub group_id: String,
    /// Group name.
    pub name: String,
    /// Group description, or null.
    #[schema(required = true)]
    pub description: Option<String>,
    /// A dynamic group's filter (its members are the devices it selects), or null.
    #[schema(required = true)]
    pub filter: Option<GroupFilterView>,
    /// The group's devices, ordered by name.
    pub devices: Vec<GroupDeviceView>,
    /// Count of devices by alert status.
    pub alert_summary: AlertSummaryView,
    /// Creation timestamp (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last update timestamp (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Subject (`sub` of the token) that created it.
    pub created_by: String,
    /// Subject (`sub` of the token) that changed it last.
    pub updated_by: String,
    /// The UUID of the group it is nested under, or null for a top-level group.
    #[schema(required = true)]
    pub parent_id: Option<Uuid>,
}

/// A group in a list.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GroupListItem)]
pub struct GroupListItemView {
    /// Group UUID.
    pub id: Uuid,
    /// The group's slug in the customer API.
    pub group_id: String,
    /// Group name.
    pub name: String,
    /// Group description, or null.
    #[schema(required = true)]
    pub description: Option<String>,
    /// A dynamic group's filter (its members are the devices it selects), or null.
    #[schema(required = true)]
    pub filter: Option<GroupFilterView>,
    /// Number of devices in the group.
    pub device_count: u64,
    /// Creation timestamp (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last update timestamp (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Subject (`sub` of the token) that created it.
    pub created_by: String,
    /// Subject (`sub` of the token) that changed it last.
    pub updated_by: String,
    /// The UUID of the group it is nested under, or null for a top-level group.
    #[schema(required = true)]
    pub parent_id: Option<Uuid>,
}

/// A reading of one of a group's devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupReadingView {
    /// Device UUID.
    pub device_id: Uuid,
    /// Device name.
    pub device_name: String,
    /// Reading timestamp (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// Measured value.
    pub value: f64,
    /// Measurement unit.
    pub unit: String,
}

/// `GET /api/groups/{group_id}/readings`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupReadingsView {
    /// Group UUID.
    pub group_id: Uuid,
    /// Readings of all the group's devices, newest first.
    pub readings: Vec<GroupReadingView>,
    /// Number of readings returned.
    pub total: u64,
    /// Whether more readings of the range follow this page.
    pub has_more: bool,
    /// Send as `cursor` (with the same parameters) for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<&DeviceGroup> for GroupListItemView {
    fn from(g: &DeviceGroup) -> Self {
        Self {
            id: g.id,
            group_id: g.group_id.as_str().to_owned(),
            name: g.name.as_str().to_owned(),
            description: g.description.as_ref().map(|d| d.as_str().to_owned()),
            filter: g.filter.as_ref().map(GroupFilterView::from),
            device_count: g.member_count,
            created_at: g.created_at.get(),
            updated_at: g.updated_at.get(),
            created_by: g.created_by.as_str().to_owned(),
            updated_by: g.updated_by.as_str().to_owned(),
            parent_id: g.parent_id,
        }
    }
}

impl From<AlertSummary> for AlertSummaryView {
    fn from(s: AlertSummary) -> Self {
        Self {
            normal: s.normal,
            warning: s.warning,
            critical: s.critical,
            in_maintenance: s.in_maintenance,
            suppressed: s.suppressed,
            freshness: FreshnessSummaryView {
                fresh: s.fresh,
                stale: s.stale,
                no_data: s.no_data,
            },
            open_alerts: s.open_alerts,
            acknowledged: s.acknowledged,
        }
    }
}

impl GroupDetailView {
    /// The group as seen at `now` (maintenance depends on it).
    #[must_use]
    pub fn at(detail: &GroupDetail, now: Timestamp) -> Self {
        let g = &detail.group;
        let states = detail.assess(now);
        Self {
            id: g.id,
            group_id: g.group_id.as_str().to_owned(),
            name: g.name.as_str().to_owned(),
            description: g.description.as_ref().map(|d| d.as_str().to_owned()),
            filter: g.filter.as_ref().map(GroupFilterView::from),
            devices: detail
                .members
                .iter()
                .zip(&states)
                .map(|(m, state)| GroupDeviceView {
                    id: m.device.id,
                    name: m.device.spec.name.as_str().to_owned(),
                    unit: m.device.spec.unit.as_str().to_owned(),
                    status: m.device.spec.status.into(),
                    alert_status: state.alert.into(),
                    in_maintenance: state.in_maintenance,
                    state: DeviceStateView::at(&m.device, state.in_maintenance, now),
                })
                .collect(),
            alert_summary: domain::detail::summary_of(&states).into(),
            created_at: g.created_at.get(),
            updated_at: g.updated_at.get(),
            created_by: g.created_by.as_str().to_owned(),
            updated_by: g.updated_by.as_str().to_owned(),
            parent_id: g.parent_id,
        }
    }
}

impl From<&GroupReading> for GroupReadingView {
    fn from(r: &GroupReading) -> Self {
        Self {
            device_id: r.device_id,
            device_name: r.device_name.as_str().to_owned(),
            timestamp: r.timestamp.get(),
            value: r.value,
            unit: r.unit.as_str().to_owned(),
        }
    }
}

/// A Group API name: the domain's rules, and at most 100 characters.
pub(crate) fn group_api_name(value: &str) -> Result<GroupName, ApiError> {
    // The Group API's bound is tighter than the domain's, so it is checked (and reported) first.
    let length = value.chars().count();
    if length > GROUP_API_NAME_MAX {
        return Err(ApiError::invalid(
            "name",
            format!("must be at most {GROUP_API_NAME_MAX} characters long, got {length}"),
        ));
    }
    GroupName::parse(value).map_err(|e| ApiError::invalid("name", e))
}

/// Parses device ids: a malformed one is 400 `GROUP_003`. Repeats are dropped.
pub(crate) fn device_ids(values: &[String]) -> Result<Vec<Uuid>, ApiError> {
    let ids = values
        .iter()
        .map(|raw| {
            Uuid::parse_str(raw).map_err(|_| {
                ApiError::bad_request(format!("Invalid device ID format: '{raw}'"))
                    .with_code(GroupApiCode::InvalidDeviceId)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(domain::group::without_repeats(ids))
}

/// Query of the group reads that may cover the group's descendants too.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TreeParams {
    /// `true`: cover the group and all its descendants, each device counted once however many
    /// of the groups hold it. Default `false`: the group's own members.
    #[param(value_type = Option<bool>)]
    pub include_descendants: Option<String>,
}

impl TreeParams {
    /// # Errors
    /// 422 naming `include_descendants` for anything but `true` or `false`.
    pub fn descendants(&self) -> Result<bool, ApiError> {
        match self.include_descendants.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::invalid(
                "include_descendants",
                "must be true or false",
            )),
        }
    }
}

/// The Group API's form of a parent: a group UUID.
///
/// # Errors
/// 422 naming `parent_id` for anything else (a slug, most often).
pub(crate) fn parent_uuid(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::invalid(
            "parent_id",
            format!(
                "'{raw}' is not a group UUID; the Group API takes the parent's UUID \
                 (slugs are for /customer/device-groups)"
            ),
        )
    })
}

/// A parent the store refused, as either family says it: `shown` is the parent as the client
/// gave it.
pub(crate) fn parent_refused(
    shown: &str,
    placement: Option<domain::group::PlacementError>,
) -> ApiError {
    match placement {
        Some(e) => ApiError::invalid("parent_id", e),
        None => ApiError::invalid("parent_id", format!("the tenant has no group '{shown}'")),
    }
}
