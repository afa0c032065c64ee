//! The request id: the header it travels in, and how one is taken from a request. A module of
//! its own so that errors (which echo it) and the middleware (which assigns it) need not import
//! each other.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderName;

/// The header a request id travels in.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a client.
pub const REQUEST_ID_MAX: usize = 128;

/// The client's request id if it is 1 to 128 visible ASCII characters, else a new UUID.
#[must_use]
pub fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= REQUEST_ID_MAX && v.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}
