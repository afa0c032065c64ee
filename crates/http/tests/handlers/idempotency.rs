//! `Idempotency-Key` around the creates: what the handler asks the key store, and what a
//! replay, a refusal and a failed create answer.

use actix_web::http::{header, StatusCode};
use ports::{Claim, CreateDeviceError, StoredAnswer};
use serde_json::{json, Value};

use crate::support::*;

fn device_body() -> Value {
    json!({"name": "Hall", "unit": "C", "status": "connected"})
}

fn keyed(request: actix_web::test::TestRequest, key: &str) -> actix_web::test::TestRequest {
    request.insert_header(("Idempotency-Key", key))
}

#[actix_web::test]
async fn a_replay_answers_the_stored_answer_and_creates_nothing() {
    let mut mocks = Mocks::untouchable();
    mocks.idempotency.checkpoint();
    mocks
        .idempotency
        .expect_claim()
        .withf(|tenant, key, _, _, _| is_tenant_a(tenant) && key.as_str() == "k-1")
        .times(1)
        .returning(|_, _, fingerprint, _, _| {
            Ok(Claim::Answered {
                fingerprint: fingerprint.to_vec(),
                answer: StoredAnswer {
                    status: 201,
                    location: Some("/api/devices/x".to_owned()),
                    body: br#"{"id":"first"}"#.to_vec(),
                },
            })
        });

    let answer = call(mocks, keyed(post(DEVICES, &device_body()), "k-1")).await;

    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.text(), r#"{"id":"first"}"#);
    assert_eq!(answer.header(header::LOCATION), Some("/api/devices/x"));
    assert_eq!(
        answer.header(header::CONTENT_TYPE),
        Some("application/json")
    );
}

#[actix_web::test]
async fn a_key_answered_for_another_body_is_422_and_one_in_progress_409() {
    let mut other = Mocks::untouchable();
    other.idempotency.checkpoint();
    other
        .idempotency
        .expect_claim()
        .times(1)
        .returning(|_, _, _, _, _| {
            Ok(Claim::Answered {
                fingerprint: b"another request".to_vec(),
                answer: StoredAnswer {
                    status: 201,
                    location: None,
                    body: b"{}".to_vec(),
                },
            })
        });
    let answer = call(other, keyed(post(DEVICES, &device_body()), "k-1")).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("Idempotency-Key: "),
        "{}",
        answer.detail()
    );

    let mut running = Mocks::untouchable();
    running.idempotency.checkpoint();
    running
        .idempotency
        .expect_claim()
        .times(1)
        .returning(|_, _, fingerprint, _, _| {
            Ok(Claim::InProgress {
                fingerprint: fingerprint.to_vec(),
            })
        });
    let answer = call(running, keyed(post(DEVICES, &device_body()), "k-1")).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(
        answer.detail(),
        "A request with this Idempotency-Key is in progress"
    );
}

#[actix_web::test]
async fn a_malformed_key_is_422_before_anything_is_asked() {
    for key in ["caf\u{e9}", &"k".repeat(256)] {
        let answer = call(
            Mocks::untouchable(),
            keyed(post(DEVICES, &device_body()), key),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{key:?}");
        assert_eq!(
            answer.detail(),
            "Idempotency-Key: must be 1 to 255 printable ASCII characters"
        );
    }
}

#[actix_web::test]
async fn a_success_is_stored_as_answered_and_a_failure_frees_the_key() {
    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_claim()
        .times(1)
        .returning(|_, _, _, _, _| Ok(Claim::Claimed));
    mocks
        .devices
        .expect_create_device()
        .times(1)
        .returning(|_, _, new| Ok(saved_device(new)));
    let stored = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = stored.clone();
    mocks
        .idempotency
        .expect_answer()
        .times(1)
        .returning(move |_, _, _, answer, _| {
            *seen.lock().expect("lock") = Some(answer.clone());
            Ok(())
        });
    mocks.idempotency.expect_release().never();
    let answer = call(mocks, keyed(post(DEVICES, &device_body()), "k-1")).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let stored = stored.lock().expect("lock").clone().expect("stored");
    assert_eq!(stored.status, 201);
    assert_eq!(stored.body, answer.body.to_vec(), "the body as answered");

    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_claim()
        .times(1)
        .returning(|_, _, _, _, _| Ok(Claim::Claimed));
    mocks
        .devices
        .expect_create_device()
        .times(1)
        .returning(|_, _, new| Err(CreateDeviceError::NameTaken(new.spec.name)));
    mocks.idempotency.expect_answer().never();
    mocks
        .idempotency
        .expect_release()
        .times(1)
        .returning(|_, _, _| Ok(()));
    let answer = call(mocks, keyed(post(DEVICES, &device_body()), "k-1")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
}
