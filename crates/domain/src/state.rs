//! A device's state as kept at write time: its alert status, since when it holds, its latest
//! reading, and how fresh that reading is.

use thiserror::Error;
use time::Duration;

use crate::alert::{alert_status, AlertStatus};
use crate::device::Thresholds;
use crate::reading::ReadingPoint;
use crate::Timestamp;

/// Longest `stale_after_s`: a year.
pub const STALE_AFTER_MAX_SECS: u32 = 31_536_000;

/// How long after its latest reading a device counts as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StaleAfter(u32);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("must be an integer from 1 to {STALE_AFTER_MAX_SECS}")]
pub struct StaleAfterError;

impl StaleAfter {
    /// # Errors
    /// [`StaleAfterError`] outside 1 to [`STALE_AFTER_MAX_SECS`] seconds.
    pub fn from_secs(seconds: i64) -> Result<Self, StaleAfterError> {
        u32::try_from(seconds)
            .ok()
            .filter(|s| (1..=STALE_AFTER_MAX_SECS).contains(s))
            .map(Self)
            .ok_or(StaleAfterError)
    }

    #[must_use]
    pub fn secs(self) -> u32 {
        self.0
    }

    fn duration(self) -> Duration {
        Duration::seconds(i64::from(self.0))
    }
}

/// Whether a device's data is recent enough to trust its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Freshness {
    Fresh,
    /// `stale_after_s` is set and the latest reading is older than that.
    Stale,
    /// No reading at all.
    NoData,
}

impl Freshness {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Stale => "stale",
            Self::NoData => "no_data",
        }
    }
}

/// What a device's latest reading and thresholds make of it, kept by every write that changes
/// either. `since` is when the current status began: the instant of the reading, or of the
/// threshold change, that started it; with no reading it is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeviceState {
    pub alert_status: AlertStatus,
    pub since: Option<Timestamp>,
    pub last_reading: Option<ReadingPoint>,
}

impl DeviceState {
    /// The state after `reading` arrives, judged with `thresholds`; `None` when the reading is
    /// older than the latest one, which it then changes nothing of. A reading at the latest's
    /// instant replaces it (a re-sent value).
    #[must_use]
    pub fn after_reading(&self, thresholds: &Thresholds, reading: ReadingPoint) -> Option<Self> {
        if self
            .last_reading
            .is_some_and(|last| reading.timestamp < last.timestamp)
        {
            return None;
        }
        let status = alert_status(thresholds, Some(reading.value));
        Some(Self {
            alert_status: status,
            since: if status == self.alert_status && self.since.is_some() {
                self.since
            } else {
                Some(reading.timestamp)
            },
            last_reading: Some(reading),
        })
    }

    /// The state after the thresholds change at `at`: the latest reading judged again. A status
    /// that changes begins at `at`.
    #[must_use]
    pub fn after_thresholds(&self, thresholds: &Thresholds, at: Timestamp) -> Self {
        let status = alert_status(thresholds, self.last_reading.map(|r| r.value));
        Self {
            alert_status: status,
            since: match self.last_reading {
                None => None,
                Some(_) if status == self.alert_status => self.since,
                Some(_) => Some(at),
            },
            last_reading: self.last_reading,
        }
    }

    /// The state once the readings that held the latest are removed, `remaining` the newest
    /// reading left (if any), judged with `thresholds`: a status that holds keeps its `since`, one
    /// that changes begins at the remaining reading's instant; with no reading left, the state of
    /// a device that never had one.
    #[must_use]
    pub fn after_latest_removed(
        &self,
        thresholds: &Thresholds,
        remaining: Option<ReadingPoint>,
    ) -> Self {
        let Some(reading) = remaining else {
            return Self::default();
        };
        let status = alert_status(thresholds, Some(reading.value));
        Self {
            alert_status: status,
            since: match self.since {
                Some(since) if status == self.alert_status => Some(since.min(reading.timestamp)),
                _ => Some(reading.timestamp),
            },
            last_reading: Some(reading),
        }
    }

    /// The first instant at which the device is stale, if it ever will be without a new reading.
    #[must_use]
    pub fn stale_from(&self, stale_after: Option<StaleAfter>) -> Option<Timestamp> {
        let last = self.last_reading?.timestamp;
        // Past the representable range it never turns stale.
        last.checked_add(stale_after?.duration())
            .and_then(|t| t.checked_add(Duration::microseconds(1)))
    }

    #[must_use]
    pub fn freshness(&self, stale_after: Option<StaleAfter>, now: Timestamp) -> Freshness {
        if self.last_reading.is_none() {
            Freshness::NoData
        } else if self.stale_from(stale_after).is_some_and(|t| t <= now) {
            Freshness::Stale
        } else {
            Freshness::Fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::new(time::macros::datetime!(2026-01-01 00:00 UTC) + Duration::seconds(seconds))
            .expect("in range")
    }

    fn point(seconds: i64, value: f64) -> ReadingPoint {
        ReadingPoint {
            timestamp: at(seconds),
            value,
        }
    }

    fn warning_above_30() -> Thresholds {
        Thresholds::new(None, None, Some(30.0), Some(40.0)).expect("ordered")
    }

    #[test]
    fn stale_after_takes_one_second_to_a_year() {
        assert!(StaleAfter::from_secs(0).is_err());
        assert!(StaleAfter::from_secs(-5).is_err());
        assert_eq!(StaleAfter::from_secs(1).map(StaleAfter::secs), Ok(1));
        assert!(StaleAfter::from_secs(i64::from(STALE_AFTER_MAX_SECS)).is_ok());
        assert!(StaleAfter::from_secs(i64::from(STALE_AFTER_MAX_SECS) + 1).is_err());
    }

    #[test]
    fn removing_the_latest_judges_the_newest_remaining_reading() {
        let t = warning_above_30();
        let s = DeviceState::default()
            .after_reading(&t, point(10, 20.0))
            .and_then(|s| s.after_reading(&t, point(20, 35.0)))
            .expect("newer");
        assert_eq!(s.alert_status, AlertStatus::Warning);
        let back = s.after_latest_removed(&t, Some(point(10, 20.0)));
        assert_eq!(
            (back.alert_status, back.since, back.last_reading),
            (AlertStatus::Normal, Some(at(10)), Some(point(10, 20.0)))
        );
        let none = s.after_latest_removed(&t, None);
        assert_eq!(none, DeviceState::default());
        let same = s.after_latest_removed(&t, Some(point(15, 36.0)));
        assert_eq!(
            (same.alert_status, same.since),
            (AlertStatus::Warning, Some(at(15)))
        );
    }

    #[test]
    fn since_moves_only_when_the_status_changes() {
        let t = warning_above_30();
        let s = DeviceState::default();
        assert_eq!(s.since, None);
        let s = s.after_reading(&t, point(10, 20.0)).expect("newer");
        assert_eq!(
            (s.alert_status, s.since),
            (AlertStatus::Normal, Some(at(10)))
        );
        let s = s.after_reading(&t, point(20, 25.0)).expect("newer");
        assert_eq!(s.since, Some(at(10)), "still normal: since stays");
        let s = s.after_reading(&t, point(30, 35.0)).expect("newer");
        assert_eq!(
            (s.alert_status, s.since),
            (AlertStatus::Warning, Some(at(30)))
        );
        assert_eq!(s.last_reading, Some(point(30, 35.0)));
    }

    #[test]
    fn an_older_reading_changes_nothing_and_one_at_the_same_instant_replaces() {
        let t = warning_above_30();
        let s = DeviceState::default()
            .after_reading(&t, point(30, 35.0))
            .expect("newer");
        assert_eq!(s.after_reading(&t, point(29, 50.0)), None);
        let replaced = s.after_reading(&t, point(30, 45.0)).expect("same instant");
        assert_eq!(replaced.alert_status, AlertStatus::Critical);
        assert_eq!(replaced.since, Some(at(30)));
    }

    #[test]
    fn a_threshold_change_judges_the_latest_reading_again() {
        let s = DeviceState::default()
            .after_reading(&warning_above_30(), point(10, 35.0))
            .expect("newer");
        let wider = Thresholds::new(None, None, Some(50.0), None).expect("ordered");
        let s2 = s.after_thresholds(&wider, at(100));
        assert_eq!(
            (s2.alert_status, s2.since),
            (AlertStatus::Normal, Some(at(100)))
        );
        let same = s.after_thresholds(&warning_above_30(), at(100));
        assert_eq!(same.since, Some(at(10)), "unchanged status keeps its since");
        let empty = DeviceState::default().after_thresholds(&wider, at(100));
        assert_eq!(
            empty,
            DeviceState::default(),
            "no reading: nothing to judge"
        );
    }

    #[test]
    fn stale_only_strictly_after_the_limit() {
        let after = StaleAfter::from_secs(60).ok();
        let s = DeviceState::default()
            .after_reading(&Thresholds::default(), point(0, 1.0))
            .expect("newer");
        assert_eq!(
            DeviceState::default().freshness(after, at(1000)),
            Freshness::NoData
        );
        assert_eq!(s.freshness(after, at(60)), Freshness::Fresh);
        assert_eq!(
            s.freshness(
                after,
                at(60)
                    .checked_add(Duration::microseconds(1))
                    .expect("in range")
            ),
            Freshness::Stale
        );
        assert_eq!(
            s.freshness(None, at(1_000_000)),
            Freshness::Fresh,
            "never stale"
        );
    }
}
