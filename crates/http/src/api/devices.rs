//! Wire shapes of `/api/devices` (seed 002) and their conversion to and from the domain.

use domain::device::ThresholdError;
use domain::{
    Device, DeviceChanges, DeviceName, DeviceSpec, DeviceStatus, ScopeLabel, Thresholds, Unit,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::params::not_null;
use crate::error::ApiError;
use crate::json::present;

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
#[schema(as = DeviceCreate)]
pub struct DeviceCreateBody {
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
#[schema(as = DeviceUpdate)]
pub struct DeviceUpdateBody {
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

impl DeviceCreateBody {
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
            // Interim: the wire field arrives with the HTTP work of issue 14.
            stale_after: None,
        })
    }
}

impl DeviceUpdateBody {
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
            stale_after: None,
        })
    }
}
