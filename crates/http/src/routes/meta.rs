//! Health, the OpenAPI document and its docs page: no token needed.

use actix_web::{http::header::ContentType, web, HttpResponse};
use ports::HealthProbe;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::query::KnownQuery;
use crate::readiness::Readiness;

/// The rendered OpenAPI document, served by [`openapi_json`]. Kept here, not in `openapi`, so
/// that `openapi` (which reaches this module through the route table) is not imported back.
#[derive(Debug, Clone)]
pub struct SpecJson(pub String);

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Liveness: 200 while the process runs.
#[utoipa::path(
    get, path = "/health/live", tag = "health", operation_id = "health_live",
    responses((status = 200, description = "The process runs", body = Health)),
    security(())
)]
pub async fn live(_query: KnownQuery) -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: 200 when the store answers, else 503; 503 as well once shutdown has begun.
///
/// While shutdown drains, requests are still served: only new traffic should go elsewhere.
#[utoipa::path(
    get, path = "/health/ready", tag = "health", operation_id = "health_ready",
    responses(
        (status = 200, description = "The store answers", body = Health),
        (status = 503, description = "The store does not answer, or the service is shutting down (it still serves requests while it drains)", body = ErrorBody),
    ),
    security(())
)]
pub async fn ready(
    _query: KnownQuery,
    probe: web::Data<dyn HealthProbe>,
    readiness: web::Data<Readiness>,
) -> HttpResponse {
    if readiness.is_draining() {
        return HttpResponse::ServiceUnavailable().json(ErrorBody {
            detail: "The service is shutting down; requests are still served while it drains"
                .to_owned(),
            code: None,
        });
    }
    match probe.check().await {
        Ok(()) => HttpResponse::Ok().json(Health { status: "ready" }),
        Err(e) => {
            tracing::warn!(error = %e, cause = %std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default(), "readiness check failed");
            HttpResponse::ServiceUnavailable().json(ErrorBody {
                detail: "The store is not reachable".to_owned(),
                code: None,
            })
        }
    }
}

/// The OpenAPI document of this service (the committed `openapi/openapi.json`).
#[utoipa::path(
    get, path = "/openapi.json", tag = "health", operation_id = "openapi_document",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)),
    security(())
)]
pub async fn openapi_json(_query: KnownQuery, spec: web::Data<SpecJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(spec.0.clone())
}

/// A readable rendering of the OpenAPI document. Its script loads from a CDN when viewed;
/// nothing is fetched at build time.
#[utoipa::path(
    get, path = "/docs", tag = "health", operation_id = "docs_page",
    responses((status = 200, description = "An HTML page rendering this document", content_type = "text/html", body = String)),
    security(())
)]
pub async fn docs(_query: KnownQuery) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(DOCS_PAGE)
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>iot-api reference</title>
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <noscript>This page needs JavaScript; the raw document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
    <script src="https://cdn.redoc.ly/redoc/v2.5.0/bundles/redoc.standalone.js"></script>
  </body>
</html>
"#;
