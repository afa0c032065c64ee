//! Time buckets of readings: intervals aligned to the calendar of an IANA time zone, the
//! aggregates a client asks for, and how empty buckets are filled.
//!
//! Alignment: buckets of a day or longer start at local midnight (weeks on Monday, months on the
//! 1st), so a DST day's bucket lasts 23 or 25 hours. Sub-day buckets follow the wall clock: a
//! boundary is every instant at which the zone's clock reads local midnight plus a whole
//! multiple of the interval. So 6-hour buckets start at 00, 06, 12 and 18 local every day (the
//! 00-06 bucket of a 25-hour day lasts 7 hours, of a 23-hour day 5); a clock time that occurs
//! twice (fall back) is a boundary at both instants, so hourly and quarter-hour buckets keep
//! their length through it; a clock time that never occurs (spring forward) is no boundary, so
//! the bucket before the gap takes its place (Berlin's spring day: 01:00-03:00 local is one
//! hourly bucket, 00:00-04:00 one 2-hour bucket). A local midnight that does not exist (a DST gap
//! at midnight) is the first instant after the gap, for every interval: each day starts a bucket.

use jiff::civil::Date;
use jiff::tz::{AmbiguousOffset, TimeZone};
use thiserror::Error;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::{DeviceName, Timestamp, Unit};

/// Most buckets one series may hold.
pub const MAX_BUCKETS_PER_SERIES: usize = 10_000;
/// Most buckets one answer may hold, over all its series (the most series it may have times
/// the buckets of each): a bound on what one request makes the service hold.
pub const MAX_BUCKETS_PER_ANSWER: usize = 500_000;
/// Most series one answer may hold.
pub const MAX_SERIES: usize = 1_000;
/// Shortest and longest interval given in seconds.
pub const MIN_INTERVAL_SECS: u32 = 60;
pub const MAX_INTERVAL_SECS: u32 = 31_536_000;
const DAY_SECS: u32 = 86_400;
/// The zone of a query that names none.
pub const DEFAULT_ZONE: &str = "UTC";

/// How long a bucket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// A number of seconds that divides a day: boundaries where the local clock reads a whole
    /// multiple of it past midnight.
    Within(u32),
    /// A number of whole local days, counted from Monday 1970-01-05 (a local date), so whole weeks start on Mondays.
    Days(u32),
    /// Monday to Monday.
    Week,
    /// The 1st to the 1st.
    Month,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IntervalError {
    #[error(
        "must be 1m, 5m, 15m, 1h, 6h, 1d, 1w, 1mo or whole seconds from {MIN_INTERVAL_SECS} to \
         {MAX_INTERVAL_SECS}, got '{0}'"
    )]
    Unknown(String),
    #[error("a sub-day interval must divide 24 hours ({DAY_SECS} s) as buckets align to local midnight, got {0} s")]
    NotDividingDay(u32),
    #[error(
        "an interval of a day or more must be whole days (a multiple of {DAY_SECS} s), got {0} s"
    )]
    NotWholeDays(u32),
}

impl Interval {
    /// # Errors
    /// [`IntervalError`] for text that is no interval, or seconds that do not fit the calendar.
    pub fn parse(text: &str) -> Result<Self, IntervalError> {
        // The error echoes what was sent, cut short: a client must not grow an answer at will.
        let unknown = || IntervalError::Unknown(text.chars().take(32).collect());
        let seconds = match text {
            "1m" => 60,
            "5m" => 300,
            "15m" => 900,
            "1h" => 3_600,
            "6h" => 21_600,
            "1d" => DAY_SECS,
            "1w" => return Ok(Self::Week),
            "1mo" => return Ok(Self::Month),
            digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits
                .parse::<u32>()
                .ok()
                .filter(|s| (MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(s))
                .ok_or_else(unknown)?,
            _ => return Err(unknown()),
        };
        if seconds < DAY_SECS {
            if DAY_SECS % seconds != 0 {
                return Err(IntervalError::NotDividingDay(seconds));
            }
            Ok(Self::Within(seconds))
        } else if seconds % DAY_SECS == 0 {
            Ok(Self::Days(seconds / DAY_SECS))
        } else {
            Err(IntervalError::NotWholeDays(seconds))
        }
    }
}

/// An IANA time zone from the database compiled into the binary.
#[derive(Debug, Clone)]
pub struct Zone {
    tz: TimeZone,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("must be an IANA time zone such as Europe/Berlin, got '{0}'")]
pub struct ZoneError(pub String);

impl Zone {
    /// # Errors
    /// [`ZoneError`] for a name the time-zone database does not know.
    pub fn parse(name: &str) -> Result<Self, ZoneError> {
        // jiff also reads POSIX TZ strings and fixed offsets through other calls; `get` takes
        // database names only (case-insensitively), and answers with the canonical spelling.
        if name.is_empty() || name.len() > 64 {
            return Err(ZoneError(name.chars().take(64).collect()));
        }
        let tz = TimeZone::get(name).map_err(|_| ZoneError(name.to_owned()))?;
        let name = tz.iana_name().unwrap_or(name).to_owned();
        Ok(Self { tz, name })
    }

    #[must_use]
    pub fn utc() -> Self {
        Self {
            tz: TimeZone::UTC,
            name: DEFAULT_ZONE.to_owned(),
        }
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    fn local_date(&self, t: jiff::Timestamp) -> Date {
        self.tz.to_datetime(t).date()
    }

    fn midnight(&self, date: Date) -> Option<jiff::Timestamp> {
        self.tz
            .to_ambiguous_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .compatible()
            .ok()
    }

    fn offset(&self, t: jiff::Timestamp) -> UtcOffset {
        UtcOffset::from_whole_seconds(self.tz.to_offset(t).seconds()).unwrap_or(UtcOffset::UTC)
    }
}

/// One aggregate of a bucket's readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Avg,
    Min,
    Max,
    Count,
    First,
    Last,
    Sum,
}

impl Aggregate {
    pub const ALL: [Self; 7] = [
        Self::Avg,
        Self::Min,
        Self::Max,
        Self::Count,
        Self::First,
        Self::Last,
        Self::Sum,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::Count => "count",
            Self::First => "first",
            Self::Last => "last",
            Self::Sum => "sum",
        }
    }
}

/// The aggregates a query asks for, in the order first asked, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregates(Vec<Aggregate>);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("must be a comma list of avg, min, max, count, first, last, sum, got '{0}'")]
pub struct AggregatesError(pub String);

impl Aggregates {
    /// # Errors
    /// [`AggregatesError`] for an empty list or an unknown name.
    pub fn parse(text: &str) -> Result<Self, AggregatesError> {
        let mut chosen = Vec::new();
        for part in text.split(',') {
            let aggregate = Aggregate::ALL
                .into_iter()
                .find(|a| a.name() == part.trim())
                .ok_or_else(|| AggregatesError(text.chars().take(64).collect()))?;
            if !chosen.contains(&aggregate) {
                chosen.push(aggregate);
            }
        }
        Ok(Self(chosen))
    }

    #[must_use]
    pub fn get(&self) -> &[Aggregate] {
        &self.0
    }

    /// Whether `first` or `last` is asked for (they cost the stores more).
    #[must_use]
    pub fn wants_ends(&self) -> bool {
        self.0.contains(&Aggregate::First) || self.0.contains(&Aggregate::Last)
    }
}

impl Default for Aggregates {
    fn default() -> Self {
        Self(vec![Aggregate::Avg])
    }
}

/// What empty buckets become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fill {
    /// Left out.
    #[default]
    None,
    /// Present, with null aggregates and count 0.
    Null,
    /// Present, carrying the last value known before them (count 0, sum null); null before the
    /// device's first reading.
    Previous,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("must be none, null or previous, got '{0}'")]
pub struct FillError(pub String);

impl Fill {
    /// # Errors
    /// [`FillError`] for anything else than `none`, `null` or `previous`.
    pub fn parse(text: &str) -> Result<Self, FillError> {
        match text {
            "none" => Ok(Self::None),
            "null" => Ok(Self::Null),
            "previous" => Ok(Self::Previous),
            other => Err(FillError(other.chars().take(64).collect())),
        }
    }
}

/// A bucket boundary: the instant, and the zone's offset there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    pub instant: Timestamp,
    /// The same instant at the zone's offset then (a DST day's buckets show both offsets).
    pub local: OffsetDateTime,
}

/// The contiguous buckets covering a range: `bounds[i]..bounds[i + 1]` is bucket `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketGrid {
    bounds: Vec<Boundary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the range needs more than {MAX_BUCKETS_PER_SERIES} buckets of this interval")]
pub struct TooManyBuckets;

impl BucketGrid {
    /// The aligned buckets overlapping `[since, until)`: the first holds `since`, the last the
    /// instant before `until`. At most [`MAX_BUCKETS_PER_SERIES`], whatever the range.
    ///
    /// # Errors
    /// [`TooManyBuckets`] when more would be needed.
    pub fn new(
        interval: Interval,
        zone: &Zone,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Self, TooManyBuckets> {
        // jiff's range ends a day short of 9999-12-31: later instants are clamped to it.
        let clamp = |t: Timestamp| to_jiff(t).unwrap_or(jiff::Timestamp::MAX);
        let (since, until) = (clamp(since), clamp(until));
        let mut bounds = Vec::new();
        let mut starts = Boundaries::from(interval, zone, since).peekable();
        let Some(mut start) = starts.next() else {
            return Ok(Self { bounds });
        };
        // The bucket holding `since` starts at the last boundary not after it.
        while let Some(next) = starts.next_if(|next| *next <= since) {
            start = next;
        }
        while start < until {
            if bounds.len() >= MAX_BUCKETS_PER_SERIES {
                return Err(TooManyBuckets);
            }
            let Some(end) = starts.next() else {
                // Past what the calendar can compute (year 9999): the range ends here.
                break;
            };
            bounds.push(boundary(zone, start));
            start = end;
        }
        if !bounds.is_empty() {
            bounds.push(boundary(zone, start));
        }
        Ok(Self { bounds })
    }

    /// The boundaries, one more than the buckets (none when there is no bucket).
    #[must_use]
    pub fn bounds(&self) -> &[Boundary] {
        &self.bounds
    }

    /// The boundary instants, for a store's query.
    #[must_use]
    pub fn instants(&self) -> Vec<Timestamp> {
        self.bounds.iter().map(|b| b.instant).collect()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bucket holding `t`, if any.
    #[must_use]
    pub fn index_of(&self, t: Timestamp) -> Option<usize> {
        let after = self.bounds.partition_point(|b| b.instant <= t);
        (after >= 1 && after < self.bounds.len()).then(|| after - 1)
    }
}

fn boundary(zone: &Zone, t: jiff::Timestamp) -> Boundary {
    let instant = from_jiff(t).unwrap_or(Timestamp::MAX);
    let local = instant
        .get()
        .checked_to_offset(zone.offset(t))
        .unwrap_or_else(|| instant.get());
    Boundary { instant, local }
}

/// The boundaries of an interval from the one holding (or just before) an instant on, in
/// order, each once; they end where the calendar does.
enum Boundaries<'z> {
    /// Days and longer: each bucket's end from its start.
    Calendar {
        interval: Interval,
        zone: &'z Zone,
        next: Option<jiff::Timestamp>,
    },
    /// Sub-day: the instants of each local day's clock times, a day at a time.
    Clock {
        seconds: u32,
        zone: &'z Zone,
        /// The day to compute when `pending` runs out.
        date: Option<Date>,
        pending: std::vec::IntoIter<jiff::Timestamp>,
        last: Option<jiff::Timestamp>,
    },
}

impl<'z> Boundaries<'z> {
    /// Starting at or before `t` (the caller skips to the last one not after it).
    fn from(interval: Interval, zone: &'z Zone, t: jiff::Timestamp) -> Self {
        match interval {
            Interval::Within(seconds) => {
                // The day before: its boundaries surely begin before `t` (a midnight in a gap
                // may follow the local date's first instants).
                let date = zone.local_date(t);
                Self::Clock {
                    seconds,
                    zone,
                    date: Some(date.yesterday().unwrap_or(date)),
                    pending: Vec::new().into_iter(),
                    last: None,
                }
            }
            _ => Self::Calendar {
                interval,
                zone,
                next: aligned_start(interval, zone, t),
            },
        }
    }
}

impl Iterator for Boundaries<'_> {
    type Item = jiff::Timestamp;

    fn next(&mut self) -> Option<jiff::Timestamp> {
        match self {
            Self::Calendar {
                interval,
                zone,
                next,
            } => {
                let start = (*next)?;
                *next = bucket_end(*interval, zone, start).filter(|end| *end > start);
                Some(start)
            }
            Self::Clock {
                seconds,
                zone,
                date,
                pending,
                last,
            } => loop {
                if let Some(t) = pending.next() {
                    // A day the calendar skips (Samoa, 2011-12-30) has the next day's midnight.
                    if last.is_some_and(|last| t <= last) {
                        continue;
                    }
                    *last = Some(t);
                    return Some(t);
                }
                let day = (*date)?;
                *date = day.tomorrow().ok();
                *pending = clock_bounds(*seconds, zone, day).into_iter();
            },
        }
    }
}

/// The sub-day boundaries of local day `date`, in order: its midnight (the first instant after
/// a gap that hides it), then every instant the clock reads a multiple of `seconds` past
/// midnight, both instants of a time that occurs twice, none of one that never occurs.
fn clock_bounds(seconds: u32, zone: &Zone, date: Date) -> Vec<jiff::Timestamp> {
    let mut out: Vec<jiff::Timestamp> = zone.midnight(date).into_iter().collect();
    let midnight = date.to_datetime(jiff::civil::Time::midnight());
    for k in 0..DAY_SECS / seconds {
        let Ok(wall) =
            midnight.checked_add(jiff::SignedDuration::from_secs(i64::from(k * seconds)))
        else {
            break;
        };
        let at = |offset: jiff::tz::Offset| offset.to_timestamp(wall).ok();
        match zone.tz.to_ambiguous_timestamp(wall).offset() {
            AmbiguousOffset::Unambiguous { offset } => out.extend(at(offset)),
            AmbiguousOffset::Fold { before, after } => {
                out.extend(at(before));
                out.extend(at(after));
            }
            AmbiguousOffset::Gap { .. } => {}
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn aligned_start(interval: Interval, zone: &Zone, t: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let date = zone.local_date(t);
    match interval {
        // Boundaries of the wall clock: see `Boundaries::Clock`.
        Interval::Within(_) => None,
        Interval::Days(n) => {
            // Counted from a Monday, so that whole weeks given in seconds start on Mondays as
            // `1w` does.
            let epoch = jiff::civil::date(1970, 1, 5);
            let days = i64::from((date - epoch).get_days());
            let back = days.rem_euclid(i64::from(n));
            zone.midnight(date.checked_sub(jiff::Span::new().days(back)).ok()?)
        }
        Interval::Week => {
            let back = date.weekday().to_monday_zero_offset();
            zone.midnight(date.checked_sub(jiff::Span::new().days(back)).ok()?)
        }
        Interval::Month => zone.midnight(date.first_of_month()),
    }
}

fn bucket_end(interval: Interval, zone: &Zone, start: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let date = zone.local_date(start);
    let next_day = |days: i64| {
        date.checked_add(jiff::Span::new().days(days))
            .ok()
            .and_then(|d| zone.midnight(d))
    };
    match interval {
        Interval::Within(_) => None,
        Interval::Days(n) => next_day(i64::from(n)),
        Interval::Week => next_day(7),
        Interval::Month => date
            .first_of_month()
            .checked_add(jiff::Span::new().months(1))
            .ok()
            .and_then(|d| zone.midnight(d)),
    }
}

fn to_jiff(t: Timestamp) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_nanosecond(t.get().unix_timestamp_nanos()).ok()
}

fn from_jiff(t: jiff::Timestamp) -> Option<Timestamp> {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .ok()
        .and_then(|t| Timestamp::new(t).ok())
}

/// What a store computes of one bucket's readings: enough for every aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketStats {
    /// The bucket's index in its grid.
    pub index: usize,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// The values of the bucket's earliest and latest reading.
    pub first: f64,
    pub last: f64,
}

impl BucketStats {
    /// The stats of one reading.
    #[must_use]
    pub fn of(index: usize, value: f64) -> Self {
        Self {
            index,
            count: 1,
            sum: value,
            min: value,
            max: value,
            first: value,
            last: value,
        }
    }

    /// Adds a reading later than every one counted so far.
    pub fn push(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.last = value;
    }
}

/// One device's bucket stats, as a store answers them.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesStats {
    pub device_id: Uuid,
    pub device_name: DeviceName,
    pub unit: Unit,
    /// Non-empty buckets in index order.
    pub buckets: Vec<BucketStats>,
    /// The value of the device's latest reading before the range (asked for `fill=previous`).
    pub before: Option<f64>,
}

impl SeriesStats {
    /// Readings counted in all buckets.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }
}

/// One bucket of an answer. `None` aggregates are nulls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub start: Boundary,
    pub end: Boundary,
    pub count: u64,
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub first: Option<f64>,
    pub last: Option<f64>,
    pub sum: Option<f64>,
}

impl Bucket {
    /// The value of `aggregate` (`count` as a number).
    #[must_use]
    pub fn value(&self, aggregate: Aggregate) -> Option<f64> {
        match aggregate {
            Aggregate::Avg => self.avg,
            Aggregate::Min => self.min,
            Aggregate::Max => self.max,
            // u64 counts of readings stay far below 2^53.
            #[allow(clippy::cast_precision_loss)]
            Aggregate::Count => Some(self.count as f64),
            Aggregate::First => self.first,
            Aggregate::Last => self.last,
            Aggregate::Sum => self.sum,
        }
    }
}

/// The buckets of one series: its stats on `grid`, empty buckets treated as `fill` says.
#[must_use]
pub fn fill_series(grid: &BucketGrid, series: &SeriesStats, fill: Fill) -> Vec<Bucket> {
    let bounds = grid.bounds();
    let at = |index: usize| (bounds[index], bounds[index + 1]);
    let mut out = Vec::with_capacity(match fill {
        Fill::None => series.buckets.len(),
        Fill::Null | Fill::Previous => grid.len(),
    });
    let mut stats = series
        .buckets
        .iter()
        .filter(|s| s.index < grid.len())
        .peekable();
    let mut previous = series.before;
    for index in 0..grid.len() {
        let (start, end) = at(index);
        if let Some(s) = stats.next_if(|s| s.index == index) {
            // u64 counts of readings stay far below 2^53.
            #[allow(clippy::cast_precision_loss)]
            let avg = s.sum / s.count as f64;
            out.push(Bucket {
                start,
                end,
                count: s.count,
                avg: Some(avg),
                min: Some(s.min),
                max: Some(s.max),
                first: Some(s.first),
                last: Some(s.last),
                sum: Some(s.sum),
            });
            previous = Some(s.last);
            continue;
        }
        let carried = match fill {
            Fill::None => continue,
            Fill::Null => None,
            Fill::Previous => previous,
        };
        out.push(Bucket {
            start,
            end,
            count: 0,
            avg: carried,
            min: carried,
            max: carried,
            first: carried,
            last: carried,
            sum: None,
        });
    }
    out
}

/// Which of a group's members get a series.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeriesChoice {
    devices: Option<Vec<Uuid>>,
    top: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SeriesChoiceError {
    #[error("must list from 1 to {MAX_SERIES} device UUIDs, got {0}")]
    DeviceCount(usize),
    #[error("must be from 1 to {MAX_SERIES}, got {0}")]
    Top(i64),
}

impl SeriesChoice {
    /// `devices` (repeats dropped) narrows the series to those members, `top` to the members
    /// with the most readings in the range (ties by name, then id).
    ///
    /// # Errors
    /// [`SeriesChoiceError`] for an empty or oversized list, or `top` outside 1..=1000.
    pub fn new(devices: Option<Vec<Uuid>>, top: Option<i64>) -> Result<Self, SeriesChoiceError> {
        let devices = devices
            .map(|ids| {
                let ids = crate::group::without_repeats(ids);
                if ids.is_empty() || ids.len() > MAX_SERIES {
                    Err(SeriesChoiceError::DeviceCount(ids.len()))
                } else {
                    Ok(ids)
                }
            })
            .transpose()?;
        let top = top
            .map(|n| {
                u16::try_from(n)
                    .ok()
                    .filter(|n| (1..=MAX_SERIES).contains(&usize::from(*n)))
                    .ok_or(SeriesChoiceError::Top(n))
            })
            .transpose()?;
        Ok(Self { devices, top })
    }

    #[must_use]
    pub fn devices(&self) -> Option<&[Uuid]> {
        self.devices.as_deref()
    }

    #[must_use]
    pub fn top(&self) -> Option<u16> {
        self.top
    }

    /// Most series a store should return: `top`, else one past [`MAX_SERIES`] so that an
    /// oversized answer shows.
    #[must_use]
    pub fn cap(&self) -> usize {
        self.top.map_or(MAX_SERIES + 1, usize::from)
    }

    /// Most series an answer of this choice can hold: the devices listed, `top`, else
    /// [`MAX_SERIES`].
    #[must_use]
    pub fn most_series(&self) -> usize {
        let listed = self.devices.as_ref().map_or(MAX_SERIES, Vec::len);
        self.top.map_or(listed, |top| listed.min(usize::from(top)))
    }

    /// Orders `series` by readings counted (most first, ties by name then id), keeping at most
    /// `top` when set; then by name for the answer.
    pub fn pick(&self, series: &mut Vec<SeriesStats>) {
        if let Some(top) = self.top {
            series.sort_by(|a, b| {
                b.total()
                    .cmp(&a.total())
                    .then_with(|| a.device_name.as_str().cmp(b.device_name.as_str()))
                    .then(a.device_id.cmp(&b.device_id))
            });
            series.truncate(usize::from(top));
        }
        series.sort_by(|a, b| {
            a.device_name
                .as_str()
                .cmp(b.device_name.as_str())
                .then(a.device_id.cmp(&b.device_id))
        });
    }
}

/// A bucketed readings query: the range, its grid and what to compute.
#[derive(Debug, Clone)]
pub struct BucketQuery {
    pub since: Timestamp,
    /// Exclusive end of the readings counted; `None`: no end (the grid reaches the query's now).
    pub until: Option<Timestamp>,
    pub grid: BucketGrid,
    pub aggregates: Aggregates,
    pub fill: Fill,
}

impl BucketQuery {
    /// Whether a store must find each device's reading before the range.
    #[must_use]
    pub fn wants_before(&self) -> bool {
        self.fill == Fill::Previous
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn t(value: OffsetDateTime) -> Timestamp {
        Timestamp::new(value).unwrap()
    }

    fn grid(
        interval: &str,
        zone: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> BucketGrid {
        BucketGrid::new(
            Interval::parse(interval).unwrap(),
            &Zone::parse(zone).unwrap(),
            t(since),
            t(until),
        )
        .unwrap()
    }

    /// Each bucket as (local start, hours long).
    fn spans(grid: &BucketGrid) -> Vec<(OffsetDateTime, i64)> {
        grid.bounds()
            .windows(2)
            .map(|w| {
                (
                    w[0].local,
                    (w[1].instant.get() - w[0].instant.get()).whole_hours(),
                )
            })
            .collect()
    }

    #[test]
    fn intervals_parse_by_name_or_seconds_and_fit_the_calendar() {
        assert_eq!(Interval::parse("1m"), Ok(Interval::Within(60)));
        assert_eq!(Interval::parse("6h"), Ok(Interval::Within(21_600)));
        assert_eq!(Interval::parse("1d"), Ok(Interval::Days(1)));
        assert_eq!(Interval::parse("172800"), Ok(Interval::Days(2)));
        assert_eq!(Interval::parse("1w"), Ok(Interval::Week));
        assert_eq!(Interval::parse("1mo"), Ok(Interval::Month));
        assert_eq!(Interval::parse("7200"), Ok(Interval::Within(7_200)));
        assert_eq!(
            Interval::parse("420"),
            Err(IntervalError::NotDividingDay(420))
        );
        assert!(matches!(
            Interval::parse("7m"),
            Err(IntervalError::Unknown(_))
        ));
        assert_eq!(
            Interval::parse("90000"),
            Err(IntervalError::NotWholeDays(90_000))
        );
        for bad in ["59", "31536001", "", "1y", "-60", "1 h", "60.0"] {
            assert!(Interval::parse(bad).is_err(), "{bad}");
        }
        let long = "9".repeat(500);
        assert_eq!(
            Interval::parse(&long),
            Err(IntervalError::Unknown("9".repeat(32)))
        );
        assert_eq!(Interval::parse("31536000"), Ok(Interval::Days(365)));
    }

    #[test]
    fn aggregates_fill_and_zones_parse() {
        assert_eq!(
            Aggregates::parse("min,max,min").unwrap().get(),
            &[Aggregate::Min, Aggregate::Max]
        );
        assert!(Aggregates::parse("avg,median").is_err());
        assert!(Aggregates::parse("").is_err());
        assert_eq!(Fill::parse("previous"), Ok(Fill::Previous));
        assert!(Fill::parse("linear").is_err());
        assert_eq!(
            Zone::parse("Europe/Berlin").unwrap().name(),
            "Europe/Berlin"
        );
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert!(Zone::parse("").is_err());
    }

    #[test]
    fn berlin_days_last_23_and_25_hours_across_dst() {
        let spring = grid(
            "1d",
            "Europe/Berlin",
            datetime!(2025-03-29 12:00 UTC),
            datetime!(2025-03-31 12:00 UTC),
        );
        assert_eq!(
            spans(&spring),
            vec![
                (datetime!(2025-03-29 00:00 +01:00), 24),
                (datetime!(2025-03-30 00:00 +01:00), 23),
                (datetime!(2025-03-31 00:00 +02:00), 24),
            ]
        );
        let autumn = grid(
            "1d",
            "Europe/Berlin",
            datetime!(2025-10-26 00:00 +02:00),
            datetime!(2025-10-27 00:00 +01:00),
        );
        assert_eq!(
            spans(&autumn),
            vec![(datetime!(2025-10-26 00:00 +02:00), 25)]
        );
    }

    #[test]
    fn hourly_buckets_of_a_dst_day_are_23_or_25_each_an_hour() {
        let autumn = grid(
            "1h",
            "Europe/Berlin",
            datetime!(2025-10-26 00:00 +02:00),
            datetime!(2025-10-27 00:00 +01:00),
        );
        assert_eq!(autumn.len(), 25);
        assert!(spans(&autumn).iter().all(|(_, h)| *h == 1));
        let spring = grid(
            "1h",
            "America/New_York",
            datetime!(2025-03-09 00:00 -05:00),
            datetime!(2025-03-10 00:00 -04:00),
        );
        assert_eq!(spring.len(), 23);
        // Six-hour buckets start at 00, 06, 12, 18 local: the first one lost the gap's hour.
        let six = grid(
            "6h",
            "America/New_York",
            datetime!(2025-03-09 00:00 -05:00),
            datetime!(2025-03-10 00:00 -04:00),
        );
        assert_eq!(
            spans(&six),
            vec![
                (datetime!(2025-03-09 00:00 -05:00), 5),
                (datetime!(2025-03-09 06:00 -04:00), 6),
                (datetime!(2025-03-09 12:00 -04:00), 6),
                (datetime!(2025-03-09 18:00 -04:00), 6),
            ]
        );
        let autumn_six = grid(
            "6h",
            "America/New_York",
            datetime!(2025-11-02 00:00 -04:00),
            datetime!(2025-11-03 00:00 -05:00),
        );
        assert_eq!(
            spans(&autumn_six),
            vec![
                (datetime!(2025-11-02 00:00 -04:00), 7),
                (datetime!(2025-11-02 06:00 -05:00), 6),
                (datetime!(2025-11-02 12:00 -05:00), 6),
                (datetime!(2025-11-02 18:00 -05:00), 6),
            ]
        );
    }

    #[test]
    fn sub_day_buckets_start_where_berlins_clock_shows_their_multiple() {
        let autumn = |interval| {
            grid(
                interval,
                "Europe/Berlin",
                datetime!(2025-10-26 00:00 +02:00),
                datetime!(2025-10-27 00:00 +01:00),
            )
        };
        // 6 h: 00-06 takes the repeated hour, then 06, 12, 18 as every day.
        assert_eq!(
            spans(&autumn("6h")),
            vec![
                (datetime!(2025-10-26 00:00 +02:00), 7),
                (datetime!(2025-10-26 06:00 +01:00), 6),
                (datetime!(2025-10-26 12:00 +01:00), 6),
                (datetime!(2025-10-26 18:00 +01:00), 6),
            ]
        );
        // 2 h: 02:00 shows twice, a boundary both times.
        assert_eq!(
            spans(&autumn("7200"))[..4],
            [
                (datetime!(2025-10-26 00:00 +02:00), 2),
                (datetime!(2025-10-26 02:00 +02:00), 1),
                (datetime!(2025-10-26 02:00 +01:00), 2),
                (datetime!(2025-10-26 04:00 +01:00), 2),
            ]
        );
        assert_eq!(autumn("7200").len(), 13);
        // Quarter hours stay quarter hours through the repeated hour: 25 h of them.
        let quarters = autumn("15m");
        assert_eq!(quarters.len(), 100);
        assert!(quarters
            .bounds()
            .windows(2)
            .all(|w| (w[1].instant.get() - w[0].instant.get()).whole_minutes() == 15));

        let spring = |interval| {
            grid(
                interval,
                "Europe/Berlin",
                datetime!(2025-03-30 00:00 +01:00),
                datetime!(2025-03-31 00:00 +02:00),
            )
        };
        // 1 h: 02:00 never shows, so 01:00-03:00 local is one bucket, an hour long.
        let hours = spring("1h");
        assert_eq!(hours.len(), 23);
        assert_eq!(
            spans(&hours)[..3],
            [
                (datetime!(2025-03-30 00:00 +01:00), 1),
                (datetime!(2025-03-30 01:00 +01:00), 1),
                (datetime!(2025-03-30 03:00 +02:00), 1),
            ]
        );
        // 2 h: 00:00-04:00 local is one bucket of 3 h.
        assert_eq!(
            spans(&spring("7200"))[..2],
            [
                (datetime!(2025-03-30 00:00 +01:00), 3),
                (datetime!(2025-03-30 04:00 +02:00), 2),
            ]
        );
        assert_eq!(spring("7200").len(), 11);
        // A range starting inside the merged bucket still starts at its aligned start.
        let inside = grid(
            "7200",
            "Europe/Berlin",
            datetime!(2025-03-30 03:30 +02:00),
            datetime!(2025-03-30 04:30 +02:00),
        );
        assert_eq!(
            spans(&inside),
            vec![
                (datetime!(2025-03-30 00:00 +01:00), 3),
                (datetime!(2025-03-30 04:00 +02:00), 2),
            ]
        );
    }

    #[test]
    fn new_york_days_and_months_follow_its_calendar() {
        let days = grid(
            "1d",
            "America/New_York",
            datetime!(2025-11-01 12:00 UTC),
            datetime!(2025-11-03 12:00 UTC),
        );
        assert_eq!(
            spans(&days),
            vec![
                (datetime!(2025-11-01 00:00 -04:00), 24),
                (datetime!(2025-11-02 00:00 -04:00), 25),
                (datetime!(2025-11-03 00:00 -05:00), 24),
            ]
        );
        let months = grid(
            "1mo",
            "America/New_York",
            datetime!(2025-10-15 00:00 UTC),
            datetime!(2025-11-15 00:00 UTC),
        );
        assert_eq!(
            spans(&months),
            vec![
                (datetime!(2025-10-01 00:00 -04:00), 31 * 24),
                (datetime!(2025-11-01 00:00 -04:00), 30 * 24 + 1),
            ]
        );
    }

    #[test]
    fn adelaide_half_hour_offsets_and_dst_shape_days_and_months() {
        // DST ends on 2025-04-06 (+10:30 to +09:30), starts on 2025-10-05.
        let months = grid(
            "1mo",
            "Australia/Adelaide",
            datetime!(2025-03-31 14:00 UTC),
            datetime!(2025-04-30 14:00 UTC),
        );
        assert_eq!(
            months.bounds().iter().map(|b| b.local).collect::<Vec<_>>(),
            vec![
                datetime!(2025-04-01 00:00 +10:30),
                datetime!(2025-05-01 00:00 +09:30),
            ]
        );
        assert_eq!(
            months.bounds()[0].instant.get(),
            datetime!(2025-03-31 13:30 UTC)
        );
        let days = grid(
            "1d",
            "Australia/Adelaide",
            datetime!(2025-10-04 12:00 +09:30),
            datetime!(2025-10-06 12:00 +10:30),
        );
        assert_eq!(
            spans(&days),
            vec![
                (datetime!(2025-10-04 00:00 +09:30), 24),
                (datetime!(2025-10-05 00:00 +09:30), 23),
                (datetime!(2025-10-06 00:00 +10:30), 24),
            ]
        );
    }

    #[test]
    fn kolkata_buckets_start_at_half_past_in_utc() {
        let hours = grid(
            "1h",
            "Asia/Kolkata",
            datetime!(2025-01-31 18:00 UTC),
            datetime!(2025-01-31 20:00 UTC),
        );
        assert_eq!(
            hours.instants().iter().map(|b| b.get()).collect::<Vec<_>>(),
            vec![
                datetime!(2025-01-31 17:30 UTC),
                datetime!(2025-01-31 18:30 UTC),
                datetime!(2025-01-31 19:30 UTC),
                datetime!(2025-01-31 20:30 UTC),
            ]
        );
        let months = grid(
            "1mo",
            "Asia/Kolkata",
            datetime!(2025-01-31 18:00 UTC),
            datetime!(2025-01-31 18:30 UTC),
        );
        assert_eq!(
            months.bounds().iter().map(|b| b.local).collect::<Vec<_>>(),
            vec![
                datetime!(2025-01-01 00:00 +05:30),
                datetime!(2025-02-01 00:00 +05:30),
            ]
        );
        assert_eq!(
            months.bounds()[1].instant.get(),
            datetime!(2025-01-31 18:30 UTC)
        );
    }

    #[test]
    fn adelaide_sub_day_buckets_follow_its_half_hour_offset_clock() {
        // 2025-04-06: 03:00 +10:30 falls back to 02:00 +09:30 (a 25-hour day).
        let autumn = |interval| {
            grid(
                interval,
                "Australia/Adelaide",
                datetime!(2025-04-06 00:00 +10:30),
                datetime!(2025-04-07 00:00 +09:30),
            )
        };
        assert_eq!(
            spans(&autumn("6h")),
            vec![
                (datetime!(2025-04-06 00:00 +10:30), 7),
                (datetime!(2025-04-06 06:00 +09:30), 6),
                (datetime!(2025-04-06 12:00 +09:30), 6),
                (datetime!(2025-04-06 18:00 +09:30), 6),
            ]
        );
        let hours = autumn("1h");
        assert_eq!(hours.len(), 25);
        assert!(spans(&hours).iter().all(|(_, h)| *h == 1));
        // Local hours are half past in UTC.
        assert_eq!(
            hours.bounds()[2].instant.get(),
            datetime!(2025-04-05 15:30 UTC)
        );
        assert_eq!(hours.bounds()[2].local, datetime!(2025-04-06 02:00 +10:30));
        assert_eq!(hours.bounds()[3].local, datetime!(2025-04-06 02:00 +09:30));
        // 2025-10-05: 02:00 +09:30 springs to 03:00 +10:30; 2 h: 00-04 lasts 3 hours.
        let spring = grid(
            "7200",
            "Australia/Adelaide",
            datetime!(2025-10-05 00:00 +09:30),
            datetime!(2025-10-06 00:00 +10:30),
        );
        assert_eq!(
            spans(&spring)[..2],
            [
                (datetime!(2025-10-05 00:00 +09:30), 3),
                (datetime!(2025-10-05 04:00 +10:30), 2),
            ]
        );
        assert_eq!(spring.len(), 11);
    }

    #[test]
    fn kolkata_six_hour_buckets_start_at_its_midnight_and_every_six_hours() {
        let six = grid(
            "6h",
            "Asia/Kolkata",
            datetime!(2025-06-01 00:00 UTC),
            datetime!(2025-06-01 12:00 UTC),
        );
        assert_eq!(
            six.instants().iter().map(|b| b.get()).collect::<Vec<_>>(),
            vec![
                datetime!(2025-05-31 18:30 UTC),
                datetime!(2025-06-01 00:30 UTC),
                datetime!(2025-06-01 06:30 UTC),
                datetime!(2025-06-01 12:30 UTC),
            ]
        );
        assert_eq!(six.bounds()[1].local, datetime!(2025-06-01 06:00 +05:30));
    }

    #[test]
    fn a_midnight_hidden_by_a_gap_starts_the_day_at_the_gaps_end() {
        // Havana springs forward at midnight: 2025-03-09 00:00 -05:00 becomes 01:00 -04:00.
        let six = grid(
            "6h",
            "America/Havana",
            datetime!(2025-03-08 18:00 -05:00),
            datetime!(2025-03-09 12:00 -04:00),
        );
        assert_eq!(
            spans(&six),
            vec![
                (datetime!(2025-03-08 18:00 -05:00), 6),
                (datetime!(2025-03-09 01:00 -04:00), 5),
                (datetime!(2025-03-09 06:00 -04:00), 6),
            ]
        );
    }

    #[test]
    fn weeks_start_on_monday_and_utc_is_the_default_zone() {
        let weeks = grid(
            "1w",
            "UTC",
            datetime!(2025-10-22 10:00 UTC),
            datetime!(2025-10-28 00:00 UTC),
        );
        assert_eq!(
            weeks.bounds().iter().map(|b| b.local).collect::<Vec<_>>(),
            vec![
                datetime!(2025-10-20 00:00 UTC),
                datetime!(2025-10-27 00:00 UTC),
                datetime!(2025-11-03 00:00 UTC),
            ]
        );
        assert_eq!(Zone::utc().name(), "UTC");
    }

    #[test]
    fn whole_weeks_given_in_seconds_start_on_monday_too() {
        let weeks = grid(
            "604800",
            "UTC",
            datetime!(2025-10-22 10:00 UTC),
            datetime!(2025-10-28 00:00 UTC),
        );
        assert_eq!(
            weeks.bounds().iter().map(|b| b.local).collect::<Vec<_>>(),
            vec![
                datetime!(2025-10-20 00:00 UTC),
                datetime!(2025-10-27 00:00 UTC),
                datetime!(2025-11-03 00:00 UTC),
            ]
        );
    }

    #[test]
    fn too_many_buckets_are_refused_whatever_the_range() {
        let zone = Zone::utc();
        let since = t(datetime!(2025-01-01 00:00 UTC));
        assert_eq!(
            BucketGrid::new(
                Interval::Within(60),
                &zone,
                since,
                t(datetime!(2025-01-08 00:00 UTC))
            ),
            Err(TooManyBuckets)
        );
        assert_eq!(
            BucketGrid::new(
                Interval::Within(60),
                &zone,
                since,
                t(datetime!(2025-01-07 00:00 UTC))
            )
            .unwrap()
            .len(),
            8_640
        );
        assert!(BucketGrid::new(
            Interval::Within(60),
            &zone,
            t(datetime!(0001-01-01 00:00 UTC)),
            Timestamp::MAX
        )
        .is_err());
        // The calendar's last day: buckets stop where it cannot go on.
        let end = BucketGrid::new(
            Interval::Month,
            &zone,
            t(datetime!(9999-11-15 00:00 UTC)),
            Timestamp::MAX,
        )
        .unwrap();
        assert!(end.len() <= 2);
    }

    #[test]
    fn readings_find_their_bucket() {
        let g = grid(
            "1h",
            "UTC",
            datetime!(2025-01-01 00:30 UTC),
            datetime!(2025-01-01 02:00 UTC),
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g.index_of(t(datetime!(2025-01-01 00:00 UTC))), Some(0));
        assert_eq!(g.index_of(t(datetime!(2025-01-01 01:59:59 UTC))), Some(1));
        assert_eq!(g.index_of(t(datetime!(2025-01-01 02:00 UTC))), None);
        assert_eq!(g.index_of(t(datetime!(2024-12-31 23:59 UTC))), None);
    }

    fn series(buckets: Vec<BucketStats>, before: Option<f64>) -> SeriesStats {
        SeriesStats {
            device_id: Uuid::nil(),
            device_name: DeviceName::parse("d").unwrap(),
            unit: Unit::parse("C").unwrap(),
            buckets,
            before,
        }
    }

    #[test]
    fn fill_leaves_out_nulls_or_carries_the_last_value() {
        let g = grid(
            "1h",
            "UTC",
            datetime!(2025-01-01 00:00 UTC),
            datetime!(2025-01-01 04:00 UTC),
        );
        let mut second = BucketStats::of(1, 2.0);
        second.push(4.0);
        let s = series(vec![second], None);
        let none = fill_series(&g, &s, Fill::None);
        assert_eq!(none.len(), 1);
        assert_eq!(
            (
                none[0].count,
                none[0].avg,
                none[0].first,
                none[0].last,
                none[0].sum
            ),
            (2, Some(3.0), Some(2.0), Some(4.0), Some(6.0))
        );
        let null = fill_series(&g, &s, Fill::Null);
        assert_eq!(null.len(), 4);
        assert_eq!((null[0].count, null[0].avg, null[0].sum), (0, None, None));
        let previous = fill_series(&g, &s, Fill::Previous);
        assert_eq!(
            previous[0].avg, None,
            "nothing known before the first reading"
        );
        assert_eq!(
            (
                previous[2].count,
                previous[2].avg,
                previous[2].min,
                previous[2].sum
            ),
            (0, Some(4.0), Some(4.0), None)
        );
        let known = fill_series(&g, &series(vec![second], Some(9.0)), Fill::Previous);
        assert_eq!(
            (known[0].avg, known[0].last, known[0].count),
            (Some(9.0), Some(9.0), 0)
        );
    }

    #[test]
    fn the_top_members_are_those_with_most_readings_then_by_name() {
        let named = |name: &str, count: u64| {
            let mut s = series(
                vec![BucketStats {
                    count,
                    ..BucketStats::of(0, 1.0)
                }],
                None,
            );
            s.device_name = DeviceName::parse(name).unwrap();
            s
        };
        let mut all = vec![named("c", 5), named("b", 1), named("a", 1), named("d", 9)];
        SeriesChoice::new(None, Some(3)).unwrap().pick(&mut all);
        let names: Vec<_> = all
            .iter()
            .map(|s| s.device_name.as_str().to_owned())
            .collect();
        assert_eq!(names, ["a", "c", "d"]);
        assert!(SeriesChoice::new(None, Some(0)).is_err());
        assert!(SeriesChoice::new(None, Some(1001)).is_err());
        assert!(SeriesChoice::new(Some(vec![]), None).is_err());
        assert_eq!(
            SeriesChoice::new(Some(vec![Uuid::nil(), Uuid::nil()]), None)
                .unwrap()
                .devices()
                .map(<[Uuid]>::len),
            Some(1)
        );
    }
}
