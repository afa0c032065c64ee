//! The one error type handlers return, and its stable JSON body.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use ports::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Every error body: a human-readable `detail`, and for the Group API a stable `code`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong; for invalid input it starts with the offending field.
    #[schema(example = "name: must not be empty or blank")]
    pub detail: String,
    /// A stable machine-readable code (Group API: `GROUP_001` … `GROUP_005`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "GROUP_005")]
    pub code: Option<&'static str>,
}

/// The stable codes of Group API errors (seed 002), the one place their text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupApiCode {
    /// A group of that name exists already (400).
    NameTaken,
    /// A listed device does not exist in the tenant (400).
    DeviceNotFound,
    /// A listed device id is no UUID (400).
    InvalidDeviceId,
    /// The caller's roles do not allow the write (403).
    Forbidden,
    /// No such group (404).
    GroupNotFound,
}

impl GroupApiCode {
    /// The code as the `code` field of an error body carries it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NameTaken => "GROUP_001",
            Self::DeviceNotFound => "GROUP_002",
            Self::InvalidDeviceId => "GROUP_003",
            Self::Forbidden => "GROUP_004",
            Self::GroupNotFound => "GROUP_005",
        }
    }
}

/// Seconds a client told "retry later" (every 503, in `Retry-After`) should wait first.
pub const RETRY_AFTER_SECS: u32 = 1;

/// An error answered to the client. 5xx answers carry a fixed text; their cause is only logged.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    code: Option<GroupApiCode>,
    cause: Option<anyhow::Error>,
    /// Echoed in `X-Request-Id` by answers built outside the request's own response (timeouts).
    request_id: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            code: None,
            cause: None,
            request_id: None,
        }
    }

    #[must_use]
    pub fn with_request_id(mut self, id: &str) -> Self {
        self.request_id = Some(id.to_owned());
        self
    }

    #[must_use]
    pub fn with_code(mut self, code: GroupApiCode) -> Self {
        self.code = Some(code);
        self
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// An `If-Match` naming no current representation of the resource (412).
    #[must_use]
    pub fn precondition_failed() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "Precondition failed: the resource has changed",
        )
    }

    /// A body in a media type the route does not read (415).
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, detail)
    }

    /// Input that does not fit the schema: `field` is the JSON path of the offending value.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {reason}"),
        )
    }

    /// A broken invariant: 500 with a fixed text; `cause` goes to the log only.
    #[must_use]
    pub fn internal(cause: anyhow::Error) -> Self {
        Self::from(StoreError::Unknown(cause))
    }

    /// The request ran past its deadline.
    #[must_use]
    pub fn timed_out(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "The request did not complete within {} ms; retry later",
                limit.as_millis()
            ),
        )
    }

    /// The request ran past its deadline, and past a grace for its COMMIT, with a COMMIT sent:
    /// the write may be stored.
    #[must_use]
    pub fn timed_out_committing(waited: std::time::Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "The request did not complete within {} ms; the write may have been applied: \
                 check before retrying",
                waited.as_millis()
            ),
        )
    }

    /// The answer to a write's COMMIT was lost (the connection broke): it may be stored.
    #[must_use]
    pub fn commit_outcome_lost() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database's answer to the write was lost; the write may have been applied: \
             check before retrying",
        )
    }

    /// The instance is at a bound of its own (open event streams): another may have room.
    #[must_use]
    pub fn busy(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    #[must_use]
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: request bodies are limited to {limit} bytes"),
        )
    }

    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => Self {
                cause: Some(cause),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable; retry later",
                )
            },
            StoreError::Full(detail) => Self::new(StatusCode::INSUFFICIENT_STORAGE, detail),
            StoreError::Unknown(cause) => Self {
                cause: Some(cause),
                ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            // The chain goes to the log, never to the client.
            // The chain ("{:#}"), not Debug: Debug would add a backtrace to every line.
            tracing::error!(status = self.status.as_u16(), error = %format_args!("{cause:#}"), "request failed");
        }
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
        }
        if let Some(id) = &self.request_id {
            response.insert_header((crate::request_id::REQUEST_ID, id.as_str()));
        }
        response.json(ErrorBody {
            detail: self.detail.clone(),
            code: self.code.map(GroupApiCode::as_str),
        })
    }
}
