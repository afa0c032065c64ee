//! Starts the binary and speaks to it. Every start of `iot-api` in these tests goes through
//! [`TestApp::builder`] (a server) or [`run_binary`] (a command that ends by itself).

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use test_db::TestDatabase;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

pub const SECRET: &str = "black-box-test-secret-at-least-32-bytes";

/// How long a server may take to log that it listens, or a command to end.
const START_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub enum Store {
    Memory,
    Postgres,
}

/// A running server, killed when dropped (before its database is dropped).
pub struct TestApp {
    pub base: String,
    /// The lines logged up to and including the listening line.
    pub startup_log: Vec<String>,
    client: reqwest::Client,
    /// Every line logged so far; closed once the process has closed its output.
    log: watch::Receiver<Vec<String>>,
    child: Child,
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

/// The one place the binary is started: `args`, and `env` applied in order (`None` removes a
/// variable) on top of the test's environment, or of nothing when `inherit_env` is false.
fn iot_api(args: &[String], inherit_env: bool, env: &[(String, Option<String>)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iot-api"));
    command.args(args).stdin(Stdio::null()).kill_on_drop(true);
    if !inherit_env {
        command.env_clear();
    }
    for (key, value) in env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

/// How a finished process ended.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// From the start to the exit.
    pub ran: Duration,
}

/// Runs `iot-api` with `args` and nothing in its environment but `env` to its end (within 60 s):
/// for the commands that end by themselves (`token`, `openapi`, `--help`).
pub async fn run_binary(args: &[&str], env: &[(&str, &str)]) -> Exited {
    let env: Vec<_> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
        .collect();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    run_to_exit(iot_api(&args, false, &env), START_LIMIT).await
}

async fn run_to_exit(mut command: Command, limit: Duration) -> Exited {
    let started = Instant::now();
    let output = tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| {
            let args: Vec<_> = command.as_std().get_args().collect();
            panic!("iot-api {args:?} still running after {limit:?} (it started?)")
        })
        .expect("run iot-api");
    Exited {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        ran: started.elapsed(),
    }
}

/// How to start `iot-api serve`: by default with the harness's settings (below) on top of the
/// test's environment, on the embedded store, stdout discarded and stderr kept.
pub struct ServerBuilder {
    store: Store,
    args: Vec<String>,
    inherit_env: bool,
    env: Vec<(String, Option<String>)>,
    capture_stdout: bool,
}

impl ServerBuilder {
    fn new() -> Self {
        Self {
            store: Store::Memory,
            args: vec!["serve".to_owned()],
            inherit_env: true,
            env: Vec::new(),
            capture_stdout: false,
        }
        .env("IOT_BIND", "127.0.0.1:0")
        .env("IOT_JWT_SECRET", SECRET)
        .worker_count(1)
        .env("IOT_DB_POOL_SIZE", "4")
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_URL")
        .env_remove("IOT_LOG_FORMAT")
    }

    /// On a fresh database of its own (dropped after the server), or on the embedded store.
    pub fn store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    /// On the database at `url`, which the server does not own: several may share it.
    pub fn database_url(self, url: &str) -> Self {
        self.env("DATABASE_URL", url)
    }

    pub fn worker_count(self, workers: usize) -> Self {
        self.env("IOT_WORKERS", &workers.to_string())
    }

    /// Sets an environment variable (over the harness's setting, if it has one).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), Some(value.to_owned())));
        self
    }

    pub fn envs<K: AsRef<str>, V: AsRef<str>>(
        self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        vars.into_iter()
            .fold(self, |builder, (k, v)| builder.env(k.as_ref(), v.as_ref()))
    }

    /// Unsets an environment variable, whether the harness or the test's environment sets it.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.to_owned(), None));
        self
    }

    /// Nothing from the test's environment: only the harness's settings and the test's own.
    pub fn isolated(mut self) -> Self {
        self.inherit_env = false;
        self
    }

    /// Nothing from the test's environment, nor any of the harness's settings: the test says
    /// every setting (to test the command line itself).
    pub fn bare(mut self) -> Self {
        self.inherit_env = false;
        self.env.clear();
        self
    }

    /// Arguments after `serve`.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Keeps stdout too, its lines among the log's.
    pub fn capture_stdout(mut self) -> Self {
        self.capture_stdout = true;
        self
    }

    /// Starts the server and waits (60 s at most) for it to log the address it listens on.
    pub async fn spawn(self) -> TestApp {
        let (mut command, db) = self.command().await;
        command
            .stdout(if self.capture_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start iot-api");
        let log = keep_lines(child.stderr.take(), child.stdout.take());
        // The server logs its address once it is bound: no sleeping, no polling.
        let (base, startup_log) = {
            let mut watching = log.clone();
            let listening = tokio::time::timeout(
                START_LIMIT,
                watching.wait_for(|lines| lines.iter().any(|l| listening_address(l).is_some())),
            )
            .await
            .unwrap_or_else(|_| panic!("iot-api did not start within {START_LIMIT:?}"));
            let lines = match listening {
                Ok(lines) => lines.clone(),
                Err(_) => panic!(
                    "iot-api {:?} exited before listening:\n{}",
                    command.as_std().get_args().collect::<Vec<_>>(),
                    log.borrow().join("\n")
                ),
            };
            let at = lines
                .iter()
                .position(|l| listening_address(l).is_some())
                .expect("seen");
            let base = listening_address(&lines[at]).expect("seen").to_owned();
            (base, lines[..=at].to_vec())
        };
        TestApp {
            base,
            startup_log,
            // Idle connections are dropped before the server's 5 s keep-alive closes them: a
            // request sent on a connection the server is closing fails (IncompleteMessage).
            client: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("client"),
            log,
            child,
            _db: db,
        }
    }

    /// Runs the server until it exits by itself (it must within `limit`), for starts that are
    /// to fail; stdout and stderr are kept.
    pub async fn run_to_exit(self, limit: Duration) -> Exited {
        let (mut command, _db) = self.command().await;
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        run_to_exit(command, limit).await
    }

    /// The command, and the database it owns if it has one.
    async fn command(&self) -> (Command, Option<TestDatabase>) {
        let db = match self.store {
            Store::Memory => None,
            Store::Postgres => Some(TestDatabase::create().await),
        };
        let mut env = self.env.clone();
        if let Some(db) = &db {
            env.push(("DATABASE_URL".to_owned(), Some(db.url().to_owned())));
        }
        (iot_api(&self.args, self.inherit_env, &env), db)
    }
}

/// `http://host:port` from the line that says where the server listens, as text or JSON.
fn listening_address(line: &str) -> Option<&str> {
    let i = line.find("listening on http://")?;
    let rest = &line[i + "listening on ".len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Reads the process's output to its end, every line kept in order. Bytes, not text: a line
/// that is not UTF-8 is kept (lossily) and never ends the reading, so the server never blocks
/// on a full pipe.
fn keep_lines(
    stderr: Option<impl AsyncRead + Unpin + Send + 'static>,
    stdout: Option<impl AsyncRead + Unpin + Send + 'static>,
) -> watch::Receiver<Vec<String>> {
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(async move {
        tokio::join!(read_lines(stderr, &tx), read_lines(stdout, &tx));
    });
    rx
}

async fn read_lines(stream: Option<impl AsyncRead + Unpin>, log: &watch::Sender<Vec<String>>) {
    let Some(stream) = stream else { return };
    let mut segments = BufReader::new(stream).split(b'\n');
    while let Ok(Some(bytes)) = segments.next_segment().await {
        let line = String::from_utf8_lossy(&bytes).into_owned();
        log.send_modify(|lines| lines.push(line));
    }
}

impl TestApp {
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    pub async fn spawn(store: Store) -> Self {
        Self::builder().store(store).spawn().await
    }

    /// A server on the database at `database_url` (the embedded store without one), which
    /// this app does not own: several instances may share it.
    pub async fn spawn_on(database_url: Option<&str>) -> Self {
        Self::spawn_with(database_url, &[]).await
    }

    /// Like [`TestApp::spawn_on`], with the environment variables `env` on top of the usual.
    pub async fn spawn_with(database_url: Option<&str>, env: &[(&str, &str)]) -> Self {
        let builder = Self::builder();
        let builder = match database_url {
            Some(url) => builder.database_url(url),
            None => builder,
        };
        builder.envs(env.iter().copied()).spawn().await
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// Every line logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    /// Waits (`limit` at most) for the first line that satisfies `pred`, and answers it.
    pub async fn wait_for_line(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let mut log = self.log.clone();
        let seen = tokio::time::timeout(limit, log.wait_for(|l| l.iter().any(|l| pred(l)))).await;
        let lines = self.log();
        match seen {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => panic!(
                "iot-api exited without writing {what}:\n{}",
                lines.join("\n")
            ),
            Err(_) => panic!("no {what} within {limit:?}:\n{}", lines.join("\n")),
        }
        lines.into_iter().find(|l| pred(l)).expect("seen")
    }

    /// Waits for the process to exit.
    pub async fn wait_for_exit(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after 10 s) and answers every line it
    /// logged.
    pub async fn stop(mut self) -> Vec<String> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
        self.rest_of_log().await
    }

    /// Kills the server (SIGKILL) and answers every line it logged.
    pub async fn kill(mut self) -> Vec<String> {
        self.child.start_kill().expect("kill");
        self.child.wait().await.expect("wait");
        self.rest_of_log().await
    }

    /// The whole log once the output is closed (10 s at most after the exit).
    async fn rest_of_log(&self) -> Vec<String> {
        let mut log = self.log.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), log.wait_for(|_| false)).await;
        self.log()
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

    /// A GET with an `Accept` header: status, headers and the body as text.
    pub async fn get_accepting(
        &self,
        path: &str,
        token: &str,
        accept: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("accept", accept)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body read"))
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

/// The status counts of an `alert_summary` (`normal`, `warning`, `critical`, `in_maintenance`,
/// `suppressed`), leaving out the freshness and alert counts that tests of status and muting
/// do not judge.
pub fn status_counts(summary: &Value) -> Value {
    let keys = [
        "normal",
        "warning",
        "critical",
        "in_maintenance",
        "suppressed",
    ];
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), summary[*k].clone()))
            .collect(),
    )
}
