//! Security properties: forged and unusable tokens get 401 with a bearer challenge (fast, even
//! when huge), error bodies never leak internals, logs never hold a token, and another tenant's
//! ids are indistinguishable from ids that do not exist.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::concurrency::{assert_alive, send};
use crate::devices::create_device;
use crate::helpers::{now_unix, sign, token, Store, TestApp, SECRET};
use crate::on_both_stores;

// ---------------------------------------------------------------------------------------------
// Token crafting

/// Unpadded base64url, as JWTs use.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// `header.claims` as a JWT signs it.
fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

/// A token with any header, signed with HMAC-SHA256 and the server's secret whatever `alg`
/// the header claims.
fn hmac_signed(header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .expect("sign");
    format!("{input}.{signature}")
}

fn signed_with(algorithm: Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

fn claims() -> Value {
    json!({"sub": "mallory", "tenant_id": "acme", "roles": ["owner"], "exp": now_unix() + 600})
}

fn claims_with(key: &str, value: Value) -> Value {
    let mut c = claims();
    c[key] = value;
    c
}

fn claims_without(key: &str) -> Value {
    let mut c = claims();
    c.as_object_mut().expect("object").remove(key);
    c
}

#[test]
fn b64url_encodes_like_rfc_4648_without_padding() {
    assert_eq!(b64url(b""), "");
    assert_eq!(b64url(b"f"), "Zg");
    assert_eq!(b64url(b"fo"), "Zm8");
    assert_eq!(b64url(b"foo"), "Zm9v");
    assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
}

/// Tokens that must all be refused, each with what makes it unusable.
fn forged_tokens() -> Vec<(&'static str, String)> {
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let valid = hmac_signed(&hs256, &claims());
    let (valid_input, valid_signature) = valid.rsplit_once('.').expect("three parts");
    let other_tenant = signing_input(&hs256, &claims_with("tenant_id", json!("other")));
    // 74 KiB of claims make a token of about 100 KB once base64-encoded.
    let big_claims = claims_with("pad", json!("p".repeat(74 * 1024)));
    vec![
        (
            "alg none, no signature",
            format!(
                "{}.",
                signing_input(&json!({"alg": "none", "typ": "JWT"}), &claims())
            ),
        ),
        (
            "alg None",
            format!(
                "{}.",
                signing_input(&json!({"alg": "None", "typ": "JWT"}), &claims())
            ),
        ),
        (
            "alg NONE with the HS256 signature",
            hmac_signed(&json!({"alg": "NONE", "typ": "JWT"}), &claims()),
        ),
        (
            "alg none, signature of the HS256 token",
            format!(
                "{}.{valid_signature}",
                signing_input(&json!({"alg": "none"}), &claims())
            ),
        ),
        (
            "HS512 with the secret",
            signed_with(Algorithm::HS512, &claims()),
        ),
        (
            "HS384 with the secret",
            signed_with(Algorithm::HS384, &claims()),
        ),
        (
            "RS256 header, HMAC-SHA256 signature with the secret",
            hmac_signed(&json!({"alg": "RS256", "typ": "JWT"}), &claims()),
        ),
        (
            "ES256 header, HMAC-SHA256 signature with the secret",
            hmac_signed(&json!({"alg": "ES256", "typ": "JWT"}), &claims()),
        ),
        (
            "PS256 header, HMAC-SHA256 signature with the secret",
            hmac_signed(&json!({"alg": "PS256"}), &claims()),
        ),
        (
            "nbf in the future",
            sign(&claims_with("nbf", json!(now_unix() + 600))),
        ),
        (
            "exp in the past",
            sign(&claims_with("exp", json!(now_unix() - 5))),
        ),
        (
            "exp now - 1",
            sign(&claims_with("exp", json!(now_unix() - 1))),
        ),
        (
            "exp as a string",
            sign(&claims_with("exp", json!(format!("{}", now_unix() + 600)))),
        ),
        ("no tenant_id", sign(&claims_without("tenant_id"))),
        (
            "tenant_id null",
            sign(&claims_with("tenant_id", Value::Null)),
        ),
        (
            "tenant_id a number",
            sign(&claims_with("tenant_id", json!(7))),
        ),
        (
            "tenant_id blank",
            sign(&claims_with("tenant_id", json!("  "))),
        ),
        (
            "tenant_id with NUL",
            sign(&claims_with("tenant_id", json!("acme\u{0}"))),
        ),
        ("no exp", sign(&claims_without("exp"))),
        ("no sub", sign(&claims_without("sub"))),
        (
            "signature of another payload",
            format!("{other_tenant}.{valid_signature}"),
        ),
        ("signature stripped", format!("{valid_input}.")),
        ("signature truncated", valid[..valid.len() - 2].to_owned()),
        ("two parts", valid_input.to_owned()),
        ("four parts", format!("{valid}.{valid_signature}")),
        ("100 KB of garbage", "a".repeat(100 * 1024)),
        ("100 KB correctly signed", sign(&big_claims)),
        ("whitespace inside", valid.replacen('.', ". ", 1)),
    ]
}

// Fails when any forged, unsigned, expired, not-yet-valid or incomplete token is let through
// (a 2xx, a 403 or 404 from a handler, or a write stored), or is refused without the
// `WWW-Authenticate: Bearer` challenge. The first checks prove the crafting itself is right: the
// same HMAC crafting with `alg: HS256` is accepted.
on_both_stores! {
    async fn forged_and_unusable_tokens_answer_401_with_a_bearer_challenge(app) {
        let control = hmac_signed(&json!({"alg": "HS256", "typ": "JWT"}), &claims());
        let reply = send(&app, Some(&control), Method::GET, "/api/groups", None).await;
        assert_eq!(reply.status, StatusCode::OK, "the crafted HS256 token is valid: {}", reply.text);

        let targets = [
            (Method::GET, "/api/groups", None),
            (Method::GET, "/customer/device-groups", None),
            (Method::POST, "/api/devices", Some(json!({"name": "Intruder"}))),
            (Method::POST, "/customer/maintenance-windows", Some(json!({"name": "Intruder", "starts_at": "2025-01-01T00:00:00Z"}))),
            (Method::DELETE, "/customer/device-groups/grp-anything", None),
        ];
        for (name, forged) in forged_tokens() {
            for (method, path, body) in &targets {
                let reply = send(&app, Some(&forged), method.clone(), path, body.as_ref().map(|b| b.to_string().into_bytes())).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}: {method} {path}: {}", reply.text);
                assert_eq!(reply.headers.get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"), "{name}");
                assert!(reply.json["detail"].is_string(), "{name}: {}", reply.text);
            }
        }
        // Nothing was written.
        let owner = token("acme", &["owner"]);
        assert_eq!(app.get("/api/devices", &owner).await.1, json!([]));
        assert_eq!(app.get("/customer/maintenance-windows", &owner).await.1["total"], 0);
    }
}

// Fails when a huge token is decoded or verified at length (or worse) before being refused: the
// 401 must come back in well under a second each time, and the server keep answering.
#[tokio::test]
async fn a_100_kb_token_is_refused_in_well_under_a_second() {
    let app = TestApp::spawn(Store::Memory).await;
    let garbage = "a".repeat(100 * 1024);
    let signed = sign(&claims_with("pad", json!("p".repeat(74 * 1024))));
    let dotted = format!(
        "{}.{}.{}",
        "e".repeat(50_000),
        "f".repeat(50_000),
        "g".repeat(2_000)
    );
    for token in [&garbage, &signed, &dotted] {
        assert!(
            (100_000..110_000).contains(&token.len()),
            "{} bytes",
            token.len()
        );
        for _ in 0..5 {
            let started = Instant::now();
            let reply = send(&app, Some(token), Method::GET, "/api/groups", None).await;
            let took = started.elapsed();
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
            assert_eq!(
                reply
                    .headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer")
            );
            assert!(
                took < Duration::from_millis(500),
                "a {} byte token took {took:?}",
                token.len()
            );
        }
    }
    assert_alive(&app).await;
}

// ---------------------------------------------------------------------------------------------
// Error bodies

/// A request: method, path, bearer token, raw body.
type BadRequest = (Method, String, Option<String>, Option<Vec<u8>>);

/// Text that must never reach a client: SQL, stack traces and panics, source and home paths, and
/// the signing secret.
const LEAKS: [&str; 11] = [
    "SELECT",
    "INSERT",
    "UPDATE ",
    "DELETE FROM",
    "syntax",
    "panicked",
    "backtrace",
    ".rs:",
    "/src/",
    "/home/",
    "/root/",
];

// Fails when any error answer carries internals: an SQL statement or driver message, a panic or
// backtrace, a source path, or the JWT secret; or when an error is not the JSON `{"detail": …}`
// shape; or when one of these bad requests gets a 5xx.
on_both_stores! {
    async fn error_bodies_never_leak_sql_stack_traces_paths_or_the_secret(app) {
        let admin = token("acme", &["admin"]);
        let viewer = token("acme", &["viewer"]);
        let d = create_device(&app, &admin, json!({"name": "Taken"})).await;
        let (_, g) = app.post("/api/groups", &admin, json!({"name": "Taken group", "device_ids": [d]})).await;
        let (g, slug) = (g["id"].as_str().unwrap().to_owned(), g["group_id"].as_str().unwrap().to_owned());
        let (_, w) = app.post("/customer/maintenance-windows", &admin, json!({"name": "W", "starts_at": "2025-01-01T00:00:00Z"})).await;
        let w = w["window_id"].as_str().unwrap().to_owned();
        let unknown = uuid::Uuid::new_v4();

        let mut requests: Vec<BadRequest> = Vec::new();
        let admin_req = |method: Method, path: String, body: Option<&[u8]>| (method, path, Some(admin.clone()), body.map(<[u8]>::to_vec));
        let writes = [
            (Method::POST, "/api/devices".to_owned()),
            (Method::PUT, format!("/api/devices/{d}")),
            (Method::POST, format!("/api/devices/{d}/readings")),
            (Method::POST, "/api/readings".to_owned()),
            (Method::POST, "/api/groups".to_owned()),
            (Method::PUT, format!("/api/groups/{g}")),
            (Method::POST, "/customer/device-groups".to_owned()),
            (Method::PATCH, format!("/customer/device-groups/{slug}")),
            (Method::POST, "/customer/maintenance-windows".to_owned()),
            (Method::PATCH, format!("/customer/maintenance-windows/{w}")),
        ];
        let bad_bodies: [&[u8]; 9] = [
            br#"{"name": "#,
            br#"{"name": "x"} trailing"#,
            b"",
            b"[]",
            br#"{"name": 5, "value": "five", "readings": 7, "starts_at": 1}"#,
            br#"{"name": null, "value": null, "readings": null, "starts_at": null}"#,
            br#"{"name": {"a": 1}, "value": [], "readings": {}, "starts_at": []}"#,
            br#"{"bogus": 1}"#,
            br#"{"name": "x", "name": "y"}"#,
        ];
        for (method, path) in &writes {
            for body in bad_bodies {
                requests.push(admin_req(method.clone(), path.clone(), Some(body)));
            }
        }
        // Over the body limits.
        let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(1024 * 1024));
        for (method, path) in &writes[..4] {
            requests.push(admin_req(method.clone(), path.clone(), Some(big.as_bytes())));
        }
        let huge = format!(r#"{{"readings": "{}"}}"#, "x".repeat(5 * 1024 * 1024));
        requests.push(admin_req(Method::POST, "/api/readings".into(), Some(huge.as_bytes())));
        // Unknown and malformed ids on every route that takes one.
        for id in [unknown.to_string(), "not-an-id".to_owned(), "grp-missing".to_owned(), "mw-missing".to_owned()] {
            for (method, path, body) in [
                (Method::GET, format!("/api/devices/{id}"), None),
                (Method::PUT, format!("/api/devices/{id}"), Some(&br#"{"name": "n"}"#[..])),
                (Method::DELETE, format!("/api/devices/{id}"), None),
                (Method::GET, format!("/api/devices/{id}/groups"), None),
                (Method::GET, format!("/api/devices/{id}/readings"), None),
                (Method::POST, format!("/api/devices/{id}/readings"), Some(&br#"{"value": 1}"#[..])),
                (Method::GET, format!("/api/groups/{id}"), None),
                (Method::PUT, format!("/api/groups/{id}"), Some(&br#"{"name": "n"}"#[..])),
                (Method::DELETE, format!("/api/groups/{id}"), None),
                (Method::GET, format!("/api/groups/{id}/readings"), None),
                (Method::GET, format!("/api/groups/{id}/alerts"), None),
                (Method::GET, format!("/customer/device-groups/{id}"), None),
                (Method::PATCH, format!("/customer/device-groups/{id}"), Some(&br#"{"name": "n"}"#[..])),
                (Method::DELETE, format!("/customer/device-groups/{id}"), None),
                (Method::GET, format!("/customer/device-groups/{id}/devices"), None),
                (Method::PUT, format!("/customer/device-groups/{slug}/devices/{id}"), None),
                (Method::DELETE, format!("/customer/device-groups/{slug}/devices/{id}"), None),
                (Method::PUT, format!("/customer/device-groups/{id}/devices/{d}"), None),
                (Method::GET, format!("/customer/maintenance-windows/{id}"), None),
                (Method::PATCH, format!("/customer/maintenance-windows/{id}"), Some(&br#"{"enabled": false}"#[..])),
                (Method::DELETE, format!("/customer/maintenance-windows/{id}"), None),
                (Method::GET, format!("/customer/maintenance-windows/{id}/occurrences"), None),
                (Method::GET, format!("/customer/maintenance-windows/{id}/devices"), None),
            ] {
                requests.push(admin_req(method, path, body));
            }
        }
        // Unknown devices in lists.
        let missing = format!(r#"{{"device_ids": ["{unknown}"]}}"#);
        requests.push(admin_req(Method::PUT, format!("/api/groups/{g}"), Some(missing.as_bytes())));
        let missing = format!(r#"{{"readings": [{{"device_id": "{unknown}", "timestamp": "2025-01-01T00:00:00Z", "value": 1}}]}}"#);
        requests.push(admin_req(Method::POST, "/api/readings".into(), Some(missing.as_bytes())));
        // Conflicts.
        for (method, path, body) in [
            (Method::POST, "/api/devices".to_owned(), r#"{"name": "Taken"}"#),
            (Method::POST, "/api/groups".to_owned(), r#"{"name": "Taken group"}"#),
            (Method::POST, "/customer/device-groups".to_owned(), r#"{"name": "Taken group"}"#),
            (Method::POST, "/customer/device-groups".to_owned(), r#"{"name": "Fresh", "group_id": "SLUG"}"#),
            (Method::PATCH, format!("/customer/device-groups/{slug}"), r#"{}"#),
            (Method::PATCH, "/customer/maintenance-windows/WID".to_owned(), r#"{}"#),
        ] {
            let body = body.replace("SLUG", &slug);
            let path = path.replace("WID", &w);
            requests.push(admin_req(method, path, Some(body.as_bytes())));
        }
        let other = create_device(&app, &admin, json!({"name": "Other"})).await;
        requests.push(admin_req(Method::PUT, format!("/api/devices/{other}"), Some(br#"{"name": "Taken"}"#)));
        let (_, g2) = app.post("/api/groups", &admin, json!({"name": "Second group"})).await;
        requests.push(admin_req(Method::PUT, format!("/api/groups/{}", g2["id"].as_str().unwrap()), Some(br#"{"name": "Taken group"}"#)));
        // Values out of range or out of order.
        for (method, path, body) in [
            (Method::GET, format!("/api/devices/{d}/readings?hours=0"), None),
            (Method::GET, format!("/api/groups/{g}/readings?limit=0"), None),
            (Method::GET, format!("/api/groups/{g}/readings?hours=8761"), None),
            (Method::GET, format!("/customer/maintenance-windows/{w}/occurrences?limit=1000"), None),
            (Method::GET, "/customer/maintenance-windows?status=sideways".to_owned(), None),
            (Method::POST, "/customer/maintenance-windows".to_owned(), Some(&br#"{"name": "n", "starts_at": "2025-01-02T00:00:00Z", "ends_at": "2025-01-01T00:00:00Z"}"#[..])),
            (Method::POST, "/customer/maintenance-windows".to_owned(), Some(&br#"{"name": "n", "starts_at": "2025-01-01T00:00:00Z", "recurring": {"start_hour": 99, "end_hour": 2}}"#[..])),
            (Method::POST, "/customer/maintenance-windows".to_owned(), Some(&br#"{"name": "n", "starts_at": "2025-01-01T00:00:00Z", "recurring": {"start_hour": 1, "end_hour": 2, "timezone": "Mars/Olympus"}}"#[..])),
            (Method::POST, "/customer/maintenance-windows".to_owned(), Some(&br#"{"name": "n", "starts_at": "2025-01-01T00:00:00Z", "recurring": {"start_hour": 1, "end_hour": 2, "hour": 3}}"#[..])),
            (Method::POST, "/api/devices".to_owned(), Some(&br#"{"name": "n", "threshold_warning_upper": 1, "threshold_critical_upper": 0}"#[..])),
            (Method::POST, "/api/devices".to_owned(), Some(&br#"{"name": "n", "status": "on fire"}"#[..])),
            (Method::POST, "/api/groups".to_owned(), Some(&br#"{"name": "n", "device_ids": ["nope"]}"#[..])),
            (Method::POST, "/api/readings".to_owned(), Some(&br#"{"readings": []}"#[..])),
        ] {
            requests.push(admin_req(method, path, body));
        }
        // Wrong role, no token, a bad token, wrong method, unknown route.
        for (method, path, body) in [
            (Method::POST, "/api/devices", &br#"{"name": "v"}"#[..]),
            (Method::POST, "/api/groups", &br#"{"name": "v"}"#[..]),
            (Method::POST, "/api/readings", &br#"{"readings": []}"#[..]),
        ] {
            requests.push((method, path.to_owned(), Some(viewer.clone()), Some(body.to_vec())));
        }
        requests.push((Method::GET, "/api/groups".into(), None, None));
        requests.push((Method::GET, "/api/groups".into(), Some("not.a.token".into()), None));
        requests.push((Method::GET, "/customer/device-groups".into(), Some(format!("{admin}x")), None));
        requests.push(admin_req(Method::PATCH, "/api/groups".into(), Some(b"{}")));
        requests.push(admin_req(Method::DELETE, "/api/readings".into(), None));
        requests.push(admin_req(Method::GET, "/no/such/route".into(), None));
        assert!(requests.len() >= 100, "only {} bad requests", requests.len());

        let mut leaks = Vec::new();
        for (method, path, token, body) in requests {
            let reply = send(&app, token.as_deref(), method.clone(), &path, body.clone()).await;
            assert!(!reply.status.is_server_error(), "{method} {path}: {} {}", reply.status, reply.text);
            if reply.status.is_success() {
                continue;
            }
            assert!(reply.json["detail"].is_string(), "{method} {path}: {} is no error body: {}", reply.status, reply.text);
            let lower = reply.text.to_lowercase();
            for leak in LEAKS {
                let found = if leak.chars().any(char::is_uppercase) { reply.text.contains(leak) } else { lower.contains(leak) };
                if found {
                    leaks.push(format!("{method} {path}: '{leak}' in {}", reply.text));
                }
            }
            if reply.text.contains(SECRET) {
                leaks.push(format!("{method} {path}: the JWT secret in {}", reply.text));
            }
        }
        assert!(leaks.is_empty(), "error bodies leak internals:\n{}", leaks.join("\n"));
    }
}

// ---------------------------------------------------------------------------------------------
// Logs

/// A server at `debug` level with every line it writes (stderr and stdout) kept, and a shutdown
/// timeout of one second for [`TestApp::stop`].
async fn logged_server(store: Store) -> TestApp {
    TestApp::builder()
        .store(store)
        .env("IOT_SHUTDOWN_TIMEOUT_SECS", "1")
        .env("RUST_LOG", "debug")
        .capture_stdout()
        .spawn()
        .await
}

/// Sends `requests` (`method`, `path`, bearer token, body) to a logged server.
async fn drive(server: &TestApp, requests: &[(Method, String, Option<String>, Option<Value>)]) {
    let client = reqwest::Client::new();
    for (method, path, token, body) in requests {
        let mut request = client.request(method.clone(), format!("{}{path}", server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            !response.status().is_server_error(),
            "{method} {path}: {}",
            response.status()
        );
    }
}

/// Fails naming each line that holds a token or a token's signature.
fn assert_no_token_in(lines: &[String], tokens: &[&str]) {
    let mut found = Vec::new();
    for token in tokens {
        // The signature alone identifies (and, with the rest, replays) a token; an unsigned token
        // has none, and then only the whole token counts.
        let signature = token.rsplit('.').next().filter(|s| s.len() >= 16);
        for line in lines {
            if line.contains(token) || signature.is_some_and(|s| line.contains(s)) {
                let shown: String = line.chars().take(300).collect();
                found.push(shown);
            }
        }
    }
    assert!(
        found.is_empty(),
        "the log holds tokens:\n{}",
        found.join("\n")
    );
}

/// Requests with tokens in the `Authorization` header only: valid, wrongly signed, expired,
/// unsigned; on successful and failing requests alike.
async fn tokens_in_headers_are_never_logged(store: Store) {
    let server = logged_server(store).await;
    let valid = token("acme", &["admin"]);
    let wrong = jsonwebtoken::encode(
        &Header::default(),
        &claims(),
        &EncodingKey::from_secret(b"not-the-server-secret-not-the-server-secret"),
    )
    .expect("sign");
    let expired = sign(&claims_with("exp", json!(now_unix() - 60)));
    let unsigned = format!("{}.", signing_input(&json!({"alg": "none"}), &claims()));
    let mut requests = Vec::new();
    for t in [&valid, &wrong, &expired, &unsigned] {
        let t = Some(t.clone());
        requests.push((Method::GET, "/api/groups".to_owned(), t.clone(), None));
        requests.push((
            Method::POST,
            "/api/devices".to_owned(),
            t.clone(),
            Some(json!({"name": "Logged"})),
        ));
        requests.push((
            Method::POST,
            "/api/devices".to_owned(),
            t.clone(),
            Some(json!({"name": "Logged"})),
        ));
        requests.push((
            Method::POST,
            "/customer/device-groups".to_owned(),
            t.clone(),
            Some(json!({"name": ""})),
        ));
        requests.push((
            Method::GET,
            format!("/api/groups/{}", uuid::Uuid::new_v4()),
            t.clone(),
            None,
        ));
        requests.push((
            Method::GET,
            "/customer/maintenance-windows?status=active".to_owned(),
            t.clone(),
            None,
        ));
        requests.push((
            Method::DELETE,
            "/customer/device-groups/grp-none".to_owned(),
            t,
            None,
        ));
    }
    drive(&server, &requests).await;
    let lines = server.stop().await;

    // The log was captured (one access line per request), so its silence about tokens counts.
    let access = lines
        .iter()
        .filter(|l| l.contains("iot_api::access"))
        .count();
    assert!(
        access >= requests.len(),
        "only {access} access lines for {} requests:\n{}",
        requests.len(),
        lines.join("\n")
    );
    assert_no_token_in(&lines, &[&valid, &wrong, &expired, &unsigned]);
}

/// Fails when a token sent in the `Authorization` header appears in any log line (whole, or its
/// signature), at `RUST_LOG=debug`, whether the request succeeded or was refused.
mod tokens_in_the_authorization_header_are_never_logged {
    use super::*;

    #[tokio::test]
    async fn on_the_embedded_store() {
        tokens_in_headers_are_never_logged(Store::Memory).await;
    }

    #[tokio::test]
    async fn on_postgres() {
        tokens_in_headers_are_never_logged(Store::Postgres).await;
    }
}

/// A client that puts its token in the query string (`?token=…`, `?access_token=…`), as
/// browsers and some SDKs do.
async fn tokens_in_query_strings_are_never_logged(store: Store) {
    let server = logged_server(store).await;
    let valid = token("acme", &["admin"]);
    let another = token("acme", &["viewer"]);
    let requests = vec![
        (
            Method::GET,
            format!("/api/groups?token={valid}"),
            Some(valid.clone()),
            None,
        ),
        (
            Method::GET,
            format!("/customer/device-groups?access_token={another}"),
            Some(another.clone()),
            None,
        ),
        (
            Method::GET,
            format!("/api/groups?access_token={another}"),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/no/such/route?token={valid}"),
            None,
            None,
        ),
    ];
    drive(&server, &requests).await;
    let lines = server.stop().await;

    let access = lines
        .iter()
        .filter(|l| l.contains("iot_api::access"))
        .count();
    assert!(
        access >= requests.len(),
        "only {access} access lines:\n{}",
        lines.join("\n")
    );
    assert_no_token_in(&lines, &[&valid, &another]);
}

/// Fails when a token sent in the query string appears in any log line: an access log that
/// writes the whole request line (`%r`) does exactly that, at `info` level.
mod tokens_in_query_strings_are_never_logged {
    use super::*;

    #[tokio::test]
    async fn on_the_embedded_store() {
        tokens_in_query_strings_are_never_logged(Store::Memory).await;
    }

    #[tokio::test]
    async fn on_postgres() {
        tokens_in_query_strings_are_never_logged(Store::Postgres).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Tenancy

/// One request of tenant B; its answer must be what an id that does not exist gets.
struct Probe {
    method: Method,
    path: String,
    body: Option<Value>,
    /// The same request with A's ids replaced by ids that exist nowhere.
    unknown_path: String,
}

/// Every read that shows tenant A's data, for the before/after comparison.
async fn tenant_state(app: &TestApp, a: &str, paths: &[String]) -> Vec<(StatusCode, Value)> {
    let mut state = Vec::new();
    for path in paths {
        state.push(app.get(path, a).await);
    }
    state
}

// Fails when tenant B can read, change or delete any of tenant A's rows (a 2xx), when the refusal
// gives away that the id exists (a 403, or a 404 that differs from the one an unknown id gets),
// or when anything of A's changed afterwards (the full reads of A before and after differ).
on_both_stores! {
    async fn another_tenants_ids_answer_404_like_unknown_ids_everywhere_and_change_nothing(app) {
        let a = token("tenant-a", &["owner"]);
        let b = token("tenant-b", &["owner"]);
        // Tenant A: a device with readings, a group of it (both API families), a window.
        let d = create_device(&app, &a, json!({"name": "A's device", "site_id": "s1", "threshold_warning_upper": 5.0})).await;
        let (status, g) = app.post("/api/groups", &a, json!({"name": "A's group", "description": "mine", "device_ids": [d]})).await;
        assert_eq!(status, StatusCode::CREATED, "{g}");
        let (g, slug) = (g["id"].as_str().unwrap().to_owned(), g["group_id"].as_str().unwrap().to_owned());
        let now = crate::readings::rfc3339(now_unix() - 60);
        let (status, _) = app.post("/api/readings", &a, json!({"readings": [{"device_id": d, "timestamp": now, "value": 9.0}]})).await;
        assert_eq!(status, StatusCode::CREATED);
        let (_, w) = app.post("/customer/maintenance-windows", &a, json!({"name": "A's window", "starts_at": "2025-01-01T00:00:00Z", "group_ids": [slug]})).await;
        let w = w["window_id"].as_str().unwrap().to_owned();
        // Tenant B: a device and a group of its own.
        let bd = create_device(&app, &b, json!({"name": "B's device"})).await;
        let (_, bg) = app.post("/api/groups", &b, json!({"name": "B's group"})).await;
        let (bg, bslug) = (bg["id"].as_str().unwrap().to_owned(), bg["group_id"].as_str().unwrap().to_owned());

        let a_reads: Vec<String> = vec![
            "/api/devices".into(), format!("/api/devices/{d}"), format!("/api/devices/{d}/groups"),
            format!("/api/devices/{d}/readings?hours=24"), "/api/groups".into(), format!("/api/groups/{g}"),
            format!("/api/groups/{g}/readings?hours=24"), format!("/api/groups/{g}/alerts"),
            "/customer/device-groups".into(), format!("/customer/device-groups/{slug}"),
            format!("/customer/device-groups/{slug}/devices"), "/customer/maintenance-windows".into(),
            format!("/customer/maintenance-windows/{w}"), format!("/customer/maintenance-windows/{w}/devices"),
            format!("/customer/maintenance-windows/{w}/occurrences?from=2025-01-01T00:00:00Z"),
        ];
        let before = tenant_state(&app, &a, &a_reads).await;
        assert!(before.iter().all(|(s, _)| *s == StatusCode::OK), "{before:?}");

        let (ud, ug, uslug, uw) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string(), "grp-nowhere", "mw-nowhere");
        let probe = |method: Method, path: String, body: Option<Value>| {
            let unknown_path = path.replace(&d, &ud).replace(&g, &ug).replace(&slug, uslug).replace(&w, uw);
            Probe { method, path, body, unknown_path }
        };
        let probes = vec![
            probe(Method::GET, format!("/api/devices/{d}"), None),
            probe(Method::PUT, format!("/api/devices/{d}"), Some(json!({"name": "stolen", "threshold_warning_upper": null}))),
            probe(Method::DELETE, format!("/api/devices/{d}"), None),
            probe(Method::GET, format!("/api/devices/{d}/groups"), None),
            probe(Method::GET, format!("/api/devices/{d}/readings?hours=24"), None),
            probe(Method::POST, format!("/api/devices/{d}/readings"), Some(json!({"value": 1000.0}))),
            probe(Method::GET, format!("/api/groups/{g}"), None),
            probe(Method::PUT, format!("/api/groups/{g}"), Some(json!({"name": "stolen"}))),
            probe(Method::PUT, format!("/api/groups/{g}"), Some(json!({"device_ids": []}))),
            probe(Method::PUT, format!("/api/groups/{g}"), Some(json!({"device_ids": [bd]}))),
            probe(Method::DELETE, format!("/api/groups/{g}"), None),
            probe(Method::GET, format!("/api/groups/{g}/readings?hours=24"), None),
            probe(Method::GET, format!("/api/groups/{g}/alerts"), None),
            probe(Method::GET, format!("/customer/device-groups/{slug}"), None),
            probe(Method::PATCH, format!("/customer/device-groups/{slug}"), Some(json!({"name": "stolen"}))),
            probe(Method::DELETE, format!("/customer/device-groups/{slug}"), None),
            probe(Method::GET, format!("/customer/device-groups/{slug}/devices"), None),
            probe(Method::PUT, format!("/customer/device-groups/{slug}/devices/{d}"), None),
            probe(Method::DELETE, format!("/customer/device-groups/{slug}/devices/{d}"), None),
            probe(Method::PUT, format!("/customer/device-groups/{slug}/devices/{bd}"), None),
            probe(Method::PUT, format!("/customer/device-groups/{bslug}/devices/{d}"), None),
            probe(Method::DELETE, format!("/customer/device-groups/{bslug}/devices/{d}"), None),
            probe(Method::GET, format!("/customer/maintenance-windows/{w}"), None),
            probe(Method::PATCH, format!("/customer/maintenance-windows/{w}"), Some(json!({"enabled": false}))),
            probe(Method::DELETE, format!("/customer/maintenance-windows/{w}"), None),
            probe(Method::GET, format!("/customer/maintenance-windows/{w}/occurrences"), None),
            probe(Method::GET, format!("/customer/maintenance-windows/{w}/devices"), None),
        ];
        for p in &probes {
            let body = p.body.as_ref().map(|v| v.to_string().into_bytes());
            let theirs = send(&app, Some(&b), p.method.clone(), &p.path, body.clone()).await;
            assert_eq!(theirs.status, StatusCode::NOT_FOUND, "B: {} {}: {}", p.method, p.path, theirs.text);
            let unknown = send(&app, Some(&b), p.method.clone(), &p.unknown_path, body).await;
            assert_eq!(unknown.status, StatusCode::NOT_FOUND, "B: {} {}: {}", p.method, p.unknown_path, unknown.text);
            // The same answer as for an id that exists nowhere (ids in the detail aside).
            let normalised = theirs.text.replace(&d, &ud).replace(&g, &ug).replace(&slug, uslug).replace(&w, uw);
            assert_eq!(normalised, unknown.text, "B: {} {} tells A's id from an unknown one", p.method, p.path);
        }
        // Naming A's device in B's own writes: refused as an unknown device, never stored.
        let (status, body) = crate::devices::put(&app, &format!("/api/groups/{bg}"), &b, json!({"device_ids": [d]})).await;
        assert_eq!((status, &body), (StatusCode::BAD_REQUEST, &json!({"detail": format!("Device {d} not found"), "code": "GROUP_002"})));
        let (status, body) = app.post("/api/groups", &b, json!({"name": "Grab", "device_ids": [d]})).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("GROUP_002")), "{body}");
        let (status, body) = app.post("/api/readings", &b, json!({"readings": [{"device_id": d, "timestamp": now, "value": 1000.0}]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        // B's window naming A's slug is refused like any unknown group; B's lists hold only B's rows.
        let (status, body) = app.post("/customer/maintenance-windows", &b, json!({"name": "B's window", "starts_at": "2025-01-01T00:00:00Z", "group_ids": [slug]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["detail"], format!("group_ids: names a group that does not exist: {slug}"));
        let (_, all) = app.post("/customer/maintenance-windows", &b, json!({"name": "B's all", "starts_at": "2025-01-01T00:00:00Z"})).await;
        let (_, covered) = app.get(&format!("/customer/maintenance-windows/{}/devices", all["window_id"].as_str().unwrap()), &b).await;
        let ids: Vec<&str> = covered["devices"].as_array().expect("devices").iter().map(|x| x["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [bd.as_str()], "{covered}");
        assert_eq!(crate::devices::names(&app.get("/api/devices", &b).await.1), ["B's device"]);
        assert_eq!(crate::devices::names(&app.get("/api/groups", &b).await.1), ["B's group"]);
        assert_eq!(app.get(&format!("/api/groups/{bg}"), &b).await.1["devices"], json!([]));

        // A's data is exactly as it was.
        let after = tenant_state(&app, &a, &a_reads).await;
        for ((path, was), now) in a_reads.iter().zip(&before).zip(&after) {
            assert_eq!(was, now, "A's {path} changed");
        }
    }
}
