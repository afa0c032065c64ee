//! The behaviour every store adapter must show, run by each adapter's own tests against a fresh
//! store. The embedded store passing this suite is what makes it a faithful stand-in for
//! PostgreSQL. Each story is a function that panics (as a test does) on a broken promise;
//! [`contract_tests!`](crate::contract_tests) declares one test per story.

use time::macros::datetime;
use uuid::Uuid;

mod alerts;
pub use alerts::*;
mod buckets;
pub use buckets::*;
mod dynamic;
pub use dynamic::*;
mod events;
pub use events::*;
mod idempotency;
pub use idempotency::*;
mod labels;
pub use labels::*;
mod nesting;
pub use nesting::*;
mod readings;
pub use readings::*;
mod webhooks;
pub use webhooks::*;

use crate::{
    CreateDeviceError, CreateGroupError, CreateWindowError, DeviceGroupRepository,
    DeviceRepository, GroupKey, HealthProbe, IngestError, LookupError, MaintenanceWindowRepository,
    MembershipError, ReadingRepository, Revision, TenantRevisions, UpdateDeviceError,
    UpdateGroupError, UpdateWindowError,
};
use domain::{
    Actor, Description, DeviceChanges, DeviceName, DeviceSpec, DeviceStatus, GroupChanges,
    GroupName, GroupSlug, ListQuery, NewDevice, NewDeviceGroup, NewMaintenanceWindow, Page,
    Reading, ReadingBatch, ReadingQuery, ReadingValue, Recurrence, RecurrenceParts, ScopeLabel,
    TenantId, Thresholds, Timestamp, Unit, WindowChanges, WindowDefinition, WindowName,
    WindowSchedule, WindowSlug,
};

/// Declares one `#[tokio::test]` per story of the suite, each on a store of its own, so that a
/// broken promise fails its story alone and hides none of the others. The calling crate needs
/// `tokio` (with `macros`) among its dependencies.
///
/// `store: EXPR` makes each story's store from `EXPR`; `store_with_guard: EXPR` from `EXPR`
/// giving `(guard, store)`, where the guard (a throwaway database, say) is dropped after the
/// store. `EXPR` is evaluated inside the async test, so it may `.await`.
///
/// ```ignore
/// ports::contract_tests!(store: store_memory::MemoryStore::new());
/// ```
#[macro_export]
macro_rules! contract_tests {
    (store: $store:expr) => {
        $crate::contract_tests!(store_with_guard: ((), $store));
    };
    (store_with_guard: $fresh:expr) => {
        $crate::contract_tests!(@each $fresh;
            a_fresh_store_is_healthy,
            groups_round_trip,
            taken_group_ids_and_names_are_refused,
            groups_are_listed_by_name,
            group_updates_apply_partially_and_keep_names_unique,
            deleted_groups_are_gone,
            tenants_never_see_each_others_groups,
            windows_round_trip,
            windows_are_listed_latest_start_first,
            window_updates_merge_and_revalidate,
            tenants_never_see_each_others_windows,
            devices_round_trip_with_unique_names,
            device_updates_recheck_the_merged_thresholds,
            groups_hold_members_with_their_latest_reading,
            member_lists_are_replaced_whole_or_not_at_all,
            ingest_is_all_or_nothing_and_resending_replaces,
            readings_are_read_newest_first_within_bounds,
            deleting_a_device_takes_its_readings_and_memberships,
            tenants_never_see_each_others_devices_or_readings,
            a_windows_scope_is_its_sites_types_and_groups,
            lists_filter_by_name_and_page,
            group_details_carry_the_windows_that_may_mute_them,
            group_rows_and_member_pages_read_what_they_answer,
            device_state_follows_the_newest_reading,
            new_thresholds_judge_the_latest_reading_again,
            stale_after_round_trips_and_feeds_freshness,
            a_threshold_alert_follows_the_status_with_its_events_in_order,
            at_most_one_alert_is_open_per_device_and_kind,
            stale_alerts_open_by_the_evaluator_and_resolve_at_the_next_reading,
            windows_mute_alerts_and_their_end_renotifies,
            acknowledgements_end_as_their_mode_says,
            alert_lists_filter_order_and_page,
            alert_lists_refuse_unknown_groups_and_devices,
            group_details_carry_member_alerts_and_state,
            covering_windows_are_the_active_ones_in_scope,
            deleting_a_device_takes_its_alerts,
            tenants_never_see_each_others_alerts,
            coverage_follows_scope_and_membership_changes,
            idempotency_keys_hold_then_answer,
            released_idempotency_keys_are_free_again,
            idempotency_keys_are_per_tenant,
            idempotency_keys_expire,
            concurrent_claims_of_a_key_hold_it_once,
            webhooks_round_trip_per_tenant_within_the_cap,
            deliveries_are_leased_retried_and_recorded,
            deliveries_are_listed_newest_first_with_bounded_attempts,
            failing_subscriptions_are_disabled_with_a_reason,
            ingest_logs_alert_and_device_state_events_in_order,
            staleness_is_logged_as_device_state,
            window_starts_and_ends_are_logged_once,
            tenants_never_see_each_others_events,
            pruned_events_are_reported_lost,
            logged_events_queue_webhook_deliveries,
            device_labels_round_trip_and_lists_filter_by_every_condition,
            scope_previews_count_list_and_name_unknown_groups,
            reading_pages_continue_after_a_position_without_repeats_or_gaps,
            exports_stream_what_a_page_answers,
            deleting_a_range_of_readings_keeps_the_latest_and_the_state_true,
            device_buckets_aggregate_the_range_on_the_zones_calendar,
            group_buckets_choose_members_with_readings,
            buckets_stay_true_after_resent_and_late_readings,
            dynamic_groups_hold_the_devices_their_filter_selects_now,
            dynamic_membership_is_not_written_by_hand_and_previews_store_nothing,
            window_scope_follows_labels_and_dynamic_membership,
            coverage_follows_dynamic_membership,
            a_tenant_keeps_a_bounded_number_of_dynamic_groups,
            sub_day_buckets_follow_the_wall_clock_through_dst,
            nested_groups_echo_their_parent_and_deleting_it_leaves_children_at_the_top,
            nesting_refuses_cycles_and_a_ninth_level,
            tree_reads_count_each_device_once,
            window_groups_cover_descendants_and_follow_the_tree,
            concurrent_reparentings_never_make_a_cycle,
        );
    };
    (@each $fresh:expr; $($story:ident,)*) => {
        $(
            #[tokio::test]
            async fn $story() {
                let (_guard, store) = $fresh;
                $crate::contract::$story(&store).await;
            }
        )*
    };
}

/// A fresh store answers its health check.
/// The group's own row and a page of its devices, as the customer API answers them, without
/// reading the whole detail.
pub async fn group_rows_and_member_pages_read_what_they_answer<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository,
{
    let t = tenant("contract-rows");
    let mut ids = Vec::new();
    for name in ["b-dev", "a-dev", "c-dev"] {
        let d = new_device(name);
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
        ids.push(d.id);
    }
    let mut g = new_group("grp-rows", "Rows");
    g.members = ids;
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    store
        .create_group(&t, &alice(), new_group("grp-empty", "Empty"))
        .await
        .expect("created");

    let row = store
        .get_group_row(&t, &slug_key("grp-rows"))
        .await
        .expect("found");
    assert_eq!((row.id, row.member_count), (g.id, 3));
    let by_id = store
        .get_group_row(&t, &GroupKey::Id(g.id))
        .await
        .expect("found");
    assert_eq!(by_id, row);

    let names = |page: &Page<domain::Device>| -> Vec<String> {
        page.items
            .iter()
            .map(|d| d.spec.name.as_str().to_owned())
            .collect()
    };
    let first_two = ListQuery::new(None, Some(2), None).expect("valid");
    let page = store
        .list_members(&t, &slug_key("grp-rows"), &first_two)
        .await
        .expect("listed");
    assert_eq!(
        (names(&page), page.total),
        (vec!["a-dev".to_owned(), "b-dev".to_owned()], 3)
    );
    let named_c = ListQuery::new(Some("C-"), None, Some(0)).expect("valid");
    let page = store
        .list_members(&t, &GroupKey::Id(g.id), &named_c)
        .await
        .expect("listed");
    assert_eq!((names(&page), page.total), (vec!["c-dev".to_owned()], 1));
    let empty = store
        .list_members(&t, &slug_key("grp-empty"), &ListQuery::default())
        .await
        .expect("an empty group is no missing one");
    assert_eq!((page_len(&empty), empty.total), (0, 0));

    for (who, key) in [
        (t.clone(), slug_key("grp-none")),
        (tenant("contract-rows-other"), slug_key("grp-rows")),
    ] {
        assert!(matches!(
            store.get_group_row(&who, &key).await,
            Err(LookupError::NotFound)
        ));
        assert!(matches!(
            store.list_members(&who, &key, &ListQuery::default()).await,
            Err(LookupError::NotFound)
        ));
    }
}

fn page_len<T>(page: &Page<T>) -> usize {
    page.items.len()
}

pub async fn a_fresh_store_is_healthy<S: HealthProbe>(store: &S) {
    store.check().await.expect("a fresh store is healthy");
}

fn alice() -> Actor {
    Actor::parse("alice").expect("valid subject")
}

fn bob() -> Actor {
    Actor::parse("bob").expect("valid subject")
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("valid tenant")
}

fn new_group(slug: &str, name: &str) -> NewDeviceGroup {
    NewDeviceGroup {
        filter: None,
        id: Uuid::new_v4(),
        group_id: GroupSlug::parse(slug).expect("valid slug"),
        name: GroupName::parse(name).expect("valid name"),
        description: None,
        members: Vec::new(),
        parent_id: None,
    }
}

fn slug_key(slug: &str) -> GroupKey {
    GroupKey::Slug(GroupSlug::parse(slug).expect("valid slug"))
}

fn new_device(name: &str) -> NewDevice {
    NewDevice {
        id: Uuid::new_v4(),
        spec: DeviceSpec {
            name: DeviceName::parse(name).expect("valid name"),
            unit: Unit::parse("°C").expect("valid unit"),
            status: DeviceStatus::Connected,
            site_id: Some(ScopeLabel::parse("site-1").expect("valid")),
            device_type: None,
            thresholds: Thresholds::new(Some(-10.0), Some(0.0), Some(30.0), Some(40.0))
                .expect("ordered"),
            stale_after: None,
            labels: domain::Labels::none(),
        },
    }
}

fn reading(device: Uuid, t: time::OffsetDateTime, value: f64) -> Reading {
    Reading {
        device_id: device,
        timestamp: at(t),
        value: ReadingValue::new(value).expect("finite"),
    }
}

fn batch(readings: Vec<Reading>) -> ReadingBatch {
    ReadingBatch::new(readings).expect("valid batch")
}

fn last_hours(hours: i64, limit: i64) -> ReadingQuery {
    ReadingQuery::last_hours(at(datetime!(2025-06-02 0:00 UTC)), hours, limit).expect("valid query")
}

fn at(t: time::OffsetDateTime) -> Timestamp {
    Timestamp::new(t).expect("valid timestamp")
}

fn new_window(slug: &str, starts_at: Timestamp) -> NewMaintenanceWindow {
    NewMaintenanceWindow {
        window_id: WindowSlug::parse(slug).expect("valid slug"),
        definition: WindowDefinition {
            labels: None,
            name: WindowName::parse("Nightly patching").expect("valid name"),
            schedule: WindowSchedule::new(starts_at, None).expect("valid schedule"),
            recurring: None,
            site_ids: None,
            device_types: None,
            group_ids: None,
            enabled: true,
        },
    }
}

pub async fn groups_round_trip<S: DeviceGroupRepository>(store: &S) {
    let t = tenant("contract-groups-round-trip");
    let mut new = new_group("grp-round", "Round trip");
    new.description = Some(Description::parse("with\nnewline ' \" ; -- é").expect("valid"));

    let detail = store
        .create_group(&t, &alice(), new.clone())
        .await
        .expect("created");
    assert!(detail.members.is_empty());
    let created = detail.group;
    assert_eq!(created.id, new.id);
    assert_eq!(created.group_id, new.group_id);
    assert_eq!(created.name, new.name);
    assert_eq!(created.description, new.description);
    assert_eq!(created.member_count, 0);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        (created.created_by.as_str(), created.updated_by.as_str()),
        ("alice", "alice")
    );

    let read = store
        .get_group(&t, &GroupKey::Slug(new.group_id.clone()))
        .await
        .expect("found");
    assert_eq!(read.group, created);
    let by_id = store
        .get_group(&t, &GroupKey::Id(new.id))
        .await
        .expect("found by id");
    assert_eq!(by_id.group, created, "both keys address the same group");
}

pub async fn taken_group_ids_and_names_are_refused<S: DeviceGroupRepository>(store: &S) {
    let t = tenant("contract-groups-taken");
    store
        .create_group(&t, &alice(), new_group("grp-a", "Alpha"))
        .await
        .expect("created");

    let same_slug = store
        .create_group(&t, &alice(), new_group("grp-a", "Other name"))
        .await;
    assert!(
        matches!(same_slug, Err(CreateGroupError::GroupIdTaken(ref s)) if s.as_str() == "grp-a"),
        "{same_slug:?}"
    );

    let same_name = store
        .create_group(&t, &alice(), new_group("grp-b", "Alpha"))
        .await;
    assert!(
        matches!(same_name, Err(CreateGroupError::NameTaken(ref n)) if n.as_str() == "Alpha"),
        "{same_name:?}"
    );

    let groups = store
        .list_groups(&t, &ListQuery::all())
        .await
        .expect("listed")
        .items;
    assert_eq!(groups.len(), 1, "a refused create stores nothing");
}

pub async fn groups_are_listed_by_name<S: DeviceGroupRepository>(store: &S) {
    let t = tenant("contract-groups-order");
    for (slug, name) in [
        ("g1", "beta"),
        ("g2", "Alpha"),
        ("g3", "alpha"),
        ("g4", "Zulu"),
    ] {
        store
            .create_group(&t, &alice(), new_group(slug, name))
            .await
            .expect("created");
    }
    let names: Vec<String> = store
        .list_groups(&t, &ListQuery::all())
        .await
        .expect("listed")
        .items
        .into_iter()
        .map(|g| g.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["Alpha", "Zulu", "alpha", "beta"]);
}

pub async fn group_updates_apply_partially_and_keep_names_unique<S: DeviceGroupRepository>(
    store: &S,
) {
    let t = tenant("contract-groups-update");
    let mut first = new_group("grp-1", "First");
    first.description = Some(Description::parse("keep me").expect("valid"));
    let created = store
        .create_group(&t, &alice(), first.clone())
        .await
        .expect("created")
        .group;
    store
        .create_group(&t, &alice(), new_group("grp-2", "Second"))
        .await
        .expect("created");
    let first_key = GroupKey::Slug(first.group_id.clone());

    let rename = GroupChanges {
        name: Some(GroupName::parse("Renamed").expect("valid")),
        ..GroupChanges::default()
    };
    let renamed = store
        .update_group(&t, &bob(), &first_key, rename)
        .await
        .expect("updated")
        .group;
    assert_eq!(
        (renamed.created_by.as_str(), renamed.updated_by.as_str()),
        ("alice", "bob"),
        "writes record who made them"
    );
    assert_eq!(renamed.name.as_str(), "Renamed");
    assert_eq!(
        renamed.description, first.description,
        "an absent field is unchanged"
    );
    assert_eq!(renamed.created_at, created.created_at);
    assert!(renamed.updated_at >= created.updated_at);

    let clear = GroupChanges {
        description: Some(None),
        ..GroupChanges::default()
    };
    let cleared = store
        .update_group(&t, &alice(), &first_key, clear)
        .await
        .expect("updated")
        .group;
    assert_eq!(cleared.description, None);
    assert_eq!(cleared.name.as_str(), "Renamed");

    let clash = GroupChanges {
        filter: None,
        name: Some(GroupName::parse("Second").expect("valid")),
        description: Some(Some(Description::parse("lost").expect("valid"))),
        members: None,
        parent_id: None,
    };
    let clash = store.update_group(&t, &alice(), &first_key, clash).await;
    assert!(
        matches!(clash, Err(UpdateGroupError::NameTaken(_))),
        "{clash:?}"
    );
    let after = store.get_group(&t, &first_key).await.expect("found").group;
    assert_eq!(
        after.name.as_str(),
        "Renamed",
        "a refused update changes nothing"
    );
    assert_eq!(after.description, None, "a refused update changes nothing");

    let missing = store
        .update_group(&t, &alice(), &slug_key("grp-none"), GroupChanges::default())
        .await;
    assert!(
        matches!(missing, Err(UpdateGroupError::NotFound)),
        "{missing:?}"
    );
}

pub async fn deleted_groups_are_gone<S: DeviceGroupRepository>(store: &S) {
    let t = tenant("contract-groups-delete");
    let g = new_group("grp-del", "Doomed");
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let key = GroupKey::Id(g.id);
    store.delete_group(&t, &key).await.expect("deleted");
    assert!(matches!(
        store.get_group(&t, &key).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store.delete_group(&t, &slug_key("grp-del")).await,
        Err(LookupError::NotFound)
    ));
    // The slug and the name are free again.
    store
        .create_group(&t, &alice(), g)
        .await
        .expect("re-created");
}

pub async fn tenants_never_see_each_others_groups<S: DeviceGroupRepository>(store: &S) {
    let (a, b) = (tenant("contract-tenant-a"), tenant("contract-tenant-b"));
    let g = new_group("grp-shared", "Shared name");
    store
        .create_group(&a, &alice(), g.clone())
        .await
        .expect("created for a");
    // The same slug and name are free in another tenant.
    store
        .create_group(&b, &alice(), new_group("grp-shared", "Shared name"))
        .await
        .expect("created for b");
    let only = new_group("grp-only-a", "Only A");
    store
        .create_group(&a, &alice(), only.clone())
        .await
        .expect("created");

    assert_eq!(
        store
            .list_groups(&b, &ListQuery::all())
            .await
            .expect("listed")
            .items
            .len(),
        1
    );
    for key in [slug_key("grp-only-a"), GroupKey::Id(only.id)] {
        assert!(matches!(
            store.get_group(&b, &key).await,
            Err(LookupError::NotFound)
        ));
        let rename = GroupChanges {
            name: Some(GroupName::parse("Stolen").expect("valid")),
            ..GroupChanges::default()
        };
        assert!(matches!(
            store.update_group(&b, &alice(), &key, rename).await,
            Err(UpdateGroupError::NotFound)
        ));
        assert!(matches!(
            store.delete_group(&b, &key).await,
            Err(LookupError::NotFound)
        ));
    }

    store
        .delete_group(&b, &GroupKey::Slug(g.group_id.clone()))
        .await
        .expect("b deletes its own");
    let still = store
        .get_group(&a, &GroupKey::Slug(g.group_id.clone()))
        .await
        .expect("a's group survives");
    assert_eq!(still.group.id, g.id);
    let untouched = store
        .get_group(&a, &GroupKey::Id(only.id))
        .await
        .expect("untouched");
    assert_eq!(untouched.group.name.as_str(), "Only A");
}

pub async fn windows_round_trip<S: MaintenanceWindowRepository>(store: &S) {
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
    w.definition.group_ids = Some(vec![GroupSlug::parse("grp-x").expect("valid")]);
    w.definition.recurring = Some(
        Recurrence::from_parts(RecurrenceParts {
            dow: Some(&[5]),
            days_of_month: Some(&[-1, 1]),
            start_hour: 22,
            start_minute: Some(30),
            end_hour: 6,
            end_minute: Some(15),
            timezone: Some("Europe/Berlin"),
        })
        .expect("valid"),
    );
    w.definition.enabled = false;

    let created = store
        .create_window(&t, &alice(), w.clone())
        .await
        .expect("created");
    assert_eq!(
        (created.created_by.as_str(), created.updated_by.as_str()),
        ("alice", "alice")
    );
    assert_eq!(created.window_id, w.window_id);
    assert_eq!(created.definition, w.definition);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        store.get_window(&t, &w.window_id).await.expect("found"),
        created
    );

    let taken = store.create_window(&t, &alice(), w.clone()).await;
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

pub async fn windows_are_listed_latest_start_first<S: MaintenanceWindowRepository>(store: &S) {
    let t = tenant("contract-windows-order");
    store
        .create_window(
            &t,
            &alice(),
            new_window("mw-b", at(datetime!(2025-01-01 0:00 UTC))),
        )
        .await
        .expect("created");
    store
        .create_window(
            &t,
            &alice(),
            new_window("mw-c", at(datetime!(2025-03-01 0:00 UTC))),
        )
        .await
        .expect("created");
    store
        .create_window(
            &t,
            &alice(),
            new_window("mw-a", at(datetime!(2025-01-01 0:00 UTC))),
        )
        .await
        .expect("created");
    let ids: Vec<String> = store
        .list_windows(&t, &ListQuery::all())
        .await
        .expect("listed")
        .items
        .into_iter()
        .map(|w| w.window_id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["mw-c", "mw-a", "mw-b"]);
}

pub async fn window_updates_merge_and_revalidate<S: MaintenanceWindowRepository>(store: &S) {
    let t = tenant("contract-windows-update");
    let mut w = new_window("mw-upd", at(datetime!(2025-01-01 0:00 UTC)));
    w.definition.site_ids = Some(ScopeLabel::parse_list(&["s1"]).expect("valid"));
    let created = store
        .create_window(&t, &alice(), w.clone())
        .await
        .expect("created");

    let end = at(datetime!(2025-01-02 0:00 UTC));
    let updated = store
        .update_window(
            &t,
            &alice(),
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
    assert_eq!(updated.updated_by.as_str(), "alice");
    assert_eq!(
        updated.definition.name, w.definition.name,
        "an absent field is unchanged"
    );
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);

    let backwards = store
        .update_window(
            &t,
            &alice(),
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
            &alice(),
            &WindowSlug::parse("mw-none").expect("valid"),
            WindowChanges::default(),
        )
        .await;
    assert!(
        matches!(missing, Err(UpdateWindowError::NotFound)),
        "{missing:?}"
    );
}

pub async fn tenants_never_see_each_others_windows<S: MaintenanceWindowRepository>(store: &S) {
    let (a, b) = (tenant("contract-windows-a"), tenant("contract-windows-b"));
    let w = new_window("mw-private", at(datetime!(2025-01-01 0:00 UTC)));
    store
        .create_window(&a, &alice(), w.clone())
        .await
        .expect("created");

    assert!(store
        .list_windows(&b, &ListQuery::all())
        .await
        .expect("listed")
        .items
        .is_empty());
    assert!(matches!(
        store.get_window(&b, &w.window_id).await,
        Err(LookupError::NotFound)
    ));
    let disable = WindowChanges {
        enabled: Some(false),
        ..WindowChanges::default()
    };
    assert!(matches!(
        store
            .update_window(&b, &alice(), &w.window_id, disable)
            .await,
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

pub async fn devices_round_trip_with_unique_names<S: DeviceRepository>(store: &S) {
    let t = tenant("contract-devices");
    let d = new_device("Sensor ' 1");
    let created = store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    assert_eq!(created.id, d.id);
    assert_eq!(created.spec, d.spec);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(store.get_device(&t, d.id).await.expect("found"), created);

    let clash = store
        .create_device(
            &t,
            &alice(),
            NewDevice {
                id: Uuid::new_v4(),
                ..new_device("Sensor ' 1")
            },
        )
        .await;
    assert!(
        matches!(clash, Err(CreateDeviceError::NameTaken(_))),
        "{clash:?}"
    );
    store
        .create_device(&t, &alice(), new_device("A first"))
        .await
        .expect("created");
    let names: Vec<String> = store
        .list_devices(&t, &domain::DeviceFilter::all(), &ListQuery::all())
        .await
        .expect("listed")
        .items
        .iter()
        .map(|d| d.spec.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["A first", "Sensor ' 1"]);

    store.delete_device(&t, d.id).await.expect("deleted");
    assert!(matches!(
        store.get_device(&t, d.id).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store.delete_device(&t, d.id).await,
        Err(LookupError::NotFound)
    ));
}

pub async fn device_updates_recheck_the_merged_thresholds<S: DeviceRepository>(store: &S) {
    let t = tenant("contract-device-updates");
    let d = new_device("T1");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    store
        .create_device(&t, &alice(), new_device("T2"))
        .await
        .expect("created");

    // warning_lower 35 above the stored warning_upper 30: refused, nothing changes.
    let out_of_order = DeviceChanges {
        thresholds: [None, Some(Some(35.0)), None, None],
        ..DeviceChanges::default()
    };
    let refused = store.update_device(&t, &alice(), d.id, out_of_order).await;
    assert!(
        matches!(refused, Err(UpdateDeviceError::Invalid(_))),
        "{refused:?}"
    );
    let rename = DeviceChanges {
        name: Some(DeviceName::parse("T2").expect("valid")),
        ..DeviceChanges::default()
    };
    assert!(matches!(
        store.update_device(&t, &alice(), d.id, rename).await,
        Err(UpdateDeviceError::NameTaken(_))
    ));
    assert_eq!(
        store.get_device(&t, d.id).await.expect("found").spec,
        d.spec,
        "refused updates change nothing"
    );

    let widen = DeviceChanges {
        status: Some(DeviceStatus::Error),
        site_id: Some(None),
        thresholds: [None, Some(Some(35.0)), Some(None), Some(None)],
        ..DeviceChanges::default()
    };
    let updated = store
        .update_device(&t, &bob(), d.id, widen)
        .await
        .expect("updated");
    assert_eq!(
        (updated.created_by.as_str(), updated.updated_by.as_str()),
        ("alice", "bob")
    );
    assert_eq!(updated.spec.status, DeviceStatus::Error);
    assert_eq!(updated.spec.site_id, None);
    assert_eq!(updated.spec.thresholds.warning_lower(), Some(35.0));
    assert_eq!(updated.spec.thresholds.critical_upper(), None);
    assert_eq!(updated.spec.name, d.spec.name);
    assert!(matches!(
        store
            .update_device(&t, &alice(), Uuid::new_v4(), DeviceChanges::default())
            .await,
        Err(UpdateDeviceError::NotFound)
    ));
}

pub async fn groups_hold_members_with_their_latest_reading<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-members");
    let (b, a) = (new_device("b-device"), new_device("a-device"));
    store
        .create_device(&t, &alice(), a.clone())
        .await
        .expect("created");
    store
        .create_device(&t, &alice(), b.clone())
        .await
        .expect("created");
    let mut g = new_group("grp-m", "Members");
    g.members = vec![b.id, a.id];
    let created = store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let names: Vec<&str> = created
        .members
        .iter()
        .map(|m| m.device.spec.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["a-device", "b-device"],
        "members are ordered by name"
    );
    assert_eq!(created.group.member_count, 2);
    assert!(created
        .members
        .iter()
        .all(|m| m.device.state.last_reading.is_none()));

    store
        .ingest(
            &t,
            batch(vec![
                reading(a.id, datetime!(2025-06-01 10:00 UTC), 1.0),
                reading(a.id, datetime!(2025-06-01 12:00 UTC), 3.0),
                reading(a.id, datetime!(2025-06-01 11:00 UTC), 2.0),
            ]),
        )
        .await
        .expect("ingested");
    // An older reading arriving later does not move the latest one back.
    store
        .ingest(
            &t,
            batch(vec![reading(a.id, datetime!(2025-06-01 09:00 UTC), 9.0)]),
        )
        .await
        .expect("ingested");
    let detail = store
        .get_group(&t, &GroupKey::Id(g.id))
        .await
        .expect("found");
    let latest_a = detail.members[0]
        .device
        .state
        .last_reading
        .expect("a has readings");
    assert_eq!(latest_a.value, 3.0);
    assert_eq!(latest_a.timestamp, at(datetime!(2025-06-01 12:00 UTC)));
    assert!(detail.members[1].device.state.last_reading.is_none());

    // Adding again changes nothing; removing a non-member is refused.
    store
        .add_member(&t, &alice(), &slug_key("grp-m"), a.id)
        .await
        .expect("idempotent");
    assert_eq!(
        store
            .get_group(&t, &slug_key("grp-m"))
            .await
            .expect("found")
            .group
            .member_count,
        2
    );
    assert!(matches!(
        store
            .add_member(&t, &alice(), &slug_key("grp-m"), Uuid::new_v4())
            .await,
        Err(MembershipError::DeviceNotFound)
    ));
    assert!(matches!(
        store
            .add_member(&t, &alice(), &slug_key("grp-none"), a.id)
            .await,
        Err(MembershipError::GroupNotFound)
    ));
    store
        .remove_member(&t, &bob(), &slug_key("grp-m"), a.id)
        .await
        .expect("removed");
    let touched = store
        .get_group(&t, &slug_key("grp-m"))
        .await
        .expect("found")
        .group;
    assert_eq!(
        (touched.created_by.as_str(), touched.updated_by.as_str()),
        ("alice", "bob"),
        "a membership change is a change of the group"
    );
    assert!(matches!(
        store
            .remove_member(&t, &alice(), &slug_key("grp-m"), a.id)
            .await,
        Err(MembershipError::NotMember)
    ));
    assert!(matches!(
        store
            .remove_member(&t, &alice(), &slug_key("grp-none"), a.id)
            .await,
        Err(MembershipError::GroupNotFound)
    ));
    let groups_of_a = store.groups_of_device(&t, a.id).await.expect("found");
    assert!(groups_of_a.is_empty());
    let groups_of_b = store.groups_of_device(&t, b.id).await.expect("found");
    assert_eq!(groups_of_b.len(), 1);
    assert_eq!(groups_of_b[0].member_count, 1);
}

pub async fn member_lists_are_replaced_whole_or_not_at_all<
    S: DeviceGroupRepository + DeviceRepository,
>(
    store: &S,
) {
    let t = tenant("contract-member-replace");
    let (d1, d2, d3) = (new_device("d1"), new_device("d2"), new_device("d3"));
    for d in [&d1, &d2, &d3] {
        store
            .create_device(&t, &alice(), d.clone())
            .await
            .expect("created");
    }
    let unknown = Uuid::new_v4();
    let mut g = new_group("grp-r", "Replace");
    g.members = vec![d1.id, unknown];
    let refused = store.create_group(&t, &alice(), g.clone()).await;
    assert!(
        matches!(refused, Err(CreateGroupError::DeviceNotFound(id)) if id == unknown),
        "{refused:?}"
    );
    assert!(
        store
            .list_groups(&t, &ListQuery::all())
            .await
            .expect("listed")
            .items
            .is_empty(),
        "a refused create stores nothing"
    );

    g.members = vec![d1.id, d2.id];
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let key = GroupKey::Id(g.id);
    let replace = GroupChanges {
        members: Some(vec![d3.id, d2.id]),
        ..GroupChanges::default()
    };
    let replaced = store
        .update_group(&t, &alice(), &key, replace)
        .await
        .expect("updated");
    let ids: Vec<Uuid> = replaced.members.iter().map(|m| m.device.id).collect();
    assert_eq!(ids, [d2.id, d3.id]);

    let bad = GroupChanges {
        name: Some(GroupName::parse("Renamed").expect("valid")),
        members: Some(vec![d1.id, unknown]),
        ..GroupChanges::default()
    };
    let refused = store.update_group(&t, &alice(), &key, bad).await;
    assert!(
        matches!(refused, Err(UpdateGroupError::DeviceNotFound(id)) if id == unknown),
        "{refused:?}"
    );
    let after = store.get_group(&t, &key).await.expect("found");
    assert_eq!(
        after.group.name.as_str(),
        "Replace",
        "a refused update changes nothing"
    );
    assert_eq!(after.members.len(), 2);

    let emptied = store
        .update_group(
            &t,
            &alice(),
            &key,
            GroupChanges {
                members: Some(vec![]),
                ..GroupChanges::default()
            },
        )
        .await
        .expect("updated");
    assert!(emptied.members.is_empty());
    assert_eq!(emptied.group.member_count, 0);
}

pub async fn ingest_is_all_or_nothing_and_resending_replaces<
    S: DeviceRepository + ReadingRepository,
>(
    store: &S,
) {
    let t = tenant("contract-ingest");
    let d = new_device("ingest");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    let unknown = Uuid::new_v4();
    let refused = store
        .ingest(
            &t,
            batch(vec![
                reading(d.id, datetime!(2025-06-01 10:00 UTC), 1.0),
                reading(unknown, datetime!(2025-06-01 10:00 UTC), 1.0),
                reading(Uuid::new_v4(), datetime!(2025-06-01 10:00 UTC), 1.0),
            ]),
        )
        .await;
    assert!(
        matches!(refused, Err(IngestError::UnknownDevice(id)) if id == unknown),
        "the first offender is named: {refused:?}"
    );
    assert!(
        store
            .device_readings(&t, d.id, last_hours(48, 100))
            .await
            .expect("read")
            .is_empty(),
        "nothing stored"
    );

    let stored = store
        .ingest(
            &t,
            batch(vec![reading(d.id, datetime!(2025-06-01 10:00 UTC), 1.0)]),
        )
        .await
        .expect("ingested");
    assert_eq!(stored, 1);
    store
        .ingest(
            &t,
            batch(vec![reading(d.id, datetime!(2025-06-01 10:00 UTC), 7.5)]),
        )
        .await
        .expect("re-sent");
    let points = store
        .device_readings(&t, d.id, last_hours(48, 100))
        .await
        .expect("read");
    assert_eq!(points.len(), 1, "re-sending replaces, never duplicates");
    assert_eq!(points[0].value, 7.5);
}

pub async fn readings_are_read_newest_first_within_bounds<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-reading-queries");
    let (x, y) = (new_device("x"), new_device("y"));
    store
        .create_device(&t, &alice(), x.clone())
        .await
        .expect("created");
    store
        .create_device(&t, &alice(), y.clone())
        .await
        .expect("created");
    store
        .ingest(
            &t,
            batch(vec![
                reading(x.id, datetime!(2025-05-30 0:00 UTC), 0.0), // older than 48 h before the query's now
                reading(x.id, datetime!(2025-06-01 1:00 UTC), 1.0),
                reading(x.id, datetime!(2025-06-01 3:00 UTC), 3.0),
                reading(y.id, datetime!(2025-06-01 2:00 UTC), 2.0),
                reading(y.id, datetime!(2025-06-01 3:00 UTC), 3.5),
            ]),
        )
        .await
        .expect("ingested");
    let xs: Vec<f64> = store
        .device_readings(&t, x.id, last_hours(48, 100))
        .await
        .expect("read")
        .iter()
        .map(|p| p.value)
        .collect();
    assert_eq!(xs, [3.0, 1.0]);
    let one: Vec<f64> = store
        .device_readings(&t, x.id, last_hours(48, 1))
        .await
        .expect("read")
        .iter()
        .map(|p| p.value)
        .collect();
    assert_eq!(one, [3.0]);
    let all: Vec<f64> = store
        .device_readings(&t, x.id, last_hours(8760, 100))
        .await
        .expect("read")
        .iter()
        .map(|p| p.value)
        .collect();
    assert_eq!(all, [3.0, 1.0, 0.0]);
    assert!(matches!(
        store
            .device_readings(&t, Uuid::new_v4(), last_hours(1, 1))
            .await,
        Err(LookupError::NotFound)
    ));

    let mut g = new_group("grp-q", "Queries");
    g.members = vec![x.id, y.id];
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    let readings = store
        .group_readings(&t, &GroupKey::Id(g.id), last_hours(48, 3))
        .await
        .expect("read");
    let got: Vec<(Uuid, f64)> = readings.iter().map(|r| (r.device_id, r.value)).collect();
    let (first, second) = if x.id < y.id {
        ((x.id, 3.0), (y.id, 3.5))
    } else {
        ((y.id, 3.5), (x.id, 3.0))
    };
    assert_eq!(
        got,
        [first, second, (y.id, 2.0)],
        "newest first, ties by device id, limit over the whole group"
    );
    assert_eq!(readings[2].device_name.as_str(), "y");
    assert_eq!(readings[2].unit.as_str(), "°C");
    assert!(matches!(
        store
            .group_readings(&t, &slug_key("grp-none"), last_hours(1, 1))
            .await,
        Err(LookupError::NotFound)
    ));
}

pub async fn deleting_a_device_takes_its_readings_and_memberships<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-device-delete");
    let d = new_device("doomed");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    store
        .ingest(
            &t,
            batch(vec![reading(d.id, datetime!(2025-06-01 10:00 UTC), 1.0)]),
        )
        .await
        .expect("ingested");
    let mut g = new_group("grp-keep", "Kept");
    g.members = vec![d.id];
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");

    store.delete_device(&t, d.id).await.expect("deleted");
    let kept = store
        .get_group(&t, &GroupKey::Id(g.id))
        .await
        .expect("the group stays");
    assert!(kept.members.is_empty());
    assert_eq!(kept.group.member_count, 0);
    assert!(matches!(
        store.device_readings(&t, d.id, last_hours(48, 10)).await,
        Err(LookupError::NotFound)
    ));
    // A device of the same id would start with no readings.
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("re-created");
    assert!(store
        .device_readings(&t, d.id, last_hours(48, 10))
        .await
        .expect("read")
        .is_empty());
}

pub async fn tenants_never_see_each_others_devices_or_readings<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + ReadingRepository,
{
    let (a, b) = (tenant("contract-devices-a"), tenant("contract-devices-b"));
    let d = new_device("private");
    store
        .create_device(&a, &alice(), d.clone())
        .await
        .expect("created");
    store
        .ingest(
            &a,
            batch(vec![reading(d.id, datetime!(2025-06-01 10:00 UTC), 1.0)]),
        )
        .await
        .expect("ingested");
    // The same name is free in another tenant.
    store
        .create_device(&b, &alice(), new_device("private"))
        .await
        .expect("created for b");

    assert!(matches!(
        store.get_device(&b, d.id).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store
            .update_device(&b, &alice(), d.id, DeviceChanges::default())
            .await,
        Err(UpdateDeviceError::NotFound)
    ));
    assert!(matches!(
        store.delete_device(&b, d.id).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store.groups_of_device(&b, d.id).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store.device_readings(&b, d.id, last_hours(48, 10)).await,
        Err(LookupError::NotFound)
    ));
    let borrowed = store
        .ingest(
            &b,
            batch(vec![reading(d.id, datetime!(2025-06-01 11:00 UTC), 2.0)]),
        )
        .await;
    assert!(
        matches!(borrowed, Err(IngestError::UnknownDevice(id)) if id == d.id),
        "{borrowed:?}"
    );

    let mut g = new_group("grp-b", "B's");
    g.members = vec![d.id];
    assert!(matches!(
        store.create_group(&b, &alice(), g.clone()).await,
        Err(CreateGroupError::DeviceNotFound(_))
    ));
    g.members = vec![];
    store
        .create_group(&b, &alice(), g.clone())
        .await
        .expect("created");
    assert!(matches!(
        store
            .add_member(&b, &alice(), &GroupKey::Id(g.id), d.id)
            .await,
        Err(MembershipError::DeviceNotFound)
    ));

    let readings = store
        .device_readings(&a, d.id, last_hours(48, 10))
        .await
        .expect("a still reads its own");
    assert_eq!(readings.len(), 1);
    assert_eq!(readings[0].value, 1.0);
}

fn scoped_device(name: &str, site: Option<&str>, kind: Option<&str>) -> NewDevice {
    let mut d = new_device(name);
    d.spec.site_id = site.map(|s| ScopeLabel::parse(s).expect("valid"));
    d.spec.device_type = kind.map(|k| ScopeLabel::parse(k).expect("valid"));
    d
}

pub async fn a_windows_scope_is_its_sites_types_and_groups<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + MaintenanceWindowRepository,
{
    let t = tenant("contract-window-scope");
    let a = scoped_device("a", Some("s1"), Some("thermo"));
    let b = scoped_device("b", Some("s1"), Some("pump"));
    let c = scoped_device("c", Some("s2"), Some("thermo"));
    let d = scoped_device("d", None, None);
    for device in [&a, &b, &c, &d] {
        store
            .create_device(&t, &alice(), device.clone())
            .await
            .expect("created");
    }
    let mut g = new_group("grp-scope", "Scope");
    g.members = vec![a.id, c.id];
    store.create_group(&t, &alice(), g).await.expect("created");

    let names = |devices: &[domain::Device]| {
        devices
            .iter()
            .map(|d| d.spec.name.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let mut w = new_window("mw-all", at(datetime!(2025-01-01 0:00 UTC)));
    store
        .create_window(&t, &alice(), w.clone())
        .await
        .expect("created");
    let (_, all) = store.window_devices(&t, &w.window_id).await.expect("found");
    assert_eq!(
        names(&all),
        ["a", "b", "c", "d"],
        "null lists cover every device"
    );

    w.window_id = WindowSlug::parse("mw-site").expect("valid");
    w.definition.site_ids = Some(ScopeLabel::parse_list(&["s1"]).expect("valid"));
    store
        .create_window(&t, &alice(), w.clone())
        .await
        .expect("created");
    assert_eq!(
        names(
            &store
                .window_devices(&t, &w.window_id)
                .await
                .expect("found")
                .1
        ),
        ["a", "b"]
    );

    w.window_id = WindowSlug::parse("mw-site-type").expect("valid");
    w.definition.device_types = Some(ScopeLabel::parse_list(&["thermo"]).expect("valid"));
    store
        .create_window(&t, &alice(), w.clone())
        .await
        .expect("created");
    assert_eq!(
        names(
            &store
                .window_devices(&t, &w.window_id)
                .await
                .expect("found")
                .1
        ),
        ["a"]
    );

    w.window_id = WindowSlug::parse("mw-group").expect("valid");
    w.definition.site_ids = None;
    w.definition.group_ids = Some(vec![GroupSlug::parse("grp-scope").expect("valid")]);
    store
        .create_window(&t, &alice(), w.clone())
        .await
        .expect("created");
    assert_eq!(
        names(
            &store
                .window_devices(&t, &w.window_id)
                .await
                .expect("found")
                .1
        ),
        ["a", "c"]
    );

    assert!(matches!(
        store
            .window_devices(&tenant("contract-window-scope-other"), &w.window_id)
            .await,
        Err(LookupError::NotFound)
    ));
}

pub async fn group_details_carry_the_windows_that_may_mute_them<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + MaintenanceWindowRepository,
{
    let t = tenant("contract-detail-windows");
    let a = scoped_device("a", Some("s1"), None);
    store
        .create_device(&t, &alice(), a.clone())
        .await
        .expect("created");
    let mut g = new_group("grp-muted", "Muted");
    g.members = vec![a.id];
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    store
        .create_group(&t, &alice(), new_group("grp-other", "Other"))
        .await
        .expect("created");

    let mut live = new_window("mw-live", at(datetime!(2025-01-01 0:00 UTC)));
    live.definition.group_ids = Some(vec![
        GroupSlug::parse("grp-muted").expect("valid"),
        GroupSlug::parse("grp-other").expect("valid"),
    ]);
    store
        .create_window(&t, &alice(), live.clone())
        .await
        .expect("created");
    let mut disabled = new_window("mw-off", at(datetime!(2025-01-01 0:00 UTC)));
    disabled.definition.enabled = false;
    store
        .create_window(&t, &alice(), disabled)
        .await
        .expect("created");
    let mut ended = new_window("mw-ended", at(datetime!(2020-01-01 0:00 UTC)));
    ended.definition.schedule = WindowSchedule::new(
        at(datetime!(2020-01-01 0:00 UTC)),
        Some(at(datetime!(2020-01-02 0:00 UTC))),
    )
    .expect("valid");
    store
        .create_window(&t, &alice(), ended)
        .await
        .expect("created");

    let detail = store
        .get_group(&t, &GroupKey::Id(g.id))
        .await
        .expect("found");
    let windows: Vec<&str> = detail
        .windows
        .iter()
        .map(|w| w.window_id.as_str())
        .collect();
    assert_eq!(
        windows,
        ["mw-live"],
        "only enabled windows that have not ended"
    );
    assert_eq!(
        detail.members[0].window_groups,
        [GroupSlug::parse("grp-muted").expect("valid")],
        "the member's groups that some window names"
    );
}

pub async fn lists_filter_by_name_and_page<S>(store: &S)
where
    S: DeviceGroupRepository + DeviceRepository + MaintenanceWindowRepository,
{
    let t = tenant("contract-lists");
    for (slug, name) in [
        ("g1", "Lobby A"),
        ("g2", "Hall"),
        ("g3", "lobby b"),
        ("g4", "LOBBY C"),
        ("g5", "Lobby D"),
        ("g6", "Café"),
    ] {
        store
            .create_group(&t, &alice(), new_group(slug, name))
            .await
            .expect("created");
    }
    let q = |name: Option<&str>, limit: Option<i64>, offset: Option<i64>| {
        ListQuery::new(name, limit, offset).expect("valid")
    };
    let names = |page: &domain::Page<domain::DeviceGroup>| {
        page.items
            .iter()
            .map(|g| g.name.as_str().to_owned())
            .collect::<Vec<_>>()
    };

    let all = store
        .list_groups(&t, &ListQuery::all())
        .await
        .expect("listed");
    assert_eq!(all.total, 6);
    let lobbies = store
        .list_groups(&t, &q(Some("lobby"), None, None))
        .await
        .expect("listed");
    assert_eq!(
        names(&lobbies),
        ["LOBBY C", "Lobby A", "Lobby D", "lobby b"],
        "ASCII case is ignored, order is by name"
    );
    let page = store
        .list_groups(&t, &q(Some("LoBbY"), Some(2), Some(1)))
        .await
        .expect("listed");
    assert_eq!(
        (names(&page), page.total),
        (vec!["Lobby A".to_owned(), "Lobby D".to_owned()], 4)
    );
    let beyond = store
        .list_groups(&t, &q(None, Some(10), Some(100)))
        .await
        .expect("listed");
    assert!(beyond.items.is_empty());
    assert_eq!(
        beyond.total, 6,
        "the total counts matches even past the last page"
    );
    let accented = store
        .list_groups(&t, &q(Some("CAFÉ"), None, None))
        .await
        .expect("listed");
    assert!(accented.items.is_empty(), "only ASCII letters fold case");
    assert_eq!(
        store
            .list_groups(&t, &q(Some("Café"), None, None))
            .await
            .expect("listed")
            .total,
        1
    );
    let sql_like = store
        .list_groups(&t, &q(Some("%"), None, None))
        .await
        .expect("listed");
    assert_eq!(
        sql_like.total, 0,
        "the filter is a plain substring, not a pattern"
    );

    for name in ["pump 2", "Pump 1", "valve"] {
        store
            .create_device(&t, &alice(), new_device(name))
            .await
            .expect("created");
    }
    let pumps = store
        .list_devices(
            &t,
            &domain::DeviceFilter::all(),
            &q(Some("PUMP"), Some(1), None),
        )
        .await
        .expect("listed");
    assert_eq!(pumps.total, 2);
    assert_eq!(pumps.items[0].spec.name.as_str(), "Pump 1");

    for (slug, day) in [("mw-1", 1), ("mw-2", 2), ("mw-3", 3)] {
        let starts = at(datetime!(2025-01-01 0:00 UTC))
            .checked_add(time::Duration::days(day))
            .expect("in range");
        store
            .create_window(&t, &alice(), new_window(slug, starts))
            .await
            .expect("created");
    }
    let windows = store
        .list_windows(&t, &q(Some("patch"), Some(2), Some(1)))
        .await
        .expect("listed");
    let ids: Vec<&str> = windows.items.iter().map(|w| w.window_id.as_str()).collect();
    assert_eq!((ids, windows.total), (vec!["mw-2", "mw-1"], 3));
}

/// The tenant's revision after `what`, which must have moved it on from `before`.
async fn moved<S: TenantRevisions>(
    store: &S,
    t: &TenantId,
    before: Revision,
    what: &str,
) -> Revision {
    let now = store.revision(t).await.expect("read");
    assert_ne!(now, before, "{what} must move the tenant's revision on");
    now
}

/// The tenant's revision, which `what` must have left as `before`.
async fn unmoved<S: TenantRevisions>(store: &S, t: &TenantId, before: Revision, what: &str) {
    let now = store.revision(t).await.expect("read");
    assert_eq!(now, before, "{what} must leave the tenant's revision alone");
}

/// What views kept between requests rely on: any committed write of the tenant gives it a new
/// revision, and a refused one or a read does not. Only for stores that keep revisions (the
/// embedded one keeps none): not in [`contract_tests!`]'s list, each such store runs it itself.
pub async fn revisions_move_with_every_committed_write_and_only_then<S>(store: &S)
where
    S: DeviceGroupRepository
        + DeviceRepository
        + ReadingRepository
        + MaintenanceWindowRepository
        + TenantRevisions,
{
    let t = tenant("contract-revisions");
    let other = tenant("contract-revisions-other");
    let mut rev = store.revision(&t).await.expect("read");

    let d = new_device("rev-a");
    store
        .create_device(&t, &alice(), d.clone())
        .await
        .expect("created");
    rev = moved(store, &t, rev, "creating a device").await;
    let renamed = DeviceChanges {
        name: Some(DeviceName::parse("rev-a2").expect("valid")),
        ..DeviceChanges::default()
    };
    store
        .update_device(&t, &alice(), d.id, renamed)
        .await
        .expect("updated");
    rev = moved(store, &t, rev, "updating a device").await;
    let mut g = new_group("grp-rev", "Revisions");
    g.members = vec![d.id];
    store
        .create_group(&t, &alice(), g.clone())
        .await
        .expect("created");
    rev = moved(store, &t, rev, "creating a group").await;

    store
        .get_group(&t, &GroupKey::Id(g.id))
        .await
        .expect("found");
    store
        .get_group(&t, &slug_key("grp-rev"))
        .await
        .expect("found");
    let all = ListQuery::default();
    store.list_groups(&t, &all).await.expect("listed");
    store
        .list_devices(&t, &domain::DeviceFilter::all(), &all)
        .await
        .expect("listed");
    store.get_device(&t, d.id).await.expect("found");
    store.groups_of_device(&t, d.id).await.expect("found");
    store
        .device_readings(&t, d.id, last_hours(24, 10))
        .await
        .expect("read");
    store
        .group_readings(&t, &GroupKey::Id(g.id), last_hours(24, 10))
        .await
        .expect("read");
    store
        .group_readings(&t, &slug_key("grp-rev"), last_hours(24, 10))
        .await
        .expect("read");
    store.list_windows(&t, &all).await.expect("listed");
    unmoved(store, &t, rev, "reading").await;

    let taken = store
        .create_group(&t, &alice(), new_group("grp-rev", "Another"))
        .await;
    assert!(
        matches!(taken, Err(CreateGroupError::GroupIdTaken(_))),
        "{taken:?}"
    );
    let missing = store
        .ingest(
            &t,
            batch(vec![reading(
                Uuid::new_v4(),
                datetime!(2025-06-01 0:00 UTC),
                1.0,
            )]),
        )
        .await;
    assert!(
        matches!(missing, Err(IngestError::UnknownDevice(_))),
        "{missing:?}"
    );
    unmoved(store, &t, rev, "a refused write").await;
    store
        .create_device(&t, &alice(), new_device("rev-elsewhere"))
        .await
        .expect("created");
    store
        .create_device(&other, &alice(), new_device("rev-elsewhere"))
        .await
        .expect("created");
    rev = moved(store, &t, rev, "creating a device").await;
    store
        .create_group(&other, &alice(), new_group("grp-rev", "Revisions"))
        .await
        .expect("created");
    unmoved(store, &t, rev, "another tenant's write").await;

    store
        .ingest(
            &t,
            batch(vec![reading(d.id, datetime!(2025-06-01 0:00 UTC), 50.0)]),
        )
        .await
        .expect("stored");
    rev = moved(store, &t, rev, "ingesting a reading").await;
    let e = new_device("rev-b");
    store
        .create_device(&t, &alice(), e.clone())
        .await
        .expect("created");
    rev = moved(store, &t, rev, "creating a device").await;
    store
        .add_member(&t, &alice(), &slug_key("grp-rev"), e.id)
        .await
        .expect("added");
    rev = moved(store, &t, rev, "adding a member").await;
    store
        .remove_member(&t, &alice(), &slug_key("grp-rev"), e.id)
        .await
        .expect("removed");
    rev = moved(store, &t, rev, "removing a member").await;
    let rename = GroupChanges {
        name: Some(GroupName::parse("Revisions 2").expect("valid")),
        ..GroupChanges::default()
    };
    store
        .update_group(&t, &alice(), &GroupKey::Id(g.id), rename)
        .await
        .expect("updated");
    rev = moved(store, &t, rev, "updating a group").await;

    let w = new_window("mw-rev", at(datetime!(2025-01-01 0:00 UTC)));
    store
        .create_window(&t, &alice(), w.clone())
        .await
        .expect("created");
    rev = moved(store, &t, rev, "creating a window").await;
    store.get_window(&t, &w.window_id).await.expect("found");
    store.window_devices(&t, &w.window_id).await.expect("found");
    unmoved(store, &t, rev, "reading a window").await;
    let disable = WindowChanges {
        enabled: Some(false),
        ..WindowChanges::default()
    };
    store
        .update_window(&t, &alice(), &w.window_id, disable)
        .await
        .expect("updated");
    rev = moved(store, &t, rev, "updating a window").await;
    store
        .delete_window(&t, &w.window_id)
        .await
        .expect("deleted");
    rev = moved(store, &t, rev, "deleting a window").await;
    store
        .delete_group(&t, &GroupKey::Id(g.id))
        .await
        .expect("deleted");
    rev = moved(store, &t, rev, "deleting a group").await;
    store.delete_device(&t, d.id).await.expect("deleted");
    moved(store, &t, rev, "deleting a device").await;
}
