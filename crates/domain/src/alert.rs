//! Alert status of a device from its latest reading, and a group's summary of them.

use crate::device::Thresholds;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertStatus {
    Normal,
    Warning,
    Critical,
}

impl AlertStatus {
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

/// How many of a group's devices are in each status; `normal + warning + critical` always adds
/// up to the group size. Maintenance does not change a device's status: it is counted apart, in
/// `in_maintenance`, and `suppressed` counts those of them whose alert it mutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlertSummary {
    pub normal: u64,
    pub warning: u64,
    pub critical: u64,
    /// Devices covered by an active maintenance window.
    pub in_maintenance: u64,
    /// Devices in maintenance whose status is warning or critical.
    pub suppressed: u64,
}

impl AlertSummary {
    /// From each device's status and whether a window covers it.
    #[must_use]
    pub fn of(devices: impl IntoIterator<Item = (AlertStatus, bool)>) -> Self {
        devices
            .into_iter()
            .fold(Self::default(), |mut summary, (status, in_maintenance)| {
                match status {
                    AlertStatus::Normal => summary.normal += 1,
                    AlertStatus::Warning => summary.warning += 1,
                    AlertStatus::Critical => summary.critical += 1,
                }
                if in_maintenance {
                    summary.in_maintenance += 1;
                    if status != AlertStatus::Normal {
                        summary.suppressed += 1;
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
            (AlertStatus::Normal, true),
            (AlertStatus::Warning, true),
            (AlertStatus::Critical, true),
            (AlertStatus::Critical, false),
        ]);
        assert_eq!(
            summary,
            AlertSummary {
                normal: 1,
                warning: 1,
                critical: 2,
                in_maintenance: 3,
                suppressed: 2
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
            let summary = AlertSummary::of(values.iter().enumerate().map(|(i, v)| (alert_status(&t, *v), i % 3 == 0)));
            prop_assert_eq!(summary.total(), values.len() as u64);
            prop_assert!(summary.suppressed <= summary.in_maintenance);
            prop_assert!(summary.suppressed <= summary.warning + summary.critical);
        }
    }
}
