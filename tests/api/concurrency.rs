//! Requests fired truly at once: uniqueness holds under races, a member list is replaced whole
//! and never mixed, overlapping ingests neither lose nor duplicate readings, and racing writes
//! never answer 5xx.
//!
//! Every request of a burst is built first, then all wait on one barrier and are sent together
//! (each on its own connection), so the server sees them concurrently.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::devices::create_device;
use crate::helpers::{detail, now_unix, token, TestApp};
use crate::on_both_stores;
use crate::readings::rfc3339;

/// One request of a burst.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

impl Call {
    pub(crate) fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Self {
        Self {
            method,
            path: path.into(),
            body,
        }
    }

    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path, None)
    }

    pub(crate) fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path, Some(body))
    }

    pub(crate) fn put(path: impl Into<String>, body: Option<Value>) -> Self {
        Self::new(Method::PUT, path, body)
    }

    pub(crate) fn patch(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::PATCH, path, Some(body))
    }

    pub(crate) fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path, None)
    }
}

/// Sends all `calls` at the same moment and returns their answers in the order of `calls`.
/// A dropped connection (a crashed worker) fails the test with the call that caused it.
///
/// A burst far larger than the test server's pool (4 connections) may get the documented
/// load-shedding answer, 503 "…; retry later" (pool wait or request deadline exceeded), on a
/// loaded machine. Such calls are retried one by one, as a client is told to, and their final
/// answer is returned: every other 5xx (500 above all) is returned as it came.
pub(crate) async fn all_at_once(
    app: &TestApp,
    token: &str,
    calls: Vec<Call>,
) -> Vec<(StatusCode, Value)> {
    let barrier = Arc::new(Barrier::new(calls.len()));
    let mut tasks = JoinSet::new();
    for (index, call) in calls.iter().cloned().enumerate() {
        // A client per request: one connection each, none waiting for another's.
        let client = reqwest::Client::new();
        let url = format!("{}{}", app.base, call.path);
        let token = token.to_owned();
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let request = build(&client, &call, &url, &token);
            barrier.wait().await;
            (index, answer(request, &call).await)
        });
    }
    let mut answers: Vec<(usize, (StatusCode, Value))> = tasks.join_all().await;
    answers.sort_by_key(|(index, _)| *index);
    let mut answers: Vec<(StatusCode, Value)> = answers.into_iter().map(|(_, a)| a).collect();
    for (call, answer) in calls.iter().zip(answers.iter_mut()) {
        for _ in 0..5 {
            if !told_to_retry(answer) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let url = format!("{}{}", app.base, call.path);
            *answer = self::answer(build(app.client(), call, &url, token), call).await;
        }
    }
    answers
}

fn build(client: &reqwest::Client, call: &Call, url: &str, token: &str) -> reqwest::RequestBuilder {
    let request = client.request(call.method.clone(), url).bearer_auth(token);
    match &call.body {
        Some(body) => request.json(body),
        None => request,
    }
}

async fn answer(request: reqwest::RequestBuilder, call: &Call) -> (StatusCode, Value) {
    let response = request.send().await.unwrap_or_else(|e| {
        panic!(
            "{} {}: no answer (did the server crash?): {e}",
            call.method, call.path
        )
    });
    let status = response.status();
    let text = response.text().await.expect("body read");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// The documented load-shedding answer: 503 whose detail ends "retry later".
fn told_to_retry((status, body): &(StatusCode, Value)) -> bool {
    *status == StatusCode::SERVICE_UNAVAILABLE
        && body["detail"]
            .as_str()
            .is_some_and(|d| d.ends_with("retry later"))
}

/// One answer, as it came: status, headers and the body's text (and JSON, when it is some).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

/// Sends one request with a raw body (sent as `application/json`). A dropped connection (a
/// crashed worker) fails the test, naming the request.
pub(crate) async fn send(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Reply {
    let mut request = app
        .client()
        .request(method.clone(), format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap_or_else(|e| {
        let shown: String = path.chars().take(200).collect();
        panic!("{method} {shown}: no answer (did the server crash?): {e}")
    });
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body read");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// Whether the server still answers its liveness probe.
pub(crate) async fn assert_alive(app: &TestApp) {
    let reply = send(app, None, Method::GET, "/health/live", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// Fails with every 5xx of a burst, next to the call that got it.
pub(crate) fn assert_no_server_error(calls: &[Call], answers: &[(StatusCode, Value)]) {
    let failures: Vec<String> = calls
        .iter()
        .zip(answers)
        .filter(|(_, (status, _))| status.is_server_error())
        .map(|(call, (status, body))| format!("{} {} -> {status} {body}", call.method, call.path))
        .collect();
    assert!(failures.is_empty(), "5xx answers:\n{}", failures.join("\n"));
}

fn ids_of(devices: &Value) -> BTreeSet<String> {
    devices
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {devices}"))
        .iter()
        .map(|d| d["id"].as_str().expect("device id").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Uniqueness under races

/// The body of the i-th request of a burst.
type BodyOf = Box<dyn Fn(usize) -> Value>;
//
// Fails when a check-then-insert race lets two creates through (two 201/200, or a list of more
// than one group), or when the loser of the race gets a 5xx (a unique violation not translated)
// instead of the documented 400 GROUP_001 / 409.

on_both_stores! {
    async fn fifty_concurrent_group_api_creates_of_one_name_make_exactly_one_group(app) {
        let admin = token("acme", &["admin"]);
        let calls: Vec<Call> = (0..50)
            .map(|i| Call::post("/api/groups", json!({"name": "Race", "description": format!("attempt {i}")})))
            .collect();

        let answers = all_at_once(&app, &admin, calls.clone()).await;

        assert_no_server_error(&calls, &answers);
        let created: Vec<&Value> = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).map(|(_, b)| b).collect();
        assert_eq!(created.len(), 1, "exactly one create wins: {answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
            assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body, &json!({"detail": "Group with name 'Race' already exists", "code": "GROUP_001"}));
        }
        let (status, list) = app.get("/api/groups", &admin).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let list = list.as_array().expect("array");
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["id"], created[0]["id"]);
        assert_eq!(list[0]["description"], created[0]["description"], "the stored group is the winner's");
    }
}

on_both_stores! {
    async fn fifty_concurrent_customer_creates_of_one_group_id_and_name_make_exactly_one_group(app) {
        let admin = token("acme", &["admin"]);
        // Same slug and same name; then same name with distinct slugs; then same slug with
        // distinct names: each constraint on its own must hold under the race.
        let rounds: [(&str, BodyOf); 3] = [
            ("both", Box::new(|_| json!({"group_id": "grp-race", "name": "Race"}))),
            ("name", Box::new(|i| json!({"group_id": format!("grp-name-{i}"), "name": "Same name"}))),
            ("group_id", Box::new(|i| json!({"group_id": "grp-same-id", "name": format!("Name {i}")}))),
        ];
        for (round, (what, body)) in rounds.iter().enumerate() {
            let calls: Vec<Call> = (0..50).map(|i| Call::post("/customer/device-groups", body(i))).collect();

            let answers = all_at_once(&app, &admin, calls.clone()).await;

            assert_no_server_error(&calls, &answers);
            let winners: Vec<&Value> = answers.iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, b)| b).collect();
            assert_eq!(winners.len(), 1, "same {what}: exactly one create wins: {answers:?}");
            for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
                assert_eq!(*status, StatusCode::CONFLICT, "same {what}: {body}");
                let d = detail(body);
                assert!(d == "Group ID already exists" || d.ends_with("already exists"), "{d}");
            }
            let (_, list) = app.get("/customer/device-groups", &admin).await;
            assert_eq!(list["total"], round + 1, "same {what}: {list}");
            let stored: Vec<&Value> = list["groups"].as_array().expect("groups").iter()
                .filter(|g| g["id"] == winners[0]["id"]).collect();
            assert_eq!(stored.len(), 1, "{list}");
            assert_eq!(stored[0]["name"], winners[0]["name"]);
            assert_eq!(stored[0]["group_id"], winners[0]["group_id"]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A member list is replaced whole
//
// Fails when two replacements interleave (delete of one, insert of another): the final list, or
// a PUT's own answer, would then be a mix that no request asked for.

/// The devices of `mask` (bit i = device i).
fn subset(devices: &[String], mask: u32) -> Vec<String> {
    devices
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, d)| d.clone())
        .collect()
}

on_both_stores! {
    async fn twenty_concurrent_member_list_replacements_leave_exactly_one_of_them(app) {
        let admin = token("acme", &["admin"]);
        let mut devices = Vec::new();
        for i in 0..10 {
            devices.push(create_device(&app, &admin, json!({"name": format!("Device {i:02}")})).await);
        }
        let (status, group) = app.post("/api/groups", &admin, json!({"name": "Contested", "device_ids": subset(&devices, 0b11)})).await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let path = format!("/api/groups/{}", group["id"].as_str().expect("id"));

        // 20 distinct lists of 0 to 10 devices (397 is odd, so i * 397 mod 1024 never repeats).
        let mut masks: Vec<u32> = (0..18u32).map(|i| (i * 397 + 13) % 1024).collect();
        masks.extend([0, 1023]);
        let lists: Vec<BTreeSet<String>> = masks.iter().map(|m| subset(&devices, *m).into_iter().collect()).collect();
        assert_eq!(lists.iter().collect::<BTreeSet<_>>().len(), 20, "the lists are distinct");
        let sizes: BTreeSet<usize> = lists.iter().map(BTreeSet::len).collect();
        assert!(sizes.len() >= 6, "the lists differ in size: {sizes:?}");

        for round in 0..3 {
            // Each request sends its list in a different order, some with repeats.
            let calls: Vec<Call> = lists.iter().enumerate().map(|(i, list)| {
                let mut ids: Vec<&String> = list.iter().collect();
                if (i + round) % 2 == 0 { ids.reverse(); }
                if i % 3 == 0 { if let Some(first) = ids.first().copied() { ids.push(first); } }
                Call::put(path.clone(), Some(json!({"device_ids": ids})))
            }).collect();

            let answers = all_at_once(&app, &admin, calls.clone()).await;

            assert_no_server_error(&calls, &answers);
            for (i, (status, body)) in answers.iter().enumerate() {
                assert_eq!(*status, StatusCode::OK, "round {round}, list {i}: {body}");
                assert_eq!(ids_of(&body["devices"]), lists[i], "round {round}: a PUT answers with its own list, not a mix");
                let s = &body["alert_summary"];
                assert_eq!(s["normal"].as_u64().unwrap() + s["warning"].as_u64().unwrap() + s["critical"].as_u64().unwrap(), lists[i].len() as u64);
            }
            let (status, stored) = app.get(&path, &admin).await;
            assert_eq!(status, StatusCode::OK, "{stored}");
            let final_list = ids_of(&stored["devices"]);
            assert!(lists.contains(&final_list), "round {round}: the stored members {final_list:?} are none of the requested lists");
            // Both API families and the list agree on the count.
            let (_, members) = app.get(&format!("/customer/device-groups/{}/devices", stored["group_id"].as_str().unwrap()), &admin).await;
            assert_eq!(ids_of(&members["devices"]), final_list);
            let (_, all) = app.get("/api/groups", &admin).await;
            assert_eq!(all[0]["device_count"], final_list.len());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Overlapping bulk ingests
//
// Fails when a reading is lost or duplicated under concurrent upserts of the same keys (a count
// other than 750 distinct instants), when a batch is applied partially or interleaved with
// another (the newest 250 instants not all holding one batch's value), or when the latest
// reading moves back to an older instant (a `warning` from the older half-overlapping batches,
// or an alert status that disagrees with the newest stored value). A second burst re-sends the
// older instants only, after the newer ones are stored, so that the latest reading is put to the
// test whatever order the first burst committed in.

const DEVICES: usize = 4;
/// Instants per device: 0..500 in the full batches, 250..750 in the half-overlapping ones.
const INSTANTS: u64 = 750;
const NORMAL: f64 = 10.0;
const CRITICAL: f64 = 100.0;
const WARNING: f64 = 50.0;
/// Also a warning, re-sent later for the older instants.
const LATER_WARNING: f64 = 60.0;

/// Four devices (warning above 40, critical above 80) in one group; returns them and the group.
async fn ingest_fixture(app: &TestApp, admin: &str) -> (Vec<String>, String) {
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        devices.push(
            create_device(
                app,
                admin,
                json!({"name": format!("Meter {i}"), "threshold_warning_upper": 40.0, "threshold_critical_upper": 80.0}),
            )
            .await,
        );
    }
    let (status, group) = app
        .post(
            "/api/groups",
            admin,
            json!({"name": "Meters", "device_ids": devices}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    (devices, group["id"].as_str().expect("id").to_owned())
}

/// A batch of every device at instants `range` (`k` minutes before `newest`), device by device.
fn batch(devices: &[String], newest: u64, range: std::ops::Range<u64>, value: f64) -> Vec<Value> {
    devices
        .iter()
        .flat_map(|d| {
            range.clone().map(move |k| {
                json!({"device_id": d, "timestamp": rfc3339(newest - k * 60), "value": value})
            })
        })
        .collect()
}

/// Checks what the overlapping ingests must have left behind.
async fn assert_ingests_merged(
    app: &TestApp,
    admin: &str,
    devices: &[String],
    group: &str,
    newest: u64,
) -> f64 {
    let mut newest_values = BTreeSet::new();
    for d in devices {
        let (status, answer) = app
            .get(
                &format!("/api/devices/{d}/readings?hours=8760&limit=10000"),
                admin,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let readings = answer["readings"].as_array().expect("readings");
        let by_instant: BTreeMap<&str, f64> = readings
            .iter()
            .map(|r| {
                (
                    r["timestamp"].as_str().expect("timestamp"),
                    r["value"].as_f64().expect("value"),
                )
            })
            .collect();
        assert_eq!(
            readings.len(),
            by_instant.len(),
            "{d}: a reading is duplicated"
        );
        assert_eq!(
            answer["total"], INSTANTS,
            "{d}: readings lost or duplicated"
        );
        for k in 0..INSTANTS {
            let at = rfc3339(newest - k * 60);
            let value = *by_instant
                .get(at.as_str())
                .unwrap_or_else(|| panic!("{d}: the reading at {at} is lost"));
            let allowed: &[f64] = match k {
                0..250 => &[NORMAL, CRITICAL],
                250..500 => &[NORMAL, CRITICAL, WARNING],
                _ => &[WARNING],
            };
            assert!(
                allowed.contains(&value),
                "{d} at {at} (k = {k}): {value} was never sent for it"
            );
            if k < 250 {
                newest_values.insert(value.to_bits());
            }
        }
        assert_eq!(readings[0]["timestamp"], rfc3339(newest), "newest first");
    }
    // Each batch is stored all at once: the instants only the full batches hold carry the value
    // of the one that committed last, on every device.
    assert_eq!(
        newest_values.len(),
        1,
        "the newest 250 instants mix values of several batches"
    );
    let latest = f64::from_bits(*newest_values.iter().next().expect("a value"));

    // The alert status comes from the newest instant's value, never from an older batch.
    let (status, alerts) = app.get(&format!("/api/groups/{group}/alerts"), admin).await;
    assert_eq!(status, StatusCode::OK, "{alerts}");
    let (normal, critical) = if latest == NORMAL {
        (DEVICES, 0)
    } else {
        (0, DEVICES)
    };
    assert_eq!(alerts["normal"], normal, "latest value {latest}: {alerts}");
    assert_eq!(
        alerts["warning"], 0,
        "the latest reading moved back to an older instant: {alerts}"
    );
    assert_eq!(
        alerts["critical"], critical,
        "latest value {latest}: {alerts}"
    );
    latest
}

/// Re-sends the older instants (250..750) concurrently, after the newer ones are stored: every
/// re-sent value replaces its reading, and the latest reading stays at the newest instant.
/// Fails when a later ingest of older readings moves the latest reading back (a `warning`).
async fn assert_older_ingests_keep_the_latest(
    app: &TestApp,
    admin: &str,
    devices: &[String],
    group: &str,
    newest: u64,
    latest: f64,
) {
    let calls: Vec<Call> = (0..4)
        .map(|_| {
            Call::post(
                "/api/readings",
                json!({"readings": batch(devices, newest, 250..750, LATER_WARNING)}),
            )
        })
        .collect();
    let answers = all_at_once(app, admin, calls.clone()).await;
    assert_no_server_error(&calls, &answers);
    for (status, body) in &answers {
        assert_eq!(
            (*status, body),
            (StatusCode::CREATED, &json!({"accepted": 2_000}))
        );
    }
    for d in devices {
        let (_, answer) = app
            .get(
                &format!("/api/devices/{d}/readings?hours=8760&limit=10000"),
                admin,
            )
            .await;
        assert_eq!(
            answer["total"], INSTANTS,
            "{d}: readings lost or duplicated"
        );
        let readings = answer["readings"].as_array().expect("readings");
        for (k, r) in readings.iter().enumerate() {
            assert_eq!(
                r["timestamp"],
                rfc3339(newest - k as u64 * 60),
                "{d}: newest first, one per instant"
            );
            let expected = if k < 250 { latest } else { LATER_WARNING };
            assert_eq!(r["value"], expected, "{d} at k = {k}");
        }
    }
    let (_, alerts) = app.get(&format!("/api/groups/{group}/alerts"), admin).await;
    assert_eq!(
        alerts["warning"], 0,
        "older readings ingested later moved the latest reading back: {alerts}"
    );
    assert_eq!(
        alerts["normal"].as_u64().unwrap() + alerts["critical"].as_u64().unwrap(),
        DEVICES as u64,
        "{alerts}"
    );
    assert_eq!(
        alerts[if latest == NORMAL {
            "normal"
        } else {
            "critical"
        }],
        DEVICES,
        "{alerts}"
    );
}

on_both_stores! {
    async fn overlapping_concurrent_ingests_lose_nothing_duplicate_nothing_and_keep_the_newest_latest(app) {
        let admin = token("acme", &["admin"]);
        let (devices, group) = ingest_fixture(&app, &admin).await;
        let newest = now_unix() - 3_600;

        // 8 batches of the same 2,000 readings (6 with one value, 2 with another for the same
        // keys), and 2 batches that overlap them by half (older instants, a third value).
        let mut calls = Vec::new();
        for i in 0..8 {
            let value = if i % 4 == 3 { CRITICAL } else { NORMAL };
            calls.push(Call::post("/api/readings", json!({"readings": batch(&devices, newest, 0..500, value)})));
        }
        for _ in 0..2 {
            calls.push(Call::post("/api/readings", json!({"readings": batch(&devices, newest, 250..750, WARNING)})));
        }

        let answers = all_at_once(&app, &admin, calls.clone()).await;

        assert_no_server_error(&calls, &answers);
        for (status, body) in &answers {
            assert_eq!((*status, body), (StatusCode::CREATED, &json!({"accepted": 2_000})));
        }
        let latest = assert_ingests_merged(&app, &admin, &devices, &group, newest).await;
        assert_older_ingests_keep_the_latest(&app, &admin, &devices, &group, newest, latest).await;
    }
}

/// The same scenario, but the batches list their readings in different orders (newest first,
/// oldest first, device by device in reverse), as independent ingest jobs do.
async fn ingests_in_different_orders(app: TestApp) {
    let admin = token("acme", &["admin"]);
    let (devices, group) = ingest_fixture(&app, &admin).await;
    let newest = now_unix() - 3_600;

    let mut calls = Vec::new();
    for i in 0..8 {
        let value = if i % 4 == 3 { CRITICAL } else { NORMAL };
        let mut readings = batch(&devices, newest, 0..500, value);
        if i % 2 == 1 {
            readings.reverse();
        }
        calls.push(Call::post("/api/readings", json!({"readings": readings})));
    }
    for i in 0..2 {
        let mut readings = batch(&devices, newest, 250..750, WARNING);
        if i == 0 {
            readings.reverse();
        }
        calls.push(Call::post("/api/readings", json!({"readings": readings})));
    }

    let answers = all_at_once(&app, &admin, calls.clone()).await;

    assert_no_server_error(&calls, &answers);
    for (status, body) in &answers {
        assert_eq!(
            (*status, body),
            (StatusCode::CREATED, &json!({"accepted": 2_000}))
        );
    }
    let latest = assert_ingests_merged(&app, &admin, &devices, &group, newest).await;
    assert_older_ingests_keep_the_latest(&app, &admin, &devices, &group, newest, latest).await;
}

/// Fails on PostgreSQL with 500s: two batches that upsert the same rows in opposite orders
/// deadlock (SQLSTATE 40P01), and the deadlock victim's error is answered as a 500 instead of
/// being retried (or the rows locked in a fixed order).
mod overlapping_concurrent_ingests_in_different_orders_all_succeed {
    use super::*;

    #[tokio::test]
    async fn on_the_embedded_store() {
        ingests_in_different_orders(TestApp::spawn(crate::helpers::Store::Memory).await).await;
    }

    #[tokio::test]
    async fn on_postgres() {
        ingests_in_different_orders(TestApp::spawn(crate::helpers::Store::Postgres).await).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Racing membership changes and deletes
//
// Fails on any 5xx (a foreign-key violation or deadlock between a member-list change and a
// device delete surfacing as an internal error), on an answer outside the documented ones, or
// when a deleted device is left in a group or a group's counts disagree afterwards.

on_both_stores! {
    async fn racing_membership_changes_and_deletes_never_answer_5xx_and_leave_consistent_groups(app) {
        let admin = token("acme", &["admin"]);
        let mut devices = Vec::new();
        for i in 0..12 {
            devices.push(create_device(&app, &admin, json!({"name": format!("Racer {i:02}"), "threshold_warning_upper": 5.0})).await);
        }
        let mut groups = Vec::new();
        for name in ["G1", "G2", "G3"] {
            let (status, g) = app.post("/api/groups", &admin, json!({"name": name, "device_ids": devices[..6]})).await;
            assert_eq!(status, StatusCode::CREATED, "{g}");
            groups.push((g["id"].as_str().unwrap().to_owned(), g["group_id"].as_str().unwrap().to_owned()));
        }
        let doomed = &devices[8..];
        let now = rfc3339(now_unix() - 60);

        let mut calls = Vec::new();
        for i in 0..12 {
            let (id, slug) = &groups[i % 2];
            calls.push(Call::put(format!("/api/groups/{id}"), Some(json!({"device_ids": subset(&devices, (i as u32 * 1_237 + 5) % 4_096)}))));
            calls.push(Call::put(format!("/customer/device-groups/{slug}/devices/{}", devices[(i * 5) % 12]), None));
            calls.push(Call::delete(format!("/customer/device-groups/{slug}/devices/{}", devices[(i * 7) % 12])));
        }
        for d in doomed.iter().chain(doomed) {
            calls.push(Call::delete(format!("/api/devices/{d}")));
        }
        for d in doomed {
            calls.push(Call::post(format!("/api/devices/{d}/readings"), json!({"value": 7.0})));
            calls.push(Call::post("/api/readings", json!({"readings": [
                {"device_id": devices[0], "timestamp": now, "value": 1.0},
                {"device_id": d, "timestamp": now, "value": 9.0},
            ]})));
        }
        let (g3, g3_slug) = &groups[2];
        calls.push(Call::delete(format!("/api/groups/{g3}")));
        calls.push(Call::delete(format!("/customer/device-groups/{g3_slug}")));
        calls.push(Call::put(format!("/api/groups/{g3}"), Some(json!({"device_ids": devices[..3]}))));
        calls.push(Call::patch(format!("/customer/device-groups/{g3_slug}"), json!({"name": "G3 renamed"})));
        calls.push(Call::put(format!("/customer/device-groups/{g3_slug}/devices/{}", devices[9]), None));
        for (id, _) in &groups {
            calls.push(Call::get(format!("/api/groups/{id}")));
            calls.push(Call::get(format!("/api/groups/{id}/alerts")));
            calls.push(Call::get(format!("/api/groups/{id}/readings?hours=1")));
        }

        let answers = all_at_once(&app, &admin, calls.clone()).await;

        assert_no_server_error(&calls, &answers);
        for (call, (status, body)) in calls.iter().zip(&answers) {
            let expected = match status.as_u16() {
                200 | 201 | 204 | 404 => true,
                // A member list naming a device deleted meanwhile.
                400 => body["code"] == "GROUP_002",
                // An ingest naming a device deleted meanwhile.
                422 => call.path == "/api/readings",
                _ => false,
            };
            assert!(expected, "{} {} -> {status} {body}", call.method, call.path);
        }

        // Afterwards: the deleted devices are gone everywhere, and every count agrees.
        for d in doomed {
            let (status, _) = app.get(&format!("/api/devices/{d}"), &admin).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{d} was deleted");
        }
        let (_, list) = app.get("/api/groups", &admin).await;
        for item in list.as_array().expect("groups") {
            let (status, g) = app.get(&format!("/api/groups/{}", item["id"].as_str().unwrap()), &admin).await;
            assert_eq!(status, StatusCode::OK, "{g}");
            let members = ids_of(&g["devices"]);
            assert!(doomed.iter().all(|d| !members.contains(d)), "a deleted device is still a member: {g}");
            assert_eq!(item["device_count"], members.len(), "{item} vs {g}");
            let s = &g["alert_summary"];
            assert_eq!(s["normal"].as_u64().unwrap() + s["warning"].as_u64().unwrap() + s["critical"].as_u64().unwrap(), members.len() as u64, "{g}");
        }
        let (status, _) = app.get(&format!("/api/groups/{g3}"), &admin).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "G3 was deleted");
    }
}
