//! Input meant to break things: it gets a 4xx, never a 500, and never corrupts stored data.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{detail, token};
use crate::on_both_stores;

on_both_stores! {
    async fn a_body_over_one_mebibyte_answers_413(app) {
        let t = token("acme", &["admin"]);
        let body = format!(r#"{{"name": "big", "description": "{}"}}"#, "x".repeat(1024 * 1024));
        let (status, answer) = app.raw(Method::POST, "/customer/device-groups", &t, body.into_bytes()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
        assert!(detail(&answer).starts_with("body:"));
    }
}

on_both_stores! {
    async fn sql_metacharacters_are_stored_and_returned_verbatim(app) {
        let t = token("acme", &["admin"]);
        let name = "Robert'); DROP TABLE device_groups;-- \"%_\\";
        let (status, created) = app.post("/customer/device-groups", &t, json!({"name": name, "description": "$1 ' ; --"})).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let (_, list) = app.get("/customer/device-groups", &t).await;
        assert_eq!(list["groups"][0]["name"], name);
        assert_eq!(list["groups"][0]["description"], "$1 ' ; --");
    }
}

on_both_stores! {
    async fn nul_characters_and_nesting_bombs_answer_422(app) {
        let t = token("acme", &["admin"]);
        let (status, body) = app.post("/customer/device-groups", &t, json!({"name": "a\u{0}b"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("name:"));
        let (status, body) = app.post("/customer/device-groups", &t, json!({"name": "ok", "description": "a\u{0}"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("description:"));

        let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let (status, _) = app.raw(Method::POST, "/customer/device-groups", &t, nested.into_bytes()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        let (status, _) = app.raw(Method::POST, "/customer/maintenance-windows", &t,
            br#"{"name":"n","starts_at":"2025-01-01T00:00:00Z","recurring":{"start_hour":1e400,"end_hour":2}}"#.to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        let (status, _) = app.raw(Method::POST, "/customer/device-groups", &t, vec![0xff, 0xfe, b'{']).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        let (_, list) = app.get("/customer/device-groups", &t).await;
        assert_eq!(list["total"], 0);
    }
}

on_both_stores! {
    async fn timestamps_at_the_edges_of_the_representable_range_are_handled(app) {
        let t = token("acme", &["admin"]);
        let (status, body) = app.post("/customer/maintenance-windows", &t,
            json!({"name": "edge", "starts_at": "0001-01-01T00:00:00Z", "ends_at": "9999-12-31T23:59:59.999999Z"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["starts_at"], "0001-01-01T00:00:00Z");
        assert_eq!(body["ends_at"], "9999-12-31T23:59:59.999999Z");

        let (status, body) = app.post("/customer/maintenance-windows", &t,
            json!({"name": "before year 1", "starts_at": "0001-01-01T00:00:00+01:00"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("starts_at:"));

        let (status, _) = app.post("/customer/maintenance-windows", &t,
            json!({"name": "too far", "starts_at": "10000-01-01T00:00:00Z"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

on_both_stores! {
    async fn very_long_path_segments_answer_404(app) {
        let t = token("acme", &["admin"]);
        let (status, body) = app.get(&format!("/customer/device-groups/{}", "g".repeat(10_000)), &t).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"detail": "Group not found"}));
        let (status, _) = app.get("/customer/maintenance-windows/%00", &t).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
