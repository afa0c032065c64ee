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
