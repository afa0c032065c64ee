//! Webhook subscriptions and their outbox in memory: one map for all tenants, capped in
//! deliveries (finished ones make room first). The worker's claims lease deliveries as the
//! PostgreSQL store does, so the same worker drives both; nothing outlives the process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use domain::webhook::{ATTEMPTS_KEPT, TEST_EVENT_TYPE, WEBHOOKS_PER_TENANT_MAX};
use domain::{TenantId, Timestamp};
use ports::{
    AttemptOutcome, ClaimedDelivery, CreateWebhookError, Delivery, DeliveryAttempt, DeliveryState,
    LookupError, NewWebhook, StoreError, Webhook, WebhookChanges, WebhookOutbox, WebhookRepository,
};
use uuid::Uuid;

use crate::MemoryStore;

struct Subscription {
    webhook: Webhook,
    secret: String,
    failing_since: Option<Timestamp>,
}

struct Entry {
    tenant: TenantId,
    subscription_id: Uuid,
    event_seq: Option<i64>,
    event_type: String,
    event_at: Timestamp,
    payload: Option<String>,
    state: DeliveryState,
    created_at: Timestamp,
    /// Creation order, for "newest first" among deliveries created at one instant.
    order: u64,
    next_attempt_at: Option<Timestamp>,
    lease: Option<Uuid>,
    attempt_count: u32,
    first_failure_at: Option<Timestamp>,
    attempts: VecDeque<DeliveryAttempt>,
}

#[derive(Default)]
struct Data {
    subscriptions: HashMap<TenantId, Vec<Subscription>>,
    deliveries: HashMap<Uuid, Entry>,
    order: u64,
}

impl Data {
    fn subscription(&mut self, tenant: &TenantId, id: Uuid) -> Option<&mut Subscription> {
        self.subscriptions
            .get_mut(tenant)?
            .iter_mut()
            .find(|s| s.webhook.id == id)
    }

    /// Room for `n` more deliveries under `max`: finished ones go first, oldest first.
    fn make_room(&mut self, n: usize, max: usize) -> Result<(), StoreError> {
        if self.deliveries.len() + n <= max {
            return Ok(());
        }
        let mut finished: Vec<(u64, Uuid)> = self
            .deliveries
            .iter()
            .filter(|(_, d)| d.state != DeliveryState::Pending)
            .map(|(id, d)| (d.order, *id))
            .collect();
        finished.sort_unstable();
        let excess = self.deliveries.len() + n - max;
        for (_, id) in finished.into_iter().take(excess) {
            self.deliveries.remove(&id);
        }
        if self.deliveries.len() + n <= max {
            Ok(())
        } else {
            Err(StoreError::Full(format!(
                "the embedded store keeps at most {max} pending webhook deliveries; \
                 fix or disable the failing receivers, or use PostgreSQL"
            )))
        }
    }

    fn insert(&mut self, id: Uuid, mut entry: Entry) {
        self.order += 1;
        entry.order = self.order;
        self.deliveries.insert(id, entry);
    }
}

/// Every tenant's subscriptions and deliveries. Held only for a map operation, never across an
/// await.
pub(crate) struct Hooks {
    data: Mutex<Data>,
    max_deliveries: usize,
}

impl Hooks {
    pub(crate) fn new(max_deliveries: usize) -> Self {
        Self {
            data: Mutex::default(),
            max_deliveries,
        }
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        // Every change below completes before the guard is dropped, or panics before changing.
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryStore {
    /// The embedded store's outbox write: one pending delivery of event `seq` per enabled
    /// subscription of the tenant naming `event_type`, due at once (the event log calls it when
    /// it records an event). How many were queued.
    ///
    /// # Errors
    /// [`StoreError::Full`] when the deliveries cap is reached with pending ones; nothing is
    /// queued then.
    pub fn enqueue_webhook_event(
        &self,
        tenant: &TenantId,
        seq: i64,
        event_type: &str,
        at: Timestamp,
    ) -> Result<usize, StoreError> {
        self.webhooks.enqueue(tenant, seq, event_type, at)
    }
}

impl Hooks {
    /// [`MemoryStore::enqueue_webhook_event`].
    pub(crate) fn enqueue(
        &self,
        tenant: &TenantId,
        seq: i64,
        event_type: &str,
        at: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut data = self.data();
        let targets: Vec<Uuid> = data
            .subscriptions
            .get(tenant)
            .into_iter()
            .flatten()
            .filter(|s| s.webhook.enabled && s.webhook.event_types.iter().any(|t| t == event_type))
            .map(|s| s.webhook.id)
            .filter(|sub| {
                !data.deliveries.values().any(|d| {
                    d.tenant == *tenant && d.subscription_id == *sub && d.event_seq == Some(seq)
                })
            })
            .collect();
        data.make_room(targets.len(), self.max_deliveries)?;
        let now = Timestamp::now();
        for subscription_id in &targets {
            data.insert(
                Uuid::new_v4(),
                Entry {
                    tenant: tenant.clone(),
                    subscription_id: *subscription_id,
                    event_seq: Some(seq),
                    event_type: event_type.to_owned(),
                    event_at: at,
                    payload: None,
                    state: DeliveryState::Pending,
                    created_at: now,
                    order: 0,
                    next_attempt_at: Some(now),
                    lease: None,
                    attempt_count: 0,
                    first_failure_at: None,
                    attempts: VecDeque::new(),
                },
            );
        }
        Ok(targets.len())
    }
}

#[async_trait]
impl WebhookRepository for MemoryStore {
    async fn list_webhooks(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
        let data = self.webhooks.data();
        let mut list: Vec<Webhook> = data
            .subscriptions
            .get(tenant)
            .into_iter()
            .flatten()
            .map(|s| s.webhook.clone())
            .collect();
        list.sort_by_key(|w| (w.created_at, w.id));
        Ok(list)
    }

    async fn create_webhook(
        &self,
        tenant: &TenantId,
        webhook: NewWebhook,
    ) -> Result<Webhook, CreateWebhookError> {
        let mut data = self.webhooks.data();
        let kept = data.subscriptions.entry(tenant.clone()).or_default();
        if kept.len() >= WEBHOOKS_PER_TENANT_MAX {
            return Err(CreateWebhookError::TooMany(WEBHOOKS_PER_TENANT_MAX));
        }
        let stored = Webhook {
            id: webhook.id,
            url: webhook.url,
            event_types: webhook.event_types,
            description: webhook.description,
            enabled: true,
            disabled_reason: None,
            created_at: webhook.created_at,
        };
        kept.push(Subscription {
            webhook: stored.clone(),
            secret: webhook.secret,
            failing_since: None,
        });
        Ok(stored)
    }

    async fn get_webhook(&self, tenant: &TenantId, id: Uuid) -> Result<Webhook, LookupError> {
        let mut data = self.webhooks.data();
        let found = data.subscription(tenant, id).ok_or(LookupError::NotFound)?;
        Ok(found.webhook.clone())
    }

    async fn update_webhook(
        &self,
        tenant: &TenantId,
        id: Uuid,
        changes: WebhookChanges,
    ) -> Result<Webhook, LookupError> {
        let mut data = self.webhooks.data();
        let found = data.subscription(tenant, id).ok_or(LookupError::NotFound)?;
        let w = &mut found.webhook;
        if let Some(url) = changes.url {
            w.url = url;
        }
        if let Some(types) = changes.event_types {
            w.event_types = types;
        }
        if let Some(description) = changes.description {
            w.description = description;
        }
        match changes.enabled {
            Some(true) => {
                w.enabled = true;
                w.disabled_reason = None;
                found.failing_since = None;
            }
            Some(false) => w.enabled = false,
            None => {}
        }
        Ok(found.webhook.clone())
    }

    async fn delete_webhook(&self, tenant: &TenantId, id: Uuid) -> Result<(), LookupError> {
        let mut data = self.webhooks.data();
        let kept = data
            .subscriptions
            .get_mut(tenant)
            .ok_or(LookupError::NotFound)?;
        let before = kept.len();
        kept.retain(|s| s.webhook.id != id);
        if kept.len() == before {
            return Err(LookupError::NotFound);
        }
        data.deliveries
            .retain(|_, d| !(d.tenant == *tenant && d.subscription_id == id));
        Ok(())
    }

    async fn enqueue_test(
        &self,
        tenant: &TenantId,
        id: Uuid,
        payload: &str,
        now: Timestamp,
    ) -> Result<Uuid, LookupError> {
        let mut data = self.webhooks.data();
        data.subscription(tenant, id).ok_or(LookupError::NotFound)?;
        data.make_room(1, self.webhooks.max_deliveries)?;
        let delivery = Uuid::new_v4();
        data.insert(
            delivery,
            Entry {
                tenant: tenant.clone(),
                subscription_id: id,
                event_seq: None,
                event_type: TEST_EVENT_TYPE.to_owned(),
                event_at: now,
                payload: Some(payload.to_owned()),
                state: DeliveryState::Pending,
                created_at: now,
                order: 0,
                next_attempt_at: Some(now),
                lease: None,
                attempt_count: 0,
                first_failure_at: None,
                attempts: VecDeque::new(),
            },
        );
        Ok(delivery)
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<Delivery>, LookupError> {
        let mut data = self.webhooks.data();
        data.subscription(tenant, id).ok_or(LookupError::NotFound)?;
        let mut found: Vec<(&Uuid, &Entry)> = data
            .deliveries
            .iter()
            .filter(|(_, d)| d.tenant == *tenant && d.subscription_id == id)
            .collect();
        found.sort_by_key(|d| std::cmp::Reverse((d.1.created_at, d.1.order)));
        Ok(found
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(id, d)| Delivery {
                id: *id,
                event_type: d.event_type.clone(),
                event_seq: d.event_seq,
                created_at: d.created_at,
                attempts: d.attempts.iter().cloned().collect(),
                state: d.state,
                next_attempt_at: d.next_attempt_at,
            })
            .collect())
    }
}

#[async_trait]
impl WebhookOutbox for MemoryStore {
    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let until = now
            .checked_add(time::Duration::try_from(lease).unwrap_or(time::Duration::MINUTE))
            .unwrap_or(Timestamp::MAX);
        let mut data = self.webhooks.data();
        let Data {
            subscriptions,
            deliveries,
            ..
        } = &mut *data;
        let mut due: Vec<(Timestamp, Uuid)> = deliveries
            .iter()
            .filter(|(_, d)| d.state == DeliveryState::Pending)
            .filter_map(|(id, d)| {
                d.next_attempt_at
                    .filter(|at| *at <= now)
                    .map(|at| (at, *id))
            })
            .collect();
        due.sort_unstable();
        let token = Uuid::new_v4();
        let mut claimed = Vec::new();
        for (_, id) in due {
            if claimed.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                break;
            }
            let Some(d) = deliveries.get_mut(&id) else {
                continue;
            };
            let Some(sub) = subscriptions
                .get(&d.tenant)
                .and_then(|subs| subs.iter().find(|s| s.webhook.id == d.subscription_id))
            else {
                continue;
            };
            if !sub.webhook.enabled && d.event_seq.is_some() {
                continue;
            }
            d.lease = Some(token);
            d.next_attempt_at = Some(until);
            claimed.push(ClaimedDelivery {
                tenant: d.tenant.clone(),
                id,
                lease: token,
                subscription_id: d.subscription_id,
                url: sub.webhook.url.clone(),
                secret: sub.secret.clone(),
                event_type: d.event_type.clone(),
                event_seq: d.event_seq,
                event_at: d.event_at,
                payload: d.payload.clone(),
                attempts: d.attempt_count,
                first_failure_at: d.first_failure_at,
            });
        }
        Ok(claimed)
    }

    async fn store_payload(
        &self,
        delivery: &ClaimedDelivery,
        payload: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut data = self.webhooks.data();
        let Some(d) = data
            .deliveries
            .get_mut(&delivery.id)
            .filter(|d| d.lease == Some(delivery.lease))
        else {
            return Ok(None);
        };
        Ok(Some(
            d.payload.get_or_insert_with(|| payload.to_owned()).clone(),
        ))
    }

    async fn record_attempt(
        &self,
        delivery: &ClaimedDelivery,
        attempt: &DeliveryAttempt,
        outcome: AttemptOutcome,
        disable_after: std::time::Duration,
    ) -> Result<(), StoreError> {
        let mut data = self.webhooks.data();
        let Some(d) = data
            .deliveries
            .get_mut(&delivery.id)
            .filter(|d| d.lease == Some(delivery.lease))
        else {
            return Ok(());
        };
        d.lease = None;
        d.attempt_count += 1;
        d.attempts.push_back(attempt.clone());
        while d.attempts.len() > ATTEMPTS_KEPT {
            d.attempts.pop_front();
        }
        let (state, next) = match outcome {
            AttemptOutcome::Delivered => (DeliveryState::Delivered, None),
            AttemptOutcome::RetryAt(at) => (DeliveryState::Pending, Some(at)),
            AttemptOutcome::Failed => (DeliveryState::Failed, None),
        };
        d.state = state;
        d.next_attempt_at = next;
        if state != DeliveryState::Delivered {
            d.first_failure_at.get_or_insert(attempt.at);
        }
        let (tenant, subscription_id) = (d.tenant.clone(), d.subscription_id);
        let Some(sub) = data.subscription(&tenant, subscription_id) else {
            return Ok(());
        };
        if state == DeliveryState::Delivered {
            sub.failing_since = None;
        } else {
            let since = *sub.failing_since.get_or_insert(attempt.at);
            let limit = time::Duration::try_from(disable_after).unwrap_or(time::Duration::MAX);
            if sub.webhook.enabled && attempt.at.get() - since.get() >= limit {
                sub.webhook.enabled = false;
                sub.webhook.disabled_reason =
                    Some(ports::webhooks::disabled_reason(disable_after, attempt));
            }
        }
        Ok(())
    }

    async fn purge_finished(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let mut data = self.webhooks.data();
        let gone: Vec<Uuid> = data
            .deliveries
            .iter()
            .filter(|(_, d)| d.state != DeliveryState::Pending && d.created_at < before)
            .map(|(id, _)| *id)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        for id in &gone {
            data.deliveries.remove(id);
        }
        Ok(u64::try_from(gone.len()).unwrap_or(u64::MAX))
    }
}
