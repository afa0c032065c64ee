//! Webhooks (issue 15): subscriptions, Standard Webhooks signatures (checked in Rust and with
//! the Python `standardwebhooks` library), retries, a receiver down then back, `kill -9` with
//! deliveries pending, the SSRF guard and who may use them. Receivers are real HTTP servers on
//! 127.0.0.1 (a few lines on a `TcpListener`), so the servers here allow private targets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use test_db::TestDatabase;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::helpers::{detail, token, Store, TestApp};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    id: String,
    timestamp: String,
    signature: String,
    pub(crate) body: String,
    /// The status the receiver answered it with.
    answered: u16,
}

/// A receiver on 127.0.0.1: answers each request with the next status of its script (the last
/// one repeats) and keeps what it got.
pub(crate) struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub(crate) async fn start(script: &[u16]) -> Self {
        Self::start_on(0, script).await
    }

    async fn start_on(port: u16, script: &[u16]) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.to_vec()));
        let task = tokio::spawn({
            let got = got.clone();
            async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    let (got, script) = (got.clone(), script.clone());
                    tokio::spawn(async move { serve(socket, &got, &script).await });
                }
            }
        });
        Self { port, got, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits (up to `limit`) until `n` distinct `webhook-id`s were answered with a 2xx.
    pub(crate) async fn wait_delivered(&self, n: usize, limit: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.got();
            let ids: std::collections::HashSet<&str> = got
                .iter()
                .filter(|r| (200..300).contains(&r.answered))
                .map(|r| r.id.as_str())
                .collect();
            if ids.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < limit,
                "{} of {n} deliveries in {limit:?}",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 exchange (the service sends one request per connection it keeps, sequentially).
async fn serve(
    mut socket: tokio::net::TcpStream,
    got: &Mutex<Vec<Received>>,
    script: &Mutex<Vec<u16>>,
) {
    loop {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        let headers: HashMap<String, String> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).to_string();
        let status = {
            let mut script = script.lock().expect("lock");
            if script.len() > 1 {
                script.remove(0)
            } else {
                script[0]
            }
        };
        got.lock().expect("lock").push(Received {
            id: headers.get("webhook-id").cloned().unwrap_or_default(),
            timestamp: headers
                .get("webhook-timestamp")
                .cloned()
                .unwrap_or_default(),
            signature: headers
                .get("webhook-signature")
                .cloned()
                .unwrap_or_default(),
            body,
            answered: status,
        });
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"
        );
        if socket.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A port nothing listens on (yet): bound, then freed.
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address").port()
}

/// Servers deliver to 127.0.0.1, retry every `schedule_ms` and poll often.
pub(crate) fn webhook_env(schedule_ms: &str) -> Vec<(&'static str, String)> {
    vec![
        ("IOT_WEBHOOK_ALLOW_PRIVATE", "true".to_owned()),
        ("IOT_WEBHOOK_RETRY_SCHEDULE_MS", schedule_ms.to_owned()),
        ("IOT_WEBHOOK_POLL_MS", "50".to_owned()),
        ("IOT_WEBHOOK_TIMEOUT_MS", "2000".to_owned()),
    ]
}

async fn server(store: Store, schedule_ms: &str) -> TestApp {
    TestApp::builder()
        .store(store)
        .envs(webhook_env(schedule_ms))
        .spawn()
        .await
}

fn admin(tenant: &str) -> String {
    token(tenant, &["admin"])
}

async fn subscribe(app: &TestApp, auth: &str, url: &str) -> Value {
    let (status, body) = app
        .post(
            "/api/webhooks",
            auth,
            json!({"url": url, "event_types": ["alert.opened", "device.state"], "description": "test"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn send_test(app: &TestApp, auth: &str, id: &str) -> String {
    let (status, body) = app
        .post(&format!("/api/webhooks/{id}/test"), auth, json!(null))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["delivery_id"].as_str().expect("id").to_owned()
}

/// The Standard Webhooks signature, computed here from the specification (not the service's
/// code): base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed by the decoded secret.
fn expected_signature(secret: &str, r: &Received) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A virtualenv with the Python `standardwebhooks` library, under target/ (made once).
fn python_with_standardwebhooks() -> std::path::PathBuf {
    let venv =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/standardwebhooks-venv");
    let python = venv.join("bin/python");
    let ready = std::process::Command::new(&python)
        .args(["-c", "import standardwebhooks"])
        .status()
        .is_ok_and(|s| s.success());
    if ready {
        return python;
    }
    let made = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "this test needs python3 with the venv module (Debian: apt-get install python3-venv) to install the Python standardwebhooks library"
    );
    let installed = std::process::Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "standardwebhooks==1.0.0",
        ])
        .status();
    assert!(
        installed.is_ok_and(|s| s.success()),
        "this test needs pip to install standardwebhooks==1.0.0 from PyPI into {}",
        venv.display()
    );
    python
}

/// Verifies a received delivery with the Python library, as a receiver would.
fn verify_in_python(secret: &str, r: &Received) {
    let python = python_with_standardwebhooks();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
given = json.load(sys.stdin)
payload = Webhook(given["secret"]).verify(given["body"].encode(), given["headers"])
print(json.dumps(payload))
"#;
    let input = json!({
        "secret": secret,
        "body": r.body,
        "headers": {
            "webhook-id": r.id,
            "webhook-timestamp": r.timestamp,
            "webhook-signature": r.signature,
        },
    });
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        input.to_string().as_bytes(),
    )
    .expect("write");
    let out = child.wait_with_output().expect("python ends");
    assert!(
        out.status.success(),
        "standardwebhooks refused the delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let payload: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(payload["type"], "webhook.test");
}

async fn deliveries(app: &TestApp, auth: &str, id: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/webhooks/{id}/deliveries?limit=100"), auth)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["deliveries"].as_array().expect("list").clone()
}

/// Waits until the delivery's state is `state`.
async fn wait_state(app: &TestApp, auth: &str, hook: &str, delivery: &str, state: &str) -> Value {
    let started = Instant::now();
    loop {
        let list = deliveries(app, auth, hook).await;
        if let Some(d) = list.iter().find(|d| d["id"] == delivery) {
            if d["state"] == state {
                return d.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "delivery {delivery} not {state}: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

macro_rules! on_both {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test]
            async fn on_the_embedded_store() {
                super::$scenario(crate::helpers::Store::Memory).await;
            }
            #[tokio::test]
            async fn on_postgres() {
                super::$scenario(crate::helpers::Store::Postgres).await;
            }
        }
    };
}

on_both!(
    subscriptions_round_trip_with_the_secret_shown_once,
    subscriptions_round_trip
);

async fn subscriptions_round_trip(store: Store) {
    let app = server(store, "1000").await;
    let auth = admin("hooks-crud");
    let created = subscribe(&app, &auth, "http://127.0.0.1:9/hook").await;
    let id = created["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("secret");
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64");
    assert!(key.len() >= 24, "a key of {} bytes", key.len());
    assert_eq!(created["enabled"], true);
    assert_eq!(
        created["event_types"],
        json!(["alert.opened", "device.state"])
    );
    assert_eq!(created["description"], "test");
    assert!(created["created_at"].is_string());

    let (status, got) = app.get(&format!("/api/webhooks/{id}"), &auth).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        got.get("secret").is_none(),
        "the secret is never shown again: {got}"
    );
    let (_, list) = app.get("/api/webhooks", &auth).await;
    assert_eq!(list["webhooks"].as_array().map(Vec::len), Some(1));
    assert!(list["webhooks"][0].get("secret").is_none());

    // ETag on the list and the subscription; 304 to If-None-Match.
    for path in ["/api/webhooks".to_owned(), format!("/api/webhooks/{id}")] {
        let answer = app
            .client()
            .get(format!("{}{path}", app.base))
            .bearer_auth(&auth)
            .send()
            .await
            .expect("sent");
        let tag = answer.headers()["etag"].to_str().expect("ascii").to_owned();
        let again = app
            .client()
            .get(format!("{}{path}", app.base))
            .bearer_auth(&auth)
            .header("if-none-match", &tag)
            .send()
            .await
            .expect("sent");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }

    let (status, patched) = app
        .patch(
            &format!("/api/webhooks/{id}"),
            &auth,
            json!({"description": "paging", "enabled": false, "event_types": ["window.started"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["description"], "paging");
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["event_types"], json!(["window.started"]));

    let (status, body) = app
        .post(
            "/api/webhooks",
            &auth,
            json!({"url": "http://127.0.0.1:9/", "event_types": ["alert.opened", "alert.exploded"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&body).starts_with("event_types"), "{body}");
    let (status, body) = app
        .post(
            "/api/webhooks",
            &auth,
            json!({"url": "http://127.0.0.1:9/", "event_types": []}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&body).starts_with("event_types"), "{body}");
    let twelve = vec!["alert.opened"; 12];
    let (status, body) = app
        .post(
            "/api/webhooks",
            &auth,
            json!({"url": "http://127.0.0.1:9/", "event_types": twelve}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        detail(&body).starts_with("event_types: must have at most 11"),
        "{body}"
    );
    let (status, body) = app
        .post(
            "/api/webhooks",
            &auth,
            json!({"url": "ftp://127.0.0.1/", "event_types": ["alert.opened"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&body).starts_with("url"), "{body}");
    let (status, body) = app
        .post(
            "/api/webhooks",
            &auth,
            json!({"url": "http://127.0.0.1:9/", "event_types": ["alert.opened"], "description": "x".repeat(501)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&body).starts_with("description"), "{body}");

    // Another tenant sees none of it.
    let (status, _) = app
        .get(&format!("/api/webhooks/{id}"), &admin("hooks-other"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // At most 20 per tenant.
    for _ in 1..20 {
        subscribe(&app, &auth, "http://127.0.0.1:9/hook").await;
    }
    let (status, body) = app
        .post(
            "/api/webhooks",
            &auth,
            json!({"url": "http://127.0.0.1:9/", "event_types": ["alert.opened"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, _) = app.delete(&format!("/api/webhooks/{id}"), &auth).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&format!("/api/webhooks/{id}"), &auth).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// All webhook routes, reads included, are for admins and owners.
#[tokio::test]
async fn operators_and_viewers_are_refused_every_webhook_route() {
    let app = server(Store::Memory, "1000").await;
    let created = subscribe(
        &app,
        &token("hooks-roles", &["owner"]),
        "http://127.0.0.1:9/",
    )
    .await;
    let id = created["id"].as_str().expect("id");
    for role in ["operator", "viewer"] {
        let auth = token("hooks-roles", &[role]);
        for (method, path) in [
            (reqwest::Method::GET, "/api/webhooks".to_owned()),
            (reqwest::Method::POST, "/api/webhooks".to_owned()),
            (reqwest::Method::GET, format!("/api/webhooks/{id}")),
            (reqwest::Method::PATCH, format!("/api/webhooks/{id}")),
            (reqwest::Method::DELETE, format!("/api/webhooks/{id}")),
            (reqwest::Method::POST, format!("/api/webhooks/{id}/test")),
            (
                reqwest::Method::GET,
                format!("/api/webhooks/{id}/deliveries"),
            ),
        ] {
            let (status, body) = app
                .request(method.clone(), &path, Some(&auth), Some(json!({})))
                .await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{role} {method} {path}: {body}"
            );
            assert_eq!(
                detail(&body),
                "Access forbidden. Required roles: admin, owner"
            );
        }
    }
}

/// With the switch off, URLs to loopback, private and metadata addresses, or to a name that
/// resolves to one, are refused on create and on update.
#[tokio::test]
async fn private_targets_are_refused_without_the_switch() {
    let app = TestApp::builder()
        .store(Store::Memory)
        .env_remove("IOT_WEBHOOK_ALLOW_PRIVATE")
        .spawn()
        .await;
    let auth = admin("hooks-ssrf");
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "https://192.168.1.10/hook",
    ] {
        let (status, body) = app
            .post(
                "/api/webhooks",
                &auth,
                json!({"url": url, "event_types": ["alert.opened"]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert!(detail(&body).starts_with("url: "), "{url}: {body}");
    }
    // A public address literal (no DNS needed) is taken; moving it to a private one is not.
    let created = subscribe(&app, &auth, "https://93.184.215.14/hook").await;
    let id = created["id"].as_str().expect("id");
    for url in ["http://127.0.0.1:8080/hook", "http://169.254.169.254/"] {
        let (status, body) = app
            .patch(&format!("/api/webhooks/{id}"), &auth, json!({"url": url}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert!(detail(&body).starts_with("url: "), "{url}: {body}");
    }
}

on_both!(
    test_deliveries_are_signed_as_standard_webhooks_say,
    signed_test_delivery
);

async fn signed_test_delivery(store: Store) {
    let receiver = Receiver::start(&[204]).await;
    let app = server(store, "1000").await;
    let auth = admin("hooks-sign");
    let created = subscribe(&app, &auth, &receiver.url()).await;
    let (id, secret) = (
        created["id"].as_str().expect("id"),
        created["secret"].as_str().expect("secret"),
    );
    let delivery = send_test(&app, &auth, id).await;
    let got = receiver.wait_delivered(1, Duration::from_secs(20)).await;
    let r = &got[0];
    assert_eq!(r.id, format!("msg_{}", delivery.replace('-', "")));
    assert_eq!(r.signature, expected_signature(secret, r), "signature");
    let payload: Value = serde_json::from_str(&r.body).expect("JSON body");
    assert_eq!(payload["type"], "webhook.test");
    assert_eq!(payload["data"]["webhook_id"], id);
    time::OffsetDateTime::parse(
        payload["timestamp"].as_str().expect("timestamp"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339 timestamp");
    let sent_at: i64 = r.timestamp.parse().expect("unix seconds");
    assert!((sent_at - time::OffsetDateTime::now_utc().unix_timestamp()).abs() < 60);
    verify_in_python(secret, r);

    let shown = wait_state(&app, &auth, id, &delivery, "delivered").await;
    assert_eq!(shown["event_type"], "webhook.test");
    assert_eq!(shown["attempts"][0]["status"], 204);
    assert!(shown["attempts"][0]["duration_ms"].is_u64());
    assert_eq!(shown["attempts"][0]["error"], Value::Null);
    assert_eq!(shown["next_attempt_at"], Value::Null);
}

on_both!(
    failed_attempts_are_retried_on_429_and_5xx_with_the_same_id_and_body,
    retried_on_429_and_5xx
);

async fn retried_on_429_and_5xx(store: Store) {
    let receiver = Receiver::start(&[503, 429, 500, 200]).await;
    let app = server(store, "200").await;
    let auth = admin("hooks-retry");
    let created = subscribe(&app, &auth, &receiver.url()).await;
    let (id, secret) = (
        created["id"].as_str().expect("id"),
        created["secret"].as_str().expect("secret"),
    );
    let delivery = send_test(&app, &auth, id).await;
    let got = receiver.wait_delivered(1, Duration::from_secs(20)).await;
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [503, 429, 500, 200]
    );
    assert!(got
        .iter()
        .all(|r| r.id == got[0].id && r.body == got[0].body));
    for r in &got {
        assert_eq!(r.signature, expected_signature(secret, r));
    }
    let shown = wait_state(&app, &auth, id, &delivery, "delivered").await;
    let statuses: Vec<&Value> = shown["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(
        statuses,
        [&json!(503), &json!(429), &json!(500), &json!(200)]
    );
    assert!(shown["attempts"][0]["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("HTTP 503")));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.got().len(), 4, "nothing after the 2xx");
    // The attempts are counted by outcome (this server sent nothing else).
    let (status, metrics) = app.get("/metrics", &auth).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().expect("Prometheus text");
    for line in [
        r#"iot_webhook_attempts_total{outcome="retry"} 3"#,
        r#"iot_webhook_attempts_total{outcome="delivered"} 1"#,
        "iot_webhook_attempt_duration_seconds_count 4",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
}

/// A subscription whose deliveries keep failing past the disable threshold is disabled with a
/// reason; a connection refused is retried like a 5xx.
#[tokio::test]
async fn a_subscription_failing_past_the_threshold_is_disabled_with_a_reason() {
    let port = free_port().await;
    let app = TestApp::builder()
        .store(Store::Memory)
        .envs(webhook_env("100"))
        .env("IOT_WEBHOOK_DISABLE_AFTER_SECS", "1")
        .spawn()
        .await;
    let auth = admin("hooks-disable");
    let created = subscribe(&app, &auth, &format!("http://127.0.0.1:{port}/")).await;
    let id = created["id"].as_str().expect("id");
    send_test(&app, &auth, id).await;
    let started = Instant::now();
    let disabled = loop {
        let (_, got) = app.get(&format!("/api/webhooks/{id}"), &auth).await;
        if got["enabled"] == false {
            break got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still enabled: {got}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = disabled["disabled_reason"].as_str().expect("a reason");
    assert!(reason.contains("connection failed"), "{reason}");
    let list = deliveries(&app, &auth, id).await;
    assert!(list[0]["attempts"][0]["status"].is_null());
    // Enabling it again clears the reason.
    let (_, enabled) = app
        .patch(
            &format!("/api/webhooks/{id}"),
            &auth,
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(enabled["disabled_reason"], Value::Null);
}

/// How long the receiver of the reliability figure is down.
const DOWN: Duration = Duration::from_secs(60);

/// A receiver down for a minute, then back: every delivery arrives, and none twice after a
/// 2xx. Retries every 1 to 5 s here (the schedule is shortened; the default one retries within
/// 10 s, then 30 s, 2 min, …).
#[tokio::test]
async fn a_receiver_down_for_a_minute_then_back_gets_everything_once() {
    let port = free_port().await;
    let app = server(Store::Postgres, "1000,2000,5000").await;
    let auth = admin("hooks-down");
    let created = subscribe(&app, &auth, &format!("http://127.0.0.1:{port}/hook")).await;
    let id = created["id"].as_str().expect("id");
    let mut sent = Vec::new();
    for _ in 0..20 {
        sent.push(send_test(&app, &auth, id).await);
    }
    tokio::time::sleep(DOWN).await;
    let receiver = Receiver::start_on(port, &[200]).await;
    receiver.wait_delivered(20, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(6)).await; // a retry would have come by now
    let got = receiver.got();
    let mut seen = std::collections::HashSet::new();
    for r in &got {
        assert!(
            seen.insert(r.id.clone()),
            "{} delivered twice after a 2xx",
            r.id
        );
    }
    assert_eq!(seen.len(), 20);
    let list = deliveries(&app, &auth, id).await;
    assert!(list.iter().all(|d| d["state"] == "delivered"), "{list:?}");
    assert!(
        list.iter()
            .all(|d| d["attempts"].as_array().is_some_and(|a| a.len() >= 2)),
        "each was tried while the receiver was down"
    );
}

/// `kill -9` with 1,000 deliveries pending (the receiver down), then a restart on the same
/// database with the receiver up: all 1,000 arrive.
#[tokio::test]
async fn kill_9_with_a_thousand_deliveries_pending_loses_none() {
    const PENDING: usize = 1000;
    let db = TestDatabase::create().await;
    let port = free_port().await;
    let first = TestApp::builder()
        .database_url(db.url())
        .envs(webhook_env("1000"))
        .spawn()
        .await;
    let auth = admin("hooks-kill");
    let created = subscribe(&first, &auth, &format!("http://127.0.0.1:{port}/hook")).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let mut queued = std::collections::HashSet::new();
    for batch in 0..PENDING / 50 {
        let sends = (0..50).map(|_| send_test(&first, &auth, &id));
        queued.extend(futures_util::future::join_all(sends).await);
        let _ = batch;
    }
    assert_eq!(queued.len(), PENDING);
    let _ = first.kill().await;

    let receiver = Receiver::start_on(port, &[200]).await;
    let second = TestApp::builder()
        .database_url(db.url())
        .envs(webhook_env("1000"))
        .spawn()
        .await;
    let got = receiver
        .wait_delivered(PENDING, Duration::from_secs(120))
        .await;
    let ids: std::collections::HashSet<String> = got.iter().map(|r| r.id.clone()).collect();
    let expected: std::collections::HashSet<String> = queued
        .iter()
        .map(|d| format!("msg_{}", d.replace('-', "")))
        .collect();
    assert_eq!(ids, expected, "every queued delivery, and only those");
    drop(second);
}
