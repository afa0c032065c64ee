//! The route table: every route wired with its app data, health, the documents, 404 and 405.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use anyhow::anyhow;
use domain::{TenantId, Thresholds, WindowSlug};
use ports::{
    IngestError, LookupError, MembershipError, StoreError, UpdateDeviceError, UpdateGroupError,
    UpdateWindowError,
};
use serde_json::{json, Value};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Route table, health, documents

#[actix_web::test]
async fn every_route_answers_through_the_production_route_table() {
    // Arrange: every port answers successfully.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_groups()
        .times(1)
        .returning(|_, _| Ok(page(vec![stored_group("grp-lobby", "Lobby")])));
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, _, new| Ok(saved_group(new)));
    mocks
        .groups
        .expect_get_group_row()
        .times(1)
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby")));
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(|_, _, _, _| Ok(stored_detail("grp-lobby", "Hall")));
    mocks
        .groups
        .expect_delete_group()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .windows
        .expect_list_windows()
        .times(1)
        .returning(|_, _| Ok(page(vec![stored_window("mw-0000abcd")])));
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .returning(|_, _, new| Ok(saved_window(new)));
    mocks
        .windows
        .expect_get_window()
        .times(2)
        .returning(|_, _| Ok(stored_window("mw-0000abcd")));
    mocks
        .windows
        .expect_update_window()
        .times(1)
        .returning(|_, _, _, _| Ok(stored_window("mw-0000abcd")));
    mocks
        .windows
        .expect_delete_window()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .windows
        .expect_window_devices()
        .times(1)
        .returning(|_, _| Ok((stored_window("mw-0000abcd"), vec![])));
    mocks.health.expect_check().times(1).returning(|| Ok(()));
    let requests = vec![
        get(GROUPS),
        post(GROUPS, &json!({"name": "Lobby"})),
        get("/customer/device-groups/grp-lobby"),
        patch(
            "/customer/device-groups/grp-lobby",
            &json!({"name": "Hall"}),
        ),
        delete("/customer/device-groups/grp-lobby"),
        get(WINDOWS),
        post(WINDOWS, &nightly_body()),
        get("/customer/maintenance-windows/mw-0000abcd"),
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"enabled": false}),
        ),
        delete("/customer/maintenance-windows/mw-0000abcd"),
        get("/customer/maintenance-windows/mw-0000abcd/occurrences"),
        get("/customer/maintenance-windows/mw-0000abcd/devices"),
        TestRequest::get().uri("/health/live"),
        TestRequest::get().uri("/health/ready"),
        TestRequest::get().uri("/openapi.json"),
        TestRequest::get().uri("/docs"),
    ];
    let labels = [
        "GET groups",
        "POST groups",
        "GET group",
        "PATCH group",
        "DELETE group",
        "GET windows",
        "POST windows",
        "GET window",
        "PATCH window",
        "DELETE window",
        "GET window occurrences",
        "GET window devices",
        "GET /health/live",
        "GET /health/ready",
        "GET /openapi.json",
        "GET /docs",
    ];

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert: every route is wired with its app data and answers 200.
    for (label, answer) in labels.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{label}: {}", answer.text());
    }
}

#[actix_web::test]
async fn liveness_answers_200_without_a_token_or_the_store() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(mocks, TestRequest::get().uri("/health/live")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"status": "ok"}));
}

#[actix_web::test]
async fn readiness_answers_200_when_the_store_answers() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks.health.expect_check().times(1).returning(|| Ok(()));

    // Act
    let answer = call(mocks, TestRequest::get().uri("/health/ready")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"status": "ready"}));
}

#[actix_web::test]
async fn readiness_answers_503_with_a_json_detail_when_the_store_is_unavailable() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .health
        .expect_check()
        .times(1)
        .returning(|| Err(StoreError::Unavailable(anyhow!("connection refused"))));

    // Act
    let answer = call(mocks, TestRequest::get().uri("/health/ready")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!answer.detail().is_empty());
    assert!(!answer.text().contains("connection refused"));
}

#[actix_web::test]
async fn the_openapi_document_is_served_as_json_without_a_token() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(mocks, TestRequest::get().uri("/openapi.json")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header(header::CONTENT_TYPE),
        Some("application/json")
    );
    let doc = answer.json();
    assert!(doc["openapi"].is_string(), "{doc}");
    for path in [
        GROUPS,
        WINDOWS,
        "/customer/maintenance-windows/{window_id}/occurrences",
        "/customer/maintenance-windows/{window_id}/devices",
        "/customer/device-groups/{group_id}/devices",
        "/customer/device-groups/{group_id}/devices/{device_id}",
        DEVICES,
        "/api/devices/{id}",
        "/api/devices/{id}/groups",
        "/api/devices/{id}/readings",
        READINGS,
        API_GROUPS,
        "/api/groups/{group_id}",
        "/api/groups/{group_id}/readings",
        "/api/groups/{group_id}/alerts",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
}

#[actix_web::test]
async fn the_docs_page_is_served_as_html_without_a_token() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(mocks, TestRequest::get().uri("/docs")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer
        .header(header::CONTENT_TYPE)
        .is_some_and(|v| v.starts_with("text/html")));
    assert!(answer.text().contains("/openapi.json"));
}

#[actix_web::test]
async fn an_unknown_path_answers_404_with_a_json_detail() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            get("/no/such/path"),
            TestRequest::get().uri("/customer/device-groups/a/b"),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.detail(), "Not Found");
    }
}

#[actix_web::test]
async fn an_unsupported_method_on_a_known_path_answers_405_with_a_json_detail() {
    // Arrange
    let mocks = Mocks::untouchable();
    let window = "/customer/maintenance-windows/mw-0000abcd";
    let cases = vec![
        ("PUT customer groups", TestRequest::put().uri(GROUPS)),
        ("POST window", TestRequest::post().uri(window)),
        (
            "POST window occurrences",
            TestRequest::post().uri(&format!("{window}/occurrences")),
        ),
        (
            "DELETE window devices",
            TestRequest::delete().uri(&format!("{window}/devices")),
        ),
        (
            "POST customer group devices",
            TestRequest::post().uri(&format!("{GROUPS}/grp-lobby/devices")),
        ),
        (
            "PATCH customer group device",
            TestRequest::patch().uri(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
        ),
        (
            "PATCH device",
            TestRequest::patch().uri(&format!("{DEVICES}/{DEVICE_A}")),
        ),
        (
            "PUT device readings",
            TestRequest::put().uri(&format!("{DEVICES}/{DEVICE_A}/readings")),
        ),
        ("GET readings", TestRequest::get().uri(READINGS)),
        (
            "PATCH API group",
            TestRequest::patch().uri(&format!("{API_GROUPS}/{GROUP_ID}")),
        ),
        (
            "POST API group alerts",
            TestRequest::post().uri(&format!("{API_GROUPS}/{GROUP_ID}/alerts")),
        ),
    ];
    let labels: Vec<&str> = cases.iter().map(|(label, _)| *label).collect();
    let requests = cases.into_iter().map(|(_, r)| authed(r)).collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for (label, answer) in labels.iter().zip(&answers) {
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{label}: {}",
            answer.text()
        );
        assert_eq!(answer.detail(), "Method Not Allowed", "{label}");
    }
}

// ---------------------------------------------------------------------------------------------
// Route table: membership, devices, readings, Group API

#[actix_web::test]
async fn every_new_route_answers_its_success_status_through_the_production_route_table() {
    // Arrange: every port answers successfully.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_get_group()
        .times(2)
        .returning(|_, _| Ok(api_group(vec![])));
    mocks
        .groups
        .expect_list_members()
        .times(1)
        .returning(|_, _, _| Ok(page(Vec::new())));
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
    mocks
        .groups
        .expect_list_groups()
        .times(1)
        .returning(|_, _| Ok(page(vec![])));
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
    mocks
        .groups
        .expect_group_readings()
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    mocks
        .devices
        .expect_list_devices()
        .times(1)
        .returning(|_, _, _| Ok(page(vec![])));
    mocks
        .devices
        .expect_create_device()
        .times(1)
        .returning(|_, _, new| Ok(saved_device(new)));
    mocks
        .devices
        .expect_get_device()
        .times(1)
        .returning(|_, id| Ok(device(id, "T1", Thresholds::default())));
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
        .devices
        .expect_groups_of_device()
        .times(1)
        .returning(|_, _| Ok(vec![]));
    mocks
        .readings
        .expect_device_readings()
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    mocks
        .readings
        .expect_ingest()
        .times(2)
        .returning(|_, batch| Ok(batch.readings().len() as u64));
    let one_reading = json!({"readings": [
        {"device_id": DEVICE_A, "timestamp": "2025-10-20T10:00:00Z", "value": 1.0}
    ]});
    let cases = vec![
        (
            "GET group devices",
            get(&format!("{GROUPS}/grp-lobby/devices")),
            StatusCode::OK,
        ),
        (
            "PUT group device",
            put_empty(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
            StatusCode::OK,
        ),
        (
            "DELETE group device",
            delete(&format!("{GROUPS}/grp-lobby/devices/{DEVICE_A}")),
            StatusCode::OK,
        ),
        ("GET devices", get(DEVICES), StatusCode::OK),
        (
            "POST devices",
            post(DEVICES, &json!({"name": "T1"})),
            StatusCode::CREATED,
        ),
        (
            "GET device",
            get(&format!("{DEVICES}/{DEVICE_A}")),
            StatusCode::OK,
        ),
        (
            "PUT device",
            put(&format!("{DEVICES}/{DEVICE_A}"), &json!({"name": "T2"})),
            StatusCode::OK,
        ),
        (
            "DELETE device",
            delete(&format!("{DEVICES}/{DEVICE_A}")),
            StatusCode::NO_CONTENT,
        ),
        (
            "GET device groups",
            get(&format!("{DEVICES}/{DEVICE_A}/groups")),
            StatusCode::OK,
        ),
        (
            "GET device readings",
            get(&format!("{DEVICES}/{DEVICE_A}/readings")),
            StatusCode::OK,
        ),
        (
            "POST device reading",
            post(
                &format!("{DEVICES}/{DEVICE_A}/readings"),
                &json!({"value": 1.0}),
            ),
            StatusCode::CREATED,
        ),
        (
            "POST readings",
            post(READINGS, &one_reading),
            StatusCode::CREATED,
        ),
        ("GET groups", get(API_GROUPS), StatusCode::OK),
        (
            "POST groups",
            post(API_GROUPS, &json!({"name": "Building A"})),
            StatusCode::CREATED,
        ),
        (
            "GET group",
            get(&format!("{API_GROUPS}/{GROUP_ID}")),
            StatusCode::OK,
        ),
        (
            "PUT group",
            put(
                &format!("{API_GROUPS}/{GROUP_ID}"),
                &json!({"name": "Building B"}),
            ),
            StatusCode::OK,
        ),
        (
            "DELETE group",
            delete(&format!("{API_GROUPS}/{GROUP_ID}")),
            StatusCode::NO_CONTENT,
        ),
        (
            "GET group readings",
            get(&format!("{API_GROUPS}/{GROUP_ID}/readings")),
            StatusCode::OK,
        ),
        (
            "GET group alerts",
            get(&format!("{API_GROUPS}/{GROUP_ID}/alerts")),
            StatusCode::OK,
        ),
    ];
    let expected: Vec<(&str, StatusCode)> = cases.iter().map(|(l, _, s)| (*l, *s)).collect();
    let requests = cases.into_iter().map(|(_, r, _)| r).collect();

    // A membership write answers the group's new tag: the group is read after it.
    mocks
        .groups
        .expect_get_group_row()
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby")));
    // Act
    let answers = call_all(mocks, requests).await;

    // Assert: every route is wired with its app data and answers its success status.
    for ((label, status), answer) in expected.iter().zip(&answers) {
        assert_eq!(answer.status, *status, "{label}: {}", answer.text());
    }
}

// ---------------------------------------------------------------------------------------------
// Route table: an id the store does not know

#[actix_web::test]
async fn an_unknown_id_answers_404_naming_what_is_missing_on_every_route_that_takes_one() {
    // Arrange: every lookup finds nothing; the window is looked up by its slug.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_get_group()
        .times(2)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks
        .groups
        .expect_get_group_row()
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks
        .groups
        .expect_list_members()
        .times(1)
        .returning(|_, _, _| Err(LookupError::NotFound));
    mocks
        .groups
        .expect_update_group()
        .times(2)
        .returning(|_, _, _, _| Err(UpdateGroupError::NotFound));
    mocks
        .groups
        .expect_delete_group()
        .times(2)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks
        .groups
        .expect_add_member()
        .times(1)
        .returning(|_, _, _, _| Err(MembershipError::GroupNotFound));
    mocks
        .groups
        .expect_remove_member()
        .times(1)
        .returning(|_, _, _, _| Err(MembershipError::GroupNotFound));
    mocks
        .groups
        .expect_group_readings()
        .times(1)
        .returning(|_, _, _| Err(LookupError::NotFound));
    let is_unknown_window =
        |tenant: &TenantId, id: &WindowSlug| is_tenant_a(tenant) && id.as_str() == "mw-00000000";
    mocks
        .windows
        .expect_get_window()
        .withf(is_unknown_window)
        .times(2)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks
        .windows
        .expect_update_window()
        .times(1)
        .returning(|_, _, _, _| Err(UpdateWindowError::NotFound));
    mocks
        .windows
        .expect_delete_window()
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks
        .windows
        .expect_window_devices()
        .withf(is_unknown_window)
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks
        .devices
        .expect_get_device()
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks
        .devices
        .expect_update_device()
        .times(1)
        .returning(|_, _, _, _| Err(UpdateDeviceError::NotFound));
    mocks
        .devices
        .expect_delete_device()
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks
        .devices
        .expect_groups_of_device()
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks
        .readings
        .expect_device_readings()
        .times(1)
        .returning(|_, _, _| Err(LookupError::NotFound));
    mocks
        .readings
        .expect_ingest()
        .times(1)
        .returning(|_, _| Err(IngestError::UnknownDevice(uuid(DEVICE_B))));

    let group = "/customer/device-groups/grp-nothing";
    let window = "/customer/maintenance-windows/mw-00000000";
    let device = format!("{DEVICES}/{DEVICE_B}");
    let api_group = format!("{API_GROUPS}/{GROUP_ID}");
    let no_group = json!({"detail": "Group not found"});
    let no_window = json!({"detail": "Window not found"});
    let no_device = json!({ "detail": format!("Device {DEVICE_B} not found") });
    let no_api_group =
        json!({"detail": format!("Group {GROUP_ID} not found"), "code": "GROUP_005"});
    let cases = vec![
        ("GET customer group", get(group), &no_group),
        (
            "PATCH customer group",
            patch(group, &json!({"name": "Hall"})),
            &no_group,
        ),
        ("DELETE customer group", delete(group), &no_group),
        (
            "GET customer group devices",
            get(&format!("{group}/devices")),
            &no_group,
        ),
        (
            "PUT customer group device",
            put_empty(&format!("{group}/devices/{DEVICE_A}")),
            &no_group,
        ),
        (
            "DELETE customer group device",
            delete(&format!("{group}/devices/{DEVICE_A}")),
            &no_group,
        ),
        ("GET window", get(window), &no_window),
        (
            "PATCH window",
            patch(window, &json!({"enabled": false})),
            &no_window,
        ),
        ("DELETE window", delete(window), &no_window),
        (
            "GET window occurrences",
            get(&format!("{window}/occurrences")),
            &no_window,
        ),
        (
            "GET window devices",
            get(&format!("{window}/devices")),
            &no_window,
        ),
        ("GET device", get(&device), &no_device),
        (
            "PUT device",
            put(&device, &json!({"name": "T2"})),
            &no_device,
        ),
        ("DELETE device", delete(&device), &no_device),
        (
            "GET device groups",
            get(&format!("{device}/groups")),
            &no_device,
        ),
        (
            "GET device readings",
            get(&format!("{device}/readings")),
            &no_device,
        ),
        (
            "POST device reading",
            post(&format!("{device}/readings"), &json!({"value": 1.0})),
            &no_device,
        ),
        ("GET API group", get(&api_group), &no_api_group),
        (
            "GET API group alerts",
            get(&format!("{api_group}/alerts")),
            &no_api_group,
        ),
        (
            "GET API group readings",
            get(&format!("{api_group}/readings")),
            &no_api_group,
        ),
        (
            "PUT API group",
            put(&api_group, &json!({"name": "Building B"})),
            &no_api_group,
        ),
        ("DELETE API group", delete(&api_group), &no_api_group),
    ];
    let expected: Vec<(&str, &Value)> = cases.iter().map(|(l, _, b)| (*l, *b)).collect();
    let requests = cases.into_iter().map(|(_, r, _)| r).collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert: each answers 404 with the detail (and code) of what it did not find.
    for ((label, body), answer) in expected.iter().zip(&answers) {
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{label}: {}",
            answer.text()
        );
        assert_eq!(answer.json(), **body, "{label}");
    }
}

#[actix_web::test]
async fn readiness_answers_503_with_a_json_detail_while_shutdown_drains() {
    // Arrange: a healthy store, and shutdown begun.
    let state = Mocks::untouchable().into_state();
    state.readiness.start_draining();
    let app =
        actix_web::test::init_service(actix_web::App::new().configure(http_api::configure(&state)))
            .await;

    // Act
    let ready =
        actix_web::test::call_service(&app, TestRequest::get().uri("/health/ready").to_request());
    let ready = Answer::read(ready.await).await;
    let live =
        actix_web::test::call_service(&app, TestRequest::get().uri("/health/live").to_request());
    let live = Answer::read(live.await).await;

    // Assert: not ready, but still serving.
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.detail().contains("shutting down"), "{}", ready.text());
    assert_eq!(live.status, StatusCode::OK);
}

/// A request path for a route template: each `{param}` filled with a value of its kind.
fn sample_path(template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{group_id}" if template.starts_with("/customer") => "grp-lobby".to_owned(),
            "{window_id}" => "mw-0000abcd".to_owned(),
            s if s.starts_with('{') => DEVICE_A.to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[actix_web::test]
async fn every_route_of_the_table_answers_405_with_its_allow_header_to_any_other_method() {
    // Arrange: the routes as the table lists them; no port may be called.
    let methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
    let mut cases = Vec::new();
    for route in http_api::ROUTES {
        let allowed = http_api::routes_allowed(route.methods);
        for method in methods.iter().filter(|m| !allowed.contains(m)) {
            let request = TestRequest::default()
                .method(method.parse().expect("a method"))
                .uri(&sample_path(route.path));
            cases.push((
                format!("{method} {}", route.path),
                allowed.join(", "),
                request,
            ));
        }
    }
    assert!(cases.len() > 40, "every route leaves some method out");
    let expected: Vec<(String, String)> = cases
        .iter()
        .map(|(l, a, _)| (l.clone(), a.clone()))
        .collect();

    // Act
    let answers = call_all(
        Mocks::untouchable(),
        cases.into_iter().map(|(_, _, r)| r).collect(),
    )
    .await;

    // Assert
    for ((label, allow), answer) in expected.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{label}");
        assert_eq!(
            answer.header(header::ALLOW),
            Some(allow.as_str()),
            "{label}"
        );
    }
}
