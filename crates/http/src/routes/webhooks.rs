//! `/api/webhooks` (issue 15): subscriptions, their test delivery and their deliveries; every
//! route, reads included, for admins and owners.

use actix_web::{web, HttpResponse};
use domain::webhook::TEST_EVENT_TYPE;
use domain::Timestamp;
use ports::{CreateWebhookError, LookupError, NewWebhook, WebhookChanges, WebhookRepository};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::webhooks::{
    description, event_types, test_data, url_length, DeliveryListParams, DeliveryListView,
    DeliveryView, WebhookCreateBody, WebhookCreatedView, WebhookListView, WebhookUpdateBody,
    WebhookView,
};
use crate::auth::{WebhookAccess, Writer};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::Idempotency;
use crate::json::JsonBody;

/// Whether deliveries may target private addresses (`IOT_WEBHOOK_ALLOW_PRIVATE`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookTargets {
    pub allow_private: bool,
}

fn webhook_not_found() -> ApiError {
    ApiError::not_found("Webhook not found")
}

fn webhook_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| webhook_not_found())
}

fn lookup(e: LookupError) -> ApiError {
    match e {
        LookupError::NotFound => webhook_not_found(),
        LookupError::Store(e) => e.into(),
    }
}

/// The URL through the target guard: 422 naming `url` when refused.
async fn checked_url(raw: &str, targets: WebhookTargets) -> Result<String, ApiError> {
    url_length(raw)?;
    webhooks::target::check(raw, targets.allow_private)
        .await
        .map(|_| raw.to_owned())
        .map_err(|why| ApiError::invalid("url", why))
}

/// The tenant's webhook subscriptions, oldest first (admin or owner).
#[utoipa::path(
    get, path = "/api/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    responses(
        (status = 200, description = "The subscriptions (secrets are never shown again)", body = WebhookListView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Writer<WebhookAccess>,
    hooks: web::Data<dyn WebhookRepository>,
) -> Result<HttpResponse, ApiError> {
    let list = hooks.list_webhooks(&caller.tenant).await?;
    Ok(HttpResponse::Ok().json(WebhookListView {
        webhooks: list.iter().map(WebhookView::from).collect(),
    }))
}

/// Subscribe a URL to event types (admin or owner). The answer carries the signing secret,
/// shown this once. Deliveries follow Standard Webhooks: `webhook-id`, `webhook-timestamp` and
/// `webhook-signature` headers, body `{"type", "timestamp", "data"}`.
#[utoipa::path(
    post, path = "/api/webhooks", tag = "webhooks", operation_id = "create_webhook",
    request_body = WebhookCreateBody,
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = r"^[!-~]([ -~]*[!-~])?$",
        description = "Makes the create safe to retry: a retry with the same key and the same body (byte for byte) within 24 hours gets the first answer (its secret included: only the caller that created it holds the key) and creates nothing; the same key with another body is a 422, and while the first request runs a 409. Per tenant; 1 to 255 printable ASCII characters."),
    ),
    responses(
        (status = 201, description = "The subscription with its secret", body = WebhookCreatedView,
            headers(("Location" = String, description = "`/api/webhooks/{id}`"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 409, description = "The tenant keeps 20 subscriptions already; or `A request with this Idempotency-Key is in progress` (a retry sent while the first runs)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid body: a `url` that is not http(s), too long, or is or resolves to a private address; an unknown or missing `event_types` entry; a `description` over 500 characters; `detail` names the field; or `Idempotency-Key: …`, a malformed key or one sent before with another body", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    caller: Writer<WebhookAccess>,
    hooks: web::Data<dyn WebhookRepository>,
    targets: web::Data<WebhookTargets>,
    idempotency: Idempotency,
    body: JsonBody<WebhookCreateBody>,
) -> Result<HttpResponse, ApiError> {
    idempotency
        .run(&caller.tenant, create_once(&caller, hooks, targets, body.0))
        .await
}

async fn create_once(
    caller: &Writer<WebhookAccess>,
    hooks: web::Data<dyn WebhookRepository>,
    targets: web::Data<WebhookTargets>,
    body: WebhookCreateBody,
) -> Result<HttpResponse, ApiError> {
    url_length(&body.url)?;
    let types = event_types(body.event_types)?;
    let text = description(body.description)?;
    let url = checked_url(&body.url, **targets).await?;
    let secret = webhooks::new_secret().map_err(ApiError::internal)?;
    let created = hooks
        .create_webhook(
            &caller.tenant,
            NewWebhook {
                id: Uuid::new_v4(),
                url,
                event_types: types,
                description: text,
                secret: secret.clone(),
                created_at: Timestamp::now(),
            },
        )
        .await
        .map_err(|e| match e {
            CreateWebhookError::TooMany(n) => {
                ApiError::conflict(format!("A tenant may have at most {n} webhooks"))
            }
            CreateWebhookError::Store(e) => e.into(),
        })?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/webhooks/{}", created.id),
        ))
        .json(WebhookCreatedView {
            webhook: WebhookView::from(&created),
            secret,
        }))
}

/// One subscription (admin or owner).
#[utoipa::path(
    get, path = "/api/webhooks/{id}", tag = "webhooks", operation_id = "get_webhook",
    params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 200, description = "The subscription", body = WebhookView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`Webhook not found`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    caller: Writer<WebhookAccess>,
    hooks: web::Data<dyn WebhookRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let found = hooks
        .get_webhook(&caller.tenant, webhook_id(&path)?)
        .await
        .map_err(lookup)?;
    Ok(HttpResponse::Ok().json(WebhookView::from(&found)))
}

/// Change a subscription (admin or owner): its URL (checked as on create), event types,
/// description, or whether it is enabled.
#[utoipa::path(
    patch, path = "/api/webhooks/{id}", tag = "webhooks", operation_id = "update_webhook",
    params(("id" = Uuid, Path, description = "Webhook UUID")),
    request_body = WebhookUpdateBody,
    responses(
        (status = 200, description = "The subscription", body = WebhookView),
        (status = 400, description = "`No fields to update` for an empty body", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`Webhook not found`", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid body, as on create, or a `null`; `detail` names the field", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    caller: Writer<WebhookAccess>,
    hooks: web::Data<dyn WebhookRepository>,
    targets: web::Data<WebhookTargets>,
    path: web::Path<String>,
    body: JsonBody<WebhookUpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    let update = body.0.check()?;
    let url = match update.url {
        Some(raw) => Some(checked_url(&raw, **targets).await?),
        None => None,
    };
    let updated = hooks
        .update_webhook(
            &caller.tenant,
            id,
            WebhookChanges {
                url,
                event_types: update.event_types,
                description: update.description,
                enabled: update.enabled,
            },
        )
        .await
        .map_err(lookup)?;
    Ok(HttpResponse::Ok().json(WebhookView::from(&updated)))
}

/// Delete a subscription and its deliveries; pending ones are never sent (admin or owner).
#[utoipa::path(
    delete, path = "/api/webhooks/{id}", tag = "webhooks", operation_id = "delete_webhook",
    params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`Webhook not found`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    caller: Writer<WebhookAccess>,
    hooks: web::Data<dyn WebhookRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    hooks
        .delete_webhook(&caller.tenant, webhook_id(&path)?)
        .await
        .map_err(lookup)?;
    Ok(HttpResponse::NoContent().finish())
}

/// The test delivery queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestQueuedView {
    /// The delivery's id (in `GET /api/webhooks/{id}/deliveries`); it is sent as
    /// `webhook-id: msg_<id without dashes>`.
    pub delivery_id: Uuid,
}

/// Queue a `webhook.test` delivery (admin or owner): `{"type": "webhook.test", "timestamp",
/// "data": {"webhook_id", "message"}}`, sent and retried like any event's, even when the
/// subscription is disabled.
#[utoipa::path(
    post, path = "/api/webhooks/{id}/test", tag = "webhooks", operation_id = "test_webhook",
    params(("id" = Uuid, Path, description = "Webhook UUID")),
    responses(
        (status = 202, description = "Queued; see its attempts in the deliveries list", body = TestQueuedView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`Webhook not found`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
        (status = 507, description = "The embedded store's outbox is full", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn test(
    caller: Writer<WebhookAccess>,
    hooks: web::Data<dyn WebhookRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    let now = Timestamp::now();
    let body = webhooks::payload(TEST_EVENT_TYPE, now, test_data(id));
    let delivery_id = hooks
        .enqueue_test(&caller.tenant, id, &body, now)
        .await
        .map_err(lookup)?;
    Ok(HttpResponse::Accepted().json(TestQueuedView { delivery_id }))
}

/// A subscription's deliveries with their attempts, newest first (admin or owner).
#[utoipa::path(
    get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    params(("id" = Uuid, Path, description = "Webhook UUID"), DeliveryListParams),
    responses(
        (status = 200, description = "The newest deliveries", body = DeliveryListView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`Webhook not found`", body = ErrorBody),
        (status = 422, description = "Bad `limit`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn deliveries(
    caller: Writer<WebhookAccess>,
    hooks: web::Data<dyn WebhookRepository>,
    path: web::Path<String>,
    params: web::Query<DeliveryListParams>,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    let limit = params.limit()?;
    let found = hooks
        .list_deliveries(&caller.tenant, id, limit)
        .await
        .map_err(lookup)?;
    Ok(HttpResponse::Ok().json(DeliveryListView {
        deliveries: found.iter().map(DeliveryView::from).collect(),
    }))
}
