//! `/api/alerts` and a device's alert history: reads for every role; acknowledgements for
//! operators, admins and owners.

use actix_web::{web, HttpResponse};
use domain::alerting::AckRequestError;
use domain::{AlertState, Timestamp};
use ports::{AckAlertError, AlertListError, AlertQuery, AlertRepository, LookupError};
use uuid::Uuid;

use crate::api::alerts::{
    group_not_found, list_view, AckBody, AlertDetailView, AlertEventView, AlertFilterParams,
    AlertListView, AlertPageParams, AlertStateParams, AlertView,
};
use crate::auth::{AlertWrites, Caller, Writer};
use crate::error::{ApiError, ErrorBody};
use crate::json::JsonBody;

fn alert_not_found() -> ApiError {
    ApiError::not_found("Alert not found")
}

/// A path segment that is no UUID names no alert.
fn alert_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| alert_not_found())
}

fn device_not_found(raw: &str) -> ApiError {
    ApiError::not_found(format!("Device {raw} not found"))
}

fn ack_error(e: AckAlertError) -> ApiError {
    match e {
        AckAlertError::NotFound => alert_not_found(),
        AckAlertError::Resolved => ApiError::conflict("Alert is resolved"),
        AckAlertError::Store(e) => e.into(),
    }
}

fn ack_request_error(e: &AckRequestError) -> ApiError {
    let reason = match e {
        AckRequestError::UntilMissing => "required when mode is until",
        AckRequestError::UntilNotAllowed => "only allowed when mode is until",
        AckRequestError::UntilPast => "must be in the future",
    };
    ApiError::invalid(e.field(), reason)
}

/// The tenant's alerts, newest `opened_at` first (ties: greater id first), a page at a time.
#[utoipa::path(
    get, path = "/api/alerts", tag = "alerts", operation_id = "list_alerts",
    params(AlertStateParams, AlertFilterParams, AlertPageParams),
    responses(
        (status = 200, description = "A page of alerts; `next_cursor` continues it", body = AlertListView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "`group_id` or `device_id` names no group or device of the tenant (`Group … not found`, `Device … not found`)", body = ErrorBody),
        (status = 422, description = "Bad `state`, `severity`, `kind`, `device_id`, `suppressed`, `acknowledged`, `limit` or `cursor`; `detail` names it", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    alerts: web::Data<dyn AlertRepository>,
    state: web::Query<AlertStateParams>,
    filter: web::Query<AlertFilterParams>,
    paging: web::Query<AlertPageParams>,
) -> Result<HttpResponse, ApiError> {
    let state = state.parse(Some(AlertState::Open))?;
    let mut wanted = filter.parse()?;
    wanted.state = state;
    let (limit, after) = paging.parse()?;
    let query = AlertQuery {
        filter: wanted,
        limit,
        after,
    };
    let page = app::alerts::list(alerts.as_ref(), &caller.tenant, &query)
        .await
        .map_err(|e| match e {
            AlertListError::GroupNotFound => group_not_found(filter.group_id().unwrap_or_default()),
            AlertListError::DeviceNotFound => {
                device_not_found(filter.device_id().unwrap_or_default())
            }
            AlertListError::Store(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok().json(list_view(&page)))
}

/// One alert with all its events, oldest first.
#[utoipa::path(
    get, path = "/api/alerts/{id}", tag = "alerts", operation_id = "get_alert",
    params(("id" = Uuid, Path, description = "Alert UUID")),
    responses(
        (status = 200, description = "The alert and its events", body = AlertDetailView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "`Alert not found`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    caller: Caller,
    alerts: web::Data<dyn AlertRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (alert, events) = app::alerts::get(alerts.as_ref(), &caller.tenant, alert_id(&path)?)
        .await
        .map_err(|e| match e {
            LookupError::NotFound => alert_not_found(),
            LookupError::Store(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok().json(AlertDetailView {
        alert: AlertView::from(&alert),
        events: events.iter().map(AlertEventView::from).collect(),
    }))
}

/// Acknowledge an open alert (operator, admin or owner); a new acknowledgement replaces an
/// older one. It ends by itself as its mode says: when the alert resolves (`until_resolved`),
/// also when it escalates (`until_escalated`), or at `until` (`until`), each time with an
/// `unacknowledged` event.
#[utoipa::path(
    post, path = "/api/alerts/{id}/ack", tag = "alerts", operation_id = "acknowledge_alert",
    params(("id" = Uuid, Path, description = "Alert UUID")),
    request_body = AckBody,
    responses(
        (status = 200, description = "The acknowledged alert", body = AlertView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: operator, admin, owner`", body = ErrorBody),
        (status = 404, description = "`Alert not found`", body = ErrorBody),
        (status = 409, description = "`Alert is resolved`", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid body: bad `mode`, `until` missing for mode `until` (or given for another mode, or not in the future), `note` over 500 characters; `detail` names the field", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ack(
    caller: Writer<AlertWrites>,
    alerts: web::Data<dyn AlertRepository>,
    path: web::Path<String>,
    body: JsonBody<AckBody>,
) -> Result<HttpResponse, ApiError> {
    let id = alert_id(&path)?;
    let request = body.0.try_into_request()?;
    let alert = app::alerts::acknowledge(
        alerts.as_ref(),
        &caller.tenant,
        &caller.actor,
        id,
        request,
        Timestamp::now(),
    )
    .await
    .map_err(|e| match e {
        app::alerts::AcknowledgeError::Invalid(e) => ack_request_error(&e),
        app::alerts::AcknowledgeError::Alert(e) => ack_error(e),
    })?;
    Ok(HttpResponse::Ok().json(AlertView::from(&alert)))
}

/// Withdraw an open alert's acknowledgement (operator, admin or owner), recording
/// `unacknowledged`; without one, the alert is answered unchanged.
#[utoipa::path(
    delete, path = "/api/alerts/{id}/ack", tag = "alerts", operation_id = "unacknowledge_alert",
    params(("id" = Uuid, Path, description = "Alert UUID")),
    responses(
        (status = 200, description = "The alert, without acknowledgement", body = AlertView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: operator, admin, owner`", body = ErrorBody),
        (status = 404, description = "`Alert not found`", body = ErrorBody),
        (status = 409, description = "`Alert is resolved`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn unack(
    caller: Writer<AlertWrites>,
    alerts: web::Data<dyn AlertRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let alert = app::alerts::unacknowledge(
        alerts.as_ref(),
        &caller.tenant,
        alert_id(&path)?,
        Timestamp::now(),
    )
    .await
    .map_err(ack_error)?;
    Ok(HttpResponse::Ok().json(AlertView::from(&alert)))
}

/// A device's alert history: its alerts in every state (unless `state` narrows it), newest
/// `opened_at` first, a page at a time.
#[utoipa::path(
    get, path = "/api/devices/{id}/alerts", tag = "alerts", operation_id = "list_device_alerts",
    params(("id" = Uuid, Path, description = "Device UUID"), AlertStateParams, AlertPageParams),
    responses(
        (status = 200, description = "A page of the device's alerts; `next_cursor` continues it", body = AlertListView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 422, description = "Bad `state`, `limit` or `cursor`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn device_history(
    caller: Caller,
    alerts: web::Data<dyn AlertRepository>,
    path: web::Path<String>,
    state: web::Query<AlertStateParams>,
    paging: web::Query<AlertPageParams>,
) -> Result<HttpResponse, ApiError> {
    let state = state.parse(None)?;
    let (limit, after) = paging.parse()?;
    let device = Uuid::parse_str(&path).map_err(|_| device_not_found(&path))?;
    let page =
        app::alerts::device_history(alerts.as_ref(), &caller.tenant, device, state, limit, after)
            .await
            .map_err(|e| match e {
                AlertListError::DeviceNotFound | AlertListError::GroupNotFound => {
                    device_not_found(&path)
                }
                AlertListError::Store(e) => e.into(),
            })?;
    Ok(HttpResponse::Ok().json(list_view(&page)))
}
