//! Recurring maintenance slots in a real time zone.
//!
//! A slot is `[start, end)` in local wall-clock time on each day that matches both `dow` and
//! `days_of_month` (each absent = every day). When the end is not after the start, the slot runs
//! past midnight and belongs to the day it starts on. Local times are turned into instants with
//! the "compatible" rule (RFC 5545): a start that does not exist (the clock jumps forward over it)
//! moves forward by the length of the jump; one that occurs twice (the clock falls back) takes the
//! first, earlier occurrence.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use thiserror::Error;

use crate::Timestamp;

/// The zone a recurrence is read in when none is given.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// Why a `recurring` rule was refused. [`RecurrenceError::field`] names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecurrenceError {
    #[error("must not be empty (leave it out to mean every day)")]
    NoDays,
    #[error("must be from 0 (Sunday) to 6 (Saturday), got {value}")]
    DayOutOfRange { index: usize, value: i64 },
    #[error("must not be empty (leave it out to mean every day of the month)")]
    NoDaysOfMonth,
    #[error("must be from 1 to 31, or from -1 to -31 counting from the month's end, got {value}")]
    DayOfMonthOutOfRange { index: usize, value: i64 },
    #[error("must be from 0 to 23, got {0}")]
    StartHourOutOfRange(i64),
    #[error("must be from 1 to 24, or 0 with end_minute from 1 to 59, got {0}")]
    EndHourOutOfRange(i64),
    #[error("must be from 0 to 59, got {0}")]
    StartMinuteOutOfRange(i64),
    #[error("must be from 0 to 59, got {0}")]
    EndMinuteOutOfRange(i64),
    #[error("must be 0 when end_hour is 24, got {0}")]
    EndMinutePastMidnight(i64),
    #[error("must differ from the start (the slot would be empty)")]
    EmptySlot,
    #[error("'{0}' is not a known IANA time zone name")]
    UnknownTimezone(String),
}

impl RecurrenceError {
    /// The JSON path of the offending value, relative to the window.
    #[must_use]
    pub fn field(&self) -> String {
        match self {
            Self::NoDays => "recurring.dow".to_owned(),
            Self::DayOutOfRange { index, .. } => format!("recurring.dow[{index}]"),
            Self::NoDaysOfMonth => "recurring.days_of_month".to_owned(),
            Self::DayOfMonthOutOfRange { index, .. } => format!("recurring.days_of_month[{index}]"),
            Self::StartHourOutOfRange(_) => "recurring.start_hour".to_owned(),
            Self::EndHourOutOfRange(_) | Self::EmptySlot => "recurring.end_hour".to_owned(),
            Self::StartMinuteOutOfRange(_) => "recurring.start_minute".to_owned(),
            Self::EndMinuteOutOfRange(_) | Self::EndMinutePastMidnight(_) => {
                "recurring.end_minute".to_owned()
            }
            Self::UnknownTimezone(_) => "recurring.timezone".to_owned(),
        }
    }
}

/// The raw parts of a rule, as a client sends them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecurrenceParts<'a> {
    pub dow: Option<&'a [i64]>,
    pub days_of_month: Option<&'a [i64]>,
    pub start_hour: i64,
    pub start_minute: Option<i64>,
    pub end_hour: i64,
    pub end_minute: Option<i64>,
    pub timezone: Option<&'a str>,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Recurrence {
    days: Option<Vec<u8>>,
    days_of_month: Option<Vec<i8>>,
    start: (u8, u8),
    end: (u8, u8),
    timezone_name: String,
    timezone: TimeZone,
}

impl PartialEq for Recurrence {
    fn eq(&self, other: &Self) -> bool {
        self.days == other.days
            && self.days_of_month == other.days_of_month
            && self.start == other.start
            && self.end == other.end
            && self.timezone_name == other.timezone_name
    }
}

impl Eq for Recurrence {}

fn in_range(value: i64, range: std::ops::RangeInclusive<i64>) -> Option<u8> {
    range
        .contains(&value)
        .then(|| u8::try_from(value).ok())
        .flatten()
}

impl Recurrence {
    /// The seed's shape: a daily slot of whole hours in UTC.
    ///
    /// # Errors
    /// As [`Recurrence::from_parts`].
    pub fn new(
        days: Option<&[i64]>,
        start_hour: i64,
        end_hour: i64,
    ) -> Result<Self, RecurrenceError> {
        Self::from_parts(RecurrenceParts {
            dow: days,
            start_hour,
            end_hour,
            ..RecurrenceParts::default()
        })
    }

    /// Days are kept sorted and without repeats; the zone name is kept as the database spells it.
    ///
    /// # Errors
    /// [`RecurrenceError`] for an empty day list, a value out of its range, an empty slot, or an
    /// unknown time zone.
    pub fn from_parts(parts: RecurrenceParts<'_>) -> Result<Self, RecurrenceError> {
        let days = match parts.dow {
            None => None,
            Some([]) => return Err(RecurrenceError::NoDays),
            Some(values) => {
                let mut days = values
                    .iter()
                    .enumerate()
                    .map(|(index, &value)| {
                        in_range(value, 0..=6)
                            .ok_or(RecurrenceError::DayOutOfRange { index, value })
                    })
                    .collect::<Result<Vec<u8>, _>>()?;
                days.sort_unstable();
                days.dedup();
                Some(days)
            }
        };
        let days_of_month = match parts.days_of_month {
            None => None,
            Some([]) => return Err(RecurrenceError::NoDaysOfMonth),
            Some(values) => {
                let mut days = values
                    .iter()
                    .enumerate()
                    .map(|(index, &value)| {
                        if (1..=31).contains(&value) || (-31..=-1).contains(&value) {
                            Ok(i8::try_from(value).expect("within -31..=31"))
                        } else {
                            Err(RecurrenceError::DayOfMonthOutOfRange { index, value })
                        }
                    })
                    .collect::<Result<Vec<i8>, _>>()?;
                days.sort_unstable();
                days.dedup();
                Some(days)
            }
        };
        let start_hour = in_range(parts.start_hour, 0..=23)
            .ok_or(RecurrenceError::StartHourOutOfRange(parts.start_hour))?;
        let end_hour = in_range(parts.end_hour, 0..=24)
            .ok_or(RecurrenceError::EndHourOutOfRange(parts.end_hour))?;
        let start_minute = parts.start_minute.unwrap_or(0);
        let start_minute = in_range(start_minute, 0..=59)
            .ok_or(RecurrenceError::StartMinuteOutOfRange(start_minute))?;
        let end_minute = parts.end_minute.unwrap_or(0);
        let end_minute =
            in_range(end_minute, 0..=59).ok_or(RecurrenceError::EndMinuteOutOfRange(end_minute))?;
        if end_hour == 24 && end_minute != 0 {
            return Err(RecurrenceError::EndMinutePastMidnight(i64::from(
                end_minute,
            )));
        }
        // 00:mm ends a slot in the hour after midnight; 00:00 would be 24:00 spelt another way.
        if end_hour == 0 && end_minute == 0 {
            return Err(RecurrenceError::EndHourOutOfRange(0));
        }
        // 24:00 is the next midnight, so it never equals a start (at most 23:59).
        if (start_hour, start_minute) == (end_hour, end_minute) {
            return Err(RecurrenceError::EmptySlot);
        }
        let name = parts.timezone.unwrap_or(DEFAULT_TIMEZONE);
        let timezone =
            TimeZone::get(name).map_err(|_| RecurrenceError::UnknownTimezone(name.to_owned()))?;
        let timezone_name = timezone.iana_name().unwrap_or(name).to_owned();
        Ok(Self {
            days,
            days_of_month,
            start: (start_hour, start_minute),
            end: (end_hour, end_minute),
            timezone_name,
            timezone,
        })
    }

    /// Days of the week (0 = Sunday), sorted; `None` means every day.
    #[must_use]
    pub fn days(&self) -> Option<&[u8]> {
        self.days.as_deref()
    }

    /// Days of the month (negative: from the end), sorted; `None` means every day.
    #[must_use]
    pub fn days_of_month(&self) -> Option<&[i8]> {
        self.days_of_month.as_deref()
    }

    #[must_use]
    pub fn start_hour(&self) -> u8 {
        self.start.0
    }

    #[must_use]
    pub fn start_minute(&self) -> u8 {
        self.start.1
    }

    #[must_use]
    pub fn end_hour(&self) -> u8 {
        self.end.0
    }

    #[must_use]
    pub fn end_minute(&self) -> u8 {
        self.end.1
    }

    #[must_use]
    pub fn timezone(&self) -> &str {
        &self.timezone_name
    }

    fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    fn matches(&self, date: Date) -> bool {
        let weekday = u8::try_from(date.weekday().to_sunday_zero_offset()).unwrap_or(u8::MAX);
        let dow_ok = self
            .days
            .as_ref()
            .is_none_or(|days| days.contains(&weekday));
        let dom_ok = self.days_of_month.as_ref().is_none_or(|days| {
            let (day, length) = (date.day(), date.days_in_month());
            days.iter().any(|&d| {
                if d > 0 {
                    d == day
                } else {
                    length + 1 + d == day
                }
            })
        });
        dow_ok && dom_ok
    }

    fn instant(&self, local: DateTime) -> Option<jiff::Timestamp> {
        self.timezone
            .to_ambiguous_timestamp(local)
            .compatible()
            .ok()
    }

    /// The slot that starts on local `date`, as instants, if the date matches.
    fn slot_on(&self, date: Date) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
        if !self.matches(date) {
            return None;
        }
        let start = self.instant(date.at(self.start.0 as i8, self.start.1 as i8, 0, 0))?;
        let end_date = if self.crosses_midnight() || self.end.0 == 24 {
            date.tomorrow().ok()?
        } else {
            date
        };
        let end_hour = if self.end.0 == 24 {
            0
        } else {
            self.end.0 as i8
        };
        let end = self.instant(end_date.at(end_hour, self.end.1 as i8, 0, 0))?;
        (end > start).then_some((start, end))
    }

    /// Slots that end after `from`, in time order, clipped to `[not_before, not_after)` and merged
    /// where they overlap. Scans at most [`MAX_SCAN_DAYS`] days.
    pub(crate) fn slots(
        &self,
        from: Timestamp,
        not_before: Timestamp,
        not_after: Option<Timestamp>,
        limit: usize,
    ) -> Vec<(Timestamp, Timestamp)> {
        let mut slots: Vec<(Timestamp, Timestamp)> = Vec::new();
        // jiff's range ends a day short of 9999-12-31: no slot can be computed past it.
        let Some(begin) = to_jiff(from.max(not_before)) else {
            return slots;
        };
        // A stretch under way at `from` may have begun on an earlier day: slots last up to a day,
        // and on a clock change two of them can overlap and merge into one longer stretch.
        let first = begin.to_zoned(self.timezone.clone()).date();
        let mut date = first
            .yesterday()
            .and_then(|d| d.yesterday())
            .unwrap_or(first);
        // The stretch being merged; it is kept once no later slot overlaps it.
        let mut current: Option<(Timestamp, Timestamp)> = None;
        for _ in 0..MAX_SCAN_DAYS {
            if let Some(limit_end) = not_after {
                // Slots of this day and later start at or after its local midnight.
                let midnight = self.instant(date.at(0, 0, 0, 0)).and_then(from_jiff);
                if midnight.is_some_and(|m| m >= limit_end) {
                    break;
                }
            }
            // A slot outside years 1..=9999 cannot be represented: skip it.
            if let Some((Some(start), Some(end))) = self
                .slot_on(date)
                .map(|(s, e)| (from_jiff(s), from_jiff(e)))
            {
                let start = start.max(not_before);
                let end = not_after.map_or(end, |limit| end.min(limit));
                if end > start {
                    match &mut current {
                        Some(stretch) if start < stretch.1 => stretch.1 = stretch.1.max(end),
                        _ => {
                            if let Some(done) = current.take().filter(|s| s.1 > from) {
                                slots.push(done);
                            }
                            if slots.len() == limit {
                                return slots;
                            }
                            current = Some((start, end));
                        }
                    }
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        if let Some(done) = current.filter(|s| s.1 > from) {
            if slots.len() < limit {
                slots.push(done);
            }
        }
        slots
    }
}

/// How far ahead occurrences are searched: rules such as "the 31st when it is a Monday" recur
/// only a few times a year.
pub const MAX_SCAN_DAYS: usize = 3 * 366;

fn to_jiff(t: Timestamp) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_nanosecond(t.get().unix_timestamp_nanos()).ok()
}

fn from_jiff(t: jiff::Timestamp) -> Option<Timestamp> {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .ok()
        .and_then(|t| Timestamp::new(t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{WindowDefinition, WindowName, WindowSchedule};
    use proptest::prelude::*;
    use time::macros::datetime;

    fn at(t: time::OffsetDateTime) -> Timestamp {
        Timestamp::new(t).unwrap()
    }

    fn rule(parts: RecurrenceParts<'_>) -> Recurrence {
        Recurrence::from_parts(parts).unwrap()
    }

    fn window(
        recurring: Recurrence,
        starts_at: Timestamp,
        ends_at: Option<Timestamp>,
    ) -> WindowDefinition {
        WindowDefinition {
            labels: None,
            name: WindowName::parse("w").unwrap(),
            schedule: WindowSchedule::new(starts_at, ends_at).unwrap(),
            recurring: Some(recurring),
            site_ids: None,
            device_types: None,
            group_ids: None,
            enabled: true,
        }
    }

    fn spans(w: &WindowDefinition, from: Timestamp, limit: usize) -> Vec<(Timestamp, Timestamp)> {
        w.occurrences(from, limit)
            .iter()
            .map(|o| (o.starts_at, o.ends_at.unwrap()))
            .collect()
    }

    #[test]
    fn a_slot_at_ten_in_berlin_is_nine_utc_in_winter_and_eight_in_summer() {
        let r = rule(RecurrenceParts {
            start_hour: 10,
            end_hour: 11,
            timezone: Some("Europe/Berlin"),
            ..Default::default()
        });
        let w = window(r, at(datetime!(2025-01-01 0:00 UTC)), None);
        assert_eq!(
            spans(&w, at(datetime!(2025-01-15 0:00 UTC)), 1),
            [(
                at(datetime!(2025-01-15 9:00 UTC)),
                at(datetime!(2025-01-15 10:00 UTC))
            )]
        );
        assert_eq!(
            spans(&w, at(datetime!(2025-07-15 0:00 UTC)), 1),
            [(
                at(datetime!(2025-07-15 8:00 UTC)),
                at(datetime!(2025-07-15 9:00 UTC))
            )]
        );
        assert!(w.is_active(at(datetime!(2025-07-15 8:30 UTC))));
        assert!(
            !w.is_active(at(datetime!(2025-07-15 9:00 UTC))),
            "the end is exclusive"
        );
    }

    #[test]
    fn dow_and_days_of_month_must_both_hold() {
        // The first Monday of each month.
        let r = rule(RecurrenceParts {
            dow: Some(&[1]),
            days_of_month: Some(&[1, 2, 3, 4, 5, 6, 7]),
            start_hour: 2,
            end_hour: 3,
            ..Default::default()
        });
        let w = window(r, at(datetime!(2025-01-01 0:00 UTC)), None);
        let starts: Vec<Timestamp> = spans(&w, at(datetime!(2025-01-01 0:00 UTC)), 3)
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(
            starts,
            [
                at(datetime!(2025-01-06 2:00 UTC)),
                at(datetime!(2025-02-03 2:00 UTC)),
                at(datetime!(2025-03-03 2:00 UTC))
            ]
        );
    }

    #[test]
    fn negative_days_of_month_count_from_the_end() {
        let r = rule(RecurrenceParts {
            days_of_month: Some(&[-1]),
            start_hour: 23,
            end_hour: 24,
            ..Default::default()
        });
        let w = window(r, at(datetime!(2025-01-01 0:00 UTC)), None);
        let starts: Vec<Timestamp> = spans(&w, at(datetime!(2025-01-01 0:00 UTC)), 3)
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(
            starts,
            [
                at(datetime!(2025-01-31 23:00 UTC)),
                at(datetime!(2025-02-28 23:00 UTC)),
                at(datetime!(2025-03-31 23:00 UTC))
            ]
        );
    }

    #[test]
    fn a_slot_past_midnight_belongs_to_the_day_it_starts() {
        // Fridays 22:00 to Saturday 06:00, New York time.
        let r = rule(RecurrenceParts {
            dow: Some(&[5]),
            start_hour: 22,
            end_hour: 6,
            timezone: Some("America/New_York"),
            ..Default::default()
        });
        let w = window(r, at(datetime!(2025-01-01 0:00 UTC)), None);
        // Friday 2025-01-03 22:00 EST = Saturday 03:00Z, until Saturday 06:00 EST = 11:00Z.
        assert_eq!(
            spans(&w, at(datetime!(2025-01-01 0:00 UTC)), 1),
            [(
                at(datetime!(2025-01-04 3:00 UTC)),
                at(datetime!(2025-01-04 11:00 UTC))
            )]
        );
        assert!(
            w.is_active(at(datetime!(2025-01-04 10:59 UTC))),
            "Saturday morning is still Friday's slot"
        );
        assert!(
            !w.is_active(at(datetime!(2025-01-05 3:30 UTC))),
            "Saturday night starts no slot"
        );
    }

    #[test]
    fn minutes_and_the_window_bounds_clip_the_slots() {
        let r = rule(RecurrenceParts {
            start_hour: 9,
            start_minute: Some(30),
            end_hour: 10,
            end_minute: Some(15),
            ..Default::default()
        });
        let w = window(
            r,
            at(datetime!(2025-01-01 9:45 UTC)),
            Some(at(datetime!(2025-01-02 10:00 UTC))),
        );
        assert_eq!(
            spans(&w, at(datetime!(2024-12-01 0:00 UTC)), 10),
            [
                (
                    at(datetime!(2025-01-01 9:45 UTC)),
                    at(datetime!(2025-01-01 10:15 UTC))
                ),
                (
                    at(datetime!(2025-01-02 9:30 UTC)),
                    at(datetime!(2025-01-02 10:00 UTC))
                ),
            ]
        );
    }

    #[test]
    fn a_start_in_the_spring_gap_moves_forward_and_one_in_the_autumn_fold_takes_the_first() {
        let r = rule(RecurrenceParts {
            start_hour: 2,
            start_minute: Some(30),
            end_hour: 4,
            timezone: Some("Europe/Berlin"),
            ..Default::default()
        });
        let w = window(r, at(datetime!(2025-01-01 0:00 UTC)), None);
        // 2025-03-30 02:30 does not exist in Berlin: 03:30 CEST = 01:30Z; the end 04:00 CEST = 02:00Z.
        assert_eq!(
            spans(&w, at(datetime!(2025-03-30 0:00 UTC)), 1),
            [(
                at(datetime!(2025-03-30 1:30 UTC)),
                at(datetime!(2025-03-30 2:00 UTC))
            )]
        );
        // 2025-10-26 02:30 happens twice: the first, CEST, is 00:30Z; 04:00 CET is 03:00Z.
        assert_eq!(
            spans(&w, at(datetime!(2025-10-26 0:00 UTC)), 1),
            [(
                at(datetime!(2025-10-26 0:30 UTC)),
                at(datetime!(2025-10-26 3:00 UTC))
            )]
        );
    }

    #[test]
    fn unknown_zones_and_bad_minutes_are_refused() {
        let err = Recurrence::from_parts(RecurrenceParts {
            start_hour: 1,
            end_hour: 2,
            timezone: Some("Mars/Olympus"),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.field(), "recurring.timezone");
        let err = Recurrence::from_parts(RecurrenceParts {
            start_hour: 1,
            start_minute: Some(60),
            end_hour: 2,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err, RecurrenceError::StartMinuteOutOfRange(60));
        let err = Recurrence::from_parts(RecurrenceParts {
            start_hour: 1,
            end_hour: 24,
            end_minute: Some(1),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err, RecurrenceError::EndMinutePastMidnight(1));
        let err = Recurrence::from_parts(RecurrenceParts {
            days_of_month: Some(&[0]),
            start_hour: 1,
            end_hour: 2,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.field(), "recurring.days_of_month[0]");
        let ok = Recurrence::from_parts(RecurrenceParts {
            start_hour: 1,
            end_hour: 2,
            timezone: Some("europe/berlin"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            ok.timezone(),
            "Europe/Berlin",
            "names are kept as the database spells them"
        );
    }

    #[test]
    fn a_rule_at_the_end_of_representable_time_answers_without_panicking() {
        let r = rule(RecurrenceParts {
            start_hour: 1,
            end_hour: 2,
            ..Default::default()
        });
        let w = window(r, at(datetime!(9999-12-31 0:00 UTC)), None);
        assert!(w
            .occurrences(at(datetime!(9999-12-31 0:00 UTC)), 5)
            .is_empty());
        assert!(!w.is_active(at(datetime!(9999-12-31 1:30 UTC))));
    }

    #[test]
    fn a_stretch_merged_across_a_clock_change_keeps_its_start_whatever_from_is() {
        // 03:00 to 02:30 next day, Berlin: on 2025-03-30 02:30 does not exist (03:30 CEST), so
        // the slot of the 29th overlaps the slot of the 30th (03:00 CEST = 01:00Z).
        let r = rule(RecurrenceParts {
            start_hour: 3,
            end_hour: 2,
            end_minute: Some(30),
            timezone: Some("Europe/Berlin"),
            ..Default::default()
        });
        let w = window(r, at(datetime!(2025-01-01 0:00 UTC)), None);
        let early = spans(&w, at(datetime!(2025-03-30 0:00 UTC)), 1);
        let late = spans(&w, at(datetime!(2025-03-30 1:45 UTC)), 1);
        assert_eq!(
            early,
            [(
                at(datetime!(2025-03-29 2:00 UTC)),
                at(datetime!(2025-03-31 0:30 UTC))
            )]
        );
        assert_eq!(late, early);
    }

    /// The slot a client computes as "from `from` to `to` minutes after `minute` of the day",
    /// written as the API takes it (an end at midnight is 24:00; one after it is 00:mm).
    fn slot_around(minute: i64, from: i64, to: i64) -> Recurrence {
        let start = (minute + from).rem_euclid(1_440);
        let end = (minute + to).rem_euclid(1_440);
        let (end_hour, end_minute) = if end == 0 {
            (24, 0)
        } else {
            (end / 60, end % 60)
        };
        Recurrence::from_parts(RecurrenceParts {
            start_hour: start / 60,
            start_minute: Some(start % 60),
            end_hour,
            end_minute: Some(end_minute),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("minute {minute}, {from}..{to}: {e}"))
    }

    #[test]
    fn a_slot_around_any_minute_of_the_day_can_be_written_and_holds_that_minute_or_not() {
        let day = datetime!(2025-01-06 0:00 UTC);
        for minute in 0..1_440 {
            let now = at(day + time::Duration::minutes(minute));
            for (from, to) in [(-60, 120), (60, 120), (-120, -60), (-1, 1), (0, 1), (1, 60)] {
                let w = window(
                    slot_around(minute, from, to),
                    at(datetime!(2025-01-01 0:00 UTC)),
                    None,
                );
                let covers = from <= 0 && to > 0;
                assert_eq!(w.is_active(now), covers, "minute {minute}, {from}..{to}");
                // The slot ending after now: today's, or tomorrow's when today's is over.
                let shift = if to <= 0 { 1_440 } else { 0 };
                let expected = (
                    at(now.get() + time::Duration::minutes(from + shift)),
                    at(now.get() + time::Duration::minutes(to + shift)),
                );
                assert_eq!(
                    spans(&w, now, 1),
                    [expected],
                    "minute {minute}, {from}..{to}"
                );
            }
        }
    }

    #[test]
    fn a_slot_may_end_in_the_hour_after_midnight_whatever_minute_it_starts() {
        let day = datetime!(2025-01-06 0:00 UTC);
        for start in 0..1_440i64 {
            for end_minute in [1, 30, 59] {
                let parts = RecurrenceParts {
                    start_hour: start / 60,
                    start_minute: Some(start % 60),
                    end_hour: 0,
                    end_minute: Some(end_minute),
                    ..Default::default()
                };
                if start == end_minute {
                    assert_eq!(
                        Recurrence::from_parts(parts),
                        Err(RecurrenceError::EmptySlot)
                    );
                    continue;
                }
                let r = rule(parts);
                let w = window(r, at(datetime!(2025-01-01 0:00 UTC)), None);
                let begins = at(day + time::Duration::minutes(start));
                // 00:mm after a later start is the next day's; after an earlier one, the same day's.
                let ends = if start < end_minute {
                    at(day + time::Duration::minutes(end_minute))
                } else {
                    at(day + time::Duration::days(1) + time::Duration::minutes(end_minute))
                };
                assert_eq!(
                    spans(&w, begins, 1),
                    [(begins, ends)],
                    "start {start}, end 00:{end_minute:02}"
                );
            }
        }
    }

    #[test]
    fn a_slot_ending_at_00_00_must_say_24() {
        for end_minute in [None, Some(0)] {
            let err = Recurrence::from_parts(RecurrenceParts {
                start_hour: 22,
                end_hour: 0,
                end_minute,
                ..Default::default()
            })
            .unwrap_err();
            assert_eq!(err, RecurrenceError::EndHourOutOfRange(0));
            assert_eq!(err.field(), "recurring.end_hour");
            assert_eq!(
                err.to_string(),
                "must be from 1 to 24, or 0 with end_minute from 1 to 59, got 0"
            );
        }
        let nightly = rule(RecurrenceParts {
            start_hour: 22,
            end_hour: 0,
            end_minute: Some(30),
            ..Default::default()
        });
        assert_eq!((nightly.end_hour(), nightly.end_minute()), (0, 30));
    }

    const ZONES: [&str; 6] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/Santiago",
    ];

    fn arbitrary_window() -> impl Strategy<Value = WindowDefinition> {
        (
            proptest::option::of(proptest::collection::vec(0i64..7, 1..4)),
            proptest::option::of(proptest::collection::vec(
                prop_oneof![1i64..=31, -31i64..=-1],
                1..4,
            )),
            (0i64..24, 0i64..60, 0i64..25, 0i64..60),
            0usize..ZONES.len(),
            0i64..(3 * 365 * 24),
            proptest::option::of(1i64..(2 * 365 * 24)),
        )
            .prop_filter_map(
                "a valid rule",
                |(dow, dom, (sh, sm, eh, em), zone, start, length)| {
                    let em = if eh == 24 { 0 } else { em };
                    let r = Recurrence::from_parts(RecurrenceParts {
                        dow: dow.as_deref(),
                        days_of_month: dom.as_deref(),
                        start_hour: sh,
                        start_minute: Some(sm),
                        end_hour: eh,
                        end_minute: Some(em),
                        timezone: Some(ZONES[zone]),
                    })
                    .ok()?;
                    let starts_at = at(datetime!(2024-01-01 0:00 UTC))
                        .checked_add(time::Duration::hours(start))?;
                    let ends_at =
                        length.and_then(|l| starts_at.checked_add(time::Duration::hours(l)));
                    Some(window(r, starts_at, ends_at))
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn occurrences_are_ordered_disjoint_and_within_the_window(w in arbitrary_window(), from_hours in 0i64..(4 * 365 * 24)) {
            let from = at(datetime!(2024-01-01 0:00 UTC)).checked_add(time::Duration::hours(from_hours)).unwrap();
            let occurrences = spans(&w, from, 20);
            for (start, end) in &occurrences {
                prop_assert!(start < end);
                prop_assert!(*end > from);
                prop_assert!(*start >= w.schedule.starts_at());
                if let Some(limit) = w.schedule.ends_at() {
                    prop_assert!(*end <= limit);
                }
            }
            for pair in occurrences.windows(2) {
                prop_assert!(pair[0].1 <= pair[1].0, "overlap: {:?}", pair);
            }
        }

        #[test]
        fn active_at_t_agrees_with_the_occurrence_list(w in arbitrary_window(), t_minutes in 0i64..(4 * 365 * 24 * 60)) {
            let t = at(datetime!(2024-01-01 0:00 UTC)).checked_add(time::Duration::minutes(t_minutes)).unwrap();
            let two_days_before = t.checked_add(time::Duration::days(-2)).unwrap();
            let listed = w.occurrences(two_days_before, 50).into_iter().find(|o| o.contains(t));
            prop_assert_eq!(w.is_active(t), listed.is_some());
            // The stretch under way at t is the same whether listed from before it or from t.
            if let Some(under_way) = listed {
                prop_assert_eq!(w.occurrences(t, 1).first().copied(), Some(under_way));
            }
        }
    }
}
