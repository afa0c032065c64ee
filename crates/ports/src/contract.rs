//! The behaviour every store adapter must show, run by each adapter's own tests against a fresh
//! store. The embedded store passing this suite is what makes it a faithful stand-in for
//! PostgreSQL. Panics (as a test does) on the first broken promise.

use time::macros::datetime;
use uuid::Uuid;

use crate::{
    CreateGroupError, CreateWindowError, DeviceGroupRepository, HealthProbe, LookupError,
    MaintenanceWindowRepository, UpdateGroupError, UpdateWindowError,
};
use domain::{
    Description, GroupChanges, GroupName, GroupSlug, NewDeviceGroup, NewMaintenanceWindow,
    Recurrence, ScopeLabel, TenantId, Timestamp, WindowChanges, WindowDefinition, WindowName,
    WindowSchedule, WindowSlug,
};

/// Runs the whole suite. The store must be empty.
pub async fn run_all<S>(store: &S)
where
    S: DeviceGroupRepository + MaintenanceWindowRepository + HealthProbe,
{
    store.check().await.expect("a fresh store is healthy");
    groups_round_trip(store).await;
    taken_group_ids_and_names_are_refused(store).await;
    groups_are_listed_by_name(store).await;
    group_updates_apply_partially_and_keep_names_unique(store).await;
    deleted_groups_are_gone(store).await;
    tenants_never_see_each_others_groups(store).await;
    windows_round_trip(store).await;
    windows_are_listed_latest_start_first(store).await;
    window_updates_merge_and_revalidate(store).await;
    tenants_never_see_each_others_windows(store).await;
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("valid tenant")
}

fn new_group(slug: &str, name: &str) -> NewDeviceGroup {
    NewDeviceGroup {
        id: Uuid::new_v4(),
        group_id: GroupSlug::parse(slug).expect("valid slug"),
        name: GroupName::parse(name).expect("valid name"),
        description: None,
    }
}

fn at(t: time::OffsetDateTime) -> Timestamp {
    Timestamp::new(t).expect("valid timestamp")
}

fn new_window(slug: &str, starts_at: Timestamp) -> NewMaintenanceWindow {
    NewMaintenanceWindow {
        window_id: WindowSlug::parse(slug).expect("valid slug"),
        definition: WindowDefinition {
            name: WindowName::parse("Nightly patching").expect("valid name"),
            schedule: WindowSchedule::new(starts_at, None).expect("valid schedule"),
            recurring: None,
            site_ids: None,
            device_types: None,
            enabled: true,
        },
    }
}

async fn groups_round_trip<S: DeviceGroupRepository>(store: &S) {
    let t = tenant("contract-groups-round-trip");
    let mut new = new_group("grp-round", "Round trip");
    new.description = Some(Description::parse("with\nnewline ' \" ; -- é").expect("valid"));

    let created = store.create_group(&t, new.clone()).await.expect("created");
    assert_eq!(created.id, new.id);
    assert_eq!(created.group_id, new.group_id);
    assert_eq!(created.name, new.name);
    assert_eq!(created.description, new.description);
    assert_eq!(created.member_count, 0);
    assert_eq!(created.created_at, created.updated_at);

    let read = store.get_group(&t, &new.group_id).await.expect("found");
    assert_eq!(read, created);
}

async fn taken_group_ids_and_names_are_refused<S: DeviceGroupRepository>(store: &S) {
    let t = tenant("contract-groups-taken");
    store
        .create_group(&t, new_group("grp-a", "Alpha"))
        .await
        .expect("created");

    let same_slug = store
        .create_group(&t, new_group("grp-a", "Other name"))
        .await;
    assert!(
        matches!(same_slug, Err(CreateGroupError::GroupIdTaken(ref s)) if s.as_str() == "grp-a"),
        "{same_slug:?}"
    );

    let same_name = store.create_group(&t, new_group("grp-b", "Alpha")).await;
    assert!(
        matches!(same_name, Err(CreateGroupError::NameTaken(ref n)) if n.as_str() == "Alpha"),
        "{same_name:?}"
    );

    let groups = store.list_groups(&t).await.expect("listed");
    assert_eq!(groups.len(), 1, "a refused create stores nothing");
}

async fn groups_are_listed_by_name<S: DeviceGroupRepository>(store: &S) {
    let t = tenant("contract-groups-order");
    for (slug, name) in [
        ("g1", "beta"),
        ("g2", "Alpha"),
        ("g3", "alpha"),
        ("g4", "Zulu"),
    ] {
        store
            .create_group(&t, new_group(slug, name))
            .await
            .expect("created");
    }
    let names: Vec<String> = store
        .list_groups(&t)
        .await
        .expect("listed")
        .into_iter()
        .map(|g| g.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["Alpha", "Zulu", "alpha", "beta"]);
}

async fn group_updates_apply_partially_and_keep_names_unique<S: DeviceGroupRepository>(store: &S) {
    let t = tenant("contract-groups-update");
    let mut first = new_group("grp-1", "First");
    first.description = Some(Description::parse("keep me").expect("valid"));
    let created = store
        .create_group(&t, first.clone())
        .await
        .expect("created");
    store
        .create_group(&t, new_group("grp-2", "Second"))
        .await
        .expect("created");

    let renamed = store
        .update_group(
            &t,
            &first.group_id,
            GroupChanges {
                name: Some(GroupName::parse("Renamed").expect("valid")),
                description: None,
            },
        )
        .await
        .expect("updated");
    assert_eq!(renamed.name.as_str(), "Renamed");
    assert_eq!(
        renamed.description, first.description,
        "an absent field is unchanged"
    );
    assert_eq!(renamed.created_at, created.created_at);
    assert!(renamed.updated_at >= created.updated_at);

    let cleared = store
        .update_group(
            &t,
            &first.group_id,
            GroupChanges {
                name: None,
                description: Some(None),
            },
        )
        .await
        .expect("updated");
    assert_eq!(cleared.description, None);
    assert_eq!(cleared.name.as_str(), "Renamed");

    let clash = store
        .update_group(
            &t,
            &first.group_id,
            GroupChanges {
                name: Some(GroupName::parse("Second").expect("valid")),
                description: Some(None),
            },
        )
        .await;
    assert!(
        matches!(clash, Err(UpdateGroupError::NameTaken(_))),
        "{clash:?}"
    );
    let after = store.get_group(&t, &first.group_id).await.expect("found");
    assert_eq!(
        after.name.as_str(),
        "Renamed",
        "a refused update changes nothing"
    );

    let missing = store
        .update_group(
            &t,
            &GroupSlug::parse("grp-none").expect("valid"),
            GroupChanges::default(),
        )
        .await;
    assert!(
        matches!(missing, Err(UpdateGroupError::NotFound)),
        "{missing:?}"
    );
}

async fn deleted_groups_are_gone<S: DeviceGroupRepository>(store: &S) {
    let t = tenant("contract-groups-delete");
    let g = new_group("grp-del", "Doomed");
    store.create_group(&t, g.clone()).await.expect("created");
    store.delete_group(&t, &g.group_id).await.expect("deleted");
    assert!(matches!(
        store.get_group(&t, &g.group_id).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store.delete_group(&t, &g.group_id).await,
        Err(LookupError::NotFound)
    ));
    // The slug and the name are free again.
    store.create_group(&t, g).await.expect("re-created");
}

async fn tenants_never_see_each_others_groups<S: DeviceGroupRepository>(store: &S) {
    let (a, b) = (tenant("contract-tenant-a"), tenant("contract-tenant-b"));
    let g = new_group("grp-shared", "Shared name");
    store
        .create_group(&a, g.clone())
        .await
        .expect("created for a");
    // The same slug and name are free in another tenant.
    store
        .create_group(&b, new_group("grp-shared", "Shared name"))
        .await
        .expect("created for b");
    store
        .create_group(&a, new_group("grp-only-a", "Only A"))
        .await
        .expect("created");

    assert_eq!(store.list_groups(&b).await.expect("listed").len(), 1);
    let only_a = GroupSlug::parse("grp-only-a").expect("valid");
    assert!(matches!(
        store.get_group(&b, &only_a).await,
        Err(LookupError::NotFound)
    ));
    let rename = GroupChanges {
        name: Some(GroupName::parse("Stolen").expect("valid")),
        description: None,
    };
    assert!(matches!(
        store.update_group(&b, &only_a, rename).await,
        Err(UpdateGroupError::NotFound)
    ));
    assert!(matches!(
        store.delete_group(&b, &only_a).await,
        Err(LookupError::NotFound)
    ));

    store
        .delete_group(&b, &g.group_id)
        .await
        .expect("b deletes its own");
    let still = store
        .get_group(&a, &g.group_id)
        .await
        .expect("a's group survives");
    assert_eq!(still.id, g.id);
    assert_eq!(
        store
            .get_group(&a, &only_a)
            .await
            .expect("untouched")
            .name
            .as_str(),
        "Only A"
    );
}

async fn windows_round_trip<S: MaintenanceWindowRepository>(store: &S) {
    let t = tenant("contract-windows-round-trip");
    let mut w = new_window("mw-round", at(datetime!(2025-10-20 10:30:00.123_456 UTC)));
    w.definition.schedule = WindowSchedule::new(
        at(datetime!(2025-10-20 10:30:00.123_456 UTC)),
        Some(at(datetime!(2025-10-21 0:00 UTC))),
    )
    .expect("valid");
    w.definition.recurring = Some(Recurrence::new(Some(&[1, 3]), 2, 4).expect("valid"));
    w.definition.site_ids = Some(ScopeLabel::parse_list(&["site-1", "site ' 2"]).expect("valid"));
    w.definition.device_types = Some(Vec::new());
    w.definition.enabled = false;

    let created = store.create_window(&t, w.clone()).await.expect("created");
    assert_eq!(created.window_id, w.window_id);
    assert_eq!(created.definition, w.definition);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        store.get_window(&t, &w.window_id).await.expect("found"),
        created
    );

    let taken = store.create_window(&t, w.clone()).await;
    assert!(
        matches!(taken, Err(CreateWindowError::WindowIdTaken(_))),
        "{taken:?}"
    );

    store
        .delete_window(&t, &w.window_id)
        .await
        .expect("deleted");
    assert!(matches!(
        store.get_window(&t, &w.window_id).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store.delete_window(&t, &w.window_id).await,
        Err(LookupError::NotFound)
    ));
}

async fn windows_are_listed_latest_start_first<S: MaintenanceWindowRepository>(store: &S) {
    let t = tenant("contract-windows-order");
    store
        .create_window(&t, new_window("mw-b", at(datetime!(2025-01-01 0:00 UTC))))
        .await
        .expect("created");
    store
        .create_window(&t, new_window("mw-c", at(datetime!(2025-03-01 0:00 UTC))))
        .await
        .expect("created");
    store
        .create_window(&t, new_window("mw-a", at(datetime!(2025-01-01 0:00 UTC))))
        .await
        .expect("created");
    let ids: Vec<String> = store
        .list_windows(&t)
        .await
        .expect("listed")
        .into_iter()
        .map(|w| w.window_id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["mw-c", "mw-a", "mw-b"]);
}

async fn window_updates_merge_and_revalidate<S: MaintenanceWindowRepository>(store: &S) {
    let t = tenant("contract-windows-update");
    let mut w = new_window("mw-upd", at(datetime!(2025-01-01 0:00 UTC)));
    w.definition.site_ids = Some(ScopeLabel::parse_list(&["s1"]).expect("valid"));
    let created = store.create_window(&t, w.clone()).await.expect("created");

    let end = at(datetime!(2025-01-02 0:00 UTC));
    let updated = store
        .update_window(
            &t,
            &w.window_id,
            WindowChanges {
                ends_at: Some(Some(end)),
                site_ids: Some(None),
                ..WindowChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(updated.definition.schedule.ends_at(), Some(end));
    assert_eq!(updated.definition.site_ids, None);
    assert_eq!(
        updated.definition.name, w.definition.name,
        "an absent field is unchanged"
    );
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);

    let backwards = store
        .update_window(
            &t,
            &w.window_id,
            WindowChanges {
                starts_at: Some(at(datetime!(2025-02-01 0:00 UTC))),
                ..WindowChanges::default()
            },
        )
        .await;
    assert!(
        matches!(backwards, Err(UpdateWindowError::Invalid(_))),
        "{backwards:?}"
    );
    assert_eq!(
        store.get_window(&t, &w.window_id).await.expect("found"),
        updated,
        "a refused update changes nothing"
    );

    let missing = store
        .update_window(
            &t,
            &WindowSlug::parse("mw-none").expect("valid"),
            WindowChanges::default(),
        )
        .await;
    assert!(
        matches!(missing, Err(UpdateWindowError::NotFound)),
        "{missing:?}"
    );
}

async fn tenants_never_see_each_others_windows<S: MaintenanceWindowRepository>(store: &S) {
    let (a, b) = (tenant("contract-windows-a"), tenant("contract-windows-b"));
    let w = new_window("mw-private", at(datetime!(2025-01-01 0:00 UTC)));
    store.create_window(&a, w.clone()).await.expect("created");

    assert!(store.list_windows(&b).await.expect("listed").is_empty());
    assert!(matches!(
        store.get_window(&b, &w.window_id).await,
        Err(LookupError::NotFound)
    ));
    let disable = WindowChanges {
        enabled: Some(false),
        ..WindowChanges::default()
    };
    assert!(matches!(
        store.update_window(&b, &w.window_id, disable).await,
        Err(UpdateWindowError::NotFound)
    ));
    assert!(matches!(
        store.delete_window(&b, &w.window_id).await,
        Err(LookupError::NotFound)
    ));
    assert!(
        store
            .get_window(&a, &w.window_id)
            .await
            .expect("found")
            .definition
            .enabled
    );
}
