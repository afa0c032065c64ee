//! Readings: one value of one device at one instant.

use thiserror::Error;
use time::Duration;
use uuid::Uuid;

use crate::Timestamp;

/// Most readings one ingest request may carry.
pub const MAX_READINGS_PER_BATCH: usize = 10_000;
/// Look-back bounds of reading queries, in hours (up to a year).
pub const MAX_LOOKBACK_HOURS: u32 = 8_760;
/// Most readings one query returns.
pub const MAX_READINGS_PER_QUERY: u32 = 10_000;
/// Most readings one streamed export returns.
pub const MAX_READINGS_PER_EXPORT: u32 = 10_000_000;
/// The longest one streamed export runs, in seconds: it is not held to a request's deadline,
/// but ends.
pub const EXPORT_DEADLINE_SECS: u64 = 900;
/// Most readings a page may skip with `offset` (a cursor goes anywhere).
pub const MAX_READINGS_OFFSET: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("must be a finite number")]
pub struct ReadingValueError;

/// A measured value; always finite (JSON cannot carry NaN or infinities either).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct ReadingValue(f64);

impl ReadingValue {
    /// # Errors
    /// [`ReadingValueError`] for NaN or an infinity.
    pub fn new(value: f64) -> Result<Self, ReadingValueError> {
        if value.is_finite() {
            Ok(Self(value))
        } else {
            Err(ReadingValueError)
        }
    }

    #[must_use]
    pub fn get(self) -> f64 {
        self.0
    }
}

/// One reading to store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub device_id: Uuid,
    pub timestamp: Timestamp,
    pub value: ReadingValue,
}

/// How far ahead of the server's clock a reading may be stamped. A reading from further ahead
/// would stay its device's latest until that time comes, hiding every later alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxFutureSkew {
    seconds: u32,
}

/// The skew allowed when none is configured: five minutes.
pub const DEFAULT_MAX_FUTURE_SKEW_SECS: u32 = 300;

impl Default for MaxFutureSkew {
    fn default() -> Self {
        Self::from_secs(DEFAULT_MAX_FUTURE_SKEW_SECS)
    }
}

/// A reading stamped later than the allowed skew after now.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("more than {0} s in the future")]
pub struct FutureTimestampError(pub u32);

impl MaxFutureSkew {
    #[must_use]
    pub fn from_secs(seconds: u32) -> Self {
        Self { seconds }
    }

    #[must_use]
    pub fn secs(self) -> u32 {
        self.seconds
    }

    /// Admits a reading's `timestamp` when it is at most the skew after `now`.
    ///
    /// # Errors
    /// [`FutureTimestampError`] when it lies further ahead.
    pub fn admit(
        self,
        timestamp: Timestamp,
        now: Timestamp,
    ) -> Result<Timestamp, FutureTimestampError> {
        if timestamp.get() - now.get() > Duration::seconds(i64::from(self.seconds)) {
            Err(FutureTimestampError(self.seconds))
        } else {
            Ok(timestamp)
        }
    }
}

/// A batch of readings, at most [`MAX_READINGS_PER_BATCH`], with at most one reading per device
/// and instant (a later entry for the same device and instant replaces an earlier one, as a
/// re-sent reading replaces the stored one).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingBatch(Vec<Reading>);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadingBatchError {
    #[error("must hold at least one reading")]
    Empty,
    #[error("must hold at most {MAX_READINGS_PER_BATCH} readings, got {0}")]
    TooMany(usize),
}

impl ReadingBatch {
    /// # Errors
    /// [`ReadingBatchError`] for an empty or oversized batch.
    pub fn new(readings: Vec<Reading>) -> Result<Self, ReadingBatchError> {
        if readings.is_empty() {
            return Err(ReadingBatchError::Empty);
        }
        if readings.len() > MAX_READINGS_PER_BATCH {
            return Err(ReadingBatchError::TooMany(readings.len()));
        }
        let mut seen = std::collections::HashMap::with_capacity(readings.len());
        let mut unique: Vec<Reading> = Vec::with_capacity(readings.len());
        for reading in readings {
            match seen.entry((reading.device_id, reading.timestamp)) {
                std::collections::hash_map::Entry::Occupied(at) => unique[*at.get()] = reading,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(unique.len());
                    unique.push(reading);
                }
            }
        }
        Ok(Self(unique))
    }

    #[must_use]
    pub fn readings(&self) -> &[Reading] {
        &self.0
    }

    #[must_use]
    pub fn into_readings(self) -> Vec<Reading> {
        self.0
    }
}

/// Where a page of readings stopped, in their order (newest first, ties by device id): the next
/// page holds only readings strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadingPosition {
    pub timestamp: Timestamp,
    pub device_id: Uuid,
}

impl ReadingPosition {
    /// Whether a reading of `device_id` at `timestamp` comes strictly after this position.
    #[must_use]
    pub fn precedes(&self, timestamp: Timestamp, device_id: Uuid) -> bool {
        timestamp < self.timestamp || (timestamp == self.timestamp && device_id > self.device_id)
    }
}

/// Which readings a query wants: those at or after `since` (and before `until`, when set), newest
/// first, after `after` when set, skipping `offset`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadingQuery {
    since: Timestamp,
    until: Option<Timestamp>,
    limit: u32,
    offset: u32,
    after: Option<ReadingPosition>,
    /// How far back from the moment it was asked the query looks, when it looks back from then
    /// rather than between instants the client named.
    look_back: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadingQueryError {
    #[error("must be from 1 to {MAX_LOOKBACK_HOURS}, got {0}")]
    Hours(i64),
    #[error("must be from 1 to {MAX_READINGS_PER_QUERY}, got {0}")]
    Limit(i64),
    #[error("must be later than start_time")]
    EmptyRange,
    #[error("must be from 1 to {MAX_READINGS_PER_EXPORT}, got {0}")]
    ExportLimit(i64),
    #[error("must be from 0 to {MAX_READINGS_OFFSET}, got {0}")]
    Offset(i64),
}

impl ReadingQuery {
    /// The last `hours` hours before `now`, at most `limit` readings.
    ///
    /// # Errors
    /// [`ReadingQueryError`] when `hours` is outside 1..=8760 or `limit` outside 1..=10000.
    pub fn last_hours(now: Timestamp, hours: i64, limit: i64) -> Result<Self, ReadingQueryError> {
        if !(1..=i64::from(MAX_LOOKBACK_HOURS)).contains(&hours) {
            return Err(ReadingQueryError::Hours(hours));
        }
        let limit = u32::try_from(limit)
            .ok()
            .filter(|l| (1..=MAX_READINGS_PER_QUERY).contains(l))
            .ok_or(ReadingQueryError::Limit(limit))?;
        let since = now.checked_add(Duration::hours(-hours)).unwrap_or_else(|| {
            Timestamp::new(time::macros::datetime!(0001-01-01 0:00 UTC))
                .expect("year 1 is in range")
        });
        Ok(Self {
            since,
            until: None,
            limit,
            offset: 0,
            after: None,
            look_back: Some(Duration::hours(hours)),
        })
    }

    /// Readings in `[start, end)`, at most `limit`. Without `start`: the 24 hours before `end`;
    /// without `end`: everything from `start` on.
    ///
    /// # Errors
    /// [`ReadingQueryError::EmptyRange`] when `end <= start`; [`ReadingQueryError::Limit`] as for
    /// [`ReadingQuery::last_hours`].
    pub fn between(
        start: Option<Timestamp>,
        end: Option<Timestamp>,
        now: Timestamp,
        limit: i64,
    ) -> Result<Self, ReadingQueryError> {
        let limit = u32::try_from(limit)
            .ok()
            .filter(|l| (1..=MAX_READINGS_PER_QUERY).contains(l))
            .ok_or(ReadingQueryError::Limit(limit))?;
        let since = match (start, end) {
            (Some(start), _) => start,
            (None, end) => Self::last_hours(end.unwrap_or(now), 24, 1)?.since,
        };
        if end.is_some_and(|end| end <= since) {
            return Err(ReadingQueryError::EmptyRange);
        }
        Ok(Self {
            since,
            until: end,
            limit,
            offset: 0,
            after: None,
            look_back: (start.is_none() && end.is_none()).then(|| Duration::hours(24)),
        })
    }

    #[must_use]
    pub fn since(&self) -> Timestamp {
        self.since
    }

    /// The exclusive end of the range, if any.
    #[must_use]
    pub fn until(&self) -> Option<Timestamp> {
        self.until
    }

    #[must_use]
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Readings to skip before the first one returned.
    #[must_use]
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// The position the readings returned come strictly after, if any.
    #[must_use]
    pub fn after(&self) -> Option<ReadingPosition> {
        self.after
    }

    /// The same range, skipping `offset` readings first.
    ///
    /// # Errors
    /// [`ReadingQueryError::Offset`] outside 0..=[`MAX_READINGS_OFFSET`].
    pub fn skipping(self, offset: i64) -> Result<Self, ReadingQueryError> {
        let offset = u32::try_from(offset)
            .ok()
            .filter(|o| *o <= MAX_READINGS_OFFSET)
            .ok_or(ReadingQueryError::Offset(offset))?;
        Ok(Self { offset, ..self })
    }

    /// The range of an earlier page (`since`, `until`: fixed, whenever asked), continued
    /// strictly after `after`.
    #[must_use]
    pub fn resumed(
        self,
        since: Timestamp,
        until: Option<Timestamp>,
        after: ReadingPosition,
    ) -> Self {
        Self {
            since,
            until,
            after: Some(after),
            offset: 0,
            look_back: None,
            ..self
        }
    }

    /// The same query with a streamed export's bound on `limit` instead of a page's.
    ///
    /// # Errors
    /// [`ReadingQueryError::ExportLimit`] outside 1..=[`MAX_READINGS_PER_EXPORT`].
    pub fn exporting(self, limit: i64) -> Result<Self, ReadingQueryError> {
        let limit = u32::try_from(limit)
            .ok()
            .filter(|l| (1..=MAX_READINGS_PER_EXPORT).contains(l))
            .ok_or(ReadingQueryError::ExportLimit(limit))?;
        Ok(Self { limit, ..self })
    }

    /// The same query asking one reading more than its limit: whether that one comes back tells
    /// whether more readings follow the page.
    #[must_use]
    pub fn one_more(self) -> Self {
        Self {
            limit: self.limit.saturating_add(1),
            ..self
        }
    }

    /// How far back from the moment it was asked the query looks (`None` between fixed
    /// instants): its answer changes with time alone as readings leave that reach.
    #[must_use]
    pub fn look_back(&self) -> Option<Duration> {
        self.look_back
    }

    /// Until when an answer whose oldest reading is `oldest` holds by time alone: looking back
    /// from each request, it changes when that reading falls out of reach (newer readings come
    /// only with writes). None: time alone never changes it (fixed instants, or no reading).
    #[must_use]
    pub fn answer_holds_until(&self, oldest: Option<Timestamp>) -> Option<Timestamp> {
        self.look_back
            .zip(oldest)
            .and_then(|(look_back, oldest)| oldest.checked_add(look_back))
    }
}

/// A stored reading of a known device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadingPoint {
    pub timestamp: Timestamp,
    pub value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn at(t: time::OffsetDateTime) -> Timestamp {
        Timestamp::new(t).unwrap()
    }

    #[test]
    fn a_reading_may_be_stamped_at_most_the_skew_ahead_of_now() {
        let now = at(datetime!(2025-06-01 12:00 UTC));
        let skew = MaxFutureSkew::default();
        assert_eq!(skew.secs(), 300);
        for fine in [
            datetime!(2020-01-01 0:00 UTC),
            datetime!(2025-06-01 12:00 UTC),
            datetime!(2025-06-01 12:05 UTC),
        ] {
            assert_eq!(skew.admit(at(fine), now), Ok(at(fine)));
        }
        for ahead in [
            datetime!(2025-06-01 12:05:00.000_001 UTC),
            datetime!(2099-01-01 0:00 UTC),
            datetime!(9999-12-31 23:59 UTC),
        ] {
            let err = skew.admit(at(ahead), now).unwrap_err();
            assert_eq!(err.to_string(), "more than 300 s in the future");
        }
        let none = MaxFutureSkew::from_secs(0);
        assert!(none.admit(now, now).is_ok());
        assert!(none
            .admit(at(datetime!(2025-06-01 12:00:00.000_001 UTC)), now)
            .is_err());
    }

    #[test]
    fn values_must_be_finite() {
        assert!(ReadingValue::new(1.5).is_ok());
        assert!(ReadingValue::new(f64::NAN).is_err());
        assert!(ReadingValue::new(f64::INFINITY).is_err());
    }

    #[test]
    fn a_batch_keeps_the_last_reading_per_device_and_instant() {
        let device = Uuid::new_v4();
        let t = at(datetime!(2025-01-01 0:00 UTC));
        let reading = |v: f64| Reading {
            device_id: device,
            timestamp: t,
            value: ReadingValue::new(v).unwrap(),
        };
        let batch = ReadingBatch::new(vec![reading(1.0), reading(2.0)]).unwrap();
        assert_eq!(batch.readings(), &[reading(2.0)]);
        assert_eq!(ReadingBatch::new(vec![]), Err(ReadingBatchError::Empty));
        assert_eq!(
            ReadingBatch::new(vec![reading(1.0); MAX_READINGS_PER_BATCH + 1]),
            Err(ReadingBatchError::TooMany(MAX_READINGS_PER_BATCH + 1))
        );
    }

    #[test]
    fn queries_are_bounded() {
        let now = at(datetime!(2025-01-02 0:00 UTC));
        let q = ReadingQuery::last_hours(now, 24, 1000).unwrap();
        assert_eq!(q.since(), at(datetime!(2025-01-01 0:00 UTC)));
        assert_eq!(q.limit(), 1000);
        assert_eq!(
            ReadingQuery::last_hours(now, 0, 10),
            Err(ReadingQueryError::Hours(0))
        );
        assert_eq!(
            ReadingQuery::last_hours(now, 8761, 10),
            Err(ReadingQueryError::Hours(8761))
        );
        assert_eq!(
            ReadingQuery::last_hours(now, 1, 0),
            Err(ReadingQueryError::Limit(0))
        );
        assert_eq!(
            ReadingQuery::last_hours(now, 1, 10_001),
            Err(ReadingQueryError::Limit(10_001))
        );
        assert!(ReadingQuery::last_hours(now, 8760, 10_000).is_ok());
        let range = ReadingQuery::between(
            Some(at(datetime!(2025-01-01 0:00 UTC))),
            Some(at(datetime!(2025-01-01 6:00 UTC))),
            now,
            10,
        )
        .unwrap();
        assert_eq!(
            (range.since(), range.until()),
            (
                at(datetime!(2025-01-01 0:00 UTC)),
                Some(at(datetime!(2025-01-01 6:00 UTC)))
            )
        );
        let before_end =
            ReadingQuery::between(None, Some(at(datetime!(2025-01-01 6:00 UTC))), now, 10).unwrap();
        assert_eq!(
            before_end.since(),
            at(datetime!(2024-12-31 6:00 UTC)),
            "24 hours before the end"
        );
        assert_eq!(
            ReadingQuery::between(
                Some(at(datetime!(2025-01-02 0:00 UTC))),
                Some(at(datetime!(2025-01-02 0:00 UTC))),
                now,
                10
            ),
            Err(ReadingQueryError::EmptyRange)
        );
        let early = ReadingQuery::last_hours(at(datetime!(0001-01-01 1:00 UTC)), 24, 1).unwrap();
        assert_eq!(early.since(), at(datetime!(0001-01-01 0:00 UTC)));
    }

    #[test]
    fn an_answer_looking_back_holds_until_its_oldest_reading_falls_out_of_reach() {
        let now = Timestamp::now();
        let oldest = now.checked_add(Duration::minutes(-30)).expect("in range");
        let hours = ReadingQuery::last_hours(now, 2, 100).expect("valid");
        assert_eq!(
            hours.answer_holds_until(Some(oldest)),
            oldest.checked_add(Duration::hours(2))
        );
        assert_eq!(
            hours.answer_holds_until(None),
            None,
            "no reading: nothing leaves"
        );
        let fixed = ReadingQuery::between(Some(oldest), Some(now), now, 100).expect("valid");
        assert_eq!(
            fixed.answer_holds_until(Some(oldest)),
            None,
            "fixed instants"
        );
    }

    #[test]
    fn only_queries_reaching_back_from_now_have_a_look_back() {
        let now = at(datetime!(2025-01-02 0:00 UTC));
        let hours = ReadingQuery::last_hours(now, 6, 10).unwrap();
        assert_eq!(hours.look_back(), Some(Duration::hours(6)));
        let start = Some(at(datetime!(2025-01-01 0:00 UTC)));
        for (start, end) in [(start, None), (None, Some(now)), (start, Some(now))] {
            let fixed = ReadingQuery::between(start, end, now, 10).unwrap();
            assert_eq!(fixed.look_back(), None, "{start:?}..{end:?}");
        }
        let unbounded = ReadingQuery::between(None, None, now, 10).unwrap();
        assert_eq!(unbounded.look_back(), Some(Duration::hours(24)));
    }
}
