//! The OpenAPI document: the service's description, and the paths of the route table
//! (`routes::table`), generated from the handlers' annotations.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::table::RoutesDoc;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "iot-api",
        description = "Multi-tenant IoT backend: device groups and their alert status, device \
readings, alerts with their history and acknowledgements, and maintenance windows that mute \
alerts. Every endpoint but health and this document \
needs a bearer JWT (HS256) whose `tenant_id` scopes all data.",
        license(name = "MIT", identifier = "MIT")
    ),
    servers((url = "/", description = "This server")),
    // Schemas only query parameters name: the derive collects those of bodies alone.
    // The event stream's `data` shapes are named by its description only.
    components(schemas(
        crate::api::alerts::AlertStateFilterDto,
        crate::api::events::AlertEventData,
        crate::api::events::WindowEventData,
        crate::api::events::DeviceStateData,
        crate::api::events::ResetData,
    )),
    tags(
        (name = "groups", description = "Group API: groups by UUID with devices, alert summary and readings (seed 002)"),
        (name = "devices", description = "Devices, their thresholds and their kept state"),
        (name = "alerts", description = "Alerts: episodes of a device out of the ordinary, their events, and acknowledgements"),
        (name = "readings", description = "Ingest and read device readings"),
        (name = "customer: device groups", description = "Device groups addressed by slug (seed 000)"),
        (name = "customer: maintenance windows", description = "Maintenance windows (seed 001)"),
        (name = "events", description = "The live stream of alert, window and device-state events (Server-Sent Events)"),
        (name = "webhooks", description = "Webhook subscriptions (Standard Webhooks), their test delivery and their deliveries; admins and owners only"),
        (name = "health", description = "Liveness and readiness, no token"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        // PATCH bodies must change something ({} is 400 `No fields to update`); the derive does
        // not emit `minProperties`, so it is set here.
        for name in [
            "DeviceGroupUpdate",
            "MaintenanceWindowUpdate",
            "WebhookUpdate",
        ] {
            if let Some(utoipa::openapi::RefOr::T(utoipa::openapi::Schema::Object(schema))) =
                components.schemas.get_mut(name)
            {
                schema.min_properties = Some(1);
            }
        }
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        scheme.description = Some(
            "HS256 JWT with claims `sub`, `tenant_id`, `roles` (owner, admin, operator, viewer) and `exp`."
                .to_owned(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        unknown_query_parameters_are_refused(openapi);
        other_body_types_are_refused(openapi);
        conditional_requests(openapi);
    }
}

/// Every route refuses a query parameter it does not declare with a 422 (see [`crate::query`]);
/// the operations that declare no 422 of their own say so here.
fn unknown_query_parameters_are_refused(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let refused = ResponseBuilder::new()
        .description("An unknown query parameter; `detail` names it")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            if responses.contains_key("422") {
                continue;
            }
            // A BTreeMap: the codes stay in order.
            responses.insert("422".to_owned(), refused.clone().into());
        }
    }
}

/// Every operation that reads a JSON body refuses another declared `Content-Type` with a 415
/// (see [`crate::json::json_content_type`]).
fn other_body_types_are_refused(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let refused = ResponseBuilder::new()
        .description(
            "The body's `Content-Type` is not JSON (`application/json` or `application/*+json`; \
             a body without one is read as JSON)",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for item in openapi.paths.paths.values_mut() {
        let operations = [&mut item.put, &mut item.post, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            if operation.request_body.is_some() {
                operation
                    .responses
                    .responses
                    .insert("415".to_owned(), refused.clone().into());
            }
        }
    }
}

/// The tags and preconditions of [`crate::conditional`]: every tagged read declares `ETag`,
/// `If-None-Match` and its 304; every checked write `If-Match`, its 412 and the new tag.
fn conditional_requests(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ContentBuilder, Object, Ref, RefOr, Required, ResponseBuilder, Type};
    let text = || Object::with_type(Type::String);
    let etag = || {
        HeaderBuilder::new()
            .schema(text())
            .description(Some(
                "Strong tag of this representation (a hash of the body): send it back in \
                 `If-None-Match` to be answered 304 while it holds, or in `If-Match` on a write \
                 to refuse the write when the resource has changed",
            ))
            .build()
    };
    let tag_header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(text()))
            .build()
    };
    let with_tag = |response: &mut RefOr<utoipa::openapi::Response>| {
        if let RefOr::T(response) = response {
            response.headers.insert("ETag".to_owned(), etag());
        }
    };
    let not_modified = ResponseBuilder::new()
        .description("Not modified: `If-None-Match` names the current tag; no body")
        .header("ETag", etag())
        .build();
    let refused = ResponseBuilder::new()
        .description(
            "`Precondition failed: the resource has changed`: `If-Match` names none of the \
             resource's current tag (nothing was changed)",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for (path, item) in &mut openapi.paths.paths {
        if let Some(get) = item
            .get
            .as_mut()
            .filter(|_| crate::conditional::tagged(path))
        {
            get.parameters.get_or_insert_with(Vec::new).push(tag_header(
                "If-None-Match",
                "Tags of representations the client holds (or `*`): 304 when one is current",
            ));
            if let Some(ok) = get.responses.responses.get_mut("200") {
                with_tag(ok);
            }
            get.responses
                .responses
                .insert("304".to_owned(), not_modified.clone().into());
        }
        for (checked, method, then) in crate::routes::table::CHECKED_WRITES {
            if checked != path {
                continue;
            }
            let operation = match *method {
                "PUT" => item.put.as_mut(),
                "PATCH" => item.patch.as_mut(),
                "DELETE" => item.delete.as_mut(),
                _ => None,
            };
            let Some(operation) = operation else { continue };
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(tag_header(
                    "If-Match",
                    "Tags of the resource's representations the client last read (its GET's \
                 `ETag`), or `*` for any: the write happens only if one is current, else 412",
                ));
            if *then != "Gone" {
                for (status, response) in &mut operation.responses.responses {
                    if status.starts_with('2') {
                        with_tag(response);
                    }
                }
            }
            operation
                .responses
                .responses
                .insert("412".to_owned(), refused.clone().into());
        }
    }
}

/// The document: the service's description with the route table's paths.
#[must_use]
pub fn api() -> utoipa::openapi::OpenApi {
    let mut api = ApiDoc::openapi();
    api.merge(RoutesDoc::openapi());
    // After the merge: the modifier edits the schemas the paths brought.
    BearerScheme.modify(&mut api);
    api
}

/// The document as served and committed: pretty JSON.
#[must_use]
pub fn document() -> String {
    api()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
}
