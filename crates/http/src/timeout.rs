//! A deadline for every request: a request that has not finished in time (a frozen database,
//! say) is answered 503 and its work is dropped, so no client waits beyond the limit.
//!
//! Unless it has sent a COMMIT: then "retry later" could be false (the write may be stored), so
//! the request gets a grace to say what its COMMIT became, and if that runs out too, the 503
//! says that the write may have been applied.

use std::future::Future;
use std::time::Duration;

use actix_web::dev::ServiceResponse;
use ports::commit::{CommitState, CommitWatch};

use crate::error::ApiError;

/// Awaits `response` for at most `limit`; the 503 after it echoes `request_id`. A request that
/// sent a COMMIT gets `limit` again (its COMMIT runs at most the statement timeout, which is
/// under `limit`).
///
/// # Errors
/// Whatever the inner service returns in time; [`ApiError::timed_out`] (503) after `limit`
/// with no COMMIT sent; [`ApiError::timed_out_committing`] (503) after the grace too; and
/// [`ApiError::commit_outcome_lost`] (503) for a server error after a COMMIT whose answer was
/// lost.
pub async fn within<B>(
    limit: Duration,
    request_id: &str,
    response: impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    let watch = CommitWatch::default();
    let mut response = std::pin::pin!(ports::commit::watched(&watch, response));
    // The request cannot be cloned ahead of routing (actix needs it unshared), so the timeout
    // is answered as an error, which actix renders through `ApiError::error_response`.
    if let Ok(result) = actix_web::rt::time::timeout(limit, &mut response).await {
        return told(result, &watch, request_id);
    }
    if watch.state() == CommitState::NotSent {
        tracing::warn!(limit_ms, "request timed out");
        return Err(ApiError::timed_out(limit)
            .with_request_id(request_id)
            .into());
    }
    tracing::warn!(
        limit_ms,
        "request timed out with a COMMIT sent; waiting for its outcome"
    );
    match actix_web::rt::time::timeout(limit, &mut response).await {
        Ok(result) => told(result, &watch, request_id),
        Err(_) => {
            tracing::error!(
                waited_ms = limit_ms.saturating_mul(2),
                "request timed out with a COMMIT unanswered; the write may have been applied"
            );
            Err(ApiError::timed_out_committing(limit * 2)
                .with_request_id(request_id)
                .into())
        }
    }
}

/// `result`, unless it is a server error after a COMMIT whose answer was lost: that one says
/// the write may have been applied.
fn told<B>(
    result: Result<ServiceResponse<B>, actix_web::Error>,
    watch: &CommitWatch,
    request_id: &str,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let failed = match &result {
        Ok(res) => res.status().is_server_error(),
        Err(e) => e.as_response_error().status_code().is_server_error(),
    };
    if failed && watch.state() == CommitState::Unknown {
        return Err(ApiError::commit_outcome_lost()
            .with_request_id(request_id)
            .into());
    }
    result
}

#[cfg(test)]
mod tests {
    use actix_web::body::BoxBody;
    use actix_web::test::TestRequest;
    use actix_web::HttpResponse;

    use super::*;

    const LIMIT: Duration = Duration::from_millis(50);

    fn answer(response: HttpResponse) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
        Ok(TestRequest::default().to_srv_response(response))
    }

    async fn detail_of(result: Result<ServiceResponse<BoxBody>, actix_web::Error>) -> String {
        let error = result.expect_err("an error answer");
        let response = error.error_response();
        assert_eq!(response.status(), 503);
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .expect("body");
        String::from_utf8(body.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn a_request_without_a_commit_is_told_to_retry_at_its_deadline() {
        let result = within(LIMIT, "r", std::future::pending()).await;
        let detail = detail_of(result).await;
        assert!(detail.contains("retry later"), "{detail}");
    }

    #[tokio::test]
    async fn a_request_whose_commit_ends_in_the_grace_gets_its_own_answer() {
        let result = within(LIMIT, "r", async {
            let commit = ports::commit::committing();
            tokio::time::sleep(LIMIT * 3 / 2).await;
            commit.answered();
            answer(HttpResponse::Created().finish())
        })
        .await;
        assert_eq!(result.expect("an answer").status(), 201);
    }

    #[tokio::test]
    async fn a_request_whose_commit_never_ends_may_have_been_applied() {
        let result = within(LIMIT, "r", async {
            let _commit = ports::commit::committing();
            std::future::pending().await
        })
        .await;
        let detail = detail_of(result).await;
        assert!(
            detail.contains("the write may have been applied"),
            "{detail}"
        );
    }

    #[tokio::test]
    async fn a_server_error_after_a_lost_commit_may_have_been_applied() {
        let result = within(LIMIT, "r", async {
            ports::commit::committing().lost();
            answer(HttpResponse::ServiceUnavailable().finish())
        })
        .await;
        let detail = detail_of(result).await;
        assert!(
            detail.contains("the write may have been applied"),
            "{detail}"
        );
    }
}
