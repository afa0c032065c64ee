//! Wire shapes of `/api/devices`, `/api/readings` and the Group API (seed 002), and their
//! conversion to and from the domain.

use domain::device::ThresholdError;
use domain::{
    AlertStatus, AlertSummary, Description, Device, DeviceChanges, DeviceGroup, DeviceName,
    DeviceSpec, DeviceStatus, GroupName, ReadingValue, ScopeLabel, Thresholds, Timestamp, Unit,
};
use ports::{GroupDetail, GroupReading};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, GroupApiCode};
use crate::json::present;

/// Longest group name the Group API accepts (seed 002: "1-100 chars").
pub const GROUP_API_NAME_MAX: usize = 100;

// ---------------------------------------------------------------------------------------------
// Devices

/// A device's connection state.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schema(as = DeviceStatus)]
pub enum DeviceStatusDto {
    Connected,
    Disconnected,
    Error,
}

impl From<DeviceStatusDto> for DeviceStatus {
    fn from(s: DeviceStatusDto) -> Self {
        match s {
            DeviceStatusDto::Connected => Self::Connected,
            DeviceStatusDto::Disconnected => Self::Disconnected,
            DeviceStatusDto::Error => Self::Error,
        }
    }
}

impl From<DeviceStatus> for DeviceStatusDto {
    fn from(s: DeviceStatus) -> Self {
        match s {
            DeviceStatus::Connected => Self::Connected,
            DeviceStatus::Disconnected => Self::Disconnected,
            DeviceStatus::Error => Self::Error,
        }
    }
}

/// Body of `POST /api/devices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceCreate {
    /// Display name, unique within the tenant; 1 to 100 characters.
    #[schema(
        example = "Temperature Sensor 1",
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// Measurement unit, up to 20 characters; empty when absent or null.
    #[schema(
        example = "°C",
        max_length = 20,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub unit: Option<String>,
    /// Connection state; `disconnected` when absent.
    pub status: Option<DeviceStatusDto>,
    /// The site the device is at (maintenance windows select by it).
    #[schema(
        max_length = 128,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub site_id: Option<String>,
    /// The kind of device (maintenance windows select by it).
    #[schema(
        max_length = 128,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub device_type: Option<String>,
    /// Below this: warning. Must not exceed `threshold_warning_upper`.
    pub threshold_warning_lower: Option<f64>,
    /// Above this: warning.
    pub threshold_warning_upper: Option<f64>,
    /// Below this: critical. Must not exceed `threshold_warning_lower`.
    pub threshold_critical_lower: Option<f64>,
    /// Above this: critical. Must not be below `threshold_warning_upper`.
    pub threshold_critical_upper: Option<f64>,
}

/// Body of `PUT /api/devices/{id}`: absent fields stay as they are; `null` clears `site_id`,
/// `device_type`, a threshold, or `unit` (to empty), and is refused for `name` and `status`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceUpdate {
    /// New name, 1 to 100 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: Option<Option<String>>,
    /// New unit, up to 20 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 20, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub unit: Option<Option<String>>,
    /// New connection state.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = DeviceStatusDto)]
    pub status: Option<Option<DeviceStatusDto>>,
    /// New site, or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")]
    pub site_id: Option<Option<String>>,
    /// New device type, or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")]
    pub device_type: Option<Option<String>>,
    /// New bound, or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub threshold_warning_lower: Option<Option<f64>>,
    /// New bound, or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub threshold_warning_upper: Option<Option<f64>>,
    /// New bound, or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub threshold_critical_lower: Option<Option<f64>>,
    /// New bound, or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub threshold_critical_upper: Option<Option<f64>>,
}

/// A device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    /// Device UUID.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Measurement unit (may be empty).
    pub unit: String,
    /// Connection state.
    pub status: DeviceStatusDto,
    /// Site, or null.
    pub site_id: Option<String>,
    /// Device type, or null.
    pub device_type: Option<String>,
    /// Warning below this, or null.
    pub threshold_warning_lower: Option<f64>,
    /// Warning above this, or null.
    pub threshold_warning_upper: Option<f64>,
    /// Critical below this, or null.
    pub threshold_critical_lower: Option<f64>,
    /// Critical above this, or null.
    pub threshold_critical_upper: Option<f64>,
    /// Creation time (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Subject (`sub` of the token) that created it.
    pub created_by: String,
    /// Subject (`sub` of the token) that changed it last.
    pub updated_by: String,
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> Self {
        let t = &d.spec.thresholds;
        Self {
            id: d.id,
            name: d.spec.name.as_str().to_owned(),
            unit: d.spec.unit.as_str().to_owned(),
            status: d.spec.status.into(),
            site_id: d.spec.site_id.as_ref().map(|s| s.as_str().to_owned()),
            device_type: d.spec.device_type.as_ref().map(|s| s.as_str().to_owned()),
            threshold_warning_lower: t.warning_lower(),
            threshold_warning_upper: t.warning_upper(),
            threshold_critical_lower: t.critical_lower(),
            threshold_critical_upper: t.critical_upper(),
            created_at: d.created_at.get(),
            updated_at: d.updated_at.get(),
            created_by: d.created_by.as_str().to_owned(),
            updated_by: d.updated_by.as_str().to_owned(),
        }
    }
}

pub(crate) fn threshold_error(e: &ThresholdError) -> ApiError {
    match e {
        ThresholdError::NotFinite { field } => ApiError::invalid(field, "must be a finite number"),
        ThresholdError::OutOfOrder { lower, upper } => {
            ApiError::invalid(lower, format!("must not be greater than {upper}"))
        }
    }
}

fn device_name(value: &str) -> Result<DeviceName, ApiError> {
    DeviceName::parse(value).map_err(|e| ApiError::invalid("name", e))
}

fn unit(value: Option<&str>) -> Result<Unit, ApiError> {
    Unit::parse(value.unwrap_or_default()).map_err(|e| ApiError::invalid("unit", e))
}

fn label(field: &str, value: Option<&str>) -> Result<Option<ScopeLabel>, ApiError> {
    value
        .map(ScopeLabel::parse)
        .transpose()
        .map_err(|e| ApiError::invalid(field, e))
}

impl DeviceCreate {
    /// # Errors
    /// 422 naming the first invalid field.
    pub fn try_into_domain(self) -> Result<DeviceSpec, ApiError> {
        Ok(DeviceSpec {
            name: device_name(&self.name)?,
            unit: unit(self.unit.as_deref())?,
            status: self.status.map(Into::into).unwrap_or_default(),
            site_id: label("site_id", self.site_id.as_deref())?,
            device_type: label("device_type", self.device_type.as_deref())?,
            thresholds: Thresholds::new(
                self.threshold_critical_lower,
                self.threshold_warning_lower,
                self.threshold_warning_upper,
                self.threshold_critical_upper,
            )
            .map_err(|e| threshold_error(&e))?,
        })
    }
}

use crate::dto::not_null;

impl DeviceUpdate {
    /// # Errors
    /// 422 naming the first invalid field. The merged thresholds are checked by the store.
    pub fn try_into_domain(self) -> Result<DeviceChanges, ApiError> {
        let finite = |field: &'static str, v: Option<Option<f64>>| match v {
            Some(Some(b)) if !b.is_finite() => {
                Err(ApiError::invalid(field, "must be a finite number"))
            }
            other => Ok(other),
        };
        Ok(DeviceChanges {
            name: not_null("name", self.name)?
                .map(|n| device_name(&n))
                .transpose()?,
            unit: self.unit.map(|u| unit(u.as_deref())).transpose()?,
            status: not_null("status", self.status)?.map(Into::into),
            site_id: self
                .site_id
                .map(|s| label("site_id", s.as_deref()))
                .transpose()?,
            device_type: self
                .device_type
                .map(|s| label("device_type", s.as_deref()))
                .transpose()?,
            thresholds: [
                finite("threshold_critical_lower", self.threshold_critical_lower)?,
                finite("threshold_warning_lower", self.threshold_warning_lower)?,
                finite("threshold_warning_upper", self.threshold_warning_upper)?,
                finite("threshold_critical_upper", self.threshold_critical_upper)?,
            ],
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Readings

/// One reading to ingest.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadingIn {
    /// The device's UUID.
    #[schema(format = Uuid)]
    pub device_id: String,
    /// When it was measured (RFC 3339; without offset: UTC). At most the allowed skew (300 s by
    /// default, `IOT_MAX_FUTURE_SKEW_SECS`) ahead of the server's clock.
    #[schema(format = DateTime, example = "2025-10-20T10:30:00Z")]
    pub timestamp: String,
    /// The measured value.
    #[schema(example = 25.5)]
    pub value: f64,
}

/// Body of `POST /api/readings`: 1 to 10,000 readings, stored all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadingsIngest {
    /// The readings.
    pub readings: Vec<ReadingIn>,
}

/// Answer of an ingest.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAccepted {
    /// How many readings were stored (readings repeated for the same device and instant within
    /// one request count once: the last one wins).
    pub accepted: usize,
}

/// Body of `POST /api/devices/{id}/readings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceReadingIn {
    /// The measured value.
    pub value: f64,
    /// When it was measured (RFC 3339); now when absent. At most the allowed skew (300 s by
    /// default, `IOT_MAX_FUTURE_SKEW_SECS`) ahead of the server's clock.
    #[schema(format = DateTime)]
    pub timestamp: Option<String>,
}

/// One stored reading of a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadingView {
    /// When it was measured (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The measured value.
    pub value: f64,
}

/// Answer of `POST /api/devices/{id}/readings`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceReadingStored {
    /// The device's UUID.
    pub device_id: Uuid,
    /// When it was measured (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The measured value.
    pub value: f64,
}

/// `GET /api/devices/{id}/readings`: newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceReadings {
    /// The device's UUID.
    pub device_id: Uuid,
    /// The readings, newest first.
    pub readings: Vec<ReadingView>,
    /// Number of readings returned.
    pub total: u64,
}

pub(crate) fn reading_value(field: &str, value: f64) -> Result<ReadingValue, ApiError> {
    ReadingValue::new(value).map_err(|e| ApiError::invalid(field, e))
}

// ---------------------------------------------------------------------------------------------
// Group API

/// Body of `POST /api/groups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupCreate {
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
}

/// Body of `PUT /api/groups/{group_id}`: every field optional; `device_ids` replaces the whole
/// member list.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupUpdate {
    /// New name, 1 to 100 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: Option<Option<String>>,
    /// New description (at most 500 characters), or null to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\u0000]*$")]
    pub description: Option<Option<String>>,
    /// The new member list, replacing the old one.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::member_ids)]
    pub device_ids: Option<Option<Vec<String>>>,
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
    pub description: Option<String>,
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
}

/// A group in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupListItem {
    /// Group UUID.
    pub id: Uuid,
    /// The group's slug in the customer API.
    pub group_id: String,
    /// Group name.
    pub name: String,
    /// Group description, or null.
    pub description: Option<String>,
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
}

impl From<&DeviceGroup> for GroupListItem {
    fn from(g: &DeviceGroup) -> Self {
        Self {
            id: g.id,
            group_id: g.group_id.as_str().to_owned(),
            name: g.name.as_str().to_owned(),
            description: g.description.as_ref().map(|d| d.as_str().to_owned()),
            device_count: g.member_count,
            created_at: g.created_at.get(),
            updated_at: g.updated_at.get(),
            created_by: g.created_by.as_str().to_owned(),
            updated_by: g.updated_by.as_str().to_owned(),
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
                })
                .collect(),
            alert_summary: domain::detail::summary_of(&states).into(),
            created_at: g.created_at.get(),
            updated_at: g.updated_at.get(),
            created_by: g.created_by.as_str().to_owned(),
            updated_by: g.updated_by.as_str().to_owned(),
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

pub(crate) fn group_description(value: Option<&str>) -> Result<Option<Description>, ApiError> {
    value
        .map(Description::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("description", e))
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
