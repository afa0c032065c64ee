//! Dynamic groups and label-scoped windows (issue 17) at the HTTP edge: filters parsed and
//! refused by name, a filter never together with members, 409 for membership writes to a dynamic
//! group, previews for any role, window labels.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use domain::{GroupFilter, Labels};
use ports::{FilterPreview, MembershipError, UpdateGroupError};
use serde_json::{json, Value};

use crate::support::*;

const DEFINED_BY_FILTER: &str = "Group membership is defined by its filter";

fn floor_3() -> GroupFilter {
    GroupFilter::Matching(
        domain::MemberConditions::new(
            None,
            None,
            Some(Labels::parse([("floor", "3")]).expect("valid")),
            None,
        )
        .expect("a condition"),
    )
}

#[actix_web::test]
async fn a_group_created_with_a_filter_is_dynamic_and_echoes_it_in_both_families() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_create_group()
        .withf(|_, _, new| new.filter == Some(floor_3()) && new.members.is_empty())
        .times(2)
        .returning(|_, _, new| Ok(saved_group(new)));

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(
                API_GROUPS,
                &json!({"name": "Floor 3", "filter": {"labels": {"floor": "3"}}}),
            ),
            post(
                GROUPS,
                &json!({"name": "Floor 3", "filter": {"labels": {"floor": "3"}}}),
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
    assert_eq!(
        answers[0].json()["filter"],
        json!({"labels": {"floor": "3"}})
    );
    assert_eq!(answers[1].status, StatusCode::OK, "{}", answers[1].text());
    assert_eq!(
        answers[1].json()["filter"],
        json!({"labels": {"floor": "3"}})
    );
}

#[actix_web::test]
async fn bad_filters_are_refused_naming_the_key_and_nothing_is_stored() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks.groups.expect_create_group().never();
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "filter: "),
        (json!({"all": false}), "filter.all: "),
        (json!({"all": true, "site_ids": ["s1"]}), "filter.all: "),
        (json!({"site_ids": []}), "filter.site_ids: "),
        (json!({"statuses": ["on"]}), "filter.statuses[0]: "),
        (json!({"labels": {"Floor": "3"}}), "filter.labels: "),
        (json!({"labels": {"floor": 3}}), "filter.labels.floor: "),
        (json!({"colour": "red"}), "filter.colour: unknown field"),
    ];
    let requests = cases
        .iter()
        .map(|(filter, _)| post(API_GROUPS, &json!({"name": "G", "filter": filter})))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((filter, field), answer) in cases.iter().zip(answers) {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{filter}: {}",
            answer.text()
        );
        assert!(
            answer.detail().starts_with(field),
            "{filter}: {}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn a_filter_with_device_ids_is_refused_on_create_and_update() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks.groups.expect_create_group().never();
    mocks.groups.expect_update_group().never();
    let body = json!({"name": "G", "device_ids": [DEVICE_A], "filter": {"all": true}});

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(API_GROUPS, &body),
            put(&format!("{API_GROUPS}/{GROUP_ID}"), &body),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.text()
        );
        assert!(
            answer.detail().starts_with("filter: "),
            "{}",
            answer.detail()
        );
        assert!(
            answer.detail().contains("device_ids"),
            "{}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn membership_writes_to_a_dynamic_group_are_409() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_add_member()
        .times(1)
        .returning(|_, _, _, _| Err(MembershipError::DefinedByFilter));
    mocks
        .groups
        .expect_remove_member()
        .times(1)
        .returning(|_, _, _, _| Err(MembershipError::DefinedByFilter));
    mocks
        .groups
        .expect_update_group()
        .withf(|_, _, _, changes| changes.members.is_some() && changes.filter.is_none())
        .times(1)
        .returning(|_, _, _, _| Err(UpdateGroupError::DefinedByFilter));
    mocks
        .groups
        .expect_get_group_row()
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby")));

    // Act
    let answers = call_all(
        mocks,
        vec![
            put_empty(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
            delete(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
            put(
                &format!("{API_GROUPS}/{GROUP_ID}"),
                &json!({"device_ids": [DEVICE_A]}),
            ),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
        assert_eq!(answer.detail(), DEFINED_BY_FILTER);
    }
}

#[actix_web::test]
async fn a_filter_set_to_null_makes_the_group_static() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .withf(|_, _, _, changes| changes.filter == Some(None))
        .times(1)
        .returning(|_, _, _, _| Ok(stored_detail("grp-lobby", "Lobby")));

    // Act
    let answer = call(
        mocks,
        patch(&format!("{GROUPS}/grp-lobby"), &json!({"filter": null})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["filter"], Value::Null);
}

#[actix_web::test]
async fn any_role_may_preview_a_filter_and_sees_the_count_and_first_devices() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_preview_filter()
        .withf(|tenant, filter, limit| is_tenant_a(tenant) && *filter == floor_3() && *limit == 100)
        .times(1)
        .returning(|_, _, _| {
            Ok(FilterPreview {
                count: 250,
                devices: vec![device(uuid(DEVICE_A), "A sensor", office_thresholds())],
            })
        });
    mocks
        .windows
        .expect_covering_windows()
        .returning(|_, _, _| Ok(std::collections::HashMap::new()));
    let request = as_roles(
        &["viewer"],
        TestRequest::post()
            .uri(&format!("{API_GROUPS}/preview"))
            .set_json(json!({"filter": {"labels": {"floor": "3"}}})),
    );

    // Act
    let answer = call(mocks, request).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["count"], 250);
    assert_eq!(body["devices"][0]["name"], "A sensor");
    assert_eq!(body["devices"][0]["id"], DEVICE_A);
    assert_eq!(body["devices"].as_array().map(Vec::len), Some(1));
}

#[actix_web::test]
async fn a_preview_with_a_bad_filter_is_422_and_reads_nothing() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks.groups.expect_preview_filter().never();

    // Act
    let answer = call(
        mocks,
        post(&format!("{API_GROUPS}/preview"), &json!({"filter": {}})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("filter: "),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn window_labels_are_parsed_stored_and_echoed() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_list_windows()
        .returning(|_, _| Ok(page(Vec::new())));
    mocks
        .windows
        .expect_unknown_groups()
        .returning(|_, _| Ok(Vec::new()));
    mocks
        .windows
        .expect_create_window()
        .withf(|_, _, new| {
            new.definition.labels == Some(Labels::parse([("zone", "north")]).expect("valid"))
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_window(new)));
    let mut good = nightly_body();
    good["labels"] = json!({"zone": "north"});
    let mut bad = nightly_body();
    bad["labels"] = json!({"zone": 7});
    let mut empty = nightly_body();
    empty["labels"] = json!({});

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(WINDOWS, &good),
            post(WINDOWS, &bad),
            post(WINDOWS, &empty),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::OK, "{}", answers[0].text());
    assert_eq!(answers[0].json()["labels"], json!({"zone": "north"}));
    assert_eq!(answers[1].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answers[1].detail().starts_with("labels.zone: "),
        "{}",
        answers[1].detail()
    );
    assert_eq!(answers[2].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answers[2].detail().starts_with("labels: "),
        "{}",
        answers[2].detail()
    );
}
