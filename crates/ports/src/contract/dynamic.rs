//! Stories of issue 17's dynamic groups and label-scoped windows: a group whose members are the
//! devices its filter selects now, followed through device writes and filter changes, refused
//! membership writes, previews; windows narrowed by labels.

use domain::{
    DeviceChanges, DeviceStatus, GroupChanges, GroupFilter, Labels, ListQuery, MemberConditions,
    ScopeLabel, TenantId, Timestamp,
};
use uuid::Uuid;

use super::{alice, new_group, new_window, scoped_device, slug_key, tenant};
use crate::{
    DeviceGroupRepository, DeviceRepository, GroupKey, MaintenanceWindowRepository,
    MembershipError, UpdateGroupError,
};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::parse(pairs.iter().copied()).expect("valid labels")
}

fn by_labels(pairs: &[(&str, &str)]) -> GroupFilter {
    GroupFilter::Matching(
        MemberConditions::new(None, None, Some(labels(pairs)), None).expect("a condition"),
    )
}

async fn member_names<S: DeviceGroupRepository>(
    store: &S,
    t: &TenantId,
    key: &GroupKey,
) -> Vec<String> {
    store
        .list_members(t, key, &ListQuery::all())
        .await
        .expect("listed")
        .items
        .iter()
        .map(|d| d.spec.name.as_str().to_owned())
        .collect()
}

async fn set_labels<S: DeviceRepository>(
    store: &S,
    t: &TenantId,
    id: Uuid,
    pairs: &[(&str, &str)],
) {
    store
        .update_device(
            t,
            &alice(),
            id,
            DeviceChanges {
                labels: Some(labels(pairs)),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
}

/// A dynamic group holds the devices its filter selects at every moment: those there when it is
/// created, devices created or changed later, and again after its filter changes; its member
/// count and a device's groups agree. Without a filter it keeps the members it has.
pub async fn dynamic_groups_hold_the_devices_their_filter_selects_now<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository,
{
    let t = tenant("contract-dynamic-groups");
    let mut a = scoped_device("a", Some("s1"), Some("thermo"));
    a.spec.labels = labels(&[("floor", "3"), ("team", "ops")]);
    let mut b = scoped_device("b", Some("s2"), Some("pump"));
    b.spec.labels = labels(&[("floor", "3")]);
    let c = scoped_device("c", Some("s1"), None);
    for d in [&a, &b, &c] {
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
    }
    let mut g = new_group("grp-floor-3", "Floor 3");
    g.filter = Some(by_labels(&[("floor", "3")]));
    let created = store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    assert_eq!(created.group.filter, g.filter, "the filter is echoed");
    assert_eq!(created.group.member_count, 2);
    let key = slug_key("grp-floor-3");
    assert_eq!(member_names(store, &t, &key).await, ["a", "b"]);

    // A device created later, or changed to match, joins; one changed away leaves.
    let mut d = scoped_device("d", None, None);
    d.spec.labels = labels(&[("floor", "3")]);
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    set_labels(store, &t, c.id, &[("floor", "3")]).await;
    set_labels(store, &t, a.id, &[("floor", "4")]).await;
    assert_eq!(member_names(store, &t, &key).await, ["b", "c", "d"]);
    let row = store.get_group_row(&t, &key).await.expect("found");
    assert_eq!(row.member_count, 3, "the count follows");
    let detail = store.get_group(&t, &key).await.expect("found");
    assert_eq!(detail.members.len(), 3, "the detail reads the same members");
    let of_c = store.groups_of_device(&t, c.id).await.expect("found");
    assert_eq!(of_c.len(), 1, "a device's groups include its dynamic ones");
    assert_eq!(of_c[0].id, g.id);

    // Every condition given must hold; a status change counts as a change.
    let filter = GroupFilter::Matching(
        MemberConditions::new(
            Some(vec![ScopeLabel::parse("s1").expect("valid")]),
            None,
            None,
            Some(vec![DeviceStatus::Connected]),
        )
        .expect("conditions"),
    );
    store
        .update_group(
            &t,
            &alice(),
            &key,
            GroupChanges {
                filter: Some(Some(filter.clone())),
                ..GroupChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(member_names(store, &t, &key).await, ["a", "c"]);
    store
        .update_device(
            &t,
            &alice(),
            c.id,
            DeviceChanges {
                status: Some(DeviceStatus::Error),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(member_names(store, &t, &key).await, ["a"]);

    // `All`: every device of the tenant.
    let mut every = new_group("grp-every", "Every device");
    every.filter = Some(GroupFilter::All);
    let all = store
        .create_group(&t, &alice(), every)
        .await
        .expect("created");
    assert_eq!(all.group.member_count, 4);
    assert_eq!(all.group.filter, Some(GroupFilter::All));

    // Without its filter the group is static: it keeps its members and no longer follows.
    let made_static = store
        .update_group(
            &t,
            &alice(),
            &key,
            GroupChanges {
                filter: Some(None),
                ..GroupChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(made_static.group.filter, None);
    set_labels(store, &t, a.id, &[]).await;
    store
        .update_device(
            &t,
            &alice(),
            a.id,
            DeviceChanges {
                site_id: Some(None),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(member_names(store, &t, &key).await, ["a"], "kept as it was");
    store
        .add_member(&t, &alice(), &key, b.id)
        .await
        .expect("a static group takes members again");
}

/// A dynamic group's members are its filter's to decide: adding, removing or replacing them is
/// refused and changes nothing. A preview counts and lists what a filter selects, storing
/// nothing.
pub async fn dynamic_membership_is_not_written_by_hand_and_previews_store_nothing<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository,
{
    let t = tenant("contract-dynamic-refusals");
    let mut names = Vec::new();
    for i in 0..5 {
        let mut d = scoped_device(&format!("dev-{i}"), None, None);
        if i % 2 == 0 {
            d.spec.labels = labels(&[("zone", "north")]);
        }
        names.push(d.spec.name.as_str().to_owned());
        store.create_device(&t, &alice(), d).await.expect("created");
    }
    let outsider = store
        .list_devices(&t, &domain::DeviceFilter::all(), &ListQuery::all())
        .await
        .expect("listed")
        .items
        .into_iter()
        .find(|d| d.spec.labels.is_empty())
        .expect("an unlabelled device");
    let mut g = new_group("grp-north", "North");
    g.filter = Some(by_labels(&[("zone", "north")]));
    store.create_group(&t, &alice(), g).await.expect("created");
    let key = slug_key("grp-north");
    let before = member_names(store, &t, &key).await;
    assert_eq!(before, ["dev-0", "dev-2", "dev-4"]);

    assert!(matches!(
        store.add_member(&t, &alice(), &key, outsider.id).await,
        Err(MembershipError::DefinedByFilter)
    ));
    let member = store
        .list_members(&t, &key, &ListQuery::all())
        .await
        .expect("listed")
        .items[0]
        .id;
    assert!(matches!(
        store.remove_member(&t, &alice(), &key, member).await,
        Err(MembershipError::DefinedByFilter)
    ));
    let replace = GroupChanges {
        members: Some(vec![outsider.id]),
        ..GroupChanges::default()
    };
    assert!(matches!(
        store.update_group(&t, &alice(), &key, replace).await,
        Err(UpdateGroupError::DefinedByFilter)
    ));
    assert_eq!(
        member_names(store, &t, &key).await,
        before,
        "nothing changed"
    );

    let preview = store
        .preview_filter(&t, &by_labels(&[("zone", "north")]), 2)
        .await
        .expect("previewed");
    assert_eq!(preview.count, 3);
    let shown: Vec<&str> = preview
        .devices
        .iter()
        .map(|d| d.spec.name.as_str())
        .collect();
    assert_eq!(
        shown,
        ["dev-0", "dev-2"],
        "the first by name, as many as asked"
    );
    let everything = store
        .preview_filter(&t, &GroupFilter::All, 100)
        .await
        .expect("previewed");
    assert_eq!(everything.count, 5);
    let other = store
        .preview_filter(&tenant("contract-dynamic-other"), &GroupFilter::All, 100)
        .await
        .expect("previewed");
    assert_eq!(
        other.count, 0,
        "another tenant's devices are never selected"
    );
    assert_eq!(
        store
            .list_groups(&t, &ListQuery::all())
            .await
            .expect("listed")
            .total,
        1,
        "a preview stores nothing"
    );
}

/// A window with labels covers only devices carrying all of them, and its scope follows the
/// devices' labels as they change; a window naming a dynamic group covers its members of the
/// moment.
pub async fn window_scope_follows_labels_and_dynamic_membership<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository + MaintenanceWindowRepository,
{
    let t = tenant("contract-window-labels");
    let mut a = scoped_device("a", Some("s1"), None);
    a.spec.labels = labels(&[("rack", "r1"), ("zone", "north")]);
    let mut b = scoped_device("b", Some("s1"), None);
    b.spec.labels = labels(&[("rack", "r1")]);
    for d in [&a, &b] {
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
    }
    let since = Timestamp::new(time::macros::datetime!(2025-01-01 0:00 UTC)).expect("valid");
    let mut by_label = new_window("mw-north", since);
    by_label.definition.labels = Some(labels(&[("zone", "north")]));
    let stored = store
        .create_window(&t, &alice(), by_label.clone())
        .await
        .expect("created");
    assert_eq!(stored.definition.labels, by_label.definition.labels);
    let mine = &t;
    let scope = |slug: &'static str| async move {
        let (_, devices) = store
            .window_devices(mine, &domain::WindowSlug::parse(slug).expect("valid"))
            .await
            .expect("found");
        devices
            .iter()
            .map(|d| d.spec.name.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(scope("mw-north").await, ["a"]);
    let now = Timestamp::now();
    let covering = store
        .covering_windows(&t, &[a.id, b.id], now)
        .await
        .expect("judged");
    assert_eq!(covering.get(&a.id).map(Vec::len), Some(1));
    assert!(covering.get(&b.id).is_none_or(Vec::is_empty));
    let preview = store
        .preview_scope(&t, &by_label.definition, 100)
        .await
        .expect("previewed");
    assert_eq!(preview.in_scope, 1);

    set_labels(store, &t, b.id, &[("zone", "north")]).await;
    assert_eq!(scope("mw-north").await, ["a", "b"], "b moved into scope");

    let mut g = new_group("grp-rack-1", "Rack 1");
    g.filter = Some(by_labels(&[("rack", "r1")]));
    store.create_group(&t, &alice(), g).await.expect("created");
    let mut by_group = new_window("mw-rack", since);
    by_group.definition.group_ids =
        Some(vec![domain::GroupSlug::parse("grp-rack-1").expect("valid")]);
    store
        .create_window(&t, &alice(), by_group)
        .await
        .expect("created");
    // b lost rack r1 when its labels were replaced whole.
    assert_eq!(scope("mw-rack").await, ["a"]);
    set_labels(store, &t, b.id, &[("rack", "r1")]).await;
    assert_eq!(
        scope("mw-rack").await,
        ["a", "b"],
        "b joined the group the window names"
    );
    let covering = store
        .covering_windows(&t, &[b.id], Timestamp::now())
        .await
        .expect("judged");
    assert_eq!(
        covering
            .get(&b.id)
            .map(|w| w.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>()),
        Some(vec!["mw-rack".to_owned()]),
        "covered through the group, no longer by label"
    );
}

/// A tenant keeps at most [`domain::membership::DYNAMIC_GROUPS_MAX`] dynamic groups: one more,
/// created or made dynamic, is refused and stores nothing; static groups and new filters for a
/// group that is dynamic already are not counted against it.
pub async fn a_tenant_keeps_a_bounded_number_of_dynamic_groups<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository,
{
    let t = tenant("contract-dynamic-cap");
    let max = domain::membership::DYNAMIC_GROUPS_MAX;
    for i in 0..max {
        let mut g = new_group(&format!("grp-d{i}"), &format!("Dynamic {i}"));
        g.filter = Some(GroupFilter::All);
        store.create_group(&t, &alice(), g).await.expect("created");
    }
    let mut one_more = new_group("grp-over", "Over");
    one_more.filter = Some(GroupFilter::All);
    assert!(matches!(
        store.create_group(&t, &alice(), one_more).await,
        Err(crate::CreateGroupError::TooManyDynamic)
    ));
    store
        .create_group(&t, &alice(), new_group("grp-static", "Static"))
        .await
        .expect("a static group is not counted");
    let to_dynamic = GroupChanges {
        filter: Some(Some(GroupFilter::All)),
        ..GroupChanges::default()
    };
    assert!(matches!(
        store
            .update_group(&t, &alice(), &slug_key("grp-static"), to_dynamic)
            .await,
        Err(UpdateGroupError::TooManyDynamic)
    ));
    let refilter = GroupChanges {
        filter: Some(Some(by_labels(&[("zone", "x")]))),
        ..GroupChanges::default()
    };
    store
        .update_group(&t, &alice(), &slug_key("grp-d0"), refilter)
        .await
        .expect("a dynamic group may change its filter");
    let listed = store
        .list_groups(&t, &ListQuery::all())
        .await
        .expect("listed");
    assert_eq!(
        listed.total,
        max as u64 + 1,
        "the refused group was not stored"
    );
    let row = store
        .get_group_row(&t, &slug_key("grp-static"))
        .await
        .expect("found");
    assert_eq!(row.filter, None, "still static");
}
