//! The outbox write of migration V11: the trigger on `events` queues one delivery per new event
//! and enabled subscription naming its type, in the event's transaction (a rolled-back event
//! queues nothing), under the tenant's row-level security.

use std::time::Duration;

use domain::{TenantId, Timestamp};
use ports::{NewWebhook, WebhookChanges, WebhookOutbox, WebhookRepository};
use uuid::Uuid;

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("valid tenant")
}

fn hook(types: &[&str]) -> NewWebhook {
    NewWebhook {
        id: Uuid::new_v4(),
        url: "https://receiver.example/hook".to_owned(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        description: String::new(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        created_at: Timestamp::now(),
    }
}

/// Inserts events `(seq, type)` for `tenant` as the service does (role `iot_app`, bound to the
/// tenant), in one statement, committed or rolled back.
async fn insert_events(url: &str, tenant: &str, events: &[(i64, &str)], commit: bool) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client.batch_execute("BEGIN").await.expect("begin");
    client
        .execute(
            "SELECT set_config('role', 'iot_app', true), set_config('app.tenant_id', $1, true)",
            &[&tenant],
        )
        .await
        .expect("bind");
    let seqs: Vec<i64> = events.iter().map(|e| e.0).collect();
    let types: Vec<&str> = events.iter().map(|e| e.1).collect();
    client
        .execute(
            "INSERT INTO events (tenant_id, seq, type, at) \
             SELECT $1, s, t, now() FROM unnest($2::bigint[], $3::text[]) AS e(s, t)",
            &[&tenant, &seqs, &types],
        )
        .await
        .expect("insert events");
    client
        .batch_execute(if commit { "COMMIT" } else { "ROLLBACK" })
        .await
        .expect("end");
}

#[tokio::test]
async fn events_queue_deliveries_for_matching_enabled_subscriptions_in_their_transaction() {
    let db = test_db::TestDatabase::create().await;
    let store = db.store().await;
    let (t, other) = (tenant("hooks-trigger"), tenant("hooks-trigger-2"));
    let alerts = store
        .create_webhook(&t, hook(&["alert.opened", "alert.resolved"]))
        .await
        .expect("created");
    let windows = store
        .create_webhook(&t, hook(&["window.started"]))
        .await
        .expect("created");
    let disabled = store
        .create_webhook(&t, hook(&["alert.opened"]))
        .await
        .expect("created");
    store
        .update_webhook(
            &t,
            disabled.id,
            WebhookChanges {
                enabled: Some(false),
                ..WebhookChanges::default()
            },
        )
        .await
        .expect("disabled");
    let elsewhere = store
        .create_webhook(&other, hook(&["alert.opened"]))
        .await
        .expect("created");

    insert_events(
        db.url(),
        t.as_str(),
        &[(1, "alert.opened"), (2, "device.state")],
        true,
    )
    .await;
    insert_events(db.url(), t.as_str(), &[(3, "alert.opened")], false).await;
    insert_events(
        db.url(),
        t.as_str(),
        &[(4, "window.started"), (5, "alert.resolved")],
        true,
    )
    .await;

    let later = Timestamp::now()
        .checked_add(time::Duration::seconds(5))
        .expect("in range");
    let mut claimed = store
        .claim_due(later, 100, Duration::from_secs(60))
        .await
        .expect("claimed");
    claimed.sort_by_key(|d| d.event_seq);
    let got: Vec<(Option<i64>, Uuid, &str)> = claimed
        .iter()
        .map(|d| (d.event_seq, d.subscription_id, d.event_type.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Some(1), alerts.id, "alert.opened"),
            (Some(4), windows.id, "window.started"),
            (Some(5), alerts.id, "alert.resolved"),
        ],
        "matching enabled subscriptions of the tenant, committed events only"
    );
    assert!(claimed.iter().all(|d| d.payload.is_none() && d.tenant == t));
    assert!(
        store
            .list_deliveries(&t, disabled.id, 10)
            .await
            .expect("list")
            .is_empty(),
        "a disabled subscription gets no deliveries"
    );
    assert!(store
        .list_deliveries(&other, elsewhere.id, 10)
        .await
        .expect("list")
        .is_empty());

    // The first rendering is stored, and every later attempt sends exactly those bytes.
    let first = &claimed[0];
    let stored = store
        .store_payload(first, r#"{"type": "alert.opened", "data": {"n": 1}}"#)
        .await
        .expect("stored")
        .expect("leased");
    let again = store
        .store_payload(first, r#"{"type": "other"}"#)
        .await
        .expect("read")
        .expect("leased");
    assert_eq!(again, stored, "the first body stays");
    let value: serde_json::Value = serde_json::from_str(&stored).expect("JSON");
    assert_eq!(value["data"]["n"], 1);
}
