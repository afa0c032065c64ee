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
// Store failures

#[actix_web::test]
async fn an_unavailable_store_answers_503_with_a_json_detail() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_groups()
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable(anyhow!("pool exhausted"))));
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, _, _| {
            Err(CreateGroupError::Store(StoreError::Unavailable(anyhow!(
                "pool exhausted"
            ))))
        });
    mocks
        .windows
        .expect_get_window()
        .times(1)
        .returning(|_, _| {
            Err(LookupError::Store(StoreError::Unavailable(anyhow!(
                "pool exhausted"
            ))))
        });
    mocks
        .windows
        .expect_update_window()
        .times(1)
        .returning(|_, _, _, _| {
            Err(UpdateWindowError::Store(StoreError::Unavailable(anyhow!(
                "pool exhausted"
            ))))
        });

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(GROUPS),
            post(GROUPS, &json!({"name": "Lobby"})),
            get("/customer/maintenance-windows/mw-0000abcd"),
            patch(
                "/customer/maintenance-windows/mw-0000abcd",
                &json!({"enabled": false}),
            ),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!answer.detail().is_empty());
        assert!(
            !answer.text().contains("pool exhausted"),
            "{}",
            answer.text()
        );
    }
}

#[actix_web::test]
async fn an_unknown_store_error_answers_500_without_leaking_its_cause() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_groups()
        .times(1)
        .returning(|_, _| Err(StoreError::Unknown(anyhow!("secret SQL detail"))));
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(|_, _, _, _| {
            Err(UpdateGroupError::Store(StoreError::Unknown(anyhow!(
                "secret SQL detail"
            ))))
        });
    mocks
        .groups
        .expect_delete_group()
        .times(1)
        .returning(|_, _| {
            Err(LookupError::Store(StoreError::Unknown(anyhow!(
                "secret SQL detail"
            ))))
        });
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .returning(|_, _, _| {
            Err(CreateWindowError::Store(StoreError::Unknown(anyhow!(
                "secret SQL detail"
            ))))
        });
    mocks
        .windows
        .expect_list_windows()
        .times(1)
        .returning(|_, _| Err(StoreError::Unknown(anyhow!("secret SQL detail"))));

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(GROUPS),
            patch(
                "/customer/device-groups/grp-lobby",
                &json!({"name": "Hall"}),
            ),
            delete("/customer/device-groups/grp-lobby"),
            post(WINDOWS, &nightly_body()),
            get(WINDOWS),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!answer.detail().is_empty());
        assert!(
            !answer.text().contains("secret SQL detail"),
            "{}",
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

// ---------------------------------------------------------------------------------------------
// Store failures on the new routes

#[actix_web::test]
async fn an_unavailable_store_answers_503_on_devices_readings_and_groups_without_leaking_its_cause()
{
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_list_devices()
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable(anyhow!("pool exhausted"))));
    mocks
        .devices
        .expect_create_device()
        .times(1)
        .returning(|_, _, _| {
            Err(CreateDeviceError::Store(StoreError::Unavailable(anyhow!(
                "pool exhausted"
            ))))
        });
    mocks.readings.expect_ingest().times(1).returning(|_, _| {
        Err(IngestError::Store(StoreError::Unavailable(anyhow!(
            "pool exhausted"
        ))))
    });
    mocks
        .groups
        .expect_group_readings()
        .times(1)
        .returning(|_, _, _| {
            Err(LookupError::Store(StoreError::Unavailable(anyhow!(
                "pool exhausted"
            ))))
        });
    mocks
        .groups
        .expect_add_member()
        .times(1)
        .returning(|_, _, _, _| {
            Err(MembershipError::Store(StoreError::Unavailable(anyhow!(
                "pool exhausted"
            ))))
        });

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(DEVICES),
            post(DEVICES, &json!({"name": "T1"})),
            post(
                READINGS,
                &json!({"readings": [reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 1.0)]}),
            ),
            get(&format!("{API_GROUPS}/{GROUP_ID}/readings")),
            put_empty(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.text()
        );
        assert!(!answer.detail().is_empty());
        assert!(
            !answer.text().contains("pool exhausted"),
            "{}",
            answer.text()
        );
    }
}

#[actix_web::test]
async fn an_unknown_store_error_answers_500_on_the_new_routes_without_leaking_its_cause() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_update_device()
        .times(1)
        .returning(|_, _, _, _| {
            Err(UpdateDeviceError::Store(StoreError::Unknown(anyhow!(
                "secret SQL detail"
            ))))
        });
    mocks
        .readings
        .expect_device_readings()
        .times(1)
        .returning(|_, _, _| {
            Err(LookupError::Store(StoreError::Unknown(anyhow!(
                "secret SQL detail"
            ))))
        });
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, _, _| {
            Err(CreateGroupError::Store(StoreError::Unknown(anyhow!(
                "secret SQL detail"
            ))))
        });
    mocks
        .groups
        .expect_remove_member()
        .times(1)
        .returning(|_, _, _, _| {
            Err(MembershipError::Store(StoreError::Unknown(anyhow!(
                "secret SQL detail"
            ))))
        });

    // Act
    let answers = call_all(
        mocks,
        vec![
            put(&format!("{DEVICES}/{DEVICE_A}"), &json!({"name": "T2"})),
            get(&format!("{DEVICES}/{DEVICE_A}/readings")),
            post(API_GROUPS, &json!({"name": "Building A"})),
            delete(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(
            answer.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            answer.text()
        );
        assert!(
            !answer.text().contains("secret SQL detail"),
            "{}",
            answer.text()
        );
    }
}
