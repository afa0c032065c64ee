//! Wire shapes of `/api/webhooks` (issue 15) and their checks against the domain's bounds.

use domain::webhook::{
    is_event_type, DELIVERIES_PAGE_DEFAULT, DELIVERIES_PAGE_MAX, DESCRIPTION_MAX, EVENT_TYPES,
    URL_MAX,
};
use ports::{Delivery, DeliveryAttempt, Webhook};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::params::not_null;
use crate::error::ApiError;
use crate::json::present;

/// Body of `POST /api/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookCreate)]
pub struct WebhookCreateBody {
    /// Where deliveries are POSTed: an `http` or `https` URL, at most 2048 characters, whose
    /// host is not (and does not resolve to) a loopback, private, link-local or metadata
    /// address (unless the service allows private targets).
    #[schema(example = "https://hooks.example.com/iot", max_length = 2048)]
    pub url: String,
    /// The event types to deliver, 1 to 11 of the stream's types (duplicates are dropped).
    #[schema(schema_with = event_type_list)]
    pub event_types: Vec<String>,
    /// Free text, at most 500 characters. Default empty.
    #[serde(default)]
    #[schema(max_length = 500, example = "On-call paging")]
    pub description: Option<String>,
}

/// Body of `PATCH /api/webhooks/{id}`: at least one field. Absent fields stay as they are;
/// `null` is refused.
/// Enabling a subscription the service disabled clears its `disabled_reason`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookUpdate)]
pub struct WebhookUpdateBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, max_length = 2048)]
    pub url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = event_type_list)]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, max_length = 500)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub enabled: Option<Option<bool>>,
}

fn event_type_list() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .enum_values(Some(EVENT_TYPES)),
        )
        .min_items(Some(1))
        .max_items(Some(EVENT_TYPES.len()))
        .build()
}

/// The URL's length (the rest is the target guard's, which needs the network).
pub(crate) fn url_length(url: &str) -> Result<(), ApiError> {
    if url.len() > URL_MAX {
        return Err(ApiError::invalid(
            "url",
            format!("must be at most {URL_MAX} characters"),
        ));
    }
    Ok(())
}

/// 1 to 11 known event types (entries, duplicates included), duplicates dropped (first
/// occurrence kept).
pub(crate) fn event_types(raw: Vec<String>) -> Result<Vec<String>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid(
            "event_types",
            "must name at least one event type",
        ));
    }
    if raw.len() > EVENT_TYPES.len() {
        return Err(ApiError::invalid(
            "event_types",
            format!("must have at most {} entries", EVENT_TYPES.len()),
        ));
    }
    let mut kept: Vec<String> = Vec::new();
    for (i, name) in raw.into_iter().enumerate() {
        if !is_event_type(&name) {
            let shown: String = name.chars().take(64).collect();
            return Err(ApiError::invalid(
                &format!("event_types[{i}]"),
                format!(
                    "unknown event type '{shown}'; one of {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !kept.contains(&name) {
            kept.push(name);
        }
    }
    Ok(kept)
}

pub(crate) fn description(raw: Option<String>) -> Result<String, ApiError> {
    let text = raw.unwrap_or_default();
    if text.chars().count() > DESCRIPTION_MAX {
        return Err(ApiError::invalid(
            "description",
            format!("must be at most {DESCRIPTION_MAX} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::invalid(
            "description",
            "must not contain control characters",
        ));
    }
    Ok(text)
}

/// The checked fields of a PATCH (the URL not yet through the target guard).
pub(crate) struct Update {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

impl WebhookUpdateBody {
    /// # Errors
    /// 400 `No fields to update` for an empty body; 422 naming the first invalid field.
    pub(crate) fn check(self) -> Result<Update, ApiError> {
        if self.url.is_none()
            && self.event_types.is_none()
            && self.description.is_none()
            && self.enabled.is_none()
        {
            return Err(ApiError::bad_request("No fields to update"));
        }
        let url = not_null("url", self.url)?;
        if let Some(url) = &url {
            url_length(url)?;
        }
        let types = not_null("event_types", self.event_types)?
            .map(event_types)
            .transpose()?;
        let text = not_null("description", self.description)?
            .map(|d| description(Some(d)))
            .transpose()?;
        Ok(Update {
            url,
            event_types: types,
            description: text,
            enabled: not_null("enabled", self.enabled)?,
        })
    }
}

/// A webhook subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    #[schema(schema_with = event_type_list)]
    pub event_types: Vec<String>,
    pub description: String,
    /// Whether deliveries are sent. The service disables a subscription whose deliveries have
    /// failed for 3 days, saying why in `disabled_reason`.
    pub enabled: bool,
    /// Why the service disabled it; null otherwise.
    #[schema(required = true)]
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id,
            url: w.url.clone(),
            event_types: w.event_types.clone(),
            description: w.description.clone(),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone(),
            created_at: w.created_at.get(),
        }
    }
}

/// A new subscription with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreatedView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing secret (`whsec_` + base64), as Standard Webhooks libraries take it. It is
    /// never shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// `GET /api/webhooks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookListView {
    pub webhooks: Vec<WebhookView>,
}

/// One try of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttemptView {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// The receiver's HTTP status; null when none came (timeout, connection error, refused
    /// address).
    #[schema(required = true)]
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// What went wrong; null for a 2xx.
    #[schema(required = true)]
    pub error: Option<String>,
}

impl From<&DeliveryAttempt> for DeliveryAttemptView {
    fn from(a: &DeliveryAttempt) -> Self {
        Self {
            at: a.at.get(),
            status: a.status,
            duration_ms: a.duration_ms,
            error: a.error.clone(),
        }
    }
}

/// One delivery: an event (or a test) to one subscription. Its `id` is the `webhook-id` it is
/// sent with, `msg_` + the id without dashes.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: Uuid,
    #[schema(example = "alert.opened")]
    pub event_type: String,
    /// The event's `seq` (the stream's `id`); null for a test delivery.
    #[schema(required = true)]
    pub event_seq: Option<i64>,
    /// The latest 20 attempts, oldest first.
    pub attempts: Vec<DeliveryAttemptView>,
    /// `pending`, `delivered` or `failed`.
    #[schema(example = "pending")]
    pub state: String,
    /// When it is tried next; null once delivered or failed.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id,
            event_type: d.event_type.clone(),
            event_seq: d.event_seq,
            attempts: d.attempts.iter().map(DeliveryAttemptView::from).collect(),
            state: d.state.as_str().to_owned(),
            next_attempt_at: d.next_attempt_at.map(domain::Timestamp::get),
        }
    }
}

/// `GET /api/webhooks/{id}/deliveries`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryListView {
    pub deliveries: Vec<DeliveryView>,
}

/// The size of a deliveries page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListParams {
    /// Most deliveries to return, newest first, 1 to 100. Default 20.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

impl DeliveryListParams {
    pub(crate) fn limit(&self) -> Result<u32, ApiError> {
        match self.limit.as_deref() {
            None => Ok(DELIVERIES_PAGE_DEFAULT),
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=DELIVERIES_PAGE_MAX).contains(l))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "limit",
                        format!("must be an integer from 1 to {DELIVERIES_PAGE_MAX}, got '{raw}'"),
                    )
                }),
        }
    }
}

/// The `data` of a test delivery.
#[must_use]
pub(crate) fn test_data(webhook: Uuid) -> serde_json::Value {
    serde_json::json!({
        "webhook_id": webhook,
        "message": "A test delivery from iot-api: the subscription's URL and secret work.",
    })
}
