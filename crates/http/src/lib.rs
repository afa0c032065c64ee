//! The HTTP adapter: actix-web routes, DTOs, bearer authentication, error bodies, OpenAPI.
//!
//! Layer rule: handlers parse input into domain types (in `dto`), call a port, and map the port's
//! error enum to a status in one place each. No SQL, no business rule beyond that mapping.
//! [`configure`] is the single route table, used by the binary and by every handler test.
#![forbid(unsafe_code)]

pub mod api_dto;
pub mod auth;
pub mod dto;
pub mod error;
pub mod group_views;
pub mod json;
pub mod observe;
pub mod openapi;
mod routes;
pub mod schemas;
pub mod timeout;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use ports::{
    DeviceGroupRepository, DeviceRepository, HealthProbe, MaintenanceWindowRepository,
    ReadingRepository,
};

pub use auth::{Authenticator, Caller, Role};
pub use error::{ApiError, ErrorBody};

/// Everything the handlers need, as ports.
#[derive(Clone)]
pub struct AppState {
    pub groups: Arc<dyn DeviceGroupRepository>,
    pub devices: Arc<dyn DeviceRepository>,
    pub readings: Arc<dyn ReadingRepository>,
    pub windows: Arc<dyn MaintenanceWindowRepository>,
    pub health: Arc<dyn HealthProbe>,
    pub authenticator: Authenticator,
    /// Shared by all HTTP workers.
    pub group_views: Arc<group_views::GroupViews>,
    pub ingest: IngestSettings,
}

/// What readings the service admits, beyond their own validity.
#[derive(Debug, Clone, Copy, Default)]
pub struct IngestSettings {
    /// How far ahead of the server's clock a reading may be stamped.
    pub max_future_skew: domain::MaxFutureSkew,
}

impl AppState {
    /// All ports served by one store.
    pub fn from_store<S>(store: Arc<S>, authenticator: Authenticator) -> Self
    where
        S: DeviceGroupRepository
            + DeviceRepository
            + ReadingRepository
            + MaintenanceWindowRepository
            + HealthProbe
            + 'static,
    {
        Self {
            groups: store.clone(),
            devices: store.clone(),
            readings: store.clone(),
            windows: store.clone(),
            health: store,
            authenticator,
            group_views: Arc::default(),
            ingest: IngestSettings::default(),
        }
    }

    #[must_use]
    pub fn with_ingest(self, ingest: IngestSettings) -> Self {
        Self { ingest, ..self }
    }

    /// Keeps at most `bytes` of rendered group views (see [`group_views`]); 0 keeps none.
    #[must_use]
    pub fn with_group_views(self, bytes: u64) -> Self {
        Self {
            group_views: Arc::new(group_views::GroupViews::with_capacity(bytes)),
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
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::invalid("query", e).into()),
            )
            .app_data(web::Data::from(state.windows.clone()))
            .app_data(web::Data::from(state.health.clone()))
            .app_data(web::Data::new(state.authenticator.clone()))
            .app_data(web::Data::from(state.group_views.clone()))
            .app_data(web::Data::new(state.ingest))
            .app_data(web::Data::new(openapi::SpecJson(openapi::document())))
            .service(
                web::resource("/health/live")
                    .get(routes::meta::live)
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/health/ready")
                    .get(routes::meta::ready)
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/openapi.json")
                    .get(routes::meta::openapi_json)
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/docs")
                    .get(routes::meta::docs)
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/customer/device-groups")
                    .get(routes::customer_groups::list)
                    .post(routes::customer_groups::create)
                    .default_service(not_allowed("GET, POST")),
            )
            .service(
                web::resource("/customer/device-groups/{group_id}")
                    .get(routes::customer_groups::get)
                    .patch(routes::customer_groups::update)
                    .delete(routes::customer_groups::delete)
                    .default_service(not_allowed("GET, PATCH, DELETE")),
            )
            .service(
                web::resource("/customer/maintenance-windows")
                    .get(routes::customer_windows::list)
                    .post(routes::customer_windows::create)
                    .default_service(not_allowed("GET, POST")),
            )
            .service(
                web::resource("/customer/maintenance-windows/{window_id}")
                    .get(routes::customer_windows::get)
                    .patch(routes::customer_windows::update)
                    .delete(routes::customer_windows::delete)
                    .default_service(not_allowed("GET, PATCH, DELETE")),
            )
            .service(
                web::resource("/customer/maintenance-windows/{window_id}/occurrences")
                    .get(routes::customer_windows::occurrences)
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/customer/maintenance-windows/{window_id}/devices")
                    .get(routes::customer_windows::devices)
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/customer/device-groups/{group_id}/devices")
                    .get(routes::customer_groups::members)
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/customer/device-groups/{group_id}/devices/{device_id}")
                    .put(routes::customer_groups::add_member)
                    .delete(routes::customer_groups::remove_member)
                    .default_service(not_allowed("PUT, DELETE")),
            )
            .service(
                web::resource("/api/devices")
                    .get(routes::devices::list)
                    .post(routes::devices::create)
                    .default_service(not_allowed("GET, POST")),
            )
            .service(
                web::resource("/api/devices/{id}")
                    .get(routes::devices::get)
                    .put(routes::devices::update)
                    .delete(routes::devices::delete)
                    .default_service(not_allowed("GET, PUT, DELETE")),
            )
            .service(
                web::resource("/api/devices/{id}/groups")
                    .get(routes::devices::groups)
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/api/devices/{id}/readings")
                    .get(routes::devices::readings)
                    .post(routes::devices::record)
                    .default_service(not_allowed("GET, POST")),
            )
            .service(
                web::resource("/api/readings")
                    .post(routes::readings::ingest)
                    .default_service(not_allowed("POST")),
            )
            .service(
                web::resource("/api/groups")
                    .get(routes::groups::list)
                    .post(routes::groups::create)
                    .default_service(not_allowed("GET, POST")),
            )
            .service(
                web::resource("/api/groups/{group_id}")
                    .get(routes::groups::get)
                    .put(routes::groups::update)
                    .delete(routes::groups::delete)
                    .default_service(not_allowed("GET, PUT, DELETE")),
            )
            .service(
                web::resource("/api/groups/{group_id}/readings")
                    .get(routes::groups::readings)
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/api/groups/{group_id}/alerts")
                    .get(routes::groups::alerts)
                    .default_service(not_allowed("GET")),
            )
            .default_service(web::to(not_found));
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(ErrorBody {
        detail: "Not Found".to_owned(),
        code: None,
    })
}

/// 405 with the `Allow` header listing what the resource does answer.
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move {
        HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, allow))
            .json(ErrorBody {
                detail: "Method Not Allowed".to_owned(),
                code: None,
            })
    })
}
