//! Stories of `Idempotency-Key`s (issue 18): claims, answers, expiry, tenants, races.

use domain::idempotency::{IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL};
use domain::{IdempotencyKey, Timestamp};
use uuid::Uuid;

use super::tenant;
use crate::{Claim, IdempotencyStore, StoredAnswer};

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(raw).expect("valid key")
}

fn after(t: Timestamp, span: std::time::Duration) -> Timestamp {
    Timestamp::new(t.get() + span).expect("in range")
}

fn created(body: &str) -> StoredAnswer {
    StoredAnswer {
        status: 201,
        location: Some("/api/devices/1".to_owned()),
        body: body.as_bytes().to_vec(),
    }
}

/// A claimed key is in progress for everyone else until its holder answers; then every claim
/// gets the answer with the first request's fingerprint. Only the holder's token answers or
/// releases it.
pub async fn idempotency_keys_hold_then_answer<S: IdempotencyStore>(store: &S) {
    let t = tenant("contract-idem");
    let k = key("create-1");
    let now = Timestamp::now();
    let holder = Uuid::new_v4();
    let claim = store.claim(&t, &k, b"fp-1", holder, now).await;
    assert_eq!(claim.expect("claimed"), Claim::Claimed);
    let again = store.claim(&t, &k, b"fp-2", Uuid::new_v4(), now).await;
    assert_eq!(
        again.expect("read"),
        Claim::InProgress {
            fingerprint: b"fp-1".to_vec()
        },
        "a held key is in progress, with the holder's fingerprint"
    );

    // Another token neither answers nor frees it.
    let stranger = Uuid::new_v4();
    store
        .answer(&t, &k, stranger, &created("{\"x\":1}"), now)
        .await
        .expect("ignored");
    store.release(&t, &k, stranger).await.expect("ignored");
    let still = store.claim(&t, &k, b"fp-1", Uuid::new_v4(), now).await;
    assert!(
        matches!(still.expect("read"), Claim::InProgress { .. }),
        "only the holder answers or releases"
    );

    let answer = created("{\"id\":\"one\"}");
    store
        .answer(&t, &k, holder, &answer, now)
        .await
        .expect("stored");
    let replay = store.claim(&t, &k, b"fp-1", Uuid::new_v4(), now).await;
    assert_eq!(
        replay.expect("read"),
        Claim::Answered {
            fingerprint: b"fp-1".to_vec(),
            answer: answer.clone(),
        }
    );
    let without_location = StoredAnswer {
        location: None,
        ..answer
    };
    let k2 = key("create-2");
    let holder = Uuid::new_v4();
    store
        .claim(&t, &k2, b"fp", holder, now)
        .await
        .expect("claimed");
    store
        .answer(&t, &k2, holder, &without_location, now)
        .await
        .expect("stored");
    assert_eq!(
        store
            .claim(&t, &k2, b"fp", Uuid::new_v4(), now)
            .await
            .expect("read"),
        Claim::Answered {
            fingerprint: b"fp".to_vec(),
            answer: without_location
        }
    );
}

/// A released key (its request failed) is free: the next claim runs anew.
pub async fn released_idempotency_keys_are_free_again<S: IdempotencyStore>(store: &S) {
    let t = tenant("contract-idem-release");
    let k = key("failing");
    let now = Timestamp::now();
    let holder = Uuid::new_v4();
    store
        .claim(&t, &k, b"fp", holder, now)
        .await
        .expect("claimed");
    store.release(&t, &k, holder).await.expect("released");
    let next = store.claim(&t, &k, b"other", Uuid::new_v4(), now).await;
    assert_eq!(next.expect("claimed"), Claim::Claimed);
}

/// The same key in two tenants is two keys.
pub async fn idempotency_keys_are_per_tenant<S: IdempotencyStore>(store: &S) {
    let (a, b) = (tenant("contract-idem-a"), tenant("contract-idem-b"));
    let k = key("shared-key");
    let now = Timestamp::now();
    let holder = Uuid::new_v4();
    store.claim(&a, &k, b"fp", holder, now).await.expect("a");
    store
        .answer(&a, &k, holder, &created("a"), now)
        .await
        .expect("a answered");
    let in_b = store.claim(&b, &k, b"fp", Uuid::new_v4(), now).await;
    assert_eq!(
        in_b.expect("b"),
        Claim::Claimed,
        "another tenant's key is not seen"
    );
    let in_a = store.claim(&a, &k, b"fp", Uuid::new_v4(), now).await;
    assert!(matches!(in_a.expect("a"), Claim::Answered { answer, .. } if answer == created("a")));
}

/// An answer counts for the TTL and a hold for the lease; after, the key is claimed anew, and
/// the old holder's late answer does not overwrite the new hold.
pub async fn idempotency_keys_expire<S: IdempotencyStore>(store: &S) {
    let t = tenant("contract-idem-expiry");
    let then = Timestamp::now();

    let answered = key("answered");
    let holder = Uuid::new_v4();
    store
        .claim(&t, &answered, b"fp", holder, then)
        .await
        .expect("claimed");
    store
        .answer(&t, &answered, holder, &created("first"), then)
        .await
        .expect("stored");
    let almost = after(then, IDEMPOTENCY_TTL - std::time::Duration::from_secs(1));
    assert!(matches!(
        store
            .claim(&t, &answered, b"fp", Uuid::new_v4(), almost)
            .await
            .expect("read"),
        Claim::Answered { .. }
    ));
    let expired = after(then, IDEMPOTENCY_TTL);
    assert_eq!(
        store
            .claim(&t, &answered, b"new", Uuid::new_v4(), expired)
            .await
            .expect("claimed"),
        Claim::Claimed,
        "an answer older than the TTL is ignored"
    );

    let held = key("held");
    let old = Uuid::new_v4();
    store
        .claim(&t, &held, b"old", old, then)
        .await
        .expect("claimed");
    let almost = after(then, IDEMPOTENCY_LEASE - std::time::Duration::from_secs(1));
    assert!(matches!(
        store
            .claim(&t, &held, b"old", Uuid::new_v4(), almost)
            .await
            .expect("read"),
        Claim::InProgress { .. }
    ));
    let lapsed = after(then, IDEMPOTENCY_LEASE);
    let new = Uuid::new_v4();
    assert_eq!(
        store
            .claim(&t, &held, b"new", new, lapsed)
            .await
            .expect("claimed"),
        Claim::Claimed,
        "a hold older than the lease is taken over"
    );
    store
        .answer(&t, &held, old, &created("late"), lapsed)
        .await
        .expect("ignored");
    assert_eq!(
        store
            .claim(&t, &held, b"new", Uuid::new_v4(), lapsed)
            .await
            .expect("read"),
        Claim::InProgress {
            fingerprint: b"new".to_vec()
        },
        "the old holder's late answer is ignored"
    );
}

/// Of many concurrent claims of one free key, exactly one holds it.
pub async fn concurrent_claims_of_a_key_hold_it_once<S: IdempotencyStore>(store: &S) {
    let t = tenant("contract-idem-race");
    let k = key("raced");
    let now = Timestamp::now();
    let claims = futures_util::future::join_all(
        (0..8).map(|_| store.claim(&t, &k, b"fp", Uuid::new_v4(), now)),
    )
    .await;
    let held = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::Claimed)))
        .count();
    let waiting = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::InProgress { .. })))
        .count();
    assert_eq!((held, waiting), (1, 7), "{claims:?}");
}
