//! `Idempotency-Key`s in PostgreSQL (migration V9): one row per tenant and key, claimed with one
//! upsert, so concurrent claims of one key on any instances serialise on its row.

use async_trait::async_trait;
use domain::idempotency::{IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL};
use domain::{IdempotencyKey, TenantId, Timestamp};
use ports::{Claim, IdempotencyStore, StoreError, StoredAnswer};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::query_error;
use crate::pool::PgStore;

/// Expired rows deleted by one stored answer at most: an answer keeps one row, so the tenant's
/// expired rows never pile up while it keeps creating, and no request waits on a large delete.
/// The purge runs with the answer, not the claim: a claim then locks its one row only, so two
/// claims never wait on each other's purged rows (a deadlock).
const PURGE_BATCH: i64 = 100;

/// Deletes up to `$3` of the tenant's rows older than `$2` (expired whatever they hold: the TTL
/// is longer than the lease), oldest first; rows another transaction holds are skipped.
const PURGE: &str = "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key IN ( \
     SELECT key FROM idempotency_keys WHERE tenant_id = $1 AND at < $2 \
     ORDER BY at LIMIT $3 FOR UPDATE SKIP LOCKED)";

/// Inserts the hold, or takes over a row whose hold lapsed before `$6` or whose answer expired
/// before `$7`; no row back: the key is live (a concurrent claim of a free key waits for the
/// first to commit, then finds it live).
const CLAIM: &str = "INSERT INTO idempotency_keys AS k (tenant_id, key, fingerprint, token, at) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (tenant_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, \
         token = EXCLUDED.token, at = EXCLUDED.at, status = NULL, location = NULL, body = NULL \
     WHERE (k.status IS NULL AND k.at <= $6) OR (k.status IS NOT NULL AND k.at <= $7) \
     RETURNING 1";

const LIVE: &str = "SELECT fingerprint, status, location, body FROM idempotency_keys \
     WHERE tenant_id = $1 AND key = $2";

const ANSWER: &str = "UPDATE idempotency_keys SET status = $4, location = $5, body = $6, at = $7 \
     WHERE tenant_id = $1 AND key = $2 AND token = $3";

const RELEASE: &str =
    "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND token = $3";

/// How often a claim looks again when the live row it lost to was released in between.
const CLAIM_ATTEMPTS: usize = 3;

fn before(now: Timestamp, span: std::time::Duration) -> OffsetDateTime {
    now.get() - span
}

#[async_trait]
impl IdempotencyStore for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn claim(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &[u8],
        token: Uuid,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        let tenant_id = tenant.as_str();
        let lapsed = before(now, IDEMPOTENCY_LEASE);
        let expired = before(now, IDEMPOTENCY_TTL);
        for _ in 0..CLAIM_ATTEMPTS {
            let tx = self.begin(tenant).await?;
            let claim = tx.prepare_cached(CLAIM).await.map_err(query_error)?;
            let live = tx.prepare_cached(LIVE).await.map_err(query_error)?;
            let claimed = tx
                .query_opt(
                    &claim,
                    &[
                        &tenant_id,
                        &key.as_str(),
                        &fingerprint,
                        &token,
                        &now.get(),
                        &lapsed,
                        &expired,
                    ],
                )
                .await
                .map_err(query_error)?;
            if claimed.is_some() {
                tx.commit().await.map_err(query_error)?;
                return Ok(Claim::Claimed);
            }
            // Read Committed: this statement sees the row as committed by whoever holds it.
            let row = tx
                .query_opt(&live, &[&tenant_id, &key.as_str()])
                .await
                .map_err(query_error)?;
            tx.commit().await.map_err(query_error)?;
            let Some(row) = row else {
                continue; // released in between: claim again
            };
            let fingerprint: Vec<u8> = row.try_get(0).map_err(query_error)?;
            let status: Option<i16> = row.try_get(1).map_err(query_error)?;
            return Ok(match status {
                None => Claim::InProgress { fingerprint },
                Some(status) => Claim::Answered {
                    fingerprint,
                    answer: StoredAnswer {
                        status: u16::try_from(status)
                            .map_err(|e| crate::error::corrupt_row("idempotency answer", e))?,
                        location: row.try_get(2).map_err(query_error)?,
                        body: row.try_get(3).map_err(query_error)?,
                    },
                },
            });
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "the idempotency key was released and claimed {CLAIM_ATTEMPTS} times while claiming it"
        )))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn answer(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: Uuid,
        answer: &StoredAnswer,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let status = i16::try_from(answer.status)
            .map_err(|e| StoreError::Unknown(anyhow::anyhow!("status out of range: {e}")))?;
        let tx = self.begin(tenant).await?;
        let statement = tx.prepare_cached(ANSWER).await.map_err(query_error)?;
        let purge = tx.prepare_cached(PURGE).await.map_err(query_error)?;
        tx.execute(
            &statement,
            &[
                &tenant.as_str(),
                &key.as_str(),
                &token,
                &status,
                &answer.location,
                &answer.body,
                &now.get(),
            ],
        )
        .await
        .map_err(query_error)?;
        let expired = before(now, IDEMPOTENCY_TTL);
        tx.execute(&purge, &[&tenant.as_str(), &expired, &PURGE_BATCH])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn release(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: Uuid,
    ) -> Result<(), StoreError> {
        let tx = self.begin(tenant).await?;
        let statement = tx.prepare_cached(RELEASE).await.map_err(query_error)?;
        tx.execute(&statement, &[&tenant.as_str(), &key.as_str(), &token])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)
    }
}
