//! Wire shapes of `/api/devices` (seed 002) and their conversion to and from the domain.

use domain::device::ThresholdError;
use domain::state::STALE_AFTER_MAX_SECS;
use std::collections::BTreeMap;

use domain::{
    Device, DeviceChanges, DeviceName, DeviceSpec, DeviceStatus, Freshness, Labels, ScopeLabel,
    StaleAfter, Thresholds, Timestamp, Unit,
};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::group_api::AlertStatusDto;
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
    /// Seconds without a reading after which the device is stale (and a `stale` alert opens):
    /// an integer from 1 to 31,536,000 (a year). Absent or null: never stale.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 31_536_000)]
    pub stale_after_s: Option<StaleAfterSecs>,
    /// Free labels: at most 32 pairs, keys of 1 to 63 characters of `a-z 0-9 . _ - /`, string
    /// values of at most 128 characters without control characters. Default `{}`.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::device_labels)]
    pub labels: Option<Option<serde_json::Value>>,
}

/// A `stale_after_s` as sent: an integer, nothing else (`1.5` and `"60"` are refused, naming
/// the field); its range is the domain's to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleAfterSecs(i64);

impl<'de> Deserialize<'de> for StaleAfterSecs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
                Ok(Self(n.as_i64().unwrap_or(i64::MAX)))
            }
            _ => Err(serde::de::Error::custom(format!(
                "must be an integer from 1 to {STALE_AFTER_MAX_SECS}"
            ))),
        }
    }
}

fn stale_after(value: Option<StaleAfterSecs>) -> Result<Option<StaleAfter>, ApiError> {
    value
        .map(|StaleAfterSecs(secs)| StaleAfter::from_secs(secs))
        .transpose()
        .map_err(|e| ApiError::invalid("stale_after_s", e))
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
    /// New staleness delay in seconds (an integer from 1 to 31,536,000), or null: never stale.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 31_536_000)]
    pub stale_after_s: Option<Option<StaleAfterSecs>>,
    /// The new labels, replacing the old ones whole (`{}` removes them all); same limits as on
    /// create.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::device_labels_update)]
    pub labels: Option<Option<serde_json::Value>>,
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
    #[schema(required = true)]
    pub site_id: Option<String>,
    /// Device type, or null.
    #[schema(required = true)]
    pub device_type: Option<String>,
    /// Warning below this, or null.
    #[schema(required = true)]
    pub threshold_warning_lower: Option<f64>,
    /// Warning above this, or null.
    #[schema(required = true)]
    pub threshold_warning_upper: Option<f64>,
    /// Critical below this, or null.
    #[schema(required = true)]
    pub threshold_critical_lower: Option<f64>,
    /// Critical above this, or null.
    #[schema(required = true)]
    pub threshold_critical_upper: Option<f64>,
    /// Seconds without a reading after which the device is stale, or null: never.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub stale_after_s: Option<u32>,
    /// Its labels (`{}` when none), by key.
    #[schema(value_type = std::collections::HashMap<String, String>, example = json!({"floor": "3"}))]
    pub labels: BTreeMap<String, String>,
    /// What its latest reading and thresholds make of it now.
    pub state: DeviceStateView,
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

/// How recent a device's data is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[schema(as = Freshness)]
pub enum FreshnessDto {
    /// Its latest reading is recent enough (or it has no `stale_after_s`).
    Fresh,
    /// `stale_after_s` is set and the latest reading is older than that.
    Stale,
    /// No reading at all.
    NoData,
}

impl From<Freshness> for FreshnessDto {
    fn from(f: Freshness) -> Self {
        match f {
            Freshness::Fresh => Self::Fresh,
            Freshness::Stale => Self::Stale,
            Freshness::NoData => Self::NoData,
        }
    }
}

/// A device's state, kept as readings and thresholds change.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeviceState)]
pub struct DeviceStateView {
    /// From the latest reading and the thresholds (normal without a reading); maintenance does
    /// not change it.
    pub alert_status: AlertStatusDto,
    /// When that status began: the reading (or the threshold change) that started it (RFC 3339,
    /// UTC); null without a reading.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub since: Option<OffsetDateTime>,
    /// The latest reading's timestamp (RFC 3339, UTC), or null.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub last_reading_at: Option<OffsetDateTime>,
    /// The latest reading's value, or null.
    #[schema(required = true)]
    pub last_value: Option<f64>,
    /// `fresh`, `stale` or `no_data`, now.
    pub freshness: FreshnessDto,
    /// Whether an active maintenance window covers the device now.
    pub in_maintenance: bool,
}

impl DeviceStateView {
    /// The device's state at `now`.
    #[must_use]
    pub fn at(d: &Device, in_maintenance: bool, now: Timestamp) -> Self {
        let state = &d.state;
        Self {
            alert_status: state.alert_status.into(),
            since: state.since.map(Timestamp::get),
            last_reading_at: state.last_reading.map(|r| r.timestamp.get()),
            last_value: state.last_reading.map(|r| r.value),
            freshness: state.freshness(d.spec.stale_after, now).into(),
            in_maintenance,
        }
    }
}

impl DeviceView {
    /// The device as seen at `now`, `in_maintenance` as the windows covering it say.
    #[must_use]
    pub fn at(d: &Device, in_maintenance: bool, now: Timestamp) -> Self {
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
            stale_after_s: d.spec.stale_after.map(StaleAfter::secs),
            labels: d
                .spec
                .labels
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            state: DeviceStateView::at(d, in_maintenance, now),
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

/// A device's `labels` object as sent (see [`labels_at`]).
fn labels(value: Option<serde_json::Value>) -> Result<Labels, ApiError> {
    labels_at("labels", value)
}

/// A labels object as sent at `field`: every value a string, then the domain's rules; `null`
/// is refused.
pub(crate) fn labels_at(field: &str, value: Option<serde_json::Value>) -> Result<Labels, ApiError> {
    let Some(serde_json::Value::Object(map)) = value else {
        return Err(ApiError::invalid(
            field,
            "must be an object of string values",
        ));
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (key, value) in map {
        let serde_json::Value::String(value) = value else {
            let at = if domain::label::valid_key(&key) {
                format!("{field}.{key}")
            } else {
                field.to_owned()
            };
            return Err(ApiError::invalid(&at, "must be a string"));
        };
        pairs.push((key, value));
    }
    Labels::parse(pairs).map_err(|e| ApiError::invalid(&e.field(field), e))
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
            stale_after: stale_after(self.stale_after_s)?,
            labels: self.labels.map(labels).transpose()?.unwrap_or_default(),
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
            stale_after: self.stale_after_s.map(stale_after).transpose()?,
            labels: self.labels.map(labels).transpose()?,
        })
    }
}

/// Conditions of `GET /api/devices`; all that are given must hold. Each may be given once but
/// `label`, which may repeat.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Declares the parameters (for the spec and the query check); see `filter_of`.
pub struct DeviceFilterParams {
    /// Only devices at this site.
    #[param(value_type = Option<String>, min_length = 1, max_length = 128)]
    site_id: Option<String>,
    /// Only devices of this type.
    #[param(value_type = Option<String>, min_length = 1, max_length = 128)]
    device_type: Option<String>,
    /// Only devices in this connection state.
    #[param(value_type = Option<DeviceStatusDto>)]
    status: Option<String>,
    /// Only devices whose kept alert status is this one (no reading yet: `normal`).
    #[param(value_type = Option<AlertStatusDto>)]
    alert_status: Option<String>,
    /// `key:value` (the value is what follows the first `:`): only devices with that label.
    /// Repeatable, up to 32 times; every one must hold.
    #[param(value_type = Option<Vec<String>>, style = Form, explode, max_items = 32, example = json!(["floor:3"]))]
    label: Option<Vec<String>>,
}

/// The device filter a query string asks for (the name and paging parameters are the list's).
///
/// # Errors
/// 422 naming the parameter: a value that is no valid one (an unknown `status` or
/// `alert_status`, a malformed `label`), more than 32 `label`s, or another filter given twice.
pub fn filter_of(query: &str) -> Result<domain::DeviceFilter, ApiError> {
    let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|_| ApiError::invalid("query", "is not a valid URL-encoded query string"))?
        .into_inner();
    let once = |name: &str| -> Result<Option<&str>, ApiError> {
        let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::invalid(name, "given more than once"));
        }
        Ok(first.map(String::as_str))
    };
    let scope = |name: &str| -> Result<Option<ScopeLabel>, ApiError> {
        once(name)?
            .map(ScopeLabel::parse)
            .transpose()
            .map_err(|e| ApiError::invalid(name, e))
    };
    let mut filter = domain::DeviceFilter::all();
    filter.site_id = scope("site_id")?;
    filter.device_type = scope("device_type")?;
    filter.status = once("status")?
        .map(DeviceStatus::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("status", e))?;
    filter.alert_status = once("alert_status")?
        .map(domain::AlertStatus::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("alert_status", e))?;
    let labels: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "label")
        .map(|(_, v)| v.as_str())
        .collect();
    filter
        .with_label_conditions(&labels)
        .map_err(|e| ApiError::invalid("label", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_read_from_the_query_and_only_label_repeats() {
        let f = filter_of("site_id=s1&status=error&alert_status=critical&label=a:1&label=b:x:y")
            .unwrap();
        assert_eq!(f.site_id.as_ref().map(ScopeLabel::as_str), Some("s1"));
        assert_eq!(f.status, Some(DeviceStatus::Error));
        assert_eq!(f.alert_status, Some(domain::AlertStatus::Critical));
        assert_eq!(f.labels().get("b"), Some("x:y"));
        assert!(filter_of("").unwrap() == domain::DeviceFilter::all());
        let detail = |q: &str| filter_of(q).unwrap_err().detail().to_owned();
        assert_eq!(
            detail("status=broken"),
            "status: must be one of connected, disconnected, error"
        );
        assert_eq!(
            detail("alert_status=fine"),
            "alert_status: must be one of normal, warning, critical"
        );
        assert_eq!(
            detail("site_id=a&site_id=b"),
            "site_id: given more than once"
        );
        assert!(detail("label=nocolon").starts_with("label: "));
        assert!(detail(&"label=a:b&".repeat(33)).starts_with("label: may be given at most 32"));
    }

    #[test]
    fn labels_must_be_an_object_of_strings_and_name_the_key_at_fault() {
        let detail = |v: serde_json::Value| labels(Some(v)).unwrap_err().detail().to_owned();
        assert!(labels(Some(serde_json::json!({"floor": "3"}))).is_ok());
        assert!(detail(serde_json::json!({"floor": 3})).starts_with("labels.floor: "));
        assert!(detail(serde_json::json!({"floor": "a\u{1}"})).starts_with("labels.floor: "));
        assert!(detail(serde_json::json!({"Floor": "3"})).starts_with("labels: "));
        assert!(detail(serde_json::json!(["a"])).starts_with("labels: "));
        assert!(labels(None).is_err(), "null is refused");
    }
}
