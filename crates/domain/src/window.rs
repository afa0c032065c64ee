//! Maintenance windows (seed 001), valid on construction: a window that ends before it starts,
//! a recurrence with an out-of-range value, or an empty scope label cannot be built.

use std::collections::{HashMap, HashSet};

use thiserror::Error;

use crate::group::{GroupSlug, SlugError};
use crate::label::Labels;
pub use crate::recurrence::{Recurrence, RecurrenceError, RecurrenceParts};
use crate::text::{self, TextError};
use crate::{Actor, Timestamp};

/// Longest window name (seed 001: `max_length=128`).
pub const WINDOW_NAME_MAX: usize = 128;
/// Longest site id or device type in a window's scope.
pub const SCOPE_LABEL_MAX: usize = 128;
/// Most entries a scope list (`site_ids`, `device_types`, `group_ids`) may hold.
pub const SCOPE_LIST_MAX: usize = 1_000;
/// Most maintenance windows one tenant may keep (any status): with [`SCOPE_LIST_MAX`], it bounds
/// what one tenant's render has to index.
pub const WINDOWS_PER_TENANT_MAX: usize = 1_000;

/// Longest stretch [`WindowDefinition::latest_started`] scans at once (well within what one scan
/// of a recurrence covers).
const LOOK_BACK_DAYS_MAX: i64 = 366;

/// A window's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowName(String);

impl WindowName {
    /// # Errors
    /// [`TextError`] when blank, over [`WINDOW_NAME_MAX`] characters, or holding control characters.
    pub fn parse(value: &str) -> Result<Self, TextError> {
        text::label(value, WINDOW_NAME_MAX).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A window's address (`mw-` + 8 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowSlug(String);

impl WindowSlug {
    /// Checks a slug read from a URL or from storage.
    ///
    /// # Errors
    /// [`SlugError`] when empty, over [`SLUG_MAX`](crate::group::SLUG_MAX) characters, or not URL-safe.
    pub fn parse(value: &str) -> Result<Self, SlugError> {
        crate::group::GroupSlug::parse(value).map(|s| Self(s.as_str().to_owned()))
    }

    /// A fresh slug from 32 random bits, as the seed does (`mw-{uuid4.hex[:8]}`).
    #[must_use]
    pub fn generate(random: u32) -> Self {
        Self(format!("mw-{random:08x}"))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One entry of `site_ids` or `device_types`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeLabel(String);

/// Why a scope list was refused; `index` locates the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScopeListError {
    #[error("must hold at most {SCOPE_LIST_MAX} entries, got {0}")]
    TooMany(usize),
    #[error("entry {index} {reason}")]
    Entry { index: usize, reason: TextError },
}

impl ScopeLabel {
    /// # Errors
    /// [`TextError`] when blank, over [`SCOPE_LABEL_MAX`] characters, or holding control characters.
    pub fn parse(value: &str) -> Result<Self, TextError> {
        text::label(value, SCOPE_LABEL_MAX).map(Self)
    }

    /// Parses a whole list, naming the first bad entry.
    ///
    /// # Errors
    /// [`ScopeListError`] when the list is too long or one entry is not a valid label.
    pub fn parse_list<S: AsRef<str>>(values: &[S]) -> Result<Vec<Self>, ScopeListError> {
        if values.len() > SCOPE_LIST_MAX {
            return Err(ScopeListError::TooMany(values.len()));
        }
        values
            .iter()
            .enumerate()
            .map(|(index, v)| {
                Self::parse(v.as_ref()).map_err(|reason| ScopeListError::Entry { index, reason })
            })
            .collect()
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a window as a whole was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WindowError {
    #[error("must be later than starts_at")]
    EndsNotAfterStart,
    #[error(transparent)]
    Recurrence(#[from] RecurrenceError),
}

impl WindowError {
    /// The JSON path of the offending value.
    #[must_use]
    pub fn field(&self) -> String {
        match self {
            Self::EndsNotAfterStart => "ends_at".to_owned(),
            Self::Recurrence(e) => e.field(),
        }
    }
}

/// When a window applies: from `starts_at`, up to but excluding `ends_at` (open-ended without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSchedule {
    starts_at: Timestamp,
    ends_at: Option<Timestamp>,
}

impl WindowSchedule {
    /// # Errors
    /// [`WindowError::EndsNotAfterStart`] when `ends_at <= starts_at`.
    pub fn new(starts_at: Timestamp, ends_at: Option<Timestamp>) -> Result<Self, WindowError> {
        match ends_at {
            Some(end) if end <= starts_at => Err(WindowError::EndsNotAfterStart),
            _ => Ok(Self { starts_at, ends_at }),
        }
    }

    #[must_use]
    pub fn starts_at(&self) -> Timestamp {
        self.starts_at
    }

    #[must_use]
    pub fn ends_at(&self) -> Option<Timestamp> {
        self.ends_at
    }
}

/// Everything a client sets on a window. Each field upholds its own rules; the schedule
/// upholds `starts_at < ends_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowDefinition {
    pub name: WindowName,
    pub schedule: WindowSchedule,
    pub recurring: Option<Recurrence>,
    /// Sites the window covers; `None` covers all.
    pub site_ids: Option<Vec<ScopeLabel>>,
    /// Device types the window covers; `None` covers all.
    pub device_types: Option<Vec<ScopeLabel>>,
    /// Groups (customer slugs) whose members alone the window covers; `None` does not narrow.
    pub group_ids: Option<Vec<GroupSlug>>,
    /// Labels a device must all carry to be covered; `None` does not narrow.
    pub labels: Option<Labels>,
    pub enabled: bool,
}

/// Where a window stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowStatus {
    /// Not enabled.
    Disabled,
    /// Its `ends_at` has passed.
    Expired,
    /// It covers the instant.
    Active,
    /// Anything else: it will (or might) apply later.
    Scheduled,
}

impl WindowStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Expired => "expired",
            Self::Active => "active",
            Self::Scheduled => "scheduled",
        }
    }

    /// # Errors
    /// When `value` is none of the four names.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "disabled" => Ok(Self::Disabled),
            "expired" => Ok(Self::Expired),
            "active" => Ok(Self::Active),
            "scheduled" => Ok(Self::Scheduled),
            other => Err(format!(
                "must be one of disabled, expired, active, scheduled, got '{other}'"
            )),
        }
    }
}

/// One stretch of time a window applies, `[starts_at, ends_at)`; no `ends_at`: open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub starts_at: Timestamp,
    pub ends_at: Option<Timestamp>,
}

impl Occurrence {
    #[must_use]
    pub fn contains(&self, t: Timestamp) -> bool {
        self.starts_at <= t && self.ends_at.is_none_or(|end| t < end)
    }
}

impl WindowDefinition {
    /// The stretches of time the window applies that end after `from`, in time order, at most
    /// `limit`. They never overlap and lie within `[starts_at, ends_at)`. A window without
    /// `recurring` has at most one; a disabled window has none.
    #[must_use]
    pub fn occurrences(&self, from: Timestamp, limit: usize) -> Vec<Occurrence> {
        if !self.enabled || limit == 0 {
            return Vec::new();
        }
        let (starts_at, ends_at) = (self.schedule.starts_at(), self.schedule.ends_at());
        match &self.recurring {
            None if ends_at.is_some_and(|end| end <= from) => Vec::new(),
            None => vec![Occurrence { starts_at, ends_at }],
            Some(rule) => rule
                .slots(from, starts_at, ends_at, limit)
                .into_iter()
                .map(|(start, end)| Occurrence {
                    starts_at: start,
                    ends_at: Some(end),
                })
                .collect(),
        }
    }

    /// Whether the window applies at `t`.
    #[must_use]
    pub fn is_active(&self, t: Timestamp) -> bool {
        self.occurrences(t, 1)
            .first()
            .is_some_and(|o| o.contains(t))
    }

    /// The first instant after `now` at which whether the window applies may change (unless the
    /// window itself is edited): the end of the occurrence covering `now`, else the start of the
    /// next one. `None`: it never changes.
    #[must_use]
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        let next = self.occurrences(now, 1).into_iter().next()?;
        if next.contains(now) {
            next.ends_at
        } else {
            Some(next.starts_at)
        }
    }

    #[must_use]
    pub fn status(&self, now: Timestamp) -> WindowStatus {
        if !self.enabled {
            WindowStatus::Disabled
        } else if self.schedule.ends_at().is_some_and(|end| end <= now) {
            WindowStatus::Expired
        } else if self.is_active(now) {
            WindowStatus::Active
        } else {
            WindowStatus::Scheduled
        }
    }

    /// The latest occurrence of the schedule that has started at `now` (`starts_at <= now`),
    /// under way or over; `None` when none has started yet. It reads the schedule and the
    /// recurrence only, whatever `enabled` says: a report looks back at what the window was
    /// set to do, and the caller decides what being disabled did to it.
    #[must_use]
    pub fn latest_started(&self, now: Timestamp) -> Option<Occurrence> {
        let (starts_at, ends_at) = (self.schedule.starts_at(), self.schedule.ends_at());
        if starts_at > now {
            return None;
        }
        let Some(rule) = &self.recurring else {
            return Some(Occurrence { starts_at, ends_at });
        };
        // Slots never overlap and come in time order, at most one starting per local day. Look
        // back from the last instant a slot may start, a stretch at a time (short first: most
        // rules recur daily), until a slot that started is found or the schedule's start is
        // passed; each stretch is shorter than what one scan covers.
        let mut upper = ends_at.map_or(now, |end| end.min(now));
        let mut days: i64 = 2;
        loop {
            let lower = upper
                .checked_add(time::Duration::days(-days))
                .map_or(starts_at, |t| t.max(starts_at));
            let limit = usize::try_from(days)
                .unwrap_or(usize::MAX)
                .saturating_add(3);
            let latest = rule
                .slots(lower, starts_at, ends_at, limit)
                .into_iter()
                .take_while(|(start, _)| *start <= upper)
                .last();
            if let Some((start, end)) = latest {
                return Some(Occurrence {
                    starts_at: start,
                    ends_at: Some(end),
                });
            }
            if lower <= starts_at {
                return None;
            }
            upper = lower;
            days = (days * 2).min(LOOK_BACK_DAYS_MAX);
        }
    }

    /// Whether a device with this site, type and group membership is in the window's scope
    /// (whatever the time). A list that is `None` matches everything; a device without a site or
    /// type is outside any list of sites or types.
    #[must_use]
    pub fn in_scope(
        &self,
        site_id: Option<&ScopeLabel>,
        device_type: Option<&ScopeLabel>,
        labels: &Labels,
        groups: &[GroupSlug],
    ) -> bool {
        let listed = |list: &Option<Vec<ScopeLabel>>, value: Option<&ScopeLabel>| {
            list.as_ref()
                .is_none_or(|list| value.is_some_and(|v| list.contains(v)))
        };
        listed(&self.site_ids, site_id)
            && listed(&self.device_types, device_type)
            && self.labels.as_ref().is_none_or(|l| labels.contains_all(l))
            && self
                .group_ids
                .as_ref()
                .is_none_or(|ids| groups.iter().any(|g| ids.contains(g)))
    }
}

/// One window's scope as sets; `None`: the list is null (everything matches).
struct IndexedScope<'a> {
    /// The window's position among those given to [`CoverageIndex::active_at`].
    position: usize,
    sites: Option<HashSet<&'a ScopeLabel>>,
    types: Option<HashSet<&'a ScopeLabel>>,
    groups: Option<HashSet<&'a GroupSlug>>,
    labels: Option<&'a Labels>,
}

impl IndexedScope<'_> {
    fn covers(
        &self,
        site_id: Option<&ScopeLabel>,
        device_type: Option<&ScopeLabel>,
        labels: &Labels,
        groups: &[GroupSlug],
    ) -> bool {
        let listed = |set: &Option<HashSet<&ScopeLabel>>, value: Option<&ScopeLabel>| {
            set.as_ref()
                .is_none_or(|set| value.is_some_and(|v| set.contains(v)))
        };
        listed(&self.sites, site_id)
            && listed(&self.types, device_type)
            && self.labels.is_none_or(|l| labels.contains_all(l))
            && self
                .groups
                .as_ref()
                .is_none_or(|set| groups.iter().any(|g| set.contains(g)))
    }
}

/// Windows (by position) under each value of one scope dimension, and those whose list is null.
struct DimensionIndex<'a, K> {
    by_value: HashMap<&'a K, Vec<usize>>,
    unrestricted: Vec<usize>,
}

impl<'a, K: Eq + std::hash::Hash> DimensionIndex<'a, K> {
    fn new() -> Self {
        Self {
            by_value: HashMap::new(),
            unrestricted: Vec::new(),
        }
    }

    fn add(&mut self, window: usize, values: Option<&HashSet<&'a K>>) {
        match values {
            None => self.unrestricted.push(window),
            Some(values) => {
                for value in values {
                    self.by_value.entry(*value).or_default().push(window);
                }
            }
        }
    }

    /// The windows that may cover a device with these values in this dimension.
    fn candidates<'s>(&'s self, values: &'s [&K]) -> impl Iterator<Item = usize> + 's {
        values
            .iter()
            .filter_map(|v| self.by_value.get(v))
            .flatten()
            .chain(&self.unrestricted)
            .copied()
    }

    fn count(&self, values: &[&K]) -> usize {
        values
            .iter()
            .filter_map(|v| self.by_value.get(v).map(Vec::len))
            .sum::<usize>()
            + self.unrestricted.len()
    }
}

/// The windows active at one instant, indexed by site, device type and group, so that whether
/// any of them covers a device costs a look-up per candidate window rather than a scan of every
/// window's lists: building it is linear in the windows' list entries, and a device is checked
/// only against the windows its rarest dimension names (or that leave that dimension open).
/// Answers exactly as [`WindowDefinition::is_active`] and [`WindowDefinition::in_scope`] do.
pub struct CoverageIndex<'a> {
    scopes: Vec<IndexedScope<'a>>,
    sites: DimensionIndex<'a, ScopeLabel>,
    types: DimensionIndex<'a, ScopeLabel>,
    groups: DimensionIndex<'a, GroupSlug>,
}

impl<'a> CoverageIndex<'a> {
    /// Indexes those of `windows` that are active at `now`.
    pub fn active_at(
        windows: impl IntoIterator<Item = &'a WindowDefinition>,
        now: Timestamp,
    ) -> Self {
        let mut index = Self {
            scopes: Vec::new(),
            sites: DimensionIndex::new(),
            types: DimensionIndex::new(),
            groups: DimensionIndex::new(),
        };
        for (given, window) in windows
            .into_iter()
            .enumerate()
            .filter(|(_, w)| w.is_active(now))
        {
            let position = index.scopes.len();
            let scope = IndexedScope {
                position: given,
                sites: window.site_ids.as_ref().map(|l| l.iter().collect()),
                types: window.device_types.as_ref().map(|l| l.iter().collect()),
                groups: window.group_ids.as_ref().map(|l| l.iter().collect()),
                labels: window.labels.as_ref(),
            };
            index.sites.add(position, scope.sites.as_ref());
            index.types.add(position, scope.types.as_ref());
            index.groups.add(position, scope.groups.as_ref());
            index.scopes.push(scope);
        }
        index
    }

    /// Whether any indexed window covers a device with this site, type and membership (the
    /// groups that windows name, as in [`WindowDefinition::in_scope`]).
    #[must_use]
    pub fn covers(
        &self,
        site_id: Option<&ScopeLabel>,
        device_type: Option<&ScopeLabel>,
        labels: &Labels,
        groups: &[GroupSlug],
    ) -> bool {
        if self.scopes.is_empty() {
            return false;
        }
        let site: Vec<&ScopeLabel> = site_id.into_iter().collect();
        let kind: Vec<&ScopeLabel> = device_type.into_iter().collect();
        let member_of: Vec<&GroupSlug> = groups.iter().collect();
        // A covering window is among the candidates of every dimension: scan the fewest.
        let counts = [
            self.sites.count(&site),
            self.types.count(&kind),
            self.groups.count(&member_of),
        ];
        let fewest = counts.iter().min().copied().unwrap_or(0);
        let mut candidates: Box<dyn Iterator<Item = usize>> = if counts[0] == fewest {
            Box::new(self.sites.candidates(&site))
        } else if counts[1] == fewest {
            Box::new(self.types.candidates(&kind))
        } else {
            Box::new(self.groups.candidates(&member_of))
        };
        candidates.any(|w| self.scopes[w].covers(site_id, device_type, labels, groups))
    }

    /// The positions (among the windows given to [`CoverageIndex::active_at`], ascending) of
    /// the indexed windows that cover a device with this site, type and membership.
    #[must_use]
    pub fn covering(
        &self,
        site_id: Option<&ScopeLabel>,
        device_type: Option<&ScopeLabel>,
        labels: &Labels,
        groups: &[GroupSlug],
    ) -> Vec<usize> {
        let site: Vec<&ScopeLabel> = site_id.into_iter().collect();
        let mut found: Vec<usize> = self
            .sites
            .candidates(&site)
            .filter(|w| self.scopes[*w].covers(site_id, device_type, labels, groups))
            .map(|w| self.scopes[w].position)
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// Most devices a dry run lists (the count covers them all).
pub const SCOPE_PREVIEW_MAX: usize = 100;

/// What a window's scope is worth a second look for before it is saved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScopeWarning {
    #[error("covers no device")]
    NoDevice,
    #[error("covers every device of the tenant")]
    EveryDevice,
    #[error("names a group that does not exist: {}", .0.as_str())]
    UnknownGroup(GroupSlug),
}

/// The warnings of a scope that holds `in_scope` of the tenant's `tenant_devices` devices and
/// names `unknown_groups`, in that order.
#[must_use]
pub fn scope_warnings(
    in_scope: u64,
    tenant_devices: u64,
    unknown_groups: &[GroupSlug],
) -> Vec<ScopeWarning> {
    let mut warnings = Vec::new();
    if in_scope == 0 {
        warnings.push(ScopeWarning::NoDevice);
    } else if in_scope >= tenant_devices {
        warnings.push(ScopeWarning::EveryDevice);
    }
    warnings.extend(
        unknown_groups
            .iter()
            .cloned()
            .map(ScopeWarning::UnknownGroup),
    );
    warnings
}

/// Why a device is, or will be, muted by a window: the window's next stretch, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCoverage {
    pub window: MaintenanceWindow,
    pub active_now: bool,
    /// The occurrence under way at the instant asked, else the next one; `None`: none to come.
    pub next_occurrence: Option<Occurrence>,
}

/// The windows of `windows` that may mute a device with this site, type and membership (the
/// slugs of its groups): enabled, not expired at `now`, and with the device in scope, in the
/// order given. The scope is judged by [`WindowDefinition::in_scope`], as alerts are.
#[must_use]
pub fn covering_device(
    windows: Vec<MaintenanceWindow>,
    site_id: Option<&ScopeLabel>,
    device_type: Option<&ScopeLabel>,
    labels: &Labels,
    groups: &[GroupSlug],
    now: Timestamp,
) -> Vec<DeviceCoverage> {
    windows
        .into_iter()
        .filter(|w| {
            let d = &w.definition;
            !matches!(
                d.status(now),
                WindowStatus::Disabled | WindowStatus::Expired
            ) && d.in_scope(site_id, device_type, labels, groups)
        })
        .map(|window| {
            let next_occurrence = window.definition.occurrences(now, 1).into_iter().next();
            DeviceCoverage {
                active_now: next_occurrence.is_some_and(|o| o.contains(now)),
                next_occurrence,
                window,
            }
        })
        .collect()
}

/// A partial update. `None` leaves a field as it is; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowChanges {
    pub name: Option<WindowName>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Option<Timestamp>>,
    pub recurring: Option<Option<Recurrence>>,
    pub site_ids: Option<Option<Vec<ScopeLabel>>>,
    pub device_types: Option<Option<Vec<ScopeLabel>>>,
    pub group_ids: Option<Option<Vec<GroupSlug>>>,
    pub labels: Option<Option<Labels>>,
    pub enabled: Option<bool>,
}

impl WindowChanges {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl WindowDefinition {
    /// The definition with `changes` applied, re-validated as a whole (a new `ends_at` must still
    /// be after the kept `starts_at`, and the other way round).
    ///
    /// # Errors
    /// [`WindowError::EndsNotAfterStart`] when the merged schedule is empty.
    pub fn apply(&self, changes: WindowChanges) -> Result<Self, WindowError> {
        let schedule = WindowSchedule::new(
            changes.starts_at.unwrap_or(self.schedule.starts_at),
            changes.ends_at.unwrap_or(self.schedule.ends_at),
        )?;
        Ok(Self {
            name: changes.name.unwrap_or_else(|| self.name.clone()),
            schedule,
            recurring: changes.recurring.unwrap_or_else(|| self.recurring.clone()),
            site_ids: changes.site_ids.unwrap_or_else(|| self.site_ids.clone()),
            device_types: changes
                .device_types
                .unwrap_or_else(|| self.device_types.clone()),
            group_ids: changes.group_ids.unwrap_or_else(|| self.group_ids.clone()),
            labels: changes.labels.unwrap_or_else(|| self.labels.clone()),
            enabled: changes.enabled.unwrap_or(self.enabled),
        })
    }
}

/// A window about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMaintenanceWindow {
    pub window_id: WindowSlug,
    pub definition: WindowDefinition,
}

/// A stored window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub window_id: WindowSlug,
    pub definition: WindowDefinition,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: Actor,
    pub updated_by: Actor,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn at(t: time::OffsetDateTime) -> Timestamp {
        Timestamp::new(t).unwrap()
    }

    fn definition(ends_at: Option<Timestamp>) -> WindowDefinition {
        WindowDefinition {
            labels: None,
            name: WindowName::parse("Nightly").unwrap(),
            schedule: WindowSchedule::new(at(datetime!(2025-01-01 0:00 UTC)), ends_at).unwrap(),
            recurring: None,
            site_ids: None,
            device_types: None,
            group_ids: None,
            enabled: true,
        }
    }

    #[test]
    fn a_window_with_labels_covers_only_devices_carrying_all_of_them() {
        let mut window = definition(None);
        window.labels = Some(Labels::parse([("floor", "3"), ("zone", "a")]).unwrap());
        let both = Labels::parse([("floor", "3"), ("zone", "a"), ("x", "y")]).unwrap();
        let one = Labels::parse([("floor", "3")]).unwrap();
        assert!(window.in_scope(None, None, &both, &[]));
        assert!(!window.in_scope(None, None, &one, &[]));
        assert!(!window.in_scope(None, None, &Labels::none(), &[]));
        let now = at(datetime!(2025-06-01 0:00 UTC));
        let index = CoverageIndex::active_at([&window], now);
        assert!(index.covers(None, None, &both, &[]));
        assert!(!index.covers(None, None, &one, &[]));
        assert_eq!(index.covering(None, None, &both, &[]), vec![0]);
        assert!(index.covering(None, None, &one, &[]).is_empty());
    }

    #[test]
    fn a_window_that_ends_before_or_when_it_starts_cannot_exist() {
        let start = at(datetime!(2025-01-01 0:00 UTC));
        assert_eq!(
            WindowSchedule::new(start, Some(start)),
            Err(WindowError::EndsNotAfterStart)
        );
        assert_eq!(
            WindowSchedule::new(start, Some(at(datetime!(2024-12-31 23:59 UTC)))),
            Err(WindowError::EndsNotAfterStart)
        );
        assert!(WindowSchedule::new(start, None).is_ok());
        assert!(
            WindowSchedule::new(start, Some(at(datetime!(2025-01-01 0:00:00.000_001 UTC)))).is_ok()
        );
    }

    #[test]
    fn recurrence_hours_must_be_in_range() {
        assert!(Recurrence::new(None, 0, 24).is_ok());
        assert_eq!(
            Recurrence::new(None, -1, 5),
            Err(RecurrenceError::StartHourOutOfRange(-1))
        );
        assert_eq!(
            Recurrence::new(None, 24, 24),
            Err(RecurrenceError::StartHourOutOfRange(24))
        );
        assert_eq!(
            Recurrence::new(None, 0, 0),
            Err(RecurrenceError::EndHourOutOfRange(0))
        );
        assert_eq!(
            Recurrence::new(None, 0, 25),
            Err(RecurrenceError::EndHourOutOfRange(25))
        );
        assert_eq!(Recurrence::new(None, 5, 5), Err(RecurrenceError::EmptySlot));
        assert_eq!(
            Recurrence::new(None, 5, 5).unwrap_err().field(),
            "recurring.end_hour"
        );
        assert!(
            Recurrence::new(None, 22, 6).is_ok(),
            "a slot may run past midnight"
        );
    }

    #[test]
    fn recurrence_days_must_be_0_to_6_and_are_kept_sorted_without_repeats() {
        let r = Recurrence::new(Some(&[6, 0, 6, 3]), 1, 2).unwrap();
        assert_eq!(r.days(), Some(&[0, 3, 6][..]));
        let err = Recurrence::new(Some(&[1, 7]), 1, 2).unwrap_err();
        assert_eq!(err, RecurrenceError::DayOutOfRange { index: 1, value: 7 });
        assert_eq!(err.field(), "recurring.dow[1]");
        assert!(Recurrence::new(Some(&[-1]), 1, 2).is_err());
        assert_eq!(
            Recurrence::new(Some(&[]), 1, 2),
            Err(RecurrenceError::NoDays)
        );
        assert_eq!(Recurrence::new(None, 1, 2).unwrap().days(), None);
    }

    #[test]
    fn scope_lists_refuse_empty_entries_and_name_the_first_one() {
        assert_eq!(
            ScopeLabel::parse_list(&["site-1", "site-2"]).unwrap().len(),
            2
        );
        assert_eq!(
            ScopeLabel::parse_list(&["site-1", ""]),
            Err(ScopeListError::Entry {
                index: 1,
                reason: TextError::Empty
            })
        );
        let many = vec!["s"; SCOPE_LIST_MAX + 1];
        assert_eq!(
            ScopeLabel::parse_list(&many),
            Err(ScopeListError::TooMany(SCOPE_LIST_MAX + 1))
        );
    }

    #[test]
    fn applying_changes_revalidates_the_merged_schedule() {
        let def = definition(Some(at(datetime!(2025-01-02 0:00 UTC))));
        let moved_start = WindowChanges {
            starts_at: Some(at(datetime!(2025-01-03 0:00 UTC))),
            ..WindowChanges::default()
        };
        assert_eq!(def.apply(moved_start), Err(WindowError::EndsNotAfterStart));

        let reopened = WindowChanges {
            starts_at: Some(at(datetime!(2025-01-03 0:00 UTC))),
            ends_at: Some(None),
            ..WindowChanges::default()
        };
        let applied = def.apply(reopened).unwrap();
        assert_eq!(applied.schedule.ends_at(), None);
        assert_eq!(applied.name, def.name);
    }

    #[test]
    fn scope_warnings_are_worded_exactly() {
        let slug = GroupSlug::parse("grp-nope").unwrap();
        let words = |w: Vec<ScopeWarning>| w.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(words(scope_warnings(0, 5, &[])), ["covers no device"]);
        assert_eq!(words(scope_warnings(0, 0, &[])), ["covers no device"]);
        assert_eq!(
            words(scope_warnings(5, 5, std::slice::from_ref(&slug))),
            [
                "covers every device of the tenant",
                "names a group that does not exist: grp-nope"
            ]
        );
        assert!(scope_warnings(4, 5, &[]).is_empty());
    }

    #[test]
    fn a_device_is_covered_by_the_enabled_unexpired_windows_whose_scope_holds_it() {
        let now = at(datetime!(2025-01-01 12:00 UTC));
        let stored = |def: WindowDefinition| MaintenanceWindow {
            window_id: WindowSlug::parse("mw-1").unwrap(),
            definition: def,
            created_at: now,
            updated_at: now,
            created_by: Actor::parse("a").unwrap(),
            updated_by: Actor::parse("a").unwrap(),
        };
        let site = ScopeLabel::parse("site-1").unwrap();
        let active = definition(Some(at(datetime!(2025-01-02 0:00 UTC))));
        let expired = definition(Some(at(datetime!(2025-01-01 6:00 UTC))));
        let disabled = WindowDefinition {
            enabled: false,
            ..active.clone()
        };
        let elsewhere = WindowDefinition {
            site_ids: Some(vec![ScopeLabel::parse("site-2").unwrap()]),
            ..active.clone()
        };
        let later = WindowDefinition {
            schedule: WindowSchedule::new(at(datetime!(2025-02-01 0:00 UTC)), None).unwrap(),
            ..active.clone()
        };
        let found = covering_device(
            [active, expired, disabled, elsewhere, later]
                .into_iter()
                .map(stored)
                .collect(),
            Some(&site),
            None,
            &Labels::none(),
            &[],
            now,
        );
        assert_eq!(found.len(), 2);
        assert!(found[0].active_now);
        assert_eq!(
            found[0].next_occurrence.map(|o| o.starts_at),
            Some(at(datetime!(2025-01-01 0:00 UTC))),
            "the occurrence under way"
        );
        assert!(!found[1].active_now);
        assert_eq!(
            found[1].next_occurrence.map(|o| o.starts_at),
            Some(at(datetime!(2025-02-01 0:00 UTC)))
        );
    }

    #[test]
    fn empty_changes_are_detected() {
        assert!(WindowChanges::default().is_empty());
        assert!(!WindowChanges {
            enabled: Some(false),
            ..WindowChanges::default()
        }
        .is_empty());
    }

    #[test]
    fn a_window_changes_at_its_start_its_end_or_never() {
        let def = definition(Some(at(datetime!(2025-01-02 0:00 UTC))));
        let before = at(datetime!(2024-12-31 12:00 UTC));
        assert_eq!(def.next_change(before), Some(def.schedule.starts_at()));
        let during = at(datetime!(2025-01-01 12:00 UTC));
        assert_eq!(def.next_change(during), def.schedule.ends_at());
        assert_eq!(def.next_change(at(datetime!(2025-01-03 0:00 UTC))), None);
        assert_eq!(definition(None).next_change(during), None, "open-ended");
        let disabled = WindowDefinition {
            enabled: false,
            ..def
        };
        assert_eq!(disabled.next_change(before), None);
    }

    #[test]
    fn the_latest_started_occurrence_of_a_one_off_window_is_the_window_once_it_started() {
        let def = definition(Some(at(datetime!(2025-01-02 0:00 UTC))));
        let whole = Occurrence {
            starts_at: at(datetime!(2025-01-01 0:00 UTC)),
            ends_at: Some(at(datetime!(2025-01-02 0:00 UTC))),
        };
        assert_eq!(
            def.latest_started(at(datetime!(2024-12-31 23:59 UTC))),
            None,
            "none started yet"
        );
        assert_eq!(
            def.latest_started(at(datetime!(2025-01-01 0:00 UTC))),
            Some(whole),
            "its first instant counts"
        );
        assert_eq!(
            def.latest_started(at(datetime!(2025-06-01 0:00 UTC))),
            Some(whole)
        );
        assert_eq!(
            definition(None).latest_started(at(datetime!(2030-01-01 0:00 UTC))),
            Some(Occurrence {
                starts_at: whole.starts_at,
                ends_at: None
            }),
            "open-ended"
        );
        let disabled = WindowDefinition {
            enabled: false,
            ..def
        };
        assert_eq!(
            disabled.latest_started(at(datetime!(2025-06-01 0:00 UTC))),
            Some(whole),
            "the schedule, whatever `enabled` says"
        );
    }

    #[test]
    fn the_latest_started_occurrence_of_a_recurring_window_is_its_last_slot_begun() {
        let def = WindowDefinition {
            recurring: Some(Recurrence::new(None, 2, 4).unwrap()),
            ..definition(None)
        };
        let slot = |day: time::OffsetDateTime, end: time::OffsetDateTime| Occurrence {
            starts_at: at(day),
            ends_at: Some(at(end)),
        };
        assert_eq!(
            def.latest_started(at(datetime!(2025-01-01 1:59 UTC))),
            None,
            "the first slot has not begun"
        );
        assert_eq!(
            def.latest_started(at(datetime!(2025-01-05 1:30 UTC))),
            Some(slot(
                datetime!(2025-01-04 2:00 UTC),
                datetime!(2025-01-04 4:00 UTC)
            )),
            "between slots: the one before"
        );
        assert_eq!(
            def.latest_started(at(datetime!(2025-01-05 3:00 UTC))),
            Some(slot(
                datetime!(2025-01-05 2:00 UTC),
                datetime!(2025-01-05 4:00 UTC)
            )),
            "under way"
        );
        let over = WindowDefinition {
            schedule: WindowSchedule::new(
                at(datetime!(2025-01-01 0:00 UTC)),
                Some(at(datetime!(2025-01-10 3:00 UTC))),
            )
            .unwrap(),
            ..def.clone()
        };
        assert_eq!(
            over.latest_started(at(datetime!(2026-03-01 0:00 UTC))),
            Some(slot(
                datetime!(2025-01-10 2:00 UTC),
                datetime!(2025-01-10 3:00 UTC)
            )),
            "an expired window: its last slot, cut at its end"
        );
    }

    #[test]
    fn a_rare_slot_is_found_more_than_a_year_back() {
        // Mondays that are the 31st: 2025-03-31, then 2026-08-31.
        let rule = Recurrence::from_parts(RecurrenceParts {
            dow: Some(&[1]),
            days_of_month: Some(&[31]),
            start_hour: 2,
            start_minute: None,
            end_hour: 4,
            end_minute: None,
            timezone: None,
        })
        .unwrap();
        let def = WindowDefinition {
            recurring: Some(rule),
            ..definition(None)
        };
        assert_eq!(
            def.latest_started(at(datetime!(2026-08-30 0:00 UTC))),
            Some(Occurrence {
                starts_at: at(datetime!(2025-03-31 2:00 UTC)),
                ends_at: Some(at(datetime!(2025-03-31 4:00 UTC))),
            })
        );
        assert_eq!(
            def.latest_started(at(datetime!(2025-03-30 0:00 UTC))),
            None,
            "none since the schedule's start"
        );
    }

    #[test]
    fn a_recurring_window_changes_at_its_slot_boundaries() {
        let def = WindowDefinition {
            recurring: Some(Recurrence::new(None, 2, 4).unwrap()),
            ..definition(None)
        };
        assert_eq!(
            def.next_change(at(datetime!(2025-01-05 1:30 UTC))),
            Some(at(datetime!(2025-01-05 2:00 UTC)))
        );
        assert_eq!(
            def.next_change(at(datetime!(2025-01-05 2:00 UTC))),
            Some(at(datetime!(2025-01-05 4:00 UTC)))
        );
        assert_eq!(
            def.next_change(at(datetime!(2025-01-05 4:00 UTC))),
            Some(at(datetime!(2025-01-06 2:00 UTC)))
        );
    }

    proptest::proptest! {
        /// Whatever the window and the instant, whether it applies holds until its next change
        /// (checked at a spread of instants in between). It may hold past it too: back-to-back
        /// slots (every hour of every day, say) each end where the next starts.
        #[test]
        fn activity_holds_until_the_next_change(
            start_offset in 0i64..(14 * 24 * 60),
            length in proptest::option::of(1i64..(10 * 24 * 60)),
            slot in proptest::option::of((0i64..24, 1i64..=24)),
            days in proptest::option::of(proptest::collection::vec(0i64..7, 1..4)),
            now_offset in 0i64..(30 * 24 * 60),
        ) {
            let minutes = time::Duration::minutes;
            let origin = datetime!(2025-01-01 0:00 UTC);
            let starts_at = at(origin + minutes(start_offset));
            let ends_at = length.map(|l| at(starts_at.get() + minutes(l)));
            let recurring = match slot {
                Some((start, end)) if start != end => {
                    Some(Recurrence::new(days.as_deref(), start, end).unwrap())
                }
                _ => None,
            };
            let def = WindowDefinition {
                schedule: WindowSchedule::new(starts_at, ends_at).unwrap(),
                recurring,
                ..definition(None)
            };
            let now = at(origin + minutes(now_offset));
            let active = def.is_active(now);
            let horizon = at(origin + minutes(60 * 24 * 60));
            let change = def.next_change(now);
            if let Some(change) = change {
                proptest::prop_assert!(change > now);
            }
            let until = change.unwrap_or(horizon).min(horizon);
            let span = until.get() - now.get();
            for step in 0..50i32 {
                let t = at(now.get() + span * step / 50);
                proptest::prop_assert_eq!(def.is_active(t), active, "at {:?}", t);
            }
        }
    }

    fn labels(values: &[u8]) -> Vec<ScopeLabel> {
        values
            .iter()
            .map(|v| ScopeLabel::parse(&format!("l{v}")).unwrap())
            .collect()
    }

    fn slugs(values: &[u8]) -> Vec<GroupSlug> {
        values
            .iter()
            .map(|v| GroupSlug::parse(&format!("g{v}")).unwrap())
            .collect()
    }

    #[test]
    fn the_index_covers_by_site_type_and_group_and_skips_inactive_windows() {
        let now = at(datetime!(2025-06-01 12:00 UTC));
        let scoped =
            |sites: Option<&[u8]>, types: Option<&[u8]>, groups: Option<&[u8]>| WindowDefinition {
                site_ids: sites.map(labels),
                device_types: types.map(labels),
                group_ids: groups.map(slugs),
                ..definition(None)
            };
        let windows = [
            scoped(Some(&[1, 2]), Some(&[7]), None),
            scoped(None, None, Some(&[3])),
            WindowDefinition {
                enabled: false,
                ..scoped(None, None, None)
            },
        ];
        let index = CoverageIndex::active_at(&windows, now);
        let l = |v: u8| labels(&[v]).remove(0);
        assert!(index.covers(Some(&l(2)), Some(&l(7)), &Labels::none(), &[]));
        assert!(
            !index.covers(Some(&l(2)), Some(&l(8)), &Labels::none(), &[]),
            "type not listed"
        );
        assert!(
            !index.covers(None, Some(&l(7)), &Labels::none(), &[]),
            "no site: outside a site list"
        );
        assert!(
            index.covers(None, None, &Labels::none(), &slugs(&[4, 3])),
            "member of a named group"
        );
        assert!(!index.covers(Some(&l(9)), None, &Labels::none(), &slugs(&[4])));
        assert!(
            !CoverageIndex::active_at(&windows[2..], now).covers(None, None, &Labels::none(), &[]),
            "disabled"
        );
    }

    proptest::proptest! {
        /// The index answers as checking every active window's scope one by one does.
        #[test]
        fn the_index_answers_as_the_scan_of_every_window(
            windows in proptest::collection::vec(
                (
                    proptest::option::of(proptest::collection::vec(0u8..6, 0..4)),
                    proptest::option::of(proptest::collection::vec(0u8..6, 0..4)),
                    proptest::option::of(proptest::collection::vec(0u8..6, 0..4)),
                    proptest::bool::ANY,
                    proptest::option::of(0i64..48),
                ),
                0..8,
            ),
            devices in proptest::collection::vec(
                (
                    proptest::option::of(0u8..6),
                    proptest::option::of(0u8..6),
                    proptest::collection::vec(0u8..6, 0..3),
                ),
                1..10,
            ),
        ) {
            let now = at(datetime!(2025-01-01 12:00 UTC));
            let windows: Vec<WindowDefinition> = windows
                .iter()
                .map(|(sites, types, groups, enabled, ends_in_hours)| WindowDefinition {
                    site_ids: sites.as_deref().map(labels),
                    device_types: types.as_deref().map(labels),
                    group_ids: groups.as_deref().map(slugs),
                    enabled: *enabled,
                    ..definition(ends_in_hours.map(|h| at(datetime!(2025-01-01 0:00 UTC) + time::Duration::hours(h + 1))))
                })
                .collect();
            let index = CoverageIndex::active_at(&windows, now);
            for (site, kind, groups) in &devices {
                let site = site.map(|v| labels(&[v]).remove(0));
                let kind = kind.map(|v| labels(&[v]).remove(0));
                let groups = slugs(groups);
                let scanned = windows
                    .iter()
                    .any(|w| w.is_active(now) && w.in_scope(site.as_ref(), kind.as_ref(), &Labels::none(), &groups));
                proptest::prop_assert_eq!(index.covers(site.as_ref(), kind.as_ref(), &Labels::none(), &groups), scanned);
            }
        }
    }

    #[test]
    fn a_generated_window_slug_is_mw_and_eight_hex_digits() {
        assert_eq!(WindowSlug::generate(0x1234_abcd).as_str(), "mw-1234abcd");
    }
}
