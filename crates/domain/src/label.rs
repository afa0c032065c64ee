//! Device labels (`{"floor": "3", "team/owner": "ops"}`) and the filter device lists take: a
//! set of conditions that must all hold. Both are valid on construction, so the stores and
//! (later) dynamic groups and label-scoped windows take them as given.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::alert::AlertStatus;
use crate::device::{Device, DeviceStatus};
use crate::window::ScopeLabel;

/// Most labels one device carries.
pub const LABELS_MAX: usize = 32;
/// Longest label key.
pub const LABEL_KEY_MAX: usize = 63;
/// Longest label value.
pub const LABEL_VALUE_MAX: usize = 128;
/// Most `label` conditions one filter holds.
pub const LABEL_CONDITIONS_MAX: usize = 32;

/// Why a label key or value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LabelError {
    #[error("keys must be 1 to {LABEL_KEY_MAX} characters of a-z 0-9 . _ - /")]
    Key,
    #[error("must be at most {LABEL_VALUE_MAX} characters without control characters")]
    Value,
    #[error("must hold at most {LABELS_MAX} labels, got {0}")]
    TooMany(usize),
}

/// Why a set of labels was refused, and where: `labels.<key>` for a bad key or value,
/// `labels` for the set as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct LabelsError {
    /// The key at fault; `None`: the set as a whole.
    pub key: Option<String>,
    pub reason: LabelError,
}

impl LabelsError {
    /// The JSON path of the offending value under `field`.
    #[must_use]
    pub fn field(&self, field: &str) -> String {
        match &self.key {
            // A key that is itself invalid may hold anything: show it only when it is safe.
            Some(key) if self.reason != LabelError::Key => format!("{field}.{key}"),
            _ => field.to_owned(),
        }
    }
}

/// Whether `key` is a valid label key: 1 to 63 of `a-z 0-9 . _ - /`.
#[must_use]
pub fn valid_key(key: &str) -> bool {
    (1..=LABEL_KEY_MAX).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
}

/// Whether `value` is a valid label value: up to 128 characters, no control characters.
#[must_use]
pub fn valid_value(value: &str) -> bool {
    value.chars().count() <= LABEL_VALUE_MAX && !value.chars().any(char::is_control)
}

/// A device's labels: at most [`LABELS_MAX`] pairs, each key valid by [`valid_key`] and each
/// value by [`valid_value`]. Kept sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// No labels.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// # Errors
    /// [`LabelsError`] naming the first bad key (in key order), or the set when it is too big.
    pub fn parse<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, LabelsError> {
        let map: BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        if map.len() > LABELS_MAX {
            return Err(LabelsError {
                key: None,
                reason: LabelError::TooMany(map.len()),
            });
        }
        for (key, value) in &map {
            if !valid_key(key) {
                return Err(LabelsError {
                    key: Some(key.clone()),
                    reason: LabelError::Key,
                });
            }
            if !valid_value(value) {
                return Err(LabelsError {
                    key: Some(key.clone()),
                    reason: LabelError::Value,
                });
            }
        }
        Ok(Self(map))
    }

    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The pairs, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether every pair of `wanted` is among these labels (JSON containment, as PostgreSQL's
    /// `@>` answers it on objects of strings).
    #[must_use]
    pub fn contains_all(&self, wanted: &Labels) -> bool {
        wanted.iter().all(|(k, v)| self.get(k) == Some(v))
    }
}

/// Why a device filter was refused; each variant names the query parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeviceFilterError {
    #[error("must be key:value with a key of 1 to {LABEL_KEY_MAX} characters of a-z 0-9 . _ - / and a value of at most {LABEL_VALUE_MAX} characters, got '{0}'")]
    Label(String),
    #[error("may be given at most {LABEL_CONDITIONS_MAX} times, got {0}")]
    TooManyLabels(usize),
}

/// Which devices a list selects; every condition given must hold (AND). The empty filter
/// selects every device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    pub site_id: Option<ScopeLabel>,
    pub device_type: Option<ScopeLabel>,
    pub status: Option<DeviceStatus>,
    pub alert_status: Option<AlertStatus>,
    labels: Labels,
    /// Two conditions on one key with different values: nothing can match.
    contradictory: bool,
}

impl DeviceFilter {
    /// Every device.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// This filter, also requiring each `key:value` of `conditions` (as a query string gives
    /// them; the value is what follows the first `:`).
    ///
    /// # Errors
    /// [`DeviceFilterError`] for more than [`LABEL_CONDITIONS_MAX`] conditions or a malformed
    /// one.
    pub fn with_label_conditions<S: AsRef<str>>(
        mut self,
        conditions: &[S],
    ) -> Result<Self, DeviceFilterError> {
        if conditions.len() > LABEL_CONDITIONS_MAX {
            return Err(DeviceFilterError::TooManyLabels(conditions.len()));
        }
        let mut wanted = self.labels.0.clone();
        for condition in conditions {
            let condition = condition.as_ref();
            let bad = || {
                let shown: String = condition
                    .chars()
                    .take(LABEL_KEY_MAX + LABEL_VALUE_MAX + 1)
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect();
                DeviceFilterError::Label(shown)
            };
            let (key, value) = condition.split_once(':').ok_or_else(bad)?;
            if !valid_key(key) || !valid_value(value) {
                return Err(bad());
            }
            if let Some(previous) = wanted.insert(key.to_owned(), value.to_owned()) {
                self.contradictory |= previous != value;
            }
        }
        self.labels = Labels(wanted);
        Ok(self)
    }

    /// The labels a device must carry (all of them).
    #[must_use]
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Whether no device can pass (one key asked with two values).
    #[must_use]
    pub fn matches_nothing(&self) -> bool {
        self.contradictory
    }

    /// Whether `device` passes every condition (its kept alert status for `alert_status`).
    #[must_use]
    pub fn matches(&self, device: &Device) -> bool {
        let spec = &device.spec;
        !self.contradictory
            && self
                .site_id
                .as_ref()
                .is_none_or(|s| spec.site_id.as_ref() == Some(s))
            && self
                .device_type
                .as_ref()
                .is_none_or(|t| spec.device_type.as_ref() == Some(t))
            && self.status.is_none_or(|s| spec.status == s)
            && self
                .alert_status
                .is_none_or(|s| device.state.alert_status == s)
            && spec.labels.contains_all(&self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_and_counts_are_bounded() {
        assert!(Labels::parse([("floor", "3"), ("team/owner", "ops-1.a_b")]).is_ok());
        assert!(
            Labels::parse([("k", "")]).is_ok(),
            "an empty value is a value"
        );
        let long_key = "k".repeat(LABEL_KEY_MAX + 1);
        let e = Labels::parse([(long_key.as_str(), "v")]).unwrap_err();
        assert_eq!(e.reason, LabelError::Key);
        assert_eq!(e.field("labels"), "labels");
        assert!(Labels::parse([("k".repeat(LABEL_KEY_MAX), "v")]).is_ok());
        for bad in ["", "Floor", "a b", "é", "a:b"] {
            assert!(Labels::parse([(bad, "v")]).is_err(), "{bad:?}");
        }
        let e = Labels::parse([("floor", "a\nb")]).unwrap_err();
        assert_eq!(e.field("labels"), "labels.floor");
        assert!(Labels::parse([("v", "é".repeat(LABEL_VALUE_MAX))]).is_ok());
        assert!(Labels::parse([("v", "é".repeat(LABEL_VALUE_MAX + 1))]).is_err());
        let many: Vec<(String, String)> = (0..=LABELS_MAX)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        let e = Labels::parse(many.clone()).unwrap_err();
        assert_eq!(e.reason, LabelError::TooMany(LABELS_MAX + 1));
        assert!(Labels::parse(many.into_iter().take(LABELS_MAX)).is_ok());
    }

    #[test]
    fn label_conditions_split_at_the_first_colon_and_all_must_hold() {
        let f = DeviceFilter::all()
            .with_label_conditions(&["url:http://x", "floor:3"])
            .unwrap();
        assert_eq!(f.labels().get("url"), Some("http://x"));
        let have = Labels::parse([("url", "http://x"), ("floor", "3"), ("x", "y")]).unwrap();
        assert!(have.contains_all(f.labels()));
        let other = Labels::parse([("url", "http://x")]).unwrap();
        assert!(!other.contains_all(f.labels()));
        for bad in ["floor", ":3", "Floor:3", "floor:a\u{7}"] {
            assert!(
                DeviceFilter::all().with_label_conditions(&[bad]).is_err(),
                "{bad}"
            );
        }
        let too_many = vec!["a:b"; LABEL_CONDITIONS_MAX + 1];
        assert_eq!(
            DeviceFilter::all().with_label_conditions(&too_many),
            Err(DeviceFilterError::TooManyLabels(LABEL_CONDITIONS_MAX + 1))
        );
        let same = DeviceFilter::all()
            .with_label_conditions(&["a:1", "a:1"])
            .unwrap();
        assert!(!same.matches_nothing());
        let clash = DeviceFilter::all()
            .with_label_conditions(&["a:1", "a:2"])
            .unwrap();
        assert!(clash.matches_nothing());
    }
}
