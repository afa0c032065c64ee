//! Device groups: one group, two addresses (a UUID `id` and a tenant-unique slug `group_id`).

use thiserror::Error;
use uuid::Uuid;

use crate::membership::GroupFilter;
use crate::text::{self, TextError};
use crate::{Actor, Timestamp};

/// Longest group name the customer API accepts (seed 000: `max_length=128`).
pub const GROUP_NAME_MAX: usize = 128;
/// Longest group description (seed 002: "Max 500 chars"); both APIs share it.
pub const GROUP_DESCRIPTION_MAX: usize = 500;
/// Longest slug (`group_id`, `window_id`) a client may choose.
pub const SLUG_MAX: usize = 64;

/// A group's display name, unique within its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupName(String);

impl GroupName {
    /// # Errors
    /// [`TextError`] when blank, over [`GROUP_NAME_MAX`] characters, or holding control characters.
    pub fn parse(value: &str) -> Result<Self, TextError> {
        text::label(value, GROUP_NAME_MAX).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

/// Free-text description of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// # Errors
    /// [`TextError`] when over [`GROUP_DESCRIPTION_MAX`] characters or holding NUL.
    pub fn parse(value: &str) -> Result<Self, TextError> {
        text::free_text(value, GROUP_DESCRIPTION_MAX).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SlugError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {SLUG_MAX} characters long")]
    TooLong,
    #[error("may only contain letters, digits, '-', '_', '.' and '~'")]
    InvalidCharacter,
}

/// Checks a client-chosen slug: it must be usable as a URL path segment as it is.
fn slug(value: &str) -> Result<String, SlugError> {
    if value.is_empty() {
        return Err(SlugError::Empty);
    }
    if value.chars().count() > SLUG_MAX {
        return Err(SlugError::TooLong);
    }
    let unreserved = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~');
    // "." and ".." would be folded away by URL normalisation and so can't be addressed.
    if !value.chars().all(unreserved) || value == "." || value == ".." {
        return Err(SlugError::InvalidCharacter);
    }
    Ok(value.to_owned())
}

/// The customer API's address of a group (`grp-` + 8 hex digits when the client gives none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupSlug(String);

impl GroupSlug {
    /// # Errors
    /// [`SlugError`] when empty, over [`SLUG_MAX`] characters, or not URL-safe.
    pub fn parse(value: &str) -> Result<Self, SlugError> {
        slug(value).map(Self)
    }

    /// A fresh slug from 32 random bits, as the seed does (`grp-{uuid4.hex[:8]}`).
    #[must_use]
    pub fn generate(random: u32) -> Self {
        Self(format!("grp-{random:08x}"))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group about to be stored. Both ids are chosen before it is saved.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeviceGroup {
    pub id: Uuid,
    pub group_id: GroupSlug,
    pub name: GroupName,
    pub description: Option<Description>,
    /// `Some`: a dynamic group, whose members are the devices the filter selects (and
    /// `members` is empty).
    pub filter: Option<GroupFilter>,

    /// Devices to add at once, without repeats.
    pub members: Vec<Uuid>,
    /// The group it nests under (the parent's UUID), or none for a top-level group.
    pub parent_id: Option<Uuid>,
}

/// A stored group, as every read returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceGroup {
    pub id: Uuid,
    pub group_id: GroupSlug,
    pub name: GroupName,
    pub description: Option<Description>,
    /// `Some`: a dynamic group; its members are the devices this selects now.
    pub filter: Option<GroupFilter>,

    /// How many devices belong to the group.
    pub member_count: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: Actor,
    pub updated_by: Actor,
    /// The group it nests under, or none at the top (also once its parent is deleted).
    pub parent_id: Option<Uuid>,
}

/// A partial update. `None` leaves a field as it is; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupChanges {
    pub name: Option<GroupName>,
    pub description: Option<Option<Description>>,
    /// A new filter (the group becomes, or stays, dynamic and its members are selected again),
    /// or `Some(None)`: the group becomes static, keeping the members it has.
    pub filter: Option<Option<GroupFilter>>,

    /// A new member list, replacing the old one; without repeats.
    pub members: Option<Vec<Uuid>>,
    /// A new parent; `Some(None)` moves the group to the top.
    pub parent_id: Option<Option<Uuid>>,
}

impl GroupChanges {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.filter.is_none()
            && self.members.is_none()
            && self.parent_id.is_none()
    }
}

/// Most levels a tree of groups may have: a root and seven generations below it.
pub const GROUP_LEVELS_MAX: u32 = 8;

/// Why a group cannot go under the parent asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PlacementError {
    #[error("a group cannot be nested under itself or one of its descendants")]
    Cycle,
    #[error("groups nest at most {GROUP_LEVELS_MAX} levels deep (a root and seven generations)")]
    TooDeep,
}

/// Where a group (with the subtree below it) would go: what a store reads of the tree to judge
/// a placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The parent's level: 1 for a top-level parent, 2 for its child, and so on.
    pub parent_level: u32,
    /// Levels of the subtree that moves: 1 for a group without children (a new group).
    pub subtree_levels: u32,
    /// Whether the parent is the moving group itself or one of its descendants.
    pub parent_in_subtree: bool,
}

impl Placement {
    /// # Errors
    /// [`PlacementError::Cycle`] when the parent is in the subtree that moves;
    /// [`PlacementError::TooDeep`] when its deepest group would be below level
    /// [`GROUP_LEVELS_MAX`].
    pub fn check(self) -> Result<(), PlacementError> {
        if self.parent_in_subtree {
            return Err(PlacementError::Cycle);
        }
        if self.parent_level.saturating_add(self.subtree_levels) > GROUP_LEVELS_MAX {
            return Err(PlacementError::TooDeep);
        }
        Ok(())
    }
}

/// `ids` without repeats, in the order of their first appearance.
#[must_use]
pub fn without_repeats(ids: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_name_is_one_to_128_characters() {
        assert!(GroupName::parse("Building A").is_ok());
        assert!(GroupName::parse(&"n".repeat(GROUP_NAME_MAX)).is_ok());
        assert_eq!(
            GroupName::parse(&"n".repeat(GROUP_NAME_MAX + 1)),
            Err(TextError::TooLong {
                max: GROUP_NAME_MAX,
                actual: GROUP_NAME_MAX + 1
            })
        );
        assert_eq!(GroupName::parse(""), Err(TextError::Empty));
    }

    #[test]
    fn a_description_is_at_most_500_characters_and_may_be_empty() {
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"d".repeat(GROUP_DESCRIPTION_MAX)).is_ok());
        assert!(Description::parse(&"d".repeat(GROUP_DESCRIPTION_MAX + 1)).is_err());
        assert_eq!(Description::parse("a\0"), Err(TextError::Nul));
    }

    #[test]
    fn a_generated_slug_is_grp_and_eight_hex_digits() {
        assert_eq!(GroupSlug::generate(0xab).as_str(), "grp-000000ab");
        assert_eq!(GroupSlug::generate(u32::MAX).as_str(), "grp-ffffffff");
    }

    #[test]
    fn a_chosen_slug_must_be_a_usable_path_segment() {
        assert!(GroupSlug::parse("grp-lobby_2.b~").is_ok());
        assert_eq!(GroupSlug::parse(""), Err(SlugError::Empty));
        assert_eq!(GroupSlug::parse("a/b"), Err(SlugError::InvalidCharacter));
        assert_eq!(GroupSlug::parse("a b"), Err(SlugError::InvalidCharacter));
        assert_eq!(GroupSlug::parse(".."), Err(SlugError::InvalidCharacter));
        assert_eq!(
            GroupSlug::parse(&"s".repeat(SLUG_MAX + 1)),
            Err(SlugError::TooLong)
        );
    }

    #[test]
    fn a_placement_keeps_the_tree_acyclic_and_at_most_eight_levels_deep() {
        let at = |parent_level, subtree_levels, parent_in_subtree| {
            Placement {
                parent_level,
                subtree_levels,
                parent_in_subtree,
            }
            .check()
        };
        // A new group under a level-7 parent is the eighth level; under a level-8 one, the ninth.
        assert_eq!(at(7, 1, false), Ok(()));
        assert_eq!(at(8, 1, false), Err(PlacementError::TooDeep));
        // A subtree of three levels moved under a level-5 parent ends at level 8.
        assert_eq!(at(5, 3, false), Ok(()));
        assert_eq!(at(6, 3, false), Err(PlacementError::TooDeep));
        assert_eq!(at(1, 1, true), Err(PlacementError::Cycle));
    }

    #[test]
    fn changes_without_any_field_are_empty() {
        assert!(GroupChanges::default().is_empty());
        let clear = GroupChanges {
            description: Some(None),
            ..GroupChanges::default()
        };
        assert!(!clear.is_empty());
    }
}
