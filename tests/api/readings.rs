//! `/api/readings` and `/api/devices/{id}/readings`: all-or-nothing ingest, replacement of a
//! re-sent reading, look-back and limit.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::devices::{create_device, FORBIDDEN};
use crate::helpers::{detail, now_unix, token, TestApp};
use crate::on_both_stores;

/// `unix` seconds as an RFC 3339 UTC date-time with whole seconds, as the server prints it.
pub(crate) fn rfc3339(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).expect("days");
    let secs = unix % 86_400;
    // Days to civil date (proleptic Gregorian), after Howard Hinnant.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The instant `seconds` ago, in RFC 3339.
pub(crate) fn ago(seconds: u64) -> String {
    rfc3339(now_unix() - seconds)
}

/// Ingests `readings` (`[device, timestamp, value]`), asserting 201.
pub(crate) async fn ingest(app: &TestApp, token: &str, readings: &[(&str, &str, f64)]) {
    let body = json!({
        "readings": readings
            .iter()
            .map(|(device, timestamp, value)| json!({"device_id": device, "timestamp": timestamp, "value": value}))
            .collect::<Vec<_>>()
    });
    let (status, answer) = app.post("/api/readings", token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer, json!({"accepted": readings.len()}));
}

/// The values a device's readings answer holds, in order.
fn values(answer: &Value) -> Vec<f64> {
    answer["readings"]
        .as_array()
        .unwrap_or_else(|| panic!("no readings in {answer}"))
        .iter()
        .map(|r| r["value"].as_f64().expect("value"))
        .collect()
}

#[test]
fn rfc3339_formats_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_760_956_205), "2025-10-20T10:30:05Z");
}

on_both_stores! {
    async fn a_batch_of_several_devices_is_stored_and_read_back_newest_first(app) {
        let admin = token("acme", &["admin"]);
        let d1 = create_device(&app, &admin, json!({"name": "D1"})).await;
        let d2 = create_device(&app, &admin, json!({"name": "D2"})).await;
        let (t1, t2, t3) = (ago(300), ago(200), ago(100));

        // Act: one batch, out of order, over two devices.
        ingest(&app, &admin, &[(&d1, &t2, 2.0), (&d2, &t1, 10.0), (&d1, &t1, 1.0), (&d1, &t3, 3.0)]).await;

        // Assert: each device's readings, newest first, with exactly timestamp and value.
        let (status, answer) = app.get(&format!("/api/devices/{d1}/readings?hours=24&limit=1000"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({
            "device_id": d1,
            "readings": [
                {"timestamp": t3, "value": 3.0},
                {"timestamp": t2, "value": 2.0},
                {"timestamp": t1, "value": 1.0},
            ],
            "total": 3,
            "has_more": false,
            "next_cursor": null,
        }));
        let (_, answer) = app.get(&format!("/api/devices/{d2}/readings"), &admin).await;
        assert_eq!(
            answer,
            json!({"device_id": d2, "readings": [{"timestamp": t1, "value": 10.0}], "total": 1, "has_more": false, "next_cursor": null})
        );
    }
}

on_both_stores! {
    async fn timestamps_with_an_offset_or_none_are_stored_in_utc(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let (u1, u2) = (now_unix() - 600, now_unix() - 1_200);
        let plus_two = rfc3339(u1 + 7_200).replace('Z', "+02:00");
        let naive = rfc3339(u2).trim_end_matches('Z').to_owned();

        ingest(&app, &admin, &[(&d, &plus_two, 1.0), (&d, &naive, 2.0)]).await;

        let (_, answer) = app.get(&format!("/api/devices/{d}/readings"), &admin).await;
        assert_eq!(answer["readings"], json!([
            {"timestamp": rfc3339(u1), "value": 1.0},
            {"timestamp": rfc3339(u2), "value": 2.0},
        ]));
        // The same instant written in UTC replaces the reading sent with an offset.
        ingest(&app, &admin, &[(&d, &rfc3339(u1), 3.0)]).await;
        let (_, answer) = app.get(&format!("/api/devices/{d}/readings"), &admin).await;
        assert_eq!(values(&answer), [3.0, 2.0]);
    }
}

on_both_stores! {
    async fn a_resent_reading_replaces_the_stored_value(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let (t1, t2) = (ago(120), ago(60));
        ingest(&app, &admin, &[(&d, &t1, 1.0), (&d, &t2, 2.0)]).await;

        // Act: the same device and instant again, with a new value, in bulk and singly.
        ingest(&app, &admin, &[(&d, &t1, 11.0)]).await;
        let (status, body) = app.post(&format!("/api/devices/{d}/readings"), &admin, json!({"value": 22.0, "timestamp": t2})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        // Assert: no duplicate, the new values.
        let (_, answer) = app.get(&format!("/api/devices/{d}/readings"), &admin).await;
        assert_eq!(answer["total"], 2, "{answer}");
        assert_eq!(values(&answer), [22.0, 11.0]);
        assert_eq!(answer["readings"][1]["timestamp"], t1.as_str());

        // Within one batch, the later entry for an instant wins, and the two count once.
        let body = json!({"readings": [
            {"device_id": d, "timestamp": t1, "value": 5.0},
            {"device_id": d, "timestamp": t1, "value": 6.0},
        ]});
        let (status, answer) = app.post("/api/readings", &admin, body).await;
        assert_eq!((status, answer), (StatusCode::CREATED, json!({"accepted": 1})));
        let (_, answer) = app.get(&format!("/api/devices/{d}/readings"), &admin).await;
        assert_eq!(values(&answer), [22.0, 6.0]);
    }
}

on_both_stores! {
    async fn a_batch_with_one_bad_reading_is_refused_whole_naming_it(app) {
        let admin = token("acme", &["admin"]);
        let d1 = create_device(&app, &admin, json!({"name": "D1"})).await;
        let d2 = create_device(&app, &admin, json!({"name": "D2"})).await;
        let foreign = create_device(&app, &token("other", &["admin"]), json!({"name": "Theirs"})).await;
        let unknown = uuid::Uuid::new_v4().to_string();
        let good = |device: &str, seconds: u64, value: f64| json!({"device_id": device, "timestamp": ago(seconds), "value": value});

        for (third, field) in [
            (good(&unknown, 30, 3.0), "readings[2].device_id"),
            (good(&foreign, 30, 3.0), "readings[2].device_id"),
            (json!({"device_id": d1, "timestamp": "yesterday", "value": 3.0}), "readings[2].timestamp"),
            (json!({"device_id": d1, "timestamp": "2025-13-40T00:00:00Z", "value": 3.0}), "readings[2].timestamp"),
            (json!({"device_id": d1, "timestamp": ago(30), "value": "3.0"}), "readings[2].value"),
            (json!({"device_id": "abc", "timestamp": ago(30), "value": 3.0}), "readings[2].device_id"),
        ] {
            // Act
            let body = json!({"readings": [good(&d1, 10, 1.0), good(&d2, 20, 2.0), third.clone(), good(&d2, 40, 4.0)]});
            let (status, answer) = app.post("/api/readings", &admin, body).await;

            // Assert: 422 naming the third reading; nothing stored.
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{third} -> {answer}");
            assert!(detail(&answer).starts_with(field), "{third} -> {answer}");
            for d in [&d1, &d2] {
                let (_, readings) = app.get(&format!("/api/devices/{d}/readings?hours=48"), &admin).await;
                assert_eq!(readings["total"], 0, "{third} stored something: {readings}");
            }
        }
        let (_, readings) = app.get(&format!("/api/devices/{foreign}/readings?hours=48"), &token("other", &["viewer"])).await;
        assert_eq!(readings["total"], 0, "{readings}");
    }
}

on_both_stores! {
    async fn more_than_ten_thousand_readings_are_refused_and_ten_thousand_are_accepted(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let now = now_unix();
        let batch = |n: u64| json!({
            "readings": (0..n).map(|i| json!({"device_id": d, "timestamp": rfc3339(now - 60 - i), "value": 1.0})).collect::<Vec<_>>()
        });

        let (status, answer) = app.post("/api/readings", &admin, batch(10_001)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(detail(&answer).starts_with("readings:"), "{answer}");
        let (_, readings) = app.get(&format!("/api/devices/{d}/readings"), &admin).await;
        assert_eq!(readings["total"], 0, "nothing stored");

        let (status, answer) = app.post("/api/readings", &admin, batch(10_000)).await;
        assert_eq!((status, answer), (StatusCode::CREATED, json!({"accepted": 10_000})));
        let (_, readings) = app.get(&format!("/api/devices/{d}/readings?limit=10000"), &admin).await;
        assert_eq!(readings["total"], 10_000);

        let (status, answer) = app.post("/api/readings", &admin, json!({"readings": []})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(detail(&answer).starts_with("readings:"), "{answer}");
    }
}

on_both_stores! {
    async fn device_readings_honour_the_look_back_and_the_limit(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let old = ago(30 * 3_600);
        let recent: Vec<String> = (1..=5).map(|i| ago(i * 60)).collect();
        let mut batch: Vec<(&str, &str, f64)> = recent.iter().zip(1_u32..).map(|(t, i)| (d.as_str(), t.as_str(), f64::from(i))).collect();
        batch.push((&d, &old, 99.0));
        ingest(&app, &admin, &batch).await;
        let path = format!("/api/devices/{d}/readings");

        let (status, answer) = app.get(&format!("{path}?hours=24&limit=1000"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["device_id"], d.as_str());
        assert_eq!(values(&answer), [1.0, 2.0, 3.0, 4.0, 5.0], "newest first, the 30-hour-old one excluded");
        assert_eq!(answer["total"], 5);

        let (_, answer) = app.get(&format!("{path}?hours=48"), &admin).await;
        assert_eq!(values(&answer), [1.0, 2.0, 3.0, 4.0, 5.0, 99.0]);
        assert_eq!(answer["readings"][5]["timestamp"], old.as_str());
        assert_eq!(answer["total"], 6);

        let (_, answer) = app.get(&format!("{path}?hours=48&limit=2"), &admin).await;
        assert_eq!(values(&answer), [1.0, 2.0]);
        assert_eq!(answer["total"], 2);

        // Defaults: 24 hours, 1000 readings.
        let (_, answer) = app.get(&path, &admin).await;
        assert_eq!(answer["total"], 5);

        // The bounds themselves are accepted.
        let (status, answer) = app.get(&format!("{path}?hours=8760&limit=10000"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["total"], 6);
    }
}

on_both_stores! {
    async fn out_of_range_hours_or_limit_answer_422_naming_the_parameter(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        for (query, field) in [
            ("hours=0", "hours:"),
            ("hours=8761", "hours:"),
            ("hours=-1", "hours:"),
            ("hours=abc", "hours:"),
            ("limit=0", "limit:"),
            ("limit=10001", "limit:"),
            ("hours=24&limit=x", "limit:"),
        ] {
            let (status, answer) = app.get(&format!("/api/devices/{d}/readings?{query}"), &admin).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query} -> {answer}");
            assert!(detail(&answer).starts_with(field), "{query} -> {answer}");
        }
    }
}

on_both_stores! {
    async fn one_reading_of_one_device_defaults_its_timestamp_to_now(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let before = rfc3339(now_unix() - 5);

        // Act
        let (status, stored) = app.post(&format!("/api/devices/{d}/readings"), &admin, json!({"value": 1.5})).await;

        // Assert: 201, stamped now.
        let after = rfc3339(now_unix() + 5);
        assert_eq!(status, StatusCode::CREATED, "{stored}");
        assert_eq!(stored["device_id"], d.as_str());
        assert_eq!(stored["value"], json!(1.5));
        let stamp = stored["timestamp"].as_str().expect("timestamp");
        assert!(before[..19] <= stamp[..19] && stamp[..19] <= after[..19], "{before} <= {stamp} <= {after}");

        let (_, answer) = app.get(&format!("/api/devices/{d}/readings?hours=1"), &admin).await;
        assert_eq!(answer["total"], 1, "{answer}");
        assert_eq!(answer["readings"][0]["value"], json!(1.5));
        assert_eq!(answer["readings"][0]["timestamp"], stored["timestamp"]);

        // An explicit timestamp is kept.
        let t = ago(3_600);
        let (status, stored) = app.post(&format!("/api/devices/{d}/readings"), &admin, json!({"value": 2.5, "timestamp": t})).await;
        assert_eq!(status, StatusCode::CREATED, "{stored}");
        assert_eq!(stored["timestamp"], t.as_str());

        // Bad bodies and unknown devices.
        for (body, field) in [
            (json!({}), "value: required"),
            (json!({"value": "1.5"}), "value:"),
            (json!({"value": 1.5, "timestamp": "soon"}), "timestamp:"),
        ] {
            let (status, answer) = app.post(&format!("/api/devices/{d}/readings"), &admin, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
            assert!(detail(&answer).starts_with(field), "{body} -> {answer}");
        }
        let unknown = uuid::Uuid::new_v4();
        let (status, answer) = app.post(&format!("/api/devices/{unknown}/readings"), &admin, json!({"value": 1.5})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(detail(&answer), format!("Device {unknown} not found"));
        let (_, answer) = app.get(&format!("/api/devices/{d}/readings?hours=2"), &admin).await;
        assert_eq!(answer["total"], 2, "{answer}");
    }
}

on_both_stores! {
    async fn a_viewer_reads_readings_but_may_not_ingest(app) {
        let admin = token("acme", &["admin"]);
        let viewer = token("acme", &["viewer"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let forbidden = json!({"detail": FORBIDDEN});

        let (status, body) = app.post("/api/readings", &viewer, json!({"readings": [{"device_id": d, "timestamp": ago(10), "value": 1.0}]})).await;
        assert_eq!((status, body), (StatusCode::FORBIDDEN, forbidden.clone()));
        let (status, body) = app.post(&format!("/api/devices/{d}/readings"), &viewer, json!({"value": 1.0})).await;
        assert_eq!((status, body), (StatusCode::FORBIDDEN, forbidden));

        let (status, answer) = app.get(&format!("/api/devices/{d}/readings"), &viewer).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["total"], 0, "the refused ingests stored nothing");
    }
}

on_both_stores! {
    async fn a_reading_stamped_more_than_five_minutes_ahead_is_refused_and_nothing_of_its_batch_is_stored(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let soon = rfc3339(now_unix() + 60);

        // Act: the fourth reading is from 2099.
        let batch: Vec<Value> = [ago(30), ago(20), soon.clone(), "2099-01-01T00:00:00Z".to_owned(), ago(10)]
            .iter()
            .map(|t| json!({"device_id": d, "timestamp": t, "value": 1.0}))
            .collect();
        let (status, answer) = app.post("/api/readings", &admin, json!({"readings": batch})).await;

        // Assert: 422 naming it; nothing stored.
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(detail(&answer), "readings[3].timestamp: more than 300 s in the future");
        let (_, stored) = app.get(&format!("/api/devices/{d}/readings?hours=1"), &admin).await;
        assert_eq!(stored["total"], 0, "{stored}");

        // One reading alike; a minute ahead is within the skew.
        let (status, answer) = app.post(&format!("/api/devices/{d}/readings"), &admin, json!({"value": 9.0, "timestamp": rfc3339(now_unix() + 3_600)})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(detail(&answer), "timestamp: more than 300 s in the future");
        let (status, answer) = app.post(&format!("/api/devices/{d}/readings"), &admin, json!({"value": 2.0, "timestamp": soon})).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let (_, stored) = app.get(&format!("/api/devices/{d}/readings?start_time={}&end_time=2100-01-01T00:00:00Z", ago(3_600)), &admin).await;
        assert_eq!(values(&stored), [2.0], "{stored}");
    }
}
