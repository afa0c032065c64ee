//! Wire shapes of dynamic groups (issue 17): the `filter` a group of either API family may have
//! instead of members, its preview (`POST /api/groups/preview`), and the check that a body does
//! not give both.

use std::collections::BTreeMap;

use domain::{DeviceStatus, GroupFilter, MemberConditions};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::customer_windows::scope;
use super::devices::{labels_at, DeviceView};
use crate::error::ApiError;

/// Which devices a dynamic group holds: `{"all": true}` for every device of the tenant, or any
/// of the other keys, all of which must hold (a list holds a device whose value is any of its
/// entries). An empty filter is refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GroupFilter)]
pub struct GroupFilterBody {
    /// `true`: every device of the tenant; then no other key may be given.
    pub all: Option<bool>,
    /// Sites (at most 1,000): the device's `site_id` is one of them.
    #[schema(schema_with = crate::schemas::label_list)]
    pub site_ids: Option<Vec<String>>,
    /// Device types (at most 1,000): the device's `device_type` is one of them.
    #[schema(schema_with = crate::schemas::label_list)]
    pub device_types: Option<Vec<String>>,
    /// Labels the device carries, every one (1 to 32 pairs, as device labels).
    #[schema(schema_with = crate::schemas::filter_labels)]
    pub labels: Option<serde_json::Value>,
    /// Device statuses: the device's `status` is one of them.
    #[schema(value_type = Option<Vec<super::devices::DeviceStatusDto>>)]
    pub statuses: Option<Vec<String>>,
}

/// A dynamic group's filter as stored: the keys it was given, or `all`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
#[schema(as = GroupFilterView)]
pub struct GroupFilterView {
    /// Present (`true`) when the group holds every device of the tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Sites, one of which a member's `site_id` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_ids: Option<Vec<String>>,
    /// Device types, one of which a member's `device_type` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_types: Option<Vec<String>>,
    /// Labels every member carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Statuses, one of which a member's `status` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<super::devices::DeviceStatusDto>>)]
    pub statuses: Option<Vec<String>>,
}

/// Body of `POST /api/groups/preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GroupPreviewRequest)]
pub struct GroupPreviewBody {
    /// The filter to try.
    pub filter: GroupFilterBody,
}

/// Answer of `POST /api/groups/preview`: nothing is stored.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GroupPreview)]
pub struct GroupPreviewView {
    /// How many devices the filter selects now.
    pub count: u64,
    /// The first 100 of them, by name.
    pub devices: Vec<DeviceView>,
}

impl GroupFilterBody {
    /// # Errors
    /// 422 naming the key at fault under `filter`: an empty filter, `all` with other keys or
    /// not `true`, an empty or bad list, labels over the limits, an unknown status.
    pub fn try_into_domain(self) -> Result<GroupFilter, ApiError> {
        let others = self.site_ids.is_some()
            || self.device_types.is_some()
            || self.labels.is_some()
            || self.statuses.is_some();
        match self.all {
            Some(true) if others => {
                return Err(ApiError::invalid(
                    "filter.all",
                    "must be the only key when true",
                ))
            }
            Some(true) => return Ok(GroupFilter::All),
            Some(false) => {
                return Err(ApiError::invalid(
                    "filter.all",
                    "must be true when given (leave it out to select devices by the other keys)",
                ))
            }
            None => {}
        }
        let statuses = self
            .statuses
            .map(|words| {
                words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        DeviceStatus::parse(w)
                            .map_err(|e| ApiError::invalid(&format!("filter.statuses[{i}]"), e))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let conditions = MemberConditions::new(
            scope("filter.site_ids", self.site_ids.as_deref())?,
            scope("filter.device_types", self.device_types.as_deref())?,
            self.labels
                .map(|l| labels_at("filter.labels", Some(l)))
                .transpose()?,
            statuses,
        )
        .map_err(|e| ApiError::invalid(&e.field(), e))?;
        Ok(GroupFilter::Matching(conditions))
    }
}

impl From<&GroupFilter> for GroupFilterView {
    fn from(filter: &GroupFilter) -> Self {
        let GroupFilter::Matching(c) = filter else {
            return Self {
                all: Some(true),
                site_ids: None,
                device_types: None,
                labels: None,
                statuses: None,
            };
        };
        let words =
            |values: &[domain::ScopeLabel]| values.iter().map(|v| v.as_str().to_owned()).collect();
        Self {
            all: None,
            site_ids: c.site_ids().map(words),
            device_types: c.device_types().map(words),
            labels: c.labels().map(|l| {
                l.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            }),
            statuses: c
                .statuses()
                .map(|s| s.iter().map(|s| s.as_str().to_owned()).collect()),
        }
    }
}

/// The filter of a create body, refused next to members: a dynamic group's members are the
/// devices its filter selects.
///
/// # Errors
/// 422 naming `filter` when members are given too, or the filter's own errors.
pub fn filter_of_create(
    filter: Option<GroupFilterBody>,
    members_given: bool,
) -> Result<Option<GroupFilter>, ApiError> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    if members_given {
        return Err(together());
    }
    filter.try_into_domain().map(Some)
}

/// The filter change of an update body (`Some(None)`: the group becomes static), refused next
/// to new members.
///
/// # Errors
/// 422 naming `filter` when a filter and members are both given, or the filter's own errors.
pub fn filter_of_update(
    filter: Option<Option<GroupFilterBody>>,
    members_given: bool,
) -> Result<Option<Option<GroupFilter>>, ApiError> {
    match filter {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(_)) if members_given => Err(together()),
        Some(Some(f)) => f.try_into_domain().map(|f| Some(Some(f))),
    }
}

fn together() -> ApiError {
    ApiError::invalid(
        "filter",
        "must not be given with device_ids: a dynamic group's members are the devices its filter selects",
    )
}

/// The detail of a membership write refused because the group is dynamic (409).
pub const DEFINED_BY_FILTER: &str = "Group membership is defined by its filter";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<GroupFilter, String> {
        let body: GroupFilterBody = serde_json::from_value(value).map_err(|e| e.to_string())?;
        body.try_into_domain().map_err(|e| e.detail().to_owned())
    }

    #[test]
    fn all_must_be_said_alone_and_an_empty_filter_is_refused() {
        assert_eq!(parse(json!({"all": true})), Ok(GroupFilter::All));
        assert!(parse(json!({"all": true, "site_ids": ["a"]}))
            .unwrap_err()
            .starts_with("filter.all: "));
        assert!(parse(json!({"all": false}))
            .unwrap_err()
            .starts_with("filter.all: "));
        assert!(parse(json!({})).unwrap_err().starts_with("filter: "));
        assert!(parse(json!({"site_ids": []}))
            .unwrap_err()
            .starts_with("filter.site_ids: "));
        assert!(parse(json!({"colour": "red"}))
            .unwrap_err()
            .contains("colour"));
    }

    #[test]
    fn each_key_is_checked_and_named() {
        assert!(parse(json!({"statuses": ["connected", "on"]}))
            .unwrap_err()
            .starts_with("filter.statuses[1]: "));
        assert!(parse(json!({"labels": {"Floor": "3"}}))
            .unwrap_err()
            .starts_with("filter.labels: "));
        assert!(parse(json!({"labels": {"floor": 3}}))
            .unwrap_err()
            .starts_with("filter.labels.floor: "));
        assert!(parse(json!({"site_ids": ["ok", ""]}))
            .unwrap_err()
            .starts_with("filter.site_ids[1]: "));
        let f = parse(json!({"labels": {"floor": "3"}, "statuses": ["error"]})).unwrap();
        assert_eq!(
            serde_json::to_value(GroupFilterView::from(&f)).unwrap(),
            json!({"labels": {"floor": "3"}, "statuses": ["error"]})
        );
        assert_eq!(
            serde_json::to_value(GroupFilterView::from(&GroupFilter::All)).unwrap(),
            json!({"all": true})
        );
    }
}
