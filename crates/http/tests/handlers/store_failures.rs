//! Store failures answer 503 or 500 on every route without leaking their cause.

use actix_web::http::StatusCode;
use anyhow::anyhow;
use ports::{
    CreateDeviceError, CreateGroupError, CreateWindowError, IngestError, LookupError,
    MembershipError, StoreError, UpdateDeviceError, UpdateGroupError, UpdateWindowError,
};
use serde_json::json;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Store failures on every route

#[actix_web::test]
async fn an_unavailable_store_answers_503_with_a_json_detail_on_every_route_without_leaking_its_cause(
) {
    // Arrange
    let unavailable = || StoreError::Unavailable(anyhow!("pool exhausted"));
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_groups()
        .times(1)
        .returning(move |_, _| Err(unavailable()));
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(move |_, _, _| Err(CreateGroupError::Store(unavailable())));
    mocks
        .windows
        .expect_get_window()
        .times(1)
        .returning(move |_, _| Err(LookupError::Store(unavailable())));
    mocks
        .windows
        .expect_update_window()
        .times(1)
        .returning(move |_, _, _, _| Err(UpdateWindowError::Store(unavailable())));
    mocks
        .devices
        .expect_list_devices()
        .times(1)
        .returning(move |_, _, _| Err(unavailable()));
    mocks
        .devices
        .expect_create_device()
        .times(1)
        .returning(move |_, _, _| Err(CreateDeviceError::Store(unavailable())));
    mocks
        .readings
        .expect_ingest()
        .times(1)
        .returning(move |_, _| Err(IngestError::Store(unavailable())));
    mocks
        .groups
        .expect_group_readings()
        .times(1)
        .returning(move |_, _, _| Err(LookupError::Store(unavailable())));
    mocks
        .groups
        .expect_add_member()
        .times(1)
        .returning(move |_, _, _, _| Err(MembershipError::Store(unavailable())));
    let cases = vec![
        ("GET customer groups", get(GROUPS)),
        (
            "POST customer groups",
            post(GROUPS, &json!({"name": "Lobby"})),
        ),
        (
            "GET window",
            get("/customer/maintenance-windows/mw-0000abcd"),
        ),
        (
            "PATCH window",
            patch(
                "/customer/maintenance-windows/mw-0000abcd",
                &json!({"enabled": false}),
            ),
        ),
        ("GET devices", get(DEVICES)),
        ("POST devices", post(DEVICES, &json!({"name": "T1"}))),
        (
            "POST readings",
            post(
                READINGS,
                &json!({"readings": [reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 1.0)]}),
            ),
        ),
        (
            "GET API group readings",
            get(&format!("{API_GROUPS}/{GROUP_ID}/readings")),
        ),
        (
            "PUT customer group device",
            put_empty(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
        ),
    ];
    let labels: Vec<&str> = cases.iter().map(|(label, _)| *label).collect();
    let requests = cases.into_iter().map(|(_, r)| r).collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for (label, answer) in labels.iter().zip(&answers) {
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{label}: {}",
            answer.text()
        );
        assert_eq!(
            answer
                .headers
                .get(actix_web::http::header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..]),
            "{label}: every 503 says when to retry"
        );
        assert!(!answer.detail().is_empty(), "{label}");
        assert!(
            !answer.text().contains("pool exhausted"),
            "{label}: {}",
            answer.text()
        );
    }
}

#[actix_web::test]
async fn an_unknown_store_error_answers_500_on_every_route_without_leaking_its_cause() {
    // Arrange
    let unknown = || StoreError::Unknown(anyhow!("secret SQL detail"));
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_groups()
        .times(1)
        .returning(move |_, _| Err(unknown()));
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(move |_, _, _, _| Err(UpdateGroupError::Store(unknown())));
    mocks
        .groups
        .expect_delete_group()
        .times(1)
        .returning(move |_, _| Err(LookupError::Store(unknown())));
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .returning(move |_, _, _| Err(CreateWindowError::Store(unknown())));
    mocks
        .windows
        .expect_list_windows()
        .times(1)
        .returning(move |_, _| Err(unknown()));
    mocks
        .devices
        .expect_update_device()
        .times(1)
        .returning(move |_, _, _, _| Err(UpdateDeviceError::Store(unknown())));
    mocks
        .readings
        .expect_device_readings()
        .times(1)
        .returning(move |_, _, _| Err(LookupError::Store(unknown())));
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(move |_, _, _| Err(CreateGroupError::Store(unknown())));
    mocks
        .groups
        .expect_remove_member()
        .times(1)
        .returning(move |_, _, _, _| Err(MembershipError::Store(unknown())));
    let cases = vec![
        ("GET customer groups", get(GROUPS)),
        (
            "PATCH customer group",
            patch(
                "/customer/device-groups/grp-lobby",
                &json!({"name": "Hall"}),
            ),
        ),
        (
            "DELETE customer group",
            delete("/customer/device-groups/grp-lobby"),
        ),
        ("POST windows", post(WINDOWS, &nightly_body())),
        ("GET windows", get(WINDOWS)),
        (
            "PUT device",
            put(&format!("{DEVICES}/{DEVICE_A}"), &json!({"name": "T2"})),
        ),
        (
            "GET device readings",
            get(&format!("{DEVICES}/{DEVICE_A}/readings")),
        ),
        (
            "POST API groups",
            post(API_GROUPS, &json!({"name": "Building A"})),
        ),
        (
            "DELETE customer group device",
            delete(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
        ),
    ];
    let labels: Vec<&str> = cases.iter().map(|(label, _)| *label).collect();
    let requests = cases.into_iter().map(|(_, r)| r).collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for (label, answer) in labels.iter().zip(&answers) {
        assert_eq!(
            answer.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{label}: {}",
            answer.text()
        );
        assert!(!answer.detail().is_empty(), "{label}");
        assert!(
            !answer.text().contains("secret SQL detail"),
            "{label}: {}",
            answer.text()
        );
    }
}

#[actix_web::test]
async fn a_generated_window_id_that_keeps_colliding_answers_an_opaque_500() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .times(3)
        .returning(|_, _, new| Err(CreateWindowError::WindowIdTaken(new.window_id)));

    // Act
    let answer = call(mocks, post(WINDOWS, &nightly_body())).await;

    // Assert
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!answer.text().contains("mw-"), "{}", answer.text());
}
