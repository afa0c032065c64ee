//! The embedded store: every port implemented in process memory, for runs without PostgreSQL.
//!
//! Layer rule: an adapter like the Postgres one, and held to the same contract suite
//! (`ports::contract`), so the service behaves the same on either. Nothing is persisted: data
//! lives as long as the process.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use domain::{
    DeviceGroup, GroupChanges, GroupSlug, MaintenanceWindow, NewDeviceGroup, NewMaintenanceWindow,
    TenantId, Timestamp, WindowChanges, WindowSlug,
};
use ports::{
    CreateGroupError, CreateWindowError, DeviceGroupRepository, HealthProbe, LookupError,
    MaintenanceWindowRepository, StoreError, UpdateGroupError, UpdateWindowError,
};

/// One tenant's rows. Each operation takes the lock once, so every operation is atomic.
#[derive(Default)]
struct TenantData {
    groups: Vec<DeviceGroup>,
    windows: Vec<MaintenanceWindow>,
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
        // A panic while holding the lock cannot leave a half-applied change (every mutation is
        // a single push, assignment or removal), so a poisoned lock is safe to keep using.
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A strictly increasing clock, so `updated_at` never goes backwards within the process.
fn now_after(previous: Timestamp) -> Timestamp {
    let now = Timestamp::now();
    if now > previous {
        now
    } else {
        previous
    }
}

#[async_trait]
impl DeviceGroupRepository for MemoryStore {
    async fn list_groups(&self, tenant: &TenantId) -> Result<Vec<DeviceGroup>, StoreError> {
        let tenants = self.lock();
        let mut groups = tenants
            .get(tenant)
            .map(|t| t.groups.clone())
            .unwrap_or_default();
        // Byte order, as PostgreSQL's "C" collation sorts.
        groups.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(groups)
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewDeviceGroup,
    ) -> Result<DeviceGroup, CreateGroupError> {
        let mut tenants = self.lock();
        let data = tenants.entry(tenant.clone()).or_default();
        if data.groups.iter().any(|g| g.group_id == group.group_id) {
            return Err(CreateGroupError::GroupIdTaken(group.group_id));
        }
        if data.groups.iter().any(|g| g.name == group.name) {
            return Err(CreateGroupError::NameTaken(group.name));
        }
        let now = Timestamp::now();
        let stored = DeviceGroup {
            id: group.id,
            group_id: group.group_id,
            name: group.name,
            description: group.description,
            member_count: 0,
            created_at: now,
            updated_at: now,
        };
        data.groups.push(stored.clone());
        Ok(stored)
    }

    async fn get_group(
        &self,
        tenant: &TenantId,
        group_id: &GroupSlug,
    ) -> Result<DeviceGroup, LookupError> {
        self.lock()
            .get(tenant)
            .and_then(|t| t.groups.iter().find(|g| &g.group_id == group_id))
            .cloned()
            .ok_or(LookupError::NotFound)
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        group_id: &GroupSlug,
        changes: GroupChanges,
    ) -> Result<DeviceGroup, UpdateGroupError> {
        let mut tenants = self.lock();
        let data = tenants.get_mut(tenant).ok_or(UpdateGroupError::NotFound)?;
        let index = data
            .groups
            .iter()
            .position(|g| &g.group_id == group_id)
            .ok_or(UpdateGroupError::NotFound)?;
        if let Some(name) = &changes.name {
            if data
                .groups
                .iter()
                .any(|g| &g.name == name && &g.group_id != group_id)
            {
                return Err(UpdateGroupError::NameTaken(name.clone()));
            }
        }
        let group = &mut data.groups[index];
        if let Some(name) = changes.name {
            group.name = name;
        }
        if let Some(description) = changes.description {
            group.description = description;
        }
        group.updated_at = now_after(group.updated_at);
        Ok(group.clone())
    }

    async fn delete_group(
        &self,
        tenant: &TenantId,
        group_id: &GroupSlug,
    ) -> Result<(), LookupError> {
        let mut tenants = self.lock();
        let data = tenants.get_mut(tenant).ok_or(LookupError::NotFound)?;
        let index = data
            .groups
            .iter()
            .position(|g| &g.group_id == group_id)
            .ok_or(LookupError::NotFound)?;
        data.groups.remove(index);
        Ok(())
    }
}

#[async_trait]
impl MaintenanceWindowRepository for MemoryStore {
    async fn list_windows(&self, tenant: &TenantId) -> Result<Vec<MaintenanceWindow>, StoreError> {
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
        Ok(windows)
    }

    async fn create_window(
        &self,
        tenant: &TenantId,
        window: NewMaintenanceWindow,
    ) -> Result<MaintenanceWindow, CreateWindowError> {
        let mut tenants = self.lock();
        let data = tenants.entry(tenant.clone()).or_default();
        if data.windows.iter().any(|w| w.window_id == window.window_id) {
            return Err(CreateWindowError::WindowIdTaken(window.window_id));
        }
        let now = Timestamp::now();
        let stored = MaintenanceWindow {
            window_id: window.window_id,
            definition: window.definition,
            created_at: now,
            updated_at: now,
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
