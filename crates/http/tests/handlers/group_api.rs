//! The Group API: create, list, get, alerts, readings, update, delete, and maintenance windows
//! muting alerts.

use actix_web::http::StatusCode;
use domain::{
    Description, DeviceName, GroupChanges, GroupName, GroupSlug, MaintenanceWindow, ReadingQuery,
    ScopeLabel, Thresholds, Unit, WindowDefinition,
};
use ports::{CreateGroupError, GroupDetail, GroupReading, Member, UpdateGroupError};
use serde_json::{json, Value};
use time::macros::datetime;
use uuid::Uuid;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Group API: create

#[actix_web::test]
async fn creating_an_api_group_answers_201_with_its_devices_and_alert_summary() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|tenant, _, new| {
            is_tenant_a(tenant)
                && is_generated_slug(new.group_id.as_str(), "grp-")
                && new.name.as_str() == "Building A"
                && new.description.as_ref().map(Description::as_str) == Some("All sensors")
                && new.members == [uuid(DEVICE_A), uuid(DEVICE_B)]
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_group(new)));

    // Act
    let answer = call(
        mocks,
        post(
            API_GROUPS,
            &json!({
                "name": "Building A",
                "description": "All sensors",
                "device_ids": [DEVICE_A, DEVICE_B],
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
    assert!(is_generated_slug(
        body["group_id"].as_str().expect("group_id"),
        "grp-"
    ));
    assert_eq!(body["name"], "Building A");
    assert_eq!(body["description"], "All sensors");
    assert_eq!(
        without(&body["devices"], &["state"]),
        json!([
            {"id": DEVICE_A, "name": "Sensor 1", "unit": "°C", "status": "connected",
             "alert_status": "normal", "in_maintenance": false},
            {"id": DEVICE_B, "name": "Sensor 2", "unit": "°C", "status": "connected",
             "alert_status": "normal", "in_maintenance": false},
        ])
    );
    assert_eq!(
        statuses(&body["alert_summary"]),
        json!({"normal": 2, "warning": 0, "critical": 0, "in_maintenance": 0, "suppressed": 0})
    );
    assert!(body["created_at"].is_string());
    assert!(body["updated_at"].is_string());
}

#[actix_web::test]
async fn creating_an_api_group_without_device_ids_creates_it_empty() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|_, _, new| new.members.is_empty() && new.description.is_none())
        .times(1)
        .returning(|_, _, new| Ok(saved_group(new)));

    // Act
    let answer = call(mocks, post(API_GROUPS, &json!({"name": "Building A"}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["devices"], json!([]));
    assert_eq!(body["description"], Value::Null);
    assert_eq!(
        statuses(&body["alert_summary"]),
        json!({"normal": 0, "warning": 0, "critical": 0, "in_maintenance": 0, "suppressed": 0})
    );
}

#[actix_web::test]
async fn duplicate_device_ids_reach_the_repository_once_in_first_seen_order() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|_, _, new| new.members == [uuid(DEVICE_B), uuid(DEVICE_A)])
        .times(1)
        .returning(|_, _, new| Ok(saved_group(new)));

    // Act: B, A, B again, and A again spelled in upper case.
    let answer = call(
        mocks,
        post(
            API_GROUPS,
            &json!({
                "name": "Building A",
                "device_ids": [DEVICE_B, DEVICE_A, DEVICE_B, DEVICE_A.to_uppercase()],
            }),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.json()["devices"].as_array().map(Vec::len), Some(2));
}

#[actix_web::test]
async fn creating_an_api_group_with_a_taken_name_answers_400_group_001() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, _, new| Err(CreateGroupError::NameTaken(new.name)));

    // Act
    let answer = call(mocks, post(API_GROUPS, &json!({"name": "X"}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"detail": "Group with name 'X' already exists", "code": "GROUP_001"})
    );
}

#[actix_web::test]
async fn creating_an_api_group_with_an_unknown_device_answers_400_group_002_naming_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, _, _| Err(CreateGroupError::DeviceNotFound(uuid(DEVICE_B))));

    // Act
    let answer = call(
        mocks,
        post(
            API_GROUPS,
            &json!({"name": "Building A", "device_ids": [DEVICE_A, DEVICE_B]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"detail": format!("Device {DEVICE_B} not found"), "code": "GROUP_002"})
    );
}

#[actix_web::test]
async fn a_malformed_device_id_is_refused_with_400_group_003_before_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(
                API_GROUPS,
                &json!({"name": "Building A", "device_ids": [DEVICE_A, "sensor-7"]}),
            ),
            put(
                &format!("{API_GROUPS}/{GROUP_ID}"),
                &json!({"device_ids": ["sensor-7"]}),
            ),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
        assert_eq!(answer.json()["code"], "GROUP_003");
        assert!(answer.detail().contains("sensor-7"), "{}", answer.detail());
    }
}

#[actix_web::test]
async fn an_api_group_name_of_100_characters_and_a_description_of_500_are_accepted() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|_, _, new| {
            new.name.char_count() == 100
                && new
                    .description
                    .as_ref()
                    .is_some_and(|d| d.as_str().chars().count() == 500)
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_group(new)));

    // Act
    let answer = call(
        mocks,
        post(
            API_GROUPS,
            &json!({"name": "n".repeat(100), "description": "d".repeat(500)}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
}

#[actix_web::test]
async fn an_api_group_name_of_101_characters_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(API_GROUPS, &json!({"name": "n".repeat(101)})),
            put(
                &format!("{API_GROUPS}/{GROUP_ID}"),
                &json!({"name": "n".repeat(101)}),
            ),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(answer.detail().starts_with("name:"), "{}", answer.detail());
        assert!(answer.detail().contains("100"), "{}", answer.detail());
    }
}

#[actix_web::test]
async fn an_api_group_description_of_501_characters_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(
                API_GROUPS,
                &json!({"name": "Building A", "description": "d".repeat(501)}),
            ),
            put(
                &format!("{API_GROUPS}/{GROUP_ID}"),
                &json!({"description": "d".repeat(501)}),
            ),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            answer.detail().starts_with("description:"),
            "{}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn an_empty_or_missing_api_group_name_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(API_GROUPS, &json!({"name": ""})),
            post(API_GROUPS, &json!({"device_ids": [DEVICE_A]})),
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
async fn a_generated_api_group_slug_that_is_taken_is_retried_and_gives_up_with_an_opaque_500() {
    // Arrange: two creates; the first succeeds on its second slug, the second never does.
    let mut mocks = Mocks::new();
    let mut sequence = mockall::Sequence::new();
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _, new| Err(CreateGroupError::GroupIdTaken(new.group_id)));
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _, new| Ok(saved_group(new)));
    mocks
        .groups
        .expect_create_group()
        .times(3)
        .in_sequence(&mut sequence)
        .returning(|_, _, new| Err(CreateGroupError::GroupIdTaken(new.group_id)));

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(API_GROUPS, &json!({"name": "Building A"})),
            post(API_GROUPS, &json!({"name": "Building B"})),
        ],
    )
    .await;

    // Assert
    assert_eq!(
        answers[0].status,
        StatusCode::CREATED,
        "{}",
        answers[0].text()
    );
    assert_eq!(answers[1].status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!answers[1].text().contains("grp-"), "{}", answers[1].text());
}

// ---------------------------------------------------------------------------------------------
// Group API: list, get, alerts, readings

#[actix_web::test]
async fn listing_api_groups_returns_a_bare_array_with_device_counts() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_groups()
        .withf(|tenant, query| is_tenant_a(tenant) && is_all(query))
        .times(1)
        .returning(|_, _| {
            Ok(page(vec![
                stored_group("grp-hall", "Hall"),
                stored_group("grp-lobby", "Lobby"),
            ]))
        });

    // Act
    let answer = call(mocks, get(API_GROUPS)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let groups = body.as_array().expect("a bare array");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["group_id"], "grp-hall");
    assert_eq!(groups[1]["name"], "Lobby");
    assert_eq!(groups[1]["device_count"], 3);
    assert_eq!(groups[1]["description"], "Sensors in the lobby");
    assert!(groups[1]["id"].is_string());
    assert_eq!(groups[1]["created_by"], CREATOR);
    assert_eq!(groups[1]["updated_by"], EDITOR);
}

/// A normal, a warning and a critical member, and one without any reading.
fn four_members() -> Vec<Member> {
    vec![
        member(DEVICE_A, "A normal", office_thresholds(), Some(20.0)),
        member(DEVICE_B, "B warning", office_thresholds(), Some(35.0)),
        member(DEVICE_C, "C critical", office_thresholds(), Some(-20.0)),
        member(DEVICE_D, "D silent", office_thresholds(), None),
    ]
}

#[actix_web::test]
async fn getting_an_api_group_returns_its_devices_and_their_alert_summary() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_get_group()
        .withf(|tenant, key| is_tenant_a(tenant) && is_id(key, GROUP_ID))
        .times(1)
        .returning(|_, _| Ok(api_group(four_members())));

    // Act
    let answer = call(mocks, get(&format!("{API_GROUPS}/{GROUP_ID}"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["id"], GROUP_ID);
    assert_eq!(body["group_id"], "grp-0000abcd");
    assert_eq!(body["name"], "Building A");
    assert_eq!(body["created_by"], CREATOR);
    assert_eq!(body["updated_by"], EDITOR);
    assert_eq!(
        without(&body["devices"], &["state"]),
        json!([
            {"id": DEVICE_A, "name": "A normal", "unit": "°C", "status": "connected",
             "alert_status": "normal", "in_maintenance": false},
            {"id": DEVICE_B, "name": "B warning", "unit": "°C", "status": "connected",
             "alert_status": "warning", "in_maintenance": false},
            {"id": DEVICE_C, "name": "C critical", "unit": "°C", "status": "connected",
             "alert_status": "critical", "in_maintenance": false},
            {"id": DEVICE_D, "name": "D silent", "unit": "°C", "status": "connected",
             "alert_status": "normal", "in_maintenance": false},
        ])
    );
    assert_eq!(
        statuses(&body["alert_summary"]),
        json!({"normal": 2, "warning": 1, "critical": 1, "in_maintenance": 0, "suppressed": 0})
    );
}

#[actix_web::test]
async fn a_groups_alerts_are_its_alert_summary_object() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_get_group()
        .withf(|tenant, key| is_tenant_a(tenant) && is_id(key, GROUP_ID))
        .times(1)
        .returning(|_, _| Ok(api_group(four_members())));

    // Act
    let answer = call(mocks, get(&format!("{API_GROUPS}/{GROUP_ID}/alerts"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({
            "normal": 2, "warning": 1, "critical": 1, "in_maintenance": 0, "suppressed": 0,
            "freshness": {"fresh": 3, "stale": 0, "no_data": 1},
            "open_alerts": 0, "acknowledged": 0,
        })
    );
}

#[actix_web::test]
async fn alert_bounds_are_strict_and_unset_bounds_are_skipped() {
    // Arrange: readings exactly on a bound stay on the calmer side.
    let only_warning_upper = Thresholds::new(None, None, Some(10.0), None).expect("ordered");
    let members = vec![
        member(
            DEVICE_A,
            "A on warning upper",
            office_thresholds(),
            Some(30.0),
        ),
        member(
            DEVICE_B,
            "B on critical upper",
            office_thresholds(),
            Some(40.0),
        ),
        member(DEVICE_C, "C no bounds", Thresholds::default(), Some(1e9)),
        member(
            DEVICE_D,
            "D low, upper only",
            only_warning_upper,
            Some(-1e9),
        ),
    ];
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_get_group()
        .times(1)
        .return_once(move |_, _| Ok(api_group(members)));

    // Act
    let answer = call(mocks, get(&format!("{API_GROUPS}/{GROUP_ID}/alerts"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        statuses(&answer.json()),
        json!({"normal": 3, "warning": 1, "critical": 0, "in_maintenance": 0, "suppressed": 0})
    );
}

#[actix_web::test]
async fn an_api_group_path_that_is_no_uuid_answers_404_group_005_without_reaching_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();
    let group = format!("{API_GROUPS}/grp-lobby");

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&group),
            put(&group, &json!({"name": "Building B"})),
            delete(&group),
            get(&format!("{group}/readings")),
            get(&format!("{group}/alerts")),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
        assert_eq!(
            answer.json(),
            json!({
                "detail": "Group grp-lobby not found; the Group API takes group UUIDs \
                           (slugs are for /customer/device-groups)",
                "code": "GROUP_005"
            })
        );
    }
}

#[actix_web::test]
async fn reading_a_groups_readings_returns_them_with_device_names_and_units() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_group_readings()
        .withf(|tenant, key, query: &ReadingQuery| {
            is_tenant_a(tenant)
                && is_id(key, GROUP_ID)
                // One more than the page: whether it comes back tells `has_more`.
                && query.limit() == 51
                && is_hours_ago(query.since(), 6)
        })
        .times(1)
        .returning(|_, _, _| {
            Ok(vec![
                GroupReading {
                    device_id: uuid(DEVICE_B),
                    device_name: DeviceName::parse("Lobby").expect("valid"),
                    unit: Unit::parse("kPa").expect("valid"),
                    timestamp: at(datetime!(2025-10-20 11:00 UTC)),
                    value: 101.3,
                },
                GroupReading {
                    device_id: uuid(DEVICE_A),
                    device_name: DeviceName::parse("Hall").expect("valid"),
                    unit: Unit::parse("°C").expect("valid"),
                    timestamp: at(datetime!(2025-10-20 10:00 UTC)),
                    value: 20.5,
                },
            ])
        });

    // Act
    let answer = call(
        mocks,
        get(&format!(
            "{API_GROUPS}/{GROUP_ID}/readings?hours=6&limit=50"
        )),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({
            "group_id": GROUP_ID,
            "total": 2,
            "readings": [
                {"device_id": DEVICE_B, "device_name": "Lobby", "timestamp": "2025-10-20T11:00:00Z", "value": 101.3, "unit": "kPa"},
                {"device_id": DEVICE_A, "device_name": "Hall", "timestamp": "2025-10-20T10:00:00Z", "value": 20.5, "unit": "°C"},
            ],
            "has_more": false,
            "next_cursor": null,
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Group API: update, delete

#[actix_web::test]
async fn updating_an_api_group_passes_device_ids_as_the_new_member_list_without_repeats() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .withf(|tenant, _, key, changes| {
            is_tenant_a(tenant)
                && is_id(key, GROUP_ID)
                && *changes
                    == GroupChanges {
                        filter: None,
                        name: Some(GroupName::parse("Building B").expect("valid")),
                        description: None,
                        members: Some(vec![uuid(DEVICE_B), uuid(DEVICE_A)]),
                        parent_id: None,
                    }
        })
        .times(1)
        .returning(|_, _, _, _| {
            Ok(api_group(vec![
                member(DEVICE_A, "A", office_thresholds(), Some(50.0)),
                member(DEVICE_B, "B", office_thresholds(), None),
            ]))
        });

    // Act
    let answer = call(
        mocks,
        put(
            &format!("{API_GROUPS}/{GROUP_ID}"),
            &json!({"name": "Building B", "device_ids": [DEVICE_B, DEVICE_A, DEVICE_B]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["id"], GROUP_ID);
    assert_eq!(body["devices"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        statuses(&body["alert_summary"]),
        json!({"normal": 1, "warning": 0, "critical": 1, "in_maintenance": 0, "suppressed": 0})
    );
}

#[actix_web::test]
async fn updating_an_api_group_with_an_empty_device_list_empties_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .withf(|_, _, _, changes| {
            *changes
                == GroupChanges {
                    members: Some(vec![]),
                    ..GroupChanges::default()
                }
        })
        .times(1)
        .returning(|_, _, _, _| Ok(api_group(vec![])));

    // Act
    let answer = call(
        mocks,
        put(
            &format!("{API_GROUPS}/{GROUP_ID}"),
            &json!({"device_ids": []}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["devices"], json!([]));
}

#[actix_web::test]
async fn updating_an_api_group_description_to_null_clears_it_and_keeps_the_members() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .withf(|_, _, key, changes| {
            is_id(key, GROUP_ID)
                && *changes
                    == GroupChanges {
                        filter: None,
                        name: None,
                        description: Some(None),
                        members: None,
                        parent_id: None,
                    }
        })
        .times(1)
        .returning(|_, _, _, _| {
            let mut detail = api_group(vec![]);
            detail.group.description = None;
            Ok(detail)
        });

    // Act
    let answer = call(
        mocks,
        put(
            &format!("{API_GROUPS}/{GROUP_ID}"),
            &json!({"description": null}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["description"], Value::Null);
}

#[actix_web::test]
async fn updating_an_api_group_name_or_device_ids_to_null_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();
    let group = format!("{API_GROUPS}/{GROUP_ID}");

    // Act
    let answers = call_all(
        mocks,
        vec![
            put(&group, &json!({"name": null})),
            put(&group, &json!({"device_ids": null})),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answers[0].detail(), "name: must not be null");
    assert_eq!(answers[1].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answers[1].detail(), "device_ids: must not be null");
}

#[actix_web::test]
async fn updating_an_api_group_to_a_taken_name_answers_400_group_001() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(|_, _, _, changes| {
            Err(UpdateGroupError::NameTaken(
                changes.name.expect("a new name"),
            ))
        });

    // Act
    let answer = call(
        mocks,
        put(
            &format!("{API_GROUPS}/{GROUP_ID}"),
            &json!({"name": "Building B"}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"detail": "Group with name 'Building B' already exists", "code": "GROUP_001"})
    );
}

#[actix_web::test]
async fn updating_an_api_group_with_an_unknown_device_answers_400_group_002() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(|_, _, _, _| Err(UpdateGroupError::DeviceNotFound(uuid(DEVICE_C))));

    // Act
    let answer = call(
        mocks,
        put(
            &format!("{API_GROUPS}/{GROUP_ID}"),
            &json!({"device_ids": [DEVICE_C]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"detail": format!("Device {DEVICE_C} not found"), "code": "GROUP_002"})
    );
}

#[actix_web::test]
async fn deleting_an_api_group_answers_204_without_a_body() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_delete_group()
        .withf(|tenant, key| is_tenant_a(tenant) && is_id(key, GROUP_ID))
        .times(1)
        .returning(|_, _| Ok(()));

    // Act
    let answer = call(mocks, delete(&format!("{API_GROUPS}/{GROUP_ID}"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.body.is_empty(), "{}", answer.text());
}

// ---------------------------------------------------------------------------------------------
// Group API: the name limit

#[actix_web::test]
async fn an_api_group_name_of_129_characters_is_refused_citing_the_100_character_limit() {
    // Arrange: GroupName::parse refuses first, with its own bound of 128.
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(mocks, post(API_GROUPS, &json!({"name": "n".repeat(129)}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.detail(),
        "name: must be at most 100 characters long, got 129"
    );
}

// ---------------------------------------------------------------------------------------------
// Group API: maintenance windows mute alerts

/// `m` moved to `site`, or to no site.
fn at_site(mut m: Member, site: Option<&str>) -> Member {
    m.device.spec.site_id = site.map(|s| ScopeLabel::parse(s).expect("valid label"));
    m
}

/// `m` in the window-named groups `slugs`.
fn in_window_groups(mut m: Member, slugs: &[&str]) -> Member {
    m.window_groups = slugs
        .iter()
        .map(|s| GroupSlug::parse(s).expect("valid slug"))
        .collect();
    m
}

/// `definition` narrowed to `site_ids` and `group_ids`.
fn scoped(
    definition: WindowDefinition,
    site_ids: Option<&[&str]>,
    group_ids: Option<&[&str]>,
) -> WindowDefinition {
    WindowDefinition {
        site_ids: site_ids.map(|ids| {
            ids.iter()
                .map(|s| ScopeLabel::parse(s).expect("valid label"))
                .collect()
        }),
        group_ids: group_ids.map(|ids| {
            ids.iter()
                .map(|s| GroupSlug::parse(s).expect("valid slug"))
                .collect()
        }),
        ..definition
    }
}

/// [`api_group`] with `windows` as the tenant's windows.
fn api_group_with_windows(members: Vec<Member>, windows: Vec<MaintenanceWindow>) -> GroupDetail {
    GroupDetail {
        windows,
        ..api_group(members)
    }
}

/// The `(id, alert_status, in_maintenance)` of each device of a Group API group answer.
fn device_flags(body: &Value) -> Vec<(String, String, bool)> {
    body["devices"]
        .as_array()
        .expect("a devices array")
        .iter()
        .map(|d| {
            // The state object says the same as the two flags beside it.
            assert_eq!(d["state"]["alert_status"], d["alert_status"], "{d}");
            assert_eq!(d["state"]["in_maintenance"], d["in_maintenance"], "{d}");
            (
                d["id"].as_str().expect("id").to_owned(),
                d["alert_status"].as_str().expect("alert_status").to_owned(),
                d["in_maintenance"].as_bool().expect("in_maintenance"),
            )
        })
        .collect()
}

fn flags(expected: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
    expected
        .iter()
        .map(|(id, status, muted)| ((*id).to_owned(), (*status).to_owned(), *muted))
        .collect()
}

/// Asks for the group and for its alerts, with the store answering `detail` both times.
async fn group_and_alerts(detail: GroupDetail) -> (Value, Value) {
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_get_group()
        .withf(|tenant, key| is_tenant_a(tenant) && is_id(key, GROUP_ID))
        .times(2)
        .returning(move |_, _| Ok(detail.clone()));
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{API_GROUPS}/{GROUP_ID}")),
            get(&format!("{API_GROUPS}/{GROUP_ID}/alerts")),
        ],
    )
    .await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    (answers[0].json(), answers[1].json())
}

#[actix_web::test]
async fn an_active_window_mutes_the_members_at_its_sites_and_counts_them_apart() {
    // Arrange: one window over site-1; a critical and a normal member there, a warning one
    // at site-2.
    let members = vec![
        member(DEVICE_A, "A critical", office_thresholds(), Some(-20.0)),
        at_site(
            member(DEVICE_B, "B warning", office_thresholds(), Some(35.0)),
            Some("site-2"),
        ),
        member(DEVICE_C, "C normal", office_thresholds(), Some(20.0)),
    ];
    let window = window_of(
        "mw-site-1",
        scoped(always_active(), Some(&["site-1"]), None),
    );

    // Act
    let (group, alerts) = group_and_alerts(api_group_with_windows(members, vec![window])).await;

    // Assert: statuses are unchanged; maintenance is counted apart.
    let summary = json!({
        "normal": 1, "warning": 1, "critical": 1, "in_maintenance": 2, "suppressed": 1,
    });
    assert_eq!(statuses(&group["alert_summary"]), summary);
    assert_eq!(statuses(&alerts), summary);
    assert_eq!(
        device_flags(&group),
        flags(&[
            (DEVICE_A, "critical", true),
            (DEVICE_B, "warning", false),
            (DEVICE_C, "normal", true),
        ])
    );
}

#[actix_web::test]
async fn a_window_narrowed_by_group_ids_mutes_only_members_of_those_groups() {
    // Arrange
    let members = vec![
        in_window_groups(
            member(DEVICE_A, "A critical", office_thresholds(), Some(-20.0)),
            &["grp-night"],
        ),
        in_window_groups(
            member(DEVICE_B, "B critical", office_thresholds(), Some(50.0)),
            &["grp-day"],
        ),
        member(DEVICE_C, "C warning", office_thresholds(), Some(-5.0)),
        in_window_groups(
            member(DEVICE_D, "D normal", office_thresholds(), Some(20.0)),
            &["grp-day", "grp-night"],
        ),
    ];
    let window = window_of(
        "mw-night",
        scoped(always_active(), None, Some(&["grp-night", "grp-other"])),
    );

    // Act
    let (group, alerts) = group_and_alerts(api_group_with_windows(members, vec![window])).await;

    // Assert
    let summary = json!({
        "normal": 1, "warning": 1, "critical": 2, "in_maintenance": 2, "suppressed": 1,
    });
    assert_eq!(statuses(&group["alert_summary"]), summary);
    assert_eq!(statuses(&alerts), summary);
    assert_eq!(
        device_flags(&group),
        flags(&[
            (DEVICE_A, "critical", true),
            (DEVICE_B, "critical", false),
            (DEVICE_C, "warning", false),
            (DEVICE_D, "normal", true),
        ])
    );
}

#[actix_web::test]
async fn a_window_narrowed_by_site_and_group_mutes_only_members_matching_both() {
    // Arrange
    let members = vec![
        in_window_groups(
            member(DEVICE_A, "A site-1 night", office_thresholds(), Some(50.0)),
            &["grp-night"],
        ),
        in_window_groups(
            at_site(
                member(DEVICE_B, "B site-2 night", office_thresholds(), Some(50.0)),
                Some("site-2"),
            ),
            &["grp-night"],
        ),
        member(DEVICE_C, "C site-1", office_thresholds(), Some(50.0)),
    ];
    let window = window_of(
        "mw-both",
        scoped(always_active(), Some(&["site-1"]), Some(&["grp-night"])),
    );

    // Act
    let (group, alerts) = group_and_alerts(api_group_with_windows(members, vec![window])).await;

    // Assert
    assert_eq!(
        statuses(&alerts),
        json!({"normal": 0, "warning": 0, "critical": 3, "in_maintenance": 1, "suppressed": 1})
    );
    assert_eq!(
        device_flags(&group),
        flags(&[
            (DEVICE_A, "critical", true),
            (DEVICE_B, "critical", false),
            (DEVICE_C, "critical", false),
        ])
    );
}

#[actix_web::test]
async fn a_site_list_never_covers_a_device_without_a_site_but_an_unscoped_window_does() {
    // Arrange
    let siteless = || {
        vec![at_site(
            member(DEVICE_A, "A nowhere", office_thresholds(), Some(35.0)),
            None,
        )]
    };
    let by_site = window_of(
        "mw-site-1",
        scoped(always_active(), Some(&["site-1"]), None),
    );
    let everywhere = window_of("mw-everywhere", always_active());

    // Act
    let (_, outside) = group_and_alerts(api_group_with_windows(siteless(), vec![by_site])).await;
    let (_, covered) = group_and_alerts(api_group_with_windows(siteless(), vec![everywhere])).await;

    // Assert
    assert_eq!(
        statuses(&outside),
        json!({"normal": 0, "warning": 1, "critical": 0, "in_maintenance": 0, "suppressed": 0})
    );
    assert_eq!(
        statuses(&covered),
        json!({"normal": 0, "warning": 1, "critical": 0, "in_maintenance": 1, "suppressed": 1})
    );
}

#[actix_web::test]
async fn disabled_ended_future_or_off_slot_windows_mute_nothing() {
    // Arrange: every window covers every member, but none is active now.
    let members = vec![
        member(DEVICE_A, "A critical", office_thresholds(), Some(-20.0)),
        member(DEVICE_B, "B warning", office_thresholds(), Some(35.0)),
        member(DEVICE_C, "C normal", office_thresholds(), Some(20.0)),
    ];
    let windows = vec![
        window_of("mw-disabled", disabled_window()),
        window_of("mw-future", future_window()),
        window_of("mw-expired", expired_window()),
        window_of("mw-elsewhere", recurring_since_2020(slot_elsewhere())),
    ];

    // Act
    let (group, alerts) = group_and_alerts(api_group_with_windows(members, windows)).await;

    // Assert
    let summary = json!({
        "normal": 1, "warning": 1, "critical": 1, "in_maintenance": 0, "suppressed": 0,
    });
    assert_eq!(statuses(&group["alert_summary"]), summary);
    assert_eq!(statuses(&alerts), summary);
    assert_eq!(
        device_flags(&group),
        flags(&[
            (DEVICE_A, "critical", false),
            (DEVICE_B, "warning", false),
            (DEVICE_C, "normal", false),
        ])
    );
}

#[actix_web::test]
async fn a_disabled_window_mutes_nothing_even_while_an_all_day_slot_covers_now() {
    // Arrange
    let members = vec![member(
        DEVICE_A,
        "A critical",
        office_thresholds(),
        Some(-20.0),
    )];
    let windows = vec![window_of(
        "mw-off",
        WindowDefinition {
            enabled: false,
            ..recurring_since_2020(all_day())
        },
    )];

    // Act
    let (group, _) = group_and_alerts(api_group_with_windows(members, windows)).await;

    // Assert
    assert_eq!(
        device_flags(&group),
        flags(&[(DEVICE_A, "critical", false)])
    );
    assert_eq!(group["alert_summary"]["suppressed"], 0);
}

#[actix_web::test]
async fn an_active_recurring_slot_mutes_like_a_plain_window() {
    // Arrange
    let members = vec![member(
        DEVICE_A,
        "A warning",
        office_thresholds(),
        Some(35.0),
    )];
    let windows = vec![window_of("mw-all-day", recurring_since_2020(all_day()))];

    // Act
    let (group, alerts) = group_and_alerts(api_group_with_windows(members, windows)).await;

    // Assert
    assert_eq!(device_flags(&group), flags(&[(DEVICE_A, "warning", true)]));
    assert_eq!(
        statuses(&alerts),
        json!({"normal": 0, "warning": 1, "critical": 0, "in_maintenance": 1, "suppressed": 1})
    );
}

#[actix_web::test]
async fn creating_and_updating_an_api_group_answer_with_maintenance_applied() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, _, new| {
            let mut detail = saved_group(new);
            detail.windows = vec![window_of("mw-active", always_active())];
            Ok(detail)
        });
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(|_, _, _, _| {
            Ok(api_group_with_windows(
                vec![member(
                    DEVICE_A,
                    "A critical",
                    office_thresholds(),
                    Some(-20.0),
                )],
                vec![window_of("mw-active", always_active())],
            ))
        });

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(
                API_GROUPS,
                &json!({"name": "Building A", "device_ids": [DEVICE_A]}),
            ),
            put(
                &format!("{API_GROUPS}/{GROUP_ID}"),
                &json!({"name": "Building B"}),
            ),
        ],
    )
    .await;

    // Assert
    assert_eq!(
        answers[0].status,
        StatusCode::CREATED,
        "{}",
        answers[0].text()
    );
    let created = answers[0].json();
    assert_eq!(device_flags(&created), flags(&[(DEVICE_A, "normal", true)]));
    assert_eq!(
        statuses(&created["alert_summary"]),
        json!({"normal": 1, "warning": 0, "critical": 0, "in_maintenance": 1, "suppressed": 0})
    );
    assert_eq!(answers[1].status, StatusCode::OK, "{}", answers[1].text());
    assert_eq!(
        statuses(&answers[1].json()["alert_summary"]),
        json!({"normal": 0, "warning": 0, "critical": 1, "in_maintenance": 1, "suppressed": 1})
    );
}
