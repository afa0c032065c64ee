//! Alerts: the list with its filters and cursor, one alert with its events, acknowledging, a
//! device's history, and a window's report.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use domain::{
    AckMode, AckNote, Acknowledgement, Alert, AlertCursor, AlertEvent, AlertKind, AlertRecord,
    AlertState, DeviceName, EventType, GroupSlug, NewAlertEvent, Severity, Timestamp, WindowSlug,
};
use ports::{AckAlertError, AlertFilter, AlertListError, AlertPage, GroupKey, LookupError};
use serde_json::{json, Value};
use time::macros::datetime;
use uuid::Uuid;

use crate::support::*;

const ALERTS: &str = "/api/alerts";
const ALERT_ID: &str = "eeeeeeee-0000-4000-8000-00000000000e";
const OPERATORS: &str = "Access forbidden. Required roles: operator, admin, owner";

fn slug(value: &str) -> WindowSlug {
    WindowSlug::parse(value).expect("valid slug")
}

/// An open critical threshold alert of device A, muted by `mw-night`, acknowledged by bob
/// until 2099.
fn alert() -> Alert {
    Alert {
        record: AlertRecord {
            id: uuid(ALERT_ID),
            device_id: uuid(DEVICE_A),
            kind: AlertKind::Threshold,
            severity: Severity::Critical,
            peak_severity: Severity::Critical,
            state: AlertState::Open,
            opened_at: at(datetime!(2025-10-20 10:00 UTC)),
            resolved_at: None,
            last_value: Some(45.5),
            suppressed_by: vec![slug("mw-night")],
            acknowledgement: Some(Acknowledgement {
                by: actor("bob"),
                at: at(datetime!(2025-10-20 10:05 UTC)),
                mode: AckMode::Until,
                until: Some(at(datetime!(2099-01-01 00:00 UTC))),
                note: Some(AckNote::parse("on it").expect("valid")),
            }),
        },
        device_name: DeviceName::parse("Hall").expect("valid"),
    }
}

/// A resolved stale alert of device B: no value, no window, no acknowledgement.
fn resolved_stale_alert() -> Alert {
    Alert {
        record: AlertRecord {
            id: Uuid::from_u128(2),
            device_id: uuid(DEVICE_B),
            kind: AlertKind::Stale,
            severity: Severity::Warning,
            peak_severity: Severity::Warning,
            state: AlertState::Resolved,
            opened_at: at(datetime!(2025-10-19 08:00 UTC)),
            resolved_at: Some(at(datetime!(2025-10-19 09:30:00.25 UTC))),
            last_value: None,
            suppressed_by: Vec::new(),
            acknowledgement: None,
        },
        device_name: DeviceName::parse("Lobby").expect("valid"),
    }
}

fn alert_json() -> Value {
    json!({
        "id": ALERT_ID,
        "device_id": DEVICE_A,
        "device_name": "Hall",
        "kind": "threshold",
        "severity": "critical",
        "peak_severity": "critical",
        "state": "open",
        "opened_at": "2025-10-20T10:00:00Z",
        "resolved_at": null,
        "last_value": 45.5,
        "suppressed": true,
        "suppressed_by": ["mw-night"],
        "acknowledgement": {
            "by": "bob",
            "at": "2025-10-20T10:05:00Z",
            "mode": "until",
            "until": "2099-01-01T00:00:00Z",
            "note": "on it",
        },
    })
}

fn page_of(alerts: Vec<Alert>, next: Option<AlertCursor>) -> AlertPage {
    AlertPage { alerts, next }
}

fn next_cursor() -> AlertCursor {
    AlertCursor {
        opened_at: at(datetime!(2025-10-19 08:00:00.123_456 UTC)),
        id: Uuid::from_u128(2),
    }
}

// ---------------------------------------------------------------------------------------------
// The list

#[actix_web::test]
async fn the_list_answers_open_alerts_by_default_with_every_field_and_a_cursor_that_continues_it() {
    // Arrange: the first page ends with a cursor; the second request passes it back.
    let mut mocks = Mocks::new();
    mocks
        .alerts
        .expect_list_alerts()
        .withf(|tenant, q| {
            is_tenant_a(tenant)
                && q.filter
                    == AlertFilter {
                        state: Some(AlertState::Open),
                        ..AlertFilter::default()
                    }
                && q.limit == 100
                && q.after.is_none()
        })
        .times(1)
        .returning(|_, _| {
            Ok(page_of(
                vec![alert(), resolved_stale_alert()],
                Some(next_cursor()),
            ))
        });
    mocks
        .alerts
        .expect_list_alerts()
        .withf(|_, q| q.after == Some(next_cursor()) && q.limit == 2)
        .times(1)
        .returning(|_, _| Ok(page_of(Vec::new(), None)));

    // Act
    let (first, second) = one_then_another(mocks, get(ALERTS), |first| {
        get(&format!("{ALERTS}?cursor={}&limit=2", cursor_of(first)))
    })
    .await;

    // Assert
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let body = first.json();
    assert_eq!(body["alerts"][0], alert_json());
    assert_eq!(
        body["alerts"][1],
        json!({
            "id": "00000000-0000-0000-0000-000000000002",
            "device_id": DEVICE_B,
            "device_name": "Lobby",
            "kind": "stale",
            "severity": "warning",
            "peak_severity": "warning",
            "state": "resolved",
            "opened_at": "2025-10-19T08:00:00Z",
            "resolved_at": "2025-10-19T09:30:00.25Z",
            "last_value": null,
            "suppressed": false,
            "suppressed_by": [],
            "acknowledgement": null,
        })
    );
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(second.json(), json!({"alerts": [], "next_cursor": null}));
}

/// Sends `first`, then the request `then` makes of its answer, to one app built from `mocks`.
async fn one_then_another(
    mocks: Mocks,
    first: TestRequest,
    then: impl FnOnce(&Answer) -> TestRequest,
) -> (Answer, Answer) {
    let state = mocks.into_state();
    let app =
        actix_web::test::init_service(actix_web::App::new().configure(http_api::configure(&state)))
            .await;
    let one = Answer::read(actix_web::test::call_service(&app, first.to_request()).await).await;
    let next = then(&one);
    let two = Answer::read(actix_web::test::call_service(&app, next.to_request()).await).await;
    (one, two)
}

fn cursor_of(answer: &Answer) -> String {
    answer.json()["next_cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("no next_cursor in {}", answer.text()))
        .to_owned()
}

#[actix_web::test]
async fn every_filter_reaches_the_store_as_parsed() {
    // Arrange
    let mut mocks = Mocks::new();
    let group = uuid(GROUP_ID);
    mocks
        .alerts
        .expect_list_alerts()
        .withf(|_, q| {
            q.filter
                == AlertFilter {
                    state: Some(AlertState::Resolved),
                    severity: Some(Severity::Critical),
                    kind: Some(AlertKind::Stale),
                    group: Some(GroupKey::Slug(
                        GroupSlug::parse("grp-lobby").expect("valid"),
                    )),
                    device_id: Some(uuid(DEVICE_A)),
                    suppressed: Some(true),
                    acknowledged: Some(false),
                }
                && q.limit == 5
        })
        .times(1)
        .returning(|_, _| Ok(page_of(Vec::new(), None)));
    mocks
        .alerts
        .expect_list_alerts()
        .withf(move |_, q| {
            q.filter
                == AlertFilter {
                    group: Some(GroupKey::Id(group)),
                    ..AlertFilter::default()
                }
                && q.limit == 1000
        })
        .times(1)
        .returning(|_, _| Ok(page_of(Vec::new(), None)));

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!(
                "{ALERTS}?state=resolved&severity=critical&kind=stale&group_id=grp-lobby\
                 &device_id={DEVICE_A}&suppressed=true&acknowledged=false&limit=5"
            )),
            get(&format!(
                "{ALERTS}?state=all&group_id={GROUP_ID}&limit=1000"
            )),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
}

#[actix_web::test]
async fn bad_filters_are_422_naming_the_parameter_without_reaching_the_store() {
    for (query, field) in [
        ("state=closed", "state"),
        ("severity=info", "severity"),
        ("kind=offline", "kind"),
        ("device_id=not-a-uuid", "device_id"),
        ("suppressed=yes", "suppressed"),
        ("acknowledged=1", "acknowledged"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=", "cursor"),
        ("status=open", "status"),
    ] {
        // Act
        let answer = call(Mocks::untouchable(), get(&format!("{ALERTS}?{query}"))).await;

        // Assert
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            answer.text()
        );
        assert!(
            answer.detail().starts_with(&format!("{field}: ")),
            "{query}: {}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn an_unknown_group_or_device_in_the_filter_is_404() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .alerts
        .expect_list_alerts()
        .withf(|_, q| q.filter.group.is_some())
        .times(1)
        .returning(|_, _| Err(AlertListError::GroupNotFound));
    mocks
        .alerts
        .expect_list_alerts()
        .withf(|_, q| q.filter.device_id.is_some())
        .times(1)
        .returning(|_, _| Err(AlertListError::DeviceNotFound));

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{ALERTS}?group_id=grp-gone")),
            get(&format!("{ALERTS}?device_id={DEVICE_C}")),
            // No slug can hold a space: it names no group, and the store is not asked.
            get(&format!("{ALERTS}?group_id=no%20such")),
        ],
    )
    .await;

    // Assert
    let details: Vec<(StatusCode, String)> =
        answers.iter().map(|a| (a.status, a.detail())).collect();
    assert_eq!(
        details,
        [
            (StatusCode::NOT_FOUND, "Group grp-gone not found".to_owned()),
            (
                StatusCode::NOT_FOUND,
                format!("Device {DEVICE_C} not found")
            ),
            (StatusCode::NOT_FOUND, "Group no such not found".to_owned()),
        ]
    );
}

#[actix_web::test]
async fn the_list_needs_a_token_and_every_role_may_read_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .alerts
        .expect_list_alerts()
        .times(1)
        .returning(|_, _| Ok(page_of(Vec::new(), None)));

    // Act
    let answers = call_all(
        mocks,
        vec![
            TestRequest::get().uri(ALERTS),
            as_roles(&["viewer"], TestRequest::get().uri(ALERTS)),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[1].status, StatusCode::OK, "{}", answers[1].text());
}

// ---------------------------------------------------------------------------------------------
// One alert

fn event(seq: i64, event_type: EventType, value: Option<f64>, windows: &[&str]) -> AlertEvent {
    AlertEvent {
        seq,
        alert_id: uuid(ALERT_ID),
        event: NewAlertEvent {
            event_type,
            at: at(datetime!(2025-10-20 10:00 UTC) + time::Duration::minutes(seq)),
            severity: Severity::Critical,
            value,
            window_ids: windows.iter().map(|w| slug(w)).collect(),
        },
    }
}

#[actix_web::test]
async fn an_alert_is_answered_with_its_events_oldest_first() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .alerts
        .expect_get_alert()
        .withf(|tenant, id| is_tenant_a(tenant) && *id == uuid(ALERT_ID))
        .times(1)
        .returning(|_, _| {
            Ok((
                alert(),
                vec![
                    event(3, EventType::Opened, Some(45.5), &[]),
                    event(7, EventType::Suppressed, None, &["mw-night"]),
                ],
            ))
        });

    // Act
    let answer = call(mocks, get(&format!("{ALERTS}/{ALERT_ID}"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let mut expected = alert_json();
    expected["events"] = json!([
        {"seq": 3, "type": "opened", "at": "2025-10-20T10:03:00Z", "severity": "critical",
         "value": 45.5, "suppressed": false, "window_ids": []},
        {"seq": 7, "type": "suppressed", "at": "2025-10-20T10:07:00Z", "severity": "critical",
         "value": null, "suppressed": true, "window_ids": ["mw-night"]},
    ]);
    assert_eq!(answer.json(), expected);
}

#[actix_web::test]
async fn an_unknown_alert_or_one_of_another_tenant_is_404() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .alerts
        .expect_get_alert()
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{ALERTS}/{ALERT_ID}")),
            get(&format!("{ALERTS}/not-a-uuid")),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
        assert_eq!(answer.json(), json!({"detail": "Alert not found"}));
    }
}

// ---------------------------------------------------------------------------------------------
// Acknowledging

fn ack_uri() -> String {
    format!("{ALERTS}/{ALERT_ID}/ack")
}

fn ack_as(roles: &[&str], body: &Value) -> TestRequest {
    as_roles(roles, TestRequest::post().uri(&ack_uri()).set_json(body))
}

#[actix_web::test]
async fn an_operator_acknowledges_with_mode_until_and_a_note_as_the_tokens_subject() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .alerts
        .expect_acknowledge()
        .withf(|tenant, id, ack| {
            let age = Timestamp::now().get() - ack.at.get();
            is_tenant_a(tenant)
                && *id == uuid(ALERT_ID)
                && ack.by.as_str() == SUB
                && age >= time::Duration::ZERO
                && age < time::Duration::minutes(1)
                && ack.mode == AckMode::Until
                && ack.until == Some(at(datetime!(2099-01-01 00:00 UTC)))
                && ack.note.as_ref().map(AckNote::as_str) == Some("on it")
        })
        .times(1)
        .returning(|_, _, _| Ok(alert()));

    // Act
    let answer = call(
        mocks,
        ack_as(
            &["operator"],
            &json!({"mode": "until", "until": "2099-01-01T00:00:00Z", "note": "on it"}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json(), alert_json());
}

#[actix_web::test]
async fn the_mode_defaults_to_until_resolved() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .alerts
        .expect_acknowledge()
        .withf(|_, _, ack| {
            ack.mode == AckMode::UntilResolved && ack.until.is_none() && ack.note.is_none()
        })
        .times(2)
        .returning(|_, _, _| Ok(alert()));

    // Act
    let answers = call_all(
        mocks,
        vec![
            ack_as(&["owner"], &json!({})),
            ack_as(
                &["admin"],
                &json!({"mode": "until_resolved", "until": null, "note": null}),
            ),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
}

#[actix_web::test]
async fn a_viewer_or_a_caller_without_token_may_not_acknowledge() {
    // Act
    let answers = call_all(
        Mocks::untouchable(),
        vec![
            ack_as(&["viewer"], &json!({})),
            TestRequest::post().uri(&ack_uri()).set_json(json!({})),
            as_roles(&["viewer"], TestRequest::delete().uri(&ack_uri())),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::FORBIDDEN);
    assert_eq!(answers[0].detail(), OPERATORS);
    assert_eq!(answers[1].status, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[2].status, StatusCode::FORBIDDEN);
    assert_eq!(answers[2].detail(), OPERATORS);
}

#[actix_web::test]
async fn a_bad_acknowledgement_is_422_naming_the_field_without_reaching_the_store() {
    let long_note = "x".repeat(501);
    for (body, field) in [
        (json!({"mode": "forever"}), "mode"),
        (json!({"mode": "until"}), "until"),
        (json!({"mode": "until", "until": null}), "until"),
        (
            json!({"mode": "until", "until": "2000-01-01T00:00:00Z"}),
            "until",
        ),
        (json!({"mode": "until", "until": "tomorrow"}), "until"),
        (
            json!({"mode": "until_escalated", "until": "2099-01-01T00:00:00Z"}),
            "until",
        ),
        (json!({"note": long_note}), "note"),
        (json!({"note": 5}), "note"),
        (json!({"by": "mallory"}), "by"),
    ] {
        // Act
        let answer = call(Mocks::untouchable(), ack_as(&["operator"], &body)).await;

        // Assert
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.text()
        );
        assert!(
            answer.detail().starts_with(&format!("{field}: ")),
            "{body}: {}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn acknowledging_a_resolved_alert_is_409_and_an_unknown_one_404() {
    // Arrange
    let mut mocks = Mocks::new();
    let mut answers_in_turn = vec![Err(AckAlertError::NotFound), Err(AckAlertError::Resolved)];
    mocks
        .alerts
        .expect_acknowledge()
        .times(2)
        .returning(move |_, _, _| answers_in_turn.pop().expect("two calls"));

    // Act
    let answers = call_all(
        mocks,
        vec![
            ack_as(&["operator"], &json!({})),
            ack_as(&["operator"], &json!({})),
            ack_as(&["operator"], &json!({})).uri(&format!("{ALERTS}/nope/ack")),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::CONFLICT);
    assert_eq!(answers[0].json(), json!({"detail": "Alert is resolved"}));
    assert_eq!(answers[1].status, StatusCode::NOT_FOUND);
    assert_eq!(answers[1].json(), json!({"detail": "Alert not found"}));
    assert_eq!(answers[2].status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn withdrawing_an_acknowledgement_answers_the_alert_and_a_resolved_one_is_409() {
    // Arrange
    let mut mocks = Mocks::new();
    let mut unacked = alert();
    unacked.record.acknowledgement = None;
    let mut answers_in_turn = vec![Err(AckAlertError::Resolved), Ok(unacked)];
    mocks
        .alerts
        .expect_unacknowledge()
        .withf(|tenant, id, at| {
            is_tenant_a(tenant)
                && *id == uuid(ALERT_ID)
                && (Timestamp::now().get() - at.get()) < time::Duration::minutes(1)
        })
        .times(2)
        .returning(move |_, _, _| answers_in_turn.pop().expect("two calls"));

    // Act
    let unack = || as_roles(&["operator"], TestRequest::delete().uri(&ack_uri()));
    let answers = call_all(mocks, vec![unack(), unack()]).await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::OK, "{}", answers[0].text());
    assert_eq!(answers[0].json()["acknowledgement"], Value::Null);
    assert_eq!(answers[0].json()["id"], ALERT_ID);
    assert_eq!(answers[1].status, StatusCode::CONFLICT);
    assert_eq!(answers[1].detail(), "Alert is resolved");
}

// ---------------------------------------------------------------------------------------------
// A device's history

#[actix_web::test]
async fn a_devices_history_holds_every_state_by_default_and_pages_with_the_cursor() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .alerts
        .expect_list_alerts()
        .withf(|_, q| {
            q.filter
                == AlertFilter {
                    device_id: Some(uuid(DEVICE_A)),
                    ..AlertFilter::default()
                }
                && q.limit == 100
                && q.after.is_none()
        })
        .times(1)
        .returning(|_, _| Ok(page_of(vec![alert()], Some(next_cursor()))));
    mocks
        .alerts
        .expect_list_alerts()
        .withf(|_, q| {
            q.filter.state == Some(AlertState::Resolved)
                && q.filter.device_id == Some(uuid(DEVICE_A))
                && q.after == Some(next_cursor())
        })
        .times(1)
        .returning(|_, _| Ok(page_of(Vec::new(), None)));
    let uri = format!("{DEVICES}/{DEVICE_A}/alerts");

    // Act
    let (first, second) = one_then_another(mocks, get(&uri), |first| {
        get(&format!("{uri}?state=resolved&cursor={}", cursor_of(first)))
    })
    .await;

    // Assert
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.json()["alerts"], json!([alert_json()]));
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
}

#[actix_web::test]
async fn the_history_of_an_unknown_device_is_404_and_its_bad_parameters_422() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .alerts
        .expect_list_alerts()
        .times(1)
        .returning(|_, _| Err(AlertListError::DeviceNotFound));

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{DEVICES}/{DEVICE_C}/alerts")),
            get(&format!("{DEVICES}/not-a-uuid/alerts")),
            get(&format!("{DEVICES}/{DEVICE_C}/alerts?limit=0")),
            get(&format!("{DEVICES}/{DEVICE_C}/alerts?severity=critical")),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::NOT_FOUND);
    assert_eq!(answers[0].detail(), format!("Device {DEVICE_C} not found"));
    assert_eq!(answers[1].status, StatusCode::NOT_FOUND);
    assert_eq!(answers[2].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answers[2].detail().starts_with("limit: "));
    assert_eq!(answers[3].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answers[3]
        .detail()
        .starts_with("severity: unknown query parameter"));
}

// ---------------------------------------------------------------------------------------------
// A window's report

#[actix_web::test]
async fn the_report_of_a_running_window_has_no_end_and_nothing_still_open() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .withf(|tenant, id| is_tenant_a(tenant) && id.as_str() == "mw-night")
        .times(1)
        .returning(|_, id| Ok(window_of(id.as_str(), always_active())));
    mocks
        .alerts
        .expect_muted_by_window()
        .withf(|tenant, id, from, until| {
            is_tenant_a(tenant)
                && id.as_str() == "mw-night"
                && *from == at(datetime!(2020-01-01 00:00 UTC))
                && until.is_none()
        })
        .times(1)
        .returning(|_, _, _, _| Ok(vec![alert()]));

    // Act
    let answer = call(mocks, get(&format!("{WINDOWS}/mw-night/report"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({
            "window_id": "mw-night",
            "occurrence": {"starts_at": "2020-01-01T00:00:00Z", "ends_at": null},
            "alerts": [alert_json()],
            "still_open_at_end": [],
        })
    );
}

#[actix_web::test]
async fn the_report_of_an_ended_window_names_the_alerts_still_open_at_its_end() {
    // Arrange: the window ran through 2020; one alert resolved in it, one stayed open.
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .times(1)
        .returning(|_, id| Ok(window_of(id.as_str(), expired_window())));
    mocks
        .alerts
        .expect_muted_by_window()
        .withf(|_, _, _, until| *until == Some(at(datetime!(2021-01-01 00:00 UTC))))
        .times(1)
        .returning(|_, _, _, _| {
            let mut open = alert();
            open.record.opened_at = at(datetime!(2020-06-01 00:00 UTC));
            let mut resolved = resolved_stale_alert();
            resolved.record.opened_at = at(datetime!(2020-05-01 00:00 UTC));
            resolved.record.resolved_at = Some(at(datetime!(2020-05-02 00:00 UTC)));
            Ok(vec![resolved, open])
        });

    // Act
    let answer = call(mocks, get(&format!("{WINDOWS}/mw-night/report"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(
        body["occurrence"],
        json!({"starts_at": "2020-01-01T00:00:00Z", "ends_at": "2021-01-01T00:00:00Z"})
    );
    assert_eq!(body["alerts"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["still_open_at_end"], json!([ALERT_ID]));
}

#[actix_web::test]
async fn no_report_before_the_first_occurrence_nor_for_an_unknown_window() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .withf(|_, id| id.as_str() == "mw-later")
        .times(1)
        .returning(|_, id| Ok(window_of(id.as_str(), future_window())));
    mocks
        .windows
        .expect_get_window()
        .withf(|_, id| id.as_str() == "mw-gone")
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks.alerts.expect_muted_by_window().never();

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{WINDOWS}/mw-later/report")),
            get(&format!("{WINDOWS}/mw-gone/report")),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::NOT_FOUND);
    assert_eq!(
        answers[0].json(),
        json!({"detail": "No occurrence has started"})
    );
    assert_eq!(answers[1].status, StatusCode::NOT_FOUND);
    assert_eq!(answers[1].json(), json!({"detail": "Window not found"}));
}
