//! `Idempotency-Key` on the creates (issue 18, point 6): a retry with the same key and body
//! answers the first answer and creates nothing, per tenant, across instances.

use reqwest::StatusCode;
use serde_json::{json, Value};
use test_db::TestDatabase;

use crate::helpers::{detail, token, TestApp};
use crate::on_both_stores;

/// What a keyed POST got back: status, `Location`, the body's bytes.
#[derive(Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

async fn keyed(app: &TestApp, path: &str, token: &str, key: &str, body: &str) -> Answer {
    let response = app
        .client()
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("Idempotency-Key", key)
        .body(body.to_owned())
        .send()
        .await
        .expect("request sent");
    Answer {
        status: response.status(),
        location: response
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("ASCII").to_owned()),
        body: response.text().await.expect("body read"),
    }
}

/// Every create, with a body for it and the field that names what it created.
const CREATES: [(&str, &str, &str); 4] = [
    ("/api/devices", r#"{"name": "Boiler"}"#, "id"),
    ("/api/groups", r#"{"name": "Boilers"}"#, "id"),
    (
        "/customer/device-groups",
        r#"{"name": "Basement"}"#,
        "group_id",
    ),
    (
        "/customer/maintenance-windows",
        r#"{"name": "Nightly", "starts_at": "2030-01-01T00:00:00Z"}"#,
        "window_id",
    ),
];

/// How many of the tenant's rows each create's list holds, in [`CREATES`] order.
async fn counts(app: &TestApp, t: &str) -> [usize; 4] {
    let (_, devices) = app.get("/api/devices", t).await;
    let (_, groups) = app.get("/api/groups", t).await;
    let (_, customer_groups) = app.get("/customer/device-groups", t).await;
    let (_, windows) = app.get("/customer/maintenance-windows", t).await;
    let len = |v: &Value| v.as_array().map_or(usize::MAX, Vec::len);
    // The Group API and the customer API list the same groups.
    [
        len(&devices),
        len(&groups),
        customer_groups["total"]
            .as_u64()
            .map_or(usize::MAX, |n| n as usize),
        windows["total"].as_u64().map_or(usize::MAX, |n| n as usize),
    ]
}

on_both_stores! {
    async fn a_retried_create_answers_the_first_answer_and_creates_once(app) {
        let t = token("idem", &["admin"]);
        for (n, (path, body, id)) in CREATES.into_iter().enumerate() {
            let key = format!("create-{n}");
            let first = keyed(&app, path, &t, &key, body).await;
            assert!(first.status.is_success(), "{path}: {first:?}");
            let retry = keyed(&app, path, &t, &key, body).await;
            assert_eq!(retry, first, "{path}: the retry gets the first answer, byte for byte");
            assert!(first.json()[id].is_string(), "{path}: {first:?}");
        }
        // One device, and the two groups (one per API, both seen by both lists), one window.
        assert_eq!(counts(&app, &t).await, [1, 2, 2, 1]);
    }
}

on_both_stores! {
    async fn a_retried_webhook_create_answers_the_first_answer_secret_included(app) {
        let t = token("idem-hooks", &["admin"]);
        // A public address literal: checked without a lookup, never connected to here.
        let body = r#"{"url": "https://93.184.216.34/hook", "event_types": ["alert.opened"]}"#;
        let first = keyed(&app, "/api/webhooks", &t, "hook-1", body).await;
        assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
        assert!(first.json()["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{first:?}");
        let retry = keyed(&app, "/api/webhooks", &t, "hook-1", body).await;
        assert_eq!(retry, first, "the retry gets the first answer, byte for byte");
        let (_, list) = app.get("/api/webhooks", &t).await;
        assert_eq!(list["webhooks"].as_array().map(Vec::len), Some(1), "{list}");
        let other = keyed(&app, "/api/webhooks", &t, "hook-1", r#"{"url": "https://93.184.216.34/other", "event_types": ["alert.opened"]}"#).await;
        assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY, "{other:?}");
    }
}

on_both_stores! {
    async fn a_key_sent_with_another_request_is_422_naming_it(app) {
        let t = token("idem", &["admin"]);
        let first = keyed(&app, "/api/devices", &t, "k", r#"{"name": "Boiler"}"#).await;
        assert_eq!(first.status, StatusCode::CREATED, "{first:?}");

        let other_body = keyed(&app, "/api/devices", &t, "k", r#"{"name": "Pump"}"#).await;
        let same_json_other_bytes = keyed(&app, "/api/devices", &t, "k", r#"{"name":"Boiler"}"#).await;
        let other_route = keyed(&app, "/api/groups", &t, "k", r#"{"name": "Boiler"}"#).await;
        for refused in [other_body, same_json_other_bytes, other_route] {
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{refused:?}");
            assert!(detail(&refused.json()).starts_with("Idempotency-Key: "), "{refused:?}");
        }
        for bad in ["", &"k".repeat(256)] {
            let refused = keyed(&app, "/api/devices", &t, bad, r#"{"name": "Other"}"#).await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {refused:?}");
            assert_eq!(detail(&refused.json()), "Idempotency-Key: must be 1 to 255 printable ASCII characters");
        }
        assert_eq!(counts(&app, &t).await[..2], [1, 0], "nothing more was created");
    }
}

on_both_stores! {
    async fn keys_are_per_tenant(app) {
        let (a, b) = (token("idem-a", &["admin"]), token("idem-b", &["admin"]));
        let body = r#"{"name": "Boiler"}"#;
        let in_a = keyed(&app, "/api/devices", &a, "shared", body).await;
        let in_b = keyed(&app, "/api/devices", &b, "shared", body).await;
        assert_eq!((in_a.status, in_b.status), (StatusCode::CREATED, StatusCode::CREATED));
        assert_ne!(in_a.json()["id"], in_b.json()["id"], "each tenant created its own");
        let again_in_b = keyed(&app, "/api/devices", &b, "shared", body).await;
        assert_eq!(again_in_b, in_b);
    }
}

on_both_stores! {
    async fn a_failed_create_is_not_kept_and_its_retry_may_succeed(app) {
        let t = token("idem", &["admin"]);
        let (status, taken) = app.post("/api/devices", &t, json!({"name": "Boiler"})).await;
        assert_eq!(status, StatusCode::CREATED);
        let refused = keyed(&app, "/api/devices", &t, "k", r#"{"name": "Boiler"}"#).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused:?}");
        let (status, _) = app.delete(&format!("/api/devices/{}", taken["id"].as_str().unwrap()), &t).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let retried = keyed(&app, "/api/devices", &t, "k", r#"{"name": "Boiler"}"#).await;
        assert_eq!(retried.status, StatusCode::CREATED, "{retried:?}");
    }
}

on_both_stores! {
    async fn concurrent_requests_with_one_key_create_once(app) {
        let t = token("idem", &["admin"]);
        let send = || keyed(&app, "/api/devices", &t, "raced", r#"{"name": "Boiler"}"#);
        let (a1, a2, a3, a4, a5, a6) = tokio::join!(send(), send(), send(), send(), send(), send());
        let answers = [a1, a2, a3, a4, a5, a6];
        let created: Vec<&Answer> = answers.iter().filter(|a| a.status == StatusCode::CREATED).collect();
        assert!(!created.is_empty(), "{answers:?}");
        assert!(created.iter().all(|a| *a == created[0]), "replays answer the first answer: {answers:?}");
        for other in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
            assert_eq!(other.status, StatusCode::CONFLICT, "{answers:?}");
            assert_eq!(detail(&other.json()), "A request with this Idempotency-Key is in progress");
        }
        assert_eq!(counts(&app, &t).await[0], 1, "one device");
    }
}

#[tokio::test]
async fn a_retry_on_another_instance_answers_the_first_answer() {
    let db = TestDatabase::create().await;
    let (a, b) = tokio::join!(
        TestApp::spawn_on(Some(db.url())),
        TestApp::spawn_on(Some(db.url()))
    );
    let t = token("idem-scale-out", &["admin"]);
    let body = r#"{"name": "Boiler"}"#;
    let first = keyed(&a, "/api/devices", &t, "k", body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let on_b = keyed(&b, "/api/devices", &t, "k", body).await;
    assert_eq!(on_b, first);
    let other = keyed(&b, "/api/devices", &t, "k", r#"{"name": "Pump"}"#).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY, "{other:?}");
    assert_eq!(counts(&b, &t).await[0], 1, "one device");
}
