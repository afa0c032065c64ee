//! Groups: creating one under a slug the client chose or one generated for it.

use domain::{Actor, Description, GroupFilter, GroupName, GroupSlug, NewDeviceGroup, TenantId};
use ports::{CreateGroupError, DeviceGroupRepository, GroupDetail};
use uuid::Uuid;

use crate::with_generated_slug;

/// A group to create, as either API family asks for it.
#[derive(Debug, Clone)]
pub struct CreateGroup {
    /// The slug the client chose; none: `grp-` and 8 random hex digits.
    pub group_id: Option<GroupSlug>,
    pub name: GroupName,
    pub description: Option<Description>,
    /// `Some`: a dynamic group (and `members` is empty).
    pub filter: Option<GroupFilter>,
    pub members: Vec<Uuid>,
    /// The group to nest it under (its UUID), if any.
    pub parent_id: Option<Uuid>,
}

/// Creates the group. A generated slug that collides with a stored one is drawn again (a slug
/// the client chose is not).
///
/// # Errors
/// The store's [`CreateGroupError`]; `GroupIdTaken` for a chosen slug that is taken, or when
/// every generated one collided.
pub async fn create(
    groups: &dyn DeviceGroupRepository,
    tenant: &TenantId,
    actor: &Actor,
    group: CreateGroup,
) -> Result<GroupDetail, CreateGroupError> {
    let new = |group_id| NewDeviceGroup {
        id: Uuid::new_v4(),
        group_id,
        name: group.name.clone(),
        description: group.description.clone(),
        filter: group.filter.clone(),
        members: group.members.clone(),
        parent_id: group.parent_id,
    };
    match &group.group_id {
        Some(chosen) => {
            groups
                .create_group(tenant, actor, new(chosen.clone()))
                .await
        }
        None => {
            with_generated_slug(
                GroupSlug::generate,
                |e| matches!(e, CreateGroupError::GroupIdTaken(_)),
                |slug| groups.create_group(tenant, actor, new(slug)),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use ports::MockDeviceGroupRepository;

    use super::*;

    fn wanted(group_id: Option<&str>) -> CreateGroup {
        CreateGroup {
            filter: None,
            group_id: group_id.map(|g| GroupSlug::parse(g).expect("valid")),
            name: GroupName::parse("Lobby").expect("valid"),
            description: None,
            members: Vec::new(),
            parent_id: None,
        }
    }

    fn tenant() -> TenantId {
        TenantId::parse("acme").expect("valid")
    }

    fn actor() -> Actor {
        Actor::parse("alice").expect("valid")
    }

    #[tokio::test]
    async fn a_generated_slug_that_collides_is_drawn_again_up_to_three_times() {
        let mut groups = MockDeviceGroupRepository::new();
        groups
            .expect_create_group()
            .times(3)
            .returning(|_, _, new| Err(CreateGroupError::GroupIdTaken(new.group_id)));
        let answer = create(&groups, &tenant(), &actor(), wanted(None)).await;
        assert!(matches!(answer, Err(CreateGroupError::GroupIdTaken(_))));
    }

    #[tokio::test]
    async fn a_chosen_slug_that_is_taken_is_not_retried() {
        let mut groups = MockDeviceGroupRepository::new();
        groups
            .expect_create_group()
            .times(1)
            .returning(|_, _, new| Err(CreateGroupError::GroupIdTaken(new.group_id)));
        let answer = create(&groups, &tenant(), &actor(), wanted(Some("grp-lobby"))).await;
        assert!(matches!(answer, Err(CreateGroupError::GroupIdTaken(_))));
    }

    #[tokio::test]
    async fn a_name_taken_is_not_retried_and_generated_slugs_look_like_grp_hex() {
        let mut groups = MockDeviceGroupRepository::new();
        groups
            .expect_create_group()
            .withf(|_, _, new| {
                let slug = new.group_id.as_str();
                slug.len() == 12 && slug.starts_with("grp-")
            })
            .times(1)
            .returning(|_, _, new| Err(CreateGroupError::NameTaken(new.name)));
        let answer = create(&groups, &tenant(), &actor(), wanted(None)).await;
        assert!(matches!(answer, Err(CreateGroupError::NameTaken(_))));
    }
}
