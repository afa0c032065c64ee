//! The one route table: each path with the query parameters it takes and its method → handler
//! pairs. It drives the actix configuration (with each resource's `Allow` header and the query
//! parameters its reads declare, checked by the caller extractors), the OpenAPI paths and [`ROUTES`], which tests iterate. Adding an endpoint is
//! one row here (and its `#[utoipa::path]` annotation).

use actix_web::http::header::{HeaderValue, ALLOW};
use actix_web::{web, HttpResponse};

use super::{
    alerts, customer_groups, customer_windows, devices, events, groups, meta, readings, webhooks,
};
use crate::api::alerts::{AlertFilterParams, AlertPageParams, AlertStateParams};
use crate::api::buckets::SeriesParams;
use crate::api::customer_windows::{DryRunParams, OccurrenceParams, WindowListParams};
use crate::api::devices::DeviceFilterParams;
use crate::api::events::EventParams;
use crate::api::group_api::TreeParams;
use crate::api::params::{ListParams, ReadingsDeleteParams, ReadingsParams};
use crate::api::webhooks::DeliveryListParams;
use crate::error::ErrorBody;
use crate::query::QueryKeys;
use crate::{auth, conditional};

/// A row of the route table: a path and the methods it answers.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
}

macro_rules! method_name {
    (get) => {
        "GET"
    };
    (post) => {
        "POST"
    };
    (put) => {
        "PUT"
    };
    (patch) => {
        "PATCH"
    };
    (delete) => {
        "DELETE"
    };
}

/// The route(s) of one method: a GET also answers HEAD, with the same status and headers (the
/// HTTP/1 codec leaves the body out), which actix does not do for resource routes by itself.
/// Reads carry an `ETag` (but on the probes and the docs page); a write marked
/// `if_match(policy, get, then)` takes `If-Match` against the tag of `get`'s answer (see
/// [`crate::conditional`]).
macro_rules! method_routes {
    ($path:literal, $resource:expr, get, $handler:expr) => {
        $resource
            .route(tag_reads($path, web::get().to($handler)))
            .route(tag_reads($path, web::head().to($handler)))
    };
    ($path:literal, $resource:expr, $method:ident, $handler:expr) => {
        $resource.route(web::$method().to($handler))
    };
    ($path:literal, $resource:expr, $method:ident, $handler:expr, $policy:ident, $get:expr, $then:ident) => {
        $resource.route(
            web::$method()
                .to($handler)
                .wrap(actix_web::middleware::from_fn(
                move |req: actix_web::dev::ServiceRequest,
                      next: actix_web::middleware::Next<actix_web::body::BoxBody>| {
                    conditional::check_writes::<auth::$policy, _, _>(
                        $get,
                        conditional::Then::$then,
                        req,
                        next,
                    )
                },
            )),
        )
    };
}

/// `route` (a read of the resource at `path`), tagged unless [`conditional::tagged`] says not.
fn tag_reads(path: &str, route: actix_web::Route) -> actix_web::Route {
    if conditional::tagged(path) {
        route.wrap(actix_web::middleware::from_fn(conditional::tag_reads))
    } else {
        route
    }
}

/// The methods a resource answers, as `Allow` lists them: the table's, with HEAD after GET.
#[must_use]
pub fn allowed(methods: &[&'static str]) -> Vec<&'static str> {
    methods
        .iter()
        .flat_map(|m| {
            if *m == "GET" {
                &["GET", "HEAD"][..]
            } else {
                std::slice::from_ref(m)
            }
        })
        .copied()
        .collect()
}

/// The route of the table `path` matches (a template such as `/api/groups/{group_id}`).
#[must_use]
pub fn route_of(template: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == template)
}

macro_rules! checked_write {
    ($path:literal, $method:ident, $policy:ident, $then:ident) => {
        ($path, method_name!($method), stringify!($then))
    };
}

macro_rules! route_table {
    ($(
        $path:literal query($keys:expr) {
            $( $method:ident => $($handler:ident)::+
                $( if_match($policy:ident, $($get:ident)::+, $then:ident) )? ),+ $(,)?
        }
    )+) => {
        /// Every route, in the order they are matched.
        pub const ROUTES: &[Route] = &[
            $( Route { path: $path, methods: &[ $( method_name!($method) ),+ ] } ),+
        ];

        /// The writes that take `If-Match`: path, method, and what tags their success
        /// ([`conditional::Then`], by name).
        pub const CHECKED_WRITES: &[(&str, &str, &str)] = &[
            $( $( $( checked_write!($path, $method, $policy, $then), )? )+ )+
        ];

        /// Registers every route of the table.
        pub(crate) fn register(cfg: &mut web::ServiceConfig) {
            $(
                let resource = web::resource($path).app_data(web::Data::new($keys));
                $( let resource = method_routes!(
                    $path, resource, $method, $($handler)::+ $(, $policy, $($get)::+, $then)?
                ); )+
                cfg.service(
                    resource.default_service(not_allowed(&[ $( method_name!($method) ),+ ])),
                );
            )+
        }

        /// The OpenAPI paths of the table's handlers.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths( $( $( $($handler)::+ ),+ ),+ ))]
        pub(crate) struct RoutesDoc;
    };
}

route_table! {
    "/health/live" query(QueryKeys::none()) { get => meta::live }
    "/health/ready" query(QueryKeys::none()) { get => meta::ready }
    "/openapi.json" query(QueryKeys::none()) { get => meta::openapi_json }
    "/docs" query(QueryKeys::none()) { get => meta::docs }
    "/customer/device-groups" query(QueryKeys::of::<ListParams>()) {
        get => customer_groups::list,
        post => customer_groups::create,
    }
    "/customer/device-groups/{group_id}" query(QueryKeys::none()) {
        get => customer_groups::get,
        patch => customer_groups::update if_match(DataWrites, customer_groups::get, Body),
        delete => customer_groups::delete if_match(DataWrites, customer_groups::get, Gone),
    }
    "/customer/maintenance-windows"
        query(QueryKeys::of::<WindowListParams>().and::<ListParams>().writes::<DryRunParams>())
    {
        get => customer_windows::list,
        post => customer_windows::create,
    }
    "/customer/maintenance-windows/{window_id}" query(QueryKeys::none().writes::<DryRunParams>()) {
        get => customer_windows::get,
        patch => customer_windows::update if_match(WindowWrites, customer_windows::get, Body),
        delete => customer_windows::delete if_match(WindowWrites, customer_windows::get, Gone),
    }
    "/customer/maintenance-windows/{window_id}/occurrences"
        query(QueryKeys::of::<OccurrenceParams>())
    {
        get => customer_windows::occurrences,
    }
    "/customer/maintenance-windows/{window_id}/devices" query(QueryKeys::of::<ListParams>()) {
        get => customer_windows::devices,
    }
    "/customer/maintenance-windows/{window_id}/report" query(QueryKeys::none()) {
        get => customer_windows::report,
    }
    "/customer/device-groups/{group_id}/devices" query(QueryKeys::of::<ListParams>()) {
        get => customer_groups::members,
    }
    "/customer/device-groups/{group_id}/devices/{device_id}" query(QueryKeys::none()) {
        put => customer_groups::add_member
            if_match(DataWrites, customer_groups::group_of_member, Get),
        delete => customer_groups::remove_member
            if_match(DataWrites, customer_groups::group_of_member, Get),
    }
    "/api/devices" query(QueryKeys::of::<ListParams>().and::<DeviceFilterParams>()) {
        get => devices::list,
        post => devices::create,
    }
    "/api/devices/{id}" query(QueryKeys::none()) {
        get => devices::get,
        put => devices::update if_match(DataWrites, devices::get, Body),
        delete => devices::delete if_match(DataWrites, devices::get, Gone),
    }
    "/api/devices/{id}/maintenance" query(QueryKeys::none()) {
        get => devices::maintenance,
    }
    "/api/devices/{id}/groups" query(QueryKeys::of::<ListParams>()) {
        get => devices::groups,
    }
    "/api/devices/{id}/readings"
        query(QueryKeys::of::<ReadingsParams>().deletes::<ReadingsDeleteParams>())
    {
        get => devices::readings,
        post => devices::record,
        delete => devices::delete_readings,
    }
    "/api/devices/{id}/alerts"
        query(QueryKeys::of::<AlertStateParams>().and::<AlertPageParams>())
    {
        get => alerts::device_history,
    }
    "/api/alerts"
        query(QueryKeys::of::<AlertStateParams>().and::<AlertFilterParams>().and::<AlertPageParams>())
    {
        get => alerts::list,
    }
    "/api/alerts/{id}" query(QueryKeys::none()) { get => alerts::get }
    "/api/alerts/{id}/ack" query(QueryKeys::none()) {
        post => alerts::ack,
        delete => alerts::unack,
    }
    "/api/readings" query(QueryKeys::none()) { post => readings::ingest }
    "/api/events" query(QueryKeys::of::<EventParams>()) { get => events::stream }
    "/api/groups" query(QueryKeys::of::<ListParams>()) {
        get => groups::list,
        post => groups::create,
    }
    "/api/groups/preview" query(QueryKeys::none()) { post => groups::preview }
    "/api/groups/{group_id}" query(QueryKeys::of::<TreeParams>()) {
        get => groups::get,
        put => groups::update if_match(GroupApiWrites, groups::get, Body),
        delete => groups::delete if_match(GroupApiWrites, groups::get, Gone),
    }
    "/api/groups/{group_id}/readings"
        query(QueryKeys::of::<ReadingsParams>().and::<SeriesParams>().and::<TreeParams>())
    {
        get => groups::readings,
    }
    "/api/groups/{group_id}/alerts" query(QueryKeys::of::<TreeParams>()) { get => groups::alerts }
    "/api/webhooks" query(QueryKeys::none()) {
        get => webhooks::list,
        post => webhooks::create,
    }
    "/api/webhooks/{id}" query(QueryKeys::none()) {
        get => webhooks::get,
        patch => webhooks::update,
        delete => webhooks::delete,
    }
    "/api/webhooks/{id}/test" query(QueryKeys::none()) { post => webhooks::test }
    "/api/webhooks/{id}/deliveries" query(QueryKeys::of::<DeliveryListParams>()) {
        get => webhooks::deliveries,
    }
}

/// 405 with the `Allow` header listing the methods the resource answers.
fn not_allowed(methods: &[&'static str]) -> actix_web::Route {
    let allow =
        HeaderValue::from_str(&allowed(methods).join(", ")).expect("method names are ASCII");
    web::to(move || {
        let allow = allow.clone();
        async move {
            HttpResponse::MethodNotAllowed()
                .insert_header((ALLOW, allow))
                .json(ErrorBody {
                    detail: "Method Not Allowed".to_owned(),
                    code: None,
                })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_table_is_in_the_openapi_document_with_its_methods() {
        let doc = crate::openapi::api();
        for route in ROUTES {
            let item = doc
                .paths
                .paths
                .get(route.path)
                .unwrap_or_else(|| panic!("{} is not documented", route.path));
            for method in route.methods {
                let documented = match *method {
                    "GET" => item.get.is_some(),
                    "POST" => item.post.is_some(),
                    "PUT" => item.put.is_some(),
                    "PATCH" => item.patch.is_some(),
                    "DELETE" => item.delete.is_some(),
                    other => panic!("unexpected method {other}"),
                };
                assert!(documented, "{method} {} is not documented", route.path);
            }
        }
        assert_eq!(
            doc.paths.paths.len(),
            ROUTES.len(),
            "documented paths beyond the table"
        );
    }

    /// Clients learn the tags and preconditions from the document: every tagged read declares
    /// `If-None-Match`, its 304 and `ETag`; every checked write `If-Match` and its 412.
    #[test]
    fn conditional_requests_are_in_the_openapi_document() {
        let doc = serde_json::to_value(crate::openapi::api()).expect("serialisable");
        let names = |operation: &serde_json::Value| -> Vec<String> {
            operation["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        for route in ROUTES.iter().filter(|r| r.methods.contains(&"GET")) {
            let get = &doc["paths"][route.path]["get"];
            let tagged = crate::conditional::tagged(route.path);
            assert_eq!(
                names(get).contains(&"If-None-Match".to_owned()),
                tagged,
                "GET {}",
                route.path
            );
            assert_eq!(
                get["responses"].get("304").is_some(),
                tagged,
                "GET {}",
                route.path
            );
            assert_eq!(
                get["responses"]["200"]["headers"].get("ETag").is_some(),
                tagged,
                "GET {}",
                route.path
            );
        }
        assert_eq!(CHECKED_WRITES.len(), 10);
        for (path, method, then) in CHECKED_WRITES {
            let operation = &doc["paths"][path][method.to_ascii_lowercase()];
            assert!(
                names(operation).contains(&"If-Match".to_owned()),
                "{method} {path}"
            );
            assert!(
                operation["responses"].get("412").is_some(),
                "{method} {path}"
            );
            let tag = operation["responses"]["200"]["headers"]
                .get("ETag")
                .is_some();
            assert_eq!(tag, *then != "Gone", "{method} {path}");
        }
    }

    /// A `$ref` to a schema the document does not define breaks generated clients (and the
    /// spec linter of `make clients`): every one must resolve.
    #[test]
    fn every_schema_reference_of_the_openapi_document_resolves() {
        fn refs(value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                        found.push(target.clone());
                    }
                    map.values().for_each(|v| refs(v, found));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
                _ => {}
            }
        }
        let doc = serde_json::to_value(crate::openapi::api()).expect("serialisable");
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {target}"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{target} is referenced but not defined"
            );
        }
    }
}
