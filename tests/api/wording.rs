//! What people read (issue 18, points 4, 7 and 8): error details without serde or Rust words,
//! malformed JSON with its line and column, one phrasing for ranges, the Group API's hint for
//! slugs, the six token refusals and their log lines; the operators' view (access lines with
//! tenant, subject and trace id, the startup and `stopped` lines, build and process metrics);
//! the command line's wording and the development banner.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{detail, now_unix, run_binary, sign, token, Exited, Store, TestApp, SECRET};
use crate::on_both_stores;

const LOG_WAIT: Duration = Duration::from_secs(30);

/// Words of serde's or Rust's that no `detail` may carry.
const SERDE_WORDS: [&str; 10] = [
    "invalid type",
    "invalid value",
    "expected",
    "variant",
    "f64",
    "u32",
    "i64",
    "sequence",
    "struct",
    "`",
];

fn assert_plain(detail: &str) {
    for word in SERDE_WORDS {
        assert!(!detail.contains(word), "{word:?} in {detail:?}");
    }
    assert!(!detail.starts_with("?"), "{detail:?}");
}

/// A server with JSON logs on `store`.
async fn json_logged(store: Store) -> TestApp {
    TestApp::builder()
        .store(store)
        .env("IOT_LOG_FORMAT", "json")
        .spawn()
        .await
}

fn parse(line: &str) -> Option<Value> {
    serde_json::from_str::<Value>(line)
        .ok()
        .filter(Value::is_object)
}

on_both_stores! {
    async fn body_errors_say_what_a_field_must_be_in_plain_words(app) {
        let admin = token("acme", &["admin"]);
        let (_, device) = app.post("/api/devices", &admin, json!({"name": "Probe"})).await;
        let d = device["id"].as_str().expect("device id").to_owned();
        for (path, body, expected) in [
            ("/api/devices".to_owned(), json!({"name": 5}), "name: must be a string"),
            ("/api/devices".to_owned(), json!({"name": "P", "threshold_warning_lower": "x"}), "threshold_warning_lower: must be a number"),
            ("/api/devices".to_owned(), json!({"name": "P", "status": "sleeping"}), "status: must be one of connected, disconnected, error"),
            ("/api/devices".to_owned(), json!({"unit": "K"}), "name: required"),
            ("/api/devices".to_owned(), json!({"name": "P", "colour": "red"}), "colour: unknown field; allowed fields are name, unit, status, site_id, device_type, threshold_warning_lower, threshold_warning_upper, threshold_critical_lower, threshold_critical_upper, stale_after_s, labels"),
            ("/api/readings".to_owned(), json!({"readings": {"value": 1}}), "readings: must be an array"),
            ("/api/readings".to_owned(), json!({"readings": [{"device_id": d, "timestamp": "2025-01-01T00:00:00Z", "value": true}]}), "readings[0].value: must be a number"),
            ("/api/readings".to_owned(), json!({"readings": [{"device_id": d, "value": 1.0}]}), "readings[0].timestamp: required"),
            (format!("/api/devices/{d}/readings"), json!({"value": [1]}), "value: must be a number"),
            ("/customer/maintenance-windows".to_owned(), json!({"name": "N", "starts_at": "2025-01-01T00:00:00Z", "enabled": "yes"}), "enabled: must be true or false"),
            ("/customer/maintenance-windows".to_owned(), json!({"name": "N", "starts_at": "2025-01-01T00:00:00Z", "recurring": {"start_hour": 2}}), "recurring.end_hour: required"),
            ("/customer/maintenance-windows".to_owned(), json!({"name": "N", "starts_at": "2025-01-01T00:00:00Z", "recurring": {"start_hour": -1, "end_hour": 2}}), "recurring.start_hour: must be from 0 to 23, got -1"),
        ] {
            let (status, answer) = app.post(&path, &admin, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {answer}");
            assert_eq!(detail(&answer), expected, "{path} {body}");
            assert_plain(detail(&answer));
        }
    }
}

on_both_stores! {
    async fn malformed_json_names_the_body_its_line_and_column(app) {
        let admin = token("acme", &["admin"]);
        for (body, expected) in [
            ("{\n  \"name\": \"a\",\n  \"unit\" \"K\"\n}", "body: malformed JSON at line 3, column 10: ':' missing after a key"),
            ("{\"name\": \"a\",}", "body: malformed JSON at line 1, column 14: trailing comma"),
            ("{\"name\": ", "body: malformed JSON at line 1, column 9: the body ends inside a value"),
            ("{\"name\": \"a\"} {}", "body: malformed JSON at line 1, column 15: trailing characters"),
            ("nope", "body: malformed JSON at line 1, column 2: unknown word (true, false and null are the only bare words)"),
        ] {
            let (status, answer) = app.raw(Method::POST, "/api/devices", &admin, body.as_bytes().to_vec()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:?}: {answer}");
            assert_eq!(detail(&answer), expected, "{body:?}");
            assert_plain(detail(&answer));
        }
    }
}

on_both_stores! {
    async fn ranges_are_worded_one_way_everywhere(app) {
        let admin = token("acme", &["admin"]);
        let (_, device) = app.post("/api/devices", &admin, json!({"name": "Probe"})).await;
        let d = device["id"].as_str().expect("device id").to_owned();
        for (path, expected) in [
            (format!("/api/devices/{d}/readings?hours=0"), "hours: must be from 1 to 8760, got 0"),
            (format!("/api/devices/{d}/readings?limit=0"), "limit: must be from 1 to 10000, got 0"),
            ("/api/groups?limit=0".to_owned(), "limit: must be from 1 to 1000, got 0"),
            ("/api/groups?offset=-1".to_owned(), "offset: must be from 0 to 4294967295, got -1"),
        ] {
            let (status, answer) = app.get(&path, &admin).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {answer}");
            assert_eq!(detail(&answer), expected, "{path}");
            assert!(!detail(&answer).contains("between"), "{answer}");
        }
    }
}

on_both_stores! {
    async fn a_slug_on_the_group_api_is_told_the_group_api_takes_uuids(app) {
        let admin = token("acme", &["admin"]);
        let (status, group) = app.post("/customer/device-groups", &admin, json!({"group_id": "my-slug", "name": "Lobby"})).await;
        assert!(status.is_success(), "{group}");
        let (status, answer) = app.get("/api/groups/my-slug", &admin).await;
        assert_eq!(
            (status, answer),
            (StatusCode::NOT_FOUND, json!({
                "detail": "Group my-slug not found; the Group API takes group UUIDs (slugs are for /customer/device-groups)",
                "code": "GROUP_005",
            }))
        );
        // A UUID keeps seed 002's text.
        let id = uuid::Uuid::new_v4();
        let (status, answer) = app.get(&format!("/api/groups/{id}"), &admin).await;
        assert_eq!((status, answer), (StatusCode::NOT_FOUND, json!({"detail": format!("Group {id} not found"), "code": "GROUP_005"})));
    }
}

/// The six refusals: a request's `Authorization` (none for `None`) and its 401 detail.
fn refusals() -> Vec<(Option<String>, &'static str)> {
    let now = now_unix();
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "a", "tenant_id": "acme", "exp": now + 60}),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
    )
    .expect("sign");
    vec![
        (None, "Not authenticated"),
        (Some("Bearer not-a-jwt".to_owned()), "Malformed token"),
        (
            Some(format!("Bearer {other_key}")),
            "Invalid token signature",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(&json!({"sub": "a", "tenant_id": "acme", "exp": now - 10}))
            )),
            "Token expired",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(&json!({"sub": "a", "tenant_id": "acme", "exp": now + 600, "nbf": now + 300}))
            )),
            "Token not yet valid",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(&json!({"sub": "a", "exp": now + 60}))
            )),
            "Token has no tenant_id",
        ),
    ]
}

async fn send(
    app: &TestApp,
    authorization: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = app.client().get(format!("{}/api/groups", app.base));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

on_both_stores! {
    async fn token_refusals_say_which_of_six(app) {
        for (authorization, expected) in refusals() {
            let (status, headers, body) = send(&app, authorization.as_deref(), &[]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{expected}");
            assert_eq!(headers.get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"), "{expected}");
            assert_eq!(body, json!({"detail": expected}));
        }
        // No `roles`, or `[]`: valid, and reads only.
        for claims in [
            json!({"sub": "r", "tenant_id": "acme", "exp": now_unix() + 60}),
            json!({"sub": "r", "tenant_id": "acme", "exp": now_unix() + 60, "roles": []}),
        ] {
            let reader = sign(&claims);
            let (status, _) = app.get("/api/groups", &reader).await;
            assert_eq!(status, StatusCode::OK, "{claims}");
            let (status, _) = app.post("/api/groups", &reader, json!({"name": "G"})).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{claims}");
        }
    }
}

#[tokio::test]
async fn a_refusal_is_logged_with_its_reason_and_the_request_trace_id() {
    let app = json_logged(Store::Memory).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for (i, (authorization, expected)) in refusals().into_iter().enumerate() {
        let request_id = format!("refusal-{i}");
        let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
        let (status, _, _) = send(
            &app,
            authorization.as_deref(),
            &[("x-request-id", &request_id), ("traceparent", &traceparent)],
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let of_request = |l: &Value| l["span"]["request_id"] == request_id.as_str();
        let refusal = app
            .wait_for_line("a refusal line", LOG_WAIT, |l| {
                parse(l).is_some_and(|l| of_request(&l) && l["target"] == "iot_api::auth")
            })
            .await;
        let refusal = parse(&refusal).expect("json");
        assert_eq!(refusal["fields"]["reason"], expected, "{refusal}");
        let access = app
            .wait_for_line("an access line", LOG_WAIT, |l| {
                parse(l).is_some_and(|l| of_request(&l) && l["target"] == "iot_api::access")
            })
            .await;
        // Every line of the request carries the trace id of its traceparent, and none the token.
        for line in app
            .log()
            .iter()
            .filter_map(|l| parse(l))
            .filter(|l| of_request(l))
        {
            assert_eq!(line["span"]["trace_id"], trace, "{line}");
            if let Some(authorization) = &authorization {
                let token = authorization.trim_start_matches("Bearer ");
                assert!(!line.to_string().contains(token), "{line}");
            }
        }
        assert!(access.contains("\"status\":401"), "{access}");
    }
}

#[tokio::test]
async fn access_lines_carry_tenant_subject_trace_id_and_a_short_duration() {
    for store in [Store::Memory, Store::Postgres] {
        let app = json_logged(store).await;
        let reader = sign(
            &json!({"sub": "alice@example.com", "tenant_id": "acme", "roles": ["viewer"], "exp": now_unix() + 60}),
        );
        let trace = "0af7651916cd43dd8448eb211c80319c";
        let bearer = format!("Bearer {reader}");
        let (status, _, _) = send(
            &app,
            Some(&bearer),
            &[
                ("x-request-id", "traced"),
                ("traceparent", &format!("00-{trace}-b7ad6b7169203331-01")),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = send(&app, Some(&bearer), &[("x-request-id", "untraced")]).await;
        assert_eq!(status, StatusCode::OK);
        let access = |id: &'static str| {
            let app = &app;
            async move {
                let line = app
                    .wait_for_line("an access line", LOG_WAIT, |l| {
                        parse(l).is_some_and(|l| {
                            l["target"] == "iot_api::access" && l["span"]["request_id"] == id
                        })
                    })
                    .await;
                (parse(&line).expect("json"), line)
            }
        };
        let (traced, text) = access("traced").await;
        assert_eq!(traced["span"]["trace_id"], trace, "{traced}");
        assert_eq!(traced["span"]["tenant"], "acme", "{traced}");
        assert_eq!(traced["span"]["subject"], "alice@example.com", "{traced}");
        assert!(!text.contains(&reader), "the token is logged: {text}");
        let ms = traced["fields"]["elapsed_ms"].as_f64().expect("a number");
        assert!(ms >= 0.0, "{traced}");
        // To the microsecond at most: three decimals.
        let printed = traced["fields"]["elapsed_ms"].to_string();
        assert!(
            printed
                .split('.')
                .nth(1)
                .is_none_or(|decimals| decimals.len() <= 3),
            "{printed}"
        );
        // Without a traceparent: a fresh trace id, 32 lowercase hex digits, not the other's.
        let (untraced, _) = access("untraced").await;
        let generated = untraced["span"]["trace_id"].as_str().expect("a trace id");
        assert!(
            generated.len() == 32
                && generated
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{generated}"
        );
        assert_ne!(generated, trace);
    }
}

/// The password given in `DATABASE_URL`; the harness's PostgreSQL trusts local connections,
/// so it is sent and ignored.
const DB_PASSWORD: &str = "hunter2secret";

/// `url` with [`DB_PASSWORD`] as its password.
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// url");
    let (userinfo, host) = rest.split_once('@').unwrap_or(("postgres", rest));
    let user = userinfo.split(':').next().unwrap_or("postgres");
    format!("{scheme}://{user}:{DB_PASSWORD}@{host}")
}

#[tokio::test]
async fn the_startup_line_names_version_store_and_settings_and_a_clean_stop_ends_with_stopped() {
    let db = test_db::TestDatabase::create().await;
    for store in [Store::Memory, Store::Postgres] {
        let builder = TestApp::builder()
            .env("IOT_LOG_FORMAT", "json")
            .env("IOT_SHUTDOWN_DRAIN_SECS", "0");
        let builder = match store {
            Store::Memory => builder,
            Store::Postgres => builder.database_url(&with_password(db.url())),
        };
        let app = builder.spawn().await;
        let starting = app
            .startup_log
            .iter()
            .filter_map(|l| parse(l))
            .find(|l| l["fields"]["message"] == "starting")
            .unwrap_or_else(|| panic!("no startup line in {:?}", app.startup_log));
        assert_eq!(
            starting["fields"]["version"],
            env!("CARGO_PKG_VERSION"),
            "{starting}"
        );
        let (expected_store, url) = match store {
            Store::Memory => ("embedded", "database_url=unset".to_owned()),
            Store::Postgres => (
                "postgres",
                format!(
                    "database_url={}",
                    with_password(db.url()).replace(DB_PASSWORD, "***")
                ),
            ),
        };
        assert_eq!(starting["fields"]["store"], expected_store, "{starting}");
        let settings = starting["fields"]["settings"].as_str().expect("settings");
        for setting in [
            "bind=127.0.0.1:0",
            "workers=1",
            "db_pool_size=4",
            "request_timeout_ms=5000",
            "jwt_secret=[redacted]",
            &url,
        ] {
            assert!(settings.contains(setting), "{setting} not in {settings}");
        }
        let lines = app.stop().await;
        for secret in [SECRET, DB_PASSWORD] {
            assert!(
                lines.iter().all(|l| !l.contains(secret)),
                "{secret} logged: {lines:?}"
            );
        }
        let last = lines
            .iter()
            .rev()
            .find_map(|l| parse(l))
            .expect("a last line");
        assert_eq!(last["fields"]["message"], "stopped", "{lines:?}");
    }
}

on_both_stores! {
    async fn metrics_carry_the_build_and_the_process(app) {
        let response = app.client().get(format!("{}/metrics", app.base)).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.expect("text");
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
                .trim()
                .parse()
                .expect("a number")
        };
        assert_eq!(value(&format!("iot_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))), 1.0);
        assert!(value("process_resident_memory_bytes") > 1_000_000.0, "{text}");
        assert!(value("process_cpu_seconds_total") >= 0.0);
        assert!(value("process_open_fds") >= 3.0, "{text}");
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"), "{text}");
    }
}

/// The lines of a failed start that say what failed.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[tokio::test]
async fn a_missing_secret_names_the_environment_variable_and_no_flag() {
    for args in [&["serve"][..], &["token", "--tenant", "acme"][..]] {
        let Exited { status, stderr, .. } = run_binary(args, &[("IOT_BIND", "127.0.0.1:0")]).await;
        assert!(!status.success(), "{args:?}");
        let lines = error_lines(&stderr);
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(
            lines[0].contains("set the IOT_JWT_SECRET environment variable"),
            "{stderr}"
        );
        assert!(
            !lines[0].contains("--jwt-secret") && !lines[0].contains("--"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn a_bind_without_a_host_says_host_port() {
    for (args, env) in [
        (
            &["serve", "--bind", "8081"][..],
            vec![("IOT_JWT_SECRET", SECRET)],
        ),
        (
            &["serve"][..],
            vec![("IOT_JWT_SECRET", SECRET), ("IOT_BIND", "8081")],
        ),
    ] {
        let Exited { status, stderr, .. } = run_binary(args, &env).await;
        assert!(!status.success());
        let lines = error_lines(&stderr);
        assert_eq!(
            lines,
            ["iot-api: IOT_BIND (--bind) must be host:port, such as 127.0.0.1:8081; got '8081'"],
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn the_banner_comes_only_after_the_bind_and_a_busy_port_is_one_line() {
    // A busy port: one line naming the address, a failure status, no banner, no panic.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().unwrap().to_string();
    let Exited {
        status,
        stdout,
        stderr,
        ..
    } = TestApp::builder()
        .isolated()
        .args(["--dev-banner"])
        .env("IOT_BIND", &address)
        .run_to_exit(Duration::from_secs(60))
        .await;
    assert!(!status.success(), "{stderr}");
    assert_eq!(
        error_lines(&stderr),
        [format!("iot-api: cannot listen on {address}: the address is already in use (another process listens there; choose another with IOT_BIND)")],
        "{stderr}"
    );
    assert!(
        !stdout.contains("TOKEN"),
        "a banner before the bind: {stdout}"
    );
    drop(taken);

    // A free port: the banner names the bound address, and its token works there.
    let app = TestApp::builder()
        .isolated()
        .args(["--dev-banner"])
        .capture_stdout()
        .spawn()
        .await;
    let line = app
        .wait_for_line("the banner's token", LOG_WAIT, |l| {
            l.contains("export TOKEN=")
        })
        .await;
    let banner_token = line.trim().trim_start_matches("export TOKEN=").to_owned();
    let log = app.log();
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("iot-api on {}", app.base))),
        "{log:?}"
    );
    let (status, _) = app.get("/customer/device-groups", &banner_token).await;
    assert_eq!(status, StatusCode::OK);
}
