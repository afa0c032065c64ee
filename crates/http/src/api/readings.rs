//! Wire shapes of readings (seed 002): `/api/readings` and `/api/devices/{id}/readings`.

use domain::ReadingValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

/// One reading to ingest.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReadingIn)]
pub struct ReadingBody {
    /// The device's UUID.
    #[schema(format = Uuid)]
    pub device_id: String,
    /// When it was measured (RFC 3339; without offset: UTC). At most the allowed skew (300 s by
    /// default, `IOT_MAX_FUTURE_SKEW_SECS`) ahead of the server's clock.
    #[schema(format = DateTime, example = "2025-10-20T10:30:00Z")]
    pub timestamp: String,
    /// The measured value.
    #[schema(example = 25.5)]
    pub value: f64,
}

/// Body of `POST /api/readings`: 1 to 10,000 readings, stored all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReadingsIngest)]
pub struct ReadingsIngestBody {
    /// The readings.
    pub readings: Vec<ReadingBody>,
}

/// Answer of an ingest.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = IngestAccepted)]
pub struct IngestAcceptedView {
    /// How many readings were stored (readings repeated for the same device and instant within
    /// one request count once: the last one wins).
    pub accepted: usize,
}

/// Body of `POST /api/devices/{id}/readings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DeviceReadingIn)]
pub struct DeviceReadingBody {
    /// The measured value.
    pub value: f64,
    /// When it was measured (RFC 3339); now when absent. At most the allowed skew (300 s by
    /// default, `IOT_MAX_FUTURE_SKEW_SECS`) ahead of the server's clock.
    #[schema(format = DateTime)]
    pub timestamp: Option<String>,
}

/// One stored reading of a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadingView {
    /// When it was measured (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The measured value.
    pub value: f64,
}

/// Answer of `POST /api/devices/{id}/readings`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeviceReadingStored)]
pub struct DeviceReadingStoredView {
    /// The device's UUID.
    pub device_id: Uuid,
    /// When it was measured (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The measured value.
    pub value: f64,
}

/// `GET /api/devices/{id}/readings`: newest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeviceReadings)]
pub struct DeviceReadingsView {
    /// The device's UUID.
    pub device_id: Uuid,
    /// The readings, newest first.
    pub readings: Vec<ReadingView>,
    /// Number of readings returned.
    pub total: u64,
    /// Whether more readings of the range follow this page.
    pub has_more: bool,
    /// Send as `cursor` (with the same parameters) for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Answer of `DELETE /api/devices/{id}/readings`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReadingsDeleted)]
pub struct ReadingsDeletedView {
    /// How many readings were deleted.
    pub deleted: u64,
}

pub(crate) fn reading_value(field: &str, value: f64) -> Result<ReadingValue, ApiError> {
    ReadingValue::new(value).map_err(|e| ApiError::invalid(field, e))
}
