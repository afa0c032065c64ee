//! What every handler test shares: tokens, the mocked ports, the app built as production builds it,
//! requests and answers, and the domain values the mocks return.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::web::Bytes;
use actix_web::App;
use domain::{
    Actor, Description, Device, DeviceGroup, DeviceName, DeviceSpec, DeviceState, DeviceStatus,
    GroupName, GroupSlug, ListQuery, MaintenanceWindow, MemberAlerts, NewDevice, NewDeviceGroup,
    NewMaintenanceWindow, Page, Reading, ReadingPoint, ReadingValue, Recurrence, ScopeLabel,
    TenantId, Thresholds, Timestamp, Unit, WindowDefinition, WindowName, WindowSchedule,
    WindowSlug,
};
use http_api::{AppState, Authenticator};
use ports::{
    GroupDetail, GroupKey, Member, MockAlertRepository, MockDeviceGroupRepository,
    MockDeviceRepository, MockHealthProbe, MockMaintenanceWindowRepository, MockReadingRepository,
};
use serde_json::{json, Value};
use time::macros::datetime;
use uuid::Uuid;

pub const SECRET: &[u8] = b"handler-tests-secret-of-at-least-32-bytes";
pub const TENANT: &str = "tenant-a";
pub const GROUPS: &str = "/customer/device-groups";
pub const WINDOWS: &str = "/customer/maintenance-windows";
pub const DEVICES: &str = "/api/devices";
pub const READINGS: &str = "/api/readings";
pub const API_GROUPS: &str = "/api/groups";
pub const FORBIDDEN: &str = "Access forbidden. Required roles: admin, owner";
/// The `sub` of every token the helpers issue, so the actor of every write they send.
pub const SUB: &str = "alice";
/// Who created, and who last changed, the stored entities of the fixtures: neither is [`SUB`],
/// so that a response showing them can only have taken them from the entity.
pub const CREATOR: &str = "dave";
pub const EDITOR: &str = "erin";

/// Fixed ids, so that paths, bodies and expectations can name the same device or group.
pub const DEVICE_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const DEVICE_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
pub const DEVICE_C: &str = "cccccccc-0000-4000-8000-000000000003";
pub const DEVICE_D: &str = "dddddddd-0000-4000-8000-000000000004";
pub const GROUP_ID: &str = "99999999-0000-4000-8000-000000000009";

pub fn uuid(value: &str) -> Uuid {
    Uuid::parse_str(value).expect("valid UUID")
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

pub fn token_with_roles(tenant: &str, roles: &[&str]) -> String {
    token_of(SUB, tenant, roles)
}

/// A token of `sub` for `tenant` carrying exactly `roles`.
pub fn token_of(sub: &str, tenant: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    http_api::auth::issue_token(SECRET, sub, tenant, &roles, now_unix(), 3600).expect("token signs")
}

pub fn token_for(tenant: &str) -> String {
    token_with_roles(tenant, &["admin"])
}

pub fn bearer(token: &str) -> (header::HeaderName, String) {
    (header::AUTHORIZATION, format!("Bearer {token}"))
}

/// The mocked ports. Methods without an expectation panic when called.
pub struct Mocks {
    pub groups: MockDeviceGroupRepository,
    pub devices: MockDeviceRepository,
    pub readings: MockReadingRepository,
    pub windows: MockMaintenanceWindowRepository,
    pub alerts: MockAlertRepository,
    pub health: MockHealthProbe,
    pub idempotency: ports::MockIdempotencyStore,
    /// The tenant revisions of a store that keeps them; none (as the embedded store): the
    /// group views keep nothing.
    pub revisions: Option<ports::MockTenantRevisions>,
    /// The event log the stream reads; none: a log without events.
    pub event_log: Option<ports::events::MockEventLog>,
    pub stream: app::events::StreamSettings,
    pub stream_response: http_api::events::StreamResponse,
}

impl Mocks {
    /// Mocks of a store that keeps no revisions (as the embedded one), so nothing is kept
    /// between requests, and where no window covers any device (device views ask).
    pub fn new() -> Self {
        let mut m = Self::bare();
        m.windows
            .expect_covering_windows()
            .returning(|_, _, _| Ok(std::collections::HashMap::new()));
        m
    }

    /// Mocks expecting nothing yet.
    pub fn bare() -> Self {
        Self {
            groups: MockDeviceGroupRepository::new(),
            devices: MockDeviceRepository::new(),
            readings: MockReadingRepository::new(),
            windows: MockMaintenanceWindowRepository::new(),
            alerts: MockAlertRepository::new(),
            health: MockHealthProbe::new(),
            idempotency: ports::MockIdempotencyStore::new(),
            revisions: None,
            event_log: None,
            stream: app::events::StreamSettings::default(),
            stream_response: http_api::events::StreamResponse::default(),
        }
    }

    /// Mocks that fail the test if any port method is called at all.
    pub fn untouchable() -> Self {
        let mut m = Self::bare();
        m.groups.expect_list_groups().never();
        m.groups.expect_create_group().never();
        m.groups.expect_get_group().never();
        m.groups.expect_get_group_row().never();
        m.groups.expect_list_members().never();
        m.groups.expect_update_group().never();
        m.groups.expect_delete_group().never();
        m.groups.expect_add_member().never();
        m.groups.expect_remove_member().never();
        m.groups.expect_group_readings().never();
        m.devices.expect_list_devices().never();
        m.devices.expect_create_device().never();
        m.devices.expect_get_device().never();
        m.devices.expect_update_device().never();
        m.devices.expect_delete_device().never();
        m.devices.expect_groups_of_device().never();
        m.devices.expect_groups_reaching_device().never();
        m.readings.expect_ingest().never();
        m.readings.expect_device_readings().never();
        m.windows.expect_list_windows().never();
        m.windows.expect_create_window().never();
        m.windows.expect_get_window().never();
        m.windows.expect_update_window().never();
        m.windows.expect_delete_window().never();
        m.windows.expect_window_devices().never();
        m.windows.expect_covering_windows().never();
        m.alerts.expect_list_alerts().never();
        m.alerts.expect_get_alert().never();
        m.alerts.expect_acknowledge().never();
        m.alerts.expect_unacknowledge().never();
        m.alerts.expect_muted_by_window().never();
        m.health.expect_check().never();
        m.idempotency.expect_claim().never();
        m.idempotency.expect_answer().never();
        m.idempotency.expect_release().never();
        m
    }

    pub fn into_state(self) -> AppState {
        let groups: Arc<dyn ports::DeviceGroupRepository> = Arc::new(self.groups);
        let event_log: Arc<dyn ports::EventLog> = match self.event_log {
            Some(log) => Arc::new(log),
            None => Arc::new(http_api::events::NoEvents),
        };
        AppState {
            events: app::events::EventHub::new(
                event_log,
                groups.clone(),
                http_api::events::renderer(),
                Arc::new(http_api::events::TokioRuntime),
                self.stream,
            ),
            stream_response: self.stream_response,
            groups,
            devices: Arc::new(self.devices),
            readings: Arc::new(self.readings),
            windows: Arc::new(self.windows),
            alerts: Arc::new(self.alerts),
            health: Arc::new(self.health),
            idempotency: Arc::new(self.idempotency),
            authenticator: Authenticator::new(SECRET),
            group_views: Arc::new(http_api::group_views::GroupViews::new(
                self.revisions
                    .map(|r| Arc::new(r) as Arc<dyn ports::TenantRevisions>),
                http_api::group_views::DEFAULT_CAPACITY,
            )),
            readiness: http_api::readiness::Readiness::default(),
            ingest: http_api::IngestSettings::default(),
            webhooks: Arc::new(store_memory_free_webhooks()),
            webhook_targets: http_api::WebhookTargets::default(),
        }
    }
}

/// What the client got back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub async fn read(res: ServiceResponse<BoxBody>) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let body = test::read_body(res).await;
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn detail(&self) -> String {
        self.json()["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no string `detail` in {}", self.text()))
            .to_owned()
    }

    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Builds the app exactly as production does and sends `requests` in order. The mocks are
/// dropped (and their call counts verified) before this returns.
pub async fn call_all(mocks: Mocks, requests: Vec<TestRequest>) -> Vec<Answer> {
    let state = mocks.into_state();
    let app = test::init_service(App::new().configure(http_api::configure(&state))).await;
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        let res = test::call_service(&app, request.to_request()).await;
        answers.push(Answer::read(res).await);
    }
    answers
}

pub async fn call(mocks: Mocks, request: TestRequest) -> Answer {
    call_all(mocks, vec![request])
        .await
        .pop()
        .expect("one answer")
}

/// `request` with a tenant-a token carrying exactly `roles`.
pub fn as_roles(roles: &[&str], request: TestRequest) -> TestRequest {
    request.insert_header(bearer(&token_with_roles(TENANT, roles)))
}

/// `request` as an admin of tenant-a.
pub fn authed(request: TestRequest) -> TestRequest {
    request.insert_header(bearer(&token_for(TENANT)))
}

pub fn get(uri: &str) -> TestRequest {
    authed(TestRequest::get().uri(uri))
}

pub fn post(uri: &str, body: &Value) -> TestRequest {
    authed(TestRequest::post().uri(uri).set_json(body))
}

pub fn post_raw(uri: &str, body: impl Into<Bytes>) -> TestRequest {
    authed(
        TestRequest::post()
            .uri(uri)
            .insert_header(header::ContentType::json())
            .set_payload(body),
    )
}

pub fn put(uri: &str, body: &Value) -> TestRequest {
    authed(TestRequest::put().uri(uri).set_json(body))
}

pub fn put_empty(uri: &str) -> TestRequest {
    authed(TestRequest::put().uri(uri))
}

pub fn patch(uri: &str, body: &Value) -> TestRequest {
    authed(TestRequest::patch().uri(uri).set_json(body))
}

pub fn delete(uri: &str) -> TestRequest {
    authed(TestRequest::delete().uri(uri))
}

pub fn actor(sub: &str) -> Actor {
    Actor::parse(sub).expect("valid subject")
}

pub fn is_tenant_a(tenant: &TenantId) -> bool {
    tenant.as_str() == TENANT
}

/// A whole list as one page: `total` is the number of items.
pub fn page<T>(items: Vec<T>) -> Page<T> {
    let total = items.len() as u64;
    Page { items, total }
}

/// Whether a list was asked for in full: no filter, no limit, no offset.
pub fn is_all(query: &ListQuery) -> bool {
    *query == ListQuery::all()
}

/// Whether the customer API addressed the group by this slug.
pub fn is_slug(key: &GroupKey, slug: &str) -> bool {
    matches!(key, GroupKey::Slug(s) if s.as_str() == slug)
}

/// Whether the Group API addressed the group by this UUID.
pub fn is_id(key: &GroupKey, id: &str) -> bool {
    *key == GroupKey::Id(uuid(id))
}

/// `prefix` followed by exactly 8 lowercase hex digits.
pub fn is_generated_slug(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 8 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    })
}

pub fn at(t: time::OffsetDateTime) -> Timestamp {
    Timestamp::new(t).expect("in range")
}

/// Whether `since` lies `hours` before now, give or take a minute.
pub fn is_hours_ago(since: Timestamp, hours: i64) -> bool {
    let expected = Timestamp::now().get() - time::Duration::hours(hours);
    (since.get() - expected).abs() < time::Duration::minutes(1)
}

pub fn stored_group(group_id: &str, name: &str) -> DeviceGroup {
    let now = Timestamp::now();
    DeviceGroup {
        filter: None,
        id: Uuid::new_v4(),
        group_id: GroupSlug::parse(group_id).expect("valid slug"),
        name: GroupName::parse(name).expect("valid name"),
        description: Some(Description::parse("Sensors in the lobby").expect("valid")),
        member_count: 3,
        created_at: now,
        updated_at: now,
        created_by: actor(CREATOR),
        updated_by: actor(EDITOR),
        parent_id: None,
    }
}

/// A stored group without members, as `get_group` and `update_group` return it.
pub fn stored_detail(group_id: &str, name: &str) -> GroupDetail {
    GroupDetail {
        group: stored_group(group_id, name),
        members: Vec::new(),
        windows: Vec::new(),
    }
}

/// A stored group of the Group API (UUID [`GROUP_ID`]) with `members`.
pub fn api_group(members: Vec<Member>) -> GroupDetail {
    let mut group = stored_group("grp-0000abcd", "Building A");
    group.id = uuid(GROUP_ID);
    group.member_count = members.len() as u64;
    GroupDetail {
        group,
        members,
        windows: Vec::new(),
    }
}

/// The group a store would return after saving `new`; each member a fresh sensor.
pub fn saved_group(new: NewDeviceGroup) -> GroupDetail {
    let now = Timestamp::now();
    let members: Vec<Member> = new
        .members
        .iter()
        .enumerate()
        .map(|(i, id)| Member {
            device: device(*id, &format!("Sensor {}", i + 1), Thresholds::default()),
            alerts: MemberAlerts::default(),
            window_groups: Vec::new(),
        })
        .collect();
    GroupDetail {
        group: DeviceGroup {
            filter: new.filter,
            id: new.id,
            group_id: new.group_id,
            name: new.name,
            description: new.description,
            member_count: members.len() as u64,
            created_at: now,
            updated_at: now,
            created_by: actor(SUB),
            updated_by: actor(SUB),
            parent_id: None,
        },
        members,
        windows: Vec::new(),
    }
}

/// Warning outside 0..30, critical outside -10..40.
pub fn office_thresholds() -> Thresholds {
    Thresholds::new(Some(-10.0), Some(0.0), Some(30.0), Some(40.0)).expect("ordered")
}

pub fn device(id: Uuid, name: &str, thresholds: Thresholds) -> Device {
    Device {
        id,
        spec: DeviceSpec {
            name: DeviceName::parse(name).expect("valid name"),
            unit: Unit::parse("°C").expect("valid unit"),
            status: DeviceStatus::Connected,
            site_id: Some(ScopeLabel::parse("site-1").expect("valid label")),
            device_type: Some(ScopeLabel::parse("thermostat").expect("valid label")),
            thresholds,
            stale_after: None,
            labels: domain::Labels::none(),
        },
        state: DeviceState::default(),
        created_at: at(datetime!(2025-10-01 08:00 UTC)),
        updated_at: at(datetime!(2025-10-02 09:30 UTC)),
        created_by: actor(CREATOR),
        updated_by: actor(EDITOR),
    }
}

/// The device a store would return after saving `new`.
pub fn saved_device(new: NewDevice) -> Device {
    let now = Timestamp::now();
    Device {
        id: new.id,
        spec: new.spec,
        state: DeviceState::default(),
        created_at: now,
        updated_at: now,
        created_by: actor(SUB),
        updated_by: actor(SUB),
    }
}

/// A member with `thresholds` whose latest reading is `latest`.
pub fn member(id: &str, name: &str, thresholds: Thresholds, latest: Option<f64>) -> Member {
    let mut device = device(uuid(id), name, thresholds);
    if let Some(value) = latest {
        device.state = device
            .state
            .after_reading(
                &thresholds,
                ReadingPoint {
                    timestamp: at(datetime!(2025-10-20 10:00 UTC)),
                    value,
                },
            )
            .expect("first reading");
    }
    Member {
        device,
        alerts: MemberAlerts::default(),
        window_groups: Vec::new(),
    }
}

pub fn reading(device_id: &str, t: time::OffsetDateTime, value: f64) -> Reading {
    Reading {
        device_id: uuid(device_id),
        timestamp: at(t),
        value: ReadingValue::new(value).expect("finite"),
    }
}

pub fn nightly_definition() -> WindowDefinition {
    WindowDefinition {
        labels: None,
        name: WindowName::parse("Nightly patching").expect("valid name"),
        schedule: WindowSchedule::new(
            at(datetime!(2025-10-20 22:00 UTC)),
            Some(at(datetime!(2025-10-21 02:00 UTC))),
        )
        .expect("valid schedule"),
        recurring: Some(Recurrence::new(Some(&[1, 2, 3]), 2, 4).expect("valid recurrence")),
        site_ids: Some(vec![ScopeLabel::parse("site-1").expect("valid label")]),
        device_types: None,
        group_ids: None,
        enabled: true,
    }
}

pub fn stored_window(window_id: &str) -> MaintenanceWindow {
    let now = Timestamp::now();
    MaintenanceWindow {
        window_id: WindowSlug::parse(window_id).expect("valid slug"),
        definition: nightly_definition(),
        created_at: now,
        updated_at: now,
        created_by: actor(CREATOR),
        updated_by: actor(EDITOR),
    }
}

/// The window a store would return after saving `new`.
pub fn saved_window(new: NewMaintenanceWindow) -> MaintenanceWindow {
    let now = Timestamp::now();
    MaintenanceWindow {
        window_id: new.window_id,
        definition: new.definition,
        created_at: now,
        updated_at: now,
        created_by: actor(SUB),
        updated_by: actor(SUB),
    }
}

pub fn nightly_body() -> Value {
    json!({
        "name": "Nightly patching",
        "starts_at": "2025-10-20T22:00:00Z",
        "ends_at": "2025-10-21T02:00:00Z",
    })
}

/// A stored window with `definition`.
pub fn window_of(window_id: &str, definition: WindowDefinition) -> MaintenanceWindow {
    MaintenanceWindow {
        window_id: WindowSlug::parse(window_id).expect("valid slug"),
        definition,
        created_at: at(datetime!(2019-12-01 00:00 UTC)),
        updated_at: at(datetime!(2019-12-01 00:00 UTC)),
        created_by: actor(CREATOR),
        updated_by: actor(EDITOR),
    }
}

/// An enabled window over every device from `starts_at` until `ends_at`, without recurrence.
pub fn plain_definition(
    starts_at: time::OffsetDateTime,
    ends_at: Option<time::OffsetDateTime>,
) -> WindowDefinition {
    WindowDefinition {
        labels: None,
        name: WindowName::parse("Plain").expect("valid name"),
        schedule: WindowSchedule::new(at(starts_at), ends_at.map(at)).expect("valid schedule"),
        recurring: None,
        site_ids: None,
        device_types: None,
        group_ids: None,
        enabled: true,
    }
}

/// Enabled since 2020 without an end or a recurrence: active whenever the test runs.
pub fn always_active() -> WindowDefinition {
    plain_definition(datetime!(2020-01-01 00:00 UTC), None)
}

/// [`always_active`], but disabled.
pub fn disabled_window() -> WindowDefinition {
    WindowDefinition {
        enabled: false,
        ..always_active()
    }
}

/// Enabled, but over since 2021.
pub fn expired_window() -> WindowDefinition {
    plain_definition(
        datetime!(2020-01-01 00:00 UTC),
        Some(datetime!(2021-01-01 00:00 UTC)),
    )
}

/// Enabled, but not starting before 2099.
pub fn future_window() -> WindowDefinition {
    plain_definition(datetime!(2099-01-01 00:00 UTC), None)
}

/// Enabled since 2020 with a daily slot `rule`.
pub fn recurring_since_2020(rule: Recurrence) -> WindowDefinition {
    WindowDefinition {
        recurring: Some(rule),
        ..always_active()
    }
}

/// A daily one-hour slot (UTC) starting two hours after the current hour: it never covers the
/// instant the test runs.
pub fn slot_elsewhere() -> Recurrence {
    let start = (i64::from(Timestamp::now().get().hour()) + 2) % 24;
    Recurrence::new(None, start, start + 1).expect("valid recurrence")
}

/// A slot covering the whole day, every day.
pub fn all_day() -> Recurrence {
    Recurrence::new(None, 0, 24).expect("valid recurrence")
}

/// Windows in every status, as a store lists them.
pub fn windows_in_every_status() -> Vec<MaintenanceWindow> {
    vec![
        window_of("mw-active", always_active()),
        window_of("mw-all-day", recurring_since_2020(all_day())),
        window_of("mw-disabled", disabled_window()),
        window_of(
            "mw-off-and-over",
            WindowDefinition {
                enabled: false,
                ..expired_window()
            },
        ),
        window_of("mw-expired", expired_window()),
        window_of("mw-future", future_window()),
        window_of("mw-elsewhere", recurring_since_2020(slot_elsewhere())),
    ]
}

/// The window ids of a window list answer.
pub fn window_ids(body: &Value) -> Vec<String> {
    body["windows"]
        .as_array()
        .expect("a windows array")
        .iter()
        .map(|w| w["window_id"].as_str().expect("window_id").to_owned())
        .collect()
}

/// The `[starts_at, ends_at]` pairs of an occurrences answer.
pub fn spans(body: &Value) -> Vec<(Value, Value)> {
    body["occurrences"]
        .as_array()
        .expect("an occurrences array")
        .iter()
        .map(|o| (o["starts_at"].clone(), o["ends_at"].clone()))
        .collect()
}

/// One reading as a bulk ingest body lists it.
pub fn reading_json(device_id: &str, timestamp: &str, value: f64) -> Value {
    json!({"device_id": device_id, "timestamp": timestamp, "value": value})
}

/// `value` (an object, or an array of objects) without `keys`: for comparing what an older
/// test states in full while newer fields are checked elsewhere.
pub fn without(value: &Value, keys: &[&str]) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| without(v, keys)).collect()),
        other => other.clone(),
    }
}

/// An alert summary's counts by status and maintenance, without its freshness and alert counts.
pub fn statuses(summary: &Value) -> Value {
    without(summary, &["freshness", "open_alerts", "acknowledged"])
}

/// The handler tests touch no webhook: a mock that expects no call.
fn store_memory_free_webhooks() -> ports::webhooks::MockWebhookRepository {
    ports::webhooks::MockWebhookRepository::new()
}
