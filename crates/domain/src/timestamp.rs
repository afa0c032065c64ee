//! Instants as the service stores them: UTC, microsecond precision, within years 1..=9999.

use thiserror::Error;
use time::{Duration, OffsetDateTime, UtcOffset};

/// An instant both stores represent exactly: UTC, truncated to the microsecond (PostgreSQL's
/// `timestamptz` precision), between 0001-01-01 and 9999-12-31 (what RFC 3339 can write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z")]
pub struct TimestampError;

impl Timestamp {
    /// The last instant representable: 9999-12-31T23:59:59.999999Z.
    pub const MAX: Self = Self(time::macros::datetime!(9999-12-31 23:59:59.999_999 UTC));
    /// The first instant representable: 0001-01-01T00:00:00Z.
    pub const MIN: Self = Self(time::macros::datetime!(0001-01-01 0:00 UTC));

    /// # Errors
    /// [`TimestampError`] when the instant, taken to UTC, falls outside years 1..=9999.
    pub fn new(value: OffsetDateTime) -> Result<Self, TimestampError> {
        // checked: the UTC instant of a local time late on 9999-12-31 lies in year 10000.
        let utc = value
            .checked_to_offset(UtcOffset::UTC)
            .ok_or(TimestampError)?;
        if !(1..=9999).contains(&utc.year()) {
            return Err(TimestampError);
        }
        let micros = utc.nanosecond() / 1_000 * 1_000;
        utc.replace_nanosecond(micros)
            .map(Self)
            .map_err(|_| TimestampError)
    }

    /// For instants the service makes itself (the clock), which are always in range.
    #[must_use]
    pub fn now() -> Self {
        Self::new(OffsetDateTime::now_utc()).expect("the system clock is within years 1..=9999")
    }

    #[must_use]
    pub fn get(self) -> OffsetDateTime {
        self.0
    }

    #[must_use]
    pub fn checked_add(self, by: Duration) -> Option<Self> {
        self.0.checked_add(by).and_then(|t| Self::new(t).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_timestamp_is_normalised_to_utc_microseconds() {
        let t = Timestamp::new(datetime!(2025-10-20 12:30:00.123_456_789 +02:00)).unwrap();
        assert_eq!(t.get(), datetime!(2025-10-20 10:30:00.123_456 UTC));
    }

    #[test]
    fn a_timestamp_outside_years_1_to_9999_is_refused() {
        assert_eq!(
            Timestamp::new(datetime!(0001-01-01 00:30:00 +01:00)),
            Err(TimestampError)
        );
        assert!(Timestamp::new(datetime!(0001-01-01 00:00:00 UTC)).is_ok());
        assert!(Timestamp::new(datetime!(9999-12-31 23:59:59.999_999 UTC)).is_ok());
        assert_eq!(
            Timestamp::new(datetime!(9999-12-31 23:00:00 -05:00)),
            Err(TimestampError),
            "its UTC instant is in year 10000"
        );
    }
}
