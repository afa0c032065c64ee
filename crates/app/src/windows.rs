//! Maintenance windows: creating one under a generated slug, and listing them by status now.

use domain::{
    Actor, ListQuery, MaintenanceWindow, NewMaintenanceWindow, Page, TenantId, Timestamp,
    WindowDefinition, WindowSlug, WindowStatus,
};
use ports::{CreateWindowError, MaintenanceWindowRepository, StoreError};

use crate::with_generated_slug;

/// Creates the window under a generated slug (`mw-` and 8 random hex digits), drawn again while
/// it collides with a stored one.
///
/// # Errors
/// The store's [`CreateWindowError`]; `WindowIdTaken` when every generated slug collided.
pub async fn create(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    actor: &Actor,
    definition: WindowDefinition,
) -> Result<MaintenanceWindow, CreateWindowError> {
    with_generated_slug(
        WindowSlug::generate,
        |e| matches!(e, CreateWindowError::WindowIdTaken(_)),
        |window_id| {
            windows.create_window(
                tenant,
                actor,
                NewMaintenanceWindow {
                    window_id,
                    definition: definition.clone(),
                },
            )
        },
    )
    .await
}

/// The page of the tenant's windows `query` selects, only those whose status at `now` is
/// `status` when one is given.
///
/// # Errors
/// The store's.
pub async fn list(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    query: &ListQuery,
    status: Option<WindowStatus>,
    now: Timestamp,
) -> Result<Page<MaintenanceWindow>, StoreError> {
    let Some(status) = status else {
        return windows.list_windows(tenant, query).await;
    };
    // Status depends on the time, not on stored columns: the name matches are read (a tenant's
    // windows are bounded), filtered by their status now, then paged.
    let matching =
        ListQuery::new(query.name_contains(), None, None).unwrap_or_else(|_| ListQuery::all());
    let with_status: Vec<MaintenanceWindow> = windows
        .list_windows(tenant, &matching)
        .await?
        .items
        .into_iter()
        .filter(|w| w.definition.status(now) == status)
        .collect();
    Ok(query.page(with_status, |w| w.definition.name.as_str()))
}
