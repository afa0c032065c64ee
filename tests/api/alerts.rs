//! Alert state kept at ingest: the device's `state`, alerts with their events, acknowledgement,
//! windows that mute, the evaluator that acts on time, and the summaries that count it all.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use test_db::TestDatabase;

use crate::devices::create_device;
use crate::helpers::{detail, token, TestApp};
use crate::on_both_stores;
use crate::readings::{ago, ingest};

/// How long the evaluator may take to record what time alone changes (the issue allows 10 s).
const EVALUATOR_LIMIT: Duration = Duration::from_secs(12);

/// Warning above 30, critical above 40 (and below 0 / -10).
fn thermometer(name: &str) -> Value {
    json!({
        "name": name,
        "unit": "°C",
        "site_id": "site-1",
        "threshold_critical_lower": -10,
        "threshold_warning_lower": 0,
        "threshold_warning_upper": 30,
        "threshold_critical_upper": 40
    })
}

async fn get_ok(app: &TestApp, path: &str, token: &str) -> Value {
    let (status, body) = app.get(path, token).await;
    assert_eq!(status, StatusCode::OK, "GET {path} -> {body}");
    body
}

/// The alerts a list answer holds, asserting its shape.
fn alerts_of(list: &Value) -> &Vec<Value> {
    assert!(
        list["next_cursor"].is_null() || list["next_cursor"].is_string(),
        "{list}"
    );
    list["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("no alerts in {list}"))
}

fn event_types(alert: &Value) -> Vec<&str> {
    alert["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {alert}"))
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect()
}

/// Polls `path` until `done` holds of its answer, or fails after [`EVALUATOR_LIMIT`].
async fn eventually(
    app: &TestApp,
    path: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let body = get_ok(app, path, token).await;
        if done(&body) {
            return body;
        }
        assert!(
            start.elapsed() < EVALUATOR_LIMIT,
            "{path} did not change within {EVALUATOR_LIMIT:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

on_both_stores! {
    async fn a_device_answers_its_kept_state_and_an_older_reading_changes_nothing(app) {
        let admin = token("state", &["admin"]);
        let id = create_device(&app, &admin, thermometer("t1")).await;
        let path = format!("/api/devices/{id}");

        let fresh = get_ok(&app, &path, &admin).await;
        assert_eq!(
            fresh["state"],
            json!({"alert_status": "normal", "since": null, "last_reading_at": null,
                   "last_value": null, "freshness": "no_data", "in_maintenance": false}),
            "{fresh}"
        );

        let (t1, t2, t0) = (ago(30), ago(20), ago(60));
        ingest(&app, &admin, &[(&id, &t1, 35.0)]).await;
        ingest(&app, &admin, &[(&id, &t2, 36.0)]).await;
        ingest(&app, &admin, &[(&id, &t0, 50.0)]).await;
        let device = get_ok(&app, &path, &admin).await;
        let state = &device["state"];
        assert_eq!(state["alert_status"], "warning", "{device}");
        assert_eq!(state["since"], t1, "the warning began with the first reading over 30");
        assert_eq!(state["last_reading_at"], t2);
        assert_eq!(state["last_value"], 36.0);
        assert_eq!(state["freshness"], "fresh");

        // The same state in the device list and the group detail.
        let (status, list) = app.get("/api/devices", &admin).await;
        assert_eq!(status, StatusCode::OK);
        let listed = list.as_array().or_else(|| list["devices"].as_array()).expect("devices");
        assert_eq!(listed[0]["state"], *state, "{list}");
        let (status, group) = app
            .post("/api/groups", &admin, json!({"name": "G", "device_ids": [id]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let detail = get_ok(&app, &format!("/api/groups/{}", group["id"].as_str().unwrap()), &admin).await;
        assert_eq!(detail["devices"][0]["state"], *state, "{detail}");

        // New thresholds judge the latest reading again, from the moment they change.
        let (status, _) = app
            .request(Method::PUT, &path, Some(&admin), Some(json!({"threshold_warning_upper": 37})))
            .await;
        assert_eq!(status, StatusCode::OK);
        let device = get_ok(&app, &path, &admin).await;
        assert_eq!(device["state"]["alert_status"], "normal", "{device}");
        assert_ne!(device["state"]["since"], t1);
    }
}

on_both_stores! {
    async fn a_threshold_alert_opens_follows_the_status_and_resolves_with_its_story(app) {
        let admin = token("lifecycle", &["admin"]);
        let id = create_device(&app, &admin, thermometer("t1")).await;
        ingest(&app, &admin, &[(&id, &ago(50), 20.0)]).await;
        let none = get_ok(&app, "/api/alerts", &admin).await;
        assert!(alerts_of(&none).is_empty(), "{none}");

        ingest(&app, &admin, &[(&id, &ago(40), 35.0)]).await;
        ingest(&app, &admin, &[(&id, &ago(30), 45.0)]).await;
        ingest(&app, &admin, &[(&id, &ago(20), 33.0)]).await;
        let open = get_ok(&app, "/api/alerts", &admin).await;
        let alerts = alerts_of(&open);
        assert_eq!(alerts.len(), 1, "{open}");
        let alert = &alerts[0];
        assert_eq!(alert["device_id"], id.as_str());
        assert_eq!(alert["device_name"], "t1");
        assert_eq!(alert["kind"], "threshold");
        assert_eq!(alert["severity"], "warning");
        assert_eq!(alert["peak_severity"], "critical");
        assert_eq!(alert["state"], "open");
        assert_eq!(alert["resolved_at"], Value::Null);
        assert_eq!(alert["last_value"], 33.0);
        assert_eq!(alert["suppressed"], false);
        assert_eq!(alert["suppressed_by"], json!([]));
        assert_eq!(alert["acknowledgement"], Value::Null);

        ingest(&app, &admin, &[(&id, &ago(10), 20.0)]).await;
        let alert_id = alert["id"].as_str().expect("id").to_owned();
        let resolved = get_ok(&app, &format!("/api/alerts/{alert_id}"), &admin).await;
        assert_eq!(resolved["state"], "resolved", "{resolved}");
        assert_eq!(
            event_types(&resolved),
            ["opened", "escalated", "deescalated", "resolved"]
        );
        let events = resolved["events"].as_array().unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().expect("seq")).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq increases: {seqs:?}");
        assert_eq!(events[0]["value"], 35.0);
        assert_eq!(events[0]["severity"], "warning");
        assert_eq!(events[1]["severity"], "critical");
        assert_eq!(events[3]["value"], 20.0);
        for e in events {
            assert_eq!(e["suppressed"], false);
            assert_eq!(e["window_ids"], json!([]));
        }

        // Open by default; `state=resolved` and the device's history find it.
        assert!(alerts_of(&get_ok(&app, "/api/alerts", &admin).await).is_empty());
        let old = get_ok(&app, "/api/alerts?state=resolved", &admin).await;
        assert_eq!(alerts_of(&old).len(), 1, "{old}");
        let history = get_ok(&app, &format!("/api/devices/{id}/alerts"), &admin).await;
        assert_eq!(alerts_of(&history).len(), 1, "{history}");

        // Other tenants see none of it.
        let other = token("someone-else", &["admin"]);
        let (status, body) = app.get(&format!("/api/alerts/{alert_id}"), &other).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(alerts_of(&get_ok(&app, "/api/alerts?state=all", &other).await).is_empty());
    }
}

on_both_stores! {
    async fn acknowledgements_are_checked_and_end_as_their_mode_says(app) {
        let admin = token("acks", &["admin"]);
        let operator = token("acks", &["operator"]);
        let viewer = token("acks", &["viewer"]);
        let id = create_device(&app, &admin, thermometer("t1")).await;
        ingest(&app, &admin, &[(&id, &ago(30), 35.0)]).await;
        let list = get_ok(&app, "/api/alerts", &admin).await;
        let alert_id = alerts_of(&list)[0]["id"].as_str().expect("id").to_owned();
        let ack = format!("/api/alerts/{alert_id}/ack");

        let (status, body) = app.post(&ack, &viewer, json!({"mode": "until_resolved"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = app.post(&ack, &operator, json!({"mode": "until"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("until"), "{body}");
        let (status, body) = app
            .post(&ack, &operator, json!({"mode": "until", "until": ago(60)}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("until"), "{body}");
        let (status, body) = app
            .post(&ack, &operator, json!({"mode": "until_escalated", "note": "x".repeat(501)}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("note"), "{body}");

        let (status, body) = app
            .post(&ack, &operator, json!({"mode": "until_escalated", "note": "on it"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let acknowledgement = &body["acknowledgement"];
        assert_eq!(acknowledgement["by"], "tester", "{body}");
        assert_eq!(acknowledgement["mode"], "until_escalated");
        assert_eq!(acknowledgement["until"], Value::Null);
        assert_eq!(acknowledgement["note"], "on it");
        let acked = get_ok(&app, "/api/alerts?acknowledged=true", &admin).await;
        assert_eq!(alerts_of(&acked).len(), 1, "{acked}");

        // Escalation ends an until_escalated acknowledgement.
        ingest(&app, &admin, &[(&id, &ago(20), 45.0)]).await;
        let alert = get_ok(&app, &format!("/api/alerts/{alert_id}"), &admin).await;
        assert_eq!(alert["acknowledgement"], Value::Null, "{alert}");
        assert_eq!(
            event_types(&alert),
            ["opened", "acknowledged", "escalated", "unacknowledged"]
        );

        // Withdrawn by hand.
        let (status, body) = app.post(&ack, &admin, json!({"mode": "until_resolved"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = app.delete(&ack, &operator).await;
        assert!(status.is_success(), "{status} {body}");
        let alert = get_ok(&app, &format!("/api/alerts/{alert_id}"), &admin).await;
        assert_eq!(alert["acknowledgement"], Value::Null, "{alert}");
        assert_eq!(event_types(&alert).last(), Some(&"unacknowledged"));

        // A timed acknowledgement ends by itself, recorded by the evaluator.
        let soon = crate::readings::rfc3339(crate::helpers::now_unix() + 2);
        let (status, body) = app
            .post(&ack, &operator, json!({"mode": "until", "until": soon}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["acknowledgement"]["until"], soon);
        eventually(&app, &format!("/api/alerts/{alert_id}"), &admin, |a| {
            a["acknowledgement"].is_null()
        })
        .await;

        // Resolved alerts take no acknowledgement; unknown ones are not found.
        ingest(&app, &admin, &[(&id, &ago(10), 20.0)]).await;
        let (status, body) = app.post(&ack, &operator, json!({"mode": "until_resolved"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(detail(&body), "Alert is resolved");
        let (status, _) = app
            .post(
                "/api/alerts/00000000-0000-4000-8000-000000000000/ack",
                &operator,
                json!({"mode": "until_resolved"}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

on_both_stores! {
    async fn a_window_mutes_alert_events_and_its_end_announces_them_again(app) {
        let admin = token("muting", &["admin"]);
        let id = create_device(&app, &admin, thermometer("t1")).await;
        let (status, window) = app
            .post(
                "/customer/maintenance-windows",
                &admin,
                json!({"name": "works", "starts_at": "2020-01-01T00:00:00Z", "site_ids": ["site-1"]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{window}");
        let window_id = window["window_id"].as_str().expect("window_id").to_owned();

        ingest(&app, &admin, &[(&id, &ago(10), 45.0)]).await;
        let list = get_ok(&app, "/api/alerts?suppressed=true", &admin).await;
        let alert = &alerts_of(&list)[0];
        assert_eq!(alert["suppressed"], true, "{alert}");
        assert_eq!(alert["suppressed_by"], json!([window_id]));
        let alert_id = alert["id"].as_str().expect("id").to_owned();
        let device = get_ok(&app, &format!("/api/devices/{id}"), &admin).await;
        assert_eq!(device["state"]["in_maintenance"], true, "{device}");

        // The window ends: within seconds the alert is announced again.
        let (status, body) = app
            .patch(&format!("/customer/maintenance-windows/{window_id}"), &admin, json!({"enabled": false}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let alert = eventually(&app, &format!("/api/alerts/{alert_id}"), &admin, |a| {
            a["suppressed"] == false
        })
        .await;
        assert_eq!(event_types(&alert), ["opened", "unsuppressed"], "{alert}");
        let events = alert["events"].as_array().unwrap();
        assert_eq!(events[0]["suppressed"], true);
        assert_eq!(events[0]["window_ids"], json!([window_id]));
        assert_eq!(events[1]["suppressed"], false);

        // The window's report tells what its occurrence muted.
        let (status, report) = app
            .get(&format!("/customer/maintenance-windows/{window_id}/report"), &admin)
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["window_id"], window_id.as_str());
        assert_eq!(report["occurrence"]["starts_at"], "2020-01-01T00:00:00Z");
        let muted: Vec<&str> = report["alerts"]
            .as_array()
            .unwrap_or_else(|| panic!("{report}"))
            .iter()
            .map(|a| a["id"].as_str().expect("id"))
            .collect();
        assert_eq!(muted, [alert_id.as_str()], "{report}");

        // And back on: a `suppressed` event for the open alert.
        let (status, _) = app
            .patch(&format!("/customer/maintenance-windows/{window_id}"), &admin, json!({"enabled": true}))
            .await;
        assert_eq!(status, StatusCode::OK);
        let alert = eventually(&app, &format!("/api/alerts/{alert_id}"), &admin, |a| {
            a["suppressed"] == true
        })
        .await;
        assert_eq!(event_types(&alert), ["opened", "unsuppressed", "suppressed"], "{alert}");
    }
}

on_both_stores! {
    async fn a_window_that_never_started_has_no_report(app) {
        let admin = token("reports", &["admin"]);
        let (status, window) = app
            .post(
                "/customer/maintenance-windows",
                &admin,
                json!({"name": "later", "starts_at": "2099-01-01T00:00:00Z"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{window}");
        let (status, body) = app
            .get(&format!("/customer/maintenance-windows/{}/report", window["window_id"].as_str().unwrap()), &admin)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(detail(&body), "No occurrence has started");
    }
}

on_both_stores! {
    async fn a_silent_device_turns_stale_opens_a_stale_alert_and_its_next_reading_resolves_it(app) {
        let admin = token("stale", &["admin"]);
        let mut body = thermometer("quiet");
        body["stale_after_s"] = json!(60);
        let id = create_device(&app, &admin, body).await;
        let (status, group) = app
            .post("/api/groups", &admin, json!({"name": "G", "device_ids": [id]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let alerts_path = format!("/api/groups/{}/alerts", group["id"].as_str().unwrap());
        let summary = get_ok(&app, &alerts_path, &admin).await;
        assert_eq!(summary["freshness"], json!({"fresh": 0, "stale": 0, "no_data": 1}), "{summary}");

        // A reading two minutes old: stale at once, and the evaluator opens a stale alert.
        ingest(&app, &admin, &[(&id, &ago(120), 20.0)]).await;
        let device = get_ok(&app, &format!("/api/devices/{id}"), &admin).await;
        assert_eq!(device["state"]["freshness"], "stale", "{device}");
        assert_eq!(device["stale_after_s"], 60);
        let list = eventually(&app, "/api/alerts?kind=stale", &admin, |l| {
            l["alerts"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
        let alert = &alerts_of(&list)[0];
        assert_eq!(alert["severity"], "warning", "{alert}");
        let summary = get_ok(&app, &alerts_path, &admin).await;
        assert_eq!(summary["freshness"]["stale"], 1, "{summary}");
        assert_eq!(summary["open_alerts"], 1, "{summary}");
        assert_eq!(summary["normal"], 1, "freshness is counted apart");

        ingest(&app, &admin, &[(&id, &ago(1), 20.0)]).await;
        let alert = get_ok(&app, &format!("/api/alerts/{}", alert["id"].as_str().unwrap()), &admin).await;
        assert_eq!(alert["state"], "resolved", "{alert}");
        let summary = get_ok(&app, &alerts_path, &admin).await;
        assert_eq!(summary["freshness"], json!({"fresh": 1, "stale": 0, "no_data": 0}), "{summary}");
        assert_eq!(summary["open_alerts"], 0);

        // stale_after_s must be an integer within bounds.
        for bad in [json!(0), json!(1.5), json!("60"), json!(31_536_001)] {
            let (status, body) = app
                .request(Method::PUT, &format!("/api/devices/{id}"), Some(&admin), Some(json!({"stale_after_s": bad})))
                .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad} -> {body}");
            assert!(detail(&body).starts_with("stale_after_s"), "{body}");
        }
    }
}

on_both_stores! {
    async fn alert_lists_filter_and_page_without_repeats(app) {
        let admin = token("paging", &["admin"]);
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(create_device(&app, &admin, thermometer(&format!("d{i}"))).await);
        }
        for (i, id) in ids.iter().enumerate() {
            let value = if i % 2 == 0 { 45.0 } else { 35.0 };
            ingest(&app, &admin, &[(id, &ago(100 - i as u64), value)]).await;
        }
        let critical = get_ok(&app, "/api/alerts?severity=critical", &admin).await;
        assert_eq!(alerts_of(&critical).len(), 3, "{critical}");
        let mine = get_ok(&app, &format!("/api/alerts?device_id={}", ids[1]), &admin).await;
        assert_eq!(alerts_of(&mine).len(), 1, "{mine}");

        let mut seen = Vec::new();
        let mut path = "/api/alerts?limit=2".to_owned();
        loop {
            let page = get_ok(&app, &path, &admin).await;
            for a in alerts_of(&page) {
                seen.push(a["device_name"].as_str().expect("name").to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/alerts?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen, ["d4", "d3", "d2", "d1", "d0"], "newest opened first, each once");

        for bad in ["state=closed", "severity=normal", "kind=other", "limit=0", "cursor=@@", "suppressed=maybe"] {
            let (status, body) = app.get(&format!("/api/alerts?{bad}"), &admin).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad} -> {body}");
            let field = bad.split('=').next().unwrap();
            assert!(detail(&body).starts_with(field), "{bad} -> {body}");
        }
    }
}

/// Readings and the alert events they cause commit together: a server killed in the middle of
/// ingest leaves every device's kept status and its open alert in agreement.
#[tokio::test]
async fn a_server_killed_during_ingest_leaves_states_and_alerts_in_agreement() {
    let db = TestDatabase::create().await;
    let app = TestApp::spawn_on(Some(db.url())).await;
    let admin = token("crash", &["admin"]);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(create_device(&app, &admin, thermometer(&format!("c{i:02}"))).await);
    }
    // Writers flip every device across its threshold until the server dies under them.
    let client = reqwest::Client::new();
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (client, base, admin, ids) =
            (client.clone(), app.base.clone(), admin.clone(), ids.clone());
        writers.push(tokio::spawn(async move {
            for round in 0..10_000u64 {
                let value = if (round + w) % 2 == 0 { 45.0 } else { 20.0 };
                let readings: Vec<Value> = ids
                    .iter()
                    .map(|id| json!({"device_id": id, "timestamp": ago(1000 - round % 900), "value": value}))
                    .collect();
                let sent = client
                    .post(format!("{base}/api/readings"))
                    .bearer_auth(&admin)
                    .json(&json!({"readings": readings}))
                    .send()
                    .await;
                if sent.is_err() {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = app.kill().await;
    for w in writers {
        let _ = w.await;
    }

    let app = TestApp::spawn_on(Some(db.url())).await;
    let open = get_ok(&app, "/api/alerts?kind=threshold&limit=1000", &admin).await;
    let open_devices: Vec<&str> = alerts_of(&open)
        .iter()
        .map(|a| a["device_id"].as_str().expect("device_id"))
        .collect();
    for id in &ids {
        let device = get_ok(&app, &format!("/api/devices/{id}"), &admin).await;
        let status = device["state"]["alert_status"].as_str().expect("status");
        assert_eq!(
            status != "normal",
            open_devices.contains(&id.as_str()),
            "device {id} is {status} but its open alerts are {open_devices:?}"
        );
    }
}
