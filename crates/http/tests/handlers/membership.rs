//! Customer API group membership: list, put and remove a group's devices.

use actix_web::http::StatusCode;
use domain::{ListQuery, Page, Thresholds};
use ports::MembershipError;
use serde_json::{json, Value};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Customer API: group membership

#[actix_web::test]
async fn listing_a_groups_devices_returns_its_members_by_slug() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_members()
        .withf(|tenant, key, query| {
            is_tenant_a(tenant) && is_slug(key, "grp-lobby") && *query == ListQuery::default()
        })
        .times(1)
        .returning(|_, _, _| {
            let members = vec![
                member(DEVICE_A, "Hall sensor", office_thresholds(), Some(20.0)),
                member(DEVICE_B, "Lobby sensor", Thresholds::default(), None),
            ];
            Ok(Page {
                total: members.len() as u64,
                items: members.into_iter().map(|m| m.device).collect(),
            })
        });

    // Act
    let answer = call(mocks, get(&format!("{GROUPS}/grp-lobby/devices"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["group_id"], "grp-lobby");
    assert_eq!(body["total"], 2);
    assert_eq!(
        without(&body["devices"][0], &["state", "stale_after_s"]),
        json!({
            "id": DEVICE_A,
            "name": "Hall sensor",
            "unit": "°C",
            "status": "connected",
            "site_id": "site-1",
            "device_type": "thermostat",
            "threshold_warning_lower": 0.0,
            "threshold_warning_upper": 30.0,
            "threshold_critical_lower": -10.0,
            "threshold_critical_upper": 40.0,
            "created_at": "2025-10-01T08:00:00Z",
            "updated_at": "2025-10-02T09:30:00Z",
            "created_by": CREATOR,
            "updated_by": EDITOR,
            "labels": {},
        })
    );
    assert_eq!(body["devices"][1]["id"], DEVICE_B);
    assert_eq!(body["devices"][1]["threshold_warning_upper"], Value::Null);
}

#[actix_web::test]
async fn putting_a_device_in_a_group_answers_200_with_member_true() {
    // Arrange
    let mut mocks = Mocks::new();
    let lobby = stored_group("grp-lobby", "Lobby");
    mocks
        .groups
        .expect_add_member()
        .withf(|tenant, _, key, device| {
            is_tenant_a(tenant) && is_slug(key, "grp-lobby") && *device == uuid(DEVICE_A)
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));

    // A membership write answers the group's new tag: the group is read after it.
    mocks.groups.expect_get_group_row().returning({
        let lobby = lobby.clone();
        move |_, _| Ok(lobby.clone())
    });
    // Act
    let answer = call(
        mocks,
        put_empty(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"group_id": "grp-lobby", "device_id": DEVICE_A, "member": true})
    );
    // The tag of the group as its GET answers it.
    let group = serde_json::to_vec(&http_api::api::customer_groups::DeviceGroupView::of(
        &lobby, None,
    ))
    .expect("serialisable");
    assert_eq!(
        answer
            .headers
            .get("etag")
            .map(|v| v.to_str().expect("ASCII").to_owned()),
        Some(http_api::conditional::etag_of(&group).to_string())
    );
}

#[actix_web::test]
async fn putting_an_unknown_device_in_a_group_answers_404_device_not_found() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_add_member()
        .times(1)
        .returning(|_, _, _, _| Err(MembershipError::DeviceNotFound));

    // Act
    let answer = call(
        mocks,
        put_empty(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_B}")),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Device not found"}));
}

#[actix_web::test]
async fn a_device_path_that_is_no_uuid_reaches_the_store_as_the_nil_uuid_so_the_group_is_checked_first(
) {
    // Arrange: the store still decides whether the group or the device is missing.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_add_member()
        .withf(|_, _, key, device| is_slug(key, "grp-lobby") && device.is_nil())
        .times(1)
        .returning(|_, _, _, _| Err(MembershipError::DeviceNotFound));
    mocks
        .groups
        .expect_remove_member()
        .withf(|_, _, key, device| is_slug(key, "grp-nothing") && device.is_nil())
        .times(1)
        .returning(|_, _, _, _| Err(MembershipError::GroupNotFound));

    // Act
    let answers = call_all(
        mocks,
        vec![
            put_empty(&format!("{GROUPS}/grp-lobby/devices/not-a-uuid")),
            delete(&format!("{GROUPS}/grp-nothing/devices/not-a-uuid")),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::NOT_FOUND);
    assert_eq!(answers[0].json(), json!({"detail": "Device not found"}));
    assert_eq!(answers[1].status, StatusCode::NOT_FOUND);
    assert_eq!(answers[1].json(), json!({"detail": "Group not found"}));
}

#[actix_web::test]
async fn removing_a_device_from_a_group_answers_200_with_member_false() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_remove_member()
        .withf(|tenant, _, key, device| {
            is_tenant_a(tenant) && is_slug(key, "grp-lobby") && *device == uuid(DEVICE_A)
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));

    // A membership write answers the group's new tag: the group is read after it.
    mocks
        .groups
        .expect_get_group_row()
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby")));
    // Act
    let answer = call(
        mocks,
        delete(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"group_id": "grp-lobby", "device_id": DEVICE_A, "member": false})
    );
}

#[actix_web::test]
async fn removing_a_device_that_is_not_a_member_answers_404_device_not_in_group() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_remove_member()
        .times(1)
        .returning(|_, _, _, _| Err(MembershipError::NotMember));

    // Act
    let answer = call(
        mocks,
        delete(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_B}")),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Device not in group"}));
}

#[actix_web::test]
async fn a_membership_path_whose_group_cannot_be_a_slug_answers_404_without_reaching_the_repository(
) {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{GROUPS}/a%20b/devices")),
            put_empty(&format!("{GROUPS}/a%20b/devices/{DEVICE_A}")),
            delete(&format!("{GROUPS}/a%20b/devices/{DEVICE_A}")),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.json(), json!({"detail": "Group not found"}));
    }
}
