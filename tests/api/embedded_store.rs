//! The embedded store's caps: past one, writes answer 507 naming PostgreSQL, store nothing, and
//! everything already stored stays readable.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::devices::create_device;
use crate::helpers::{detail, now_unix, token, TestApp};
use crate::readings::{ago, rfc3339};

/// A bulk-ingest body of `count` readings of `device`, one a second back from the Unix second
/// `from`.
fn batch(device: &str, from: u64, count: u64) -> Value {
    json!({
        "readings": (0..count)
            .map(|i| json!({"device_id": device, "timestamp": rfc3339(from - i), "value": 21.5}))
            .collect::<Vec<_>>()
    })
}

fn assert_full(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    let detail = detail(body);
    assert!(detail.contains("embedded store is full"), "{detail}");
    assert!(detail.contains(what), "{detail}");
    assert!(detail.contains("DATABASE_URL"), "{detail}");
    assert!(detail.contains("PostgreSQL"), "{detail}");
}

#[tokio::test]
async fn writes_past_the_embedded_stores_caps_answer_507_store_nothing_and_reads_go_on() {
    // Arrange: room for 1,000 readings and 2 devices, in all tenants together
    let app = TestApp::spawn_with(
        None,
        &[
            ("IOT_MEMORY_MAX_READINGS", "1000"),
            ("IOT_MEMORY_MAX_DEVICES", "2"),
        ],
    )
    .await;
    let (acme, globex) = (token("acme", &["admin"]), token("globex", &["admin"]));
    let device = create_device(&app, &acme, json!({"name": "Boiler"})).await;
    let other = create_device(&app, &globex, json!({"name": "Chiller"})).await;
    // Fixed instants in the past, so that a batch sent again is the same readings.
    let start = now_unix() - 600;
    let (status, body) = app
        .post("/api/readings", &acme, batch(&device, start, 900))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Act: 200 new readings where 100 fit; one more device where none fits
    let (refused, refused_body) = app
        .post("/api/readings", &acme, batch(&device, start - 1_000, 200))
        .await;
    let (third, third_body) = app
        .post("/api/devices", &acme, json!({"name": "Pump"}))
        .await;

    // Assert: refused whole, by name of the cap and of PostgreSQL
    assert_full(refused, &refused_body, "1000 readings");
    assert_full(third, &third_body, "2 devices");
    let readings_of = |device: &str| format!("/api/devices/{device}/readings?hours=24&limit=10000");
    let (status, stored) = app.get(&readings_of(&device), &acme).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["readings"].as_array().expect("readings").len(), 900);
    let (status, devices) = app.get("/api/devices", &acme).await;
    assert_eq!(status, StatusCode::OK, "{devices}");
    assert_eq!(devices.as_array().expect("devices").len(), 1);
    // What fits is still taken; then the cap holds for every tenant and every way of writing.
    let (status, body) = app
        .post("/api/readings", &acme, batch(&device, start - 1_000, 100))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (single, single_body) = app
        .post(
            &format!("/api/devices/{other}/readings"),
            &globex,
            json!({"value": 1.0, "timestamp": ago(5_000)}),
        )
        .await;
    assert_full(single, &single_body, "1000 readings");
    let (status, stored) = app.get(&readings_of(&other), &globex).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["readings"], json!([]));
    // Re-sent readings replace, taking no room.
    let (status, body) = app
        .post("/api/readings", &acme, batch(&device, start, 900))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Deleting a device frees its room.
    let (status, body) = app.delete(&format!("/api/devices/{other}"), &globex).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    create_device(&app, &acme, json!({"name": "Pump"})).await;
}
