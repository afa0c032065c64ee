//! Ports: the traits through which the service reaches its stores.
//!
//! Layer rule: this crate depends only on `domain` and plain trait machinery. It names no driver,
//! framework or wire type; adapters translate their own errors into the enums here. Each
//! operation has its own error enum with its business variants plus [`StoreError`], so the HTTP
//! layer can map every variant to one status without a catch-all.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use domain::{
    DeviceGroup, GroupChanges, GroupName, GroupSlug, MaintenanceWindow, NewDeviceGroup,
    NewMaintenanceWindow, TenantId, WindowChanges, WindowError, WindowSlug,
};
use thiserror::Error;

#[cfg(feature = "contract")]
pub mod contract;

/// A failure of the store itself, not of the request.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store cannot be reached or has no capacity now (pool exhausted, connection refused,
    /// timeout). Worth retrying; the HTTP layer answers 503.
    #[error("the store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else. The HTTP layer logs the chain and answers an opaque 500.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

/// Errors of [`DeviceGroupRepository::create_group`].
#[derive(Debug, Error)]
pub enum CreateGroupError {
    #[error("group id {} is taken", .0.as_str())]
    GroupIdTaken(GroupSlug),
    #[error("group name {} is taken", .0.as_str())]
    NameTaken(GroupName),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of [`DeviceGroupRepository::update_group`].
#[derive(Debug, Error)]
pub enum UpdateGroupError {
    #[error("group not found")]
    NotFound,
    #[error("group name {} is taken", .0.as_str())]
    NameTaken(GroupName),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of reading or deleting one group or window.
#[derive(Debug, Error)]
pub enum LookupError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of [`MaintenanceWindowRepository::create_window`].
#[derive(Debug, Error)]
pub enum CreateWindowError {
    /// Only possible when two generated ids collide; the caller retries with a new one.
    #[error("window id {} is taken", .0.as_str())]
    WindowIdTaken(WindowSlug),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of [`MaintenanceWindowRepository::update_window`].
#[derive(Debug, Error)]
pub enum UpdateWindowError {
    #[error("window not found")]
    NotFound,
    /// The changes, merged with the stored window, do not make a valid window.
    #[error("invalid window: {0}")]
    Invalid(#[from] WindowError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Device groups of one tenant, addressed by their slug.
///
/// Every method is scoped by `tenant`: a group of another tenant behaves as if it did not exist.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeviceGroupRepository: Send + Sync {
    /// All groups of the tenant, ordered by name (byte order), each with its member count.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn list_groups(&self, tenant: &TenantId) -> Result<Vec<DeviceGroup>, StoreError>;

    /// Stores a new group with no members.
    ///
    /// # Errors
    /// MUST return [`CreateGroupError::GroupIdTaken`] when the tenant has a group with that slug,
    /// and [`CreateGroupError::NameTaken`] when it has one with that name; nothing is stored then.
    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewDeviceGroup,
    ) -> Result<DeviceGroup, CreateGroupError>;

    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no group with that slug.
    async fn get_group(
        &self,
        tenant: &TenantId,
        group_id: &GroupSlug,
    ) -> Result<DeviceGroup, LookupError>;

    /// Applies `changes` (which are not empty) and bumps `updated_at`.
    ///
    /// # Errors
    /// MUST return [`UpdateGroupError::NotFound`] for an unknown slug and
    /// [`UpdateGroupError::NameTaken`] when another group of the tenant has the new name; nothing
    /// changes then.
    async fn update_group(
        &self,
        tenant: &TenantId,
        group_id: &GroupSlug,
        changes: GroupChanges,
    ) -> Result<DeviceGroup, UpdateGroupError>;

    /// Deletes the group and its memberships; the devices stay.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no group with that slug.
    async fn delete_group(
        &self,
        tenant: &TenantId,
        group_id: &GroupSlug,
    ) -> Result<(), LookupError>;
}

/// Maintenance windows of one tenant.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MaintenanceWindowRepository: Send + Sync {
    /// All windows of the tenant, latest `starts_at` first (ties by `window_id`).
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn list_windows(&self, tenant: &TenantId) -> Result<Vec<MaintenanceWindow>, StoreError>;

    /// # Errors
    /// MUST return [`CreateWindowError::WindowIdTaken`] when the slug is in use; nothing is
    /// stored then.
    async fn create_window(
        &self,
        tenant: &TenantId,
        window: NewMaintenanceWindow,
    ) -> Result<MaintenanceWindow, CreateWindowError>;

    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no window with that slug.
    async fn get_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<MaintenanceWindow, LookupError>;

    /// Merges `changes` into the stored window and re-validates it, atomically.
    ///
    /// # Errors
    /// MUST return [`UpdateWindowError::NotFound`] for an unknown slug and
    /// [`UpdateWindowError::Invalid`] when the merged window is not valid; nothing changes then.
    async fn update_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
        changes: WindowChanges,
    ) -> Result<MaintenanceWindow, UpdateWindowError>;

    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no window with that slug.
    async fn delete_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<(), LookupError>;
}

/// Whether the store answers, for `/health/ready`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// # Errors
    /// [`StoreError::Unavailable`] when the store does not answer.
    async fn check(&self) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_has_a_mock() {
        let _groups = MockDeviceGroupRepository::new();
        let _windows = MockMaintenanceWindowRepository::new();
        let _health = MockHealthProbe::new();
    }
}
