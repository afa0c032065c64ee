//! Devices: what they measure, where they are, and the thresholds their readings are judged by.

use thiserror::Error;
use uuid::Uuid;

use crate::label::Labels;
use crate::state::{DeviceState, StaleAfter};
use crate::text::{self, TextError};
use crate::window::ScopeLabel;
use crate::{Actor, Timestamp};

/// Longest device name (seed 002's group names share this bound).
pub const DEVICE_NAME_MAX: usize = 100;
/// Longest measurement unit.
pub const UNIT_MAX: usize = 20;

/// A device's display name, unique within its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceName(String);

impl DeviceName {
    /// # Errors
    /// [`TextError`] when blank, over [`DEVICE_NAME_MAX`] characters, or holding control characters.
    pub fn parse(value: &str) -> Result<Self, TextError> {
        text::label(value, DEVICE_NAME_MAX).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The unit a device measures in (`°C`, `kPa`); may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unit(String);

impl Unit {
    /// # Errors
    /// [`TextError`] when over [`UNIT_MAX`] characters or holding control characters.
    pub fn parse(value: &str) -> Result<Self, TextError> {
        if value.chars().any(char::is_control) {
            return Err(TextError::ControlCharacter);
        }
        text::free_text(value, UNIT_MAX).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Connection state a device reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceStatus {
    Connected,
    #[default]
    Disconnected,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("must be one of connected, disconnected, error")]
pub struct DeviceStatusError;

impl DeviceStatus {
    /// # Errors
    /// [`DeviceStatusError`] for any other word.
    pub fn parse(value: &str) -> Result<Self, DeviceStatusError> {
        match value {
            "connected" => Ok(Self::Connected),
            "disconnected" => Ok(Self::Disconnected),
            "error" => Ok(Self::Error),
            _ => Err(DeviceStatusError),
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Error => "error",
        }
    }
}

/// The four bounds, in the order they must keep from low to high.
pub const THRESHOLD_FIELDS: [&str; 4] = [
    "threshold_critical_lower",
    "threshold_warning_lower",
    "threshold_warning_upper",
    "threshold_critical_upper",
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ThresholdError {
    #[error("{field}: must be a finite number")]
    NotFinite { field: &'static str },
    #[error("{lower} must not be greater than {upper}")]
    OutOfOrder {
        lower: &'static str,
        upper: &'static str,
    },
}

impl ThresholdError {
    /// The first field the error names.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::NotFinite { field } => field,
            Self::OutOfOrder { lower, .. } => lower,
        }
    }
}

/// Alert bounds; each may be unset. Those that are set keep
/// `critical_lower <= warning_lower <= warning_upper <= critical_upper`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Thresholds {
    bounds: [Option<f64>; 4],
}

impl Thresholds {
    /// # Errors
    /// [`ThresholdError`] for a non-finite bound or two set bounds out of order.
    pub fn new(
        critical_lower: Option<f64>,
        warning_lower: Option<f64>,
        warning_upper: Option<f64>,
        critical_upper: Option<f64>,
    ) -> Result<Self, ThresholdError> {
        let bounds = [critical_lower, warning_lower, warning_upper, critical_upper];
        for (field, bound) in THRESHOLD_FIELDS.iter().zip(bounds) {
            if bound.is_some_and(|b| !b.is_finite()) {
                return Err(ThresholdError::NotFinite { field });
            }
        }
        for i in 0..bounds.len() {
            for j in i + 1..bounds.len() {
                if let (Some(low), Some(high)) = (bounds[i], bounds[j]) {
                    if low > high {
                        return Err(ThresholdError::OutOfOrder {
                            lower: THRESHOLD_FIELDS[i],
                            upper: THRESHOLD_FIELDS[j],
                        });
                    }
                }
            }
        }
        Ok(Self { bounds })
    }

    #[must_use]
    pub fn critical_lower(&self) -> Option<f64> {
        self.bounds[0]
    }

    #[must_use]
    pub fn warning_lower(&self) -> Option<f64> {
        self.bounds[1]
    }

    #[must_use]
    pub fn warning_upper(&self) -> Option<f64> {
        self.bounds[2]
    }

    #[must_use]
    pub fn critical_upper(&self) -> Option<f64> {
        self.bounds[3]
    }
}

/// Everything a client sets on a device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    pub name: DeviceName,
    pub unit: Unit,
    pub status: DeviceStatus,
    pub site_id: Option<ScopeLabel>,
    pub device_type: Option<ScopeLabel>,
    pub thresholds: Thresholds,
    /// How long without a reading makes the device stale; `None`: never.
    pub stale_after: Option<StaleAfter>,
    /// Free key/value labels; replaced as a whole.
    pub labels: Labels,
}

/// A partial update. `None` leaves a field; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceChanges {
    pub name: Option<DeviceName>,
    pub unit: Option<Unit>,
    pub status: Option<DeviceStatus>,
    pub site_id: Option<Option<ScopeLabel>>,
    pub device_type: Option<Option<ScopeLabel>>,
    /// In [`THRESHOLD_FIELDS`] order.
    pub thresholds: [Option<Option<f64>>; 4],
    pub stale_after: Option<Option<StaleAfter>>,
    /// The new labels, replacing the old ones whole.
    pub labels: Option<Labels>,
}

impl DeviceSpec {
    /// The spec with `changes` applied; the merged thresholds are checked again.
    ///
    /// # Errors
    /// [`ThresholdError`] when the merged thresholds are out of order.
    pub fn apply(&self, changes: DeviceChanges) -> Result<Self, ThresholdError> {
        let merged: Vec<Option<f64>> = changes
            .thresholds
            .iter()
            .zip(self.thresholds.bounds)
            .map(|(change, current)| change.unwrap_or(current))
            .collect();
        Ok(Self {
            name: changes.name.unwrap_or_else(|| self.name.clone()),
            unit: changes.unit.unwrap_or_else(|| self.unit.clone()),
            status: changes.status.unwrap_or(self.status),
            site_id: changes.site_id.unwrap_or_else(|| self.site_id.clone()),
            device_type: changes
                .device_type
                .unwrap_or_else(|| self.device_type.clone()),
            thresholds: Thresholds::new(merged[0], merged[1], merged[2], merged[3])?,
            stale_after: changes.stale_after.unwrap_or(self.stale_after),
            labels: changes.labels.unwrap_or_else(|| self.labels.clone()),
        })
    }
}

/// A device about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDevice {
    pub id: Uuid,
    pub spec: DeviceSpec,
}

/// A stored device.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: Uuid,
    pub spec: DeviceSpec,
    /// Kept by every write that changes the latest reading or the thresholds.
    pub state: DeviceState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: Actor,
    pub updated_by: Actor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_that_are_set_must_keep_their_order() {
        assert!(Thresholds::new(Some(-10.0), Some(0.0), Some(30.0), Some(40.0)).is_ok());
        assert!(Thresholds::new(None, None, None, None).is_ok());
        assert!(
            Thresholds::new(Some(5.0), Some(5.0), Some(5.0), Some(5.0)).is_ok(),
            "equal bounds are ordered"
        );
        assert_eq!(
            Thresholds::new(None, Some(31.0), Some(30.0), None),
            Err(ThresholdError::OutOfOrder {
                lower: "threshold_warning_lower",
                upper: "threshold_warning_upper"
            })
        );
        // Gaps are skipped: critical_lower is compared with warning_upper when warning_lower is unset.
        assert_eq!(
            Thresholds::new(Some(50.0), None, Some(30.0), None),
            Err(ThresholdError::OutOfOrder {
                lower: "threshold_critical_lower",
                upper: "threshold_warning_upper"
            })
        );
        assert_eq!(
            Thresholds::new(None, None, None, Some(f64::NAN)),
            Err(ThresholdError::NotFinite {
                field: "threshold_critical_upper"
            })
        );
    }

    #[test]
    fn applying_changes_rechecks_the_merged_thresholds() {
        let spec = DeviceSpec {
            name: DeviceName::parse("T1").unwrap(),
            unit: Unit::parse("°C").unwrap(),
            status: DeviceStatus::Connected,
            site_id: None,
            device_type: None,
            thresholds: Thresholds::new(None, Some(0.0), Some(30.0), None).unwrap(),
            stale_after: None,
            labels: Labels::none(),
        };
        let raise_lower = DeviceChanges {
            thresholds: [None, Some(Some(40.0)), None, None],
            ..Default::default()
        };
        assert!(spec.apply(raise_lower).is_err());
        let clear_upper = DeviceChanges {
            thresholds: [None, Some(Some(40.0)), Some(None), None],
            ..Default::default()
        };
        let applied = spec.apply(clear_upper).unwrap();
        assert_eq!(applied.thresholds.warning_lower(), Some(40.0));
        assert_eq!(applied.thresholds.warning_upper(), None);
        assert_eq!(applied.name, spec.name);
    }

    #[test]
    fn names_units_and_statuses_are_checked() {
        assert!(DeviceName::parse(&"d".repeat(DEVICE_NAME_MAX)).is_ok());
        assert!(DeviceName::parse(&"d".repeat(DEVICE_NAME_MAX + 1)).is_err());
        assert!(Unit::parse("").is_ok());
        assert!(Unit::parse(&"u".repeat(UNIT_MAX + 1)).is_err());
        assert!(Unit::parse("a\nb").is_err());
        assert_eq!(DeviceStatus::parse("error"), Ok(DeviceStatus::Error));
        assert!(DeviceStatus::parse("Connected").is_err());
        assert_eq!(DeviceStatus::default(), DeviceStatus::Disconnected);
    }
}
