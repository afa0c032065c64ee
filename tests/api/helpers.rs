//! Starts the binary and speaks to it.

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use store_postgres::testing::TestDatabase;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

pub const SECRET: &str = "black-box-test-secret-at-least-32-bytes";

#[derive(Debug, Clone, Copy)]
pub enum Store {
    Memory,
    Postgres,
}

/// A running server, killed when dropped (before its database is dropped).
pub struct TestApp {
    pub base: String,
    pub startup_log: Vec<String>,
    client: reqwest::Client,
    _child: Child,
    _db: Option<TestDatabase>,
}

/// Runs the test body once per store, each against a server of its own. Attributes before
/// `async fn` (such as `#[ignore = "..."]`) apply to both tests.
#[macro_export]
macro_rules! on_both_stores {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn scenario($app: $crate::helpers::TestApp) $body

            $(#[$meta])*
            #[tokio::test]
            async fn on_the_embedded_store() {
                scenario($crate::helpers::TestApp::spawn($crate::helpers::Store::Memory).await).await;
            }

            $(#[$meta])*
            #[tokio::test]
            async fn on_postgres() {
                scenario($crate::helpers::TestApp::spawn($crate::helpers::Store::Postgres).await).await;
            }
        }
    };
}

impl TestApp {
    pub async fn spawn(store: Store) -> Self {
        let db = match store {
            Store::Memory => None,
            Store::Postgres => Some(TestDatabase::create().await),
        };
        let url = db.as_ref().map(|db| db.url().to_owned());
        let mut app = Self::spawn_on(url.as_deref()).await;
        app._db = db;
        app
    }

    /// A server on the database at `database_url` (the embedded store without one), which
    /// this app does not own: several instances may share it.
    pub async fn spawn_on(database_url: Option<&str>) -> Self {
        Self::spawn_with(database_url, &[]).await
    }

    /// Like [`TestApp::spawn_on`], with the environment variables `env` on top of the usual.
    pub async fn spawn_with(database_url: Option<&str>, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_iot-api"));
        command
            .arg("serve")
            .env("IOT_BIND", "127.0.0.1:0")
            .env("IOT_JWT_SECRET", SECRET)
            .env("IOT_WORKERS", "1")
            .env("IOT_DB_POOL_SIZE", "4")
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .env_remove("IOT_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("start iot-api");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut startup_log = Vec::new();
        // The server logs its address once it is bound: no sleeping, no polling.
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read server log") {
                startup_log.push(line.clone());
                if let Some(i) = line.find("listening on http://") {
                    return line[i + "listening on ".len()..].trim().to_owned();
                }
            }
            panic!(
                "iot-api exited before listening:\n{}",
                startup_log.join("\n")
            );
        })
        .await
        .expect("iot-api did not start within 60 s");
        // Keep draining the log so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            base,
            startup_log,
            client: reqwest::Client::new(),
            _child: child,
            _db: None,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Signs arbitrary claims with the server's secret.
pub fn sign(claims: &Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

/// A valid token of `tenant` with `roles`.
pub fn token(tenant: &str, roles: &[&str]) -> String {
    sign(&json!({ "sub": "tester", "tenant_id": tenant, "roles": roles, "exp": now() + 3600 }))
}

pub fn expired_token(tenant: &str) -> String {
    sign(&json!({ "sub": "tester", "tenant_id": tenant, "roles": ["admin"], "exp": now() - 10 }))
}

pub fn now_unix() -> u64 {
    now()
}

/// The `detail` of an error body.
pub fn detail(body: &Value) -> &str {
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"))
}
