//! Wire shapes of the customer API's device groups and their members (seed 000),
//! `/customer/device-groups`, and their conversion to and from the domain.

use domain::{Description, DeviceGroup, GroupChanges, GroupFilter, GroupName, GroupSlug};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::devices::DeviceView;
use super::group_filter::{filter_of_create, filter_of_update, GroupFilterBody, GroupFilterView};
use super::params::{description, not_null};
use crate::error::ApiError;
use crate::json::present;

/// Body of `POST /customer/device-groups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DeviceGroupCreate)]
pub struct DeviceGroupCreateBody {
    /// The group's slug; `grp-` and 8 hex digits are generated when absent or empty.
    /// Letters, digits, `-`, `_`, `.` and `~`; at most 64 characters.
    #[schema(
        example = "grp-lobby",
        max_length = 64,
        pattern = r"^([A-Za-z0-9_~-][A-Za-z0-9._~-]*|\.[A-Za-z0-9_~-][A-Za-z0-9._~-]*|\.\.[A-Za-z0-9._~-]+)$"
    )]
    pub group_id: Option<String>,
    /// Display name, unique within the tenant; 1 to 128 characters.
    #[schema(
        example = "Lobby sensors",
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// Free text, at most 500 characters.
    #[schema(max_length = 500, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// Makes the group dynamic: its members are the devices the filter selects, now and as
    /// devices change; adding or removing members one by one is then refused (409).
    pub filter: Option<GroupFilterBody>,
    /// The slug (`group_id`) of the group to nest it under, of this tenant; trees are at most
    /// 8 levels deep. Default: none, a top-level group.
    #[schema(example = "grp-building-a", max_length = 64)]
    pub parent_id: Option<String>,
}

/// Body of `PATCH /customer/device-groups/{group_id}`. Absent fields stay as they are;
/// `description: null` clears the description; `name: null` is refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DeviceGroupUpdate)]
pub struct DeviceGroupUpdateBody {
    /// New display name, 1 to 128 characters, unique within the tenant.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: Option<Option<String>>,
    /// New description (at most 500 characters), or `null` to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\u0000]*$")]
    pub description: Option<Option<String>>,
    /// A new filter (the members become the devices it selects), or null to make the group
    /// static, keeping the members it has.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<GroupFilterBody>)]
    pub filter: Option<Option<GroupFilterBody>>,
    /// The slug of the group to move it under (with its descendants), or `null` to move it to
    /// the top. Not itself or one of its descendants; the moved subtree must stay within 8
    /// levels.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub parent_id: Option<Option<String>>,
}

/// A device group as the customer API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceGroupView {
    /// The group's UUID, its address in the Group API (`/api/groups/{id}`).
    pub id: Uuid,
    /// The group's slug, its address in the customer API.
    #[schema(example = "grp-1a2b3c4d")]
    pub group_id: String,
    /// Display name, unique within the tenant.
    pub name: String,
    /// Free text, or null.
    #[schema(required = true)]
    pub description: Option<String>,
    /// A dynamic group's filter (its members are the devices it selects), or null.
    #[schema(required = true)]
    pub filter: Option<GroupFilterView>,
    /// Number of devices in the group.
    pub member_count: u64,
    /// When the group was created (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the group last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Subject (`sub` of the token) that created it.
    pub created_by: String,
    /// Subject (`sub` of the token) that changed it last.
    pub updated_by: String,
    /// The slug of the group it is nested under, or null for a top-level group.
    #[schema(required = true)]
    pub parent_id: Option<String>,
}

/// `GET /customer/device-groups`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeviceGroupList)]
pub struct DeviceGroupListView {
    /// The tenant's groups, ordered by name.
    pub groups: Vec<DeviceGroupView>,
    /// Number of groups in `groups`.
    pub total: u64,
}

/// Answer of `DELETE /customer/device-groups/{group_id}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeviceGroupDeleted)]
pub struct DeviceGroupDeletedView {
    /// The deleted group's slug.
    pub group_id: String,
    /// Always true.
    pub deleted: bool,
}

/// `GET /customer/device-groups/{group_id}/devices`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GroupMembers)]
pub struct GroupMembersView {
    /// The group's slug.
    pub group_id: String,
    /// The group's devices, ordered by name.
    pub devices: Vec<DeviceView>,
    /// Number of devices.
    pub total: u64,
}

/// Answer of adding a device to, or removing it from, a group.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MembershipChanged)]
pub struct MembershipChangedView {
    /// The group's slug.
    pub group_id: String,
    /// The device's UUID.
    pub device_id: Uuid,
    /// Whether the device is now a member.
    pub member: bool,
}

impl DeviceGroupView {
    /// The group, its parent (if any) shown by `parent`'s slug.
    #[must_use]
    pub fn of(g: &DeviceGroup, parent: Option<&GroupSlug>) -> Self {
        Self {
            id: g.id,
            group_id: g.group_id.as_str().to_owned(),
            name: g.name.as_str().to_owned(),
            description: g.description.as_ref().map(|d| d.as_str().to_owned()),
            filter: g.filter.as_ref().map(GroupFilterView::from),
            member_count: g.member_count,
            created_at: g.created_at.get(),
            updated_at: g.updated_at.get(),
            created_by: g.created_by.as_str().to_owned(),
            updated_by: g.updated_by.as_str().to_owned(),
            parent_id: parent.map(|p| p.as_str().to_owned()),
        }
    }
}

/// The parts of a create request, checked. `group_id` is `None` when one must be generated.
pub struct CheckedGroupCreate {
    pub group_id: Option<GroupSlug>,
    pub name: GroupName,
    pub description: Option<Description>,
    pub filter: Option<GroupFilter>,
    /// The parent's slug.
    pub parent: Option<GroupSlug>,
}

/// The parts of an update request, checked: the changes but the parent, and the parent's slug
/// (`Some(None)`: to the top), which the handler resolves to the parent's id.
#[derive(Debug)]
pub struct CheckedGroupUpdate {
    pub changes: GroupChanges,
    pub parent: Option<Option<GroupSlug>>,
}

/// The customer API's form of a parent: a slug.
fn parent_slug(raw: &str) -> Result<GroupSlug, ApiError> {
    GroupSlug::parse(raw).map_err(|e| ApiError::invalid("parent_id", e))
}

impl DeviceGroupCreateBody {
    /// # Errors
    /// 422 naming the first invalid field.
    pub fn try_into_domain(self) -> Result<CheckedGroupCreate, ApiError> {
        let group_id = match self.group_id.as_deref() {
            // As in the seed (`body.group_id or generate()`), an empty id asks for a generated one.
            None | Some("") => None,
            Some(slug) => {
                Some(GroupSlug::parse(slug).map_err(|e| ApiError::invalid("group_id", e))?)
            }
        };
        Ok(CheckedGroupCreate {
            group_id,
            name: GroupName::parse(&self.name).map_err(|e| ApiError::invalid("name", e))?,
            description: description(self.description.as_deref())?,
            filter: filter_of_create(self.filter, false)?,
            parent: self.parent_id.as_deref().map(parent_slug).transpose()?,
        })
    }
}

impl DeviceGroupUpdateBody {
    /// # Errors
    /// 400 `No fields to update` for an empty body; 422 naming the first invalid field.
    pub fn try_into_domain(self) -> Result<CheckedGroupUpdate, ApiError> {
        if self.name.is_none()
            && self.description.is_none()
            && self.parent_id.is_none()
            && self.filter.is_none()
        {
            return Err(ApiError::bad_request("No fields to update"));
        }
        let parent = self
            .parent_id
            .map(|p| p.as_deref().map(parent_slug).transpose())
            .transpose()?;
        let changes = GroupChanges {
            filter: filter_of_update(self.filter, false)?,
            name: not_null("name", self.name)?
                .map(|n| GroupName::parse(&n).map_err(|e| ApiError::invalid("name", e)))
                .transpose()?,
            description: self
                .description
                .map(|d| description(d.as_deref()))
                .transpose()?,
            members: None,
            // Resolved from `parent` by the handler.
            parent_id: None,
        };
        Ok(CheckedGroupUpdate { changes, parent })
    }
}
