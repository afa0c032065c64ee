//! Idempotent creates: a create sent with an `Idempotency-Key` runs once per tenant and key;
//! a retry with the same request within [`domain::idempotency::IDEMPOTENCY_TTL`] gets the first
//! answer back instead of creating again.
//!
//! The key is claimed before the create and its answer stored right after it, in transactions of
//! their own (not the create's). The window this leaves: when the process dies, or the request's
//! deadline drops it, after the create committed and before the answer is stored, the claim
//! stays unanswered; a retry gets [`IdempotencyError::InProgress`] until the claim's lease
//! ([`domain::idempotency::IDEMPOTENCY_LEASE`]) lapses, and then runs the create again.

use domain::{IdempotencyKey, TenantId, Timestamp};
use ports::{Claim, IdempotencyStore, StoreError, StoredAnswer};
use thiserror::Error;
use uuid::Uuid;

/// What a request with a key does next.
#[derive(Debug)]
pub enum Begin {
    /// Run the create, then [`finish`] with what it answered.
    Proceed(Held),
    /// Answer this, the first request's answer, and create nothing.
    Replay(StoredAnswer),
}

/// A key this request holds until it [`finish`]es.
#[derive(Debug)]
pub struct Held {
    key: IdempotencyKey,
    token: Uuid,
}

/// Why a request with a key may not run.
#[derive(Debug, Error)]
pub enum IdempotencyError {
    /// The key went with another request (another body or another route) within the TTL.
    #[error("was used with another request; send a new key for a new request")]
    OtherRequest,
    /// A request with the key (and the same request) is running now.
    #[error("A request with this Idempotency-Key is in progress")]
    InProgress,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Claims `key` for the request whose `fingerprint` the caller derived, or says why not.
///
/// # Errors
/// [`IdempotencyError::OtherRequest`] when the key is answered or held for another fingerprint,
/// [`IdempotencyError::InProgress`] when it is held for this one; the store's.
pub async fn begin(
    store: &dyn IdempotencyStore,
    tenant: &TenantId,
    key: IdempotencyKey,
    fingerprint: &[u8],
    now: Timestamp,
) -> Result<Begin, IdempotencyError> {
    let token = Uuid::new_v4();
    match store.claim(tenant, &key, fingerprint, token, now).await? {
        Claim::Claimed => Ok(Begin::Proceed(Held { key, token })),
        Claim::Answered {
            fingerprint: first,
            answer,
        } if first == fingerprint => Ok(Begin::Replay(answer)),
        Claim::InProgress { fingerprint: first } if first == fingerprint => {
            Err(IdempotencyError::InProgress)
        }
        Claim::Answered { .. } | Claim::InProgress { .. } => Err(IdempotencyError::OtherRequest),
    }
}

/// Ends the hold: a success (`Some`, a 2xx) is stored for retries to get; anything else
/// (`None`: a 4xx or 5xx) frees the key, since a retry may well succeed where this failed
/// (the device name freed meanwhile, the store back) and must then create.
///
/// # Errors
/// The store's; the create's outcome stands whatever this returns.
pub async fn finish(
    store: &dyn IdempotencyStore,
    tenant: &TenantId,
    held: Held,
    answer: Option<StoredAnswer>,
    now: Timestamp,
) -> Result<(), StoreError> {
    match answer {
        Some(answer) => {
            store
                .answer(tenant, &held.key, held.token, &answer, now)
                .await
        }
        None => store.release(tenant, &held.key, held.token).await,
    }
}

#[cfg(test)]
mod tests {
    use ports::MockIdempotencyStore;

    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("acme").expect("valid")
    }

    fn key() -> IdempotencyKey {
        IdempotencyKey::parse("k-1").expect("valid")
    }

    fn stored() -> StoredAnswer {
        StoredAnswer {
            status: 201,
            location: None,
            body: b"{}".to_vec(),
        }
    }

    fn store_finding(found: Claim) -> MockIdempotencyStore {
        let mut store = MockIdempotencyStore::new();
        store
            .expect_claim()
            .times(1)
            .returning(move |_, _, _, _, _| Ok(found.clone()));
        store
    }

    async fn begin_with(store: &MockIdempotencyStore) -> Result<Begin, IdempotencyError> {
        begin(store, &tenant(), key(), b"fp", Timestamp::now()).await
    }

    #[tokio::test]
    async fn the_same_request_replays_and_another_is_refused() {
        let same = store_finding(Claim::Answered {
            fingerprint: b"fp".to_vec(),
            answer: stored(),
        });
        assert!(matches!(begin_with(&same).await, Ok(Begin::Replay(a)) if a == stored()));

        let other = store_finding(Claim::Answered {
            fingerprint: b"other".to_vec(),
            answer: stored(),
        });
        assert!(matches!(
            begin_with(&other).await,
            Err(IdempotencyError::OtherRequest)
        ));
    }

    #[tokio::test]
    async fn a_held_key_is_in_progress_for_the_same_request_only() {
        let same = store_finding(Claim::InProgress {
            fingerprint: b"fp".to_vec(),
        });
        assert!(matches!(
            begin_with(&same).await,
            Err(IdempotencyError::InProgress)
        ));
        let other = store_finding(Claim::InProgress {
            fingerprint: b"x".to_vec(),
        });
        assert!(matches!(
            begin_with(&other).await,
            Err(IdempotencyError::OtherRequest)
        ));
    }

    #[tokio::test]
    async fn a_success_is_stored_and_a_failure_frees_the_key_with_the_claims_token() {
        let mut store = MockIdempotencyStore::new();
        let token = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = token.clone();
        store
            .expect_claim()
            .times(1)
            .returning(move |_, _, _, t, _| {
                *seen.lock().expect("lock") = Some(t);
                Ok(Claim::Claimed)
            });
        let Ok(Begin::Proceed(held)) = begin_with(&store).await else {
            panic!("claimed");
        };
        let claimed = token.lock().expect("lock").expect("claimed with a token");
        store
            .expect_answer()
            .withf(move |_, _, t, a, _| *t == claimed && *a == stored())
            .times(1)
            .returning(|_, _, _, _, _| Ok(()));
        store.expect_release().never();
        finish(&store, &tenant(), held, Some(stored()), Timestamp::now())
            .await
            .expect("stored");

        let mut store = store_finding(Claim::Claimed);
        let Ok(Begin::Proceed(held)) = begin_with(&store).await else {
            panic!("claimed");
        };
        store.expect_answer().never();
        store.expect_release().times(1).returning(|_, _, _| Ok(()));
        finish(&store, &tenant(), held, None, Timestamp::now())
            .await
            .expect("freed");
    }
}
