//! Customer API device groups: list, get, create, update, delete, and the input refused on the way.

use std::sync::{Arc, Mutex};

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::test;
use actix_web::App;
use domain::{Description, GroupChanges, GroupName};
use ports::{CreateGroupError, UpdateGroupError};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Device groups: list, get

#[actix_web::test]
async fn listing_groups_returns_the_tenants_groups_and_their_total() {
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
    let answer = call(mocks, get(GROUPS)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["total"], 2);
    assert_eq!(body["groups"][0]["group_id"], "grp-hall");
    assert_eq!(body["groups"][1]["name"], "Lobby");
    assert_eq!(body["groups"][1]["member_count"], 3);
    assert_eq!(body["groups"][1]["description"], "Sensors in the lobby");
    assert_eq!(body["groups"][1]["created_by"], CREATOR);
    assert_eq!(body["groups"][1]["updated_by"], EDITOR);
}

#[actix_web::test]
async fn getting_a_group_returns_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_get_group_row()
        .withf(|tenant, group_id| is_tenant_a(tenant) && is_slug(group_id, "grp-lobby"))
        .times(1)
        .returning(|_, _| Ok(stored_detail("grp-lobby", "Lobby").group));

    // Act
    let answer = call(mocks, get("/customer/device-groups/grp-lobby")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["group_id"], "grp-lobby");
    assert_eq!(body["name"], "Lobby");
    assert!(body["id"]
        .as_str()
        .is_some_and(|id| id.parse::<Uuid>().is_ok()));
    assert!(body["created_at"].is_string());
    assert!(body["updated_at"].is_string());
    assert_eq!(body["created_by"], CREATOR);
    assert_eq!(body["updated_by"], EDITOR);
}

#[actix_web::test]
async fn a_group_path_that_cannot_be_a_slug_answers_404_without_reaching_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            get("/customer/device-groups/a%20b"),
            delete("/customer/device-groups/a%20b"),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.detail(), "Group not found");
    }
}

// ---------------------------------------------------------------------------------------------
// Device groups: create

#[actix_web::test]
async fn creating_a_group_without_group_id_generates_a_grp_slug() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|tenant, _, new| {
            is_tenant_a(tenant)
                && is_generated_slug(new.group_id.as_str(), "grp-")
                && new.name.as_str() == "Lobby"
                && new.description.is_none()
                && new.members.is_empty()
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_group(new)));

    // Act
    let answer = call(mocks, post(GROUPS, &json!({"name": "Lobby"}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let group_id = body["group_id"].as_str().expect("group_id");
    assert!(is_generated_slug(group_id, "grp-"), "{group_id}");
    assert_eq!(body["name"], "Lobby");
    assert_eq!(body["description"], Value::Null);
    assert_eq!(body["member_count"], 0);
}

#[actix_web::test]
async fn creating_a_group_with_an_empty_group_id_generates_a_grp_slug() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|_, _, new| is_generated_slug(new.group_id.as_str(), "grp-"))
        .times(1)
        .returning(|_, _, new| Ok(saved_group(new)));

    // Act
    let answer = call(
        mocks,
        post(GROUPS, &json!({"group_id": "", "name": "Lobby"})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(is_generated_slug(
        answer.json()["group_id"].as_str().expect("group_id"),
        "grp-"
    ));
}

#[actix_web::test]
async fn creating_a_group_with_a_group_id_passes_it_through() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|tenant, _, new| {
            is_tenant_a(tenant)
                && new.group_id.as_str() == "lobby-sensors"
                && new.name.as_str() == "Lobby"
                && new.description.as_ref().map(Description::as_str) == Some("Ground floor")
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_group(new)));

    // Act
    let answer = call(
        mocks,
        post(
            GROUPS,
            &json!({"group_id": "lobby-sensors", "name": "Lobby", "description": "Ground floor"}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["group_id"], "lobby-sensors");
    assert_eq!(body["description"], "Ground floor");
}

#[actix_web::test]
async fn creating_a_group_with_a_taken_group_id_answers_409_without_retrying() {
    // Arrange: a client-chosen id is never replaced, so there is exactly one attempt.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, _, new| Err(CreateGroupError::GroupIdTaken(new.group_id)));

    // Act
    let answer = call(
        mocks,
        post(GROUPS, &json!({"group_id": "grp-lobby", "name": "Lobby"})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.json(), json!({"detail": "Group ID already exists"}));
}

#[actix_web::test]
async fn creating_a_group_with_a_taken_name_answers_409_naming_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, _, new| Err(CreateGroupError::NameTaken(new.name)));

    // Act
    let answer = call(mocks, post(GROUPS, &json!({"name": "X"}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.detail(), "Group with name 'X' already exists");
}

#[actix_web::test]
async fn a_generated_group_id_that_is_taken_is_retried_with_a_new_slug() {
    // Arrange: the first generated slug is taken, the second is free.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut mocks = Mocks::new();
    let mut sequence = mockall::Sequence::new();
    let first = Arc::clone(&seen);
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(move |_, _, new| {
            first.lock().unwrap().push(new.group_id.as_str().to_owned());
            Err(CreateGroupError::GroupIdTaken(new.group_id))
        });
    let second = Arc::clone(&seen);
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(move |_, _, new| {
            second
                .lock()
                .unwrap()
                .push(new.group_id.as_str().to_owned());
            Ok(saved_group(new))
        });

    // Act
    let answer = call(mocks, post(GROUPS, &json!({"name": "Lobby"}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter().all(|s| is_generated_slug(s, "grp-")),
        "{seen:?}"
    );
    assert_ne!(seen[0], seen[1], "the retry must use a fresh slug");
    assert_eq!(answer.json()["group_id"], seen[1].as_str());
}

#[actix_web::test]
async fn a_generated_group_id_that_keeps_colliding_gives_up_with_409_after_three_attempts() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .times(3)
        .returning(|_, _, new| Err(CreateGroupError::GroupIdTaken(new.group_id)));

    // Act
    let answer = call(mocks, post(GROUPS, &json!({"name": "Lobby"}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.detail(), "Group ID already exists");
}

#[actix_web::test]
async fn a_group_name_of_128_characters_is_accepted() {
    // Arrange
    let name = "n".repeat(128);
    let expected = name.clone();
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(move |_, _, new| new.name.as_str() == expected)
        .times(1)
        .returning(|_, _, new| Ok(saved_group(new)));

    // Act
    let answer = call(mocks, post(GROUPS, &json!({ "name": name }))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

// ---------------------------------------------------------------------------------------------
// Device groups: invalid input never reaches the repository

#[actix_web::test]
async fn an_empty_group_name_is_refused_with_422_before_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(mocks, post(GROUPS, &json!({"name": ""}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.detail().starts_with("name:"), "{}", answer.detail());
}

#[actix_web::test]
async fn a_group_name_of_129_characters_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(mocks, post(GROUPS, &json!({"name": "n".repeat(129)}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.detail().starts_with("name:"), "{}", answer.detail());
    assert!(answer.detail().contains("128"), "{}", answer.detail());
}

#[actix_web::test]
async fn a_missing_group_name_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(mocks, post(GROUPS, &json!({"group_id": "grp-lobby"}))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.detail().contains("name"), "{}", answer.detail());
}

#[actix_web::test]
async fn an_unknown_field_in_a_group_body_is_refused_with_422_naming_it() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        post(GROUPS, &json!({"name": "Lobby", "colour": "red"})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("colour:"),
        "{}",
        answer.detail()
    );
    assert!(
        answer.detail().contains("unknown field"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn malformed_json_is_refused_with_422_naming_the_body() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(mocks, post_raw(GROUPS, r#"{"name": "#)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.detail().starts_with("body:"), "{}", answer.detail());
}

#[actix_web::test]
async fn an_empty_body_is_refused_with_422_naming_the_body() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(mocks, post_raw(GROUPS, "")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.detail().starts_with("body:"), "{}", answer.detail());
}

#[actix_web::test]
async fn a_body_over_one_mib_is_refused_with_413() {
    // Arrange: valid JSON, padded past the limit.
    let mocks = Mocks::untouchable();
    let body = format!(
        r#"{{"name": "Lobby", "description": "{}"}}"#,
        " ".repeat(1024 * 1024)
    );

    // Act
    let answer = call(mocks, post_raw(GROUPS, body)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.detail().starts_with("body:"), "{}", answer.detail());
}

#[actix_web::test]
async fn a_body_over_one_mib_without_content_length_is_refused_with_413() {
    // Arrange: the limit must hold while streaming, not only for a declared length.
    let state = Mocks::untouchable().into_state();
    let app = test::init_service(App::new().configure(http_api::configure(&state))).await;
    let mut request = post_raw(GROUPS, vec![b' '; 1024 * 1024 + 1]).to_request();
    request.headers_mut().remove(header::CONTENT_LENGTH);

    // Act
    let answer = Answer::read(test::call_service(&app, request).await).await;

    // Assert
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[actix_web::test]
async fn a_group_id_with_a_space_is_refused_with_422_naming_group_id() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        post(GROUPS, &json!({"group_id": "a b", "name": "Lobby"})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("group_id:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_description_over_500_characters_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        post(
            GROUPS,
            &json!({"name": "Lobby", "description": "d".repeat(501)}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("description:"),
        "{}",
        answer.detail()
    );
}

// ---------------------------------------------------------------------------------------------
// Device groups: update

#[actix_web::test]
async fn patching_a_group_with_no_fields_answers_400_without_reaching_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch("/customer/device-groups/grp-lobby", &json!({})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json(), json!({"detail": "No fields to update"}));
}

#[actix_web::test]
async fn patching_a_group_name_to_null_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch("/customer/device-groups/grp-lobby", &json!({"name": null})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.detail(), "name: must not be null");
}

#[actix_web::test]
async fn patching_a_group_name_to_an_empty_string_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch("/customer/device-groups/grp-lobby", &json!({"name": ""})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.detail().starts_with("name:"), "{}", answer.detail());
}

#[actix_web::test]
async fn patching_a_group_description_to_null_asks_the_repository_to_clear_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .withf(|tenant, _, group_id, changes| {
            is_tenant_a(tenant)
                && is_slug(group_id, "grp-lobby")
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
            let mut detail = stored_detail("grp-lobby", "Lobby");
            detail.group.description = None;
            Ok(detail)
        });

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/device-groups/grp-lobby",
            &json!({"description": null}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["description"], Value::Null);
}

#[actix_web::test]
async fn patching_a_group_name_passes_only_the_new_name() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .withf(|tenant, _, group_id, changes| {
            is_tenant_a(tenant)
                && is_slug(group_id, "grp-lobby")
                && changes.name.as_ref().map(GroupName::as_str) == Some("Hall")
                && changes.description.is_none()
                && changes.members.is_none()
        })
        .times(1)
        .returning(|_, _, _, _| Ok(stored_detail("grp-lobby", "Hall")));

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/device-groups/grp-lobby",
            &json!({"name": "Hall"}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["name"], "Hall");
}

#[actix_web::test]
async fn patching_a_group_to_a_taken_name_answers_409_naming_it() {
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
        patch(
            "/customer/device-groups/grp-lobby",
            &json!({"name": "Hall"}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.detail(), "Group with name 'Hall' already exists");
}

// ---------------------------------------------------------------------------------------------
// Device groups: delete

#[actix_web::test]
async fn deleting_a_group_answers_its_group_id_and_deleted_true() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_delete_group()
        .withf(|tenant, group_id| is_tenant_a(tenant) && is_slug(group_id, "grp-lobby"))
        .times(1)
        .returning(|_, _| Ok(()));

    // Act
    let answer = call(mocks, delete("/customer/device-groups/grp-lobby")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({"group_id": "grp-lobby", "deleted": true})
    );
}
