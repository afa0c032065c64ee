//! `GET /api/events`: the event stream's framing, replay, filters, keep-alive, tokens (header or
//! `access_token`, that route only), its refusals, and the data renderer shared with webhooks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody as _};
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::App;
use domain::{
    Alert, AlertKind, AlertRecord, AlertState, AlertStatus, DeviceName, EventType, Freshness,
    Severity, StreamEventType, Timestamp,
};
use ports::events::{DeviceStateChange, EventPage, EventSubject, LoggedEvent, MockEventLog};
use ports::{EventPayloads as _, GroupKey, LookupError};
use serde_json::{json, Value};
use time::macros::datetime;

use crate::support::*;

const EVENTS: &str = "/api/events";
const ALERT_ID: &str = "eeeeeeee-0000-4000-8000-00000000000e";

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
            suppressed_by: Vec::new(),
            acknowledgement: None,
        },
        device_name: DeviceName::parse("Hall").expect("valid"),
    }
}

fn logged(seq: i64) -> LoggedEvent {
    let group = uuid(GROUP_ID);
    match seq % 3 {
        0 => LoggedEvent {
            seq,
            event_type: StreamEventType::Alert(EventType::Opened),
            at: Timestamp::now(),
            group_ids: vec![group],
            subject: EventSubject::Alert(alert()),
        },
        1 => LoggedEvent {
            seq,
            event_type: StreamEventType::DeviceState,
            at: Timestamp::now(),
            group_ids: vec![group],
            subject: EventSubject::Device(DeviceStateChange {
                device_id: uuid(DEVICE_A),
                device_name: DeviceName::parse("Hall").expect("valid"),
                alert_status: AlertStatus::Critical,
                freshness: Freshness::Fresh,
            }),
        },
        _ => LoggedEvent {
            seq,
            event_type: StreamEventType::WindowStarted,
            at: Timestamp::now(),
            group_ids: Vec::new(),
            subject: EventSubject::Window(stored_window("mw-night")),
        },
    }
}

type Log = Arc<Mutex<Vec<LoggedEvent>>>;

/// A mocked log of tenant-a answering from `log` (no other tenant is ever read).
fn event_log(log: &Log) -> MockEventLog {
    let log = log.clone();
    let mut mock = MockEventLog::new();
    mock.expect_events_after()
        .returning(move |tenant, after, limit| {
            assert!(is_tenant_a(tenant));
            let log = log.lock().expect("lock");
            Ok(EventPage {
                events: log
                    .iter()
                    .filter(|e| e.seq > after)
                    .take(limit as usize)
                    .cloned()
                    .collect(),
                first_retained: log.first().map(|e| e.seq),
                last_seq: log.last().map_or(0, |e| e.seq),
            })
        });
    mock
}

fn mocks_with(log: &Log) -> Mocks {
    let mut mocks = Mocks::new();
    mocks.event_log = Some(event_log(log));
    mocks.stream.poll = Duration::from_millis(10);
    mocks
}

fn log_of(seqs: impl IntoIterator<Item = i64>) -> Log {
    Arc::new(Mutex::new(seqs.into_iter().map(logged).collect()))
}

/// One SSE message: its fields (`id`, `event`, `data`; a comment as `:`).
type Frame = Vec<(String, String)>;

/// Reads `res`'s body until `n` messages (keep-alive comments left out) came, or fails after
/// two seconds.
async fn frames(res: ServiceResponse<BoxBody>, n: usize) -> Vec<Frame> {
    messages(res, n, false).await
}

/// Reads `res`'s body until `n` messages came (with comments if `comments`), or fails after
/// two seconds.
async fn messages(res: ServiceResponse<BoxBody>, n: usize, comments: bool) -> Vec<Frame> {
    let mut body = std::pin::pin!(res.into_body());
    let mut text = String::new();
    let mut out: Vec<Frame> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while out.len() < n {
        let chunk = tokio::time::timeout_at(
            deadline,
            std::future::poll_fn(|cx| body.as_mut().poll_next(cx)),
        )
        .await
        .unwrap_or_else(|_| panic!("only {} messages in time: {out:?}", out.len()))
        .expect("the stream goes on")
        .expect("a chunk");
        text.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        while let Some(end) = text.find("\n\n") {
            let message: String = text.drain(..end + 2).collect();
            if message.starts_with(':') && !comments {
                continue;
            }
            out.push(
                message
                    .lines()
                    .filter(|line| !line.is_empty())
                    .map(|line| match line.strip_prefix(':') {
                        Some(comment) => (":".to_owned(), comment.trim().to_owned()),
                        None => {
                            let (k, v) = line.split_once(": ").unwrap_or((line, ""));
                            (k.to_owned(), v.to_owned())
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

fn field<'a>(frame: &'a Frame, name: &str) -> Option<&'a str> {
    frame
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn ids(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| field(f, "id").unwrap_or("-").to_owned())
        .collect()
}

macro_rules! app {
    ($mocks:expr) => {{
        let state = $mocks.into_state();
        test::init_service(App::new().configure(http_api::configure(&state))).await
    }};
}

#[actix_web::test]
async fn a_reconnect_gets_every_event_after_its_id_in_order_framed_as_sse_then_live_ones() {
    // Arrange
    let log = log_of(1..=4);
    let app = app!(mocks_with(&log));
    // Act
    let res = test::call_service(
        &app,
        get(EVENTS)
            .insert_header(("Last-Event-ID", "1"))
            .to_request(),
    )
    .await;
    // Assert
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/event-stream"
    );
    assert!(!res.headers().contains_key(header::ETAG));
    let log_later = log.clone();
    let (frames, ()) = tokio::join!(frames(res, 4), async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        log_later.lock().expect("lock").push(logged(5));
    });
    assert_eq!(ids(&frames), ["2", "3", "4", "5"]);
    let types: Vec<&str> = frames.iter().map(|f| field(f, "event").unwrap()).collect();
    assert_eq!(
        types,
        [
            "window.started",
            "alert.opened",
            "device.state",
            "window.started"
        ]
    );
    let device: Value = serde_json::from_str(field(&frames[2], "data").unwrap()).unwrap();
    assert_eq!(
        device,
        json!({
            "device_id": DEVICE_A, "device_name": "Hall", "alert_status": "critical",
            "freshness": "fresh", "group_ids": [GROUP_ID],
        })
    );
}

#[actix_web::test]
async fn an_alert_events_data_holds_the_alert_exactly_as_the_alerts_api_shows_it() {
    let log = log_of(1..=3);
    let mut mocks = mocks_with(&log);
    mocks
        .alerts
        .expect_get_alert()
        .returning(|_, _| Ok((alert(), Vec::new())));
    let app = app!(mocks);
    let res = test::call_service(
        &app,
        get(EVENTS)
            .insert_header(("Last-Event-ID", "2"))
            .to_request(),
    )
    .await;
    let frames = frames(res, 1).await;
    let data: Value = serde_json::from_str(field(&frames[0], "data").unwrap()).unwrap();
    let mut shown: Value = test::read_body_json(
        test::call_service(&app, get(&format!("/api/alerts/{ALERT_ID}")).to_request()).await,
    )
    .await;
    shown.as_object_mut().unwrap().remove("events");
    assert_eq!(data, json!({"alert": shown, "group_ids": [GROUP_ID]}));
    // Webhooks get the very same data through the port.
    let payloads = http_api::events::RenderedPayloads::new(Arc::new(event_log(&log)));
    let tenant = domain::TenantId::parse(TENANT).unwrap();
    let webhook: Value =
        serde_json::from_str(&payloads.event_data(&tenant, 3).await.unwrap().unwrap()).unwrap();
    assert_eq!(webhook, data);
    assert_eq!(payloads.event_data(&tenant, 9).await.unwrap(), None);
}

#[actix_web::test]
async fn a_window_events_data_holds_the_window_as_the_windows_api_shows_it() {
    let log = log_of(1..=2);
    let app = app!(mocks_with(&log));
    let res = test::call_service(
        &app,
        get(EVENTS)
            .insert_header(("Last-Event-ID", "1"))
            .to_request(),
    )
    .await;
    let frames = frames(res, 1).await;
    let data: Value = serde_json::from_str(field(&frames[0], "data").unwrap()).unwrap();
    assert_eq!(data["group_ids"], json!([]), "{data}");
    assert_eq!(data["window"]["window_id"], "mw-night");
    for key in [
        "name",
        "starts_at",
        "recurring",
        "enabled",
        "status",
        "created_by",
    ] {
        assert!(data["window"].get(key).is_some(), "{key} in {data}");
    }
}

#[actix_web::test]
async fn an_id_older_than_retention_gets_a_reset_first_then_the_retained_events() {
    let log = log_of(10..=11);
    let app = app!(mocks_with(&log));
    let res = test::call_service(
        &app,
        get(EVENTS)
            .insert_header(("Last-Event-ID", "3"))
            .to_request(),
    )
    .await;
    let frames = frames(res, 3).await;
    assert_eq!(field(&frames[0], "event"), Some("reset"));
    assert_eq!(field(&frames[0], "id"), None);
    let reset: Value = serde_json::from_str(field(&frames[0], "data").unwrap()).unwrap();
    assert_eq!(reset["last_event_id"], 3);
    assert!(reset["detail"]
        .as_str()
        .unwrap()
        .contains("no longer all retained"));
    assert_eq!(ids(&frames[1..]), ["10", "11"]);
}

#[actix_web::test]
async fn types_and_group_id_narrow_the_stream() {
    let log = log_of(1..=6);
    let mut mocks = mocks_with(&log);
    mocks
        .groups
        .expect_get_group_row()
        .withf(|tenant, key| is_tenant_a(tenant) && is_slug(key, "grp-night"))
        .returning(|_, _| {
            let mut g = stored_group("grp-night", "Night");
            g.id = uuid(GROUP_ID);
            Ok(g)
        });
    let app = app!(mocks);
    let res = test::call_service(
        &app,
        get(&format!("{EVENTS}?types=alert.opened,device.state"))
            .insert_header(("Last-Event-ID", "0"))
            .to_request(),
    )
    .await;
    assert_eq!(ids(&frames(res, 4).await), ["1", "3", "4", "6"]);
    let res = test::call_service(
        &app,
        get(&format!("{EVENTS}?group_id=grp-night"))
            .insert_header(("Last-Event-ID", "0"))
            .to_request(),
    )
    .await;
    // Window events here name no group.
    assert_eq!(ids(&frames(res, 4).await), ["1", "3", "4", "6"]);
}

#[actix_web::test]
async fn bad_filters_and_ids_are_refused_naming_them() {
    let log = log_of(1..=2);
    let mut mocks = mocks_with(&log);
    mocks
        .groups
        .expect_get_group_row()
        .withf(|_, key| matches!(key, GroupKey::Id(_)))
        .returning(|_, _| Err(LookupError::NotFound));
    let app = app!(mocks);
    let unknown_type = test::call_service(
        &app,
        get(&format!("{EVENTS}?types=alert.opened,alert.bogus")).to_request(),
    )
    .await;
    let unknown_type = Answer::read(unknown_type).await;
    assert_eq!(unknown_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown_type
            .detail()
            .starts_with("types: unknown event type 'alert.bogus'"),
        "{}",
        unknown_type.detail()
    );
    for uri in [
        format!("{EVENTS}?group_id={GROUP_ID}"),
        format!("{EVENTS}?group_id=no%20such%20slug"),
    ] {
        let answer = Answer::read(test::call_service(&app, get(&uri).to_request()).await).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(answer.detail().starts_with("Group "), "{}", answer.detail());
    }
    let bad_id = Answer::read(
        test::call_service(
            &app,
            get(EVENTS)
                .insert_header(("Last-Event-ID", "abc"))
                .to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(bad_id.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_id.detail().starts_with("Last-Event-ID: "));
    let unknown = Answer::read(
        test::call_service(&app, get(&format!("{EVENTS}?since=1")).to_request()).await,
    )
    .await;
    assert_eq!(unknown.detail(), "since: unknown query parameter");
}

#[actix_web::test]
async fn a_quiet_stream_sends_keep_alive_comments() {
    let mut mocks = mocks_with(&log_of([]));
    mocks.stream_response.keep_alive = Duration::from_millis(50);
    let app = app!(mocks);
    let res = test::call_service(&app, get(EVENTS).to_request()).await;
    let frames = messages(res, 2, true).await;
    assert!(
        frames
            .iter()
            .all(|f| f == &vec![(":".to_owned(), "keep-alive".to_owned())]),
        "{frames:?}"
    );
}

#[actix_web::test]
async fn every_role_may_read_and_a_token_may_come_as_access_token_on_this_route_only() {
    let app = app!(mocks_with(&log_of([])));
    for roles in [&[][..], &["viewer"], &["operator"], &["owner"]] {
        let res = test::call_service(
            &app,
            as_roles(roles, TestRequest::get().uri(EVENTS)).to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{roles:?}");
    }
    let token = token_with_roles(TENANT, &["viewer"]);
    let res = test::call_service(
        &app,
        TestRequest::get()
            .uri(&format!("{EVENTS}?access_token={token}&types=device.state"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    for uri in [format!("{EVENTS}?access_token=nonsense"), EVENTS.to_owned()] {
        let res = test::call_service(&app, TestRequest::get().uri(&uri).to_request()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{uri}");
    }
    // Elsewhere it is an unknown parameter, and proves nobody.
    let elsewhere = Answer::read(
        test::call_service(
            &app,
            get(&format!("/api/alerts?access_token={token}")).to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(elsewhere.detail(), "access_token: unknown query parameter");
    let without_header = test::call_service(
        &app,
        TestRequest::get()
            .uri(&format!("/api/alerts?access_token={token}"))
            .to_request(),
    )
    .await;
    assert_eq!(without_header.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn streams_past_the_instances_bound_are_refused_with_503() {
    let mut mocks = mocks_with(&log_of([]));
    mocks.stream.max_streams = 1;
    let app = app!(mocks);
    let first = test::call_service(&app, get(EVENTS).to_request()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = Answer::read(test::call_service(&app, get(EVENTS).to_request()).await).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        second.detail(),
        "Too many event streams are open on this instance (at most 1); retry later"
    );
    drop(first);
    let third = test::call_service(&app, get(EVENTS).to_request()).await;
    assert_eq!(third.status(), StatusCode::OK);
}
