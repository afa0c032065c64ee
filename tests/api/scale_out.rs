//! The API keeps no state of its own: instances on one database serve the same data.

use reqwest::StatusCode;
use serde_json::json;
use store_postgres::testing::TestDatabase;

use crate::helpers::{token, TestApp};

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
