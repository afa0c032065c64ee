//! `/customer/maintenance-windows` (seed 001): every role of the tenant reads; operators, admins
//! and owners write.

use actix_web::{web, HttpResponse};
use domain::{Timestamp, WindowSlug, WindowStatus};
use ports::{
    AlertRepository, CreateWindowError, LookupError, MaintenanceWindowRepository, UpdateWindowError,
};

use crate::api::alerts::WindowReportView;
use app::windows::WindowWriteError;

use crate::api::customer_windows::{
    DryRunParams, MaintenanceWindowCreateBody, MaintenanceWindowDeletedView,
    MaintenanceWindowListView, MaintenanceWindowUpdateBody, MaintenanceWindowView,
    OccurrenceParams, OccurrenceView, WindowDeviceView, WindowDevicesView, WindowDryRunView,
    WindowListParams, WindowOccurrencesView, WindowWriteAnswer,
};
use crate::api::params::ListParams;
use crate::auth::{Caller, WindowWrites, Writer};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::Idempotency;
use crate::json::JsonBody;

fn window_not_found() -> ApiError {
    ApiError::not_found("Window not found")
}

/// A slug that cannot be valid names no window.
fn slug(raw: &str) -> Result<WindowSlug, ApiError> {
    WindowSlug::parse(raw).map_err(|_| window_not_found())
}

fn lookup_error(e: LookupError) -> ApiError {
    match e {
        LookupError::NotFound => window_not_found(),
        LookupError::Store(e) => e.into(),
    }
}

/// List the tenant's maintenance windows, latest start first, each with its status now.
#[utoipa::path(
    get, path = "/customer/maintenance-windows", tag = "customer: maintenance windows",
    operation_id = "list_maintenance_windows",
    params(WindowListParams, ListParams),
    responses(
        (status = 200, description = "The tenant's windows", body = MaintenanceWindowListView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Unknown `status`; bad `name`, `limit` or `offset`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    params: web::Query<WindowListParams>,
    list: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let wanted = params
        .status
        .as_deref()
        .map(WindowStatus::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("status", e))?;
    let query = list.query()?;
    let now = Timestamp::now();
    let page = app::windows::list(windows.as_ref(), &caller.tenant, &query, wanted, now).await?;
    let windows: Vec<MaintenanceWindowView> = page
        .items
        .iter()
        .map(|w| MaintenanceWindowView::at(w, now))
        .collect();
    Ok(HttpResponse::Ok().json(MaintenanceWindowListView {
        total: page.total,
        windows,
    }))
}

/// When the window applies next: its occurrences that end after `from`, in UTC and time order.
/// A window without `recurring` has at most one; a disabled window has none.
#[utoipa::path(
    get, path = "/customer/maintenance-windows/{window_id}/occurrences", tag = "customer: maintenance windows",
    operation_id = "list_maintenance_window_occurrences",
    params(("window_id" = String, Path, description = "The window's slug"), OccurrenceParams),
    responses(
        (status = 200, description = "The occurrences", body = WindowOccurrencesView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "`Window not found`", body = ErrorBody),
        (status = 422, description = "Bad `from` or `limit`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn occurrences(
    caller: Caller,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    path: web::Path<String>,
    params: web::Query<OccurrenceParams>,
) -> Result<HttpResponse, ApiError> {
    let window_id = slug(&path)?;
    let (from, limit) = params.parse(Timestamp::now())?;
    let window = windows
        .get_window(&caller.tenant, &window_id)
        .await
        .map_err(lookup_error)?;
    let occurrences = window
        .definition
        .occurrences(from, limit)
        .iter()
        .map(|o| OccurrenceView {
            starts_at: o.starts_at.get(),
            ends_at: o.ends_at.map(Timestamp::get),
        })
        .collect();
    Ok(HttpResponse::Ok().json(WindowOccurrencesView {
        window_id: window_id.as_str().to_owned(),
        occurrences,
    }))
}

/// The devices in the window's scope (sites, types, groups), each saying whether the window
/// covers it now.
#[utoipa::path(
    get, path = "/customer/maintenance-windows/{window_id}/devices", tag = "customer: maintenance windows",
    operation_id = "list_maintenance_window_devices",
    params(("window_id" = String, Path, description = "The window's slug"), ListParams),
    responses(
        (status = 200, description = "The devices in scope", body = WindowDevicesView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Bad `name`, `limit` or `offset`", body = ErrorBody),
        (status = 404, description = "`Window not found`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn devices(
    caller: Caller,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    path: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let window_id = slug(&path)?;
    let query = params.query()?;
    let scope = app::windows::scope_page(
        windows.as_ref(),
        &caller.tenant,
        &window_id,
        &query,
        Timestamp::now(),
    )
    .await
    .map_err(lookup_error)?;
    let devices: Vec<WindowDeviceView> =
        crate::routes::device_views(windows.as_ref(), &caller.tenant, &scope.devices.items)
            .await?
            .into_iter()
            .map(|device| WindowDeviceView {
                device,
                active_now: scope.active,
            })
            .collect();
    Ok(HttpResponse::Ok().json(WindowDevicesView {
        window_id: window_id.as_str().to_owned(),
        total: scope.devices.total,
        devices,
    }))
}

/// Create a maintenance window; its id (`mw-` + 8 hex digits) is generated. A tenant may keep
/// at most 1,000 windows (whatever their status: delete ended ones to make room). Every group
/// `group_ids` names must exist. With `dry_run=true`, nothing is stored (no window, no event,
/// no `Idempotency-Key` record): the answer is what the create would do.
#[utoipa::path(
    post, path = "/customer/maintenance-windows", tag = "customer: maintenance windows",
    operation_id = "create_maintenance_window",
    request_body = MaintenanceWindowCreateBody,
    params(
        DryRunParams,
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = r"^[!-~]([ -~]*[!-~])?$",
        description = "Makes the create safe to retry: a retry with the same key and the same body (byte for byte) within 24 hours gets the first answer and creates nothing; the same key with another body is a 422, and while the first request runs a 409. Per tenant; 1 to 255 printable ASCII characters. Ignored by a dry run."),
    ),
    responses(
        (status = 200, description = "The created window; with `dry_run=true`, a `MaintenanceWindowDryRun`: the window as it would be, the devices in its scope and warnings", body = WindowWriteAnswer),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: operator, admin, owner`", body = ErrorBody),
        (status = 409, description = "`A request with this Idempotency-Key is in progress` (a retry sent while the first runs)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid window, `detail` naming the field (`group_ids: names a group that does not exist: <slug>` for an unknown group, on a real create); or the tenant already has 1,000 windows (`windows: a tenant may have at most 1000 maintenance windows`); or `Idempotency-Key: …`, a malformed key or one sent before with another body; or a `dry_run` that is neither `true` nor `false`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    caller: Writer<WindowWrites>,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    idempotency: Idempotency,
    params: web::Query<DryRunParams>,
    body: JsonBody<MaintenanceWindowCreateBody>,
) -> Result<HttpResponse, ApiError> {
    if params.requested()? {
        let definition = body.0.try_into_domain()?;
        let now = Timestamp::now();
        let run = app::windows::dry_run_create(
            windows.as_ref(),
            &caller.tenant,
            &caller.actor,
            definition,
            now,
        )
        .await
        .map_err(|e| match e {
            e @ CreateWindowError::TooMany(_) => ApiError::invalid("windows", e),
            CreateWindowError::WindowIdTaken(_) => {
                ApiError::internal(anyhow::anyhow!("a dry run drew a taken window id"))
            }
            CreateWindowError::Store(e) => e.into(),
        })?;
        return dry_run_answer(windows.as_ref(), &caller.tenant, &run, now).await;
    }
    idempotency
        .run(&caller.tenant, async {
            let definition = body.0.try_into_domain()?;
            let window =
                app::windows::create(windows.as_ref(), &caller.tenant, &caller.actor, definition)
                    .await
                    .map_err(|e| match e {
                        WindowWriteError::UnknownGroup(_) => ApiError::invalid("group_ids", e),
                        WindowWriteError::Write(CreateWindowError::WindowIdTaken(id)) => {
                            ApiError::internal(anyhow::anyhow!(
                                "every generated window id collided, the last {}",
                                id.as_str()
                            ))
                        }
                        WindowWriteError::Write(e @ CreateWindowError::TooMany(_)) => {
                            ApiError::invalid("windows", e)
                        }
                        WindowWriteError::Write(CreateWindowError::Store(e)) => e.into(),
                    })?;
            Ok(HttpResponse::Ok().json(MaintenanceWindowView::from(&window)))
        })
        .await
}

/// The answer of a dry run at `now`, its devices shown as device answers show them.
async fn dry_run_answer(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &domain::TenantId,
    run: &app::windows::DryRun,
    now: Timestamp,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(WindowDryRunView {
        window: MaintenanceWindowView::at(&run.window, now),
        devices_in_scope: run.scope.in_scope,
        devices: crate::routes::device_views(windows, tenant, &run.scope.devices).await?,
        warnings: run.warnings.iter().map(ToString::to_string).collect(),
    }))
}

/// Read one maintenance window.
#[utoipa::path(
    get, path = "/customer/maintenance-windows/{window_id}", tag = "customer: maintenance windows",
    operation_id = "get_maintenance_window",
    params(("window_id" = String, Path, description = "The window's slug")),
    responses(
        (status = 200, description = "The window", body = MaintenanceWindowView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "`Window not found`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    caller: Caller,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let window = windows
        .get_window(&caller.tenant, &slug(&path)?)
        .await
        .map_err(lookup_error)?;
    Ok(HttpResponse::Ok().json(MaintenanceWindowView::from(&window)))
}

/// Change a window. Absent fields stay; `null` clears `ends_at`, `recurring`, `site_ids` and
/// `device_types`. The merged window must still be valid, and every group the body's
/// `group_ids` names must exist. With `dry_run=true`, nothing is stored: the answer is what the
/// change would do.
#[utoipa::path(
    patch, path = "/customer/maintenance-windows/{window_id}", tag = "customer: maintenance windows",
    operation_id = "update_maintenance_window",
    params(("window_id" = String, Path, description = "The window's slug"), DryRunParams),
    request_body = MaintenanceWindowUpdateBody,
    responses(
        (status = 200, description = "The updated window; with `dry_run=true`, a `MaintenanceWindowDryRun` (and no `ETag`: nothing changed)", body = WindowWriteAnswer),
        (status = 400, description = "`No fields to update`", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: operator, admin, owner`", body = ErrorBody),
        (status = 404, description = "`Window not found`", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid window; `detail` names the field (`group_ids: names a group that does not exist: <slug>` for an unknown group, on a real change); or a `dry_run` that is neither `true` nor `false`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    caller: Writer<WindowWrites>,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    path: web::Path<String>,
    params: web::Query<DryRunParams>,
    body: JsonBody<MaintenanceWindowUpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let dry_run = params.requested()?;
    let changes = body.0.try_into_domain()?;
    let window_id = slug(&path)?;
    let update_error = |e: UpdateWindowError| match e {
        UpdateWindowError::NotFound => window_not_found(),
        UpdateWindowError::Invalid(e) => ApiError::invalid(&e.field(), e),
        UpdateWindowError::Store(e) => e.into(),
    };
    if dry_run {
        let now = Timestamp::now();
        let run = app::windows::dry_run_update(
            windows.as_ref(),
            &caller.tenant,
            &caller.actor,
            &window_id,
            changes,
            now,
        )
        .await
        .map_err(update_error)?;
        return dry_run_answer(windows.as_ref(), &caller.tenant, &run, now).await;
    }
    let window = app::windows::update(
        windows.as_ref(),
        &caller.tenant,
        &caller.actor,
        &window_id,
        changes,
    )
    .await
    .map_err(|e| match e {
        WindowWriteError::UnknownGroup(_) => ApiError::invalid("group_ids", e),
        WindowWriteError::Write(e) => update_error(e),
    })?;
    Ok(HttpResponse::Ok().json(MaintenanceWindowView::from(&window)))
}

/// Delete a maintenance window.
#[utoipa::path(
    delete, path = "/customer/maintenance-windows/{window_id}", tag = "customer: maintenance windows",
    operation_id = "delete_maintenance_window",
    params(("window_id" = String, Path, description = "The window's slug")),
    responses(
        (status = 200, description = "Deleted", body = MaintenanceWindowDeletedView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: operator, admin, owner`", body = ErrorBody),
        (status = 404, description = "`Window not found`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    caller: Writer<WindowWrites>,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    path: web::Path<String>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // The resource's writes declare `dry_run` for PATCH; a delete takes no parameter at all,
    // so `DELETE …?dry_run=true` is refused rather than carried out.
    crate::query::QueryKeys::none().check(request.query_string())?;
    let window_id = slug(&path)?;
    windows
        .delete_window(&caller.tenant, &window_id)
        .await
        .map_err(lookup_error)?;
    Ok(HttpResponse::Ok().json(MaintenanceWindowDeletedView {
        window_id: window_id.as_str().to_owned(),
        deleted: true,
    }))
}

/// What the window's latest started occurrence did: its times (`ends_at` null while it runs),
/// the alerts with an event it muted, and which of them were still open when it ended. A
/// disabled window's occurrence under way ended when the window was last changed.
#[utoipa::path(
    get, path = "/customer/maintenance-windows/{window_id}/report", tag = "customer: maintenance windows",
    operation_id = "get_maintenance_window_report",
    params(("window_id" = String, Path, description = "The window's slug")),
    responses(
        (status = 200, description = "The report", body = WindowReportView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "`Window not found`, or `No occurrence has started`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn report(
    caller: Caller,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    alerts: web::Data<dyn AlertRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let window_id = slug(&path)?;
    let report = app::windows::report(
        windows.as_ref(),
        alerts.as_ref(),
        &caller.tenant,
        &window_id,
        Timestamp::now(),
    )
    .await
    .map_err(|e| match e {
        app::windows::ReportError::WindowNotFound => window_not_found(),
        e @ app::windows::ReportError::NotStarted => ApiError::not_found(e.to_string()),
        app::windows::ReportError::Store(e) => e.into(),
    })?;
    Ok(HttpResponse::Ok().json(WindowReportView::from(&report)))
}
