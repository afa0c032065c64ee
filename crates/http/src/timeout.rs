//! A deadline for every request: a request that has not finished in time (a frozen database,
//! say) is answered 503 and its work is dropped, so no client waits beyond the limit.

use std::future::Future;
use std::time::Duration;

use actix_web::dev::ServiceResponse;

use crate::error::ApiError;

/// Awaits `response` for at most `limit`; the 503 after it echoes `request_id`.
///
/// # Errors
/// Whatever the inner service returns in time; [`ApiError::timed_out`] (503) after `limit`.
pub async fn within<B>(
    limit: Duration,
    request_id: &str,
    response: impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    // The request cannot be cloned ahead of routing (actix needs it unshared), so the timeout
    // is answered as an error, which actix renders through `ApiError::error_response`.
    match actix_web::rt::time::timeout(limit, response).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                "request timed out"
            );
            Err(ApiError::timed_out(limit)
                .with_request_id(request_id)
                .into())
        }
    }
}
