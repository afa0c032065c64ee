//! Webhooks (issue 15): subscriptions, their outbox of deliveries, and the port through which
//! the delivery worker renders an event's `data`.

use async_trait::async_trait;
use domain::{TenantId, Timestamp};
use thiserror::Error;
use uuid::Uuid;

use crate::{LookupError, StoreError};

/// A subscription as stored (its secret apart: see [`WebhookRepository::create_webhook`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// Each one of [`domain::webhook::EVENT_TYPES`], without duplicates, in the caller's order.
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why the service disabled it (deliveries failing for days); `None` once enabled again.
    pub disabled_reason: Option<String>,
    pub created_at: Timestamp,
}

/// A subscription to store; the caller has checked every field against the domain's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    /// `whsec_` + base64 of the signing key.
    pub secret: String,
    pub created_at: Timestamp,
}

/// Changes to a subscription; `None` leaves a field as it is. Enabling clears
/// `disabled_reason` and the failure streak.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// Errors of [`WebhookRepository::create_webhook`].
#[derive(Debug, Error)]
pub enum CreateWebhookError {
    /// The tenant already keeps this many subscriptions, the most it may.
    #[error("a tenant may have at most {0} webhooks")]
    TooMany(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One try of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub at: Timestamp,
    /// The receiver's HTTP status; `None` when no answer came (timeout, connection error, a
    /// refused address, an event that could not be rendered).
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// What went wrong, briefly; `None` for a 2xx.
    pub error: Option<String>,
}

/// A delivery as `GET /api/webhooks/{id}/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub event_type: String,
    /// The event's `seq`; `None` for a test delivery.
    pub event_seq: Option<i64>,
    pub created_at: Timestamp,
    /// The latest [`domain::webhook::ATTEMPTS_KEPT`] attempts, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
    pub state: DeliveryState,
    /// When it is tried next; `None` once delivered or failed.
    pub next_attempt_at: Option<Timestamp>,
}

/// Subscriptions of one tenant, and the deliveries they are shown. Every method is scoped by
/// `tenant`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    /// The tenant's subscriptions, oldest first (ties by id).
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn list_webhooks(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError>;

    /// Stores a new, enabled subscription with its secret.
    ///
    /// # Errors
    /// MUST return [`CreateWebhookError::TooMany`] when the tenant keeps
    /// [`domain::webhook::WEBHOOKS_PER_TENANT_MAX`] already (counted in the same transaction).
    async fn create_webhook(
        &self,
        tenant: &TenantId,
        webhook: NewWebhook,
    ) -> Result<Webhook, CreateWebhookError>;

    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such subscription.
    async fn get_webhook(&self, tenant: &TenantId, id: Uuid) -> Result<Webhook, LookupError>;

    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such subscription.
    async fn update_webhook(
        &self,
        tenant: &TenantId,
        id: Uuid,
        changes: WebhookChanges,
    ) -> Result<Webhook, LookupError>;

    /// Deletes the subscription with its deliveries (pending ones are never sent).
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such subscription.
    async fn delete_webhook(&self, tenant: &TenantId, id: Uuid) -> Result<(), LookupError>;

    /// Queues a delivery of type [`domain::webhook::TEST_EVENT_TYPE`] whose whole body is
    /// `payload` (JSON), due at once, whether the subscription is enabled or not; its id.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such subscription;
    /// [`StoreError::Full`] when a bounded store has no room.
    async fn enqueue_test(
        &self,
        tenant: &TenantId,
        id: Uuid,
        payload: &str,
        now: Timestamp,
    ) -> Result<Uuid, LookupError>;

    /// The subscription's newest `limit` deliveries, newest first.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such subscription.
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<Delivery>, LookupError>;
}

/// A delivery the worker claimed: everything it needs to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub tenant: TenantId,
    pub id: Uuid,
    /// The claim's token: only an outcome recorded with it counts.
    pub lease: Uuid,
    pub subscription_id: Uuid,
    pub url: String,
    pub secret: String,
    pub event_type: String,
    pub event_seq: Option<i64>,
    /// When the event happened (the payload's `timestamp`).
    pub event_at: Timestamp,
    /// The exact body to send; `None` until the first attempt renders it
    /// ([`WebhookOutbox::store_payload`]).
    pub payload: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    pub first_failure_at: Option<Timestamp>,
}

/// What an attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; tried again at this instant.
    RetryAt(Timestamp),
    /// Failed for good.
    Failed,
}

/// The worker's side of the outbox, across tenants. Several instances may run it on one store:
/// a claimed delivery is leased to its claimer until the lease runs out, then due again (so an
/// instance that dies mid-attempt loses nothing: the delivery is sent again, with the same id).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookOutbox: Send + Sync {
    /// Claims up to `limit` pending deliveries due at `now` of enabled subscriptions, in every
    /// tenant, leasing them until `now + lease`.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;

    /// Stores the body rendered for a claimed delivery's first attempt, unless one is stored
    /// already; answers the body stored (the one to send, byte for byte, on every attempt), or
    /// `None` when the lease was lost.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn store_payload(
        &self,
        delivery: &ClaimedDelivery,
        payload: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Records an attempt of a claimed delivery and what follows, ending the lease. A failure
    /// starts or extends its subscription's failure streak, and disables the subscription
    /// (with a reason) once the streak is `disable_after` old; a success ends the streak.
    /// Nothing happens when the lease was lost.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn record_attempt(
        &self,
        delivery: &ClaimedDelivery,
        attempt: &DeliveryAttempt,
        outcome: AttemptOutcome,
        disable_after: std::time::Duration,
    ) -> Result<(), StoreError>;

    /// Deletes up to `limit` delivered or failed deliveries created before `before`, in every
    /// tenant; how many.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn purge_finished(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
}

/// Renders the `data` of a stored event, as the live stream shows it: the port through which
/// webhook deliveries get their payload (the event log's renderer implements it).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventPayloads: Send + Sync {
    /// The JSON text of event `seq`'s `data`; `None` when the tenant has no such event (any
    /// more).
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn event_data(&self, tenant: &TenantId, seq: i64) -> Result<Option<String>, StoreError>;
}

/// The placeholder [`EventPayloads`] until the event log's renderer is wired in: every event
/// fails to render (so real events' deliveries are retried, then failed, never sent empty).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnwiredEventPayloads;

#[async_trait]
impl EventPayloads for UnwiredEventPayloads {
    async fn event_data(
        &self,
        _tenant: &TenantId,
        _seq: i64,
    ) -> Result<Option<String>, StoreError> {
        Err(StoreError::Unknown(anyhow::anyhow!(
            "event payloads are not wired yet (UnwiredEventPayloads)"
        )))
    }
}

/// Why the service disabled a subscription, as its `disabled_reason` says.
#[must_use]
pub fn disabled_reason(disable_after: std::time::Duration, last: &DeliveryAttempt) -> String {
    let secs = disable_after.as_secs();
    let span = if secs % 3600 == 0 {
        format!("{} hours", secs / 3600)
    } else {
        format!("{secs} seconds")
    };
    format!(
        "deliveries failed for {span} without a success (last error: {})",
        last.error.as_deref().unwrap_or("unknown")
    )
}
