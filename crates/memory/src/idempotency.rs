//! `Idempotency-Key`s in memory: one map for all tenants, capped in entries.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use domain::idempotency::{IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL};
use domain::{IdempotencyKey, TenantId, Timestamp};
use ports::{Claim, IdempotencyStore, StoreError, StoredAnswer};
use uuid::Uuid;

use crate::MemoryStore;

/// One key: held by `token` since `at` while `answer` is `None`, answered at `at` after.
struct Entry {
    fingerprint: Vec<u8>,
    token: Uuid,
    at: Timestamp,
    answer: Option<StoredAnswer>,
}

impl Entry {
    /// Whether the entry still counts at `now`: an answer for the TTL, a hold for the lease.
    fn live(&self, now: Timestamp) -> bool {
        let age = now.get() - self.at.get();
        let span = if self.answer.is_some() {
            IDEMPOTENCY_TTL
        } else {
            IDEMPOTENCY_LEASE
        };
        age < span
    }
}

/// Every tenant's keys. Held only for a map operation, never across an await.
pub(crate) struct Keys {
    entries: Mutex<HashMap<(TenantId, IdempotencyKey), Entry>>,
    limit: usize,
}

impl Keys {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            entries: Mutex::default(),
            limit,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, IdempotencyKey), Entry>> {
        // Every change is one map operation, which cannot half-happen.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &[u8],
        token: Uuid,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        let mut entries = self.idempotency.entries();
        let id = (tenant.clone(), key.clone());
        match entries.get(&id) {
            Some(entry) if entry.live(now) => {
                let fingerprint = entry.fingerprint.clone();
                return Ok(match &entry.answer {
                    Some(answer) => Claim::Answered {
                        fingerprint,
                        answer: answer.clone(),
                    },
                    None => Claim::InProgress { fingerprint },
                });
            }
            Some(_) => {}
            None if entries.len() < self.idempotency.limit => {}
            // At the cap, expired keys make room (a whole sweep: rare, and bounded by the cap);
            // without any, the request is refused rather than a live key forgotten, which would
            // let its retry create twice.
            None => {
                entries.retain(|_, entry| entry.live(now));
                if entries.len() >= self.idempotency.limit {
                    return Err(StoreError::Full(format!(
                        "The embedded store is full ({} idempotency keys in the last 24 hours); \
                         retry without Idempotency-Key, or set DATABASE_URL to use PostgreSQL",
                        self.idempotency.limit
                    )));
                }
            }
        }
        entries.insert(
            id,
            Entry {
                fingerprint: fingerprint.to_vec(),
                token,
                at: now,
                answer: None,
            },
        );
        Ok(Claim::Claimed)
    }

    async fn answer(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: Uuid,
        answer: &StoredAnswer,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut entries = self.idempotency.entries();
        if let Some(entry) = entries.get_mut(&(tenant.clone(), key.clone())) {
            if entry.token == token {
                entry.answer = Some(answer.clone());
                entry.at = now;
            }
        }
        Ok(())
    }

    async fn release(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: Uuid,
    ) -> Result<(), StoreError> {
        let mut entries = self.idempotency.entries();
        let id = (tenant.clone(), key.clone());
        if entries.get(&id).is_some_and(|e| e.token == token) {
            entries.remove(&id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> IdempotencyKey {
        IdempotencyKey::parse(&format!("k{n}")).expect("valid")
    }

    #[tokio::test]
    async fn at_the_cap_expired_keys_make_room_and_live_ones_refuse() {
        let store = MemoryStore::new().with_idempotency_keys(2);
        let t = TenantId::parse("acme").expect("valid");
        let then = Timestamp::now();
        for n in 0..2 {
            let claim = store.claim(&t, &key(n), b"fp", Uuid::new_v4(), then).await;
            assert!(matches!(claim, Ok(Claim::Claimed)));
        }
        let refused = store.claim(&t, &key(2), b"fp", Uuid::new_v4(), then).await;
        assert!(matches!(refused, Err(StoreError::Full(_))), "{refused:?}");

        // Both holds lapse with their lease: room again.
        let later = Timestamp::new(then.get() + IDEMPOTENCY_LEASE).expect("in range");
        let claim = store.claim(&t, &key(2), b"fp", Uuid::new_v4(), later).await;
        assert!(matches!(claim, Ok(Claim::Claimed)));
    }
}
