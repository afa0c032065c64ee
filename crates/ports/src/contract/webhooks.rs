//! Stories of webhooks (issue 15): subscriptions per tenant, and the outbox the worker drains
//! (claims leased, attempts recorded, failing subscriptions disabled).

use std::time::Duration;

use domain::webhook::{ATTEMPTS_KEPT, WEBHOOKS_PER_TENANT_MAX};
use domain::Timestamp;
use uuid::Uuid;

use super::tenant;
use crate::{
    AttemptOutcome, CreateWebhookError, DeliveryAttempt, DeliveryState, LookupError, NewWebhook,
    WebhookChanges, WebhookOutbox, WebhookRepository,
};

fn at(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(time::Duration::seconds(secs))
        .expect("in range")
}

fn new_webhook(url: &str, created_at: Timestamp) -> NewWebhook {
    NewWebhook {
        id: Uuid::new_v4(),
        url: url.to_owned(),
        event_types: vec!["alert.opened".to_owned(), "device.state".to_owned()],
        description: "contract".to_owned(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        created_at,
    }
}

fn failed(at: Timestamp, status: Option<u16>) -> DeliveryAttempt {
    DeliveryAttempt {
        at,
        status,
        duration_ms: 12,
        error: Some("HTTP 503".to_owned()),
    }
}

const LEASE: Duration = Duration::from_secs(60);
const DISABLE_AFTER: Duration = Duration::from_secs(3600);

/// Subscriptions round-trip per tenant, at most [`WEBHOOKS_PER_TENANT_MAX`] each; updates
/// apply partially; deleting one takes its deliveries.
pub async fn webhooks_round_trip_per_tenant_within_the_cap<S: WebhookRepository>(store: &S) {
    let (t, other) = (tenant("contract-hooks"), tenant("contract-hooks-2"));
    let now = Timestamp::now();
    let first = store
        .create_webhook(&t, new_webhook("https://a.example/hook", now))
        .await
        .expect("created");
    assert!(first.enabled);
    assert_eq!(first.disabled_reason, None);
    assert_eq!(first.event_types, ["alert.opened", "device.state"]);
    assert_eq!(store.get_webhook(&t, first.id).await.expect("found"), first);
    assert!(matches!(
        store.get_webhook(&other, first.id).await,
        Err(LookupError::NotFound)
    ));
    assert!(store.list_webhooks(&other).await.expect("list").is_empty());

    let changed = store
        .update_webhook(
            &t,
            first.id,
            WebhookChanges {
                description: Some("paging".to_owned()),
                enabled: Some(false),
                ..WebhookChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(changed.description, "paging");
    assert!(!changed.enabled);
    assert_eq!(changed.url, first.url, "untouched fields stay");
    assert!(matches!(
        store
            .update_webhook(&other, first.id, WebhookChanges::default())
            .await,
        Err(LookupError::NotFound)
    ));

    for i in 1..WEBHOOKS_PER_TENANT_MAX {
        let i = i64::try_from(i).expect("small");
        store
            .create_webhook(&t, new_webhook("https://b.example/", at(now, i)))
            .await
            .expect("within the cap");
    }
    assert!(matches!(
        store
            .create_webhook(&t, new_webhook("https://c.example/", now))
            .await,
        Err(CreateWebhookError::TooMany(WEBHOOKS_PER_TENANT_MAX))
    ));
    let list = store.list_webhooks(&t).await.expect("list");
    assert_eq!(list.len(), WEBHOOKS_PER_TENANT_MAX);
    assert_eq!(list[0].id, first.id, "oldest first");

    store
        .enqueue_test(&t, first.id, r#"{"type":"webhook.test"}"#, now)
        .await
        .expect("queued");
    store.delete_webhook(&t, first.id).await.expect("deleted");
    assert!(matches!(
        store.delete_webhook(&t, first.id).await,
        Err(LookupError::NotFound)
    ));
    assert!(matches!(
        store.list_deliveries(&t, first.id, 10).await,
        Err(LookupError::NotFound)
    ));
}

/// A queued delivery is claimed once while its lease holds, again once it lapses; only the
/// lease's holder records its attempts; a retry is due at its time; delivered ends it.
pub async fn deliveries_are_leased_retried_and_recorded<S>(store: &S)
where
    S: WebhookRepository + WebhookOutbox,
{
    let t = tenant("contract-outbox");
    let now = Timestamp::now();
    let hook = store
        .create_webhook(&t, new_webhook("https://a.example/hook", now))
        .await
        .expect("created");
    let body = r#"{"data":{"n":1},"type":"webhook.test"}"#;
    let id = store
        .enqueue_test(&t, hook.id, body, now)
        .await
        .expect("queued");
    assert!(
        store
            .claim_due(at(now, -1), 10, LEASE)
            .await
            .expect("claim")
            .is_empty(),
        "not due before its time"
    );
    let claimed = store.claim_due(now, 10, LEASE).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let first = &claimed[0];
    assert_eq!((first.id, first.subscription_id), (id, hook.id));
    assert_eq!(first.tenant, t);
    assert_eq!(first.url, hook.url);
    assert_eq!(first.secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    assert_eq!(first.event_type, "webhook.test");
    assert_eq!(first.event_seq, None);
    let stored: serde_like::Json = first
        .payload
        .as_deref()
        .expect("a test carries its body")
        .into();
    assert_eq!(stored, body.into());
    assert_eq!(first.attempts, 0);
    assert!(
        store
            .claim_due(at(now, 30), 10, LEASE)
            .await
            .expect("claim")
            .is_empty(),
        "leased"
    );

    // The lease lapses (its holder died): claimed again, and the old holder records nothing.
    let again = store
        .claim_due(at(now, 61), 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    let second = &again[0];
    assert_ne!(second.lease, first.lease);
    store
        .record_attempt(
            first,
            &failed(now, Some(500)),
            AttemptOutcome::Failed,
            DISABLE_AFTER,
        )
        .await
        .expect("ignored");
    let shown = store.list_deliveries(&t, hook.id, 10).await.expect("list");
    assert_eq!(shown[0].state, DeliveryState::Pending);
    assert!(shown[0].attempts.is_empty(), "a lost lease records nothing");

    let retry_at = at(now, 100);
    store
        .record_attempt(
            second,
            &failed(at(now, 62), Some(503)),
            AttemptOutcome::RetryAt(retry_at),
            DISABLE_AFTER,
        )
        .await
        .expect("recorded");
    let shown = store.list_deliveries(&t, hook.id, 10).await.expect("list");
    assert_eq!(shown[0].state, DeliveryState::Pending);
    assert_eq!(shown[0].next_attempt_at, Some(retry_at));
    assert_eq!(shown[0].attempts, vec![failed(at(now, 62), Some(503))]);
    assert!(store
        .claim_due(at(now, 99), 10, LEASE)
        .await
        .expect("claim")
        .is_empty());
    let third = store.claim_due(retry_at, 10, LEASE).await.expect("claim");
    assert_eq!(third[0].attempts, 1);
    assert_eq!(third[0].first_failure_at, Some(at(now, 62)));
    let ok = DeliveryAttempt {
        at: retry_at,
        status: Some(200),
        duration_ms: 3,
        error: None,
    };
    store
        .record_attempt(&third[0], &ok, AttemptOutcome::Delivered, DISABLE_AFTER)
        .await
        .expect("recorded");
    let shown = store.list_deliveries(&t, hook.id, 10).await.expect("list");
    assert_eq!(shown[0].state, DeliveryState::Delivered);
    assert_eq!(shown[0].next_attempt_at, None);
    assert_eq!(shown[0].attempts.len(), 2);
    assert!(store
        .claim_due(at(now, 10_000), 10, LEASE)
        .await
        .expect("claim")
        .is_empty());
    assert!(matches!(
        store
            .list_deliveries(&tenant("contract-outbox-2"), hook.id, 10)
            .await,
        Err(LookupError::NotFound)
    ));
}

/// Deliveries are listed newest first, `limit` at most, each with its latest attempts only.
pub async fn deliveries_are_listed_newest_first_with_bounded_attempts<S>(store: &S)
where
    S: WebhookRepository + WebhookOutbox,
{
    let t = tenant("contract-deliveries");
    let now = Timestamp::now();
    let hook = store
        .create_webhook(&t, new_webhook("https://a.example/hook", now))
        .await
        .expect("created");
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            store
                .enqueue_test(&t, hook.id, "{}", at(now, i))
                .await
                .expect("queued"),
        );
    }
    let shown = store.list_deliveries(&t, hook.id, 2).await.expect("list");
    assert_eq!(
        shown.iter().map(|d| d.id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );
    // One delivery (of another tenant, alone in the outbox once those are delivered) tried
    // more often than attempts are kept: the latest are kept, oldest first.
    for claimed in store.claim_due(at(now, 5), 10, LEASE).await.expect("claim") {
        let ok = DeliveryAttempt {
            at: now,
            status: Some(200),
            duration_ms: 1,
            error: None,
        };
        store
            .record_attempt(&claimed, &ok, AttemptOutcome::Delivered, DISABLE_AFTER)
            .await
            .expect("recorded");
    }
    let busy = tenant("contract-deliveries-2");
    let hook = store
        .create_webhook(&busy, new_webhook("https://b.example/hook", now))
        .await
        .expect("created");
    store
        .enqueue_test(&busy, hook.id, "{}", now)
        .await
        .expect("queued");
    let mut clock = at(now, 10);
    for n in 0..ATTEMPTS_KEPT + 3 {
        let claimed = store.claim_due(clock, 1, LEASE).await.expect("claim");
        assert_eq!(claimed.len(), 1, "attempt {n}");
        clock = at(clock, 1);
        store
            .record_attempt(
                &claimed[0],
                &failed(clock, Some(500)),
                AttemptOutcome::RetryAt(clock),
                Duration::from_secs(1_000_000),
            )
            .await
            .expect("recorded");
    }
    let shown = store
        .list_deliveries(&busy, hook.id, 10)
        .await
        .expect("list");
    let attempts = &shown[0].attempts;
    assert_eq!(attempts.len(), ATTEMPTS_KEPT);
    assert_eq!(
        attempts.last().map(|a| a.at),
        Some(clock),
        "the latest kept"
    );
    assert!(
        attempts.windows(2).all(|w| w[0].at < w[1].at),
        "oldest first"
    );
}

/// A subscription whose deliveries fail for `disable_after` with no success is disabled with a
/// reason, and its events' deliveries are no longer claimed; enabling it clears the reason.
pub async fn failing_subscriptions_are_disabled_with_a_reason<S>(store: &S)
where
    S: WebhookRepository + WebhookOutbox,
{
    let t = tenant("contract-disable");
    let now = Timestamp::now();
    let hook = store
        .create_webhook(&t, new_webhook("https://a.example/hook", now))
        .await
        .expect("created");
    store
        .enqueue_test(&t, hook.id, "{}", now)
        .await
        .expect("queued");
    let claimed = store.claim_due(now, 10, LEASE).await.expect("claim");
    store
        .record_attempt(
            &claimed[0],
            &failed(now, None),
            AttemptOutcome::RetryAt(at(now, 1800)),
            DISABLE_AFTER,
        )
        .await
        .expect("recorded");
    assert!(store.get_webhook(&t, hook.id).await.expect("found").enabled);
    let claimed = store
        .claim_due(at(now, 1800), 10, LEASE)
        .await
        .expect("claim");
    store
        .record_attempt(
            &claimed[0],
            &failed(at(now, 3600), None),
            AttemptOutcome::RetryAt(at(now, 5000)),
            DISABLE_AFTER,
        )
        .await
        .expect("recorded");
    let disabled = store.get_webhook(&t, hook.id).await.expect("found");
    assert!(!disabled.enabled, "failing for an hour");
    let reason = disabled.disabled_reason.expect("a reason");
    assert!(reason.contains("HTTP 503"), "{reason}");

    let enabled = store
        .update_webhook(
            &t,
            hook.id,
            WebhookChanges {
                enabled: Some(true),
                ..WebhookChanges::default()
            },
        )
        .await
        .expect("updated");
    assert!(enabled.enabled);
    assert_eq!(enabled.disabled_reason, None);
    // The streak starts anew: one more failure does not disable it.
    let claimed = store
        .claim_due(at(now, 5000), 10, LEASE)
        .await
        .expect("claim");
    store
        .record_attempt(
            &claimed[0],
            &failed(at(now, 7200), None),
            AttemptOutcome::RetryAt(at(now, 9000)),
            DISABLE_AFTER,
        )
        .await
        .expect("recorded");
    assert!(store.get_webhook(&t, hook.id).await.expect("found").enabled);
}

/// Equality of JSON texts up to the store's normalisation (PostgreSQL's `jsonb` reorders keys
/// and spaces): compared as sorted key/value text, enough for the flat bodies here.
mod serde_like {
    #[derive(Debug, PartialEq, Eq)]
    pub struct Json(Vec<char>);

    impl From<&str> for Json {
        fn from(text: &str) -> Self {
            let mut chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
            chars.sort_unstable();
            Self(chars)
        }
    }
}
