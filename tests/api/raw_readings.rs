//! Raw readings (issue 16): pages with `has_more`/`next_cursor` and `offset`, cursors valid only
//! for their own query, CSV attachments, NDJSON exports, and range deletes that keep the
//! device's state true.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::devices::create_device;
use crate::helpers::{detail, token, TestApp};
use crate::on_both_stores;
use crate::readings::{ago, ingest};

async fn group_of(app: &TestApp, t: &str, name: &str, devices: &[&str]) -> String {
    let (status, group) = app
        .post(
            "/api/groups",
            t,
            json!({"name": name, "device_ids": devices}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    group["id"].as_str().expect("id").to_owned()
}

/// Two devices in a group; readings of both at the same instants (ties), and of one alone.
async fn fixture(app: &TestApp, admin: &str) -> (String, String, String) {
    let d1 = create_device(app, admin, json!({"name": "Pump \"A\"/1", "unit": "°C"})).await;
    let d2 = create_device(app, admin, json!({"name": "Pump B", "unit": "kPa"})).await;
    let g = group_of(app, admin, "Plant/North \"hall\"", &[&d1, &d2]).await;
    let mut readings = Vec::new();
    let stamps: Vec<String> = (0..15).map(|i| ago(600 + i * 30)).collect();
    for (i, at) in stamps.iter().enumerate() {
        readings.push((d1.as_str(), at.as_str(), i as f64));
        if i % 3 == 0 {
            readings.push((d2.as_str(), at.as_str(), 100.0 + i as f64));
        }
    }
    ingest(app, admin, &readings).await;
    (d1, d2, g)
}

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

/// Walks `path` (with `params`) page by page through `next_cursor`, ingesting a reading newer
/// than all after the first page; returns the readings walked.
async fn walk(
    app: &TestApp,
    t: &str,
    admin: &str,
    path: &str,
    params: &str,
    newcomer: &str,
) -> Vec<Value> {
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        assert!(page < 50, "the walk ends");
        let url = match &cursor {
            None => format!("{path}?{params}"),
            // Every other page sends the cursor alone: the cursor's parameters apply.
            Some(c) if page % 2 == 0 => format!("{path}?cursor={}", enc(c)),
            Some(c) => format!("{path}?{params}&cursor={}", enc(c)),
        };
        let (status, answer) = app.get(&url, t).await;
        assert_eq!(status, StatusCode::OK, "{url}: {answer}");
        let rows = answer["readings"].as_array().expect("readings").clone();
        assert!(rows.len() <= 4, "{answer}");
        assert_eq!(answer["total"], rows.len());
        walked.extend(rows);
        if page == 0 {
            ingest(app, admin, &[(newcomer, &ago(1), 999.0)]).await;
        }
        match (&answer["has_more"], &answer["next_cursor"]) {
            (Value::Bool(true), Value::String(next)) => cursor = Some(next.clone()),
            (Value::Bool(false), Value::Null) => return walked,
            other => panic!("has_more and next_cursor disagree: {other:?}"),
        }
    }
    unreachable!()
}

on_both_stores! {
    async fn cursor_pages_give_every_reading_once_while_readings_arrive(app) {
        // Arrange
        let admin = token("acme", &["admin"]);
        let t = token("acme", &["viewer"]);
        let (d1, _, g) = fixture(&app, &admin).await;
        let params = "hours=1&limit=4";
        let (_, whole_group) = app.get(&format!("/api/groups/{g}/readings?hours=1&limit=1000"), &t).await;
        assert_eq!(whole_group["total"], 20);
        assert_eq!(whole_group["has_more"], false);

        // Act
        let group_walk = walk(&app, &t, &admin, &format!("/api/groups/{g}/readings"), params, &d1).await;
        let (_, whole_device) = app.get(&format!("/api/devices/{d1}/readings?hours=1&limit=1000"), &t).await;
        let device_walk = walk(&app, &t, &admin, &format!("/api/devices/{d1}/readings"), params, &d1).await;

        // Assert: the readings of the first answer, once each, in order; none that came later.
        assert_eq!(Value::Array(group_walk), whole_group["readings"]);
        assert_eq!(Value::Array(device_walk), whole_device["readings"]);
        assert_eq!(whole_device["total"], 16, "with the reading that came during the group's walk");
    }
}

on_both_stores! {
    async fn a_cursor_serves_only_its_own_route_device_group_parameters_and_tenant(app) {
        let admin = token("acme", &["admin"]);
        let (d1, d2, g) = fixture(&app, &admin).await;
        let (_, page) = app.get(&format!("/api/devices/{d1}/readings?hours=1&limit=4"), &admin).await;
        let device_cursor = enc(page["next_cursor"].as_str().expect("a cursor"));
        let (_, page) = app.get(&format!("/api/groups/{g}/readings?hours=1&limit=4"), &admin).await;
        let group_cursor = enc(page["next_cursor"].as_str().expect("a cursor"));
        let other_group = group_of(&app, &admin, "Other", &[&d1]).await;
        let mut tampered = device_cursor.clone().into_bytes();
        let middle = tampered.len() / 2;
        tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();

        let refused = [
            (format!("/api/devices/{d1}/readings?hours=1&limit=4&cursor={device_cursor}"), "acme-2", "another tenant"),
            (format!("/api/devices/{d2}/readings?hours=1&limit=4&cursor={device_cursor}"), "acme", "another device"),
            (format!("/api/groups/{g}/readings?hours=1&limit=4&cursor={device_cursor}"), "acme", "another route"),
            (format!("/api/devices/{d1}/readings?hours=1&limit=4&cursor={group_cursor}"), "acme", "another route"),
            (format!("/api/groups/{other_group}/readings?hours=1&limit=4&cursor={group_cursor}"), "acme", "another group"),
            (format!("/api/devices/{d1}/readings?hours=2&limit=4&cursor={device_cursor}"), "acme", "other hours"),
            (format!("/api/devices/{d1}/readings?hours=1&limit=5&cursor={device_cursor}"), "acme", "another limit"),
            (format!("/api/groups/{g}/readings?start_time=2025-01-01T00:00:00Z&limit=4&cursor={group_cursor}"), "acme", "another range"),
            (format!("/api/devices/{d1}/readings?hours=1&limit=4&cursor={tampered}"), "acme", "tampered"),
            (format!("/api/devices/{d1}/readings?cursor=bm90LWEtY3Vyc29y"), "acme", "made up"),
            (format!("/api/devices/{d1}/readings?cursor={}", "A".repeat(2_000)), "acme", "too long"),
        ];
        for (path, tenant, why) in refused {
            let (status, body) = app.get(&path, &token(tenant, &["viewer"])).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {body}");
            assert!(detail(&body).starts_with("cursor: "), "{why}: {body}");
        }
        // Both cursor and offset: refused, naming both.
        let (status, body) = app.get(&format!("/api/devices/{d1}/readings?offset=4&cursor={device_cursor}"), &admin).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("cursor: ") && detail(&body).contains("offset"), "{body}");
        // The same query goes on.
        let (status, body) = app.get(&format!("/api/devices/{d1}/readings?hours=1&limit=4&cursor={device_cursor}"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

on_both_stores! {
    async fn an_offset_skips_readings_within_its_bound(app) {
        let admin = token("acme", &["admin"]);
        let (d1, _, g) = fixture(&app, &admin).await;
        for path in [format!("/api/devices/{d1}/readings"), format!("/api/groups/{g}/readings")] {
            let (_, whole) = app.get(&format!("{path}?hours=1"), &admin).await;
            let whole = whole["readings"].as_array().unwrap().clone();
            let (status, page) = app.get(&format!("{path}?hours=1&offset=3&limit=4"), &admin).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert_eq!(page["readings"], json!(whole[3..7]));
            assert_eq!(page["has_more"], true);
            let (_, next) = app.get(&format!("{path}?hours=1&limit=4&cursor={}", enc(page["next_cursor"].as_str().unwrap())), &admin).await;
            assert_eq!(next["readings"], json!(whole[7..11]), "a cursor goes on from an offset page");
            let (_, last) = app.get(&format!("{path}?hours=1&offset={}", whole.len() - 1), &admin).await;
            assert_eq!((last["total"].clone(), last["has_more"].clone(), last["next_cursor"].clone()), (json!(1), json!(false), Value::Null));
            for (offset, want) in [("1000001", "offset: must be from 0 to 1000000, got 1000001"), ("-1", "offset: must be from 0 to 1000000, got -1"), ("x", "offset: must be an integer, got 'x'")] {
                let (status, body) = app.get(&format!("{path}?offset={offset}"), &admin).await;
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
                assert_eq!(detail(&body), want);
            }
        }
    }
}

on_both_stores! {
    async fn csv_answers_are_attachments_named_after_their_device_or_group(app) {
        let admin = token("acme", &["admin"]);
        let (d1, _, g) = fixture(&app, &admin).await;
        for (path, file) in [
            (format!("/api/devices/{d1}/readings?hours=1"), "Pump_A1-readings.csv"),
            (format!("/api/groups/{g}/readings?hours=1"), "PlantNorth_hall-readings.csv"),
        ] {
            let (status, headers, body) = app.get_accepting(&path, &admin, "text/csv").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                headers["content-disposition"].to_str().unwrap(),
                format!("attachment; filename=\"{file}\"")
            );
            assert!(body.starts_with("device_id,device_name,timestamp,value,unit\r\n"), "{body}");
            let (_, headers, _) = app.get_accepting(&path, &admin, "application/json").await;
            assert!(headers.get("content-disposition").is_none(), "JSON is no attachment");
        }
        let (_, headers, body) = app.get_accepting(&format!("/api/devices/{d1}/readings?hours=1"), &admin, "text/csv").await;
        let first = body.lines().nth(1).expect("a row");
        assert!(first.starts_with(&format!("{d1},\"Pump \"\"A\"\"/1\",")), "{first}");
        assert!(first.ends_with(",°C"), "{first}");
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    }
}

on_both_stores! {
    async fn ndjson_streams_the_json_answers_reading_objects_one_per_line(app) {
        let admin = token("acme", &["admin"]);
        let (d1, _, g) = fixture(&app, &admin).await;
        for path in [format!("/api/devices/{d1}/readings?hours=1"), format!("/api/groups/{g}/readings?hours=1")] {
            let (_, json_answer) = app.get(&format!("{path}&limit=10000"), &admin).await;
            let (status, headers, body) = app.get_accepting(&path, &admin, "application/x-ndjson").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(headers["content-type"].to_str().unwrap(), "application/x-ndjson");
            assert!(body.ends_with('\n'), "{body}");
            let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
            assert_eq!(Value::Array(lines), json_answer["readings"], "{path}");
            let (_, _, capped) = app.get_accepting(&format!("{path}&limit=3"), &admin, "application/x-ndjson").await;
            assert_eq!(capped.lines().count(), 3);
            for (query, field) in [("limit=10000001", "limit: "), ("limit=0", "limit: "), ("offset=1", "offset: "), ("cursor=abc", "cursor: "), ("hours=0", "hours: ")] {
                let (status, _, body) = app.get_accepting(&format!("{path}&{query}"), &admin, "application/x-ndjson").await;
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
                assert!(body.contains(&format!("\"detail\":\"{field}")), "{query}: {body}");
            }
        }
        let unknown = uuid::Uuid::new_v4();
        let (status, _, _) = app.get_accepting(&format!("/api/devices/{unknown}/readings"), &admin, "application/x-ndjson").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = app.get_accepting(&format!("/api/devices/{d1}/readings"), &token("acme-2", &["admin"]), "application/x-ndjson").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's device");
    }
}

on_both_stores! {
    async fn deleting_a_range_counts_it_and_keeps_the_latest_reading_and_state_true(app) {
        // Arrange: normal, then a warning reading that opens an alert.
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "Boiler", "threshold_warning_upper": 30.0})).await;
        let (t1, t2, t3) = (ago(300), ago(200), ago(100));
        ingest(&app, &admin, &[(&d, &t1, 10.0), (&d, &t2, 20.0), (&d, &t3, 35.0)]).await;
        let (_, device) = app.get(&format!("/api/devices/{d}"), &admin).await;
        assert_eq!(device["state"]["alert_status"], "warning");
        let path = format!("/api/devices/{d}/readings");

        // Refusals: role, missing or bad range, unknown parameter, unknown device.
        let range = format!("start_time={}&end_time={}", enc(&t3), enc(&ago(0)));
        let (status, body) = app.delete(&format!("{path}?{range}"), &token("acme", &["viewer"])).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        for (query, want) in [
            (format!("end_time={}", enc(&t3)), "start_time: required"),
            (format!("start_time={}", enc(&t3)), "end_time: required"),
            (String::new(), "start_time: required"),
            (format!("start_time={}&end_time={}", enc(&t3), enc(&t1)), "end_time: must be later than start_time"),
            (format!("start_time=soon&end_time={}", enc(&t1)), "start_time: 'soon' is not an RFC 3339 date-time"),
            (format!("{range}&hours=1"), "hours: unknown query parameter"),
        ] {
            let (status, body) = app.delete(&format!("{path}?{query}"), &admin).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
            assert_eq!(detail(&body), want, "{query}");
        }
        let (status, _) = app.delete(&format!("/api/devices/{}/readings?{range}", uuid::Uuid::new_v4()), &admin).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app.delete(&format!("{path}?{range}"), &token("acme-2", &["admin"])).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's device");

        // Act: delete the latest reading.
        let (status, body) = app.delete(&format!("{path}?{range}"), &admin).await;

        // Assert: counted; the reading before it is the latest, judged; the alert resolved.
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"deleted": 1}));
        let (_, device) = app.get(&format!("/api/devices/{d}"), &admin).await;
        assert_eq!(device["state"]["alert_status"], "normal", "{device}");
        assert_eq!(device["state"]["last_value"], 20.0, "{device}");
        assert_eq!(device["state"]["last_reading_at"], t2.as_str(), "{device}");
        let (_, alerts) = app.get(&format!("/api/alerts?device_id={d}&state=all"), &admin).await;
        assert_eq!(alerts["alerts"][0]["state"], "resolved", "{alerts}");
        let (_, readings) = app.get(&format!("{path}?hours=1"), &admin).await;
        assert_eq!(readings["total"], 2);
        let (status, again) = app.delete(&format!("{path}?{range}"), &admin).await;
        assert_eq!((status, again), (StatusCode::OK, json!({"deleted": 0})), "a repeat deletes nothing");

        // Everything: no reading left, no data.
        let all = format!("start_time=2000-01-01T00:00:00Z&end_time={}", enc(&ago(0)));
        let (_, body) = app.delete(&format!("{path}?{all}"), &admin).await;
        assert_eq!(body, json!({"deleted": 2}));
        let (_, device) = app.get(&format!("/api/devices/{d}"), &admin).await;
        assert_eq!(device["state"]["last_reading_at"], Value::Null, "{device}");
        assert_eq!(device["state"]["freshness"], "no_data", "{device}");
    }
}

/// The server's resident memory, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A million readings exported as NDJSON: the rows start coming before the export is read
/// (the server waits on the client), every row arrives once, and the server's memory stays
/// flat, far below what holding the export would take (31 MB for the rows alone, about 55 MB
/// of lines).
#[tokio::test]
async fn a_million_readings_stream_as_ndjson_in_flat_memory_on_postgres() {
    const ROWS: u64 = 1_000_000;
    let db = test_db::TestDatabase::create().await;
    let app = TestApp::spawn_on(Some(db.url())).await;
    let admin = token("acme", &["admin"]);
    let d = create_device(&app, &admin, json!({"name": "Busy"})).await;
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let device = uuid::Uuid::parse_str(&d).unwrap();
    client
        .execute(
            "INSERT INTO readings (tenant_id, device_id, ts, value) \
             SELECT 'acme', $1, now() - make_interval(secs => i), i FROM generate_series(1, $2::bigint) i",
            &[&device, &i64::try_from(ROWS).unwrap()],
        )
        .await
        .expect("seeded");
    let before = resident_kib(app.pid());

    let mut response = app
        .client()
        .request(
            Method::GET,
            format!(
                "{}/api/devices/{d}/readings?start_time=2000-01-01T00:00:00Z",
                app.base
            ),
        )
        .bearer_auth(&admin)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let first = tokio::time::timeout(Duration::from_secs(30), response.chunk())
        .await
        .expect("the first rows come without the whole export")
        .expect("read")
        .expect("a chunk");
    // The client holds back: the server must wait, not read ahead into memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut peak = resident_kib(app.pid());
    let mut lines = first.iter().filter(|b| **b == b'\n').count() as u64;
    let mut previous: Option<Value> = None;
    let mut chunks = 0_u64;
    let mut tail = Vec::new();
    tail.extend_from_slice(&first);
    while let Some(chunk) = response.chunk().await.expect("read") {
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        chunks += 1;
        if chunks % 200 == 0 {
            peak = peak.max(resident_kib(app.pid()));
        }
        tail.extend_from_slice(&chunk);
        // Keep only the last partial line, checking the order of whole ones now and then.
        if let Some(end) = tail.iter().rposition(|b| *b == b'\n') {
            if chunks % 500 == 0 {
                let text = std::str::from_utf8(&tail[..end]).expect("UTF-8");
                let last: Value =
                    serde_json::from_str(text.lines().last().unwrap()).expect("a JSON line");
                if let Some(p) = &previous {
                    assert!(
                        last["timestamp"].as_str() < p["timestamp"].as_str(),
                        "newest first"
                    );
                }
                previous = Some(last);
            }
            tail.drain(..=end);
        }
    }
    assert!(tail.is_empty(), "the stream ends with a whole line");
    assert_eq!(lines, ROWS, "every reading once");
    let grown = peak.saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "the server grew by {grown} KiB while exporting"
    );
    drop(app);
    drop(db);
}
