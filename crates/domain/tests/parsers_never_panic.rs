//! Every public parser and constructor of the domain, fed arbitrary input: none may panic, each
//! accepts exactly what its rule allows, and what it accepts keeps its value (round trip).
//!
//! How these fail when the property breaks: a panic inside a constructor fails the proptest case
//! (proptest catches it and shrinks to a minimal input); a rule that accepts too much or too
//! little fails the `prop_assert_eq!(accepted, expected)` oracle; an accepted value that lost or
//! changed its content fails the round-trip assertions.

use domain::actor::ACTOR_MAX;
use domain::device::{DEVICE_NAME_MAX, UNIT_MAX};
use domain::group::{GROUP_DESCRIPTION_MAX, GROUP_NAME_MAX, SLUG_MAX};
use domain::reading::{MAX_LOOKBACK_HOURS, MAX_READINGS_PER_QUERY};
use domain::tenant::TENANT_ID_MAX;
use domain::window::{ScopeListError, SCOPE_LABEL_MAX, SCOPE_LIST_MAX, WINDOW_NAME_MAX};
use domain::{
    Actor, Description, DeviceName, DeviceStatus, GroupName, GroupSlug, ReadingQuery, ReadingValue,
    Recurrence, RecurrenceParts, ScopeLabel, TenantId, Thresholds, Timestamp, Unit,
    WindowDefinition, WindowName, WindowSchedule, WindowSlug, WindowStatus,
};
use proptest::prelude::*;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

// ---------------------------------------------------------------------------------------------
// Input generators

/// Text of every kind: arbitrary Unicode, control characters and NUL, whitespace only,
/// lengths around every bound the domain has, and very long strings.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f} a-zA-Z0-9]{0,12}",
        "[ \\t\\n\\r\\u{a0}\\u{2028}\\u{3000}]{0,6}",
        "[a-z0-9._~-]{0,70}",
        "[a-zA-Zé漢🙂]{15,25}",
        "[a-zé漢🙂]{95,135}",
        "[a-z]{495,505}",
        "\\PC{0,40}",
        proptest::collection::vec(any::<char>(), 0..3_000).prop_map(String::from_iter),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("e\u{301}".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("a\u{0}b".to_owned()),
    ]
}

/// Floats of every class, with NaN and the infinities made frequent.
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -1e6f64..1e6,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::MIN_POSITIVE),
        Just(-0.0),
        Just(0.0),
    ]
}

/// Integers of every size, with the small ones rules care about made frequent.
fn any_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -40i64..70,
        Just(i64::MIN),
        Just(i64::MAX),
        Just(i64::from(i32::MAX) + 1),
        Just(-1),
        Just(0),
    ]
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z as Unix seconds.
const FIRST_SECOND: i64 = -62_135_596_800;
const LAST_SECOND: i64 = 253_402_300_799;

/// An instant the service can represent, often within days of either end of its range.
fn any_timestamp() -> impl Strategy<Value = Timestamp> {
    let seconds = prop_oneof![
        FIRST_SECOND..FIRST_SECOND + 40 * 86_400,
        LAST_SECOND - 40 * 86_400..=LAST_SECOND,
        FIRST_SECOND..=LAST_SECOND,
        1_700_000_000i64..1_800_000_000,
        Just(FIRST_SECOND),
        Just(LAST_SECOND),
    ];
    (seconds, 0u32..1_000_000).prop_map(|(s, micros)| {
        let t = OffsetDateTime::from_unix_timestamp(s)
            .expect("within years 1..=9999")
            .replace_nanosecond(micros * 1_000)
            .expect("nanosecond in range");
        Timestamp::new(t).expect("a UTC instant within years 1..=9999")
    })
}

/// The Julian day number of 0001-01-01.
const YEAR_ONE_JULIAN_DAY: i32 = 1_721_426;

/// Any `OffsetDateTime` the `time` crate can hold: any date, time of day and offset, including
/// local times whose UTC equivalent lies outside years 1..=9999 or outside `time`'s own range.
fn any_offset_date_time() -> impl Strategy<Value = OffsetDateTime> {
    let julian = prop_oneof![
        Date::MIN.to_julian_day()..=Date::MAX.to_julian_day(),
        Date::MAX.to_julian_day() - 3..=Date::MAX.to_julian_day(),
        Date::MIN.to_julian_day()..=Date::MIN.to_julian_day() + 3,
        // Around 0001-01-01, the first day the service represents.
        YEAR_ONE_JULIAN_DAY - 3..=YEAR_ONE_JULIAN_DAY + 3,
    ];
    (
        julian,
        0u8..24,
        0u8..60,
        0u8..60,
        0u32..1_000_000_000,
        -93_599i32..=93_599,
    )
        .prop_map(|(day, h, m, s, nanos, offset)| {
            let date = Date::from_julian_day(day).expect("julian day in range");
            let time = Time::from_hms_nano(h, m, s, nanos).expect("time in range");
            let offset = UtcOffset::from_whole_seconds(offset).expect("offset in range");
            PrimitiveDateTime::new(date, time).assume_offset(offset)
        })
}

// ---------------------------------------------------------------------------------------------
// The rules, written out independently of the implementation

/// A single-line label: not blank, at most `max` characters, no control character.
fn is_label(s: &str, max: usize) -> bool {
    !s.chars().any(char::is_control) && s.chars().count() <= max && !s.trim().is_empty()
}

/// A slug usable as a URL path segment as it is.
fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= SLUG_MAX
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
        && s != "."
        && s != ".."
}

// ---------------------------------------------------------------------------------------------
// Text

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn group_names_accept_exactly_labels_and_keep_their_text(s in any_text()) {
        let parsed = GroupName::parse(&s);
        prop_assert_eq!(parsed.is_ok(), is_label(&s, GROUP_NAME_MAX), "{:?} -> {:?}", s, parsed);
        if let Ok(name) = parsed {
            prop_assert_eq!(name.as_str(), s.as_str());
            prop_assert_eq!(name.char_count(), s.chars().count());
        }
    }

    #[test]
    fn window_names_accept_exactly_labels_and_keep_their_text(s in any_text()) {
        let parsed = WindowName::parse(&s);
        prop_assert_eq!(parsed.is_ok(), is_label(&s, WINDOW_NAME_MAX), "{:?} -> {:?}", s, parsed);
        if let Ok(name) = parsed {
            prop_assert_eq!(name.as_str(), s.as_str());
        }
    }

    #[test]
    fn device_names_accept_exactly_labels_and_keep_their_text(s in any_text()) {
        let parsed = DeviceName::parse(&s);
        prop_assert_eq!(parsed.is_ok(), is_label(&s, DEVICE_NAME_MAX), "{:?} -> {:?}", s, parsed);
        if let Ok(name) = parsed {
            prop_assert_eq!(name.as_str(), s.as_str());
        }
    }

    #[test]
    fn tenant_ids_accept_exactly_labels_and_keep_their_text(s in any_text()) {
        let parsed = TenantId::parse(&s);
        prop_assert_eq!(parsed.is_ok(), is_label(&s, TENANT_ID_MAX), "{:?} -> {:?}", s, parsed);
        if let Ok(tenant) = parsed {
            prop_assert_eq!(tenant.as_str(), s.as_str());
            prop_assert_eq!(tenant.to_string(), s);
        }
    }

    #[test]
    fn scope_labels_accept_exactly_labels_and_keep_their_text(s in any_text()) {
        let parsed = ScopeLabel::parse(&s);
        prop_assert_eq!(parsed.is_ok(), is_label(&s, SCOPE_LABEL_MAX), "{:?} -> {:?}", s, parsed);
        if let Ok(label) = parsed {
            prop_assert_eq!(label.as_str(), s.as_str());
        }
    }

    #[test]
    fn actors_accept_exactly_labels_and_keep_their_text(s in any_text()) {
        let parsed = Actor::parse(&s);
        prop_assert_eq!(parsed.is_ok(), is_label(&s, ACTOR_MAX), "{:?} -> {:?}", s, parsed);
        if let Ok(actor) = parsed {
            prop_assert_eq!(actor.as_str(), s.as_str());
        }
    }

    #[test]
    fn descriptions_accept_any_text_without_nul_up_to_the_bound(s in any_text()) {
        let parsed = Description::parse(&s);
        let expected = !s.contains('\0') && s.chars().count() <= GROUP_DESCRIPTION_MAX;
        prop_assert_eq!(parsed.is_ok(), expected, "{:?} -> {:?}", s, parsed);
        if let Ok(description) = parsed {
            prop_assert_eq!(description.as_str(), s.as_str());
        }
    }

    #[test]
    fn units_accept_short_text_without_control_characters(s in any_text()) {
        let parsed = Unit::parse(&s);
        let expected = !s.chars().any(char::is_control) && s.chars().count() <= UNIT_MAX;
        prop_assert_eq!(parsed.is_ok(), expected, "{:?} -> {:?}", s, parsed);
        if let Ok(unit) = parsed {
            prop_assert_eq!(unit.as_str(), s.as_str());
        }
    }

    #[test]
    fn slugs_accept_exactly_url_safe_segments(s in any_text()) {
        let group = GroupSlug::parse(&s);
        let window = WindowSlug::parse(&s);
        prop_assert_eq!(group.is_ok(), is_slug(&s), "{:?} -> {:?}", s, group);
        prop_assert_eq!(window.is_ok(), is_slug(&s), "{:?} -> {:?}", s, window);
        if let (Ok(group), Ok(window)) = (group, window) {
            prop_assert_eq!(group.as_str(), s.as_str());
            prop_assert_eq!(window.as_str(), s.as_str());
        }
    }

    #[test]
    fn generated_slugs_are_always_valid_slugs(random in any::<u32>()) {
        let group = GroupSlug::generate(random);
        let window = WindowSlug::generate(random);
        prop_assert_eq!(GroupSlug::parse(group.as_str()), Ok(group.clone()));
        prop_assert_eq!(WindowSlug::parse(window.as_str()), Ok(window.clone()));
        prop_assert_eq!(group.as_str().len(), "grp-".len() + 8);
        prop_assert_eq!(window.as_str().len(), "mw-".len() + 8);
    }

    #[test]
    fn device_statuses_accept_exactly_the_three_words(s in prop_oneof![
        any_text(),
        Just("connected".to_owned()),
        Just("disconnected".to_owned()),
        Just("error".to_owned()),
        Just("Connected".to_owned()),
        Just("error\u{0}".to_owned()),
    ]) {
        let parsed = DeviceStatus::parse(&s);
        let expected = matches!(s.as_str(), "connected" | "disconnected" | "error");
        prop_assert_eq!(parsed.is_ok(), expected, "{:?} -> {:?}", s, parsed);
        if let Ok(status) = parsed {
            prop_assert_eq!(status.as_str(), s.as_str());
        }
    }

    #[test]
    fn window_statuses_accept_exactly_the_four_words(s in prop_oneof![
        any_text(),
        Just("active".to_owned()),
        Just("scheduled".to_owned()),
        Just("expired".to_owned()),
        Just("disabled".to_owned()),
    ]) {
        let parsed = WindowStatus::parse(&s);
        let expected = matches!(s.as_str(), "active" | "scheduled" | "expired" | "disabled");
        prop_assert_eq!(parsed.is_ok(), expected, "{:?} -> {:?}", s, parsed);
        if let Ok(status) = parsed {
            prop_assert_eq!(status.as_str(), s.as_str());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn scope_lists_accept_exactly_short_lists_of_labels_and_name_the_first_bad_entry(
        values in prop_oneof![
            proptest::collection::vec(any_text(), 0..8),
            proptest::collection::vec("[a-z]{1,3}", SCOPE_LIST_MAX - 2..SCOPE_LIST_MAX + 3),
            proptest::collection::vec(prop_oneof![9 => "[a-z]{1,5}", 1 => any_text()], 0..40),
        ],
    ) {
        let parsed = ScopeLabel::parse_list(&values);
        let first_bad = values.iter().position(|v| !is_label(v, SCOPE_LABEL_MAX));
        match &parsed {
            Ok(labels) => {
                prop_assert!(values.len() <= SCOPE_LIST_MAX);
                prop_assert_eq!(first_bad, None);
                let texts: Vec<&str> = labels.iter().map(ScopeLabel::as_str).collect();
                let inputs: Vec<&str> = values.iter().map(String::as_str).collect();
                prop_assert_eq!(texts, inputs);
            }
            Err(ScopeListError::TooMany(n)) => {
                prop_assert_eq!(*n, values.len());
                prop_assert!(values.len() > SCOPE_LIST_MAX);
            }
            Err(ScopeListError::Entry { index, .. }) => {
                prop_assert!(values.len() <= SCOPE_LIST_MAX);
                prop_assert_eq!(Some(*index), first_bad);
            }
        }
    }
}

/// Megabyte-sized text through every text parser: refused for its length (or accepted where
/// there is no bound), quickly, without a panic.
#[test]
fn megabyte_texts_are_refused_by_every_bounded_parser() {
    for text in [
        "a".repeat(1 << 20),
        "漢".repeat(1 << 18),
        "🙂".repeat(1 << 18),
        format!("{}\u{0}", "a".repeat(1 << 20)),
        " ".repeat(1 << 20),
    ] {
        assert!(GroupName::parse(&text).is_err());
        assert!(WindowName::parse(&text).is_err());
        assert!(DeviceName::parse(&text).is_err());
        assert!(TenantId::parse(&text).is_err());
        assert!(ScopeLabel::parse(&text).is_err());
        assert!(Actor::parse(&text).is_err());
        assert!(Description::parse(&text).is_err());
        assert!(Unit::parse(&text).is_err());
        assert!(GroupSlug::parse(&text).is_err());
        assert!(WindowSlug::parse(&text).is_err());
        assert!(DeviceStatus::parse(&text).is_err());
        assert!(ScopeLabel::parse_list(&[text.as_str()]).is_err());
        let parts = RecurrenceParts {
            start_hour: 1,
            end_hour: 2,
            timezone: Some(&text),
            ..RecurrenceParts::default()
        };
        assert!(Recurrence::from_parts(parts).is_err());
    }
    let many: Vec<&str> = vec!["a"; 1 << 20];
    assert!(ScopeLabel::parse_list(&many).is_err());
    let days = vec![1i64; 1 << 20];
    let rule = Recurrence::from_parts(RecurrenceParts {
        dow: Some(&days),
        days_of_month: Some(&days),
        start_hour: 1,
        end_hour: 2,
        ..RecurrenceParts::default()
    })
    .expect("repeated days are one day");
    assert_eq!(rule.days(), Some(&[1u8][..]));
    assert_eq!(rule.days_of_month(), Some(&[1i8][..]));
}

// ---------------------------------------------------------------------------------------------
// Numbers

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn thresholds_accept_exactly_finite_ordered_bounds_and_keep_them(
        bounds in proptest::array::uniform4(proptest::option::of(any_f64())),
    ) {
        let [critical_lower, warning_lower, warning_upper, critical_upper] = bounds;
        let parsed = Thresholds::new(critical_lower, warning_lower, warning_upper, critical_upper);
        let set: Vec<f64> = bounds.iter().flatten().copied().collect();
        let expected = set.iter().all(|b| b.is_finite()) && set.windows(2).all(|w| w[0] <= w[1]);
        prop_assert_eq!(parsed.is_ok(), expected, "{:?} -> {:?}", bounds, parsed);
        if let Ok(t) = parsed {
            let kept = [t.critical_lower(), t.warning_lower(), t.warning_upper(), t.critical_upper()];
            // Bit for bit, so -0.0 stays -0.0.
            prop_assert_eq!(kept.map(|b| b.map(f64::to_bits)), bounds.map(|b| b.map(f64::to_bits)));
        } else if let Err(e) = parsed {
            prop_assert!(domain::device::THRESHOLD_FIELDS.contains(&e.field()));
        }
    }

    #[test]
    fn reading_values_accept_exactly_finite_numbers_and_keep_them(value in any_f64()) {
        let parsed = ReadingValue::new(value);
        prop_assert_eq!(parsed.is_ok(), value.is_finite(), "{:?}", value);
        if let Ok(v) = parsed {
            prop_assert_eq!(v.get().to_bits(), value.to_bits());
        }
    }

    #[test]
    fn reading_queries_accept_exactly_bounded_hours_and_limits(
        now in any_timestamp(),
        hours in prop_oneof![any_i64(), 1i64..=i64::from(MAX_LOOKBACK_HOURS) + 1],
        limit in prop_oneof![any_i64(), 1i64..=i64::from(MAX_READINGS_PER_QUERY) + 1],
    ) {
        let parsed = ReadingQuery::last_hours(now, hours, limit);
        let expected = (1..=i64::from(MAX_LOOKBACK_HOURS)).contains(&hours)
            && (1..=i64::from(MAX_READINGS_PER_QUERY)).contains(&limit);
        prop_assert_eq!(parsed.is_ok(), expected, "hours {} limit {} -> {:?}", hours, limit, parsed);
        if let Ok(query) = parsed {
            prop_assert_eq!(i64::from(query.limit()), limit);
            // `since` is `hours` before `now`, or the first representable instant when that
            // would lie before year 1.
            let exact = now.get() - Duration::hours(hours);
            let first = OffsetDateTime::from_unix_timestamp(FIRST_SECOND).expect("year 1");
            prop_assert_eq!(query.since().get(), exact.max(first));
            prop_assert!(query.since() <= now);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Instants

/// What `Timestamp::new` must make of `value`: the same instant in UTC, truncated to the
/// microsecond, when that lies in years 1..=9999; `None` otherwise.
fn expected_timestamp(value: OffsetDateTime) -> Option<OffsetDateTime> {
    let utc = value.checked_to_offset(UtcOffset::UTC)?;
    if !(1..=9999).contains(&utc.year()) {
        return None;
    }
    utc.replace_nanosecond(utc.nanosecond() / 1_000 * 1_000)
        .ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Every `OffsetDateTime` whose UTC equivalent `time` itself can represent.
    #[test]
    fn timestamps_accept_exactly_years_1_to_9999_in_utc_and_keep_the_instant(
        value in any_offset_date_time().prop_filter("UTC equivalent representable by time", |v| {
            v.checked_to_offset(UtcOffset::UTC).is_some()
        }),
    ) {
        let parsed = Timestamp::new(value);
        let expected = expected_timestamp(value);
        prop_assert_eq!(parsed.as_ref().ok().map(|t| t.get()), expected, "{}", value);
        if let Ok(t) = parsed {
            prop_assert_eq!(t.get().offset(), UtcOffset::UTC);
            prop_assert_eq!(t.get().nanosecond() % 1_000, 0);
            prop_assert_eq!(Timestamp::new(t.get()), Ok(t), "normalising is idempotent");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Fails (panics inside `time`'s `to_offset`) when the UTC equivalent of `value` is past
    /// `time`'s range, such as `9999-12-31T23:00:00-05:00`, which the HTTP adapter reaches
    /// through any RFC 3339 timestamp field.
    #[test]
    fn timestamps_never_panic_for_any_offset_date_time(value in any_offset_date_time()) {
        let parsed = Timestamp::new(value);
        prop_assert_eq!(parsed.ok().map(Timestamp::get), expected_timestamp(value), "{}", value);
    }
}

#[test]
fn a_local_time_in_year_9999_whose_utc_is_in_year_10000_is_refused_not_a_panic() {
    let late = time::macros::datetime!(9999-12-31 23:00 -05:00);
    assert!(Timestamp::new(late).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn schedules_accept_exactly_an_end_after_the_start(
        starts_at in any_timestamp(),
        ends_at in proptest::option::of(any_timestamp()),
        same in any::<bool>(),
    ) {
        let ends_at = if same { ends_at.map(|_| starts_at) } else { ends_at };
        let parsed = WindowSchedule::new(starts_at, ends_at);
        let expected = ends_at.is_none_or(|end| end > starts_at);
        prop_assert_eq!(parsed.is_ok(), expected);
        if let Ok(schedule) = parsed {
            prop_assert_eq!(schedule.starts_at(), starts_at);
            prop_assert_eq!(schedule.ends_at(), ends_at);
        } else if let Err(e) = parsed {
            prop_assert_eq!(e.field(), "ends_at");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recurrence

/// Zone names: real ones at the extremes of the offset range, odd offsets and DST rules, and
/// arbitrary text.
fn any_timezone() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        3 => prop::sample::select(vec![
            "UTC",
            "Etc/UTC",
            "Europe/Berlin",
            "America/New_York",
            "America/St_Johns",
            "Pacific/Kiritimati",
            "Pacific/Pago_Pago",
            "Etc/GMT+12",
            "Etc/GMT-14",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "Africa/Casablanca",
            "Antarctica/Troll",
            "Pacific/Apia",
            "America/Sao_Paulo",
        ])
        .prop_map(str::to_owned),
        1 => any_text(),
        1 => Just("europe/berlin".to_owned()),
        1 => Just("Europe/Berlin\u{0}".to_owned()),
        1 => Just("../../etc/passwd".to_owned()),
    ])
}

fn any_days() -> impl Strategy<Value = Option<Vec<i64>>> {
    proptest::option::of(prop_oneof![
        3 => proptest::collection::vec(-1i64..8, 0..9),
        1 => proptest::collection::vec(any_i64(), 0..4),
    ])
}

fn any_days_of_month() -> impl Strategy<Value = Option<Vec<i64>>> {
    proptest::option::of(prop_oneof![
        3 => proptest::collection::vec(-33i64..34, 0..9),
        1 => proptest::collection::vec(any_i64(), 0..4),
    ])
}

#[derive(Debug, Clone)]
struct RawRule {
    dow: Option<Vec<i64>>,
    days_of_month: Option<Vec<i64>>,
    start_hour: i64,
    start_minute: Option<i64>,
    end_hour: i64,
    end_minute: Option<i64>,
    timezone: Option<String>,
}

impl RawRule {
    fn parts(&self) -> RecurrenceParts<'_> {
        RecurrenceParts {
            dow: self.dow.as_deref(),
            days_of_month: self.days_of_month.as_deref(),
            start_hour: self.start_hour,
            start_minute: self.start_minute,
            end_hour: self.end_hour,
            end_minute: self.end_minute,
            timezone: self.timezone.as_deref(),
        }
    }

    /// The rule's ranges, written out (the zone is checked against jiff's database apart).
    fn ranges_hold(&self) -> bool {
        let days_ok = |days: &Option<Vec<i64>>, ok: &dyn Fn(i64) -> bool| {
            days.as_ref()
                .is_none_or(|d| !d.is_empty() && d.iter().all(|&v| ok(v)))
        };
        let start_minute = self.start_minute.unwrap_or(0);
        let end_minute = self.end_minute.unwrap_or(0);
        days_ok(&self.dow, &|v| (0..=6).contains(&v))
            && days_ok(&self.days_of_month, &|v| {
                (1..=31).contains(&v) || (-31..=-1).contains(&v)
            })
            && (0..=23).contains(&self.start_hour)
            && (0..=24).contains(&self.end_hour)
            && (0..=59).contains(&start_minute)
            && (0..=59).contains(&end_minute)
            && !(self.end_hour == 24 && end_minute != 0)
            && !(self.end_hour == 0 && end_minute == 0)
            && (self.start_hour, start_minute) != (self.end_hour, end_minute)
    }
}

fn any_raw_rule() -> impl Strategy<Value = RawRule> {
    let hour = || prop_oneof![4 => -1i64..26, 1 => any_i64()];
    let minute = || proptest::option::of(prop_oneof![4 => -1i64..61, 1 => any_i64()]);
    (
        any_days(),
        any_days_of_month(),
        hour(),
        minute(),
        hour(),
        minute(),
        any_timezone(),
    )
        .prop_map(
            |(dow, days_of_month, start_hour, start_minute, end_hour, end_minute, timezone)| {
                RawRule {
                    dow,
                    days_of_month,
                    start_hour,
                    start_minute,
                    end_hour,
                    end_minute,
                    timezone,
                }
            },
        )
}

fn sorted_unique<T: Ord + Copy>(values: &[i64], convert: impl Fn(i64) -> T) -> Vec<T> {
    let mut out: Vec<T> = values.iter().map(|&v| convert(v)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn recurrences_accept_exactly_valid_rules_and_keep_them(raw in any_raw_rule()) {
        let parsed = Recurrence::from_parts(raw.parts());
        let zone = raw.timezone.as_deref().unwrap_or("UTC");
        let zone_known = jiff::tz::TimeZone::get(zone).is_ok();
        prop_assert_eq!(parsed.is_ok(), raw.ranges_hold() && zone_known, "{:?} -> {:?}", raw, parsed);
        match parsed {
            Ok(rule) => {
                prop_assert_eq!(
                    rule.days().map(<[u8]>::to_vec),
                    raw.dow.as_deref().map(|d| sorted_unique(d, |v| u8::try_from(v).expect("0..=6")))
                );
                prop_assert_eq!(
                    rule.days_of_month().map(<[i8]>::to_vec),
                    raw.days_of_month.as_deref().map(|d| sorted_unique(d, |v| i8::try_from(v).expect("-31..=31")))
                );
                prop_assert_eq!(i64::from(rule.start_hour()), raw.start_hour);
                prop_assert_eq!(i64::from(rule.end_hour()), raw.end_hour);
                prop_assert_eq!(i64::from(rule.start_minute()), raw.start_minute.unwrap_or(0));
                prop_assert_eq!(i64::from(rule.end_minute()), raw.end_minute.unwrap_or(0));
                prop_assert!(!rule.timezone().is_empty());
                // The zone name the rule keeps names the same zone again, and the rule read
                // back from its own parts is the same rule.
                let dow: Option<Vec<i64>> = rule.days().map(|d| d.iter().map(|&v| i64::from(v)).collect());
                let dom: Option<Vec<i64>> = rule.days_of_month().map(|d| d.iter().map(|&v| i64::from(v)).collect());
                let again = Recurrence::from_parts(RecurrenceParts {
                    dow: dow.as_deref(),
                    days_of_month: dom.as_deref(),
                    start_hour: i64::from(rule.start_hour()),
                    start_minute: Some(i64::from(rule.start_minute())),
                    end_hour: i64::from(rule.end_hour()),
                    end_minute: Some(i64::from(rule.end_minute())),
                    timezone: Some(rule.timezone()),
                });
                prop_assert_eq!(again, Ok(rule));
            }
            Err(e) => {
                prop_assert!(e.field().starts_with("recurring."), "{}", e.field());
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Windows: occurrences, activity and status of arbitrary valid windows

fn any_valid_rule() -> impl Strategy<Value = Recurrence> {
    (
        proptest::option::of(proptest::collection::vec(0i64..7, 1..4)),
        proptest::option::of(proptest::collection::vec(
            prop_oneof![1i64..32, -31i64..0],
            1..4,
        )),
        0i64..24,
        proptest::option::of(0i64..60),
        1i64..25,
        proptest::option::of(0i64..60),
        any_timezone(),
    )
        .prop_filter_map(
            "a valid rule",
            |(dow, dom, start_hour, start_minute, end_hour, end_minute, timezone)| {
                Recurrence::from_parts(RecurrenceParts {
                    dow: dow.as_deref(),
                    days_of_month: dom.as_deref(),
                    start_hour,
                    start_minute,
                    end_hour,
                    end_minute,
                    timezone: timezone.as_deref(),
                })
                .ok()
            },
        )
}

/// A valid window, often starting or ending within weeks of year 1 or year 9999.
fn any_window() -> impl Strategy<Value = WindowDefinition> {
    (
        any_timestamp(),
        proptest::option::of(any_timestamp()),
        proptest::option::of(any_valid_rule()),
        prop::bool::weighted(0.9),
    )
        .prop_filter_map("a valid schedule", |(a, b, recurring, enabled)| {
            let (starts_at, ends_at) = match b {
                Some(b) if b < a => (b, Some(a)),
                other => (a, other),
            };
            Some(WindowDefinition {
                labels: None,
                name: WindowName::parse("w").ok()?,
                schedule: WindowSchedule::new(starts_at, ends_at).ok()?,
                recurring,
                site_ids: None,
                device_types: None,
                group_ids: None,
                enabled,
            })
        })
}

/// An instant to ask about: anywhere, or near the window's own bounds.
fn any_instant_near(w: &WindowDefinition) -> impl Strategy<Value = Timestamp> {
    let start = w.schedule.starts_at();
    let end = w.schedule.ends_at();
    let near = move |t: Timestamp| {
        (-3i64 * 86_400..3 * 86_400)
            .prop_map(move |s| t.checked_add(Duration::seconds(s)).unwrap_or(t))
    };
    prop_oneof![
        any_timestamp(),
        near(start),
        near(end.unwrap_or(start)),
        Just(start),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn occurrences_activity_and_status_never_panic_and_agree(
        (w, t) in any_window().prop_flat_map(|w| {
            let t = any_instant_near(&w);
            (Just(w), t)
        }),
        limit in prop_oneof![0usize..4, Just(100usize)],
    ) {
        let (starts_at, ends_at) = (w.schedule.starts_at(), w.schedule.ends_at());
        let occurrences = w.occurrences(t, limit);
        let active = w.is_active(t);
        let status = w.status(t);

        prop_assert!(occurrences.len() <= limit);
        if !w.enabled {
            prop_assert!(occurrences.is_empty());
            prop_assert!(!active);
            prop_assert_eq!(status, WindowStatus::Disabled);
        }
        if w.recurring.is_none() {
            prop_assert!(occurrences.len() <= 1);
        }
        for o in &occurrences {
            prop_assert!(o.starts_at >= starts_at, "{:?} starts before the window", o);
            prop_assert!(o.ends_at.is_none_or(|e| e > o.starts_at), "{:?} is empty", o);
            prop_assert!(o.ends_at.is_none_or(|e| e > t), "{:?} ended before {:?}", o, t);
            if let Some(end) = ends_at {
                prop_assert!(o.ends_at.is_some_and(|e| e <= end), "{:?} ends after the window", o);
            }
            if w.recurring.is_some() {
                prop_assert!(o.ends_at.is_some(), "a recurring slot has an end");
            }
        }
        for pair in occurrences.windows(2) {
            let first_end = pair[0].ends_at.expect("only the last may be open-ended");
            prop_assert!(first_end <= pair[1].starts_at, "{:?} overlaps", pair);
        }

        // Active means within the schedule; a non-recurring enabled window is active exactly
        // within its schedule.
        let in_schedule = starts_at <= t && ends_at.is_none_or(|e| t < e);
        if active {
            prop_assert!(in_schedule);
            prop_assert!(w.enabled);
        }
        if w.enabled && w.recurring.is_none() {
            prop_assert_eq!(active, in_schedule);
        }
        let expected_status = if !w.enabled {
            WindowStatus::Disabled
        } else if ends_at.is_some_and(|e| e <= t) {
            WindowStatus::Expired
        } else if active {
            WindowStatus::Active
        } else {
            WindowStatus::Scheduled
        };
        prop_assert_eq!(status, expected_status);
    }
}

#[test]
fn the_julian_day_of_year_one_is_right() {
    assert_eq!(
        time::macros::date!(0001 - 01 - 01).to_julian_day(),
        YEAR_ONE_JULIAN_DAY
    );
}

#[test]
fn windows_at_the_very_ends_of_time_in_extreme_zones_answer_without_panicking() {
    let first = Timestamp::new(OffsetDateTime::from_unix_timestamp(FIRST_SECOND).unwrap()).unwrap();
    let last = Timestamp::new(
        OffsetDateTime::from_unix_timestamp(LAST_SECOND)
            .unwrap()
            .replace_nanosecond(999_999_000)
            .unwrap(),
    )
    .unwrap();
    for zone in [
        "Pacific/Kiritimati",
        "Etc/GMT+12",
        "Etc/GMT-14",
        "America/St_Johns",
        "UTC",
    ] {
        for (start_hour, end_hour) in [(0, 24), (23, 1), (12, 13)] {
            let rule = Recurrence::from_parts(RecurrenceParts {
                start_hour,
                end_hour,
                timezone: Some(zone),
                ..RecurrenceParts::default()
            })
            .unwrap();
            for (starts_at, ends_at) in [(first, None), (first, Some(last)), (last, None)] {
                let w = WindowDefinition {
                    labels: None,
                    name: WindowName::parse("edge").unwrap(),
                    schedule: WindowSchedule::new(starts_at, ends_at).unwrap(),
                    recurring: Some(rule.clone()),
                    site_ids: None,
                    device_types: None,
                    group_ids: None,
                    enabled: true,
                };
                for t in [first, last] {
                    let occurrences = w.occurrences(t, 100);
                    assert!(occurrences.len() <= 100);
                    let _ = w.is_active(t);
                    let _ = w.status(t);
                }
            }
        }
    }
}
