//! Webhook subscriptions and their outbox in PostgreSQL (migration V11). Deliveries of events
//! are written by the trigger on `events`, in the event's transaction; the worker claims due
//! ones with `FOR UPDATE SKIP LOCKED` and a lease (a token and a later `next_attempt_at`), so
//! several instances never send one delivery at once, and one that dies mid-attempt leaves the
//! delivery due again when its lease ends.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::webhook::{ATTEMPTS_KEPT, WEBHOOKS_PER_TENANT_MAX};
use domain::{TenantId, Timestamp};
use ports::{
    AttemptOutcome, ClaimedDelivery, CreateWebhookError, Delivery, DeliveryAttempt, DeliveryState,
    LookupError, NewWebhook, StoreError, Webhook, WebhookChanges, WebhookOutbox, WebhookRepository,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{corrupt_row, query_error};
use crate::pool::PgStore;
use crate::rows::timestamp;

const COLUMNS: &str = "id, url, event_types, description, enabled, disabled_reason, created_at";

/// Serialises creates of one tenant, so the count below holds until the insert commits.
const LOCK_TENANT: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('webhook_subscriptions:' || $1, 0))";
const COUNT: &str = "SELECT count(*) FROM webhook_subscriptions WHERE tenant_id = $1";

fn insert_sql() -> String {
    format!(
        "INSERT INTO webhook_subscriptions \
         (tenant_id, id, url, event_types, description, secret, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    )
}

fn list_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM webhook_subscriptions WHERE tenant_id = $1 \
         ORDER BY created_at, id"
    )
}

fn get_sql() -> String {
    format!("SELECT {COLUMNS} FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2")
}

/// `$6` enables (true), disables (false) or leaves (NULL); enabling clears the reason and the
/// failure streak.
fn update_sql() -> String {
    format!(
        "UPDATE webhook_subscriptions SET \
           url = COALESCE($3, url), event_types = COALESCE($4, event_types), \
           description = COALESCE($5, description), enabled = COALESCE($6, enabled), \
           disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END, \
           failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END \
         WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
    )
}

const DELETE: &str = "DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2";

const EXISTS: &str = "SELECT 1 FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2";

const INSERT_TEST: &str = "INSERT INTO webhook_deliveries \
     (tenant_id, id, subscription_id, event_seq, event_type, event_at, payload, created_at, \
      next_attempt_at) \
     VALUES ($1, $2, $3, NULL, 'webhook.test', $4, $5::text::jsonb, $4, $4)";

const DELIVERIES: &str = "SELECT id, event_type, event_seq, created_at, state, next_attempt_at \
     FROM webhook_deliveries WHERE tenant_id = $1 AND subscription_id = $2 \
     ORDER BY created_at DESC, event_seq DESC NULLS LAST, id DESC LIMIT $3";

const ATTEMPTS: &str = "SELECT delivery_id, at, status, duration_ms, error FROM webhook_attempts \
     WHERE tenant_id = $1 AND delivery_id = ANY ($2) ORDER BY delivery_id, n";

const DUE_TENANTS: &str = "SELECT t FROM webhook_due_tenants($1) t";

/// Leases up to `$4` due deliveries of enabled subscriptions of tenant `$1` at `$2` to token
/// `$3` until `$5`; skips rows another claimer holds.
const CLAIM: &str = "WITH due AS ( \
       SELECT d.id FROM webhook_deliveries d \
       JOIN webhook_subscriptions s ON s.tenant_id = d.tenant_id AND s.id = d.subscription_id \
       WHERE d.tenant_id = $1 AND d.state = 'pending' AND d.next_attempt_at <= $2 \
         AND (s.enabled OR d.event_seq IS NULL) \
       ORDER BY d.next_attempt_at LIMIT $4 FOR UPDATE OF d SKIP LOCKED) \
     UPDATE webhook_deliveries d SET lease = $3, next_attempt_at = $5 \
     FROM due, webhook_subscriptions s \
     WHERE d.tenant_id = $1 AND d.id = due.id \
       AND s.tenant_id = d.tenant_id AND s.id = d.subscription_id \
     RETURNING d.id, d.subscription_id, s.url, s.secret, d.event_type, d.event_seq, d.event_at, \
       d.payload::text, d.attempt_count, d.first_failure_at";

const STORE_PAYLOAD: &str = "UPDATE webhook_deliveries \
     SET payload = COALESCE(payload, $4::text::jsonb) \
     WHERE tenant_id = $1 AND id = $2 AND lease = $3 RETURNING payload::text";

/// Ends the lease of `$3` with the attempt's outcome: state `$4`, next try `$5`, the attempt
/// count and first failure (`$6`: the attempt failed at this instant).
const FINISH: &str = "UPDATE webhook_deliveries SET lease = NULL, state = $4, \
       next_attempt_at = $5, attempt_count = attempt_count + 1, \
       first_failure_at = COALESCE(first_failure_at, $6) \
     WHERE tenant_id = $1 AND id = $2 AND lease = $3 RETURNING attempt_count";

const INSERT_ATTEMPT: &str = "INSERT INTO webhook_attempts \
     (tenant_id, delivery_id, n, at, status, duration_ms, error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

const TRIM_ATTEMPTS: &str =
    "DELETE FROM webhook_attempts WHERE tenant_id = $1 AND delivery_id = $2 AND n <= $3";

const STREAK_ENDS: &str = "UPDATE webhook_subscriptions SET failing_since = NULL \
     WHERE tenant_id = $1 AND id = $2 AND failing_since IS NOT NULL";

/// Starts or extends the failure streak at `$3`, and disables the subscription with reason `$5`
/// once the streak began at or before `$4`.
const STREAK_GOES_ON: &str = "UPDATE webhook_subscriptions SET \
       failing_since = COALESCE(failing_since, $3), \
       enabled = enabled AND COALESCE(failing_since, $3) > $4, \
       disabled_reason = CASE WHEN enabled AND COALESCE(failing_since, $3) <= $4 \
         THEN $5 ELSE disabled_reason END \
     WHERE tenant_id = $1 AND id = $2";

const PURGE: &str = "SELECT webhook_purge_finished($1, $2)";

fn webhook_from_row(row: &Row) -> Result<Webhook, StoreError> {
    Ok(Webhook {
        id: row.try_get(0).map_err(query_error)?,
        url: row.try_get(1).map_err(query_error)?,
        event_types: row.try_get(2).map_err(query_error)?,
        description: row.try_get(3).map_err(query_error)?,
        enabled: row.try_get(4).map_err(query_error)?,
        disabled_reason: row.try_get(5).map_err(query_error)?,
        created_at: timestamp(row, 6)?,
    })
}

fn optional_timestamp(row: &Row, column: usize) -> Result<Option<Timestamp>, StoreError> {
    let value: Option<time::OffsetDateTime> = row.try_get(column).map_err(query_error)?;
    value
        .map(|v| Timestamp::new(v).map_err(|e| corrupt_row(&format!("column {column}"), e)))
        .transpose()
}

#[async_trait]
impl WebhookRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_webhooks(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
        let tx = self.reader(tenant).await?;
        let statement = tx.prepare(&list_sql()).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn ToSql + Sync); 1] = [&tenant_id];
        let rows = tx
            .run(|c| c.query(&statement, &params))
            .await
            .map_err(query_error)?;
        rows.iter().map(webhook_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn create_webhook(
        &self,
        tenant: &TenantId,
        webhook: NewWebhook,
    ) -> Result<Webhook, CreateWebhookError> {
        let tx = self.begin(tenant).await?;
        let tenant_id = tenant.as_str();
        tx.execute(LOCK_TENANT, &[&tenant_id])
            .await
            .map_err(query_error)?;
        let kept: i64 = tx
            .query_one(COUNT, &[&tenant_id])
            .await
            .map_err(query_error)?
            .get(0);
        if usize::try_from(kept).unwrap_or(usize::MAX) >= WEBHOOKS_PER_TENANT_MAX {
            return Err(CreateWebhookError::TooMany(WEBHOOKS_PER_TENANT_MAX));
        }
        let row = tx
            .query_one(
                &insert_sql(),
                &[
                    &tenant_id,
                    &webhook.id,
                    &webhook.url,
                    &webhook.event_types,
                    &webhook.description,
                    &webhook.secret,
                    &webhook.created_at.get(),
                ],
            )
            .await
            .map_err(query_error)?;
        let created = webhook_from_row(&row)?;
        tx.commit().await.map_err(query_error)?;
        Ok(created)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn get_webhook(&self, tenant: &TenantId, id: Uuid) -> Result<Webhook, LookupError> {
        let tx = self.reader(tenant).await?;
        let statement = tx.prepare(&get_sql()).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn ToSql + Sync); 2] = [&tenant_id, &id];
        let row = tx
            .run(|c| c.query_opt(&statement, &params))
            .await
            .map_err(query_error)?
            .ok_or(LookupError::NotFound)?;
        Ok(webhook_from_row(&row)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn update_webhook(
        &self,
        tenant: &TenantId,
        id: Uuid,
        changes: WebhookChanges,
    ) -> Result<Webhook, LookupError> {
        let tx = self.begin(tenant).await?;
        let row = tx
            .query_opt(
                &update_sql(),
                &[
                    &tenant.as_str(),
                    &id,
                    &changes.url,
                    &changes.event_types,
                    &changes.description,
                    &changes.enabled,
                ],
            )
            .await
            .map_err(query_error)?
            .ok_or(LookupError::NotFound)?;
        let updated = webhook_from_row(&row)?;
        tx.commit().await.map_err(query_error)?;
        Ok(updated)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn delete_webhook(&self, tenant: &TenantId, id: Uuid) -> Result<(), LookupError> {
        let tx = self.begin(tenant).await?;
        let deleted = tx
            .execute(DELETE, &[&tenant.as_str(), &id])
            .await
            .map_err(query_error)?;
        if deleted == 0 {
            return Err(LookupError::NotFound);
        }
        tx.commit().await.map_err(query_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn enqueue_test(
        &self,
        tenant: &TenantId,
        id: Uuid,
        payload: &str,
        now: Timestamp,
    ) -> Result<Uuid, LookupError> {
        let tx = self.begin(tenant).await?;
        let tenant_id = tenant.as_str();
        tx.query_opt(EXISTS, &[&tenant_id, &id])
            .await
            .map_err(query_error)?
            .ok_or(LookupError::NotFound)?;
        let delivery = Uuid::new_v4();
        tx.execute(
            INSERT_TEST,
            &[&tenant_id, &delivery, &id, &now.get(), &payload],
        )
        .await
        .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        Ok(delivery)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<Delivery>, LookupError> {
        let tx = self.begin(tenant).await?;
        let tenant_id = tenant.as_str();
        tx.query_opt(EXISTS, &[&tenant_id, &id])
            .await
            .map_err(query_error)?
            .ok_or(LookupError::NotFound)?;
        let rows = tx
            .query(DELIVERIES, &[&tenant_id, &id, &i64::from(limit)])
            .await
            .map_err(query_error)?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
        let attempt_rows = tx
            .query(ATTEMPTS, &[&tenant_id, &ids])
            .await
            .map_err(query_error)?;
        tx.commit_read().await.map_err(query_error)?;
        let mut attempts: HashMap<Uuid, Vec<DeliveryAttempt>> = HashMap::new();
        for row in &attempt_rows {
            let status: Option<i16> = row.try_get(2).map_err(query_error)?;
            let duration: i64 = row.try_get(3).map_err(query_error)?;
            attempts
                .entry(row.try_get(0).map_err(query_error)?)
                .or_default()
                .push(DeliveryAttempt {
                    at: timestamp(row, 1)?,
                    status: status.and_then(|s| u16::try_from(s).ok()),
                    duration_ms: u64::try_from(duration).unwrap_or(0),
                    error: row.try_get(4).map_err(query_error)?,
                });
        }
        let mut deliveries = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.try_get(0).map_err(query_error)?;
            let state: &str = row.try_get(4).map_err(query_error)?;
            deliveries.push(Delivery {
                id,
                event_type: row.try_get(1).map_err(query_error)?,
                event_seq: row.try_get(2).map_err(query_error)?,
                created_at: timestamp(row, 3)?,
                attempts: attempts.remove(&id).unwrap_or_default(),
                state: DeliveryState::parse(state)
                    .ok_or_else(|| corrupt_row("delivery state", state))?,
                next_attempt_at: optional_timestamp(row, 5)?,
            });
        }
        Ok(deliveries)
    }
}

#[async_trait]
impl WebhookOutbox for PgStore {
    #[tracing::instrument(skip_all)]
    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let tenants = {
            let tx = self.service_reader().await?;
            let statement = tx.prepare(DUE_TENANTS).await.map_err(query_error)?;
            let at = now.get();
            let params: [&(dyn ToSql + Sync); 1] = [&at];
            tx.run(|c| c.query(&statement, &params))
                .await
                .map_err(query_error)?
        };
        let until = now
            .checked_add(time::Duration::try_from(lease).unwrap_or(time::Duration::MINUTE))
            .unwrap_or(Timestamp::MAX);
        let mut claimed = Vec::new();
        for row in &tenants {
            let left = i64::from(limit).saturating_sub(i64::try_from(claimed.len()).unwrap_or(0));
            if left <= 0 {
                break;
            }
            let raw: &str = row.get(0);
            let Ok(tenant) = TenantId::parse(raw) else {
                tracing::warn!(tenant = raw, "stored tenant id is invalid");
                continue;
            };
            let token = Uuid::new_v4();
            let tx = self.begin(&tenant).await?;
            let rows = tx
                .query(
                    CLAIM,
                    &[&tenant.as_str(), &now.get(), &token, &left, &until.get()],
                )
                .await
                .map_err(query_error)?;
            tx.commit().await.map_err(query_error)?;
            for row in &rows {
                let attempts: i32 = row.try_get(8).map_err(query_error)?;
                claimed.push(ClaimedDelivery {
                    tenant: tenant.clone(),
                    id: row.try_get(0).map_err(query_error)?,
                    lease: token,
                    subscription_id: row.try_get(1).map_err(query_error)?,
                    url: row.try_get(2).map_err(query_error)?,
                    secret: row.try_get(3).map_err(query_error)?,
                    event_type: row.try_get(4).map_err(query_error)?,
                    event_seq: row.try_get(5).map_err(query_error)?,
                    event_at: timestamp(row, 6)?,
                    payload: row.try_get(7).map_err(query_error)?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    first_failure_at: optional_timestamp(row, 9)?,
                });
            }
        }
        Ok(claimed)
    }

    #[tracing::instrument(skip_all, fields(tenant = %delivery.tenant))]
    async fn store_payload(
        &self,
        delivery: &ClaimedDelivery,
        payload: &str,
    ) -> Result<Option<String>, StoreError> {
        let tx = self.begin(&delivery.tenant).await?;
        let row = tx
            .query_opt(
                STORE_PAYLOAD,
                &[
                    &delivery.tenant.as_str(),
                    &delivery.id,
                    &delivery.lease,
                    &payload,
                ],
            )
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        row.map(|r| r.try_get(0).map_err(query_error)).transpose()
    }

    #[tracing::instrument(skip_all, fields(tenant = %delivery.tenant))]
    async fn record_attempt(
        &self,
        delivery: &ClaimedDelivery,
        attempt: &DeliveryAttempt,
        outcome: AttemptOutcome,
        disable_after: std::time::Duration,
    ) -> Result<(), StoreError> {
        let tenant_id = delivery.tenant.as_str();
        let (state, next, failed_at) = match outcome {
            AttemptOutcome::Delivered => (DeliveryState::Delivered, None, None),
            AttemptOutcome::RetryAt(at) => (
                DeliveryState::Pending,
                Some(at.get()),
                Some(attempt.at.get()),
            ),
            AttemptOutcome::Failed => (DeliveryState::Failed, None, Some(attempt.at.get())),
        };
        let tx = self.begin(&delivery.tenant).await?;
        let Some(row) = tx
            .query_opt(
                FINISH,
                &[
                    &tenant_id,
                    &delivery.id,
                    &delivery.lease,
                    &state.as_str(),
                    &next,
                    &failed_at,
                ],
            )
            .await
            .map_err(query_error)?
        else {
            tx.commit_read().await.map_err(query_error)?;
            return Ok(()); // the lease ran out and another claim took it
        };
        let n: i32 = row.get(0);
        let status = attempt.status.map(|s| i16::try_from(s).unwrap_or(i16::MAX));
        let duration = i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX);
        tx.execute(
            INSERT_ATTEMPT,
            &[
                &tenant_id,
                &delivery.id,
                &n,
                &attempt.at.get(),
                &status,
                &duration,
                &attempt.error,
            ],
        )
        .await
        .map_err(query_error)?;
        let kept = i32::try_from(ATTEMPTS_KEPT).unwrap_or(i32::MAX);
        if n > kept {
            tx.execute(TRIM_ATTEMPTS, &[&tenant_id, &delivery.id, &(n - kept)])
                .await
                .map_err(query_error)?;
        }
        if state == DeliveryState::Delivered {
            tx.execute(STREAK_ENDS, &[&tenant_id, &delivery.subscription_id])
                .await
                .map_err(query_error)?;
        } else {
            let since = attempt.at.get()
                - time::Duration::try_from(disable_after).unwrap_or(time::Duration::MAX);
            let reason = ports::webhooks::disabled_reason(disable_after, attempt);
            tx.execute(
                STREAK_GOES_ON,
                &[
                    &tenant_id,
                    &delivery.subscription_id,
                    &attempt.at.get(),
                    &since,
                    &reason,
                ],
            )
            .await
            .map_err(query_error)?;
        }
        tx.commit().await.map_err(query_error)
    }

    #[tracing::instrument(skip_all)]
    async fn purge_finished(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let tx = self.service_reader().await?;
        let statement = tx.prepare(PURGE).await.map_err(query_error)?;
        let at = before.get();
        let batch = i32::try_from(limit).unwrap_or(i32::MAX);
        let params: [&(dyn ToSql + Sync); 2] = [&at, &batch];
        let row = tx
            .run(|c| c.query_one(&statement, &params))
            .await
            .map_err(query_error)?;
        let gone: i64 = row.get(0);
        Ok(u64::try_from(gone).unwrap_or(0))
    }
}
