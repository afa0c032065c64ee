//! The embedded store's own promises, beyond the contract every store keeps: tenants do not wait
//! for each other, and the caps refuse what would not fit, storing nothing.

use std::time::Duration;

use domain::{
    DeviceName, DeviceSpec, DeviceStatus, GroupName, Reading, ReadingValue, Thresholds, Unit,
    WindowDefinition, WindowName, WindowSchedule,
};
use ports::{AlertEvaluator, AlertRepository};
use time::macros::datetime;
use tokio::sync::OwnedRwLockWriteGuard;

use super::*;

/// Far longer than any operation here takes, even on a loaded machine: reaching it means the
/// operation was waiting on a lock.
const BLOCKED: Duration = Duration::from_secs(20);

impl MemoryStore {
    /// Takes the tenant's write lock as a long write would, until the guard is dropped.
    async fn hold_for_writing(&self, tenant: &TenantId) -> OwnedRwLockWriteGuard<TenantData> {
        self.tenant_or_insert(tenant).write_owned().await
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("valid tenant")
}

fn actor() -> Actor {
    Actor::parse("tester").expect("valid subject")
}

fn new_device(name: &str) -> NewDevice {
    NewDevice {
        id: Uuid::new_v4(),
        spec: DeviceSpec {
            name: DeviceName::parse(name).expect("valid name"),
            unit: Unit::parse("°C").expect("valid unit"),
            status: DeviceStatus::Connected,
            site_id: None,
            device_type: None,
            thresholds: Thresholds::new(None, None, None, None).expect("ordered"),
            stale_after: None,
            labels: domain::Labels::none(),
        },
    }
}

fn new_group(slug: &str, members: Vec<Uuid>) -> NewDeviceGroup {
    NewDeviceGroup {
        filter: None,
        id: Uuid::new_v4(),
        group_id: GroupSlug::parse(slug).expect("valid slug"),
        name: GroupName::parse(slug).expect("valid name"),
        description: None,
        members,
        parent_id: None,
    }
}

fn new_window(slug: &str) -> NewMaintenanceWindow {
    NewMaintenanceWindow {
        window_id: WindowSlug::parse(slug).expect("valid slug"),
        definition: WindowDefinition {
            labels: None,
            name: WindowName::parse("Patching").expect("valid name"),
            schedule: WindowSchedule::new(
                Timestamp::new(datetime!(2025-06-01 0:00 UTC)).expect("valid"),
                None,
            )
            .expect("valid schedule"),
            recurring: None,
            site_ids: None,
            device_types: None,
            group_ids: None,
            enabled: true,
        },
    }
}

/// Readings of `device`, one a minute from 2025-06-01 00:00, starting at minute `from`.
fn readings(device: Uuid, from: i64, count: i64) -> ReadingBatch {
    ReadingBatch::new(
        (from..from + count)
            .map(|minute| Reading {
                device_id: device,
                timestamp: Timestamp::new(
                    datetime!(2025-06-01 0:00 UTC) + time::Duration::minutes(minute),
                )
                .expect("valid"),
                value: ReadingValue::new(20.0).expect("finite"),
            })
            .collect(),
    )
    .expect("valid batch")
}

fn all_readings() -> ReadingQuery {
    ReadingQuery::last_hours(
        Timestamp::new(datetime!(2025-06-02 0:00 UTC)).expect("valid"),
        48,
        10_000,
    )
    .expect("valid query")
}

fn assert_full(error: StoreError, what: &str) {
    match error {
        StoreError::Full(detail) => {
            assert!(detail.contains(what), "{detail}");
            assert!(detail.contains("DATABASE_URL"), "{detail}");
            assert!(detail.contains("PostgreSQL"), "{detail}");
        }
        other => panic!("expected Full naming {what}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_one_tenant_is_locked_for_writing_other_tenants_read_and_write() {
    // Arrange
    let store = Arc::new(MemoryStore::new());
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    let a_device = store
        .create_device(&a, &actor(), new_device("a-1"))
        .await
        .expect("created");
    let b_device = store
        .create_device(&b, &actor(), new_device("b-1"))
        .await
        .expect("created");
    let held = store.hold_for_writing(&a).await;

    // Act: B reads and writes while A's lock is held
    let (b_read, b_write, b_list) = tokio::time::timeout(BLOCKED, async {
        (
            store.get_device(&b, b_device.id).await,
            store.create_device(&b, &actor(), new_device("b-2")).await,
            store
                .list_devices(&b, &domain::DeviceFilter::all(), &ListQuery::default())
                .await,
        )
    })
    .await
    .expect("tenant B waited for tenant A's lock");

    // Assert
    assert_eq!(b_read.expect("found").id, b_device.id);
    b_write.expect("created");
    assert_eq!(b_list.expect("listed").total, 2);
    // A's own reader does wait for the write in progress (the lock is really held) ...
    let reader = Arc::clone(&store);
    let a_reader = tokio::spawn(async move { reader.get_device(&a, a_device.id).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!a_reader.is_finished(), "A's read ignored A's write lock");
    // ... and goes on once it is released.
    drop(held);
    tokio::time::timeout(BLOCKED, a_reader)
        .await
        .expect("A's read finished")
        .expect("joined")
        .expect("found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_of_one_tenant_do_not_wait_for_each_other() {
    // Arrange
    let store = MemoryStore::new();
    let a = tenant("tenant-a");
    let device = store
        .create_device(&a, &actor(), new_device("a-1"))
        .await
        .expect("created");
    let held = store.tenant(&a).expect("stored").read_owned().await;

    // Act
    let read = tokio::time::timeout(BLOCKED, store.get_device(&a, device.id)).await;

    // Assert
    read.expect("a reader waited for another reader")
        .expect("found");
    drop(held);
}

#[tokio::test]
async fn a_batch_past_the_readings_cap_is_refused_whole() {
    // Arrange: room for 100 readings, 90 taken
    let store = MemoryStore::with_limits(Limits {
        readings: 100,
        ..Limits::default()
    });
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    let a_device = store
        .create_device(&a, &actor(), new_device("a-1"))
        .await
        .expect("created");
    let b_device = store
        .create_device(&b, &actor(), new_device("b-1"))
        .await
        .expect("created");
    store
        .ingest(&a, readings(a_device.id, 0, 90))
        .await
        .expect("stored");

    // Act: another tenant's 11 new readings do not fit; 10 do
    let refused = store.ingest(&b, readings(b_device.id, 0, 11)).await;

    // Assert
    match refused {
        Err(IngestError::Store(e)) => assert_full(e, "100 readings"),
        other => panic!("expected the cap, got {other:?}"),
    }
    let stored = store
        .device_readings(&b, b_device.id, all_readings())
        .await
        .expect("found");
    assert!(stored.is_empty(), "the refused batch left {stored:?}");
    assert_eq!(store.usage.readings.used(), 90);
    store
        .ingest(&b, readings(b_device.id, 0, 10))
        .await
        .expect("10 more fit");
    assert_eq!(store.usage.readings.used(), 100);
}

#[tokio::test]
async fn replaced_readings_take_no_more_room_and_deleted_ones_free_theirs() {
    // Arrange: a full store
    let store = MemoryStore::with_limits(Limits {
        readings: 50,
        ..Limits::default()
    });
    let a = tenant("tenant-a");
    let device = store
        .create_device(&a, &actor(), new_device("a-1"))
        .await
        .expect("created");
    store
        .ingest(&a, readings(device.id, 0, 50))
        .await
        .expect("stored");

    // Act / Assert: the same instants again replace, even in a batch that repeats one
    let mut twice: Vec<Reading> = readings(device.id, 0, 50).into_readings();
    twice.push(twice[0]);
    store
        .ingest(&a, ReadingBatch::new(twice).expect("valid"))
        .await
        .expect("replacing takes no room");
    assert_eq!(store.usage.readings.used(), 50);
    assert!(store.ingest(&a, readings(device.id, 50, 1)).await.is_err());

    // Deleting the device frees its readings
    store.delete_device(&a, device.id).await.expect("deleted");
    assert_eq!(store.usage.readings.used(), 0);
    assert_eq!(store.usage.devices.used(), 0);
    let again = store
        .create_device(&a, &actor(), new_device("a-2"))
        .await
        .expect("created");
    store
        .ingest(&a, readings(again.id, 0, 50))
        .await
        .expect("room again");
}

#[tokio::test]
async fn devices_groups_memberships_and_windows_are_capped_too() {
    // Arrange
    let store = MemoryStore::with_limits(Limits {
        readings: 10,
        devices: 3,
        groups: 2,
        memberships: 4,
        windows: 1,
    });
    let a = tenant("tenant-a");
    let mut devices = Vec::new();
    for name in ["d-1", "d-2", "d-3"] {
        let device = store
            .create_device(&a, &actor(), new_device(name))
            .await
            .expect("created");
        devices.push(device.id);
    }

    // Devices
    match store.create_device(&a, &actor(), new_device("d-4")).await {
        Err(CreateDeviceError::Store(e)) => assert_full(e, "3 devices"),
        other => panic!("expected the cap, got {other:?}"),
    }
    let page = store
        .list_devices(&a, &domain::DeviceFilter::all(), &ListQuery::default())
        .await
        .expect("listed");
    assert_eq!(page.total, 3);

    // Memberships: a group whose members do not fit is not created at all
    let crowded = store
        .create_group(&a, &actor(), new_group("grp-crowded", devices.clone()))
        .await
        .expect("3 members fit");
    match store
        .create_group(&a, &actor(), new_group("grp-late", devices.clone()))
        .await
    {
        Err(CreateGroupError::Store(e)) => assert_full(e, "4 group memberships"),
        other => panic!("expected the cap, got {other:?}"),
    }
    assert!(matches!(
        store.get_group(&a, &GroupKey::Id(crowded.group.id)).await,
        Ok(detail) if detail.members.len() == 3
    ));
    assert!(store
        .get_group(
            &a,
            &GroupKey::Slug(GroupSlug::parse("grp-late").expect("valid"))
        )
        .await
        .is_err());
    assert_eq!(store.usage.groups.used(), 1);

    // Groups
    store
        .create_group(&a, &actor(), new_group("grp-two", vec![devices[0]]))
        .await
        .expect("the second group fits");
    match store
        .create_group(&a, &actor(), new_group("grp-three", Vec::new()))
        .await
    {
        Err(CreateGroupError::Store(e)) => assert_full(e, "2 groups"),
        other => panic!("expected the cap, got {other:?}"),
    }

    // Membership changes count only what they add
    match store
        .add_member(&a, &actor(), &GroupKey::Id(crowded.group.id), devices[0])
        .await
    {
        Ok(()) => {} // already a member: no room needed
        other => panic!("re-adding a member failed: {other:?}"),
    }
    let two = GroupKey::Slug(GroupSlug::parse("grp-two").expect("valid"));
    match store.add_member(&a, &actor(), &two, devices[1]).await {
        Err(MembershipError::Store(e)) => assert_full(e, "group memberships"),
        other => panic!("expected the cap, got {other:?}"),
    }
    let shrink = GroupChanges {
        members: Some(vec![devices[0]]),
        ..GroupChanges::default()
    };
    store
        .update_group(&a, &actor(), &GroupKey::Id(crowded.group.id), shrink)
        .await
        .expect("shrunk");
    assert_eq!(store.usage.memberships.used(), 2);
    store
        .add_member(&a, &actor(), &two, devices[1])
        .await
        .expect("room after shrinking");

    // Windows
    store
        .create_window(&a, &actor(), new_window("mw-one"))
        .await
        .expect("fits");
    match store
        .create_window(&a, &actor(), new_window("mw-two"))
        .await
    {
        Err(CreateWindowError::Store(e)) => assert_full(e, "1 maintenance windows"),
        other => panic!("expected the cap, got {other:?}"),
    }
    store
        .delete_window(&a, &WindowSlug::parse("mw-one").expect("valid"))
        .await
        .expect("deleted");
    store
        .create_window(&a, &actor(), new_window("mw-two"))
        .await
        .expect("room after deleting");
}

fn reading(device: Uuid, minute: i64, value: f64) -> ReadingBatch {
    ReadingBatch::new(vec![Reading {
        device_id: device,
        timestamp: Timestamp::new(datetime!(2025-06-01 0:00 UTC) + time::Duration::minutes(minute))
            .expect("valid"),
        value: ReadingValue::new(value).expect("finite"),
    }])
    .expect("valid batch")
}

/// Warning above 30, critical above 40.
fn watched_device(name: &str) -> NewDevice {
    let mut device = new_device(name);
    device.spec.thresholds = Thresholds::new(None, None, Some(30.0), Some(40.0)).expect("ordered");
    device
}

#[tokio::test]
async fn alert_events_are_capped_and_a_refused_write_changes_no_state() {
    // Arrange: room for two events
    let store = MemoryStore::with_limits_and_alert_events(Limits::default(), 2);
    let a = tenant("tenant-a");
    let device = store
        .create_device(&a, &actor(), watched_device("d-1"))
        .await
        .expect("created");
    store
        .ingest(&a, reading(device.id, 0, 35.0))
        .await
        .expect("opened: one event");
    store
        .ingest(&a, reading(device.id, 1, 36.0))
        .await
        .expect("same status: no event");
    store
        .ingest(&a, reading(device.id, 2, 45.0))
        .await
        .expect("escalated: the second event");
    assert_eq!(store.usage.alert_events.used(), 2);
    let before = store.get_device(&a, device.id).await.expect("found");

    // Act / Assert: a reading that would record a third event is refused whole
    match store.ingest(&a, reading(device.id, 3, 20.0)).await {
        Err(IngestError::Store(e)) => assert_full(e, "2 alert events"),
        other => panic!("expected the cap, got {other:?}"),
    }
    assert_eq!(
        store.get_device(&a, device.id).await.expect("found").state,
        before.state,
        "the refused reading changed the state"
    );
    assert_eq!(
        store
            .device_readings(&a, device.id, all_readings())
            .await
            .expect("found")
            .len(),
        3,
        "the refused reading was stored"
    );
    // A reading that records nothing still fits.
    store
        .ingest(&a, reading(device.id, 4, 46.0))
        .await
        .expect("no event: fits");
    let page = store
        .list_alerts(
            &a,
            &ports::AlertQuery {
                filter: ports::AlertFilter::default(),
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    let id = page.alerts[0].record.id;
    let ack = domain::Acknowledgement::new(
        actor(),
        Timestamp::now(),
        domain::AckMode::UntilResolved,
        None,
        None,
    )
    .expect("valid");
    match store.acknowledge(&a, id, ack).await {
        Err(ports::AckAlertError::Store(e)) => assert_full(e, "alert events"),
        other => panic!("expected the cap, got {other:?}"),
    }
    assert_eq!(
        store
            .get_alert(&a, id)
            .await
            .expect("found")
            .0
            .record
            .acknowledgement,
        None
    );
    let changes = DeviceChanges {
        thresholds: [None, None, Some(Some(50.0)), Some(Some(60.0))],
        ..DeviceChanges::default()
    };
    match store.update_device(&a, &actor(), device.id, changes).await {
        Err(UpdateDeviceError::Store(e)) => assert_full(e, "alert events"),
        other => panic!("expected the cap, got {other:?}"),
    }
    assert_eq!(
        store.get_device(&a, device.id).await.expect("found").spec,
        before.spec,
        "the refused update changed the device"
    );

    // Deleting the device frees its alerts' events.
    store.delete_device(&a, device.id).await.expect("deleted");
    assert_eq!(store.usage.alert_events.used(), 0);
}

#[tokio::test]
async fn the_evaluator_goes_on_past_a_full_store_and_says_so() {
    // Arrange: one event of room, two stale devices in two tenants
    let store = MemoryStore::with_limits_and_alert_events(Limits::default(), 1);
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    for t in [&a, &b] {
        let mut device = new_device("d-1");
        device.spec.stale_after = domain::StaleAfter::from_secs(60).ok();
        let device = store
            .create_device(t, &actor(), device)
            .await
            .expect("created");
        store
            .ingest(t, reading(device.id, 0, 1.0))
            .await
            .expect("stored");
    }

    // Act
    let pass = store.evaluate(Timestamp::now()).await;

    // Assert: one tenant's alert opened, the other's is refused, and the pass says so
    match pass {
        Err(e) => assert_full(e, "1 alert events"),
        other => panic!("expected the cap, got {other:?}"),
    }
    assert_eq!(store.usage.alert_events.used(), 1);
}
