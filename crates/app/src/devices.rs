//! Devices: the groups a device belongs to, a page at a time.

use domain::{DeviceGroup, ListQuery, Page, TenantId};
use ports::{DeviceRepository, LookupError};
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
