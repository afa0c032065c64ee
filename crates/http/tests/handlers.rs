//! Handler tests through the production route table (`http_api::configure`), with every port
//! mocked. Each test arranges the mocks, sends requests as a client would, and checks the status,
//! the JSON body and what reached (or did not reach) the repositories.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::web::Bytes;
use actix_web::App;
use anyhow::anyhow;
use domain::{
    Description, DeviceGroup, GroupChanges, GroupName, GroupSlug, MaintenanceWindow,
    NewDeviceGroup, NewMaintenanceWindow, Recurrence, ScopeLabel, TenantId, Timestamp,
    WindowChanges, WindowDefinition, WindowError, WindowName, WindowSchedule, WindowSlug,
};
use http_api::{AppState, Authenticator};
use ports::{
    CreateGroupError, CreateWindowError, LookupError, MockDeviceGroupRepository, MockHealthProbe,
    MockMaintenanceWindowRepository, StoreError, UpdateGroupError, UpdateWindowError,
};
use serde_json::{json, Value};
use time::macros::datetime;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Helpers: tokens, the app, requests, answers, domain values

const SECRET: &[u8] = b"handler-tests-secret-of-at-least-32-bytes";
const TENANT: &str = "tenant-a";
const GROUPS: &str = "/customer/device-groups";
const WINDOWS: &str = "/customer/maintenance-windows";

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn token_for(tenant: &str) -> String {
    http_api::auth::issue_token(SECRET, "alice", tenant, &["admin".into()], now_unix(), 3600)
        .expect("token signs")
}

fn bearer(token: &str) -> (header::HeaderName, String) {
    (header::AUTHORIZATION, format!("Bearer {token}"))
}

/// The three mocked ports. Methods without an expectation panic when called.
struct Mocks {
    groups: MockDeviceGroupRepository,
    windows: MockMaintenanceWindowRepository,
    health: MockHealthProbe,
}

impl Mocks {
    fn new() -> Self {
        Self {
            groups: MockDeviceGroupRepository::new(),
            windows: MockMaintenanceWindowRepository::new(),
            health: MockHealthProbe::new(),
        }
    }

    /// Mocks that fail the test if any port method is called at all.
    fn untouchable() -> Self {
        let mut m = Self::new();
        m.groups.expect_list_groups().never();
        m.groups.expect_create_group().never();
        m.groups.expect_get_group().never();
        m.groups.expect_update_group().never();
        m.groups.expect_delete_group().never();
        m.windows.expect_list_windows().never();
        m.windows.expect_create_window().never();
        m.windows.expect_get_window().never();
        m.windows.expect_update_window().never();
        m.windows.expect_delete_window().never();
        m.health.expect_check().never();
        m
    }

    fn into_state(self) -> AppState {
        AppState {
            groups: Arc::new(self.groups),
            windows: Arc::new(self.windows),
            health: Arc::new(self.health),
            authenticator: Authenticator::new(SECRET),
        }
    }
}

/// What the client got back.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    async fn read(res: ServiceResponse<BoxBody>) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let body = test::read_body(res).await;
        Self {
            status,
            headers,
            body,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    fn detail(&self) -> String {
        self.json()["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no string `detail` in {}", self.text()))
            .to_owned()
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Builds the app exactly as production does and sends `requests` in order. The mocks are
/// dropped (and their call counts verified) before this returns.
async fn call_all(mocks: Mocks, requests: Vec<TestRequest>) -> Vec<Answer> {
    let state = mocks.into_state();
    let app = test::init_service(App::new().configure(http_api::configure(&state))).await;
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        let res = test::call_service(&app, request.to_request()).await;
        answers.push(Answer::read(res).await);
    }
    answers
}

async fn call(mocks: Mocks, request: TestRequest) -> Answer {
    call_all(mocks, vec![request])
        .await
        .pop()
        .expect("one answer")
}

fn authed(request: TestRequest) -> TestRequest {
    request.insert_header(bearer(&token_for(TENANT)))
}

fn get(uri: &str) -> TestRequest {
    authed(TestRequest::get().uri(uri))
}

fn post(uri: &str, body: &Value) -> TestRequest {
    authed(TestRequest::post().uri(uri).set_json(body))
}

fn post_raw(uri: &str, body: impl Into<Bytes>) -> TestRequest {
    authed(
        TestRequest::post()
            .uri(uri)
            .insert_header(header::ContentType::json())
            .set_payload(body),
    )
}

fn patch(uri: &str, body: &Value) -> TestRequest {
    authed(TestRequest::patch().uri(uri).set_json(body))
}

fn delete(uri: &str) -> TestRequest {
    authed(TestRequest::delete().uri(uri))
}

fn is_tenant_a(tenant: &TenantId) -> bool {
    tenant.as_str() == TENANT
}

/// `prefix` followed by exactly 8 lowercase hex digits.
fn is_generated_slug(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 8 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    })
}

fn at(t: time::OffsetDateTime) -> Timestamp {
    Timestamp::new(t).expect("in range")
}

fn stored_group(group_id: &str, name: &str) -> DeviceGroup {
    let now = Timestamp::now();
    DeviceGroup {
        id: Uuid::new_v4(),
        group_id: GroupSlug::parse(group_id).expect("valid slug"),
        name: GroupName::parse(name).expect("valid name"),
        description: Some(Description::parse("Sensors in the lobby").expect("valid")),
        member_count: 3,
        created_at: now,
        updated_at: now,
    }
}

/// The group a store would return after saving `new`.
fn saved_group(new: NewDeviceGroup) -> DeviceGroup {
    let now = Timestamp::now();
    DeviceGroup {
        id: new.id,
        group_id: new.group_id,
        name: new.name,
        description: new.description,
        member_count: 0,
        created_at: now,
        updated_at: now,
    }
}

fn nightly_definition() -> WindowDefinition {
    WindowDefinition {
        name: WindowName::parse("Nightly patching").expect("valid name"),
        schedule: WindowSchedule::new(
            at(datetime!(2025-10-20 22:00 UTC)),
            Some(at(datetime!(2025-10-21 02:00 UTC))),
        )
        .expect("valid schedule"),
        recurring: Some(Recurrence::new(Some(&[1, 2, 3]), 2, 4).expect("valid recurrence")),
        site_ids: Some(vec![ScopeLabel::parse("site-1").expect("valid label")]),
        device_types: None,
        enabled: true,
    }
}

fn stored_window(window_id: &str) -> MaintenanceWindow {
    let now = Timestamp::now();
    MaintenanceWindow {
        window_id: WindowSlug::parse(window_id).expect("valid slug"),
        definition: nightly_definition(),
        created_at: now,
        updated_at: now,
    }
}

/// The window a store would return after saving `new`.
fn saved_window(new: NewMaintenanceWindow) -> MaintenanceWindow {
    let now = Timestamp::now();
    MaintenanceWindow {
        window_id: new.window_id,
        definition: new.definition,
        created_at: now,
        updated_at: now,
    }
}

fn nightly_body() -> Value {
    json!({
        "name": "Nightly patching",
        "starts_at": "2025-10-20T22:00:00Z",
        "ends_at": "2025-10-21T02:00:00Z",
    })
}

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
        .returning(|_| Ok(vec![stored_group("grp-lobby", "Lobby")]));
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, new| Ok(saved_group(new)));
    mocks
        .groups
        .expect_get_group()
        .times(1)
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby")));
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(|_, _, _| Ok(stored_group("grp-lobby", "Hall")));
    mocks
        .groups
        .expect_delete_group()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .windows
        .expect_list_windows()
        .times(1)
        .returning(|_| Ok(vec![stored_window("mw-0000abcd")]));
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .returning(|_, new| Ok(saved_window(new)));
    mocks
        .windows
        .expect_get_window()
        .times(1)
        .returning(|_, _| Ok(stored_window("mw-0000abcd")));
    mocks
        .windows
        .expect_update_window()
        .times(1)
        .returning(|_, _, _| Ok(stored_window("mw-0000abcd")));
    mocks
        .windows
        .expect_delete_window()
        .times(1)
        .returning(|_, _| Ok(()));
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
    assert!(doc["paths"][GROUPS].is_object());
    assert!(doc["paths"][WINDOWS].is_object());
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

    // Act
    let answers = call_all(
        mocks,
        vec![
            authed(TestRequest::put().uri(GROUPS)),
            authed(TestRequest::post().uri("/customer/maintenance-windows/mw-0000abcd")),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer.detail(), "Method Not Allowed");
    }
}

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
    assert_eq!(answer.detail(), "Invalid token");
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
        .withf(|tenant| tenant.as_str() == "tenant-b")
        .times(1)
        .returning(|_| Ok(vec![]));
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
// Device groups: list, get

#[actix_web::test]
async fn listing_groups_returns_the_tenants_groups_and_their_total() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_groups()
        .withf(is_tenant_a)
        .times(1)
        .returning(|_| {
            Ok(vec![
                stored_group("grp-hall", "Hall"),
                stored_group("grp-lobby", "Lobby"),
            ])
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
}

#[actix_web::test]
async fn getting_a_group_returns_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_get_group()
        .withf(|tenant, group_id| is_tenant_a(tenant) && group_id.as_str() == "grp-lobby")
        .times(1)
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby")));

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
}

#[actix_web::test]
async fn getting_an_unknown_group_answers_404_group_not_found() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_get_group()
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));

    // Act
    let answer = call(mocks, get("/customer/device-groups/grp-nothing")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Group not found"}));
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
        .withf(|tenant, new| {
            is_tenant_a(tenant)
                && is_generated_slug(new.group_id.as_str(), "grp-")
                && new.name.as_str() == "Lobby"
                && new.description.is_none()
        })
        .times(1)
        .returning(|_, new| Ok(saved_group(new)));

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
        .withf(|_, new| is_generated_slug(new.group_id.as_str(), "grp-"))
        .times(1)
        .returning(|_, new| Ok(saved_group(new)));

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
        .withf(|tenant, new| {
            is_tenant_a(tenant)
                && new.group_id.as_str() == "lobby-sensors"
                && new.name.as_str() == "Lobby"
                && new.description.as_ref().map(Description::as_str) == Some("Ground floor")
        })
        .times(1)
        .returning(|_, new| Ok(saved_group(new)));

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
        .returning(|_, new| Err(CreateGroupError::GroupIdTaken(new.group_id)));

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
        .returning(|_, new| Err(CreateGroupError::NameTaken(new.name)));

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
        .returning(move |_, new| {
            first.lock().unwrap().push(new.group_id.as_str().to_owned());
            Err(CreateGroupError::GroupIdTaken(new.group_id))
        });
    let second = Arc::clone(&seen);
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(move |_, new| {
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
        .returning(|_, new| Err(CreateGroupError::GroupIdTaken(new.group_id)));

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
        .withf(move |_, new| new.name.as_str() == expected)
        .times(1)
        .returning(|_, new| Ok(saved_group(new)));

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
        .withf(|tenant, group_id, changes| {
            is_tenant_a(tenant)
                && group_id.as_str() == "grp-lobby"
                && *changes
                    == GroupChanges {
                        name: None,
                        description: Some(None),
                    }
        })
        .times(1)
        .returning(|_, _, _| {
            let mut group = stored_group("grp-lobby", "Lobby");
            group.description = None;
            Ok(group)
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
        .withf(|tenant, group_id, changes| {
            is_tenant_a(tenant)
                && group_id.as_str() == "grp-lobby"
                && changes.name.as_ref().map(GroupName::as_str) == Some("Hall")
                && changes.description.is_none()
        })
        .times(1)
        .returning(|_, _, _| Ok(stored_group("grp-lobby", "Hall")));

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
async fn patching_an_unknown_group_answers_404_group_not_found() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(|_, _, _| Err(UpdateGroupError::NotFound));

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/device-groups/grp-nothing",
            &json!({"name": "Hall"}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Group not found"}));
}

#[actix_web::test]
async fn patching_a_group_to_a_taken_name_answers_409_naming_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(|_, _, changes| {
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
        .withf(|tenant, group_id| is_tenant_a(tenant) && group_id.as_str() == "grp-lobby")
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

#[actix_web::test]
async fn deleting_an_unknown_group_answers_404_group_not_found() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_delete_group()
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));

    // Act
    let answer = call(mocks, delete("/customer/device-groups/grp-nothing")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Group not found"}));
}

// ---------------------------------------------------------------------------------------------
// Maintenance windows: create

#[actix_web::test]
async fn creating_a_window_generates_an_mw_slug_and_enables_it_by_default() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .withf(|tenant, new| {
            let d = &new.definition;
            is_tenant_a(tenant)
                && is_generated_slug(new.window_id.as_str(), "mw-")
                && d.name.as_str() == "Nightly patching"
                && d.schedule.starts_at() == at(datetime!(2025-10-20 22:00 UTC))
                && d.schedule.ends_at() == Some(at(datetime!(2025-10-21 02:00 UTC)))
                && d.recurring.is_none()
                && d.site_ids.is_none()
                && d.device_types.is_none()
                && d.enabled
        })
        .times(1)
        .returning(|_, new| Ok(saved_window(new)));

    // Act
    let answer = call(mocks, post(WINDOWS, &nightly_body())).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let window_id = body["window_id"].as_str().expect("window_id");
    assert!(is_generated_slug(window_id, "mw-"), "{window_id}");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["name"], "Nightly patching");
    assert_eq!(body["starts_at"], "2025-10-20T22:00:00Z");
    assert_eq!(body["ends_at"], "2025-10-21T02:00:00Z");
    assert_eq!(body["recurring"], Value::Null);
    assert_eq!(body["site_ids"], Value::Null);
}

#[actix_web::test]
async fn creating_a_window_passes_recurrence_scope_and_offsets_normalised_to_utc() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .withf(|_, new| {
            let d = &new.definition;
            let recurring = d.recurring.as_ref();
            d.schedule.starts_at() == at(datetime!(2025-10-20 20:00 UTC))
                && d.schedule.ends_at().is_none()
                && recurring.and_then(Recurrence::days) == Some(&[1, 5][..])
                && recurring.map(Recurrence::start_hour) == Some(2)
                && recurring.map(Recurrence::end_hour) == Some(4)
                && d.site_ids
                    .as_ref()
                    .is_some_and(|s| s.len() == 1 && s[0].as_str() == "site-1")
                && d.device_types
                    .as_ref()
                    .is_some_and(|t| t.len() == 1 && t[0].as_str() == "thermostat")
                && !d.enabled
        })
        .times(1)
        .returning(|_, new| Ok(saved_window(new)));

    // Act
    let answer = call(
        mocks,
        post(
            WINDOWS,
            &json!({
                "name": "Weekdays",
                "starts_at": "2025-10-20T22:00:00+02:00",
                "recurring": {"dow": [5, 1], "start_hour": 2, "end_hour": 4},
                "site_ids": ["site-1"],
                "device_types": ["thermostat"],
                "enabled": false,
            }),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["starts_at"], "2025-10-20T20:00:00Z");
    assert_eq!(body["ends_at"], Value::Null);
    assert_eq!(
        body["recurring"],
        json!({"dow": [1, 5], "start_hour": 2, "end_hour": 4})
    );
    assert_eq!(body["site_ids"], json!(["site-1"]));
    assert_eq!(body["enabled"], false);
}

#[actix_web::test]
async fn a_generated_window_id_that_is_taken_is_retried() {
    // Arrange
    let mut mocks = Mocks::new();
    let mut sequence = mockall::Sequence::new();
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, new| Err(CreateWindowError::WindowIdTaken(new.window_id)));
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, new| Ok(saved_window(new)));

    // Act
    let answer = call(mocks, post(WINDOWS, &nightly_body())).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

async fn refused_window(body: Value) -> Answer {
    let answer = call(Mocks::untouchable(), post(WINDOWS, &body)).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text()
    );
    answer
}

#[actix_web::test]
async fn a_window_that_ends_when_it_starts_is_refused_with_422_naming_ends_at() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "ends_at": "2025-10-20T22:00:00Z",
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("ends_at:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_window_that_ends_before_it_starts_is_refused_with_422_naming_ends_at() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "ends_at": "2025-10-20T21:00:00Z",
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("ends_at:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_window_start_that_is_no_date_is_refused_with_422_naming_starts_at() {
    // Arrange
    let body = json!({"name": "Nightly", "starts_at": "tonight"});

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("starts_at:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_recurring_rule_with_an_unknown_key_is_refused_with_422_naming_it() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "recurring": {"start_hour": 1, "end_hour": 2, "every": "day"},
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("recurring.every:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_recurring_day_of_week_7_is_refused_with_422_naming_the_entry() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "recurring": {"dow": [1, 7], "start_hour": 1, "end_hour": 2},
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("recurring.dow[1]:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_recurring_start_hour_24_is_refused_with_422_naming_it() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "recurring": {"start_hour": 24, "end_hour": 24},
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("recurring.start_hour:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_recurring_end_hour_0_is_refused_with_422_naming_it() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "recurring": {"start_hour": 0, "end_hour": 0},
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("recurring.end_hour:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn an_empty_site_id_is_refused_with_422_naming_its_index() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "site_ids": [""],
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("site_ids[0]: "),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn an_empty_window_name_is_refused_with_422() {
    // Arrange
    let body = json!({"name": " ", "starts_at": "2025-10-20T22:00:00Z"});

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(answer.detail().starts_with("name:"), "{}", answer.detail());
}

// ---------------------------------------------------------------------------------------------
// Maintenance windows: list, get, update, delete

#[actix_web::test]
async fn listing_windows_returns_the_tenants_windows_and_their_total() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_list_windows()
        .withf(is_tenant_a)
        .times(1)
        .returning(|_| Ok(vec![stored_window("mw-0000abcd")]));

    // Act
    let answer = call(mocks, get(WINDOWS)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["total"], 1);
    assert_eq!(body["windows"][0]["window_id"], "mw-0000abcd");
    assert_eq!(
        body["windows"][0]["recurring"],
        json!({"dow": [1, 2, 3], "start_hour": 2, "end_hour": 4})
    );
    assert_eq!(body["windows"][0]["site_ids"], json!(["site-1"]));
    assert_eq!(body["windows"][0]["device_types"], Value::Null);
}

#[actix_web::test]
async fn getting_a_window_returns_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .withf(|tenant, window_id| is_tenant_a(tenant) && window_id.as_str() == "mw-0000abcd")
        .times(1)
        .returning(|_, _| Ok(stored_window("mw-0000abcd")));

    // Act
    let answer = call(mocks, get("/customer/maintenance-windows/mw-0000abcd")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["window_id"], "mw-0000abcd");
    assert_eq!(body["name"], "Nightly patching");
    assert_eq!(body["starts_at"], "2025-10-20T22:00:00Z");
    assert_eq!(body["ends_at"], "2025-10-21T02:00:00Z");
    assert_eq!(body["enabled"], true);
}

#[actix_web::test]
async fn getting_an_unknown_window_answers_404_window_not_found() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));

    // Act
    let answer = call(mocks, get("/customer/maintenance-windows/mw-00000000")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Window not found"}));
}

#[actix_web::test]
async fn patching_a_window_with_no_fields_answers_400_without_reaching_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch("/customer/maintenance-windows/mw-0000abcd", &json!({})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json(), json!({"detail": "No fields to update"}));
}

#[actix_web::test]
async fn patching_a_window_end_to_null_asks_the_repository_to_clear_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_update_window()
        .withf(|tenant, window_id, changes| {
            is_tenant_a(tenant)
                && window_id.as_str() == "mw-0000abcd"
                && *changes
                    == WindowChanges {
                        ends_at: Some(None),
                        ..WindowChanges::default()
                    }
        })
        .times(1)
        .returning(|_, _, _| {
            let mut window = stored_window("mw-0000abcd");
            window.definition.schedule =
                WindowSchedule::new(window.definition.schedule.starts_at(), None)
                    .expect("open-ended");
            Ok(window)
        });

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"ends_at": null}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["ends_at"], Value::Null);
}

#[actix_web::test]
async fn patching_a_window_passes_every_given_field_and_clears_the_nulled_ones() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_update_window()
        .withf(|_, _, changes| {
            *changes
                == WindowChanges {
                    name: Some(WindowName::parse("Renamed").expect("valid")),
                    starts_at: Some(at(datetime!(2025-11-01 00:00 UTC))),
                    ends_at: None,
                    recurring: Some(None),
                    site_ids: Some(None),
                    device_types: Some(Some(vec![ScopeLabel::parse("meter").expect("valid")])),
                    enabled: Some(false),
                }
        })
        .times(1)
        .returning(|_, _, _| Ok(stored_window("mw-0000abcd")));

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({
                "name": "Renamed",
                "starts_at": "2025-11-01T00:00:00Z",
                "recurring": null,
                "site_ids": null,
                "device_types": ["meter"],
                "enabled": false,
            }),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[actix_web::test]
async fn patching_a_window_enabled_to_null_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"enabled": null}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.detail(), "enabled: must not be null");
}

#[actix_web::test]
async fn patching_a_window_with_an_invalid_recurrence_is_refused_with_422_before_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"recurring": {"start_hour": 5, "end_hour": 5}}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("recurring.end_hour:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_window_patch_that_makes_the_merged_window_invalid_answers_422_naming_ends_at() {
    // Arrange: the store merges and finds the end no longer after the start.
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_update_window()
        .times(1)
        .returning(|_, _, _| Err(UpdateWindowError::Invalid(WindowError::EndsNotAfterStart)));

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"starts_at": "2030-01-01T00:00:00Z"}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("ends_at: "),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn patching_an_unknown_window_answers_404_window_not_found() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_update_window()
        .times(1)
        .returning(|_, _, _| Err(UpdateWindowError::NotFound));

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-00000000",
            &json!({"enabled": false}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Window not found"}));
}

#[actix_web::test]
async fn deleting_a_window_answers_its_window_id_and_deleted_true() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_delete_window()
        .withf(|tenant, window_id| is_tenant_a(tenant) && window_id.as_str() == "mw-0000abcd")
        .times(1)
        .returning(|_, _| Ok(()));

    // Act
    let answer = call(mocks, delete("/customer/maintenance-windows/mw-0000abcd")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({"window_id": "mw-0000abcd", "deleted": true})
    );
}

#[actix_web::test]
async fn deleting_an_unknown_window_answers_404_window_not_found() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_delete_window()
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));

    // Act
    let answer = call(mocks, delete("/customer/maintenance-windows/mw-00000000")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Window not found"}));
}

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
        .returning(|_| Err(StoreError::Unavailable(anyhow!("pool exhausted"))));
    mocks
        .groups
        .expect_create_group()
        .times(1)
        .returning(|_, _| {
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
        .returning(|_, _, _| {
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
        .returning(|_| Err(StoreError::Unknown(anyhow!("secret SQL detail"))));
    mocks
        .groups
        .expect_update_group()
        .times(1)
        .returning(|_, _, _| {
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
        .returning(|_, _| {
            Err(CreateWindowError::Store(StoreError::Unknown(anyhow!(
                "secret SQL detail"
            ))))
        });
    mocks
        .windows
        .expect_list_windows()
        .times(1)
        .returning(|_| Err(StoreError::Unknown(anyhow!("secret SQL detail"))));

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
        .returning(|_, new| Err(CreateWindowError::WindowIdTaken(new.window_id)));

    // Act
    let answer = call(mocks, post(WINDOWS, &nightly_body())).await;

    // Assert
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!answer.text().contains("mw-"), "{}", answer.text());
}
