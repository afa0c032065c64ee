//! `POST /api/readings`: bulk ingest, all or nothing.

use actix_web::{web, HttpResponse};
use domain::{Reading, ReadingBatch, Timestamp};
use ports::{IngestError, ReadingRepository};
use uuid::Uuid;

use crate::api::params::instant;
use crate::api::readings::{reading_value, IngestAcceptedView, ReadingsIngestBody};
use crate::auth::{DataWrites, Writer};
use crate::error::{ApiError, ErrorBody};
use crate::ingest::IngestSettings;
use crate::json::JsonBody;

/// Bulk bodies may be larger than the default limit: 10,000 readings of ~100 bytes each.
pub const INGEST_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Store up to 10,000 readings at once (admin or owner). Any bad reading (unknown or foreign
/// device, bad timestamp or one more than the allowed skew, 300 s by default, ahead of the
/// server's clock, non-number) refuses the whole batch, naming the first offender; a
/// reading re-sent for the same device and instant replaces its value. Bodies up to 4 MiB.
#[utoipa::path(
    post, path = "/api/readings", tag = "readings", operation_id = "ingest_readings",
    request_body = ReadingsIngestBody,
    responses(
        (status = 201, description = "All readings stored", body = IngestAcceptedView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 413, description = "Body over 4 MiB", body = ErrorBody),
        (status = 422, description = "A reading is invalid, stamped more than `IOT_MAX_FUTURE_SKEW_SECS` (default 300 s) ahead of the server's clock, or names an unknown device; nothing stored", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ingest(
    caller: Writer<DataWrites>,
    readings: web::Data<dyn ReadingRepository>,
    settings: web::Data<IngestSettings>,
    body: JsonBody<ReadingsIngestBody, INGEST_BODY_LIMIT>,
) -> Result<HttpResponse, ApiError> {
    let incoming = body.0.readings;
    if incoming.len() > domain::reading::MAX_READINGS_PER_BATCH {
        return Err(ApiError::invalid(
            "readings",
            format!(
                "must hold at most {} readings, got {}",
                domain::reading::MAX_READINGS_PER_BATCH,
                incoming.len()
            ),
        ));
    }
    let now = Timestamp::now();
    let parsed = incoming
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let field = format!("readings[{i}].timestamp");
            let timestamp = instant(&field, &r.timestamp)?;
            Ok(Reading {
                device_id: Uuid::parse_str(&r.device_id).map_err(|_| {
                    ApiError::invalid(
                        &format!("readings[{i}].device_id"),
                        format!("'{}' is not a UUID", r.device_id),
                    )
                })?,
                timestamp: settings
                    .max_future_skew
                    .admit(timestamp, now)
                    .map_err(|e| ApiError::invalid(&field, e))?,
                value: reading_value(&format!("readings[{i}].value"), r.value)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let batch = ReadingBatch::new(parsed).map_err(|e| ApiError::invalid("readings", e))?;
    let stored = app::readings::ingest(readings.as_ref(), &caller.tenant, batch)
        .await
        .map_err(|e| match e {
            IngestError::UnknownDevice(id) => {
                let index = incoming
                    .iter()
                    .position(|r| Uuid::parse_str(&r.device_id).ok() == Some(id))
                    .unwrap_or(0);
                ApiError::invalid(
                    &format!("readings[{index}].device_id"),
                    format!("device {id} not found"),
                )
            }
            IngestError::Store(e) => e.into(),
        })?;
    let accepted = usize::try_from(stored).unwrap_or(usize::MAX);
    Ok(HttpResponse::Created().json(IngestAcceptedView { accepted }))
}
