//! The embedded store: every port implemented in process memory, for runs without PostgreSQL.
//!
//! Layer rule: an adapter like the Postgres one, and held to the same contract suite
//! (`ports::contract`), so the service behaves the same on either. Nothing is persisted: data
//! lives as long as the process.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use domain::{
    Actor, Device, DeviceChanges, DeviceGroup, GroupChanges, GroupSlug, ListQuery,
    MaintenanceWindow, NewDevice, NewDeviceGroup, NewMaintenanceWindow, Page, ReadingBatch,
    ReadingPoint, ReadingQuery, TenantId, Timestamp, WindowChanges, WindowSlug,
};
use ports::{
    CreateDeviceError, CreateGroupError, CreateWindowError, DeviceGroupRepository,
    DeviceRepository, GroupDetail, GroupKey, GroupReading, HealthProbe, IngestError, LookupError,
    MaintenanceWindowRepository, Member, MembershipError, ReadingRepository, StoreError,
    UpdateDeviceError, UpdateGroupError, UpdateWindowError,
};
use uuid::Uuid;

/// One tenant's rows. Each operation takes the lock once, so every operation is atomic and
/// sees one snapshot.
#[derive(Default)]
struct TenantData {
    /// `member_count` is not kept here; it is counted from `members` when read.
    groups: Vec<DeviceGroup>,
    windows: Vec<MaintenanceWindow>,
    devices: Vec<Device>,
    /// (group id, device id)
    members: BTreeSet<(Uuid, Uuid)>,
    readings: BTreeMap<(Uuid, Timestamp), f64>,
    latest: HashMap<Uuid, ReadingPoint>,
}

impl TenantData {
    fn group_index(&self, key: &GroupKey) -> Option<usize> {
        self.groups.iter().position(|g| match key {
            GroupKey::Id(id) => g.id == *id,
            GroupKey::Slug(slug) => g.group_id == *slug,
        })
    }

    fn device(&self, id: Uuid) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }

    fn counted(&self, group: &DeviceGroup) -> DeviceGroup {
        let count = self
            .members
            .range((group.id, Uuid::nil())..=(group.id, Uuid::max()))
            .count();
        DeviceGroup {
            member_count: count as u64,
            ..group.clone()
        }
    }

    fn member_ids(&self, group: Uuid) -> impl Iterator<Item = Uuid> + '_ {
        self.members
            .range((group, Uuid::nil())..=(group, Uuid::max()))
            .map(|(_, d)| *d)
    }

    fn detail(&self, index: usize) -> GroupDetail {
        let group = self.counted(&self.groups[index]);
        let now = Timestamp::now();
        let windows: Vec<MaintenanceWindow> = self
            .windows
            .iter()
            .filter(|w| {
                w.definition.enabled && w.definition.schedule.ends_at().is_none_or(|end| end > now)
            })
            .cloned()
            .collect();
        let named: std::collections::HashSet<&GroupSlug> = windows
            .iter()
            .filter_map(|w| w.definition.group_ids.as_ref())
            .flatten()
            .collect();
        let mut members: Vec<Member> = self
            .member_ids(group.id)
            .filter_map(|id| self.device(id))
            .map(|device| Member {
                device: device.clone(),
                latest: self.latest.get(&device.id).copied(),
                window_groups: self
                    .groups_of(device.id)
                    .filter(|slug| named.contains(slug))
                    .cloned()
                    .collect(),
            })
            .collect();
        members.sort_by(|a, b| a.device.spec.name.as_str().cmp(b.device.spec.name.as_str()));
        GroupDetail {
            group,
            members,
            windows,
            // Reading process memory is cheap: nothing is worth caching, so no revisions are kept.
            revision: None,
        }
    }

    /// Slugs of the groups `device` belongs to.
    fn groups_of(&self, device: Uuid) -> impl Iterator<Item = &GroupSlug> + '_ {
        self.groups
            .iter()
            .filter(move |g| self.members.contains(&(g.id, device)))
            .map(|g| &g.group_id)
    }

    fn first_unknown_device(&self, ids: &[Uuid]) -> Option<Uuid> {
        ids.iter().copied().find(|id| self.device(*id).is_none())
    }
}

/// The in-process store.
#[derive(Default)]
pub struct MemoryStore {
    tenants: Mutex<HashMap<TenantId, TenantData>>,
}

impl MemoryStore {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, TenantData>> {
        // Every mutation below checks first and changes after, so a panic cannot leave a
        // half-applied change: a poisoned lock is safe to keep using.
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The last instant a `Timestamp` can hold, as an inclusive upper bound of reading ranges.
const END_OF_TIME: Timestamp = Timestamp::MAX;

/// A clock that never goes backwards for one row, so `updated_at` only grows.
fn now_after(previous: Timestamp) -> Timestamp {
    Timestamp::now().max(previous)
}

fn by_name(groups: &mut [DeviceGroup]) {
    // Byte order, as PostgreSQL's "C" collation sorts.
    groups.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
}

#[async_trait]
impl DeviceGroupRepository for MemoryStore {
    async fn list_groups(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<Page<DeviceGroup>, StoreError> {
        let tenants = self.lock();
        let Some(data) = tenants.get(tenant) else {
            return Ok(Page {
                items: Vec::new(),
                total: 0,
            });
        };
        let mut groups: Vec<DeviceGroup> = data.groups.iter().map(|g| data.counted(g)).collect();
        by_name(&mut groups);
        Ok(query.page(groups, |g| g.name.as_str()))
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: NewDeviceGroup,
    ) -> Result<GroupDetail, CreateGroupError> {
        let mut tenants = self.lock();
        let data = tenants.entry(tenant.clone()).or_default();
        if data.groups.iter().any(|g| g.group_id == group.group_id) {
            return Err(CreateGroupError::GroupIdTaken(group.group_id));
        }
        if data.groups.iter().any(|g| g.name == group.name) {
            return Err(CreateGroupError::NameTaken(group.name));
        }
        if let Some(missing) = data.first_unknown_device(&group.members) {
            return Err(CreateGroupError::DeviceNotFound(missing));
        }
        let now = Timestamp::now();
        data.groups.push(DeviceGroup {
            id: group.id,
            group_id: group.group_id,
            name: group.name,
            description: group.description,
            member_count: 0,
            created_at: now,
            updated_at: now,
            created_by: actor.clone(),
            updated_by: actor.clone(),
        });
        data.members
            .extend(group.members.iter().map(|d| (group.id, *d)));
        Ok(data.detail(data.groups.len() - 1))
    }

    async fn revision(&self, _tenant: &TenantId) -> Result<Option<ports::Revision>, StoreError> {
        Ok(None)
    }

    async fn get_group(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
    ) -> Result<GroupDetail, LookupError> {
        let tenants = self.lock();
        let data = tenants.get(tenant).ok_or(LookupError::NotFound)?;
        let index = data.group_index(group).ok_or(LookupError::NotFound)?;
        Ok(data.detail(index))
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        changes: GroupChanges,
    ) -> Result<GroupDetail, UpdateGroupError> {
        let mut tenants = self.lock();
        let data = tenants.get_mut(tenant).ok_or(UpdateGroupError::NotFound)?;
        let index = data.group_index(group).ok_or(UpdateGroupError::NotFound)?;
        let id = data.groups[index].id;
        if let Some(name) = &changes.name {
            if data.groups.iter().any(|g| &g.name == name && g.id != id) {
                return Err(UpdateGroupError::NameTaken(name.clone()));
            }
        }
        if let Some(missing) = changes
            .members
            .as_deref()
            .and_then(|m| data.first_unknown_device(m))
        {
            return Err(UpdateGroupError::DeviceNotFound(missing));
        }
        if changes.is_empty() {
            return Ok(data.detail(index));
        }
        if let Some(members) = changes.members {
            data.members.retain(|(g, _)| *g != id);
            data.members.extend(members.into_iter().map(|d| (id, d)));
        }
        let stored = &mut data.groups[index];
        if let Some(name) = changes.name {
            stored.name = name;
        }
        if let Some(description) = changes.description {
            stored.description = description;
        }
        stored.updated_at = now_after(stored.updated_at);
        stored.updated_by = actor.clone();
        Ok(data.detail(index))
    }

    async fn delete_group(&self, tenant: &TenantId, group: &GroupKey) -> Result<(), LookupError> {
        let mut tenants = self.lock();
        let data = tenants.get_mut(tenant).ok_or(LookupError::NotFound)?;
        let index = data.group_index(group).ok_or(LookupError::NotFound)?;
        let removed = data.groups.remove(index);
        data.members.retain(|(g, _)| *g != removed.id);
        Ok(())
    }

    async fn add_member(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        device: Uuid,
    ) -> Result<(), MembershipError> {
        let mut tenants = self.lock();
        let data = tenants
            .get_mut(tenant)
            .ok_or(MembershipError::GroupNotFound)?;
        let index = data
            .group_index(group)
            .ok_or(MembershipError::GroupNotFound)?;
        if data.device(device).is_none() {
            return Err(MembershipError::DeviceNotFound);
        }
        let id = data.groups[index].id;
        if data.members.insert((id, device)) {
            let stored = &mut data.groups[index];
            stored.updated_at = now_after(stored.updated_at);
            stored.updated_by = actor.clone();
        }
        Ok(())
    }

    async fn remove_member(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        device: Uuid,
    ) -> Result<(), MembershipError> {
        let mut tenants = self.lock();
        let data = tenants
            .get_mut(tenant)
            .ok_or(MembershipError::GroupNotFound)?;
        let index = data
            .group_index(group)
            .ok_or(MembershipError::GroupNotFound)?;
        let id = data.groups[index].id;
        if !data.members.remove(&(id, device)) {
            return Err(MembershipError::NotMember);
        }
        let stored = &mut data.groups[index];
        stored.updated_at = now_after(stored.updated_at);
        stored.updated_by = actor.clone();
        Ok(())
    }

    async fn group_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<Vec<GroupReading>, LookupError> {
        let tenants = self.lock();
        let data = tenants.get(tenant).ok_or(LookupError::NotFound)?;
        let index = data.group_index(group).ok_or(LookupError::NotFound)?;
        let mut readings: Vec<GroupReading> = data
            .member_ids(data.groups[index].id)
            .filter_map(|id| data.device(id))
            .flat_map(|device| {
                data.readings
                    .range((
                        Bound::Included((device.id, query.since())),
                        query
                            .until()
                            .map_or(Bound::Included((device.id, END_OF_TIME)), |until| {
                                Bound::Excluded((device.id, until))
                            }),
                    ))
                    .rev()
                    .take(query.limit() as usize)
                    .map(move |((_, timestamp), value)| GroupReading {
                        device_id: device.id,
                        device_name: device.spec.name.clone(),
                        unit: device.spec.unit.clone(),
                        timestamp: *timestamp,
                        value: *value,
                    })
            })
            .collect();
        readings.sort_by(|a, b| {
            b.timestamp
                .cmp(&a.timestamp)
                .then(a.device_id.cmp(&b.device_id))
        });
        readings.truncate(query.limit() as usize);
        Ok(readings)
    }
}

#[async_trait]
impl DeviceRepository for MemoryStore {
    async fn list_devices(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<Page<Device>, StoreError> {
        let tenants = self.lock();
        let mut devices = tenants
            .get(tenant)
            .map(|t| t.devices.clone())
            .unwrap_or_default();
        devices.sort_by(|a, b| a.spec.name.as_str().cmp(b.spec.name.as_str()));
        Ok(query.page(devices, |d| d.spec.name.as_str()))
    }

    async fn create_device(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        device: NewDevice,
    ) -> Result<Device, CreateDeviceError> {
        let mut tenants = self.lock();
        let data = tenants.entry(tenant.clone()).or_default();
        if data.devices.iter().any(|d| d.spec.name == device.spec.name) {
            return Err(CreateDeviceError::NameTaken(device.spec.name));
        }
        let now = Timestamp::now();
        let stored = Device {
            id: device.id,
            spec: device.spec,
            created_at: now,
            updated_at: now,
            created_by: actor.clone(),
            updated_by: actor.clone(),
        };
        data.devices.push(stored.clone());
        Ok(stored)
    }

    async fn get_device(&self, tenant: &TenantId, id: Uuid) -> Result<Device, LookupError> {
        self.lock()
            .get(tenant)
            .and_then(|t| t.device(id))
            .cloned()
            .ok_or(LookupError::NotFound)
    }

    async fn update_device(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: Uuid,
        changes: DeviceChanges,
    ) -> Result<Device, UpdateDeviceError> {
        let mut tenants = self.lock();
        let data = tenants.get_mut(tenant).ok_or(UpdateDeviceError::NotFound)?;
        let index = data
            .devices
            .iter()
            .position(|d| d.id == id)
            .ok_or(UpdateDeviceError::NotFound)?;
        if let Some(name) = &changes.name {
            if data
                .devices
                .iter()
                .any(|d| &d.spec.name == name && d.id != id)
            {
                return Err(UpdateDeviceError::NameTaken(name.clone()));
            }
        }
        let device = &mut data.devices[index];
        device.spec = device.spec.apply(changes)?;
        device.updated_at = now_after(device.updated_at);
        device.updated_by = actor.clone();
        Ok(device.clone())
    }

    async fn delete_device(&self, tenant: &TenantId, id: Uuid) -> Result<(), LookupError> {
        let mut tenants = self.lock();
        let data = tenants.get_mut(tenant).ok_or(LookupError::NotFound)?;
        let index = data
            .devices
            .iter()
            .position(|d| d.id == id)
            .ok_or(LookupError::NotFound)?;
        data.devices.remove(index);
        data.members.retain(|(_, d)| *d != id);
        data.readings.retain(|(d, _), _| *d != id);
        data.latest.remove(&id);
        Ok(())
    }

    async fn groups_of_device(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Vec<DeviceGroup>, LookupError> {
        let tenants = self.lock();
        let data = tenants.get(tenant).ok_or(LookupError::NotFound)?;
        data.device(id).ok_or(LookupError::NotFound)?;
        let mut groups: Vec<DeviceGroup> = data
            .groups
            .iter()
            .filter(|g| data.members.contains(&(g.id, id)))
            .map(|g| data.counted(g))
            .collect();
        by_name(&mut groups);
        Ok(groups)
    }
}

#[async_trait]
impl ReadingRepository for MemoryStore {
    async fn ingest(&self, tenant: &TenantId, batch: ReadingBatch) -> Result<u64, IngestError> {
        let mut tenants = self.lock();
        let data = tenants.entry(tenant.clone()).or_default();
        let ids: Vec<Uuid> = batch.readings().iter().map(|r| r.device_id).collect();
        if let Some(missing) = data.first_unknown_device(&ids) {
            return Err(IngestError::UnknownDevice(missing));
        }
        let count = batch.readings().len() as u64;
        for reading in batch.into_readings() {
            let value = reading.value.get();
            data.readings
                .insert((reading.device_id, reading.timestamp), value);
            let latest = data
                .latest
                .entry(reading.device_id)
                .or_insert(ReadingPoint {
                    timestamp: reading.timestamp,
                    value,
                });
            if reading.timestamp >= latest.timestamp {
                *latest = ReadingPoint {
                    timestamp: reading.timestamp,
                    value,
                };
            }
        }
        Ok(count)
    }

    async fn device_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: ReadingQuery,
    ) -> Result<Vec<ReadingPoint>, LookupError> {
        let tenants = self.lock();
        let data = tenants.get(tenant).ok_or(LookupError::NotFound)?;
        data.device(device).ok_or(LookupError::NotFound)?;
        Ok(data
            .readings
            .range((device, query.since())..)
            .take_while(|((d, t), _)| *d == device && query.until().is_none_or(|until| *t < until))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .take(query.limit() as usize)
            .map(|((_, timestamp), value)| ReadingPoint {
                timestamp: *timestamp,
                value: *value,
            })
            .collect())
    }
}

#[async_trait]
impl MaintenanceWindowRepository for MemoryStore {
    async fn list_windows(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<Page<MaintenanceWindow>, StoreError> {
        let tenants = self.lock();
        let mut windows = tenants
            .get(tenant)
            .map(|t| t.windows.clone())
            .unwrap_or_default();
        windows.sort_by(|a, b| {
            b.definition
                .schedule
                .starts_at()
                .cmp(&a.definition.schedule.starts_at())
                .then_with(|| a.window_id.as_str().cmp(b.window_id.as_str()))
        });
        Ok(query.page(windows, |w| w.definition.name.as_str()))
    }

    async fn create_window(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        window: NewMaintenanceWindow,
    ) -> Result<MaintenanceWindow, CreateWindowError> {
        let mut tenants = self.lock();
        let data = tenants.entry(tenant.clone()).or_default();
        if data.windows.iter().any(|w| w.window_id == window.window_id) {
            return Err(CreateWindowError::WindowIdTaken(window.window_id));
        }
        let limit = domain::window::WINDOWS_PER_TENANT_MAX;
        if data.windows.len() >= limit {
            return Err(CreateWindowError::TooMany(limit));
        }
        let now = Timestamp::now();
        let stored = MaintenanceWindow {
            window_id: window.window_id,
            definition: window.definition,
            created_at: now,
            updated_at: now,
            created_by: actor.clone(),
            updated_by: actor.clone(),
        };
        data.windows.push(stored.clone());
        Ok(stored)
    }

    async fn get_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<MaintenanceWindow, LookupError> {
        self.lock()
            .get(tenant)
            .and_then(|t| t.windows.iter().find(|w| &w.window_id == window_id))
            .cloned()
            .ok_or(LookupError::NotFound)
    }

    async fn update_window(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        window_id: &WindowSlug,
        changes: WindowChanges,
    ) -> Result<MaintenanceWindow, UpdateWindowError> {
        let mut tenants = self.lock();
        let window = tenants
            .get_mut(tenant)
            .and_then(|t| t.windows.iter_mut().find(|w| &w.window_id == window_id))
            .ok_or(UpdateWindowError::NotFound)?;
        window.definition = window.definition.apply(changes)?;
        window.updated_at = now_after(window.updated_at);
        window.updated_by = actor.clone();
        Ok(window.clone())
    }

    async fn delete_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<(), LookupError> {
        let mut tenants = self.lock();
        let data = tenants.get_mut(tenant).ok_or(LookupError::NotFound)?;
        let index = data
            .windows
            .iter()
            .position(|w| &w.window_id == window_id)
            .ok_or(LookupError::NotFound)?;
        data.windows.remove(index);
        Ok(())
    }

    async fn window_devices(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<(MaintenanceWindow, Vec<Device>), LookupError> {
        let tenants = self.lock();
        let data = tenants.get(tenant).ok_or(LookupError::NotFound)?;
        let window = data
            .windows
            .iter()
            .find(|w| &w.window_id == window_id)
            .ok_or(LookupError::NotFound)?;
        Ok((window.clone(), Self::scope_of(data, window)))
    }
}

impl MemoryStore {
    fn scope_of(data: &TenantData, window: &MaintenanceWindow) -> Vec<Device> {
        let d = &window.definition;
        let mut devices: Vec<Device> = data
            .devices
            .iter()
            .filter(|device| {
                let groups: Vec<GroupSlug> = data.groups_of(device.id).cloned().collect();
                d.in_scope(
                    device.spec.site_id.as_ref(),
                    device.spec.device_type.as_ref(),
                    &groups,
                )
            })
            .cloned()
            .collect();
        devices.sort_by(|a, b| a.spec.name.as_str().cmp(b.spec.name.as_str()));
        devices
    }
}

#[async_trait]
impl HealthProbe for MemoryStore {
    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_embedded_store_keeps_the_store_contract() {
        ports::contract::run_all(&MemoryStore::new()).await;
    }
}
