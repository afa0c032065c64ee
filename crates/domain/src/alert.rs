//! Alert status of a device from its latest reading, and a group's summary of them.

use crate::device::Thresholds;
use crate::state::Freshness;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AlertStatus {
    #[default]
    Normal,
    Warning,
    Critical,
}

impl AlertStatus {
    /// # Errors
    /// A message for any word but `normal`, `warning` or `critical`.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "normal" => Ok(Self::Normal),
            "warning" => Ok(Self::Warning),
            "critical" => Ok(Self::Critical),
            _ => Err("must be one of normal, warning, critical".to_owned()),
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// `critical` when the value is strictly below `critical_lower` or above `critical_upper`, else
/// `warning` likewise for the warning bounds, else `normal`. An unset bound is skipped; no reading
/// at all is `normal`.
#[must_use]
pub fn alert_status(thresholds: &Thresholds, latest: Option<f64>) -> AlertStatus {
    let Some(value) = latest else {
        return AlertStatus::Normal;
    };
    let outside = |lower: Option<f64>, upper: Option<f64>| {
        lower.is_some_and(|l| value < l) || upper.is_some_and(|u| value > u)
    };
    if outside(thresholds.critical_lower(), thresholds.critical_upper()) {
        AlertStatus::Critical
    } else if outside(thresholds.warning_lower(), thresholds.warning_upper()) {
        AlertStatus::Warning
    } else {
        AlertStatus::Normal
    }
}

/// A member's state at an instant, as a summary counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberState {
    /// From its latest reading and thresholds, as kept; maintenance does not change it.
    pub alert: AlertStatus,
    /// Whether an active window covers the device.
    pub in_maintenance: bool,
    pub freshness: Freshness,
    /// Whether the device has an open alert (of any kind).
    pub open_alert: bool,
    /// Whether one of its open alerts is acknowledged.
    pub acknowledged: bool,
}

/// How many of a group's devices are in each status; `normal + warning + critical` always adds
/// up to the group size, and so does `fresh + stale + no_data`. Maintenance does not change a
/// device's status: it is counted apart, in `in_maintenance`, and `suppressed` counts those of
/// them whose alert it mutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlertSummary {
    pub normal: u64,
    pub warning: u64,
    pub critical: u64,
    /// Devices covered by an active maintenance window.
    pub in_maintenance: u64,
    /// Devices in maintenance whose status is warning or critical.
    pub suppressed: u64,
    pub fresh: u64,
    pub stale: u64,
    pub no_data: u64,
    /// Devices with at least one open alert.
    pub open_alerts: u64,
    /// Devices with an open alert that is acknowledged.
    pub acknowledged: u64,
}

impl AlertSummary {
    /// From each device's state.
    #[must_use]
    pub fn of(devices: impl IntoIterator<Item = MemberState>) -> Self {
        devices
            .into_iter()
            .fold(Self::default(), |mut summary, state| {
                match state.alert {
                    AlertStatus::Normal => summary.normal += 1,
                    AlertStatus::Warning => summary.warning += 1,
                    AlertStatus::Critical => summary.critical += 1,
                }
                match state.freshness {
                    Freshness::Fresh => summary.fresh += 1,
                    Freshness::Stale => summary.stale += 1,
                    Freshness::NoData => summary.no_data += 1,
                }
                if state.in_maintenance {
                    summary.in_maintenance += 1;
                    if state.alert != AlertStatus::Normal {
                        summary.suppressed += 1;
                    }
                }
                if state.open_alert {
                    summary.open_alerts += 1;
                    if state.acknowledged {
                        summary.acknowledged += 1;
                    }
                }
                summary
            })
    }

    #[must_use]
    pub fn total(&self) -> u64 {
        self.normal + self.warning + self.critical
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state(alert: AlertStatus, in_maintenance: bool) -> MemberState {
        MemberState {
            alert,
            in_maintenance,
            freshness: Freshness::Fresh,
            open_alert: false,
            acknowledged: false,
        }
    }

    fn full() -> Thresholds {
        Thresholds::new(Some(-10.0), Some(0.0), Some(30.0), Some(40.0)).unwrap()
    }

    #[test]
    fn every_boundary_is_strict() {
        let t = full();
        for (value, expected) in [
            (-10.000_001, AlertStatus::Critical),
            (-10.0, AlertStatus::Warning),
            (-0.000_001, AlertStatus::Warning),
            (0.0, AlertStatus::Normal),
            (15.0, AlertStatus::Normal),
            (30.0, AlertStatus::Normal),
            (30.000_001, AlertStatus::Warning),
            (40.0, AlertStatus::Warning),
            (40.000_001, AlertStatus::Critical),
        ] {
            assert_eq!(alert_status(&t, Some(value)), expected, "value {value}");
        }
    }

    #[test]
    fn maintenance_is_counted_apart_and_mutes_only_alerts() {
        let summary = AlertSummary::of([
            state(AlertStatus::Normal, true),
            state(AlertStatus::Warning, true),
            state(AlertStatus::Critical, true),
            state(AlertStatus::Critical, false),
        ]);
        assert_eq!(
            summary,
            AlertSummary {
                normal: 1,
                warning: 1,
                critical: 2,
                in_maintenance: 3,
                suppressed: 2,
                fresh: 4,
                ..AlertSummary::default()
            }
        );
    }

    #[test]
    fn no_reading_is_normal_and_unset_bounds_are_skipped() {
        assert_eq!(alert_status(&full(), None), AlertStatus::Normal);
        let none = Thresholds::default();
        assert_eq!(alert_status(&none, Some(1e300)), AlertStatus::Normal);
        let only_warning_upper = Thresholds::new(None, None, Some(10.0), None).unwrap();
        assert_eq!(
            alert_status(&only_warning_upper, Some(-1e300)),
            AlertStatus::Normal
        );
        assert_eq!(
            alert_status(&only_warning_upper, Some(11.0)),
            AlertStatus::Warning
        );
        let only_critical_lower = Thresholds::new(Some(0.0), None, None, None).unwrap();
        assert_eq!(
            alert_status(&only_critical_lower, Some(-1.0)),
            AlertStatus::Critical
        );
    }

    proptest! {
        #[test]
        fn the_summary_always_adds_up_to_the_number_of_devices(values in proptest::collection::vec(proptest::option::of(-100.0f64..100.0), 0..200)) {
            let t = full();
            let summary = AlertSummary::of(values.iter().enumerate().map(|(i, v)| MemberState {
                alert: alert_status(&t, *v),
                in_maintenance: i % 3 == 0,
                freshness: if v.is_none() { Freshness::NoData } else if i % 2 == 0 { Freshness::Stale } else { Freshness::Fresh },
                open_alert: i % 5 == 0,
                acknowledged: i % 10 == 0,
            }));
            prop_assert_eq!(summary.total(), values.len() as u64);
            prop_assert_eq!(summary.fresh + summary.stale + summary.no_data, values.len() as u64);
            prop_assert!(summary.acknowledged <= summary.open_alerts);
            prop_assert!(summary.suppressed <= summary.in_maintenance);
            prop_assert!(summary.suppressed <= summary.warning + summary.critical);
        }
    }
}
