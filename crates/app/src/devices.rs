//! Devices: the groups a device belongs to, a page at a time.

use domain::window::covering_device;
use domain::{Device, DeviceCoverage, DeviceGroup, ListQuery, Page, TenantId, Timestamp};
use ports::{DeviceRepository, LookupError, MaintenanceWindowRepository, StoreError};
use uuid::Uuid;

/// The page of the device's groups that `query` selects, ordered by name. A device belongs to
/// few groups, so they are read whole and paged here.
///
/// # Errors
/// [`LookupError::NotFound`] for a device the tenant does not have; the store's.
pub async fn groups_page(
    devices: &dyn DeviceRepository,
    tenant: &TenantId,
    id: Uuid,
    query: &ListQuery,
) -> Result<Page<DeviceGroup>, LookupError> {
    let groups = devices.groups_of_device(tenant, id).await?;
    Ok(query.page(groups, |g| g.name.as_str()))
}

/// Whether an active window covers each of `devices` at `now`, in their order: one question to
/// the store for the whole list, none for an empty one.
///
/// # Errors
/// The store's.
pub async fn in_maintenance(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    devices: &[Device],
    now: Timestamp,
) -> Result<Vec<bool>, StoreError> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = devices.iter().map(|d| d.id).collect();
    let covering = windows.covering_windows(tenant, &ids, now).await?;
    Ok(devices
        .iter()
        .map(|d| covering.get(&d.id).is_some_and(|w| !w.is_empty()))
        .collect())
}

/// Why the device is, or will be, muted: the windows that may cover it (enabled, not expired,
/// the device in their scope), each with whether it is active at `now` and its next occurrence,
/// in the order the store lists windows (latest start first).
///
/// # Errors
/// [`LookupError::NotFound`] for a device the tenant does not have; the store's.
pub async fn maintenance(
    devices: &dyn DeviceRepository,
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    id: Uuid,
    now: Timestamp,
) -> Result<Vec<DeviceCoverage>, LookupError> {
    let device = devices.get_device(tenant, id).await?;
    // A window naming a group covers its descendants' members too: the ancestors count.
    let groups = devices.groups_reaching_device(tenant, id).await?;
    // A tenant keeps at most WINDOWS_PER_TENANT_MAX windows: all of them are read.
    let all = windows.list_windows(tenant, &ListQuery::all()).await?.items;
    Ok(covering_device(
        all,
        device.spec.site_id.as_ref(),
        device.spec.device_type.as_ref(),
        &device.spec.labels,
        &groups,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use domain::{
        Actor, DeviceName, DeviceSpec, DeviceState, DeviceStatus, GroupSlug, Thresholds, Unit,
        WindowSlug,
    };
    use ports::MockMaintenanceWindowRepository;

    use super::*;

    fn device(n: u128) -> Device {
        let now = Timestamp::now();
        Device {
            id: Uuid::from_u128(n),
            spec: DeviceSpec {
                name: DeviceName::parse(&format!("d{n}")).expect("valid"),
                unit: Unit::parse("C").expect("valid"),
                status: DeviceStatus::Connected,
                site_id: None,
                device_type: None,
                thresholds: Thresholds::default(),
                stale_after: None,
                labels: domain::Labels::none(),
            },
            state: DeviceState::default(),
            created_at: now,
            updated_at: now,
            created_by: Actor::parse("a").expect("valid"),
            updated_by: Actor::parse("a").expect("valid"),
        }
    }

    fn tenant() -> TenantId {
        TenantId::parse("acme").expect("valid")
    }

    #[tokio::test]
    async fn maintenance_is_asked_once_for_the_whole_list_and_kept_in_its_order() {
        let mut windows = MockMaintenanceWindowRepository::new();
        windows
            .expect_covering_windows()
            .withf(|_, ids, _| ids == [Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)])
            .times(1)
            .returning(|_, _, _| {
                Ok(HashMap::from([
                    (
                        Uuid::from_u128(2),
                        vec![WindowSlug::parse("mw-1").expect("valid")],
                    ),
                    (Uuid::from_u128(3), Vec::new()),
                ]))
            });
        let devices = [device(1), device(2), device(3)];
        let covered = in_maintenance(&windows, &tenant(), &devices, Timestamp::now())
            .await
            .expect("asked");
        assert_eq!(covered, [false, true, false]);
    }

    #[tokio::test]
    async fn an_empty_list_asks_nothing() {
        let mut windows = MockMaintenanceWindowRepository::new();
        windows.expect_covering_windows().never();
        let covered = in_maintenance(&windows, &tenant(), &[], Timestamp::now())
            .await
            .expect("asked");
        assert!(covered.is_empty());
    }

    #[tokio::test]
    async fn an_unknown_device_has_no_maintenance_to_explain() {
        let mut devices = ports::MockDeviceRepository::new();
        devices
            .expect_get_device()
            .times(1)
            .returning(|_, _| Err(LookupError::NotFound));
        devices.expect_groups_reaching_device().never();
        let mut windows = MockMaintenanceWindowRepository::new();
        windows.expect_list_windows().never();
        let answer =
            maintenance(&devices, &windows, &tenant(), Uuid::nil(), Timestamp::now()).await;
        assert!(matches!(answer, Err(LookupError::NotFound)));
    }

    #[tokio::test]
    async fn a_devices_maintenance_is_judged_with_the_groups_reaching_it_and_every_window() {
        let mut devices = ports::MockDeviceRepository::new();
        devices
            .expect_get_device()
            .returning(|_, id| Ok(device(id.as_u128())));
        // Its own group and that group's parent: a window naming either covers it.
        devices
            .expect_groups_reaching_device()
            .times(1)
            .returning(|_, _| {
                Ok(vec![
                    GroupSlug::parse("grp-mine").expect("valid"),
                    GroupSlug::parse("grp-site").expect("valid"),
                ])
            });
        let mut windows = MockMaintenanceWindowRepository::new();
        windows
            .expect_list_windows()
            .withf(|_, q| q.limit().is_none() && q.name_contains().is_none())
            .times(1)
            .returning(|_, _| {
                let window = |slug: &str, group: &str| {
                    let now = Timestamp::now();
                    domain::MaintenanceWindow {
                        window_id: WindowSlug::parse(slug).expect("valid"),
                        definition: domain::WindowDefinition {
                            labels: None,
                            name: domain::WindowName::parse(slug).expect("valid"),
                            schedule: domain::WindowSchedule::new(
                                Timestamp::new(time::macros::datetime!(2020-01-01 0:00 UTC))
                                    .expect("valid"),
                                None,
                            )
                            .expect("valid"),
                            recurring: None,
                            site_ids: None,
                            device_types: None,
                            group_ids: Some(vec![GroupSlug::parse(group).expect("valid")]),
                            enabled: true,
                        },
                        created_at: now,
                        updated_at: now,
                        created_by: Actor::parse("a").expect("valid"),
                        updated_by: Actor::parse("a").expect("valid"),
                    }
                };
                Ok(Page {
                    total: 3,
                    items: vec![
                        window("mw-mine", "grp-mine"),
                        window("mw-other", "grp-other"),
                        window("mw-site", "grp-site"),
                    ],
                })
            });
        let found = maintenance(
            &devices,
            &windows,
            &tenant(),
            Uuid::from_u128(1),
            Timestamp::now(),
        )
        .await
        .expect("found");
        let ids: Vec<&str> = found.iter().map(|c| c.window.window_id.as_str()).collect();
        assert_eq!(ids, ["mw-mine", "mw-site"]);
        assert!(found.iter().all(|c| c.active_now));
    }
}
