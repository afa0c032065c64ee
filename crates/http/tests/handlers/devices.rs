//! Devices: list, create, get, update, delete, and a device's groups.

use actix_web::http::StatusCode;
use domain::{
    DeviceChanges, DeviceName, DeviceSpec, DeviceStatus, ScopeLabel, ThresholdError, Thresholds,
    Unit,
};
use ports::{CreateDeviceError, UpdateDeviceError};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Devices: list, create

#[actix_web::test]
async fn listing_devices_returns_a_bare_array_in_the_stores_order() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_list_devices()
        .withf(|tenant, _, query| is_tenant_a(tenant) && is_all(query))
        .times(1)
        .returning(|_, _, _| {
            Ok(page(vec![
                device(uuid(DEVICE_A), "Hall", office_thresholds()),
                device(uuid(DEVICE_B), "Lobby", Thresholds::default()),
            ]))
        });

    // Act
    let answer = call(mocks, get(DEVICES)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let devices = body.as_array().expect("a bare array");
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0]["id"], DEVICE_A);
    assert_eq!(devices[0]["name"], "Hall");
    assert_eq!(devices[0]["threshold_critical_upper"], 40.0);
    assert_eq!(devices[1]["name"], "Lobby");
    assert_eq!(devices[1]["created_by"], CREATOR);
    assert_eq!(devices[1]["updated_by"], EDITOR);
}

#[actix_web::test]
async fn creating_a_device_answers_201_and_passes_every_field() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_create_device()
        .withf(|tenant, _, new| {
            is_tenant_a(tenant)
                && new.spec
                    == DeviceSpec {
                        name: DeviceName::parse("Hall").expect("valid"),
                        unit: Unit::parse("°C").expect("valid"),
                        status: DeviceStatus::Connected,
                        site_id: Some(ScopeLabel::parse("site-1").expect("valid")),
                        device_type: Some(ScopeLabel::parse("thermostat").expect("valid")),
                        thresholds: office_thresholds(),
                        stale_after: None,
                        labels: domain::Labels::none(),
                    }
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_device(new)));

    // Act
    let answer = call(
        mocks,
        post(
            DEVICES,
            &json!({
                "name": "Hall",
                "unit": "°C",
                "status": "connected",
                "site_id": "site-1",
                "device_type": "thermostat",
                "threshold_critical_lower": -10,
                "threshold_warning_lower": 0,
                "threshold_warning_upper": 30,
                "threshold_critical_upper": 40,
            }),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let body = answer.json();
    assert!(body["id"]
        .as_str()
        .is_some_and(|id| id.parse::<Uuid>().is_ok()));
    assert_eq!(body["name"], "Hall");
    assert_eq!(body["unit"], "°C");
    assert_eq!(body["status"], "connected");
    assert_eq!(body["site_id"], "site-1");
    assert_eq!(body["threshold_warning_lower"], 0.0);
    assert_eq!(body["threshold_critical_lower"], -10.0);
    assert!(body["created_at"].is_string());
}

#[actix_web::test]
async fn a_device_created_with_only_a_name_is_disconnected_without_unit_or_thresholds() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_create_device()
        .withf(|_, _, new| {
            new.spec.name.as_str() == "T1"
                && new.spec.unit.as_str().is_empty()
                && new.spec.status == DeviceStatus::Disconnected
                && new.spec.site_id.is_none()
                && new.spec.device_type.is_none()
                && new.spec.thresholds == Thresholds::default()
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_device(new)));

    // Act
    let answer = call(mocks, post(DEVICES, &json!({"name": "T1"}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["unit"], "");
    assert_eq!(body["status"], "disconnected");
    assert_eq!(body["threshold_warning_upper"], Value::Null);
}

#[actix_web::test]
async fn creating_a_device_with_thresholds_out_of_order_is_refused_with_422_before_the_repository()
{
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        post(
            DEVICES,
            &json!({"name": "T1", "threshold_warning_lower": 30, "threshold_warning_upper": 10}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("threshold_"),
        "{}",
        answer.detail()
    );
    assert_eq!(
        answer.detail(),
        "threshold_warning_lower: must not be greater than threshold_warning_upper"
    );
}

#[actix_web::test]
async fn a_critical_bound_inside_the_warning_band_is_refused_with_422_naming_it() {
    // Arrange: critical_upper 20 lies below warning_upper 30.
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        post(
            DEVICES,
            &json!({"name": "T1", "threshold_warning_upper": 30, "threshold_critical_upper": 20}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("threshold_warning_upper:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn creating_a_device_with_a_taken_name_answers_400_naming_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_create_device()
        .times(1)
        .returning(|_, _, new| Err(CreateDeviceError::NameTaken(new.spec.name)));

    // Act
    let answer = call(mocks, post(DEVICES, &json!({"name": "Hall"}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"detail": "Device with name 'Hall' already exists"})
    );
}

#[actix_web::test]
async fn a_device_status_of_broken_is_refused_with_422_naming_status() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(DEVICES, &json!({"name": "T1", "status": "broken"})),
            put(
                &format!("{DEVICES}/{DEVICE_A}"),
                &json!({"status": "broken"}),
            ),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            answer.detail().starts_with("status:"),
            "{}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn a_device_name_that_is_empty_or_101_characters_long_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(DEVICES, &json!({"name": " "})),
            post(DEVICES, &json!({"name": "d".repeat(101)})),
            post(DEVICES, &json!({"unit": "°C"})),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(answer.detail().contains("name"), "{}", answer.detail());
    }
}

#[actix_web::test]
async fn a_device_unit_of_21_characters_is_refused_with_422_naming_unit() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        post(DEVICES, &json!({"name": "T1", "unit": "u".repeat(21)})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.detail().starts_with("unit:"), "{}", answer.detail());
}

// ---------------------------------------------------------------------------------------------
// Devices: get, update, delete, groups

#[actix_web::test]
async fn getting_a_device_returns_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_get_device()
        .withf(|tenant, id| is_tenant_a(tenant) && *id == uuid(DEVICE_A))
        .times(1)
        .returning(|_, id| Ok(device(id, "Hall", office_thresholds())));

    // Act
    let answer = call(mocks, get(&format!("{DEVICES}/{DEVICE_A}"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({
            "id": DEVICE_A,
            "name": "Hall",
            "unit": "°C",
            "status": "connected",
            "site_id": "site-1",
            "device_type": "thermostat",
            "threshold_warning_lower": 0.0,
            "threshold_warning_upper": 30.0,
            "threshold_critical_lower": -10.0,
            "threshold_critical_upper": 40.0,
            "stale_after_s": null,
            "labels": {},
            "state": {
                "alert_status": "normal",
                "since": null,
                "last_reading_at": null,
                "last_value": null,
                "freshness": "no_data",
                "in_maintenance": false,
            },
            "created_at": "2025-10-01T08:00:00Z",
            "updated_at": "2025-10-02T09:30:00Z",
            "created_by": CREATOR,
            "updated_by": EDITOR,
        })
    );
}

#[actix_web::test]
async fn a_device_path_that_is_no_uuid_answers_404_without_reaching_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();
    let device = format!("{DEVICES}/not-a-uuid");

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&device),
            put(&device, &json!({"name": "T2"})),
            delete(&device),
            get(&format!("{device}/groups")),
            get(&format!("{device}/readings")),
            post(&format!("{device}/readings"), &json!({"value": 1.0})),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
        assert_eq!(answer.detail(), "Device not-a-uuid not found");
    }
}

#[actix_web::test]
async fn updating_a_device_passes_only_the_given_fields_and_clears_the_nulled_ones() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_update_device()
        .withf(|tenant, _, id, changes| {
            is_tenant_a(tenant)
                && *id == uuid(DEVICE_A)
                && *changes
                    == DeviceChanges {
                        name: Some(DeviceName::parse("Hall 2").expect("valid")),
                        unit: Some(Unit::parse("").expect("valid")),
                        status: Some(DeviceStatus::Error),
                        site_id: Some(None),
                        device_type: None,
                        thresholds: [None, None, Some(Some(35.0)), Some(None)],
                        stale_after: None,
                        labels: None,
                    }
        })
        .times(1)
        .returning(|_, _, id, _| Ok(device(id, "Hall 2", Thresholds::default())));

    // Act
    let answer = call(
        mocks,
        put(
            &format!("{DEVICES}/{DEVICE_A}"),
            &json!({
                "name": "Hall 2",
                "unit": null,
                "status": "error",
                "site_id": null,
                "threshold_warning_upper": 35,
                "threshold_critical_upper": null,
            }),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["name"], "Hall 2");
}

#[actix_web::test]
async fn updating_a_device_whose_merged_thresholds_are_out_of_order_answers_422_naming_the_threshold(
) {
    // Arrange: the store merges the change with the stored bounds and finds them out of order.
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_update_device()
        .times(1)
        .returning(|_, _, _, _| {
            Err(UpdateDeviceError::Invalid(ThresholdError::OutOfOrder {
                lower: "threshold_warning_lower",
                upper: "threshold_warning_upper",
            }))
        });

    // Act
    let answer = call(
        mocks,
        put(
            &format!("{DEVICES}/{DEVICE_A}"),
            &json!({"threshold_warning_lower": 30}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("threshold_warning_lower:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn updating_a_device_name_or_status_to_null_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();
    let uri = format!("{DEVICES}/{DEVICE_A}");

    // Act
    let answers = call_all(
        mocks,
        vec![
            put(&uri, &json!({"name": null})),
            put(&uri, &json!({"status": null})),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answers[0].detail(), "name: must not be null");
    assert_eq!(answers[1].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answers[1].detail(), "status: must not be null");
}

#[actix_web::test]
async fn updating_a_device_to_a_taken_name_answers_400_naming_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_update_device()
        .times(1)
        .returning(|_, _, _, changes| {
            Err(UpdateDeviceError::NameTaken(
                changes.name.expect("a new name"),
            ))
        });

    // Act
    let answer = call(
        mocks,
        put(&format!("{DEVICES}/{DEVICE_A}"), &json!({"name": "Lobby"})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.detail(), "Device with name 'Lobby' already exists");
}

#[actix_web::test]
async fn deleting_a_device_answers_204_without_a_body() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_delete_device()
        .withf(|tenant, id| is_tenant_a(tenant) && *id == uuid(DEVICE_A))
        .times(1)
        .returning(|_, _| Ok(()));

    // Act
    let answer = call(mocks, delete(&format!("{DEVICES}/{DEVICE_A}"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.body.is_empty(), "{}", answer.text());
}

#[actix_web::test]
async fn listing_a_devices_groups_returns_them_with_their_device_counts() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_groups_of_device()
        .withf(|tenant, id| is_tenant_a(tenant) && *id == uuid(DEVICE_A))
        .times(1)
        .returning(|_, _| Ok(vec![stored_group("grp-lobby", "Lobby")]));

    // Act
    let answer = call(mocks, get(&format!("{DEVICES}/{DEVICE_A}/groups"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let groups = body.as_array().expect("a bare array");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["group_id"], "grp-lobby");
    assert_eq!(groups[0]["name"], "Lobby");
    assert_eq!(groups[0]["device_count"], 3);
    assert_eq!(groups[0]["created_by"], CREATOR);
    assert_eq!(groups[0]["updated_by"], EDITOR);
}
