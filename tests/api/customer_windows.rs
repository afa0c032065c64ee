//! `/customer/maintenance-windows`, seed 001, with strict validation.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{detail, token};
use crate::on_both_stores;

fn nightly() -> Value {
    json!({
        "name": "Nightly patching",
        "starts_at": "2025-10-20T22:00:00Z",
        "ends_at": "2026-10-20T22:00:00Z",
        "recurring": {"dow": [1, 2, 3, 4, 5], "start_hour": 2, "end_hour": 4},
        "site_ids": ["site-1", "site-2"],
        "device_types": ["thermometer"]
    })
}

on_both_stores! {
    async fn a_window_is_created_read_listed_changed_and_deleted(app) {
        let t = token("acme", &["admin"]);
        let (status, created) = app.post("/customer/maintenance-windows", &t, nightly()).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let id = created["window_id"].as_str().unwrap().to_owned();
        assert!(id.len() == 11 && id.starts_with("mw-") && id[3..].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_eq!(created["name"], "Nightly patching");
        assert_eq!(created["starts_at"], "2025-10-20T22:00:00Z");
        assert_eq!(created["ends_at"], "2026-10-20T22:00:00Z");
        assert_eq!(created["recurring"], json!({"dow": [1, 2, 3, 4, 5], "start_hour": 2, "end_hour": 4}));
        assert_eq!(created["site_ids"], json!(["site-1", "site-2"]));
        assert_eq!(created["device_types"], json!(["thermometer"]));
        assert_eq!(created["enabled"], true);

        let (status, one) = app.get(&format!("/customer/maintenance-windows/{id}"), &t).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one, created);

        // A second, later window lists first.
        let (_, later) = app.post("/customer/maintenance-windows", &t, json!({"name": "Later", "starts_at": "2030-01-01T00:00:00+01:00"})).await;
        assert_eq!(later["starts_at"], "2029-12-31T23:00:00Z");
        assert_eq!(later["ends_at"], Value::Null);
        assert_eq!(later["recurring"], Value::Null);
        let (_, list) = app.get("/customer/maintenance-windows", &t).await;
        assert_eq!(list["total"], 2);
        assert_eq!(list["windows"][0]["window_id"], later["window_id"]);
        assert_eq!(list["windows"][1]["window_id"], id.as_str());

        // Absent fields stay, null clears nullable ones.
        let (status, changed) = app
            .patch(&format!("/customer/maintenance-windows/{id}"), &t, json!({"ends_at": null, "site_ids": null, "enabled": false}))
            .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!(changed["ends_at"], Value::Null);
        assert_eq!(changed["site_ids"], Value::Null);
        assert_eq!(changed["enabled"], false);
        assert_eq!(changed["device_types"], json!(["thermometer"]));
        assert_eq!(changed["recurring"], created["recurring"]);

        let (status, deleted) = app.delete(&format!("/customer/maintenance-windows/{id}"), &t).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(deleted, json!({"window_id": id, "deleted": true}));
        for (status, body) in [
            app.get(&format!("/customer/maintenance-windows/{id}"), &t).await,
            app.delete(&format!("/customer/maintenance-windows/{id}"), &t).await,
            app.patch(&format!("/customer/maintenance-windows/{id}"), &t, json!({"name": "x"})).await,
        ] {
            assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"detail": "Window not found"})));
        }
    }
}

on_both_stores! {
    async fn wrong_windows_are_refused_with_422_and_never_stored(app) {
        let t = token("acme", &["admin"]);
        let with = |patch: Value| {
            let mut body = nightly();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        for (body, field) in [
            (with(json!({"ends_at": "2025-10-20T22:00:00Z"})), "ends_at:"),
            (with(json!({"ends_at": "2025-10-20T21:59:59Z"})), "ends_at:"),
            (with(json!({"starts_at": "not a date"})), "starts_at:"),
            (with(json!({"starts_at": null})), "starts_at:"),
            (with(json!({"name": ""})), "name:"),
            (with(json!({"name": "n".repeat(129)})), "name:"),
            (with(json!({"recurring": {"start_hour": 2, "end_hour": 4, "tz": "UTC"}})), "recurring.tz:"),
            (with(json!({"recurring": {"dow": [7], "start_hour": 2, "end_hour": 4}})), "recurring.dow[0]:"),
            (with(json!({"recurring": {"dow": [], "start_hour": 2, "end_hour": 4}})), "recurring.dow:"),
            (with(json!({"recurring": {"start_hour": 24, "end_hour": 24}})), "recurring.start_hour:"),
            (with(json!({"recurring": {"start_hour": -1, "end_hour": 4}})), "recurring.start_hour:"),
            (with(json!({"recurring": {"start_hour": 0, "end_hour": 25}})), "recurring.end_hour:"),
            (with(json!({"recurring": {"start_hour": 5, "end_hour": 5}})), "recurring.end_hour:"),
            (with(json!({"recurring": {"start_hour": 2}})), "recurring.end_hour: required"),
            (with(json!({"recurring": {"start_hour": 2.5, "end_hour": 4}})), "recurring.start_hour:"),
            (with(json!({"recurring": "nightly"})), "recurring:"),
            (with(json!({"site_ids": ["site-1", ""]})), "site_ids[1]:"),
            (with(json!({"device_types": [""]})), "device_types[0]:"),
            (with(json!({"enabled": null})), "enabled:"),
            (with(json!({"enabled": "yes"})), "enabled:"),
            (with(json!({"window_id": "mw-mine"})), "window_id:"),
        ] {
            let (status, answer) = app.post("/customer/maintenance-windows", &t, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
            assert!(detail(&answer).starts_with(field), "expected {field} for {body}, got {answer}");
        }
        let (_, list) = app.get("/customer/maintenance-windows", &t).await;
        assert_eq!(list["total"], 0, "no refused window was stored");
    }
}

on_both_stores! {
    async fn a_patch_that_would_break_the_window_is_refused_and_changes_nothing(app) {
        let t = token("acme", &["admin"]);
        let (_, created) = app.post("/customer/maintenance-windows", &t, nightly()).await;
        let path = format!("/customer/maintenance-windows/{}", created["window_id"].as_str().unwrap());

        let (status, body) = app.patch(&path, &t, json!({})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"detail": "No fields to update"})));

        let (status, body) = app.patch(&path, &t, json!({"starts_at": "2027-01-01T00:00:00Z"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail(&body).starts_with("ends_at:"), "{body}");

        for refused in [json!({"name": null}), json!({"enabled": null}), json!({"starts_at": null}),
                        json!({"recurring": {"start_hour": 9, "end_hour": 9}}), json!({"bogus": 1})] {
            let (status, body) = app.patch(&path, &t, refused.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused} -> {body}");
        }

        let (_, after) = app.get(&path, &t).await;
        assert_eq!(after, created, "refused patches changed nothing");

        // A slot whose end is not after its start runs past midnight: valid.
        let (status, body) = app.patch(&path, &t, json!({"recurring": {"start_hour": 9, "end_hour": 3}})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["recurring"], json!({"start_hour": 9, "end_hour": 3}));

        let (status, body) = app.patch(&path, &t, json!({"recurring": null, "device_types": null, "name": "Renamed"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["recurring"], Value::Null);
        assert_eq!(body["device_types"], Value::Null);
        assert_eq!(body["name"], "Renamed");
        assert_eq!(body["created_at"], created["created_at"]);
    }
}
