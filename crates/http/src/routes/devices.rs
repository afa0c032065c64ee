//! `/api/devices`: reads for every role, writes for admins and owners.

use actix_web::{web, HttpResponse};
use domain::{NewDevice, Reading, ReadingBatch, ReadingPoint, ReadingPosition, Timestamp};
use ports::{
    CreateDeviceError, DeviceRepository, IngestError, LookupError, MaintenanceWindowRepository,
    ReadingRepository, UpdateDeviceError,
};
use uuid::Uuid;

use crate::api::buckets::DeviceReadingsAnswer;
use crate::api::customer_windows::{DeviceMaintenanceView, DeviceWindowView};
use crate::api::devices::{
    filter_of, threshold_error, DeviceCreateBody, DeviceFilterParams, DeviceUpdateBody, DeviceView,
};
use crate::api::group_api::GroupListItemView;
use crate::api::params::{instant, ListParams, ReadingsDeleteParams, ReadingsParams};
use crate::api::readings::{
    reading_value, DeviceReadingBody, DeviceReadingStoredView, DeviceReadingsView, ReadingView,
    ReadingsDeletedView,
};
use crate::auth::{Caller, DataWrites, Writer};
use crate::cursor::{Cursor, Scope};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::Idempotency;
use crate::json::JsonBody;
use crate::routes::{
    csv, csv_attachment, device_view, device_views, ndjson, rfc3339, wants_csv, wants_ndjson, Cell,
    TOTAL_COUNT,
};

fn device_not_found(raw: &str) -> ApiError {
    ApiError::not_found(format!("Device {raw} not found"))
}

/// A path segment that is no UUID names no device.
fn device_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| device_not_found(raw))
}

fn name_taken(name: &domain::DeviceName) -> ApiError {
    ApiError::bad_request(format!(
        "Device with name '{}' already exists",
        name.as_str()
    ))
}

fn lookup(raw: &str) -> impl Fn(LookupError) -> ApiError + '_ {
    move |e| match e {
        LookupError::NotFound => device_not_found(raw),
        LookupError::Store(e) => e.into(),
    }
}

/// List the tenant's devices, ordered by name; the filters given all hold (AND).
#[utoipa::path(
    get, path = "/api/devices", tag = "devices", operation_id = "list_devices",
    params(ListParams, DeviceFilterParams),
    responses(
        (status = 200, description = "The tenant's devices", body = Vec<DeviceView>,
            headers(("X-Total-Count" = u64, description = "Number of matching devices"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Bad `name`, `limit` or `offset`; an unknown `status` or `alert_status`, a malformed `label` (or more than 32), a bad `site_id` or `device_type`, or a filter other than `label` given twice; `detail` names the parameter", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    devices: web::Data<dyn DeviceRepository>,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    params: web::Query<ListParams>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = params.query()?;
    let filter = filter_of(request.query_string())?;
    let page = devices
        .list_devices(&caller.tenant, &filter, &query)
        .await?;
    let views = device_views(windows.as_ref(), &caller.tenant, &page.items).await?;
    Ok(HttpResponse::Ok()
        .insert_header((TOTAL_COUNT, page.total))
        .json(views))
}

/// Create a device (admin or owner).
#[utoipa::path(
    post, path = "/api/devices", tag = "devices", operation_id = "create_device",
    request_body = DeviceCreateBody,
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = r"^[!-~]([ -~]*[!-~])?$",
        description = "Makes the create safe to retry: a retry with the same key and the same body (byte for byte) within 24 hours gets the first answer and creates nothing; the same key with another body is a 422, and while the first request runs a 409. Per tenant; 1 to 255 printable ASCII characters."),
    ),
    responses(
        (status = 201, description = "The created device", body = DeviceView),
        (status = 400, description = "The name is taken", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 409, description = "`A request with this Idempotency-Key is in progress` (a retry sent while the first runs)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid body; `detail` names the field; or `Idempotency-Key: …`, a malformed key or one sent before with another body", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    caller: Writer<DataWrites>,
    devices: web::Data<dyn DeviceRepository>,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    idempotency: Idempotency,
    body: JsonBody<DeviceCreateBody>,
) -> Result<HttpResponse, ApiError> {
    idempotency
        .run(&caller.tenant, async {
            let spec = body.0.try_into_domain()?;
            let device = devices
                .create_device(
                    &caller.tenant,
                    &caller.actor,
                    NewDevice {
                        id: Uuid::new_v4(),
                        spec,
                    },
                )
                .await
                .map_err(|e| match e {
                    CreateDeviceError::NameTaken(name) => name_taken(&name),
                    CreateDeviceError::Store(e) => e.into(),
                })?;
            Ok(HttpResponse::Created()
                .json(device_view(windows.as_ref(), &caller.tenant, &device).await?))
        })
        .await
}

/// Read one device.
#[utoipa::path(
    get, path = "/api/devices/{id}", tag = "devices", operation_id = "get_device",
    params(("id" = Uuid, Path, description = "Device UUID")),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    caller: Caller,
    devices: web::Data<dyn DeviceRepository>,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = devices
        .get_device(&caller.tenant, device_id(&path)?)
        .await
        .map_err(lookup(&path))?;
    Ok(HttpResponse::Ok().json(device_view(windows.as_ref(), &caller.tenant, &device).await?))
}

/// Change a device (admin or owner). Absent fields stay; thresholds are checked as merged.
#[utoipa::path(
    put, path = "/api/devices/{id}", tag = "devices", operation_id = "update_device",
    params(("id" = Uuid, Path, description = "Device UUID")),
    request_body = DeviceUpdateBody,
    responses(
        (status = 200, description = "The updated device", body = DeviceView),
        (status = 400, description = "The name is taken", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid body or thresholds out of order", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    caller: Writer<DataWrites>,
    devices: web::Data<dyn DeviceRepository>,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    path: web::Path<String>,
    body: JsonBody<DeviceUpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let changes = body.0.try_into_domain()?;
    let device = devices
        .update_device(&caller.tenant, &caller.actor, device_id(&path)?, changes)
        .await
        .map_err(|e| match e {
            UpdateDeviceError::NotFound => device_not_found(&path),
            UpdateDeviceError::NameTaken(name) => name_taken(&name),
            UpdateDeviceError::Invalid(e) => threshold_error(&e),
            UpdateDeviceError::Store(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok().json(device_view(windows.as_ref(), &caller.tenant, &device).await?))
}

/// Delete a device with its readings and memberships (admin or owner); its groups stay.
#[utoipa::path(
    delete, path = "/api/devices/{id}", tag = "devices", operation_id = "delete_device",
    params(("id" = Uuid, Path, description = "Device UUID")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    caller: Writer<DataWrites>,
    devices: web::Data<dyn DeviceRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    devices
        .delete_device(&caller.tenant, device_id(&path)?)
        .await
        .map_err(lookup(&path))?;
    Ok(HttpResponse::NoContent().finish())
}

/// Why the device is, or will be, muted: the enabled, unexpired maintenance windows whose scope
/// (sites, types, groups) includes it, latest start first, each with whether it is active now
/// and its occurrence under way or next.
#[utoipa::path(
    get, path = "/api/devices/{id}/maintenance", tag = "devices", operation_id = "get_device_maintenance",
    params(("id" = Uuid, Path, description = "Device UUID")),
    responses(
        (status = 200, description = "The windows that may mute the device", body = DeviceMaintenanceView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn maintenance(
    caller: Caller,
    devices: web::Data<dyn DeviceRepository>,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = device_id(&path)?;
    let now = Timestamp::now();
    let covering =
        app::devices::maintenance(devices.as_ref(), windows.as_ref(), &caller.tenant, id, now)
            .await
            .map_err(lookup(&path))?;
    Ok(HttpResponse::Ok().json(DeviceMaintenanceView {
        device_id: id,
        windows: covering
            .iter()
            .map(|c| DeviceWindowView::at(c, now))
            .collect(),
    }))
}

/// The groups a device belongs to, ordered by name.
#[utoipa::path(
    get, path = "/api/devices/{id}/groups", tag = "devices", operation_id = "list_device_groups_of_device",
    params(("id" = Uuid, Path, description = "Device UUID"), ListParams),
    responses(
        (status = 200, description = "The device's groups", body = Vec<GroupListItemView>,
            headers(("X-Total-Count" = u64, description = "Number of matching groups"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 422, description = "Bad `name`, `limit` or `offset`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn groups(
    caller: Caller,
    devices: web::Data<dyn DeviceRepository>,
    path: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params.query()?;
    let page =
        app::devices::groups_page(devices.as_ref(), &caller.tenant, device_id(&path)?, &query)
            .await
            .map_err(lookup(&path))?;
    Ok(HttpResponse::Ok()
        .insert_header((TOTAL_COUNT, page.total))
        .json(
            page.items
                .iter()
                .map(GroupListItemView::from)
                .collect::<Vec<_>>(),
        ))
}

/// A device's readings, newest first, a page at a time (`cursor` or `offset`); with `Accept:
/// text/csv` as a CSV attachment, with `Accept: application/x-ndjson` streamed whole. With
/// `interval`, aggregated into time buckets aligned to the calendar of `timezone`.
#[utoipa::path(
    get, path = "/api/devices/{id}/readings", tag = "readings", operation_id = "list_device_readings",
    params(("id" = Uuid, Path, description = "Device UUID"), ReadingsParams),
    responses(
        (status = 200, description = "The readings. With `Accept: text/csv`, the page as CSV with the columns `device_id,device_name,timestamp,value,unit`, as an attachment (`Content-Disposition: attachment; filename=\"<device name>-readings.csv\"`). With `Accept: application/x-ndjson`, every reading of the range (up to `limit`, at most 10,000,000) streamed, one JSON object `{\"timestamp\", \"value\"}` per line; a stream cut short (store failure, or its 15-minute deadline) ends without its last chunk. With `interval`: the buckets (`DeviceReadingBuckets`); in CSV one row per bucket with the columns `device_id,device_name,unit,start,end,<agg…>,count`, as an attachment",
            content((DeviceReadingsAnswer = "application/json"), (String = "text/csv"), (ReadingView = "application/x-ndjson")),
            headers(("Content-Disposition" = String, description = "CSV only: `attachment; filename=\"<name>-readings.csv\"`"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 422, description = "Bad `hours`, `limit`, `start_time`, `end_time`, `offset` or `cursor` (a cursor of another route, device, group, tenant or query; `cursor` with `offset`), `interval` (also: more than 10000 buckets), `agg`, `timezone` or `fill`; `cursor` or `offset` with `interval`", body = ErrorBody),
        (status = 503, description = "Store unavailable, or as many NDJSON exports running as allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn readings(
    caller: Caller,
    readings: web::Data<dyn ReadingRepository>,
    devices: web::Data<dyn DeviceRepository>,
    auth: web::Data<crate::auth::Authenticator>,
    path: web::Path<String>,
    params: web::Query<ReadingsParams>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if let Some(bucketed) = params.buckets()? {
        let not_found = || device_not_found(&path);
        return super::buckets::device(
            &caller,
            readings.as_ref(),
            device_id(&path)?,
            not_found,
            bucketed,
            &request,
        )
        .await;
    }
    if wants_ndjson(&request) {
        let query = params.export()?;
        let rows = readings
            .export_device_readings(&caller.tenant, device_id(&path)?, query)
            .await
            .map_err(lookup(&path))?;
        return Ok(ndjson(rows, reading_view));
    }
    let id = device_id(&path)?;
    let page = params.page(Scope::Device(id), true, auth.cursor_key(), &caller.tenant)?;
    // The device is read first for CSV: its name and unit are in every row and the file name.
    let device = if wants_csv(&request) {
        Some(
            devices
                .get_device(&caller.tenant, id)
                .await
                .map_err(lookup(&path))?,
        )
    } else {
        None
    };
    let mut points = readings
        .device_readings(&caller.tenant, id, page.query.one_more())
        .await
        .map_err(lookup(&path))?;
    let has_more = points.len() > page.query.limit() as usize;
    points.truncate(page.query.limit() as usize);
    if let Some(device) = device {
        let name = device.spec.name.as_str();
        let unit = device.spec.unit.as_str();
        let mut answer = csv(
            &["device_id", "device_name", "timestamp", "value", "unit"],
            points.iter().map(|p| {
                vec![
                    Cell::Text(id.to_string()),
                    Cell::Text(name.to_owned()),
                    Cell::Text(rfc3339(p.timestamp)),
                    Cell::Number(p.value),
                    Cell::Text(unit.to_owned()),
                ]
            }),
        );
        let (header, value) = csv_attachment(name);
        answer.headers_mut().insert(header, value);
        return Ok(answer);
    }
    let next_cursor = has_more.then(|| points.last()).flatten().map(|last| {
        Cursor::after(
            Scope::Device(id),
            &page.query,
            page.selection,
            ReadingPosition {
                timestamp: last.timestamp,
                device_id: id,
            },
        )
        .encode(auth.cursor_key(), &caller.tenant)
    });
    let readings: Vec<ReadingView> = points.iter().map(reading_view).collect();
    Ok(HttpResponse::Ok().json(DeviceReadingsView {
        device_id: id,
        total: readings.len() as u64,
        readings,
        has_more,
        next_cursor,
    }))
}

fn reading_view(p: &ReadingPoint) -> ReadingView {
    ReadingView {
        timestamp: p.timestamp.get(),
        value: p.value,
    }
}

/// Delete a device's readings in `[start_time, end_time)` (admin or owner), answering how many.
/// When its latest reading was among them, the newest remaining one becomes its latest and its
/// state and alerts are judged again, as ingest judges them (with the same events). Repeating
/// the request deletes nothing more (`{"deleted": 0}`): it needs no `Idempotency-Key`, and
/// takes no `If-Match` (a range of readings has no tag of its own).
#[utoipa::path(
    delete, path = "/api/devices/{id}/readings", tag = "readings", operation_id = "delete_device_readings",
    params(("id" = Uuid, Path, description = "Device UUID"), ReadingsDeleteParams),
    responses(
        (status = 200, description = "Deleted; `deleted` counts the readings removed", body = ReadingsDeletedView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 422, description = "`start_time` or `end_time` missing or invalid, or `end_time` not later than `start_time`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_readings(
    caller: Writer<DataWrites>,
    readings: web::Data<dyn ReadingRepository>,
    path: web::Path<String>,
    params: web::Query<ReadingsDeleteParams>,
) -> Result<HttpResponse, ApiError> {
    let id = device_id(&path)?;
    let (start, end) = params.range()?;
    let deleted = app::readings::delete_range(readings.as_ref(), &caller.tenant, id, start, end)
        .await
        .map_err(lookup(&path))?;
    Ok(HttpResponse::Ok().json(ReadingsDeletedView { deleted }))
}

/// Record one reading of a device (admin or owner); `timestamp` defaults to now and may lie at
/// most the allowed skew (300 s by default) ahead of the server's clock. Re-sending a reading
/// for the same instant replaces its value.
#[utoipa::path(
    post, path = "/api/devices/{id}/readings", tag = "readings", operation_id = "create_device_reading",
    params(("id" = Uuid, Path, description = "Device UUID")),
    request_body = DeviceReadingBody,
    responses(
        (status = 201, description = "Stored", body = DeviceReadingStoredView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 422, description = "Invalid body, or `timestamp` more than `IOT_MAX_FUTURE_SKEW_SECS` (default 300 s) ahead of the server's clock; `detail` names the field", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn record(
    caller: Writer<DataWrites>,
    readings: web::Data<dyn ReadingRepository>,
    settings: web::Data<crate::ingest::IngestSettings>,
    path: web::Path<String>,
    body: JsonBody<DeviceReadingBody>,
) -> Result<HttpResponse, ApiError> {
    let id = device_id(&path)?;
    let body = body.0;
    let now = Timestamp::now();
    let reading = Reading {
        device_id: id,
        timestamp: match body.timestamp.as_deref() {
            None => now,
            Some(t) => settings
                .max_future_skew
                .admit(instant("timestamp", t)?, now)
                .map_err(|e| ApiError::invalid("timestamp", e))?,
        },
        value: reading_value("value", body.value)?,
    };
    let batch = ReadingBatch::new(vec![reading]).map_err(|e| ApiError::invalid("body", e))?;
    app::readings::ingest(readings.as_ref(), &caller.tenant, batch)
        .await
        .map_err(|e| match e {
            IngestError::UnknownDevice(_) => device_not_found(&path),
            IngestError::Store(e) => e.into(),
        })?;
    Ok(HttpResponse::Created().json(DeviceReadingStoredView {
        device_id: id,
        timestamp: reading.timestamp.get(),
        value: reading.value.get(),
    }))
}
