//! Tokens and tenants: 401 for every bad token, 404 for another tenant's ids.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{expired_token, now_unix, sign, token};
use crate::on_both_stores;

on_both_stores! {
    async fn every_bad_token_answers_401_with_a_bearer_challenge(app) {
        let t = now_unix();
        let unsigned = {
            // {"alg":"none","typ":"JWT"} . {"sub":"x","tenant_id":"acme","exp":<far future>} . (no signature)
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4IiwidGVuYW50X2lkIjoiYWNtZSIsImV4cCI6NDEwMjQ0NDgwMH0.".to_owned()
        };
        let wrong_secret = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"sub": "x", "tenant_id": "acme", "exp": t + 600}),
            &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret-some-other-secret"),
        ).unwrap();
        let cases: Vec<(&str, Option<String>)> = vec![
            ("missing", None),
            ("malformed", Some("Bearer not-a-token".to_owned())),
            ("basic scheme", Some("Basic dXNlcjpwYXNz".to_owned())),
            ("expired", Some(format!("Bearer {}", expired_token("acme")))),
            ("alg none", Some(format!("Bearer {unsigned}"))),
            ("wrong secret", Some(format!("Bearer {wrong_secret}"))),
            ("no tenant", Some(format!("Bearer {}", sign(&json!({"sub": "x", "exp": t + 600}))))),
            ("no exp", Some(format!("Bearer {}", sign(&json!({"sub": "x", "tenant_id": "acme"}))))),
            ("empty tenant", Some(format!("Bearer {}", sign(&json!({"sub": "x", "tenant_id": "", "exp": t + 600}))))),
        ];
        for (name, header) in cases {
            for path in ["/customer/device-groups", "/customer/maintenance-windows"] {
                let mut request = app.client().request(Method::GET, format!("{}{path}", app.base));
                if let Some(h) = &header {
                    request = request.header("authorization", h);
                }
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name} on {path}");
                assert_eq!(response.headers()["www-authenticate"], "Bearer", "{name}");
                let body: serde_json::Value = response.json().await.unwrap();
                assert!(body["detail"].is_string(), "{name}: {body}");
            }
        }
    }
}

on_both_stores! {
    async fn another_tenants_groups_and_windows_answer_404_and_stay_untouched(app) {
        let a = token("tenant-a", &["owner"]);
        let b = token("tenant-b", &["owner"]);
        app.post("/customer/device-groups", &a, json!({"group_id": "grp-a", "name": "A's"})).await;
        let (_, window) = app.post("/customer/maintenance-windows", &a, json!({"name": "A's", "starts_at": "2025-01-01T00:00:00Z"})).await;
        let window_path = format!("/customer/maintenance-windows/{}", window["window_id"].as_str().unwrap());

        // B sees nothing of A.
        assert_eq!(app.get("/customer/device-groups", &b).await.1, json!({"groups": [], "total": 0}));
        assert_eq!(app.get("/customer/maintenance-windows", &b).await.1, json!({"windows": [], "total": 0}));
        for (status, body) in [
            app.get("/customer/device-groups/grp-a", &b).await,
            app.patch("/customer/device-groups/grp-a", &b, json!({"name": "stolen"})).await,
            app.delete("/customer/device-groups/grp-a", &b).await,
        ] {
            assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"detail": "Group not found"})));
        }
        for (status, body) in [
            app.get(&window_path, &b).await,
            app.patch(&window_path, &b, json!({"enabled": false})).await,
            app.delete(&window_path, &b).await,
        ] {
            assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"detail": "Window not found"})));
        }

        // The same slug and name are B's to use too.
        let (status, _) = app.post("/customer/device-groups", &b, json!({"group_id": "grp-a", "name": "A's"})).await;
        assert_eq!(status, StatusCode::OK);

        // A's data is as it was.
        let (_, group) = app.get("/customer/device-groups/grp-a", &a).await;
        assert_eq!(group["name"], "A's");
        let (_, w) = app.get(&window_path, &a).await;
        assert_eq!(w["enabled"], true);
    }
}

on_both_stores! {
    async fn the_role_table_holds_on_every_write_of_both_families(app) {
        // Arrange: one of everything, made by an admin.
        let admin = token("acme", &["admin"]);
        let (_, device) = app.post("/api/devices", &admin, json!({"name": "T1"})).await;
        let device = device["id"].as_str().unwrap().to_owned();
        let (_, group) = app.post("/customer/device-groups", &admin, json!({"group_id": "grp-lobby", "name": "Lobby"})).await;
        let group_uuid = group["id"].as_str().unwrap().to_owned();
        let (_, window) = app.post("/customer/maintenance-windows", &admin, json!({"name": "Patching", "starts_at": "2025-10-20T00:00:00Z"})).await;
        let window = window["window_id"].as_str().unwrap().to_owned();
        let data_writes = [
            (Method::POST, "/customer/device-groups".to_owned(), Some(json!({"name": "Hall"}))),
            (Method::PATCH, "/customer/device-groups/grp-lobby".to_owned(), Some(json!({"name": "Hall"}))),
            (Method::DELETE, "/customer/device-groups/grp-lobby".to_owned(), None),
            (Method::DELETE, "/customer/device-groups/grp-none".to_owned(), None),
            (Method::PUT, format!("/customer/device-groups/grp-lobby/devices/{device}"), None),
            (Method::DELETE, format!("/customer/device-groups/grp-lobby/devices/{device}"), None),
            (Method::POST, "/api/devices".to_owned(), Some(json!({"name": "T2"}))),
            (Method::DELETE, format!("/api/devices/{device}"), None),
            (Method::POST, "/api/readings".to_owned(), Some(json!({"readings": []}))),
        ];
        let window_writes = [
            (Method::POST, "/customer/maintenance-windows".to_owned(), Some(json!({"name": "Mute all", "starts_at": "2025-10-20T00:00:00Z"}))),
            (Method::PATCH, format!("/customer/maintenance-windows/{window}"), Some(json!({"enabled": false}))),
            (Method::DELETE, format!("/customer/maintenance-windows/{window}"), None),
        ];
        let group_api_writes = [
            (Method::POST, "/api/groups".to_owned(), Some(json!({"name": "Hall"}))),
            (Method::PUT, format!("/api/groups/{group_uuid}"), Some(json!({"name": "Hall"}))),
            (Method::DELETE, format!("/api/groups/{group_uuid}"), None),
        ];
        let no_roles = sign(&json!({"sub": "x", "tenant_id": "acme", "exp": now_unix() + 600}));
        let empty_roles = token("acme", &[]);
        let viewer = token("acme", &["viewer"]);
        let operator = token("acme", &["operator"]);

        // Act and assert: refused writes are 403 with the role list, whatever the id.
        for (who, t) in [("no roles claim", &no_roles), ("roles []", &empty_roles), ("viewer", &viewer), ("operator", &operator)] {
            for (method, path, body) in data_writes.iter().cloned() {
                let (status, answer) = app.request(method.clone(), &path, Some(t), body).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {method} {path}: {answer}");
                assert_eq!(answer, json!({"detail": "Access forbidden. Required roles: admin, owner"}), "{who}: {method} {path}");
            }
            for (method, path, body) in group_api_writes.iter().cloned() {
                let (status, answer) = app.request(method.clone(), &path, Some(t), body).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {method} {path}");
                assert_eq!(answer, json!({"detail": "Access forbidden. Required roles: admin, owner", "code": "GROUP_004"}), "{who}: {method} {path}");
            }
        }
        for (who, t) in [("no roles claim", &no_roles), ("roles []", &empty_roles), ("viewer", &viewer)] {
            for (method, path, body) in window_writes.iter().cloned() {
                let (status, answer) = app.request(method.clone(), &path, Some(t), body).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {method} {path}");
                assert_eq!(answer, json!({"detail": "Access forbidden. Required roles: operator, admin, owner"}), "{who}: {method} {path}");
            }
            // Such tokens still read.
            let (status, _) = app.get("/customer/device-groups/grp-lobby", t).await;
            assert_eq!(status, StatusCode::OK, "{who} reads");
        }
        // Nothing changed.
        let (_, groups) = app.get("/customer/device-groups", &admin).await;
        assert_eq!(groups["total"], 1, "{groups}");
        assert_eq!(groups["groups"][0]["name"], "Lobby");
        let (_, windows) = app.get("/customer/maintenance-windows", &admin).await;
        assert_eq!(windows["total"], 1, "{windows}");
        assert_eq!(windows["windows"][0]["enabled"], true);

        // An operator writes windows.
        let (status, _) = app.patch(&format!("/customer/maintenance-windows/{window}"), &operator, json!({"enabled": false})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.delete(&format!("/customer/maintenance-windows/{window}"), &operator).await;
        assert_eq!(status, StatusCode::OK);
    }
}
