//! Filtering and paging of every list (`name`, `limit`, `offset`, `total` / `X-Total-Count`), and
//! time ranges and CSV of readings.

use std::collections::HashSet;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{detail, token, TestApp};
use crate::on_both_stores;

/// Percent-encodes a query value (everything but unreserved characters).
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// GET with the response headers.
async fn get_full(app: &TestApp, path: &str, token: &str) -> (StatusCode, HeaderMap, Value) {
    get_accepting(app, path, token, "application/json").await
}

async fn get_accepting(
    app: &TestApp,
    path: &str,
    token: &str,
    accept: &str,
) -> (StatusCode, HeaderMap, Value) {
    let (status, headers, text) = app.get_accepting(path, token, accept).await;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

async fn create_device(app: &TestApp, token: &str, body: Value) -> String {
    let (status, created) = app.post("/api/devices", token, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body} -> {created}");
    created["id"].as_str().expect("id").to_owned()
}

/// Creates a customer group; returns `(uuid, slug)`.
async fn create_group(app: &TestApp, token: &str, name: &str) -> (String, String) {
    let (status, created) = app
        .post("/customer/device-groups", token, json!({ "name": name }))
        .await;
    assert_eq!(status, StatusCode::OK, "{name} -> {created}");
    (
        created["id"].as_str().expect("id").to_owned(),
        created["group_id"].as_str().expect("group_id").to_owned(),
    )
}

async fn add_member(app: &TestApp, token: &str, slug: &str, device: &str) {
    let (status, body) = app
        .request(
            Method::PUT,
            &format!("/customer/device-groups/{slug}/devices/{device}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn create_window(app: &TestApp, token: &str, body: Value) -> String {
    let (status, created) = app
        .post("/customer/maintenance-windows", token, body.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body} -> {created}");
    created["window_id"].as_str().expect("window_id").to_owned()
}

/// How a list answers: an object with its items under a key and a `total`, or a bare array
/// with the `X-Total-Count` header.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Object(&'static str),
    Bare,
}

/// One list endpoint and what it holds in full, in its documented order.
struct Endpoint {
    path: String,
    shape: Shape,
    names: Vec<&'static str>,
}

/// One page: the names in order, the total, and the raw items.
async fn page(
    app: &TestApp,
    endpoint: &Endpoint,
    token: &str,
    query: &str,
) -> (Vec<String>, u64, Vec<Value>) {
    let sep = if endpoint.path.contains('?') {
        '&'
    } else {
        '?'
    };
    let path = if query.is_empty() {
        endpoint.path.clone()
    } else {
        format!("{}{sep}{query}", endpoint.path)
    };
    let (status, headers, body) = get_full(app, &path, token).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    let (items, total) = match endpoint.shape {
        Shape::Object(key) => (
            body[key]
                .as_array()
                .unwrap_or_else(|| panic!("{path}: no {key} in {body}"))
                .clone(),
            body["total"]
                .as_u64()
                .unwrap_or_else(|| panic!("{path}: no total in {body}")),
        ),
        Shape::Bare => {
            let total = headers
                .get("x-total-count")
                .unwrap_or_else(|| panic!("{path}: no X-Total-Count"))
                .to_str()
                .expect("ascii")
                .parse::<u64>()
                .expect("X-Total-Count is a number");
            (
                body.as_array()
                    .unwrap_or_else(|| panic!("{path}: not an array: {body}"))
                    .clone(),
                total,
            )
        }
    };
    let names = items
        .iter()
        .map(|i| {
            i["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {i}"))
                .to_owned()
        })
        .collect();
    (names, total, items)
}

/// Names to give devices, groups and windows: ASCII case varies, byte order differs from
/// case-insensitive order.
const NAMES: [&str; 5] = ["lobby b", "Hall", "Lobby A", "Kitchen", "LOBBY C"];
/// `NAMES` in byte order (the order of every name-sorted list).
const BY_NAME: [&str; 5] = ["Hall", "Kitchen", "LOBBY C", "Lobby A", "lobby b"];

/// Five devices, five groups and five windows named after `NAMES`: "Lobby A" is in every group,
/// group "Hall" holds every device, and window "w" (unscoped) covers every device. Windows start
/// on successive days in the order of `NAMES`, so latest-first lists them reversed.
async fn every_list(app: &TestApp, t: &str) -> Vec<Endpoint> {
    let mut devices = Vec::new();
    for name in NAMES {
        devices.push(create_device(app, t, json!({ "name": name })).await);
    }
    let mut groups = Vec::new();
    for name in NAMES {
        groups.push(create_group(app, t, name).await);
    }
    let lobby_a = &devices[2];
    let hall = &groups[1].1;
    for (_, slug) in &groups {
        add_member(app, t, slug, lobby_a).await;
    }
    for device in &devices {
        if device != lobby_a {
            add_member(app, t, hall, device).await;
        }
    }
    let mut window = String::new();
    for (day, name) in NAMES.iter().enumerate() {
        window = create_window(
            app,
            t,
            json!({ "name": name, "starts_at": format!("2030-01-{:02}T00:00:00Z", day + 1) }),
        )
        .await;
    }
    let mut latest_first = NAMES.to_vec();
    latest_first.reverse();
    vec![
        Endpoint {
            path: "/customer/device-groups".into(),
            shape: Shape::Object("groups"),
            names: BY_NAME.to_vec(),
        },
        Endpoint {
            path: "/customer/maintenance-windows".into(),
            shape: Shape::Object("windows"),
            names: latest_first,
        },
        Endpoint {
            path: "/api/groups".into(),
            shape: Shape::Bare,
            names: BY_NAME.to_vec(),
        },
        Endpoint {
            path: "/api/devices".into(),
            shape: Shape::Bare,
            names: BY_NAME.to_vec(),
        },
        Endpoint {
            path: format!("/api/devices/{lobby_a}/groups"),
            shape: Shape::Bare,
            names: BY_NAME.to_vec(),
        },
        Endpoint {
            path: format!("/customer/device-groups/{hall}/devices"),
            shape: Shape::Object("devices"),
            names: BY_NAME.to_vec(),
        },
        Endpoint {
            path: format!("/customer/maintenance-windows/{window}/devices"),
            shape: Shape::Object("devices"),
            names: BY_NAME.to_vec(),
        },
    ]
}

/// What a list with `name`, `limit` and `offset` must answer: the page and the number of matches.
fn expected(
    all: &[&str],
    name: Option<&str>,
    limit: Option<usize>,
    offset: usize,
) -> (Vec<String>, u64) {
    let matching: Vec<String> = all
        .iter()
        .filter(|n| {
            name.is_none_or(|part| n.to_ascii_lowercase().contains(&part.to_ascii_lowercase()))
        })
        .map(|n| (*n).to_owned())
        .collect();
    let total = matching.len() as u64;
    (
        matching
            .into_iter()
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .collect(),
        total,
    )
}

on_both_stores! {
    async fn lists_without_parameters_answer_in_the_seed_shape_in_full(app) {
        let t = token("acme", &["admin"]);
        let endpoints = every_list(&app, &t).await;
        for endpoint in &endpoints {
            let (status, _, body) = get_full(&app, &endpoint.path, &t).await;
            assert_eq!(status, StatusCode::OK, "{}: {body}", endpoint.path);
            let (names, total, _) = page(&app, endpoint, &t, "").await;
            assert_eq!(names, endpoint.names, "{}", endpoint.path);
            assert_eq!(total, 5, "{}", endpoint.path);
            let keys: HashSet<&str> = match endpoint.shape {
                Shape::Bare => {
                    assert!(body.is_array(), "{}: {body}", endpoint.path);
                    continue;
                }
                Shape::Object(_) => body.as_object().expect("object").keys().map(String::as_str).collect(),
            };
            let want: HashSet<&str> = if endpoint.path == "/customer/device-groups" {
                ["groups", "total"].into()
            } else if endpoint.path == "/customer/maintenance-windows" {
                ["windows", "total"].into()
            } else if endpoint.path.starts_with("/customer/device-groups/") {
                ["group_id", "devices", "total"].into()
            } else {
                ["window_id", "devices", "total"].into()
            };
            assert_eq!(keys, want, "{}: {body}", endpoint.path);
        }

        // Items are exactly what reading them one by one answers.
        let (_, _, groups) = get_full(&app, "/customer/device-groups", &t).await;
        for group in groups["groups"].as_array().unwrap() {
            let (_, one) = app.get(&format!("/customer/device-groups/{}", group["group_id"].as_str().unwrap()), &t).await;
            assert_eq!(group, &one);
            let expected_members = if group["name"] == "Hall" { 5 } else { 1 };
            assert_eq!(group["member_count"], expected_members, "{group}");
        }
        let (_, _, windows) = get_full(&app, "/customer/maintenance-windows", &t).await;
        for window in windows["windows"].as_array().unwrap() {
            let (_, one) = app.get(&format!("/customer/maintenance-windows/{}", window["window_id"].as_str().unwrap()), &t).await;
            assert_eq!(window, &one);
        }
        let (_, _, devices) = get_full(&app, "/api/devices", &t).await;
        for device in devices.as_array().unwrap() {
            let (_, one) = app.get(&format!("/api/devices/{}", device["id"].as_str().unwrap()), &t).await;
            assert_eq!(device, &one);
        }
        let (_, _, api_groups) = get_full(&app, "/api/groups", &t).await;
        for (item, customer) in api_groups.as_array().unwrap().iter().zip(groups["groups"].as_array().unwrap()) {
            assert_eq!(item["id"], customer["id"]);
            assert_eq!(item["device_count"], customer["member_count"], "{item}");
        }
    }
}

on_both_stores! {
    async fn the_name_filter_is_a_substring_ignoring_the_case_of_ascii_letters(app) {
        let t = token("acme", &["viewer", "admin"]);
        let endpoints = every_list(&app, &t).await;
        for endpoint in &endpoints {
            for filter in ["LOB", "lob", "lObBy", "by a", "a", "Hall", "hALL", "KITCHEN", "c", "%", "_", "*", "lobby%", "L_bby", "zzz", "lobby  a", "ä"] {
                let (want, want_total) = expected(&endpoint.names, Some(filter), None, 0);
                let (names, total, _) = page(&app, endpoint, &t, &format!("name={}", enc(filter))).await;
                assert_eq!((names, total), (want, want_total), "{} name={filter}", endpoint.path);
            }
            let (names, total, _) = page(&app, endpoint, &t, "name=LOB").await;
            assert_eq!(total, 3, "{}", endpoint.path);
            assert!(names.contains(&"Lobby A".to_owned()) && names.contains(&"lobby b".to_owned()), "{names:?}");
            let (names, total, _) = page(&app, endpoint, &t, "name=%25").await;
            assert_eq!((names.len(), total), (0, 0), "{}: % is no wildcard", endpoint.path);
        }
    }
}

on_both_stores! {
    async fn limit_and_offset_select_the_page_and_total_counts_every_match(app) {
        let t = token("acme", &["admin"]);
        let endpoints = every_list(&app, &t).await;
        let cases: [(Option<&str>, Option<usize>, usize); 12] = [
            (None, Some(2), 0),
            (None, Some(2), 2),
            (None, Some(2), 4),
            (None, Some(2), 5),
            (None, None, 3),
            (None, Some(1000), 0),
            (None, Some(1), 1_000_000),
            (Some("lob"), Some(1), 0),
            (Some("lob"), Some(1), 1),
            (Some("LOB"), Some(2), 2),
            (Some("lob"), Some(5), 3),
            (Some("nothing"), Some(3), 0),
        ];
        for endpoint in &endpoints {
            for (name, limit, offset) in cases {
                let mut query = vec![format!("offset={offset}")];
                if let Some(name) = name {
                    query.push(format!("name={}", enc(name)));
                }
                if let Some(limit) = limit {
                    query.push(format!("limit={limit}"));
                }
                let query = query.join("&");
                let got = page(&app, endpoint, &t, &query).await;
                assert_eq!((got.0, got.1), expected(&endpoint.names, name, limit, offset), "{}?{query}", endpoint.path);
            }
        }
    }
}

on_both_stores! {
    async fn bad_list_parameters_are_refused_with_422_naming_them(app) {
        let t = token("acme", &["admin"]);
        let endpoints = every_list(&app, &t).await;
        let long = "x".repeat(129);
        let bad = [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=abc", "limit"),
            ("limit=-5", "limit"),
            ("limit=1.5", "limit"),
            ("limit=", "limit"),
            ("limit=99999999999999999999", "limit"),
            ("offset=-1", "offset"),
            ("offset=abc", "offset"),
            ("offset=99999999999", "offset"),
            ("name=", "name"),
            ("name=%00", "name"),
            (&format!("name={long}"), "name"),
        ];
        for endpoint in &endpoints {
            for (query, parameter) in bad {
                let sep = if endpoint.path.contains('?') { '&' } else { '?' };
                let path = format!("{}{sep}{query}", endpoint.path);
                let (status, body) = app.get(&path, &t).await;
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
                assert!(detail(&body).starts_with(&format!("{parameter}:")), "{path}: {body}");
            }
            // The bounds themselves are fine.
            let (names, _, _) = page(&app, endpoint, &t, &format!("limit=1000&offset=0&name={}", "x".repeat(128))).await;
            assert!(names.is_empty());
            page(&app, endpoint, &t, "limit=1").await;
        }
    }
}

on_both_stores! {
    async fn paging_through_25_groups_by_10_visits_each_exactly_once(app) {
        let t = token("acme", &["admin"]);
        // Created out of order.
        let order: Vec<usize> = (0..25).map(|i| (i * 7) % 25).collect();
        assert_eq!(order.iter().collect::<HashSet<_>>().len(), 25);
        for i in &order {
            create_group(&app, &t, &format!("Group {i:02}")).await;
        }
        let all: Vec<String> = (0..25).map(|i| format!("Group {i:02}")).collect();
        for (path, shape) in [("/customer/device-groups", Shape::Object("groups")), ("/api/groups", Shape::Bare)] {
            let endpoint = Endpoint { path: path.into(), shape, names: Vec::new() };
            let mut seen = Vec::new();
            let mut ids = HashSet::new();
            let mut offset = 0;
            loop {
                let (names, total, items) = page(&app, &endpoint, &t, &format!("limit=10&offset={offset}")).await;
                assert_eq!(total, 25, "{path} offset {offset}");
                assert!(names.len() <= 10);
                for item in &items {
                    assert!(ids.insert(item["id"].as_str().unwrap().to_owned()), "{path}: {item} twice");
                }
                if names.is_empty() {
                    break;
                }
                seen.extend(names);
                offset += 10;
            }
            assert_eq!(offset, 30, "{path}: three pages then an empty one");
            assert_eq!(seen, all, "{path}");

            // With a filter: "group 1" matches 10..19; pages of 3.
            let mut filtered = Vec::new();
            for offset in (0..12).step_by(3) {
                let (names, total, _) = page(&app, &endpoint, &t, &format!("name=group%201&limit=3&offset={offset}")).await;
                assert_eq!(total, 10);
                filtered.extend(names);
            }
            assert_eq!(filtered, all[10..20].to_vec(), "{path}");
        }
    }
}

on_both_stores! {
    async fn windows_starting_together_page_in_a_stable_order(app) {
        let t = token("acme", &["admin"]);
        let mut ids = Vec::new();
        for _ in 0..7 {
            ids.push(create_window(&app, &t, json!({"name": "Same", "starts_at": "2031-05-05T05:05:05Z"})).await);
        }
        ids.sort();
        let endpoint = Endpoint { path: "/customer/maintenance-windows".into(), shape: Shape::Object("windows"), names: Vec::new() };
        let mut seen = Vec::new();
        for offset in (0..8).step_by(2) {
            let (_, total, items) = page(&app, &endpoint, &t, &format!("limit=2&offset={offset}")).await;
            assert_eq!(total, 7);
            seen.extend(items.iter().map(|w| w["window_id"].as_str().unwrap().to_owned()));
        }
        assert_eq!(seen, ids, "ties are ordered by window_id, each seen once");
    }
}

on_both_stores! {
    async fn the_window_status_filter_combines_with_name_and_paging(app) {
        let t = token("acme", &["admin"]);
        let past = json!({"starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-02-01T00:00:00Z"});
        let mut scheduled = Vec::new();
        for (i, name) in ["Lobby one", "lobby two", "Hall", "LOBBY three"].iter().enumerate() {
            scheduled.push(create_window(&app, &t, json!({"name": name, "starts_at": format!("2040-0{}-01T00:00:00Z", i + 1)})).await);
            let mut expired = past.clone();
            expired["name"] = json!(format!("{name} old"));
            create_window(&app, &t, expired).await;
        }
        let (status, body) = app.get("/customer/maintenance-windows?status=scheduled&name=LOBBY&limit=1&offset=1", &t).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], 3, "{body}");
        let windows = body["windows"].as_array().unwrap();
        assert_eq!(windows.len(), 1);
        // Latest start first: LOBBY three (04), lobby two (02), Lobby one (01).
        assert_eq!(windows[0]["window_id"], scheduled[1].as_str(), "{body}");
        let (_, body) = app.get("/customer/maintenance-windows?status=expired&limit=2", &t).await;
        assert_eq!(body["total"], 4, "{body}");
        assert_eq!(body["windows"].as_array().unwrap().len(), 2);
        let (status, body) = app.get("/customer/maintenance-windows?status=scheduled&limit=0", &t).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("limit:"), "{body}");
    }
}

// -------------------------------------------------------------------------------------------
// Readings: time ranges and CSV

/// The `(device_id, timestamp, value)` rows of a group readings answer, or `("", timestamp,
/// value)` of a device readings answer.
fn json_rows(answer: &Value) -> Vec<(String, String, f64)> {
    answer["readings"]
        .as_array()
        .unwrap_or_else(|| panic!("no readings in {answer}"))
        .iter()
        .map(|r| {
            (
                r["device_id"].as_str().unwrap_or_default().to_owned(),
                r["timestamp"].as_str().expect("timestamp").to_owned(),
                r["value"].as_f64().expect("value"),
            )
        })
        .collect()
}

async fn ingest(app: &TestApp, t: &str, readings: &[(&str, &str, f64)]) {
    let body = json!({
        "readings": readings
            .iter()
            .map(|(d, ts, v)| json!({"device_id": d, "timestamp": ts, "value": v}))
            .collect::<Vec<_>>()
    });
    let (status, answer) = app.post("/api/readings", t, body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

/// Two devices in a Group API group, with readings around 10:01 on 2025-03-01.
async fn readings_fixture(app: &TestApp, t: &str) -> (String, String, String) {
    let d1 = create_device(app, t, json!({"name": "Sensor, \"north\"", "unit": "°C"})).await;
    let d2 = create_device(app, t, json!({"name": "Plain", "unit": "%"})).await;
    let (status, group) = app
        .post(
            "/api/groups",
            t,
            json!({"name": "G", "device_ids": [d1, d2]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let day = "2025-03-01T";
    ingest(
        app,
        t,
        &[
            (&d1, &format!("{day}09:59:59.999999Z"), 0.5),
            (&d1, &format!("{day}10:00:00Z"), 1.0),
            (&d1, &format!("{day}10:00:30Z"), 1.5),
            (&d1, &format!("{day}10:01:00Z"), 2.0),
            (&d1, &format!("{day}10:01:29.5Z"), 2.5),
            (&d1, &format!("{day}10:01:30Z"), 3.0),
            (&d2, &format!("{day}10:00:00Z"), -1.0),
            (&d2, &format!("{day}10:01:00Z"), -2.25),
            (&d2, &format!("{day}10:02:00Z"), -3.0),
        ],
    )
    .await;
    (d1, d2, group["id"].as_str().unwrap().to_owned())
}

on_both_stores! {
    async fn a_time_range_returns_exactly_the_readings_in_it_newest_first(app) {
        let t = token("acme", &["admin"]);
        let (d1, d2, g) = readings_fixture(&app, &t).await;
        let range = "start_time=2025-03-01T10:00:00Z&end_time=2025-03-01T10:01:30Z";

        let (status, answer) = app.get(&format!("/api/devices/{d1}/readings?{range}"), &t).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({
            "device_id": d1,
            "readings": [
                {"timestamp": "2025-03-01T10:01:29.5Z", "value": 2.5},
                {"timestamp": "2025-03-01T10:01:00Z", "value": 2.0},
                {"timestamp": "2025-03-01T10:00:30Z", "value": 1.5},
                {"timestamp": "2025-03-01T10:00:00Z", "value": 1.0},
            ],
            "total": 4,
            "has_more": false,
            "next_cursor": null,
        }));

        let (status, answer) = app.get(&format!("/api/groups/{g}/readings?{range}"), &t).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["group_id"], g.as_str());
        assert_eq!(answer["total"], 6, "{answer}");
        let (first, second) = if d1 < d2 { (&d1, &d2) } else { (&d2, &d1) };
        let first_value = |d: &str, a: f64, b: f64| if d == d1 { a } else { b };
        assert_eq!(json_rows(&answer), vec![
            (d1.clone(), "2025-03-01T10:01:29.5Z".to_owned(), 2.5),
            (first.clone(), "2025-03-01T10:01:00Z".to_owned(), first_value(first, 2.0, -2.25)),
            (second.clone(), "2025-03-01T10:01:00Z".to_owned(), first_value(second, 2.0, -2.25)),
            (d1.clone(), "2025-03-01T10:00:30Z".to_owned(), 1.5),
            (first.clone(), "2025-03-01T10:00:00Z".to_owned(), first_value(first, 1.0, -1.0)),
            (second.clone(), "2025-03-01T10:00:00Z".to_owned(), first_value(second, 1.0, -1.0)),
        ]);
        let first_row = &answer["readings"][0];
        assert_eq!(first_row["device_name"], "Sensor, \"north\"");
        assert_eq!(first_row["unit"], "°C");

        // Offsets are instants: the same range written at +02:00.
        let shifted = "start_time=2025-03-01T12:00:00%2B02:00&end_time=2025-03-01T12:01:30%2B02:00";
        let (_, again) = app.get(&format!("/api/groups/{g}/readings?{shifted}"), &t).await;
        assert_eq!(again, answer);

        // Only a start: everything from it on; a limit keeps the newest.
        let (_, answer) = app.get(&format!("/api/devices/{d2}/readings?start_time=2025-03-01T10:01:00Z"), &t).await;
        assert_eq!(json_rows(&answer).iter().map(|r| r.2).collect::<Vec<_>>(), [-3.0, -2.25]);
        let (_, answer) = app.get(&format!("/api/groups/{g}/readings?start_time=2025-03-01T00:00:00Z&limit=2"), &t).await;
        assert_eq!(json_rows(&answer).iter().map(|r| r.2).collect::<Vec<_>>(), [-3.0, 3.0]);

        // Only an end: the 24 hours before it.
        let (_, answer) = app.get(&format!("/api/devices/{d1}/readings?end_time=2025-03-01T10:00:00Z"), &t).await;
        assert_eq!(answer["readings"], json!([{"timestamp": "2025-03-01T09:59:59.999999Z", "value": 0.5}]));
        let (_, answer) = app.get(&format!("/api/devices/{d1}/readings?end_time=2025-03-02T10:00:00Z"), &t).await;
        assert_eq!(answer["total"], 5, "{answer}");
        let (_, answer) = app.get(&format!("/api/devices/{d1}/readings?end_time=2025-03-02T09:59:59.999999Z"), &t).await;
        assert_eq!(answer["total"], 6, "{answer}");

        // A range with nothing in it.
        let (status, answer) = app.get(&format!("/api/groups/{g}/readings?start_time=2025-03-01T10:02:00.000001Z&end_time=2030-01-01T00:00:00Z"), &t).await;
        assert_eq!((status, &answer["readings"], &answer["total"]), (StatusCode::OK, &json!([]), &json!(0)));
    }
}

on_both_stores! {
    async fn contradictory_or_empty_ranges_are_refused_with_422(app) {
        let t = token("acme", &["admin"]);
        let (d1, _, g) = readings_fixture(&app, &t).await;
        for base in [format!("/api/devices/{d1}/readings"), format!("/api/groups/{g}/readings")] {
            for (query, parameter) in [
                ("hours=2&start_time=2025-03-01T10:00:00Z", "hours"),
                ("hours=2&end_time=2025-03-01T10:00:00Z", "hours"),
                ("start_time=2025-03-01T10:00:00Z&end_time=2025-03-01T10:00:00Z", "end_time"),
                ("start_time=2025-03-01T10:00:01Z&end_time=2025-03-01T10:00:00Z", "end_time"),
                ("start_time=2025-03-01T12:00:00%2B02:00&end_time=2025-03-01T10:00:00Z", "end_time"),
                ("start_time=yesterday", "start_time"),
                ("end_time=2025-13-01T00:00:00Z", "end_time"),
                ("start_time=2025-03-01T10:00:00Z&limit=0", "limit"),
            ] {
                let path = format!("{base}?{query}");
                let (status, body) = app.get(&path, &t).await;
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
                assert!(detail(&body).starts_with(&format!("{parameter}:")), "{path}: {body}");
            }
        }
    }
}

/// Splits an RFC 4180 document into records of fields, checking every line ends in CRLF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    assert!(text.ends_with("\r\n"), "{text:?}");
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF in {text:?}");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\n') => panic!("bare LF in {text:?}"),
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "unterminated: {text:?}"
    );
    records
}

async fn csv_of(app: &TestApp, path: &str, t: &str) -> Vec<Vec<String>> {
    let (status, headers, body) = get_accepting(app, path, t, "text/csv").await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    let content_type = headers
        .get("content-type")
        .expect("content-type")
        .to_str()
        .unwrap();
    assert!(
        content_type.starts_with("text/csv"),
        "{path}: {content_type}"
    );
    let text = body
        .as_str()
        .unwrap_or_else(|| panic!("{path}: CSV parsed as JSON: {body}"));
    parse_csv(text)
}

on_both_stores! {
    async fn readings_as_csv_hold_the_same_rows_as_json(app) {
        let t = token("acme", &["viewer"]);
        let admin = token("acme", &["admin"]);
        let (d1, _, g) = readings_fixture(&app, &admin).await;
        for range in ["start_time=2025-03-01T00:00:00Z", "start_time=2025-03-01T10:00:00Z&end_time=2025-03-01T10:01:30Z", "hours=1"] {
            // Group readings.
            let path = format!("/api/groups/{g}/readings?{range}");
            let (_, json_answer) = app.get(&path, &t).await;
            let records = csv_of(&app, &path, &t).await;
            assert_eq!(records[0], ["device_id", "device_name", "timestamp", "value", "unit"]);
            let rows = json_answer["readings"].as_array().unwrap();
            assert_eq!(records.len() - 1, rows.len(), "{path}");
            for (record, row) in records[1..].iter().zip(rows) {
                assert_eq!(record.len(), 5, "{record:?}");
                assert_eq!(record[0], row["device_id"].as_str().unwrap());
                assert_eq!(record[1], row["device_name"].as_str().unwrap());
                assert_eq!(record[2], row["timestamp"].as_str().unwrap());
                assert_eq!(record[3].parse::<f64>().unwrap(), row["value"].as_f64().unwrap(), "{record:?}");
                assert_eq!(record[4], row["unit"].as_str().unwrap());
            }
            // Device readings.
            let path = format!("/api/devices/{d1}/readings?{range}");
            let (_, json_answer) = app.get(&path, &t).await;
            let records = csv_of(&app, &path, &t).await;
            // The group CSV's columns: the device's id, name and unit on every row.
            assert_eq!(records[0], ["device_id", "device_name", "timestamp", "value", "unit"]);
            let rows = json_answer["readings"].as_array().unwrap();
            assert_eq!(records.len() - 1, rows.len(), "{path}");
            for (record, row) in records[1..].iter().zip(rows) {
                assert_eq!(record.len(), 5, "{record:?}");
                assert_eq!(record[0], d1);
                assert_eq!(record[1], "Sensor, \"north\"");
                assert_eq!(record[2], row["timestamp"].as_str().unwrap());
                assert_eq!(record[3].parse::<f64>().unwrap(), row["value"].as_f64().unwrap());
                assert_eq!(record[4], "°C");
            }
        }

        // The raw text: CRLF lines, the awkward name quoted with doubled quotes.
        let path = format!("/api/groups/{g}/readings?start_time=2025-03-01T10:01:29Z&end_time=2025-03-01T10:01:30Z");
        let (_, _, body) = get_accepting(&app, &path, &t, "text/csv").await;
        assert_eq!(
            body.as_str().unwrap(),
            format!("device_id,device_name,timestamp,value,unit\r\n{d1},\"Sensor, \"\"north\"\"\",2025-03-01T10:01:29.5Z,2.5,°C\r\n")
        );
        // No readings: only the header.
        let path = format!("/api/devices/{d1}/readings?start_time=2031-01-01T00:00:00Z");
        let (_, _, body) = get_accepting(&app, &path, &t, "text/csv").await;
        assert_eq!(body, json!("device_id,device_name,timestamp,value,unit\r\n"));
        // Accept lists: CSV among others, any case.
        let (_, headers, _) = get_accepting(&app, &path, &t, "application/json;q=0.5, TEXT/CSV").await;
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        // Without Accept: text/csv, JSON.
        let (_, headers, _) = get_accepting(&app, &path, &t, "*/*").await;
        assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
        // Errors stay JSON.
        let (status, _, body) = get_accepting(&app, &format!("/api/devices/{d1}/readings?hours=0"), &t, "text/csv").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail(&body).starts_with("hours:"), "{body}");
    }
}

on_both_stores! {
    async fn csv_cells_a_spreadsheet_would_run_are_prefixed_and_numbers_stay_numbers(app) {
        let t = token("acme", &["admin"]);
        let evil = create_device(&app, &t, json!({"name": "=HYPERLINK(\"http://evil.example\",\"open\")", "unit": "@u"})).await;
        let minus = create_device(&app, &t, json!({"name": "-2+3", "unit": "+C"})).await;
        let (status, group) = app.post("/api/groups", &t, json!({"name": "G", "device_ids": [evil, minus]})).await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let g = group["id"].as_str().expect("id");
        ingest(&app, &t, &[(&evil, "2025-03-01T10:00:00Z", -5.5), (&minus, "2025-03-01T09:00:00Z", -0.25)]).await;

        // Act
        let path = format!("/api/groups/{g}/readings?start_time=2025-03-01T00:00:00Z");
        let (status, _, body) = get_accepting(&app, &path, &t, "text/csv").await;

        // Assert: text starting with = + - @ gets a leading quote; values are plain numbers.
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body.as_str().unwrap(),
            format!(
                "device_id,device_name,timestamp,value,unit\r\n\
                 {evil},\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"open\"\")\",2025-03-01T10:00:00Z,-5.5,'@u\r\n\
                 {minus},'-2+3,2025-03-01T09:00:00Z,-0.25,'+C\r\n"
            )
        );
        let path = format!("/api/devices/{evil}/readings?start_time=2025-03-01T00:00:00Z");
        let (_, _, body) = get_accepting(&app, &path, &t, "text/csv").await;
        assert_eq!(
            body,
            json!(format!(
                "device_id,device_name,timestamp,value,unit\r\n\
                 {evil},\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"open\"\")\",2025-03-01T10:00:00Z,-5.5,'@u\r\n"
            ))
        );
    }
}

on_both_stores! {
    async fn only_ascii_letters_match_in_either_case(app) {
        let t = token("acme", &["admin"]);
        for name in ["Café Été", "ÅNGSTRÖM lab", "plain"] {
            create_device(&app, &t, json!({ "name": name })).await;
            create_group(&app, &t, name).await;
        }
        for path in ["/api/devices", "/customer/device-groups"] {
            let shape = if path == "/api/devices" { Shape::Bare } else { Shape::Object("groups") };
            let endpoint = Endpoint { path: path.into(), shape, names: Vec::new() };
            for (filter, want) in [
                ("CAFÉ", vec![]),
                ("CAFé", vec!["Café Été"]),
                ("été", vec![]),
                ("Été", vec!["Café Été"]),
                ("ångström", vec![]),
                ("ÅNGSTRÖM LAB", vec!["ÅNGSTRÖM lab"]),
                ("öm", vec![]),
                ("LAB", vec!["ÅNGSTRÖM lab"]),
            ] {
                let (names, total, _) = page(&app, &endpoint, &t, &format!("name={}", enc(filter))).await;
                assert_eq!(names, want, "{path} name={filter}");
                assert_eq!(total, want.len() as u64);
            }
        }
    }
}
