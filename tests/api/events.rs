//! The live stream, `GET /api/events` (issue 15): events caused by ingest reach it on both
//! stores, a reconnect replays exactly what it missed, an instance streams what another caused,
//! a hundred clients see every event while one that never reads is dropped, `access_token` is
//! taken here only and never logged, and a webhook delivers the very data the stream shows.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use test_db::TestDatabase;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{token, Store, TestApp};
use crate::readings::{ago, ingest};

/// One event as received.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    id: Option<i64>,
    event: String,
    data: Value,
}

/// A stream's reader: a line parser over the answer's chunks.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    /// Opens the stream with `query` and `Last-Event-ID`, asserting 200 and the content type.
    async fn open(app: &TestApp, auth: &str, query: &str, last_id: Option<i64>) -> Self {
        let mut request = app
            .client()
            .get(format!("{}/api/events{query}", app.base))
            .bearer_auth(auth);
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("stream opened");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        // An endless body has no tag: the ETag layer must let it through unbuffered.
        assert!(response.headers().get("etag").is_none());
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped) within `limit`; `None` when none came in time or the
    /// stream ended.
    async fn next(&mut self, limit: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let message: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&message) {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("stream readable")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next `n` events, failing if they do not come within `limit`.
    async fn take(&mut self, n: usize, limit: Duration) -> Vec<Event> {
        let deadline = Instant::now() + limit;
        let mut events = Vec::new();
        while events.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.next(left).await.unwrap_or_else(|| {
                panic!(
                    "{} of {n} events within {limit:?}: {events:?}",
                    events.len()
                )
            });
            events.push(event);
        }
        events
    }

    /// The ids of every event until none comes for `quiet`, its data left unread (cheap enough
    /// for a hundred readers).
    async fn ids_until_quiet(&mut self, quiet: Duration) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut line = String::new();
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout(quiet, self.response.chunk()).await {
            for byte in chunk {
                if byte == b'\n' {
                    if let Some(id) = line.strip_prefix("id: ") {
                        ids.push(id.parse().expect("numeric id"));
                    }
                    line.clear();
                } else if line.len() < 32 {
                    line.push(char::from(byte));
                }
            }
        }
        ids
    }

    /// Every event until none comes for `quiet`.
    async fn until_quiet(&mut self, quiet: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next(quiet).await {
            events.push(event);
        }
        events
    }
}

/// One SSE message: `None` for a comment.
fn parse(message: &str) -> Option<Event> {
    let mut id = None;
    let mut event = String::from("message");
    let mut data = String::new();
    let mut any = false;
    for line in message.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.parse().expect("numeric id")),
            "event" => event = value.to_owned(),
            "data" => {
                data.push_str(value);
                any = true;
            }
            _ => {}
        }
    }
    any.then(|| Event {
        id,
        event,
        data: serde_json::from_str(&data).expect("JSON data"),
    })
}

fn ids(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.id.expect("an id")).collect()
}

/// Streams poll often in these tests.
const POLL: (&str, &str) = ("IOT_EVENTS_POLL_MS", "50");
const LIMIT: Duration = Duration::from_secs(15);

async fn server(store: Store) -> TestApp {
    TestApp::builder()
        .store(store)
        .env(POLL.0, POLL.1)
        .spawn()
        .await
}

/// A device alerting above 10, in a group; their ids.
async fn device_in_group(app: &TestApp, auth: &str) -> (String, String) {
    let (status, device) = app
        .post(
            "/api/devices",
            auth,
            json!({"name": "boiler", "threshold_critical_upper": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    let device = device["id"].as_str().expect("id").to_owned();
    let (status, group) = app
        .post(
            "/api/groups",
            auth,
            json!({"name": "Cellar", "device_ids": [device]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    (device, group["id"].as_str().expect("id").to_owned())
}

/// The two events an ingest that opens an alert causes, whichever comes first.
fn opened_and_state(events: &[Event]) -> (&Event, &Event) {
    let opened = events
        .iter()
        .find(|e| e.event == "alert.opened")
        .unwrap_or_else(|| panic!("no alert.opened in {events:?}"));
    let state = events
        .iter()
        .find(|e| e.event == "device.state")
        .unwrap_or_else(|| panic!("no device.state in {events:?}"));
    (opened, state)
}

crate::on_both_stores! {
    async fn an_ingest_that_opens_an_alert_shows_alert_opened_and_device_state(app) {
        let auth = token("events-open", &["viewer", "admin"]);
        let (device, group) = device_in_group(&app, &auth).await;
        let mut stream = Stream::open(&app, &token("events-open", &["viewer"]), "", None).await;

        ingest(&app, &auth, &[(&device, &ago(60), 11.0)]).await;

        let events = stream.take(2, LIMIT).await;
        let (opened, state) = opened_and_state(&events);
        assert!(ids(&events)[0] < ids(&events)[1]);
        let alert_id = opened.data["alert"]["id"].as_str().expect("alert id");
        let (_, mut shown) = app.get(&format!("/api/alerts/{alert_id}"), &auth).await;
        shown.as_object_mut().expect("object").remove("events");
        assert_eq!(opened.data, json!({"alert": shown, "group_ids": [group]}));
        assert_eq!(
            state.data,
            json!({"device_id": device, "device_name": "boiler", "alert_status": "critical",
                   "freshness": "fresh", "group_ids": [group]})
        );
        // Filtered by type and by group (its slug): the same alert event only.
        let (_, g) = app.get(&format!("/api/groups/{group}"), &auth).await;
        let slug = g["group_id"].as_str().expect("slug");
        let query = format!("?types=alert.opened,alert.resolved&group_id={slug}");
        let mut filtered = Stream::open(&app, &auth, &query, Some(0)).await;
        let only = filtered.until_quiet(Duration::from_millis(700)).await;
        assert_eq!(only, vec![opened.clone()]);
    }
}

/// The store a harness server runs on: the test macro hands a server over; these scenarios
/// need settings of their own, so they start another on the same kind of store.
fn store_of(app: &TestApp) -> Store {
    if app
        .startup_log
        .iter()
        .any(|l| l.contains("store: PostgreSQL"))
    {
        Store::Postgres
    } else {
        Store::Memory
    }
}

crate::on_both_stores! {
    async fn a_reconnect_with_last_event_id_gets_exactly_the_missed_events(app) {
        let auth = token("events-replay", &["admin"]);
        let (device, _) = device_in_group(&app, &auth).await;
        let mut first = Stream::open(&app, &auth, "", None).await;
        ingest(&app, &auth, &[(&device, &ago(300), 11.0)]).await;
        let seen = first.take(2, LIMIT).await;
        drop(first);
        // While disconnected: resolved, opened again, resolved again (two events each).
        for (i, value) in [5.0, 12.0, 4.0].into_iter().enumerate() {
            ingest(&app, &auth, &[(&device, &ago(200 - 10 * i as u64), value)]).await;
        }
        let last = *ids(&seen).last().expect("seen");

        let mut again = Stream::open(&app, &auth, "", Some(last)).await;
        let missed = again.take(6, LIMIT).await;

        let mut all = Stream::open(&app, &auth, "", Some(0)).await;
        let everything = all.until_quiet(Duration::from_millis(700)).await;
        assert_eq!(ids(&everything)[..2], ids(&seen)[..]);
        assert_eq!(missed, everything[2..], "exactly the missed ones, in order");
        let types: Vec<&str> = missed.iter().map(|e| e.event.as_str()).filter(|t| t.starts_with("alert.")).collect();
        assert_eq!(types, ["alert.resolved", "alert.opened", "alert.resolved"]);
        // Then live ones, none twice.
        ingest(&app, &auth, &[(&device, &ago(100), 13.0)]).await;
        let live = again.take(2, LIMIT).await;
        assert!(ids(&live).iter().all(|id| *id > *ids(&missed).last().expect("missed")));
        assert!(again.next(Duration::from_millis(500)).await.is_none());
    }
}

#[tokio::test]
async fn a_client_on_one_instance_sees_the_events_caused_through_another() {
    let db = TestDatabase::create().await;
    let (a, b) = tokio::join!(
        TestApp::builder()
            .database_url(db.url())
            .env(POLL.0, POLL.1)
            .spawn(),
        TestApp::builder()
            .database_url(db.url())
            .env(POLL.0, POLL.1)
            .spawn(),
    );
    let auth = token("events-scale", &["admin"]);
    let (device, _) = device_in_group(&a, &auth).await;
    let mut on_b = Stream::open(&b, &auth, "", None).await;
    let mut on_a = Stream::open(&a, &auth, "", None).await;

    ingest(&a, &auth, &[(&device, &ago(60), 11.0)]).await;

    let seen_by_b = on_b.take(2, LIMIT).await;
    opened_and_state(&seen_by_b);
    assert_eq!(seen_by_b, on_a.take(2, LIMIT).await);
    // Another tenant's stream on either instance sees none of it.
    let mut other = Stream::open(&b, &token("events-other", &["admin"]), "", Some(0)).await;
    assert!(other.next(Duration::from_millis(700)).await.is_none());
}

/// A client that sends the request and never reads, with a small receive window.
async fn never_reading(app: &TestApp, auth: &str) -> tokio::net::TcpStream {
    let address: std::net::SocketAddr = app
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("small buffer");
    let mut stream = socket.connect(address).await.expect("connected");
    let request = format!(
        "GET /api/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {auth}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_clients_see_every_event_in_order_while_one_that_never_reads_is_dropped() {
    let app = TestApp::builder()
        .env(POLL.0, POLL.1)
        .env("IOT_EVENTS_BUFFER", "256")
        .spawn()
        .await;
    let auth = token("events-many", &["admin"]);
    let (device, _) = device_in_group(&app, &auth).await;
    // In 40 more groups: each event carries 41 group ids (~2 KB), so that the bytes the
    // never-reading client's connection absorbs (socket buffers, ~1 MB on loopback) hold far
    // fewer events than flow.
    for g in 0..40 {
        let (status, body) = app
            .post(
                "/api/groups",
                &auth,
                json!({"name": format!("G{g}"), "device_ids": [device]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mut slow = never_reading(&app, &auth).await;
    let mut readers = Vec::new();
    for _ in 0..100 {
        let mut stream = Stream::open(&app, &auth, "", None).await;
        readers.push(tokio::spawn(async move {
            stream.ids_until_quiet(Duration::from_secs(3)).await
        }));
    }

    // Readings alternating across the threshold, ten a request (20 events), paced so that a
    // poll finds far fewer events than the buffer holds: 2,000 events or more.
    const READINGS: u64 = 2000;
    for batch in 0..READINGS / 10 {
        let stamps: Vec<String> = (0..10).map(|i| ago(7200 - batch * 10 - i)).collect();
        let readings: Vec<(&str, &str, f64)> = stamps
            .iter()
            .enumerate()
            .map(|(i, at)| {
                (
                    device.as_str(),
                    at.as_str(),
                    if i % 2 == 0 { 11.0 } else { 5.0 },
                )
            })
            .collect();
        ingest(&app, &auth, &readings).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut all = Stream::open(&app, &auth, "", Some(0)).await;
    let everything = ids(&all.until_quiet(Duration::from_secs(1)).await);
    assert!(
        everything.len() as u64 >= READINGS,
        "{} events",
        everything.len()
    );
    for reader in readers {
        let got = reader.await.expect("reader");
        assert_eq!(got, everything, "every event, in order, once");
    }
    // The one that never read: what it gets now is a prefix, then the stream's end.
    let mut raw = Vec::new();
    let mut chunk = vec![0u8; 65536];
    loop {
        match tokio::time::timeout(Duration::from_secs(2), slow.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                raw.extend_from_slice(&chunk[..n]);
                if raw.ends_with(b"0\r\n\r\n") {
                    break;
                }
            }
            Ok(Err(e)) => panic!("read: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let got: Vec<i64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|id| id.trim().parse().expect("id"))
        .collect();
    assert!(
        got.len() < everything.len(),
        "the slow client was not dropped: it got all {} events ({} bytes)",
        got.len(),
        raw.len()
    );
    assert_eq!(got[..], everything[..got.len()], "a prefix, in order");
    assert!(text.ends_with("0\r\n\r\n"), "the stream ended");
}

#[tokio::test]
async fn access_token_is_taken_on_the_stream_only_and_never_logged() {
    let app = server(Store::Memory).await;
    let auth = token("events-token", &["viewer"]);
    let response = app
        .client()
        .get(format!("{}/api/events?access_token={auth}", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    let bad = app
        .client()
        .get(format!("{}/api/events?access_token=not-a-token", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .get(&format!("/api/devices?access_token={auth}"), &auth)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"], "access_token: unknown query parameter");
    let log = app.stop().await;
    assert!(
        log.iter().any(|l| l.contains("/api/events")),
        "the access line is there"
    );
    assert!(
        !log.iter().any(|l| l.contains(&auth)),
        "the token was logged: {log:?}"
    );
}

crate::on_both_stores! {
    async fn a_webhook_delivers_the_data_the_stream_shows(app) {
        let store = store_of(&app);
        drop(app);
        let receiver = crate::webhooks::Receiver::start(&[200]).await;
        let app = TestApp::builder()
            .store(store)
            .env(POLL.0, POLL.1)
            .envs(crate::webhooks::webhook_env("1000"))
            .spawn()
            .await;
        let auth = token("events-hook", &["admin"]);
        let (status, hook) = app
            .post(
                "/api/webhooks",
                &auth,
                json!({"url": receiver.url(), "event_types": ["alert.opened"], "description": "e2e"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hook}");
        let (device, _) = device_in_group(&app, &auth).await;
        let mut stream = Stream::open(&app, &auth, "?types=alert.opened", None).await;

        ingest(&app, &auth, &[(&device, &ago(60), 11.0)]).await;

        let streamed = stream.take(1, LIMIT).await.remove(0);
        let got = receiver.wait_delivered(1, LIMIT).await;
        let payload: Value = serde_json::from_str(&got[0].body).expect("JSON payload");
        assert_eq!(payload["type"], "alert.opened");
        assert!(payload["timestamp"].is_string());
        assert_eq!(payload["data"], streamed.data, "the same data on both ways");
    }
}

#[tokio::test]
async fn a_stopping_server_ends_its_streams_instead_of_waiting_for_them() {
    let app = TestApp::builder()
        .env("IOT_SHUTDOWN_DRAIN_SECS", "0")
        .spawn()
        .await;
    let auth = token("events-stop", &["viewer"]);
    let mut stream = Stream::open(&app, &auth, "", None).await;
    let started = Instant::now();
    let log = app.stop().await;
    assert!(
        log.iter().any(|l| l.contains("stopped")),
        "stopped gracefully, not killed: {log:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(stream.next(Duration::from_secs(1)).await.is_none());
}
