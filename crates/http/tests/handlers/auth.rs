//! Authentication, tenancy and roles: who may call what, refused before any lookup.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use domain::Thresholds;
use serde_json::json;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Authentication and tenancy

#[actix_web::test]
async fn a_request_without_a_token_is_refused_with_401_and_never_reaches_a_repository() {
    // Arrange: no port may be called.
    let mocks = Mocks::untouchable();
    let requests = vec![
        TestRequest::get().uri(GROUPS),
        TestRequest::post()
            .uri(GROUPS)
            .set_json(json!({"name": "Lobby"})),
        TestRequest::get().uri("/customer/device-groups/grp-lobby"),
        TestRequest::patch()
            .uri("/customer/device-groups/grp-lobby")
            .set_json(json!({"name": "Hall"})),
        TestRequest::delete().uri("/customer/device-groups/grp-lobby"),
        TestRequest::get().uri(WINDOWS),
        TestRequest::post().uri(WINDOWS).set_json(nightly_body()),
        TestRequest::get().uri("/customer/maintenance-windows/mw-0000abcd"),
        TestRequest::patch()
            .uri("/customer/maintenance-windows/mw-0000abcd")
            .set_json(json!({"enabled": false})),
        TestRequest::delete().uri("/customer/maintenance-windows/mw-0000abcd"),
        TestRequest::get().uri("/customer/maintenance-windows/mw-0000abcd/occurrences"),
        TestRequest::get().uri("/customer/maintenance-windows/mw-0000abcd/devices"),
        TestRequest::get().uri(&format!("{GROUPS}/grp-lobby/devices")),
        TestRequest::put().uri(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
        TestRequest::delete().uri(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
        TestRequest::get().uri(DEVICES),
        TestRequest::post()
            .uri(DEVICES)
            .set_json(json!({"name": "T1"})),
        TestRequest::get().uri(&format!("{DEVICES}/{DEVICE_A}")),
        TestRequest::put()
            .uri(&format!("{DEVICES}/{DEVICE_A}"))
            .set_json(json!({"name": "T2"})),
        TestRequest::delete().uri(&format!("{DEVICES}/{DEVICE_A}")),
        TestRequest::get().uri(&format!("{DEVICES}/{DEVICE_A}/groups")),
        TestRequest::get().uri(&format!("{DEVICES}/{DEVICE_A}/readings")),
        TestRequest::post()
            .uri(&format!("{DEVICES}/{DEVICE_A}/readings"))
            .set_json(json!({"value": 1.0})),
        TestRequest::post()
            .uri(READINGS)
            .set_json(json!({"readings": [
                {"device_id": DEVICE_A, "timestamp": "2025-10-20T10:00:00Z", "value": 1.0}
            ]})),
        TestRequest::get().uri(API_GROUPS),
        TestRequest::post()
            .uri(API_GROUPS)
            .set_json(json!({"name": "Building A"})),
        TestRequest::get().uri(&format!("{API_GROUPS}/{GROUP_ID}")),
        TestRequest::put()
            .uri(&format!("{API_GROUPS}/{GROUP_ID}"))
            .set_json(json!({"name": "Building B"})),
        TestRequest::delete().uri(&format!("{API_GROUPS}/{GROUP_ID}")),
        TestRequest::get().uri(&format!("{API_GROUPS}/{GROUP_ID}/readings")),
        TestRequest::get().uri(&format!("{API_GROUPS}/{GROUP_ID}/alerts")),
    ];
    let count = requests.len();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    assert_eq!(answers.len(), count);
    for answer in answers {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text());
        assert_eq!(answer.header(header::WWW_AUTHENTICATE), Some("Bearer"));
        assert_eq!(answer.detail(), "Not authenticated");
    }
}

#[actix_web::test]
async fn a_token_signed_with_another_secret_is_refused_with_401() {
    // Arrange
    let mocks = Mocks::untouchable();
    let forged = http_api::auth::issue_token(
        b"some-other-secret-of-at-least-32-bytes",
        "mallory",
        TENANT,
        &["admin".into()],
        now_unix(),
        3600,
    )
    .expect("token signs");

    // Act
    let answer = call(
        mocks,
        TestRequest::get()
            .uri(GROUPS)
            .insert_header(bearer(&forged)),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.header(header::WWW_AUTHENTICATE), Some("Bearer"));
    assert_eq!(answer.detail(), "Invalid token signature");
}

#[actix_web::test]
async fn an_expired_token_is_refused_with_401_token_expired() {
    // Arrange
    let mocks = Mocks::untouchable();
    let expired = http_api::auth::issue_token(
        SECRET,
        "alice",
        TENANT,
        &["admin".into()],
        now_unix() - 7200,
        3600,
    )
    .expect("token signs");

    // Act
    let answer = call(
        mocks,
        TestRequest::get()
            .uri(WINDOWS)
            .insert_header(bearer(&expired)),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.header(header::WWW_AUTHENTICATE), Some("Bearer"));
    assert_eq!(answer.detail(), "Token expired");
}

#[actix_web::test]
async fn the_tenant_of_the_token_is_the_tenant_passed_to_the_repositories() {
    // Arrange: a token of tenant-b; the mocks only match tenant-b.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_groups()
        .withf(|tenant, query| tenant.as_str() == "tenant-b" && is_all(query))
        .times(1)
        .returning(|_, _| Ok(page(vec![])));
    mocks
        .windows
        .expect_get_window()
        .withf(|tenant, window_id| {
            tenant.as_str() == "tenant-b" && window_id.as_str() == "mw-0000abcd"
        })
        .times(1)
        .returning(|_, _| Ok(stored_window("mw-0000abcd")));
    let token = token_for("tenant-b");

    // Act
    let answers = call_all(
        mocks,
        vec![
            TestRequest::get().uri(GROUPS).insert_header(bearer(&token)),
            TestRequest::get()
                .uri("/customer/maintenance-windows/mw-0000abcd")
                .insert_header(bearer(&token)),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::OK);
    assert_eq!(answers[0].json(), json!({"groups": [], "total": 0}));
    assert_eq!(answers[1].status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Roles: writes of groups, membership, devices and readings need admin or owner; windows also
// operator

/// Every write that needs admin or owner, each with a valid body, sent with `roles`. The flag
/// tells the Group API's writes, whose 403 carries `GROUP_004`.
fn writes_needing_admin_or_owner(roles: &[&str]) -> Vec<(&'static str, TestRequest, bool)> {
    let device = format!("{DEVICES}/{DEVICE_A}");
    let group = format!("{API_GROUPS}/{GROUP_ID}");
    vec![
        (
            "POST devices",
            TestRequest::post()
                .uri(DEVICES)
                .set_json(json!({"name": "T1"})),
            false,
        ),
        (
            "PUT device",
            TestRequest::put()
                .uri(&device)
                .set_json(json!({"name": "T2"})),
            false,
        ),
        ("DELETE device", TestRequest::delete().uri(&device), false),
        (
            "POST device reading",
            TestRequest::post()
                .uri(&format!("{device}/readings"))
                .set_json(json!({"value": 1.0})),
            false,
        ),
        (
            "POST readings",
            TestRequest::post()
                .uri(READINGS)
                .set_json(json!({"readings": [
                    {"device_id": DEVICE_A, "timestamp": "2025-10-20T10:00:00Z", "value": 1.0}
                ]})),
            false,
        ),
        (
            "POST groups",
            TestRequest::post()
                .uri(API_GROUPS)
                .set_json(json!({"name": "Building A", "device_ids": [DEVICE_A]})),
            true,
        ),
        (
            "PUT group",
            TestRequest::put()
                .uri(&group)
                .set_json(json!({"name": "Building B"})),
            true,
        ),
        ("DELETE group", TestRequest::delete().uri(&group), true),
        // Refused before any lookup or parsing: an id that names nothing, or is no id at all,
        // and a body that does not parse are still 403s.
        (
            "DELETE group by a malformed id",
            TestRequest::delete().uri(&format!("{API_GROUPS}/not-a-uuid")),
            true,
        ),
        (
            "PUT device with a malformed body",
            TestRequest::put()
                .uri(&device)
                .insert_header(("content-type", "application/json"))
                .set_payload("{not json"),
            false,
        ),
        (
            "POST customer group",
            TestRequest::post()
                .uri(GROUPS)
                .set_json(json!({"name": "Lobby"})),
            false,
        ),
        (
            "PATCH customer group",
            TestRequest::patch()
                .uri(&format!("{GROUPS}/grp-lobby"))
                .set_json(json!({"name": "Hall"})),
            false,
        ),
        (
            "DELETE customer group",
            TestRequest::delete().uri(&format!("{GROUPS}/grp-lobby")),
            false,
        ),
        (
            "DELETE customer group by an impossible slug",
            TestRequest::delete().uri(&format!("{GROUPS}/NOT%20A%20SLUG")),
            false,
        ),
        (
            "PUT customer group member",
            TestRequest::put().uri(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
            false,
        ),
        (
            "DELETE customer group member",
            TestRequest::delete().uri(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
            false,
        ),
    ]
    .into_iter()
    .map(|(label, request, group_api)| (label, as_roles(roles, request), group_api))
    .collect()
}

async fn assert_writes_forbidden(roles: &[&str]) {
    // Arrange: no port may be called.
    let mocks = Mocks::untouchable();
    let cases = writes_needing_admin_or_owner(roles);
    let expected: Vec<(&str, bool)> = cases.iter().map(|(l, _, g)| (*l, *g)).collect();
    let requests = cases.into_iter().map(|(_, r, _)| r).collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((label, group_api), answer) in expected.iter().zip(&answers) {
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{label} as {roles:?}: {}",
            answer.text()
        );
        let body = if *group_api {
            json!({"detail": FORBIDDEN, "code": "GROUP_004"})
        } else {
            json!({ "detail": FORBIDDEN })
        };
        assert_eq!(answer.json(), body, "{label} as {roles:?}");
    }
}

/// Every window write, each with a valid body, sent with `roles`.
fn window_writes(roles: &[&str]) -> Vec<(&'static str, TestRequest)> {
    vec![
        (
            "POST window",
            TestRequest::post()
                .uri(WINDOWS)
                .set_json(json!({"name": "Patching", "starts_at": "2025-10-20T00:00:00Z"})),
        ),
        (
            "PATCH window",
            TestRequest::patch()
                .uri(&format!("{WINDOWS}/mw-0000abcd"))
                .set_json(json!({"enabled": false})),
        ),
        (
            "DELETE window",
            TestRequest::delete().uri(&format!("{WINDOWS}/mw-0000abcd")),
        ),
        (
            "DELETE window by an impossible slug",
            TestRequest::delete().uri(&format!("{WINDOWS}/nope")),
        ),
    ]
    .into_iter()
    .map(|(label, request)| (label, as_roles(roles, request)))
    .collect()
}

#[actix_web::test]
async fn window_writes_without_operator_admin_or_owner_are_refused_before_any_lookup() {
    for roles in [&["viewer"][..], &[], &["superuser"]] {
        let cases = window_writes(roles);
        let labels: Vec<&str> = cases.iter().map(|(l, _)| *l).collect();
        let answers = call_all(
            Mocks::untouchable(),
            cases.into_iter().map(|(_, r)| r).collect(),
        )
        .await;
        for (label, answer) in labels.iter().zip(&answers) {
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{label} as {roles:?}");
            assert_eq!(
                answer.json(),
                json!({"detail": "Access forbidden. Required roles: operator, admin, owner"}),
                "{label} as {roles:?}: no code in the customer API"
            );
        }
    }
}

#[actix_web::test]
async fn an_operator_may_write_windows() {
    // Arrange: each write reaches its repository.
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .returning(|_, _, _| {
            Err(ports::CreateWindowError::Store(
                ports::StoreError::Unavailable(anyhow::anyhow!("down")),
            ))
        });
    mocks
        .windows
        .expect_update_window()
        .times(1)
        .returning(|_, _, _, _| Err(ports::UpdateWindowError::NotFound));
    mocks
        .windows
        .expect_delete_window()
        .times(1)
        .returning(|_, _| Err(ports::LookupError::NotFound));
    let cases = window_writes(&["operator"]);
    let answers = call_all(mocks, cases.into_iter().take(3).map(|(_, r)| r).collect()).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND
        ]
    );
}

#[actix_web::test]
async fn writes_by_a_viewer_are_refused_with_403_and_never_reach_a_repository() {
    assert_writes_forbidden(&["viewer"]).await;
}

#[actix_web::test]
async fn writes_by_an_operator_are_refused_with_403_and_never_reach_a_repository() {
    assert_writes_forbidden(&["operator", "viewer"]).await;
}

#[actix_web::test]
async fn writes_with_a_token_without_known_roles_are_refused_with_403() {
    assert_writes_forbidden(&[]).await;
    assert_writes_forbidden(&["superuser"]).await;
}

#[actix_web::test]
async fn an_owner_may_write_devices_readings_and_groups() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_create_device()
        .times(1)
        .returning(|_, _, new| Ok(saved_device(new)));
    mocks
        .devices
        .expect_update_device()
        .times(1)
        .returning(|_, _, id, _| Ok(device(id, "T2", Thresholds::default())));
    mocks
        .devices
        .expect_delete_device()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .readings
        .expect_ingest()
        .times(2)
        .returning(|_, batch| Ok(batch.readings().len() as u64));
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, _, new| Ok(saved_group(new)));
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(|_, _, _, _| Ok(api_group(vec![])));
    mocks
        .groups
        .expect_delete_group()
        .times(1)
        .returning(|_, _| Ok(()));
    // The first eight: the devices, readings and Group API writes mocked above.
    let cases: Vec<_> = writes_needing_admin_or_owner(&["owner"])
        .into_iter()
        .take(8)
        .collect();
    let labels: Vec<&str> = cases.iter().map(|(l, _, _)| *l).collect();
    let requests = cases.into_iter().map(|(_, r, _)| r).collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for (label, answer) in labels.iter().zip(&answers) {
        assert!(
            answer.status.is_success(),
            "{label}: {} {}",
            answer.status,
            answer.text()
        );
    }
}

#[actix_web::test]
async fn a_viewer_may_read_devices_readings_and_groups() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_list_devices()
        .times(1)
        .returning(|_, _, _| {
            Ok(page(vec![device(
                uuid(DEVICE_A),
                "T1",
                Thresholds::default(),
            )]))
        });
    mocks
        .devices
        .expect_get_device()
        .times(1)
        .returning(|_, id| Ok(device(id, "T1", Thresholds::default())));
    mocks
        .devices
        .expect_groups_of_device()
        .times(1)
        .returning(|_, _| Ok(vec![stored_group("grp-lobby", "Lobby")]));
    mocks
        .readings
        .expect_device_readings()
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    mocks
        .groups
        .expect_list_groups()
        .times(1)
        .returning(|_, _| Ok(page(vec![])));
    mocks
        .groups
        .expect_get_group()
        .times(2)
        .returning(|_, _| Ok(api_group(vec![])));
    mocks
        .groups
        .expect_group_readings()
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    let device = format!("{DEVICES}/{DEVICE_A}");
    let group = format!("{API_GROUPS}/{GROUP_ID}");
    let uris = [
        DEVICES.to_owned(),
        device.clone(),
        format!("{device}/groups"),
        format!("{device}/readings"),
        API_GROUPS.to_owned(),
        group.clone(),
        format!("{group}/readings"),
        format!("{group}/alerts"),
    ];
    let requests = uris
        .iter()
        .map(|uri| as_roles(&["viewer"], TestRequest::get().uri(uri)))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for (uri, answer) in uris.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.text());
    }
}

#[actix_web::test]
async fn an_admin_may_change_customer_group_membership() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_add_member()
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    mocks
        .groups
        .expect_remove_member()
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let uri = format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}");

    // A membership write answers the group's new tag: the group is read after it.
    mocks
        .groups
        .expect_get_group_row()
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby")));
    // Act
    let answers = call_all(
        mocks,
        vec![
            as_roles(&["admin"], TestRequest::put().uri(&uri)),
            as_roles(&["admin"], TestRequest::delete().uri(&uri)),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
}
