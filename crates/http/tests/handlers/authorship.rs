//! Authorship: the token's `sub` is the actor of every write; responses show the entity's own.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use domain::{Actor, Device, DeviceName, GroupName, MaintenanceWindow, Thresholds};
use ports::{CreateGroupError, GroupDetail};
use serde_json::{json, Value};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Authorship: the token's `sub` is the actor of every write, and responses show the entity's

/// The `sub` of the tokens below: neither [`SUB`] nor the fixtures' [`CREATOR`] or [`EDITOR`].
const CAROL: &str = "carol";

/// `request` with a tenant-a token of `sub` carrying exactly `roles`.
fn as_sub(sub: &str, roles: &[&str], request: TestRequest) -> TestRequest {
    request.insert_header(bearer(&token_of(sub, TENANT, roles)))
}

/// `request` as carol, an admin of tenant-a.
fn as_carol(request: TestRequest) -> TestRequest {
    as_sub(CAROL, &["admin"], request)
}

fn is_carol(actor: &Actor) -> bool {
    actor.as_str() == CAROL
}

fn group_by(mut detail: GroupDetail, created_by: &Actor, updated_by: &Actor) -> GroupDetail {
    detail.group.created_by = created_by.clone();
    detail.group.updated_by = updated_by.clone();
    detail
}

fn device_by(mut device: Device, created_by: &Actor, updated_by: &Actor) -> Device {
    device.created_by = created_by.clone();
    device.updated_by = updated_by.clone();
    device
}

fn window_by(
    mut window: MaintenanceWindow,
    created_by: &Actor,
    updated_by: &Actor,
) -> MaintenanceWindow {
    window.created_by = created_by.clone();
    window.updated_by = updated_by.clone();
    window
}

/// `created_by` and `updated_by` of a response body.
fn authorship(body: &Value) -> (Value, Value) {
    (body["created_by"].clone(), body["updated_by"].clone())
}

fn authored(created_by: &str, updated_by: &str) -> (Value, Value) {
    (json!(created_by), json!(updated_by))
}

#[actix_web::test]
async fn creating_a_customer_group_passes_the_tokens_sub_as_the_actor() {
    // Arrange: the store records carol as creator and last editor.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|tenant, by, new| {
            is_tenant_a(tenant) && is_carol(by) && new.name.as_str() == "Lobby"
        })
        .times(1)
        .returning(|_, by, new| Ok(group_by(saved_group(new), by, by)));

    // Act
    let answer = call(
        mocks,
        as_carol(
            TestRequest::post()
                .uri(GROUPS)
                .set_json(json!({"name": "Lobby"})),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["name"], "Lobby");
    assert_eq!(authorship(&body), authored(CAROL, CAROL));
}

#[actix_web::test]
async fn a_retried_customer_group_create_passes_the_actor_on_every_attempt() {
    // Arrange: the first generated slug is taken; both attempts must carry carol.
    let mut mocks = Mocks::new();
    let mut sequence = mockall::Sequence::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|_, by, _| is_carol(by))
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _, new| Err(CreateGroupError::GroupIdTaken(new.group_id)));
    mocks
        .groups
        .expect_create_group()
        .withf(|_, by, _| is_carol(by))
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, by, new| Ok(group_by(saved_group(new), by, by)));

    // Act
    let answer = call(
        mocks,
        as_carol(
            TestRequest::post()
                .uri(GROUPS)
                .set_json(json!({"name": "Lobby"})),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(authorship(&answer.json()), authored(CAROL, CAROL));
}

#[actix_web::test]
async fn patching_a_customer_group_passes_the_tokens_sub_as_the_actor() {
    // Arrange: dave created the group; carol's change makes her its last editor.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .withf(|tenant, by, key, changes| {
            is_tenant_a(tenant)
                && is_carol(by)
                && is_slug(key, "grp-lobby")
                && changes.name.as_ref().map(GroupName::as_str) == Some("Hall")
        })
        .times(1)
        .returning(|_, by, _, _| {
            Ok(group_by(
                stored_detail("grp-lobby", "Hall"),
                &actor(CREATOR),
                by,
            ))
        });

    // Act
    let answer = call(
        mocks,
        as_carol(
            TestRequest::patch()
                .uri(&format!("{GROUPS}/grp-lobby"))
                .set_json(json!({"name": "Hall"})),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["name"], "Hall");
    assert_eq!(authorship(&body), authored(CREATOR, CAROL));
}

#[actix_web::test]
async fn changing_a_customer_groups_membership_passes_the_tokens_sub_as_the_actor() {
    // Arrange: carol is an admin.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_add_member()
        .withf(|tenant, by, key, device| {
            is_tenant_a(tenant)
                && is_carol(by)
                && is_slug(key, "grp-lobby")
                && *device == uuid(DEVICE_A)
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    mocks
        .groups
        .expect_remove_member()
        .withf(|tenant, by, key, device| {
            is_tenant_a(tenant)
                && is_carol(by)
                && is_slug(key, "grp-lobby")
                && *device == uuid(DEVICE_B)
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));

    // A membership write answers the group's new tag: the group is read after it.
    mocks
        .groups
        .expect_get_group_row()
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby")));
    // Act
    let answers = call_all(
        mocks,
        vec![
            as_sub(
                CAROL,
                &["admin"],
                TestRequest::put().uri(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
            ),
            as_sub(
                CAROL,
                &["admin"],
                TestRequest::delete().uri(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_B}")),
            ),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::OK, "{}", answers[0].text());
    assert_eq!(answers[0].json()["member"], true);
    assert_eq!(answers[1].status, StatusCode::OK, "{}", answers[1].text());
    assert_eq!(answers[1].json()["member"], false);
}

#[actix_web::test]
async fn creating_a_window_passes_the_tokens_sub_as_the_actor() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .withf(|tenant, by, new| {
            is_tenant_a(tenant) && is_carol(by) && is_generated_slug(new.window_id.as_str(), "mw-")
        })
        .times(1)
        .returning(|_, by, new| Ok(window_by(saved_window(new), by, by)));

    // Act
    let answer = call(
        mocks,
        as_carol(TestRequest::post().uri(WINDOWS).set_json(nightly_body())),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["name"], "Nightly patching");
    assert_eq!(authorship(&body), authored(CAROL, CAROL));
}

#[actix_web::test]
async fn patching_a_window_passes_the_tokens_sub_as_the_actor() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_update_window()
        .withf(|tenant, by, window_id, changes| {
            is_tenant_a(tenant)
                && is_carol(by)
                && window_id.as_str() == "mw-0000abcd"
                && changes.enabled == Some(false)
        })
        .times(1)
        .returning(|_, by, window_id, _| {
            Ok(window_by(
                stored_window(window_id.as_str()),
                &actor(CREATOR),
                by,
            ))
        });

    // Act
    let answer = call(
        mocks,
        as_carol(
            TestRequest::patch()
                .uri(&format!("{WINDOWS}/mw-0000abcd"))
                .set_json(json!({"enabled": false})),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["window_id"], "mw-0000abcd");
    assert_eq!(authorship(&body), authored(CREATOR, CAROL));
}

#[actix_web::test]
async fn creating_a_device_passes_the_tokens_sub_as_the_actor() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_create_device()
        .withf(|tenant, by, new| {
            is_tenant_a(tenant) && is_carol(by) && new.spec.name.as_str() == "T1"
        })
        .times(1)
        .returning(|_, by, new| Ok(device_by(saved_device(new), by, by)));

    // Act
    let answer = call(
        mocks,
        as_carol(
            TestRequest::post()
                .uri(DEVICES)
                .set_json(json!({"name": "T1"})),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["name"], "T1");
    assert_eq!(authorship(&body), authored(CAROL, CAROL));
}

#[actix_web::test]
async fn updating_a_device_passes_the_tokens_sub_as_the_actor() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_update_device()
        .withf(|tenant, by, id, changes| {
            is_tenant_a(tenant)
                && is_carol(by)
                && *id == uuid(DEVICE_A)
                && changes.name.as_ref().map(DeviceName::as_str) == Some("T2")
        })
        .times(1)
        .returning(|_, by, id, _| {
            Ok(device_by(
                device(id, "T2", Thresholds::default()),
                &actor(CREATOR),
                by,
            ))
        });

    // Act
    let answer = call(
        mocks,
        as_carol(
            TestRequest::put()
                .uri(&format!("{DEVICES}/{DEVICE_A}"))
                .set_json(json!({"name": "T2"})),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["name"], "T2");
    assert_eq!(authorship(&body), authored(CREATOR, CAROL));
}

#[actix_web::test]
async fn creating_an_api_group_passes_the_tokens_sub_as_the_actor() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|tenant, by, new| {
            is_tenant_a(tenant) && is_carol(by) && new.name.as_str() == "Building A"
        })
        .times(1)
        .returning(|_, by, new| Ok(group_by(saved_group(new), by, by)));

    // Act
    let answer = call(
        mocks,
        as_carol(
            TestRequest::post()
                .uri(API_GROUPS)
                .set_json(json!({"name": "Building A"})),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["name"], "Building A");
    assert_eq!(authorship(&body), authored(CAROL, CAROL));
}

#[actix_web::test]
async fn updating_an_api_group_passes_the_tokens_sub_as_the_actor() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .withf(|tenant, by, key, changes| {
            is_tenant_a(tenant)
                && is_carol(by)
                && is_id(key, GROUP_ID)
                && changes.name.as_ref().map(GroupName::as_str) == Some("Building B")
        })
        .times(1)
        .returning(|_, by, _, _| Ok(group_by(api_group(vec![]), &actor(CREATOR), by)));

    // Act
    let answer = call(
        mocks,
        as_carol(
            TestRequest::put()
                .uri(&format!("{API_GROUPS}/{GROUP_ID}"))
                .set_json(json!({"name": "Building B"})),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["id"], GROUP_ID);
    assert_eq!(authorship(&body), authored(CREATOR, CAROL));
}

#[actix_web::test]
async fn write_responses_show_the_authorship_the_store_returned_not_the_token() {
    // Arrange: carol writes, but every store answers with an entity dave created and erin last
    // changed.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .times(2)
        .returning(|_, _, new| {
            let mut detail = saved_group(new);
            detail.group.created_by = actor(CREATOR);
            detail.group.updated_by = actor(EDITOR);
            Ok(detail)
        });
    mocks
        .groups
        .expect_update_group()
        .times(2)
        .returning(|_, _, _, _| Ok(api_group(vec![])));
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .returning(|_, _, _| Ok(stored_window("mw-0000abcd")));
    mocks
        .windows
        .expect_update_window()
        .times(1)
        .returning(|_, _, _, _| Ok(stored_window("mw-0000abcd")));
    mocks
        .devices
        .expect_create_device()
        .times(1)
        .returning(|_, _, new| Ok(device(new.id, "T1", Thresholds::default())));
    mocks
        .devices
        .expect_update_device()
        .times(1)
        .returning(|_, _, id, _| Ok(device(id, "T2", Thresholds::default())));
    let cases = vec![
        (
            "POST customer group",
            TestRequest::post()
                .uri(GROUPS)
                .set_json(json!({"name": "Lobby"})),
        ),
        (
            "PATCH customer group",
            TestRequest::patch()
                .uri(&format!("{GROUPS}/grp-lobby"))
                .set_json(json!({"name": "Hall"})),
        ),
        (
            "POST window",
            TestRequest::post().uri(WINDOWS).set_json(nightly_body()),
        ),
        (
            "PATCH window",
            TestRequest::patch()
                .uri(&format!("{WINDOWS}/mw-0000abcd"))
                .set_json(json!({"enabled": false})),
        ),
        (
            "POST device",
            TestRequest::post()
                .uri(DEVICES)
                .set_json(json!({"name": "T1"})),
        ),
        (
            "PUT device",
            TestRequest::put()
                .uri(&format!("{DEVICES}/{DEVICE_A}"))
                .set_json(json!({"name": "T2"})),
        ),
        (
            "POST API group",
            TestRequest::post()
                .uri(API_GROUPS)
                .set_json(json!({"name": "Building A"})),
        ),
        (
            "PUT API group",
            TestRequest::put()
                .uri(&format!("{API_GROUPS}/{GROUP_ID}"))
                .set_json(json!({"name": "Building B"})),
        ),
    ];
    let labels: Vec<&str> = cases.iter().map(|(label, _)| *label).collect();
    let requests = cases.into_iter().map(|(_, r)| as_carol(r)).collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for (label, answer) in labels.iter().zip(&answers) {
        assert!(answer.status.is_success(), "{label}: {}", answer.text());
        assert_eq!(
            authorship(&answer.json()),
            authored(CREATOR, EDITOR),
            "{label}"
        );
    }
}

#[actix_web::test]
async fn a_token_whose_sub_is_empty_blank_or_holds_a_control_character_is_refused_with_401() {
    // Arrange: no port may be called, for reads or writes.
    let subs = [
        String::new(),
        "   ".to_owned(),
        "car\nol".to_owned(),
        "carol\r".to_owned(),
        "\tcarol".to_owned(),
        "car\u{0}ol".to_owned(),
        "carol\u{7f}".to_owned(),
        "carol\u{85}".to_owned(),
        "c".repeat(257),
    ];
    let mut requests = Vec::new();
    for sub in &subs {
        requests.push(as_sub(sub, &["admin"], TestRequest::get().uri(GROUPS)));
        requests.push(as_sub(
            sub,
            &["admin"],
            TestRequest::post()
                .uri(DEVICES)
                .set_json(json!({"name": "T1"})),
        ));
        requests.push(as_sub(
            sub,
            &["viewer"],
            TestRequest::put().uri(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
        ));
    }
    let count = requests.len();

    // Act
    let answers = call_all(Mocks::untouchable(), requests).await;

    // Assert
    assert_eq!(answers.len(), count);
    for (i, answer) in answers.iter().enumerate() {
        let sub = &subs[i / 3];
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "sub {sub:?}: {}",
            answer.text()
        );
        assert_eq!(
            answer.header(header::WWW_AUTHENTICATE),
            Some("Bearer"),
            "sub {sub:?}"
        );
        assert_eq!(answer.detail(), "Malformed token", "sub {sub:?}");
    }
}

#[actix_web::test]
async fn a_sub_of_256_characters_is_accepted_and_passed_whole_as_the_actor() {
    // Arrange: 256 characters, 512 bytes.
    let sub = "é".repeat(256);
    let mut mocks = Mocks::new();
    let expected = sub.clone();
    mocks
        .devices
        .expect_create_device()
        .withf(move |tenant, by, _| is_tenant_a(tenant) && by.as_str() == expected)
        .times(1)
        .returning(|_, by, new| Ok(device_by(saved_device(new), by, by)));

    // Act
    let answer = call(
        mocks,
        as_sub(
            &sub,
            &["admin"],
            TestRequest::post()
                .uri(DEVICES)
                .set_json(json!({"name": "T1"})),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(authorship(&answer.json()), authored(&sub, &sub));
}
