//! Dynamic groups: a group whose members are the devices a filter selects now, rather than a
//! list kept by hand. The stores keep such a group's members in step with the filter and the
//! devices (every device write and filter change re-selects them), so every read sees the
//! devices that match at that moment.

use thiserror::Error;

use crate::device::{DeviceSpec, DeviceStatus};
use crate::label::Labels;
use crate::window::ScopeLabel;

/// Most dynamic groups one tenant may keep: every device write selects its memberships among
/// them, so they bound what that costs (and the memberships one device write can add).
pub const DYNAMIC_GROUPS_MAX: usize = 100;

/// Which devices a dynamic group holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupFilter {
    /// Every device of the tenant (said outright: an empty filter is refused).
    All,
    /// The devices meeting every condition given.
    Matching(MemberConditions),
}

/// Conditions on a device, all of which must hold; at least one is given. A list holds a
/// device whose value is any of its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConditions {
    site_ids: Option<Vec<ScopeLabel>>,
    device_types: Option<Vec<ScopeLabel>>,
    labels: Option<Labels>,
    statuses: Option<Vec<DeviceStatus>>,
}

/// Why a filter was refused; `field` names the key at fault under `filter`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupFilterError {
    #[error("must name at least one of site_ids, device_types, labels, statuses, or be {{\"all\": true}} for every device of the tenant")]
    Empty,
    #[error("must not be empty")]
    EmptyList(&'static str),
}

impl GroupFilterError {
    /// The JSON path of the offending value under `filter`.
    #[must_use]
    pub fn field(&self) -> String {
        match self {
            Self::Empty => "filter".to_owned(),
            Self::EmptyList(key) => format!("filter.{key}"),
        }
    }
}

impl MemberConditions {
    /// # Errors
    /// [`GroupFilterError::Empty`] when no condition is given, [`GroupFilterError::EmptyList`]
    /// for a list without entries (it would hold no device; say so with no group instead) or
    /// an empty `labels` object (it would hold every device: that is `{"all": true}`).
    pub fn new(
        site_ids: Option<Vec<ScopeLabel>>,
        device_types: Option<Vec<ScopeLabel>>,
        labels: Option<Labels>,
        statuses: Option<Vec<DeviceStatus>>,
    ) -> Result<Self, GroupFilterError> {
        if site_ids.as_ref().is_some_and(Vec::is_empty) {
            return Err(GroupFilterError::EmptyList("site_ids"));
        }
        if device_types.as_ref().is_some_and(Vec::is_empty) {
            return Err(GroupFilterError::EmptyList("device_types"));
        }
        if labels.as_ref().is_some_and(Labels::is_empty) {
            return Err(GroupFilterError::EmptyList("labels"));
        }
        if statuses.as_ref().is_some_and(Vec::is_empty) {
            return Err(GroupFilterError::EmptyList("statuses"));
        }
        if site_ids.is_none() && device_types.is_none() && labels.is_none() && statuses.is_none() {
            return Err(GroupFilterError::Empty);
        }
        Ok(Self {
            site_ids: site_ids.map(without_repeats),
            device_types: device_types.map(without_repeats),
            labels,
            statuses: statuses.map(without_repeats),
        })
    }

    #[must_use]
    pub fn site_ids(&self) -> Option<&[ScopeLabel]> {
        self.site_ids.as_deref()
    }

    #[must_use]
    pub fn device_types(&self) -> Option<&[ScopeLabel]> {
        self.device_types.as_deref()
    }

    #[must_use]
    pub fn labels(&self) -> Option<&Labels> {
        self.labels.as_ref()
    }

    #[must_use]
    pub fn statuses(&self) -> Option<&[DeviceStatus]> {
        self.statuses.as_deref()
    }
}

impl GroupFilter {
    /// Whether a device of this spec belongs to the group. A device without a site or type is
    /// outside any list of sites or types.
    #[must_use]
    pub fn matches(&self, spec: &DeviceSpec) -> bool {
        let Self::Matching(c) = self else {
            return true;
        };
        let listed = |list: Option<&[ScopeLabel]>, value: Option<&ScopeLabel>| {
            list.is_none_or(|list| value.is_some_and(|v| list.contains(v)))
        };
        listed(c.site_ids(), spec.site_id.as_ref())
            && listed(c.device_types(), spec.device_type.as_ref())
            && c.labels().is_none_or(|l| spec.labels.contains_all(l))
            && c.statuses().is_none_or(|s| s.contains(&spec.status))
    }
}

fn without_repeats<T: PartialEq>(values: Vec<T>) -> Vec<T> {
    let mut kept: Vec<T> = Vec::with_capacity(values.len());
    for value in values {
        if !kept.contains(&value) {
            kept.push(value);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{DeviceName, Thresholds, Unit};

    fn spec(site: Option<&str>, kind: Option<&str>, labels: &[(&str, &str)]) -> DeviceSpec {
        DeviceSpec {
            name: DeviceName::parse("d").unwrap(),
            unit: Unit::parse("C").unwrap(),
            status: DeviceStatus::Connected,
            site_id: site.map(|s| ScopeLabel::parse(s).unwrap()),
            device_type: kind.map(|s| ScopeLabel::parse(s).unwrap()),
            thresholds: Thresholds::default(),
            stale_after: None,
            labels: Labels::parse(labels.iter().copied()).unwrap(),
        }
    }

    fn scope(values: &[&str]) -> Vec<ScopeLabel> {
        values
            .iter()
            .map(|v| ScopeLabel::parse(v).unwrap())
            .collect()
    }

    #[test]
    fn every_condition_given_must_hold_and_a_list_holds_any_of_its_entries() {
        let filter = GroupFilter::Matching(
            MemberConditions::new(
                Some(scope(&["s1", "s2"])),
                None,
                Some(Labels::parse([("floor", "3")]).unwrap()),
                Some(vec![DeviceStatus::Connected]),
            )
            .unwrap(),
        );
        assert!(filter.matches(&spec(Some("s2"), None, &[("floor", "3"), ("x", "y")])));
        assert!(!filter.matches(&spec(Some("s3"), None, &[("floor", "3")])));
        assert!(!filter.matches(&spec(None, None, &[("floor", "3")])));
        assert!(!filter.matches(&spec(Some("s1"), None, &[("floor", "4")])));
        let mut off = spec(Some("s1"), None, &[("floor", "3")]);
        off.status = DeviceStatus::Error;
        assert!(!filter.matches(&off));
        assert!(GroupFilter::All.matches(&spec(None, None, &[])));
    }

    #[test]
    fn an_empty_filter_or_list_is_refused_naming_it() {
        assert_eq!(
            MemberConditions::new(None, None, None, None),
            Err(GroupFilterError::Empty)
        );
        let e = MemberConditions::new(Some(vec![]), None, None, None).unwrap_err();
        assert_eq!(e.field(), "filter.site_ids");
        let e = MemberConditions::new(None, None, Some(Labels::none()), None).unwrap_err();
        assert_eq!(e.field(), "filter.labels");
        let e = MemberConditions::new(None, None, None, Some(vec![])).unwrap_err();
        assert_eq!(e.field(), "filter.statuses");
    }

    #[test]
    fn repeated_entries_are_kept_once() {
        let c = MemberConditions::new(
            Some(scope(&["a", "a", "b"])),
            None,
            None,
            Some(vec![DeviceStatus::Error, DeviceStatus::Error]),
        )
        .unwrap();
        assert_eq!(c.site_ids().unwrap().len(), 2);
        assert_eq!(c.statuses(), Some(&[DeviceStatus::Error][..]));
    }
}
