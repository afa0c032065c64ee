//! Request ids, the access log and request metrics, for every request.
//!
//! The request id is taken from `X-Request-Id` when the client sends a usable one, else made
//! up; it is echoed in the response and recorded on a span that every log line of the request
//! (handlers, store adapters, the access line) is written in. So is the W3C trace id: the one
//! of the request's `traceparent`, else a new one; and, once the token is checked, the tenant
//! and subject (never the token).

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

/// `elapsed` in milliseconds to the microsecond (at most three decimals: `12.345`).
#[allow(clippy::cast_precision_loss)] // exact below 2^53 µs, 285 years
fn millis(elapsed: Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), else a new random one.
#[must_use]
pub fn trace_id(req: &ServiceRequest) -> String {
    req.headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// The trace id of a well-formed `traceparent`. Version `ff` and all-zero ids are invalid (W3C
/// Trace Context, section 3.2); a later version may append fields after a `-`.
fn parse_traceparent(value: &str) -> Option<&str> {
    let lower_hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let valid = lower_hex(version, 2)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && lower_hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && lower_hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && lower_hex(flags, 2);
    valid.then_some(trace)
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
    let trace = trace_id(&req);
    // `tenant` and `subject` are recorded by authentication (`auth`), so the access line and
    // every line after the token check carry them.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        trace_id = %trace,
        tenant = tracing::field::Empty,
        subject = tracing::field::Empty,
    );
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
                elapsed_ms = millis(elapsed),
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

    #[::core::prelude::v1::test]
    fn a_traceparent_gives_its_trace_id_and_a_bad_one_none() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            parse_traceparent(&format!("00-{trace}-00f067aa0ba902b7-01")),
            Some(trace)
        );
        assert_eq!(
            parse_traceparent(&format!("01-{trace}-00f067aa0ba902b7-01-later")),
            Some(trace)
        );
        for bad in [
            String::new(),
            format!("00-{trace}-00f067aa0ba902b7"),
            format!("00-{trace}-00f067aa0ba902b7-01-extra"),
            format!("ff-{trace}-00f067aa0ba902b7-01"),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{trace}-0000000000000000-01"),
            format!("00-{}-00f067aa0ba902b7-01", trace.to_uppercase()),
            format!("00-{}-00f067aa0ba902b7-01", &trace[1..]),
        ] {
            assert_eq!(parse_traceparent(&bad), None, "{bad}");
        }
    }

    #[::core::prelude::v1::test]
    fn durations_are_milliseconds_to_three_decimals() {
        assert!((millis(Duration::from_nanos(12_345_678)) - 12.345).abs() < f64::EPSILON);
        assert_eq!(millis(Duration::from_micros(412)).to_string(), "0.412");
    }
}
