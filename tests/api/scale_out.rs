//! The API keeps no state of its own: instances on one database serve the same data.

use reqwest::StatusCode;
use serde_json::json;
use test_db::TestDatabase;

use crate::helpers::{token, TestApp};
use crate::readings::{ago, ingest};

#[tokio::test]
async fn two_instances_on_one_database_see_each_others_writes() {
    // Arrange: two servers, one database.
    let db = TestDatabase::create().await;
    let (a, b) = tokio::join!(
        TestApp::spawn_on(Some(db.url())),
        TestApp::spawn_on(Some(db.url()))
    );
    assert_ne!(a.base, b.base);
    let t = token("scale-out", &["admin"]);

    // Act: write through one, read through the other, and back.
    let (status, device) = a
        .post(
            "/api/devices",
            &t,
            json!({"name": "shared", "threshold_critical_upper": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    let id = device["id"].as_str().unwrap().to_owned();
    let (status, group) = b
        .post("/api/groups", &t, json!({"name": "G", "device_ids": [id]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let (status, _) = a
        .post("/api/readings", &t, json!({"readings": [{"device_id": id, "timestamp": "2026-01-01T00:00:00Z", "value": 11}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Assert: each sees the other's writes at once.
    let (_, seen_by_b) = b.get(&format!("/api/devices/{id}"), &t).await;
    assert_eq!(seen_by_b["name"], "shared");
    let (_, alerts) = b
        .get(
            &format!("/api/groups/{}/alerts", group["id"].as_str().unwrap()),
            &t,
        )
        .await;
    assert_eq!(
        alerts["critical"], 1,
        "b sees the reading a stored: {alerts}"
    );
    let (_, groups_seen_by_a) = a.get("/api/groups", &t).await;
    assert_eq!(groups_seen_by_a.as_array().map(Vec::len), Some(1));
    let (status, _) = a
        .delete(
            &format!("/api/groups/{}", group["id"].as_str().unwrap()),
            &t,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = b
        .get(
            &format!("/api/groups/{}", group["id"].as_str().unwrap()),
            &t,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a delete through a is a delete for b"
    );
}

/// Views of large groups are kept between requests: a write through another instance must
/// still show in the next read, whatever it changed.
#[tokio::test]
async fn a_large_groups_views_follow_writes_made_through_another_instance() {
    let db = TestDatabase::create().await;
    let (reader, writer) = tokio::join!(
        TestApp::spawn_on(Some(db.url())),
        TestApp::spawn_on(Some(db.url()))
    );
    let t = token("kept-views", &["admin"]);
    let mut ids = Vec::new();
    for i in 0..http_api::group_views::MIN_MEMBERS {
        let (status, device) = writer
            .post(
                "/api/devices",
                &t,
                json!({"name": format!("d{i:04}"), "site_id": "s1", "threshold_critical_upper": 10}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        ids.push(device["id"].as_str().unwrap().to_owned());
    }
    let (status, group) = writer
        .post(
            "/api/groups",
            &t,
            json!({"name": "Large", "device_ids": ids}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let detail = format!("/api/groups/{}", group["id"].as_str().unwrap());
    let alerts = format!("{detail}/alerts");
    let read = |path: String| {
        let reader = &reader;
        let t = &t;
        async move {
            // Twice: the second answer is the kept one, when it is kept.
            let (status, first) = reader.get(&path, t).await;
            assert_eq!(status, StatusCode::OK, "{first}");
            let (_, second) = reader.get(&path, t).await;
            assert_eq!(first, second);
            second
        }
    };
    let readings = format!("{detail}/readings?start_time=2025-12-31T00:00:00Z");
    assert_eq!(read(alerts.clone()).await["critical"], 0);
    assert_eq!(read(detail.clone()).await["devices"][0]["name"], "d0000");
    assert_eq!(read(readings.clone()).await["total"], 0);
    // Kept for this tenant only.
    let stranger = token("kept-views-other", &["admin"]);
    for path in [&detail, &alerts, &readings] {
        let (status, body) = reader.get(path, &stranger).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }

    // A reading.
    let (status, _) = writer
        .post("/api/readings", &t, json!({"readings": [{"device_id": ids[0], "timestamp": "2026-01-01T00:00:00Z", "value": 11}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(read(alerts.clone()).await["critical"], 1);
    assert_eq!(read(readings.clone()).await["total"], 1);
    assert_eq!(
        read(detail.clone()).await["devices"][0]["alert_status"],
        "critical"
    );

    // A device's name.
    let (status, _) = writer
        .request(
            reqwest::Method::PUT,
            &format!("/api/devices/{}", ids[0]),
            Some(&t),
            Some(json!({"name": "zz-renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        read(readings.clone()).await["readings"][0]["device_name"],
        "zz-renamed"
    );
    let devices = read(detail.clone()).await["devices"].clone();
    assert_eq!(devices[0]["name"], "d0001");
    assert_eq!(devices[ids.len() - 1]["name"], "zz-renamed");

    // A window that applies now.
    let (status, window) = writer
        .post(
            "/customer/maintenance-windows",
            &t,
            json!({"name": "Now", "starts_at": "2020-01-01T00:00:00Z", "site_ids": ["s1"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{window}");
    assert_eq!(
        read(alerts.clone()).await["in_maintenance"],
        ids.len(),
        "the window mutes every member"
    );

    // The group itself.
    let (status, _) = writer.delete(&detail, &t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = reader.get(&detail, &t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A kept group detail, brought up to date by its members' latest readings alone while no status
/// moved, answers exactly what a server keeping nothing reads afresh: new values, a first
/// reading (no data to fresh), then a reading that changes a status.
#[tokio::test]
async fn a_kept_detail_answers_as_a_fresh_read_while_readings_arrive() {
    let db = TestDatabase::create().await;
    let (kept, fresh) = tokio::join!(
        TestApp::spawn_on(Some(db.url())),
        TestApp::spawn_with(Some(db.url()), &[("IOT_GROUP_VIEWS_MB", "0")])
    );
    let t = token("kept-detail", &["admin"]);
    let mut ids = Vec::new();
    for (name, stale_after_s) in [("a", json!(null)), ("b", json!(3600)), ("c", json!(null))] {
        let (status, device) = kept
            .post(
                "/api/devices",
                &t,
                json!({"name": name, "threshold_warning_upper": 30, "threshold_critical_upper": 40,
                       "stale_after_s": stale_after_s}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        ids.push(device["id"].as_str().unwrap().to_owned());
    }
    let (status, group) = kept
        .post("/api/groups", &t, json!({"name": "G", "device_ids": ids}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let detail = format!("/api/groups/{}", group["id"].as_str().unwrap());
    let (a, b, c) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    ingest(&kept, &t, &[(a, &ago(50), 10.0), (b, &ago(50), 20.0)]).await;
    // Both servers' answers, asserted equal; the kept one asked twice (kept, then a hit).
    let same = || async {
        let (status, first) = kept.get(&detail, &t).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let (_, second) = kept.get(&detail, &t).await;
        let (_, read_afresh) = fresh.get(&detail, &t).await;
        assert_eq!(first, read_afresh, "kept vs read afresh");
        assert_eq!(second, read_afresh, "kept vs read afresh");
        read_afresh
    };
    let device = |body: &serde_json::Value, i: usize| body["devices"][i]["state"].clone();
    let before = same().await;
    assert_eq!(device(&before, 0)["last_value"], 10.0);

    // Readings that change no status.
    // One instant, sent and expected: a second `ago` call may fall in the next second.
    let at = ago(40);
    ingest(&kept, &t, &[(a, &at, 11.0), (b, &at, 21.0)]).await;
    let after = same().await;
    assert_eq!(device(&after, 0)["last_value"], 11.0, "{after}");
    assert_eq!(device(&after, 1)["last_value"], 21.0);
    assert_eq!(device(&after, 1)["last_reading_at"], at);
    assert_eq!(device(&after, 0)["last_reading_at"], at);
    assert_eq!(device(&after, 0)["since"], device(&before, 0)["since"]);

    // A first reading: no data to fresh.
    assert_eq!(device(&after, 2)["freshness"], "no_data");
    ingest(&kept, &t, &[(c, &ago(30), 5.0)]).await;
    let first = same().await;
    assert_eq!(device(&first, 2)["freshness"], "fresh", "{first}");
    assert_eq!(device(&first, 2)["last_value"], 5.0);
    assert_eq!(first["alert_summary"]["freshness"]["no_data"], 0);

    // A reading that changes a status.
    ingest(&kept, &t, &[(a, &ago(20), 35.0)]).await;
    let warned = same().await;
    assert_eq!(device(&warned, 0)["alert_status"], "warning", "{warned}");
    assert_eq!(warned["alert_summary"]["warning"], 1);
    assert_eq!(warned["alert_summary"]["open_alerts"], 1);
}

/// A large group's kept alert summary (and its tree's), brought up to date by the states of the
/// devices newer events name, answers exactly what a server keeping nothing reads afresh:
/// statuses, alerts and acknowledgements changing under ingest, readings that change nothing,
/// then a write of the scope (a device's labels, which a window's scope names).
#[tokio::test]
async fn a_kept_summary_answers_as_a_fresh_read_while_statuses_change() {
    let db = TestDatabase::create().await;
    let (kept, fresh) = tokio::join!(
        TestApp::spawn_on(Some(db.url())),
        TestApp::spawn_with(Some(db.url()), &[("IOT_GROUP_VIEWS_MB", "0")])
    );
    let t = token("kept-summary", &["admin"]);
    let mut ids = Vec::new();
    for i in 0..http_api::group_views::MIN_MEMBERS + 10 {
        let (status, device) = kept
            .post(
                "/api/devices",
                &t,
                json!({"name": format!("d{i:04}"), "threshold_warning_upper": 30,
                       "threshold_critical_upper": 40}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        ids.push(device["id"].as_str().unwrap().to_owned());
    }
    let (status, root) = kept.post("/api/groups", &t, json!({"name": "Root"})).await;
    assert_eq!(status, StatusCode::CREATED, "{root}");
    let (status, group) = kept
        .post(
            "/api/groups",
            &t,
            json!({"name": "All", "device_ids": ids, "parent_id": root["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let alerts = format!("/api/groups/{}/alerts", group["id"].as_str().unwrap());
    let tree = format!(
        "/api/groups/{}/alerts?include_descendants=true",
        root["id"].as_str().unwrap()
    );
    // Both servers' answers, asserted equal; the kept one asked twice (kept, then a hit).
    let same = |path: String| {
        let (kept, fresh, t) = (&kept, &fresh, &t);
        async move {
            let (status, first) = kept.get(&path, t).await;
            assert_eq!(status, StatusCode::OK, "{first}");
            let (_, second) = kept.get(&path, t).await;
            let (_, read_afresh) = fresh.get(&path, t).await;
            assert_eq!(first, read_afresh, "{path}: kept vs read afresh");
            assert_eq!(second, read_afresh, "{path}: kept vs read afresh");
            read_afresh
        }
    };
    let both = || async { (same(alerts.clone()).await, same(tree.clone()).await) };
    let all: Vec<(&str, String, f64)> = ids.iter().map(|id| (id.as_str(), ago(60), 10.0)).collect();
    let readings = |r: &[(&str, String, f64)]| -> Vec<(String, String, f64)> {
        r.iter()
            .map(|(d, at, v)| ((*d).to_owned(), at.clone(), *v))
            .collect()
    };
    let send = |r: Vec<(String, String, f64)>| {
        let (kept, t) = (&kept, &t);
        async move {
            let r: Vec<(&str, &str, f64)> = r
                .iter()
                .map(|(d, at, v)| (d.as_str(), at.as_str(), *v))
                .collect();
            ingest(kept, t, &r).await;
        }
    };
    let (summary, of_tree) = both().await;
    assert_eq!(summary["freshness"]["no_data"], ids.len(), "{summary}");
    assert_eq!(summary, of_tree);

    send(readings(&all)).await;
    assert_eq!(both().await.0["freshness"]["fresh"], ids.len());

    // Statuses change: two warnings, one critical.
    send(vec![
        (ids[0].clone(), ago(50), 35.0),
        (ids[1].clone(), ago(50), 36.0),
        (ids[2].clone(), ago(50), 45.0),
    ])
    .await;
    let (warned, _) = both().await;
    assert_eq!(
        (warned["warning"].clone(), warned["critical"].clone()),
        (json!(2), json!(1)),
        "{warned}"
    );
    assert_eq!(warned["open_alerts"], 3);

    // Readings that change no status, then an acknowledgement and a resolution.
    send(vec![
        (ids[0].clone(), ago(40), 34.0),
        (ids[5].clone(), ago(40), 12.0),
    ])
    .await;
    both().await;
    let (status, list) = kept.get("/api/alerts?state=open&limit=10", &t).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let alert_id = list["alerts"][0]["id"]
        .as_str()
        .expect("an alert")
        .to_owned();
    let (status, body) = kept
        .post(
            &format!("/api/alerts/{alert_id}/ack"),
            &t,
            json!({"mode": "until_resolved"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(both().await.0["acknowledged"], 1);
    send(vec![(ids[1].clone(), ago(30), 20.0)]).await;
    let (resolved, _) = both().await;
    assert_eq!(
        (resolved["warning"].clone(), resolved["open_alerts"].clone()),
        (json!(1), json!(2))
    );

    // A write of the scope: a label a window names mutes the device.
    let (status, window) = kept
        .post(
            "/customer/maintenance-windows",
            &t,
            json!({"name": "Labelled", "starts_at": "2020-01-01T00:00:00Z", "labels": {"zone": "north"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{window}");
    assert_eq!(both().await.0["in_maintenance"], 0);
    let (status, body) = kept
        .request(
            reqwest::Method::PUT,
            &format!("/api/devices/{}", ids[2]),
            Some(&t),
            Some(json!({"labels": {"zone": "north"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (muted, _) = both().await;
    assert_eq!(
        (muted["in_maintenance"].clone(), muted["suppressed"].clone()),
        (json!(1), json!(1)),
        "{muted}"
    );
}
