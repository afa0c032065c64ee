//! Maintenance windows: creating one under a generated slug, and listing them by status now.

use domain::window::{scope_warnings, SCOPE_PREVIEW_MAX, WINDOWS_PER_TENANT_MAX};
use domain::{
    Actor, Alert, Device, GroupSlug, ListQuery, MaintenanceWindow, NewMaintenanceWindow,
    Occurrence, Page, ScopeWarning, TenantId, Timestamp, WindowChanges, WindowDefinition,
    WindowReport, WindowSlug, WindowStatus,
};
use ports::{
    AlertRepository, CreateWindowError, LookupError, MaintenanceWindowRepository, ScopePreview,
    StoreError, UpdateWindowError,
};
use thiserror::Error;
use uuid::Uuid;

use crate::with_generated_slug;

/// Errors of a window write that names groups: the write's own, or a group that does not exist.
#[derive(Debug, Error)]
pub enum WindowWriteError<E> {
    /// `group_ids` names a slug the tenant has no group for.
    #[error("{}", ScopeWarning::UnknownGroup(.0.clone()))]
    UnknownGroup(GroupSlug),
    #[error(transparent)]
    Write(E),
}

/// Refuses `slugs` when one names no group of the tenant (the first such, in the order given).
/// An empty or absent list asks the store nothing.
async fn known_groups<E: From<StoreError>>(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    slugs: Option<&[GroupSlug]>,
) -> Result<(), WindowWriteError<E>> {
    let Some(slugs) = slugs.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let unknown = windows
        .unknown_groups(tenant, slugs)
        .await
        .map_err(|e| WindowWriteError::Write(E::from(e)))?;
    match unknown.into_iter().next() {
        Some(slug) => Err(WindowWriteError::UnknownGroup(slug)),
        None => Ok(()),
    }
}

/// Creates the window under a generated slug (`mw-` and 8 random hex digits), drawn again while
/// it collides with a stored one. Every group `group_ids` names must exist (checked just
/// before the write: a group deleted afterwards leaves its slug in the window, as today).
///
/// # Errors
/// [`WindowWriteError::UnknownGroup`]; the store's [`CreateWindowError`], `WindowIdTaken` when
/// every generated slug collided.
pub async fn create(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    actor: &Actor,
    definition: WindowDefinition,
) -> Result<MaintenanceWindow, WindowWriteError<CreateWindowError>> {
    known_groups(windows, tenant, definition.group_ids.as_deref()).await?;
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
    .map_err(WindowWriteError::Write)
}

/// Merges `changes` into the stored window. Groups that the changes name must exist; those the
/// window already names are not checked again.
///
/// # Errors
/// [`WindowWriteError::UnknownGroup`]; the store's [`UpdateWindowError`].
pub async fn update(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    actor: &Actor,
    window_id: &WindowSlug,
    changes: WindowChanges,
) -> Result<MaintenanceWindow, WindowWriteError<UpdateWindowError>> {
    let named = changes.group_ids.as_ref().and_then(Option::as_deref);
    known_groups(windows, tenant, named).await?;
    windows
        .update_window(tenant, actor, window_id, changes)
        .await
        .map_err(WindowWriteError::Write)
}

/// What a write would make of a window, without making it: the window as it would be stored,
/// what its scope holds now, and what is worth a warning.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRun {
    pub window: MaintenanceWindow,
    pub scope: ScopePreview,
    pub warnings: Vec<ScopeWarning>,
}

async fn dry_run(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    window: MaintenanceWindow,
) -> Result<DryRun, StoreError> {
    let scope = windows
        .preview_scope(tenant, &window.definition, SCOPE_PREVIEW_MAX)
        .await?;
    let warnings = scope_warnings(scope.in_scope, scope.tenant_devices, &scope.unknown_groups);
    Ok(DryRun {
        window,
        scope,
        warnings,
    })
}

/// [`create`] as a dry run at `now`: nothing is stored. The window gets a freshly drawn slug
/// (the real create draws its own). A tenant at its window cap is refused as the create would
/// refuse it.
///
/// # Errors
/// [`CreateWindowError::TooMany`]; the store's.
pub async fn dry_run_create(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    actor: &Actor,
    definition: WindowDefinition,
    now: Timestamp,
) -> Result<DryRun, CreateWindowError> {
    let one = ListQuery::new(None, Some(1), None).unwrap_or_else(|_| ListQuery::all());
    let kept = windows.list_windows(tenant, &one).await?.total;
    if kept >= WINDOWS_PER_TENANT_MAX as u64 {
        return Err(CreateWindowError::TooMany(WINDOWS_PER_TENANT_MAX));
    }
    let window = MaintenanceWindow {
        window_id: WindowSlug::generate(crate::random_u32()),
        definition,
        created_at: now,
        updated_at: now,
        created_by: actor.clone(),
        updated_by: actor.clone(),
    };
    Ok(dry_run(windows, tenant, window).await?)
}

/// [`update`] as a dry run at `now`: the stored window with `changes` merged and validated as
/// the write would, and nothing stored.
///
/// # Errors
/// [`UpdateWindowError::NotFound`], [`UpdateWindowError::Invalid`]; the store's.
pub async fn dry_run_update(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    actor: &Actor,
    window_id: &WindowSlug,
    changes: WindowChanges,
    now: Timestamp,
) -> Result<DryRun, UpdateWindowError> {
    let stored = windows
        .get_window(tenant, window_id)
        .await
        .map_err(|e| match e {
            LookupError::NotFound => UpdateWindowError::NotFound,
            LookupError::Store(e) => UpdateWindowError::Store(e),
        })?;
    let window = MaintenanceWindow {
        definition: stored.definition.apply(changes)?,
        updated_at: now.max(stored.updated_at),
        updated_by: actor.clone(),
        ..stored
    };
    Ok(dry_run(windows, tenant, window).await?)
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

/// Errors of [`report`].
#[derive(Debug, Error)]
pub enum ReportError {
    #[error("window not found")]
    WindowNotFound,
    /// No occurrence of the window has started yet.
    #[error("No occurrence has started")]
    NotStarted,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the window's latest started occurrence did, as seen at `now`: its times (`ends_at`
/// `None` while it runs), the alerts it muted (an event recorded as suppressed by it during the
/// occurrence), and, once it is over, which of them were still open at its end.
///
/// A disabled window runs nothing: an occurrence it was disabled during ended when the window
/// was last changed (the disabling), and not before the occurrence began.
///
/// # Errors
/// [`ReportError::WindowNotFound`] for a window the tenant does not have,
/// [`ReportError::NotStarted`] when none of its occurrences has started; the store's.
pub async fn report(
    windows: &dyn MaintenanceWindowRepository,
    alerts: &dyn AlertRepository,
    tenant: &TenantId,
    window_id: &WindowSlug,
    now: Timestamp,
) -> Result<WindowReport, ReportError> {
    let window = windows
        .get_window(tenant, window_id)
        .await
        .map_err(|e| match e {
            LookupError::NotFound => ReportError::WindowNotFound,
            LookupError::Store(e) => ReportError::Store(e),
        })?;
    let scheduled = window
        .definition
        .latest_started(now)
        .ok_or(ReportError::NotStarted)?;
    let occurrence = Occurrence {
        starts_at: scheduled.starts_at,
        ends_at: ended_at(&window, scheduled, now),
    };
    let muted = alerts
        .muted_by_window(tenant, window_id, occurrence.starts_at, occurrence.ends_at)
        .await?;
    let still_open_at_end = occurrence
        .ends_at
        .map(|end| still_open_at(&muted, end))
        .unwrap_or_default();
    Ok(WindowReport {
        window_id: window_id.clone(),
        occurrence,
        alerts: muted,
        still_open_at_end,
    })
}

/// When the occurrence ended, `None` while it runs.
fn ended_at(
    window: &MaintenanceWindow,
    scheduled: Occurrence,
    now: Timestamp,
) -> Option<Timestamp> {
    let over = scheduled.ends_at.filter(|end| *end <= now);
    if window.definition.enabled {
        return over;
    }
    // Disabled: the schedule's end if it came first, else the disabling (clamped to the slot).
    let disabled = window.updated_at.max(scheduled.starts_at).min(now);
    Some(over.map_or(disabled, |end| end.min(disabled)))
}

/// The alerts open at `end`: opened before it, and not resolved by then.
fn still_open_at(alerts: &[Alert], end: Timestamp) -> Vec<Uuid> {
    alerts
        .iter()
        .map(|a| &a.record)
        .filter(|r| r.opened_at < end && r.resolved_at.is_none_or(|resolved| resolved > end))
        .map(|r| r.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use domain::{
        AlertKind, AlertRecord, AlertState, DeviceName, Severity, WindowName, WindowSchedule,
    };
    use ports::{MockAlertRepository, MockMaintenanceWindowRepository};
    use time::Duration;

    use super::*;

    /// `minutes` from one instant near now, the same for the whole test.
    fn at(minutes: i64) -> Timestamp {
        static NOW: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
        NOW.get_or_init(Timestamp::now)
            .checked_add(Duration::minutes(minutes))
            .expect("in range")
    }

    /// A window named `name` from `starts` to `ends` minutes from now.
    fn window(name: &str, starts: i64, ends: Option<i64>, enabled: bool) -> MaintenanceWindow {
        let now = Timestamp::now();
        MaintenanceWindow {
            window_id: WindowSlug::parse("mw-00000001").expect("valid"),
            definition: WindowDefinition {
                labels: None,
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
        assert!(matches!(
            answer,
            Err(WindowWriteError::Write(CreateWindowError::WindowIdTaken(_)))
        ));
    }

    /// An alert opened `opened` minutes from now, resolved at `resolved` when given.
    fn alert(n: u128, opened: i64, resolved: Option<i64>) -> Alert {
        Alert {
            record: AlertRecord {
                id: Uuid::from_u128(n),
                device_id: Uuid::from_u128(100 + n),
                kind: AlertKind::Threshold,
                severity: Severity::Warning,
                peak_severity: Severity::Warning,
                state: if resolved.is_some() {
                    AlertState::Resolved
                } else {
                    AlertState::Open
                },
                opened_at: at(opened),
                resolved_at: resolved.map(at),
                last_value: Some(35.0),
                suppressed_by: Vec::new(),
                acknowledgement: None,
            },
            device_name: DeviceName::parse(&format!("d{n}")).expect("valid"),
        }
    }

    fn windows_returning(window: MaintenanceWindow) -> MockMaintenanceWindowRepository {
        let mut windows = MockMaintenanceWindowRepository::new();
        windows
            .expect_get_window()
            .times(1)
            .returning(move |_, _| Ok(window.clone()));
        windows
    }

    fn slug() -> WindowSlug {
        WindowSlug::parse("mw-00000001").expect("valid")
    }

    #[tokio::test]
    async fn a_report_of_a_running_occurrence_has_no_end_and_nothing_still_open_at_it() {
        let now = at(0);
        let window = window("w", -60, None, true);
        let starts = window.definition.schedule.starts_at();
        let mut alerts = MockAlertRepository::new();
        alerts
            .expect_muted_by_window()
            .withf(move |_, id, from, until| *id == slug() && *from == starts && until.is_none())
            .times(1)
            .returning(|_, _, _, _| Ok(vec![alert(1, -30, None)]));
        let report = report(&windows_returning(window), &alerts, &tenant(), &slug(), now)
            .await
            .expect("reported");
        assert_eq!(report.occurrence.starts_at, starts);
        assert_eq!(report.occurrence.ends_at, None);
        assert_eq!(report.alerts.len(), 1);
        assert!(report.still_open_at_end.is_empty());
    }

    #[tokio::test]
    async fn a_report_of_an_ended_occurrence_names_the_alerts_open_at_its_end() {
        let window = window("w", -60, Some(-10), true);
        let (starts, ends) = (
            window.definition.schedule.starts_at(),
            window.definition.schedule.ends_at(),
        );
        let mut alerts = MockAlertRepository::new();
        alerts
            .expect_muted_by_window()
            .withf(move |_, _, from, until| *from == starts && *until == ends)
            .times(1)
            .returning(|_, _, _, _| {
                Ok(vec![
                    alert(1, -50, None),
                    alert(2, -50, Some(-20)),
                    alert(3, -40, Some(-5)),
                    alert(4, -50, Some(-10)),
                ])
            });
        let report = report(
            &windows_returning(window),
            &alerts,
            &tenant(),
            &slug(),
            at(0),
        )
        .await
        .expect("reported");
        assert_eq!(report.occurrence.ends_at, ends);
        assert_eq!(
            report.still_open_at_end,
            [Uuid::from_u128(1), Uuid::from_u128(3)],
            "resolved before or at the end: not open at it"
        );
    }

    #[tokio::test]
    async fn a_window_disabled_during_its_occurrence_ended_when_it_was_changed() {
        let mut window = window("w", -60, None, false);
        window.updated_at = at(-15);
        let mut alerts = MockAlertRepository::new();
        alerts
            .expect_muted_by_window()
            .withf(|_, _, _, until| until.is_some())
            .times(1)
            .returning(|_, _, _, _| Ok(vec![alert(1, -30, None)]));
        let report = report(
            &windows_returning(window),
            &alerts,
            &tenant(),
            &slug(),
            at(0),
        )
        .await
        .expect("reported");
        assert_eq!(report.occurrence.ends_at, Some(at(-15)));
        assert_eq!(report.still_open_at_end, [Uuid::from_u128(1)]);
    }

    #[tokio::test]
    async fn no_report_before_the_first_occurrence_or_of_an_unknown_window() {
        let mut alerts = MockAlertRepository::new();
        alerts.expect_muted_by_window().never();
        let future = windows_returning(window("w", 10, None, true));
        assert!(matches!(
            report(&future, &alerts, &tenant(), &slug(), at(0)).await,
            Err(ReportError::NotStarted)
        ));
        let mut unknown = MockMaintenanceWindowRepository::new();
        unknown
            .expect_get_window()
            .returning(|_, _| Err(LookupError::NotFound));
        assert!(matches!(
            report(&unknown, &alerts, &tenant(), &slug(), at(0)).await,
            Err(ReportError::WindowNotFound)
        ));
    }

    fn grp(s: &str) -> GroupSlug {
        GroupSlug::parse(s).expect("valid")
    }

    #[tokio::test]
    async fn a_change_naming_a_group_that_does_not_exist_is_refused_before_any_write() {
        let mut windows = MockMaintenanceWindowRepository::new();
        windows
            .expect_unknown_groups()
            .withf(|_, slugs| slugs == [grp("grp-a"), grp("grp-b")])
            .times(1)
            .returning(|_, _| Ok(vec![grp("grp-b")]));
        windows.expect_update_window().never();
        let changes = WindowChanges {
            group_ids: Some(Some(vec![grp("grp-a"), grp("grp-b")])),
            ..WindowChanges::default()
        };
        let answer = update(
            &windows,
            &tenant(),
            &Actor::parse("a").expect("valid"),
            &slug(),
            changes,
        )
        .await;
        let Err(e @ WindowWriteError::UnknownGroup(_)) = answer else {
            panic!("refused")
        };
        assert_eq!(e.to_string(), "names a group that does not exist: grp-b");
    }

    #[tokio::test]
    async fn changes_that_name_no_group_ask_nothing_about_groups() {
        let mut windows = MockMaintenanceWindowRepository::new();
        windows.expect_unknown_groups().never();
        windows
            .expect_update_window()
            .times(2)
            .returning(|_, _, _, _| Ok(window("w", 0, None, true)));
        for group_ids in [None, Some(None)] {
            let changes = WindowChanges {
                group_ids,
                enabled: Some(true),
                ..WindowChanges::default()
            };
            update(
                &windows,
                &tenant(),
                &Actor::parse("a").expect("valid"),
                &slug(),
                changes,
            )
            .await
            .expect("updated");
        }
    }

    #[tokio::test]
    async fn a_dry_run_update_previews_the_merged_window_and_writes_nothing() {
        let mut windows = MockMaintenanceWindowRepository::new();
        windows
            .expect_get_window()
            .times(1)
            .returning(|_, _| Ok(window("w", -5, None, true)));
        windows.expect_update_window().never();
        windows
            .expect_preview_scope()
            .withf(|_, d, limit| !d.enabled && *limit == SCOPE_PREVIEW_MAX)
            .times(1)
            .returning(|_, _, _| {
                Ok(ScopePreview {
                    devices: Vec::new(),
                    in_scope: 3,
                    tenant_devices: 3,
                    unknown_groups: Vec::new(),
                })
            });
        let changes = WindowChanges {
            enabled: Some(false),
            ..WindowChanges::default()
        };
        let bob = Actor::parse("bob").expect("valid");
        let run = dry_run_update(&windows, &tenant(), &bob, &slug(), changes, at(0))
            .await
            .expect("previewed");
        assert!(!run.window.definition.enabled);
        assert_eq!(run.window.updated_by, bob);
        assert_eq!(run.warnings, [ScopeWarning::EveryDevice]);
    }
}
