//! Request ids, the access log and request metrics, for every request.
//!
//! The request id is taken from `X-Request-Id` when the client sends a usable one, else made
//! up; it is echoed in the response and recorded on a span that every log line of the request
//! (handlers, store adapters, the access line) is written in.

use std::future::Future;
use std::time::{Duration, Instant};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::Method;
use tracing::Instrument as _;

use crate::request_id::{request_id, REQUEST_ID};

/// The methods counted under their own name; any other is counted (and logged) as `other`, so a
/// client inventing methods cannot add label values (each one a series kept for the process's
/// life) or long strings to the log.
static KNOWN_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

/// The metric and log label of `method`: its name when it is a standard one, else `other`.
#[must_use]
pub fn method_label(method: &Method) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// Calls `srv` with `req` inside a request span, under a deadline of `timeout`, then writes the
/// access line, records the request metrics and echoes the request id.
pub fn observed<S, B>(
    req: ServiceRequest,
    srv: &S,
    timeout: Duration,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let id = request_id(&req);
    let method = method_label(req.method());
    let path = req.path().to_owned();
    // Known before routing, so a request that never finishes is still counted under its route.
    // A template of the route table, never the path itself: label values stay a closed set.
    let route = req
        .request()
        .resource_map()
        .match_pattern(&path)
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let response = span.in_scope(|| srv.call(req));
    async move {
        let result = crate::timeout::within(timeout, &id, response)
            .instrument(span.clone())
            .await;
        let status = match &result {
            Ok(res) => res.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        let elapsed = started.elapsed();
        let labels = [
            ("route", route),
            ("method", method.to_owned()),
            ("status", status.as_u16().to_string()),
        ];
        metrics::counter!("http_requests_total", &labels).increment(1);
        metrics::histogram!("http_request_duration_seconds", &labels[..2])
            .record(elapsed.as_secs_f64());
        span.in_scope(|| {
            tracing::info!(
                target: "iot_api::access",
                method = %method,
                path = %path,
                status = status.as_u16(),
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            );
        });
        result.map(|mut res| {
            let headers = res.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&id) {
                headers.insert(REQUEST_ID, value);
            }
            // Every 503 says when to come back, whoever built it (readiness, a handler).
            if status == actix_web::http::StatusCode::SERVICE_UNAVAILABLE
                && !headers.contains_key(RETRY_AFTER)
            {
                headers.insert(
                    RETRY_AFTER,
                    HeaderValue::from(crate::error::RETRY_AFTER_SECS),
                );
            }
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{test, web, App, HttpResponse};

    use super::*;

    #[actix_web::test]
    async fn every_answer_carries_the_request_id_and_every_503_a_retry_after() {
        let app = test::init_service(
            App::new()
                .wrap_fn(|req, srv| observed(req, srv, Duration::from_secs(5)))
                .route(
                    "/busy",
                    web::get().to(|| async { HttpResponse::ServiceUnavailable().finish() }),
                )
                .route(
                    "/fine",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                ),
        )
        .await;
        let busy = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/busy")
                .insert_header((REQUEST_ID, "req-1"))
                .to_request(),
        )
        .await;
        assert_eq!(busy.headers().get(RETRY_AFTER).unwrap(), "1");
        assert_eq!(busy.headers().get(REQUEST_ID).unwrap(), "req-1");
        let fine =
            test::call_service(&app, test::TestRequest::get().uri("/fine").to_request()).await;
        assert!(!fine.headers().contains_key(RETRY_AFTER));
        assert!(fine.headers().contains_key(REQUEST_ID));
    }
}
