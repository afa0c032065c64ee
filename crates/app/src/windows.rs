//! Maintenance windows: creating one under a generated slug, and listing them by status now.

use domain::{
    Actor, Device, ListQuery, MaintenanceWindow, NewMaintenanceWindow, Page, TenantId, Timestamp,
    WindowDefinition, WindowSlug, WindowStatus,
};
use ports::{CreateWindowError, LookupError, MaintenanceWindowRepository, StoreError};

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

/// A page of the devices in a window's scope.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopePage {
    pub window: MaintenanceWindow,
    pub devices: Page<Device>,
    /// Whether the window covers its scope at the instant asked.
    pub active: bool,
}

/// The page of the devices in the window's scope (sites, types, groups) that `query` selects,
/// ordered by name, and whether the window is active at `now`.
///
/// # Errors
/// [`LookupError::NotFound`] for a window the tenant does not have; the store's.
pub async fn scope_page(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    window_id: &WindowSlug,
    query: &ListQuery,
    now: Timestamp,
) -> Result<ScopePage, LookupError> {
    let (window, devices) = windows.window_devices(tenant, window_id).await?;
    Ok(ScopePage {
        active: window.definition.is_active(now),
        devices: query.page(devices, |d| d.spec.name.as_str()),
        window,
    })
}

#[cfg(test)]
mod tests {
    use domain::{WindowName, WindowSchedule};
    use ports::MockMaintenanceWindowRepository;
    use time::Duration;

    use super::*;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::now()
            .checked_add(Duration::minutes(minutes))
            .expect("in range")
    }

    /// A window named `name` from `starts` to `ends` minutes from now.
    fn window(name: &str, starts: i64, ends: Option<i64>, enabled: bool) -> MaintenanceWindow {
        let now = Timestamp::now();
        MaintenanceWindow {
            window_id: WindowSlug::parse("mw-00000001").expect("valid"),
            definition: WindowDefinition {
                name: WindowName::parse(name).expect("valid"),
                schedule: WindowSchedule::new(at(starts), ends.map(at)).expect("valid"),
                recurring: None,
                site_ids: None,
                device_types: None,
                group_ids: None,
                enabled,
            },
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
    async fn by_status_the_name_matches_are_read_whole_filtered_at_now_then_paged() {
        let mut windows = MockMaintenanceWindowRepository::new();
        windows
            .expect_list_windows()
            .withf(|_, q| q.limit().is_none() && q.offset() == 0 && q.name_contains() == Some("n"))
            .times(1)
            .returning(|_, _| {
                let all = vec![
                    window("n-active-1", -5, Some(5), true),
                    window("n-scheduled", 5, None, true),
                    window("n-active-2", -5, None, true),
                    window("n-disabled", -5, None, false),
                    window("n-active-3", -5, Some(50), true),
                    window("n-expired", -10, Some(-5), true),
                ];
                Ok(Page {
                    total: 6,
                    items: all,
                })
            });
        let second = ListQuery::new(Some("n"), Some(1), Some(1)).expect("valid");
        let page = list(
            &windows,
            &tenant(),
            &second,
            Some(WindowStatus::Active),
            at(0),
        )
        .await
        .expect("listed");
        assert_eq!(page.total, 3, "the count is of all active matches");
        let names: Vec<&str> = page
            .items
            .iter()
            .map(|w| w.definition.name.as_str())
            .collect();
        assert_eq!(names, ["n-active-2"], "then the page: the second of them");
    }

    #[tokio::test]
    async fn without_a_status_the_store_pages() {
        let mut windows = MockMaintenanceWindowRepository::new();
        let query = ListQuery::new(None, Some(2), Some(4)).expect("valid");
        let wanted = query.clone();
        windows
            .expect_list_windows()
            .withf(move |_, q| *q == wanted)
            .times(1)
            .returning(|_, _| {
                Ok(Page {
                    total: 9,
                    items: Vec::new(),
                })
            });
        let page = list(&windows, &tenant(), &query, None, at(0))
            .await
            .expect("listed");
        assert_eq!(page.total, 9);
    }

    #[tokio::test]
    async fn a_generated_window_slug_that_collides_is_drawn_again_up_to_three_times() {
        let mut windows = MockMaintenanceWindowRepository::new();
        windows
            .expect_create_window()
            .times(3)
            .returning(|_, _, new| Err(CreateWindowError::WindowIdTaken(new.window_id)));
        let definition = window("w", 0, None, true).definition;
        let answer = create(
            &windows,
            &tenant(),
            &Actor::parse("a").expect("valid"),
            definition,
        )
        .await;
        assert!(matches!(answer, Err(CreateWindowError::WindowIdTaken(_))));
    }
}
