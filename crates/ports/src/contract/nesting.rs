//! Stories of issue 17: nested groups. A group may sit under a parent of its tenant, at most
//! eight levels deep and never under itself; reads over a group's tree count each device once;
//! a window naming a group covers its whole tree, as the tree is now.

use domain::bucket::{Aggregates, BucketGrid, BucketQuery, Fill, Interval, SeriesChoice, Zone};
use domain::group::{PlacementError, GROUP_LEVELS_MAX};
use domain::{
    AlertState, GroupChanges, ListQuery, NewDeviceGroup, ReadingQuery, Timestamp, WindowSlug,
};
use futures_util::StreamExt as _;
use time::Duration;
use uuid::Uuid;

use super::{alice, at, batch, new_device, new_group, new_window, reading, slug_key, tenant};
use crate::{
    AlertFilter, AlertQuery, AlertRepository, CreateGroupError, DeviceGroupRepository,
    DeviceRepository, GroupBucketsError, GroupKey, GroupReading, LookupError,
    MaintenanceWindowRepository, ReadingRepository, UpdateGroupError,
};

fn under(slug: &str, parent: Uuid) -> NewDeviceGroup {
    let mut g = new_group(slug, slug);
    g.parent_id = Some(parent);
    g
}

fn moved_to(parent: Option<Uuid>) -> GroupChanges {
    GroupChanges {
        parent_id: Some(parent),
        ..GroupChanges::default()
    }
}

async fn parent_of<S: DeviceGroupRepository>(
    store: &S,
    t: &domain::TenantId,
    id: Uuid,
) -> Option<Uuid> {
    store
        .get_group_row(t, &GroupKey::Id(id))
        .await
        .expect("found")
        .parent_id
}

/// The parent is echoed by every read; a parent the tenant does not have is refused with
/// nothing stored; an update without it keeps it, `None` moves to the top; deleting a parent
/// leaves its children at the top.
pub async fn nested_groups_echo_their_parent_and_deleting_it_leaves_children_at_the_top<S>(
    store: &S,
) where
    S: DeviceGroupRepository,
{
    let t = tenant("contract-nesting");
    let root = new_group("grp-root", "Root");
    store
        .create_group(&t, &alice(), root.clone())
        .await
        .expect("created");
    let child = under("grp-child", root.id);
    let created = store
        .create_group(&t, &alice(), child.clone())
        .await
        .expect("created");
    assert_eq!(created.group.parent_id, Some(root.id));
    let grandchild = under("grp-grandchild", child.id);
    store
        .create_group(&t, &alice(), grandchild.clone())
        .await
        .expect("created");
    assert_eq!(parent_of(store, &t, grandchild.id).await, Some(child.id));
    let by_slug = store
        .get_group(&t, &slug_key("grp-grandchild"))
        .await
        .expect("found");
    assert_eq!(by_slug.group.parent_id, Some(child.id));
    let listed = store
        .list_groups(&t, &ListQuery::all())
        .await
        .expect("listed");
    let parents: Vec<(String, Option<Uuid>)> = listed
        .items
        .iter()
        .map(|g| (g.group_id.as_str().to_owned(), g.parent_id))
        .collect();
    assert_eq!(
        parents,
        [
            ("grp-root".to_owned(), None),
            ("grp-child".to_owned(), Some(root.id)),
            ("grp-grandchild".to_owned(), Some(child.id)),
        ],
        "by name"
    );

    // A parent of another tenant is no parent at all.
    let other = tenant("contract-nesting-other");
    let foreign = new_group("grp-foreign", "Foreign");
    store
        .create_group(&other, &alice(), foreign.clone())
        .await
        .expect("created");
    for missing in [foreign.id, Uuid::new_v4()] {
        assert!(matches!(
            store
                .create_group(&t, &alice(), under("grp-orphan", missing))
                .await,
            Err(CreateGroupError::ParentNotFound(id)) if id == missing
        ));
        assert!(matches!(
            store
                .update_group(&t, &alice(), &GroupKey::Id(child.id), moved_to(Some(missing)))
                .await,
            Err(UpdateGroupError::ParentNotFound(id)) if id == missing
        ));
    }
    assert!(matches!(
        store.get_group_row(&t, &slug_key("grp-orphan")).await,
        Err(LookupError::NotFound)
    ));
    assert_eq!(parent_of(store, &t, child.id).await, Some(root.id), "kept");

    // Absent: unchanged; `None`: to the top; back under the root.
    let renamed = GroupChanges {
        name: Some(domain::GroupName::parse("Child renamed").expect("valid")),
        ..GroupChanges::default()
    };
    let detail = store
        .update_group(&t, &alice(), &GroupKey::Id(child.id), renamed)
        .await
        .expect("updated");
    assert_eq!(detail.group.parent_id, Some(root.id));
    let detail = store
        .update_group(&t, &alice(), &GroupKey::Id(child.id), moved_to(None))
        .await
        .expect("moved");
    assert_eq!(detail.group.parent_id, None);
    store
        .update_group(
            &t,
            &alice(),
            &slug_key("grp-child"),
            moved_to(Some(root.id)),
        )
        .await
        .expect("moved back");
    assert_eq!(parent_of(store, &t, child.id).await, Some(root.id));

    store
        .delete_group(&t, &GroupKey::Id(root.id))
        .await
        .expect("deleted");
    assert_eq!(parent_of(store, &t, child.id).await, None, "to the top");
    assert_eq!(
        parent_of(store, &t, grandchild.id).await,
        Some(child.id),
        "only the deleted group's children move"
    );
}

/// A tree is at most eight levels deep and has no cycle: a ninth level, a group under itself
/// or under one of its descendants, or a subtree moved so that its deepest group would be on
/// the ninth level, is refused, and nothing changes.
pub async fn nesting_refuses_cycles_and_a_ninth_level<S>(store: &S)
where
    S: DeviceGroupRepository,
{
    let t = tenant("contract-nesting-depth");
    // A chain of the eight levels allowed: level n is `grp-l{n}`.
    let mut chain: Vec<Uuid> = Vec::new();
    for level in 1..=GROUP_LEVELS_MAX {
        let mut g = new_group(&format!("grp-l{level}"), &format!("Level {level}"));
        g.parent_id = chain.last().copied();
        store
            .create_group(&t, &alice(), g.clone())
            .await
            .expect("within eight levels");
        chain.push(g.id);
    }
    let deepest = *chain.last().expect("eight");
    assert!(matches!(
        store
            .create_group(&t, &alice(), under("grp-l9", deepest))
            .await,
        Err(CreateGroupError::Placement(PlacementError::TooDeep))
    ));
    assert!(matches!(
        store.get_group_row(&t, &slug_key("grp-l9")).await,
        Err(LookupError::NotFound)
    ));

    let level = |n: usize| chain[n - 1];
    for parent in [level(3), level(5)] {
        assert!(
            matches!(
                store
                    .update_group(
                        &t,
                        &alice(),
                        &GroupKey::Id(level(3)),
                        moved_to(Some(parent))
                    )
                    .await,
                Err(UpdateGroupError::Placement(PlacementError::Cycle))
            ),
            "under itself or a descendant"
        );
    }
    assert_eq!(parent_of(store, &t, level(3)).await, Some(level(2)));

    // A side branch of three levels (b1 > b2 > b3) at the top.
    let b1 = new_group("grp-b1", "B1");
    store
        .create_group(&t, &alice(), b1.clone())
        .await
        .expect("created");
    let b2 = under("grp-b2", b1.id);
    store
        .create_group(&t, &alice(), b2.clone())
        .await
        .expect("created");
    store
        .create_group(&t, &alice(), under("grp-b3", b2.id))
        .await
        .expect("created");
    // Under level 6, b3 would be on level 9; under level 5, on level 8.
    assert!(matches!(
        store
            .update_group(&t, &alice(), &GroupKey::Id(b1.id), moved_to(Some(level(6))))
            .await,
        Err(UpdateGroupError::Placement(PlacementError::TooDeep))
    ));
    assert_eq!(parent_of(store, &t, b1.id).await, None, "nothing moved");
    store
        .update_group(&t, &alice(), &GroupKey::Id(b1.id), moved_to(Some(level(5))))
        .await
        .expect("the deepest stays on level 8");
    assert_eq!(parent_of(store, &t, b1.id).await, Some(level(5)));
}

/// A group's tree (detail, summary, readings, export) holds each device once, however many of
/// its groups hold it; the group's own reads are as they were.
pub async fn tree_reads_count_each_device_once<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-nesting-tree");
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d", "e", "outside"] {
        let d = new_device(name);
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
        ids.push(d.id);
    }
    let [a, b, c, d, e, outside] = ids[..] else {
        unreachable!("six devices")
    };
    let mut root = new_group("grp-tree", "Tree");
    root.members = vec![a, b];
    store
        .create_group(&t, &alice(), root.clone())
        .await
        .expect("created");
    let mut left = under("grp-left", root.id);
    left.members = vec![b, c];
    store
        .create_group(&t, &alice(), left.clone())
        .await
        .expect("created");
    let mut right = under("grp-right", root.id);
    right.members = vec![c, d];
    store
        .create_group(&t, &alice(), right.clone())
        .await
        .expect("created");
    let mut deep = under("grp-deep", left.id);
    deep.members = vec![a, e];
    store
        .create_group(&t, &alice(), deep.clone())
        .await
        .expect("created");
    let mut aside = new_group("grp-aside", "Aside");
    aside.members = vec![outside, a];
    store
        .create_group(&t, &alice(), aside)
        .await
        .expect("created");
    // One reading each, one of them (d) beyond the warning threshold.
    let now = Timestamp::now().get();
    let sent: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let value = if *id == d { 35.0 } else { 20.0 };
            reading(*id, now - Duration::seconds(60 + n as i64), value)
        })
        .collect();
    store.ingest(&t, batch(sent)).await.expect("ingested");

    let sorted = |mut v: Vec<Uuid>| {
        v.sort_unstable();
        v
    };
    let tree = store
        .get_group_tree(&t, &GroupKey::Id(root.id))
        .await
        .expect("found");
    assert_eq!(tree.group.id, root.id, "the group's own row");
    let members: Vec<Uuid> = tree.members.iter().map(|m| m.device.id).collect();
    assert_eq!(sorted(members), sorted(vec![a, b, c, d, e]), "each once");
    let summary = tree.summary(Timestamp::now());
    assert_eq!(
        (summary.normal, summary.warning, summary.critical),
        (4, 1, 0)
    );
    let own = store
        .get_group(&t, &GroupKey::Id(root.id))
        .await
        .expect("found");
    assert_eq!(own.members.len(), 2, "the group's own members, as before");
    let by_slug = store
        .get_group_tree(&t, &slug_key("grp-left"))
        .await
        .expect("found");
    let members: Vec<Uuid> = by_slug.members.iter().map(|m| m.device.id).collect();
    assert_eq!(sorted(members), sorted(vec![a, b, c, e]));

    let query = || ReadingQuery::last_hours(Timestamp::now(), 1, 100).expect("valid");
    let readings = store
        .tree_readings(&t, &GroupKey::Id(root.id), query())
        .await
        .expect("read");
    let read: Vec<Uuid> = readings.iter().map(|r| r.device_id).collect();
    assert_eq!(
        sorted(read.clone()),
        sorted(vec![a, b, c, d, e]),
        "no repeats"
    );
    assert_eq!(
        store
            .group_readings(&t, &GroupKey::Id(root.id), query())
            .await
            .expect("read")
            .len(),
        2
    );
    let streamed: Vec<GroupReading> = store
        .export_tree_readings(
            &t,
            &slug_key("grp-tree"),
            query().exporting(1_000).expect("valid"),
        )
        .await
        .expect("started")
        .map(|r| r.expect("a reading"))
        .collect()
        .await;
    assert_eq!(streamed, readings, "the export streams what a page answers");

    // Buckets: one series per device of the tree, each once; a listed device outside it is no
    // member.
    let since = Timestamp::now().get() - Duration::hours(1);
    let until = Timestamp::now().get() + Duration::minutes(1);
    let grid = BucketGrid::new(
        Interval::parse("1h").expect("interval"),
        &Zone::utc(),
        at(since),
        at(until),
    )
    .expect("few buckets");
    let buckets = BucketQuery {
        since: at(since),
        until: Some(at(until)),
        grid,
        aggregates: Aggregates::parse("avg").expect("aggregates"),
        fill: Fill::None,
    };
    let series = store
        .tree_buckets(
            &t,
            &GroupKey::Id(root.id),
            &SeriesChoice::default(),
            &buckets,
        )
        .await
        .expect("aggregated");
    let of: Vec<Uuid> = series.iter().map(|s| s.device_id).collect();
    assert_eq!(sorted(of), sorted(vec![a, b, c, d, e]));
    let own = store
        .group_buckets(
            &t,
            &GroupKey::Id(root.id),
            &SeriesChoice::default(),
            &buckets,
        )
        .await
        .expect("aggregated");
    assert_eq!(own.len(), 2);
    let listed = SeriesChoice::new(Some(vec![e, outside]), None).expect("valid");
    assert!(matches!(
        store.tree_buckets(&t, &GroupKey::Id(root.id), &listed, &buckets).await,
        Err(GroupBucketsError::NotMember(id)) if id == outside
    ));

    let unknown = GroupKey::Id(Uuid::new_v4());
    assert!(matches!(
        store.get_group_tree(&t, &unknown).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store.tree_readings(&t, &unknown, query()).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store
            .get_group_tree(
                &tenant("contract-nesting-tree-other"),
                &GroupKey::Id(root.id)
            )
            .await,
        Err(LookupError::NotFound)
    ));
}

/// A window naming a group covers the members of its descendants too (scope, coverage, group
/// details, alerts muted at ingest); when the tree changes, the scope follows.
pub async fn window_groups_cover_descendants_and_follow_the_tree<S>(store: &S)
where
    S: DeviceGroupRepository
        + DeviceRepository
        + ReadingRepository
        + MaintenanceWindowRepository
        + AlertRepository,
{
    let t = tenant("contract-nesting-windows");
    let x = new_device("x");
    let y = new_device("y");
    for device in [&x, &y] {
        store
            .create_device(&t, &alice(), device.clone())
            .await
            .expect("created");
    }
    let site = new_group("grp-site", "Site");
    store
        .create_group(&t, &alice(), site.clone())
        .await
        .expect("created");
    let mut floor = under("grp-floor", site.id);
    floor.members = vec![x.id];
    store
        .create_group(&t, &alice(), floor.clone())
        .await
        .expect("created");
    let mut room = under("grp-room", floor.id);
    room.members = vec![y.id];
    store
        .create_group(&t, &alice(), room.clone())
        .await
        .expect("created");
    let mut w = new_window("mw-site", at(time::macros::datetime!(2025-01-01 0:00 UTC)));
    w.definition.group_ids = Some(vec![site.group_id.clone()]);
    store
        .create_window(&t, &alice(), w.clone())
        .await
        .expect("created");
    let window = WindowSlug::parse("mw-site").expect("valid");

    let in_scope =
        |names: &[&str]| -> Vec<String> { names.iter().map(|n| (*n).to_owned()).collect() };
    let scope = || async {
        let (_, devices) = store.window_devices(&t, &window).await.expect("found");
        devices
            .iter()
            .map(|d| d.spec.name.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let covered = || async {
        let coverage = store
            .covering_windows(&t, &[x.id, y.id], Timestamp::now())
            .await
            .expect("read");
        [x.id, y.id].map(|id| coverage.get(&id).is_some_and(|w| w.contains(&window)))
    };
    let muted_in_room = || async {
        store
            .get_group(&t, &GroupKey::Id(room.id))
            .await
            .expect("found")
            .assess(Timestamp::now())
            .iter()
            .map(|s| s.in_maintenance)
            .collect::<Vec<_>>()
    };
    // The groups reaching a device (what a "why muted" answer judges with): its own and above.
    let mine = &t;
    let reaching = |device: Uuid| async move {
        let mut slugs: Vec<String> = store
            .groups_reaching_device(mine, device)
            .await
            .expect("found")
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect();
        slugs.sort();
        slugs
    };
    assert_eq!(scope().await, in_scope(&["x", "y"]), "two levels below");
    assert_eq!(covered().await, [true, true]);
    assert_eq!(muted_in_room().await, [true]);
    assert_eq!(
        reaching(y.id).await,
        in_scope(&["grp-floor", "grp-room", "grp-site"])
    );
    assert_eq!(reaching(x.id).await, in_scope(&["grp-floor", "grp-site"]));
    assert!(matches!(
        store.groups_reaching_device(&t, Uuid::new_v4()).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store
            .groups_reaching_device(&tenant("contract-nesting-other"), y.id)
            .await,
        Err(LookupError::NotFound)
    ));
    let preview = store
        .preview_scope(&t, &w.definition, 10)
        .await
        .expect("previewed");
    assert_eq!(preview.in_scope, 2);

    // An alert opened at ingest on a device two levels down is muted by the window.
    store
        .ingest(
            &t,
            batch(vec![reading(
                y.id,
                Timestamp::now().get() - Duration::seconds(30),
                35.0,
            )]),
        )
        .await
        .expect("ingested");
    let alerts = store
        .list_alerts(
            &t,
            &AlertQuery {
                filter: AlertFilter {
                    state: Some(AlertState::Open),
                    device_id: Some(y.id),
                    ..AlertFilter::default()
                },
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    assert_eq!(
        alerts
            .alerts
            .iter()
            .map(|a| a.record.suppressed_by.clone())
            .collect::<Vec<_>>(),
        [vec![window.clone()]]
    );

    // The room moves to the top: its device leaves the scope; back under the floor, it returns.
    store
        .update_group(&t, &alice(), &GroupKey::Id(room.id), moved_to(None))
        .await
        .expect("moved");
    assert_eq!(scope().await, in_scope(&["x"]));
    assert_eq!(covered().await, [true, false]);
    assert_eq!(muted_in_room().await, [false]);
    assert_eq!(reaching(y.id).await, in_scope(&["grp-room"]));
    store
        .update_group(
            &t,
            &alice(),
            &GroupKey::Id(room.id),
            moved_to(Some(floor.id)),
        )
        .await
        .expect("moved");
    assert_eq!(scope().await, in_scope(&["x", "y"]));
    assert_eq!(covered().await, [true, true]);

    // The floor's parent is deleted: the floor and the room are at the top of another tree.
    store
        .delete_group(&t, &GroupKey::Id(site.id))
        .await
        .expect("deleted");
    assert_eq!(scope().await, in_scope(&[]));
    assert_eq!(covered().await, [false, false]);
    assert_eq!(muted_in_room().await, [false]);
}

/// Two re-parentings that would together make a cycle (A under B, B under A), sent at once:
/// exactly one applies, the other is refused as a cycle, however they interleave.
pub async fn concurrent_reparentings_never_make_a_cycle<S>(store: &S)
where
    S: DeviceGroupRepository,
{
    let t = tenant("contract-nesting-race");
    for round in 0..10 {
        let a = new_group(&format!("grp-a{round}"), &format!("A{round}"));
        let b = new_group(&format!("grp-b{round}"), &format!("B{round}"));
        for g in [&a, &b] {
            store
                .create_group(&t, &alice(), g.clone())
                .await
                .expect("created");
        }
        let (a_under_b, b_under_a) = futures_util::future::join(
            store.update_group(&t, &alice(), &GroupKey::Id(a.id), moved_to(Some(b.id))),
            store.update_group(&t, &alice(), &GroupKey::Id(b.id), moved_to(Some(a.id))),
        )
        .await;
        let refused = |r: &Result<_, UpdateGroupError>| {
            matches!(r, Err(UpdateGroupError::Placement(PlacementError::Cycle)))
        };
        assert!(
            (a_under_b.is_ok() && refused(&b_under_a))
                || (b_under_a.is_ok() && refused(&a_under_b)),
            "round {round}: one applies, one is refused"
        );
        let parents = (
            parent_of(store, &t, a.id).await,
            parent_of(store, &t, b.id).await,
        );
        assert!(
            parents == (Some(b.id), None) || parents == (None, Some(a.id)),
            "round {round}: {parents:?}"
        );
    }
}
