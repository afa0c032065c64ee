//! The HTTP adapter: actix-web routes, DTOs, bearer authentication, error bodies, OpenAPI.
//!
//! Layer rule: handlers parse input into domain types (in `api`, one module per API surface),
//! call a port, and map the port's error enum to a status in one place each. No SQL, no
//! business rule beyond that mapping.
//! [`configure`] is the single route table, used by the binary and by every handler test.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod compress;
pub mod conditional;
pub mod cors;
pub mod cursor;
pub mod error;
pub mod events;
pub mod group_views;
pub mod idempotency;
pub mod ingest;
pub mod json;
pub mod observe;
pub mod openapi;
pub mod query;
pub mod readiness;
pub mod request_id;
mod routes;
pub mod schemas;
pub mod timeout;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use ports::{
    AlertRepository, DeviceGroupRepository, DeviceRepository, HealthProbe, IdempotencyStore,
    MaintenanceWindowRepository, ReadingRepository, TenantRevisions, WebhookRepository,
};

pub use auth::{Authenticator, Caller, Role};
pub use error::{ApiError, ErrorBody};
pub use ingest::IngestSettings;
pub use routes::table::{allowed as routes_allowed, Route, ROUTES};
pub use routes::webhooks::WebhookTargets;

/// Everything the handlers need, as ports.
#[derive(Clone)]
pub struct AppState {
    pub groups: Arc<dyn DeviceGroupRepository>,
    pub devices: Arc<dyn DeviceRepository>,
    pub readings: Arc<dyn ReadingRepository>,
    pub windows: Arc<dyn MaintenanceWindowRepository>,
    pub alerts: Arc<dyn AlertRepository>,
    pub health: Arc<dyn HealthProbe>,
    /// `Idempotency-Key`s of creates, shared by every instance on the store.
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub authenticator: Authenticator,
    /// Shared by all HTTP workers.
    pub group_views: Arc<group_views::GroupViews>,
    /// Set when shutdown begins; `/health/ready` reads it.
    pub readiness: readiness::Readiness,
    pub ingest: IngestSettings,
    /// Webhook subscriptions and their deliveries.
    pub webhooks: Arc<dyn WebhookRepository>,
    pub webhook_targets: routes::webhooks::WebhookTargets,
    /// The live stream's feeds on this instance (shared by all HTTP workers).
    pub events: app::events::EventHub,
    pub stream_response: events::StreamResponse,
}

impl AppState {
    /// All ports served by one store.
    pub fn from_store<S>(store: Arc<S>, authenticator: Authenticator) -> Self
    where
        S: DeviceGroupRepository
            + DeviceRepository
            + ReadingRepository
            + MaintenanceWindowRepository
            + AlertRepository
            + HealthProbe
            + IdempotencyStore
            + WebhookRepository
            + ports::EventLog
            + 'static,
    {
        let events = app::events::EventHub::new(
            store.clone(),
            store.clone(),
            events::renderer(),
            Arc::new(events::TokioRuntime),
            app::events::StreamSettings::default(),
        );
        Self {
            events,
            stream_response: events::StreamResponse::default(),
            groups: store.clone(),
            devices: store.clone(),
            readings: store.clone(),
            windows: store.clone(),
            alerts: store.clone(),
            idempotency: store.clone(),
            webhooks: store.clone(),
            health: store,
            authenticator,
            group_views: Arc::default(),
            readiness: readiness::Readiness::default(),
            ingest: IngestSettings::default(),
            webhook_targets: routes::webhooks::WebhookTargets::default(),
        }
    }

    /// Lets webhook URLs point to private addresses (`IOT_WEBHOOK_ALLOW_PRIVATE`).
    #[must_use]
    pub fn with_webhook_targets(self, webhook_targets: routes::webhooks::WebhookTargets) -> Self {
        Self {
            webhook_targets,
            ..self
        }
    }

    /// Streams `log`'s events on `GET /api/events` as `settings` say.
    #[must_use]
    pub fn with_event_stream(
        self,
        log: Arc<dyn ports::EventLog>,
        settings: app::events::StreamSettings,
        response: events::StreamResponse,
    ) -> Self {
        Self {
            events: app::events::EventHub::new(
                log,
                self.groups.clone(),
                events::renderer(),
                Arc::new(events::TokioRuntime),
                settings,
            ),
            stream_response: response,
            ..self
        }
    }

    #[must_use]
    pub fn with_ingest(self, ingest: IngestSettings) -> Self {
        Self { ingest, ..self }
    }

    /// Keeps at most `bytes` of rendered group views while `revisions` says the tenant's data
    /// is unchanged (see [`group_views`]); 0 keeps none.
    #[must_use]
    pub fn with_group_views(self, revisions: Arc<dyn TenantRevisions>, bytes: u64) -> Self {
        Self {
            group_views: Arc::new(group_views::GroupViews::new(Some(revisions), bytes)),
            ..self
        }
    }
}

/// Registers the state and every route.
pub fn configure(state: &AppState) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        cfg.app_data(web::Data::from(state.groups.clone()))
            .app_data(web::Data::from(state.devices.clone()))
            .app_data(web::Data::from(state.readings.clone()))
            .app_data(web::QueryConfig::default().error_handler(|e, _| query_error(&e).into()))
            .app_data(web::Data::from(state.windows.clone()))
            .app_data(web::Data::from(state.alerts.clone()))
            .app_data(web::Data::from(state.health.clone()))
            .app_data(web::Data::from(state.idempotency.clone()))
            .app_data(web::Data::new(state.authenticator.clone()))
            .app_data(web::Data::from(state.group_views.clone()))
            .app_data(web::Data::new(state.readiness.clone()))
            .app_data(web::Data::new(state.ingest))
            .app_data(web::Data::from(state.webhooks.clone()))
            .app_data(web::Data::new(state.webhook_targets))
            .app_data(web::Data::new(state.events.clone()))
            .app_data(web::Data::new(state.stream_response))
            .app_data(web::Data::new(routes::meta::SpecJson(openapi::document())))
            .configure(routes::table::register)
            .configure(routes::meta::register_assets)
            .default_service(web::to(not_found));
    }
}

/// 404, unless the path only has a trailing slash too many: then a 308 (which keeps the method
/// and the body) to the path without it, with the same query string.
async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    if let Some(location) = without_trailing_slash(req.uri()) {
        return HttpResponse::PermanentRedirect()
            .insert_header((actix_web::http::header::LOCATION, location))
            .finish();
    }
    HttpResponse::NotFound().json(ErrorBody {
        detail: "Not Found".to_owned(),
        code: None,
    })
}

/// A query string serde could not read (a parameter given twice, say), worded like a body's
/// errors: `limit: given more than once`.
fn query_error(e: &actix_web::error::QueryPayloadError) -> ApiError {
    let message = match e {
        actix_web::error::QueryPayloadError::Deserialize(inner) => inner.to_string(),
        other => other.to_string(),
    };
    let (field, reason) = json::reword(".", &message);
    let field = if field == "body" { "query" } else { &field };
    ApiError::invalid(field, reason)
}

/// `uri`'s path and query without the slashes that end its path, if it has some and is not `/`.
/// Never a path starting `//` or `/\`: a browser would read that `Location` as another host.
fn without_trailing_slash(uri: &actix_web::http::Uri) -> Option<String> {
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    if trimmed.len() == path.len() || trimmed.is_empty() {
        return None;
    }
    if trimmed.starts_with("//") || trimmed.starts_with("/\\") {
        return None;
    }
    Some(match uri.query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::without_trailing_slash;

    fn target(uri: &str) -> Option<String> {
        without_trailing_slash(&uri.parse().expect("a URI"))
    }

    #[test]
    fn a_trailing_slash_leads_to_the_path_without_it_with_the_query() {
        assert_eq!(target("/api/groups/").as_deref(), Some("/api/groups"));
        assert_eq!(
            target("/api/groups//?limit=5&x=%2F").as_deref(),
            Some("/api/groups?limit=5&x=%2F")
        );
        assert_eq!(target("/"), None);
        assert_eq!(target("//"), None);
        assert_eq!(target("/api/groups"), None);
        assert_eq!(target("/api/groups?next=/"), None);
        assert_eq!(target("//evil.example/"), None);
        assert_eq!(target("/\\evil.example/"), None);
    }
}
