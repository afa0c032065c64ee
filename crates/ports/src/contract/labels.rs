//! Stories of issue 17: device labels and the device-list filter; a window's scope seen before
//! it is saved.

use domain::{
    DeviceChanges, DeviceFilter, DeviceStatus, GroupSlug, Labels, ListQuery, ScopeLabel, Timestamp,
};

use super::{alice, at, batch, new_group, new_window, reading, scoped_device, tenant};
use crate::{
    DeviceGroupRepository, DeviceRepository, MaintenanceWindowRepository, ReadingRepository,
};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::parse(pairs.iter().copied()).expect("valid labels")
}

fn with_labels(conditions: &[&str]) -> DeviceFilter {
    DeviceFilter::all()
        .with_label_conditions(conditions)
        .expect("valid conditions")
}

async fn names<S: DeviceRepository>(
    store: &S,
    t: &domain::TenantId,
    filter: &DeviceFilter,
) -> Vec<String> {
    store
        .list_devices(t, filter, &ListQuery::all())
        .await
        .expect("listed")
        .items
        .iter()
        .map(|d| d.spec.name.as_str().to_owned())
        .collect()
}

/// Labels are stored with the device, replaced whole by an update that gives them and kept by
/// one that does not; lists filter by every condition given, together.
pub async fn device_labels_round_trip_and_lists_filter_by_every_condition<S>(store: &S)
where
    S: DeviceRepository + ReadingRepository,
{
    let t = tenant("contract-labels");
    let mut a = scoped_device("a", Some("s1"), Some("thermo"));
    a.spec.labels = labels(&[("floor", "3"), ("team/owner", "ops")]);
    let mut b = scoped_device("b", Some("s1"), Some("pump"));
    b.spec.labels = labels(&[("floor", "3")]);
    b.spec.status = DeviceStatus::Error;
    let c = scoped_device("c", Some("s2"), Some("thermo"));
    let mut d = scoped_device("d", None, None);
    d.spec.labels = labels(&[("floor", "4"), ("team/owner", "ops")]);
    for device in [&a, &b, &c, &d] {
        let created = store
            .create_device(&t, &alice(), device.clone())
            .await
            .expect("created");
        assert_eq!(created.spec.labels, device.spec.labels);
    }
    let read = store.get_device(&t, a.id).await.expect("found");
    assert_eq!(read.spec.labels.get("team/owner"), Some("ops"));
    assert!(store
        .get_device(&t, c.id)
        .await
        .expect("found")
        .spec
        .labels
        .is_empty());

    // Absent: unchanged. Given: replaced whole.
    let renamed = store
        .update_device(
            &t,
            &alice(),
            b.id,
            DeviceChanges {
                status: Some(DeviceStatus::Error),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(renamed.spec.labels, b.spec.labels);
    let relabelled = store
        .update_device(
            &t,
            &alice(),
            d.id,
            DeviceChanges {
                labels: Some(labels(&[("floor", "4")])),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(relabelled.spec.labels, labels(&[("floor", "4")]));
    assert_eq!(
        store.get_device(&t, d.id).await.expect("found").spec.labels,
        labels(&[("floor", "4")])
    );

    assert_eq!(
        names(store, &t, &DeviceFilter::all()).await,
        ["a", "b", "c", "d"]
    );
    assert_eq!(
        names(store, &t, &with_labels(&["floor:3"])).await,
        ["a", "b"]
    );
    assert_eq!(
        names(store, &t, &with_labels(&["floor:3", "team/owner:ops"])).await,
        ["a"]
    );
    assert!(
        names(store, &t, &with_labels(&["team/owner:ops", "floor:4"]))
            .await
            .is_empty(),
        "d lost its team label"
    );
    assert!(
        names(store, &t, &with_labels(&["floor:3", "floor:4"]))
            .await
            .is_empty(),
        "one key, two values: nothing"
    );
    assert!(names(store, &t, &with_labels(&["floor:"])).await.is_empty());

    let mut site = DeviceFilter::all();
    site.site_id = Some(ScopeLabel::parse("s1").expect("valid"));
    assert_eq!(names(store, &t, &site).await, ["a", "b"]);
    let mut errored = site.clone();
    errored.status = Some(DeviceStatus::Error);
    assert_eq!(names(store, &t, &errored).await, ["b"]);
    let mut thermo_on_3 = with_labels(&["floor:3"]);
    thermo_on_3.device_type = Some(ScopeLabel::parse("thermo").expect("valid"));
    assert_eq!(names(store, &t, &thermo_on_3).await, ["a"]);

    // The kept alert status: no reading is normal.
    let now = Timestamp::now().get();
    store
        .ingest(&t, batch(vec![reading(c.id, now, 45.0)]))
        .await
        .expect("ingested");
    let mut critical = DeviceFilter::all();
    critical.alert_status = Some(domain::AlertStatus::Critical);
    assert_eq!(names(store, &t, &critical).await, ["c"]);
    let mut normal = DeviceFilter::all();
    normal.alert_status = Some(domain::AlertStatus::Normal);
    assert_eq!(names(store, &t, &normal).await, ["a", "b", "d"]);

    // Paged: the total counts every match.
    let page = store
        .list_devices(
            &t,
            &with_labels(&["floor:3"]),
            &ListQuery::new(None, Some(1), Some(1)).expect("valid"),
        )
        .await
        .expect("listed");
    assert_eq!(page.total, 2);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].spec.name.as_str(), "b");

    let other = tenant("contract-labels-other");
    assert!(names(store, &other, &with_labels(&["floor:3"]))
        .await
        .is_empty());
}

/// A scope preview counts and lists what a window's scope holds, names the groups that do not
/// exist, and stores nothing.
pub async fn scope_previews_count_list_and_name_unknown_groups<S>(store: &S)
where
    S: DeviceRepository + DeviceGroupRepository + MaintenanceWindowRepository,
{
    let t = tenant("contract-scope-preview");
    let fresh = new_window(
        "mw-preview",
        at(time::macros::datetime!(2025-01-01 0:00 UTC)),
    );
    let empty = store
        .preview_scope(&t, &fresh.definition, 100)
        .await
        .expect("previewed");
    assert_eq!((empty.in_scope, empty.tenant_devices), (0, 0));
    assert!(empty.devices.is_empty());

    let a = scoped_device("a", Some("s1"), None);
    let b = scoped_device("b", Some("s1"), None);
    let c = scoped_device("c", Some("s2"), None);
    for device in [&b, &a, &c] {
        store
            .create_device(&t, &alice(), device.clone())
            .await
            .expect("created");
    }
    let mut g = new_group("grp-preview", "Preview");
    g.members = vec![a.id, c.id];
    store.create_group(&t, &alice(), g).await.expect("created");

    let all = store
        .preview_scope(&t, &fresh.definition, 100)
        .await
        .expect("previewed");
    assert_eq!((all.in_scope, all.tenant_devices), (3, 3));

    let mut site = fresh.definition.clone();
    site.site_ids = Some(ScopeLabel::parse_list(&["s1"]).expect("valid"));
    let first = store.preview_scope(&t, &site, 1).await.expect("previewed");
    assert_eq!(first.in_scope, 2, "the count is not limited");
    assert_eq!(first.devices.len(), 1);
    assert_eq!(first.devices[0].spec.name.as_str(), "a", "by name");
    assert!(first.unknown_groups.is_empty());

    let slug = |s: &str| GroupSlug::parse(s).expect("valid");
    let mut grouped = site.clone();
    grouped.group_ids = Some(vec![
        slug("grp-nope"),
        slug("grp-preview"),
        slug("grp-nope"),
    ]);
    let named = store
        .preview_scope(&t, &grouped, 100)
        .await
        .expect("previewed");
    assert_eq!(named.in_scope, 1, "s1 and in the group: a");
    assert_eq!(named.devices[0].id, a.id);
    assert_eq!(named.unknown_groups, [slug("grp-nope")]);

    assert_eq!(
        store
            .unknown_groups(&t, &[slug("grp-x"), slug("grp-preview"), slug("grp-x")])
            .await
            .expect("asked"),
        [slug("grp-x")]
    );
    assert!(store
        .unknown_groups(&t, &[])
        .await
        .expect("asked")
        .is_empty());
    assert_eq!(
        store
            .unknown_groups(&tenant("contract-scope-other"), &[slug("grp-preview")])
            .await
            .expect("asked"),
        [slug("grp-preview")],
        "another tenant's group does not exist here"
    );

    assert_eq!(
        store
            .list_windows(&t, &ListQuery::all())
            .await
            .expect("listed")
            .total,
        0,
        "nothing stored"
    );
}
