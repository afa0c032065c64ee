//! Health, the OpenAPI document and its docs page (with the page's assets): no token needed.

use std::sync::LazyLock;

use actix_web::http::header::{
    ContentType, CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use actix_web::{web, HttpResponse};
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

/// A readable rendering of the OpenAPI document; everything the page loads comes from this service.
// Redoc, compiled into the binary (see `asset`): the page works offline and its
// Content-Security-Policy names no other origin.
#[utoipa::path(
    get, path = "/docs", tag = "health", operation_id = "docs_page",
    responses((status = 200, description = "An HTML page rendering this document", content_type = "text/html", body = String)),
    security(())
)]
pub async fn docs(_query: KnownQuery) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((CONTENT_SECURITY_POLICY, DOCS_POLICY))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Revalidated on each view, so that a new release's asset paths are picked up.
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(DOCS_PAGE)
}

/// What `/docs` may load: its own origin only.
/// - `style-src 'unsafe-inline'`: Redoc styles its components with styled-components, which
///   writes `<style>` elements and `style` attributes at run time (no nonce can reach the
///   bundled copy). Scripts stay `'self'` only: no inline script, no `eval`.
/// - `img-src data:`: the bundle's styles draw small icons (such as a heading's link icon) as
///   `data:` SVG images; `data:` is inline content, not an origin.
/// - `worker-src blob:`: Redoc's search index runs in a worker that the bundle builds from a
///   `blob:` URL of its own (made by the page, so never another origin's code).
const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; worker-src blob:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Where the page's assets are served, with the library's version in the path: a new version is
/// a new URL, so each answer may be cached for a year.
const ASSETS: &str = "/docs/assets/redoc-2.5.0";

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>iot-api reference</title>
    <!-- No icon: else the browser asks for /favicon.ico, a 404 in its console. -->
    <link rel="icon" href="data:,">
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <noscript>This page needs JavaScript; the raw document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
    <script src="/docs/assets/redoc-2.5.0/redoc.standalone.js"></script>
  </body>
</html>
"#;

/// Redoc's standalone bundle as published on the npm registry (`redoc@2.5.0`,
/// `bundles/redoc.standalone.js`), committed verbatim with its licences.
const REDOC_BUNDLE: &str = include_str!("../../assets/redoc-2.5.0/redoc.standalone.js");

/// The one thing the bundle fetches from elsewhere: the logo beside "API docs by Redocly" in the
/// side menu comes from Redocly's CDN. It is left out (the attribution's text and link stay),
/// rather than patching the committed copy, so that the copy stays byte for byte the published one.
const REDOC_CDN_LOGO: &str = r#"n.createElement("img",{alt:"redocly logo",onError:()=>t(!1),src:"https://cdn.redoc.ly/redoc/logo-mini.svg"})"#;

/// The bundle as served: [`REDOC_BUNDLE`] without [`REDOC_CDN_LOGO`].
static REDOC_SERVED: LazyLock<web::Bytes> =
    LazyLock::new(|| web::Bytes::from(REDOC_BUNDLE.replacen(REDOC_CDN_LOGO, "null", 1)));

/// The files under [`ASSETS`]: the script and the licences it ships under (the bundle's first
/// line points to its `.LICENSE.txt` beside it).
fn asset_named(name: &str) -> Option<(&'static str, web::Bytes)> {
    const TEXT: &str = "text/plain; charset=utf-8";
    match name {
        "redoc.standalone.js" => Some(("text/javascript; charset=utf-8", REDOC_SERVED.clone())),
        "redoc.standalone.js.LICENSE.txt" => Some((
            TEXT,
            web::Bytes::from_static(include_bytes!(
                "../../assets/redoc-2.5.0/redoc.standalone.js.LICENSE.txt"
            )),
        )),
        "LICENSE" => Some((
            TEXT,
            web::Bytes::from_static(include_bytes!("../../assets/redoc-2.5.0/LICENSE")),
        )),
        _ => None,
    }
}

/// Registers [`ASSETS`]. Not in the route table, nor in the OpenAPI document: these are the
/// docs page's files, not part of the API.
pub(crate) fn register_assets(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(format!("{ASSETS}/{{name}}"))
            .route(web::get().to(asset))
            .route(web::head().to(asset)),
    );
}

/// One of the page's files, cacheable for a year (its path changes with the version).
async fn asset(name: web::Path<String>) -> HttpResponse {
    let Some((content_type, body)) = asset_named(&name) else {
        return HttpResponse::NotFound().json(ErrorBody {
            detail: "Not Found".to_owned(),
            code: None,
        });
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((CONTENT_SECURITY_POLICY, DOCS_POLICY))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_its_script_from_the_asset_route() {
        assert!(DOCS_PAGE.contains(&format!(r#"<script src="{ASSETS}/redoc.standalone.js">"#)));
        assert!(!DOCS_PAGE.contains("https://"), "{DOCS_PAGE}");
    }

    #[test]
    fn the_served_bundle_names_no_cdn() {
        // If a new version moves the logo, the replacement silently stops matching: this says so.
        assert_eq!(REDOC_BUNDLE.matches(REDOC_CDN_LOGO).count(), 1);
        let served = std::str::from_utf8(&REDOC_SERVED).expect("UTF-8");
        assert!(!served.contains("cdn.redoc.ly"));
        assert_eq!(
            served.len(),
            REDOC_BUNDLE.len() - REDOC_CDN_LOGO.len() + "null".len()
        );
    }

    #[test]
    fn the_policy_names_no_other_origin_and_allows_no_script_but_its_own() {
        assert!(DOCS_POLICY.starts_with("default-src 'self';"));
        assert!(!DOCS_POLICY.contains("http"));
        assert!(!DOCS_POLICY.contains("unsafe-eval"));
        assert!(DOCS_POLICY.contains("script-src 'self';"));
    }
}
