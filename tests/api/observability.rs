//! Request ids, JSON logs and Prometheus metrics, seen from outside: the binary runs with
//! `IOT_LOG_FORMAT=json`, and every stderr line it writes is kept for the test to read.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{token, Store, TestApp};

/// How long to wait for the server to write a log line.
const LOG_WAIT: Duration = Duration::from_secs(30);

/// A running `iot-api serve` with JSON logs, killed when dropped (before its database).
struct Server {
    base: String,
    client: reqwest::Client,
    app: TestApp,
}

/// A stderr line as JSON, if it is.
fn parse(line: &str) -> Option<Value> {
    serde_json::from_str::<Value>(line)
        .ok()
        .filter(Value::is_object)
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

impl Server {
    /// Starts the binary on the embedded store, or on a fresh database, with `env` on top of
    /// the defaults (JSON logs at `info`), nothing inherited from the test's environment.
    async fn spawn(store_postgres: bool, env: &[(&str, &str)]) -> Self {
        let app = TestApp::builder()
            .store(if store_postgres {
                Store::Postgres
            } else {
                Store::Memory
            })
            .isolated()
            .worker_count(2)
            .env("IOT_LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .spawn()
            .await;
        Self {
            base: app.base.clone(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            app,
        }
    }

    /// The lines written so far.
    fn lines(&self) -> Vec<String> {
        self.app.log()
    }

    /// Waits for the first JSON line that satisfies `pred`.
    async fn wait_line(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let line = self
            .app
            .wait_for_line(what, LOG_WAIT, |l| parse(l).is_some_and(|l| pred(&l)))
            .await;
        parse(&line).expect("seen")
    }

    /// The access line of the request `id`.
    async fn access_line(&self, id: &str) -> Value {
        self.wait_line(&format!("an access line for {id}"), |l| {
            l["target"] == "iot_api::access" && l["span"]["request_id"] == id
        })
        .await
    }

    /// Sends a request with extra headers; answers status, headers and body text.
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &[u8])],
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, String) {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(
                *name,
                reqwest::header::HeaderValue::from_bytes(value).expect("header value"),
            );
        }
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body read"))
    }

    /// `GET /metrics` on `url` (the main address when `None`), asserting a Prometheus answer.
    async fn metrics_at(&self, url: Option<&str>) -> String {
        let url = url.map_or_else(|| format!("{}/metrics", self.base), str::to_owned);
        let (status, headers, text) = self.send(Method::GET, &url, &[], None, None).await;
        assert_eq!(status, StatusCode::OK, "{url}: {text}");
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert!(content_type.contains("version=0.0.4"), "{content_type}");
        text
    }

    async fn metrics(&self) -> String {
        self.metrics_at(None).await
    }
}

/// The request id a response echoes.
fn echoed(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id in {headers:?}"))
        .to_str()
        .expect("visible ASCII")
        .to_owned()
}

fn is_uuid(value: &str) -> bool {
    Uuid::parse_str(value).is_ok_and(|u| u.get_version_num() == 4) && value.len() == 36
}

/// Whether a JSON log line was written inside the request span of `id`.
fn carries(line: &Value, id: &str) -> bool {
    line["spans"].as_array().is_some_and(|spans| {
        spans
            .iter()
            .any(|s| s["name"] == "request" && s["request_id"] == id)
    })
}

// ---------------------------------------------------------------------------------------------
// Prometheus text

type Labels = BTreeMap<String, String>;

/// The samples of a Prometheus text exposition: name, labels and value of each line.
fn samples(text: &str) -> Vec<(String, Labels, f64)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| parse_sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}")))
        .collect()
}

fn parse_sample(line: &str) -> Option<(String, Labels, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = Labels::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &after[i + 1..];
                    break;
                }
                ',' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                other => key.push(other),
            }
        }
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some((name, labels, value))
}

/// The value of the sample `name` with exactly `labels`, if present.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: Labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples(text)
        .into_iter()
        .find(|(n, l, _)| n == name && *l == wanted)
        .map(|(_, _, v)| v)
}

// ---------------------------------------------------------------------------------------------
// Request ids

#[tokio::test]
async fn a_client_request_id_is_echoed_and_logged_with_the_request() {
    let server = Server::spawn(false, &[]).await;
    let admin = token("acme", &["admin"]);
    let max = "r".repeat(128);
    let cases: [(Method, &str, Option<&str>, &str, u16); 6] = [
        (Method::GET, "/api/groups", Some(&admin), "abc-123", 200),
        (Method::GET, "/health/live", None, "Z!#$%&'*+-.^_`|~09", 200),
        (Method::GET, "/api/groups", None, "no-token", 401),
        (
            Method::GET,
            "/api/groups?limit=0",
            Some(&admin),
            "bad-limit",
            422,
        ),
        (
            Method::GET,
            "/nowhere/at/all",
            Some(&admin),
            "unmatched-route",
            404,
        ),
        (Method::DELETE, "/api/devices", Some(&admin), &max, 405),
    ];
    for (method, path, bearer, id, status) in cases {
        let (got, headers, body) = server
            .send(
                method.clone(),
                path,
                &[("X-Request-Id", id.as_bytes())],
                bearer,
                None,
            )
            .await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {body}");
        assert_eq!(echoed(&headers), id, "{method} {path}");
        let access = server.access_line(id).await;
        assert_eq!(access["span"]["name"], "request", "{access}");
        assert!(carries(&access, id), "{access}");
        assert_eq!(access["level"], "INFO");
        assert_eq!(access["fields"]["method"], method.as_str(), "{access}");
        assert_eq!(
            access["fields"]["path"],
            path.split('?').next().unwrap(),
            "{access}"
        );
        assert_eq!(access["fields"]["status"], status, "{access}");
        assert!(
            access["fields"]["elapsed_ms"]
                .as_f64()
                .is_some_and(|ms| ms >= 0.0),
            "{access}"
        );
    }
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_fresh_uuid() {
    let server = Server::spawn(false, &[]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, headers, _) = server
            .send(Method::GET, "/health/live", &[], None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let id = echoed(&headers);
        assert!(is_uuid(&id), "{id}");
        let access = server.access_line(&id).await;
        assert!(carries(&access, &id), "{access}");
        ids.push(id);
    }
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        3,
        "each request gets an id of its own: {ids:?}"
    );
}

#[tokio::test]
async fn an_unusable_request_id_is_replaced_by_a_uuid() {
    let server = Server::spawn(false, &[]).await;
    let too_long = "a".repeat(200);
    let just_over = "b".repeat(129);
    let unusable: [&[u8]; 7] = [
        too_long.as_bytes(),
        just_over.as_bytes(),
        b"abc 123",
        b"",
        b"tab\there",
        b"caf\xc3\xa9",
        b"new\xffline",
    ];
    for raw in unusable {
        let (status, headers, _) = server
            .send(
                Method::GET,
                "/health/live",
                &[("X-Request-Id", raw)],
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let id = echoed(&headers);
        assert!(
            is_uuid(&id),
            "{:?} was echoed as {id}",
            String::from_utf8_lossy(raw)
        );
        let access = server.access_line(&id).await;
        assert!(carries(&access, &id), "{access}");
    }
    // The refused values never name a request in the log.
    for line in server.lines() {
        let line = parse(&line).unwrap_or_else(|| panic!("not JSON: {line}"));
        if let Some(id) = line["span"]["request_id"].as_str() {
            assert!(is_uuid(id), "{line}");
        }
    }
}

/// Sequential requests on an idle server: every line written between sending a request and its
/// access line was written in that request's span; concurrent requests keep their own ids; every
/// stderr line is a JSON object.
async fn every_line_of_a_request_carries_its_id(store_postgres: bool) {
    let server = Server::spawn(store_postgres, &[]).await;
    let admin = token("acme", &["admin"]);
    let (status, headers, body) = server
        .send(
            Method::POST,
            "/api/devices",
            &[],
            Some(&admin),
            Some(json!({"name": "D"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.access_line(&echoed(&headers)).await;
    let device = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let requests: [(Method, String, Option<Value>); 6] = [
        (Method::GET, "/api/devices".into(), None),
        (Method::GET, format!("/api/devices/{device}/readings"), None),
        (
            Method::GET,
            format!("/api/devices/{}", Uuid::new_v4()),
            None,
        ),
        (
            Method::POST,
            "/api/readings".into(),
            Some(
                json!({"readings": [{"device_id": device, "timestamp": "2025-01-01T00:00:00Z", "value": 1.0}]}),
            ),
        ),
        (
            Method::POST,
            "/api/readings".into(),
            Some(
                json!({"readings": [{"device_id": Uuid::new_v4(), "timestamp": "2025-01-01T00:00:00Z", "value": 1.0}]}),
            ),
        ),
        (Method::GET, "/customer/device-groups?name=x".into(), None),
    ];
    for (i, (method, path, body)) in requests.into_iter().enumerate() {
        let id = format!("seq-{i}");
        let before = server.lines().len();
        let (status, headers, _) = server
            .send(
                method,
                &path,
                &[("X-Request-Id", id.as_bytes())],
                Some(&admin),
                body,
            )
            .await;
        assert_eq!(echoed(&headers), id, "{path} -> {status}");
        server.access_line(&id).await;
        let lines = server.lines();
        let end = lines
            .iter()
            .rposition(|l| {
                parse(l).is_some_and(|l| {
                    l["target"] == "iot_api::access" && l["span"]["request_id"] == id.as_str()
                })
            })
            .expect("access line");
        assert!(end >= before);
        for line in &lines[before..=end] {
            let line = parse(line).unwrap_or_else(|| panic!("not JSON: {line}"));
            assert!(
                carries(&line, &id),
                "{path}: a line without request id {id}: {line}"
            );
        }
    }

    // Concurrent requests: each access line names its own request's path.
    let mut tasks = tokio::task::JoinSet::new();
    let mut expected = BTreeMap::new();
    for i in 0..20 {
        let id = format!("par-{i}");
        let path = format!("/api/groups/{}", Uuid::new_v4());
        expected.insert(id.clone(), path.clone());
        let client = server.client.clone();
        let url = format!("{}{path}", server.base);
        let admin = admin.clone();
        tasks.spawn(async move {
            let response = client
                .get(url)
                .bearer_auth(admin)
                .header("x-request-id", &id)
                .send()
                .await
                .expect("sent");
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            assert_eq!(echoed(response.headers()), id);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("request task");
    }
    for (id, path) in &expected {
        let access = server.access_line(id).await;
        assert_eq!(access["fields"]["path"], path.as_str(), "{access}");
        assert!(carries(&access, id), "{access}");
    }

    for line in server.lines() {
        let value = parse(&line).unwrap_or_else(|| panic!("not a JSON object: {line}"));
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(value.get(key).is_some(), "no {key} in {line}");
        }
    }
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_id_on_the_embedded_store() {
    every_line_of_a_request_carries_its_id(false).await;
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_id_on_postgres() {
    every_line_of_a_request_carries_its_id(true).await;
}

/// `IOT_REQUEST_TIMEOUT_MS` of the servers that test the deadline.
const DEADLINE_MS: &str = "300";

/// Sends an ingest whose body never arrives in full, so the handler is still waiting for it when
/// the deadline strikes; answers the status, the response head and body. With `id`, the request
/// carries it as its `X-Request-Id`.
async fn timed_out(server: &Server, id: Option<&str>) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let id_header = id.map_or_else(String::new, |id| format!("X-Request-Id: {id}\r\n"));
    let head = format!(
        "POST /api/readings HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n{id_header}\r\n{{\"readings\": [",
        token("acme", &["admin"])
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    // The rest of the body never comes; the server answers at its deadline.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let complete = |answer: &[u8]| {
        let text = String::from_utf8_lossy(answer);
        text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
            head.lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|n| n.trim().parse::<usize>().unwrap_or(0))
                })
                .is_some_and(|n| body.len() >= n)
        })
    };
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while !complete(&answer) {
            let n = stream.read(&mut buffer).await.expect("read");
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 20 s");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{head}"));
    assert_eq!(status, 503, "{text}");
    assert!(
        body.contains(&format!("did not complete within {DEADLINE_MS} ms")),
        "{body}"
    );
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn the_log_lines_of_a_timed_out_request_carry_its_id() {
    let server = Server::spawn(false, &[("IOT_REQUEST_TIMEOUT_MS", DEADLINE_MS)]).await;
    timed_out(&server, Some("slow-1")).await;
    let warning = server
        .wait_line("the timeout warning", |l| {
            message(l) == "request timed out" && carries(l, "slow-1")
        })
        .await;
    assert_eq!(warning["level"], "WARN");
    let access = server.access_line("slow-1").await;
    assert_eq!(access["fields"]["status"], 503, "{access}");
    assert_eq!(access["fields"]["path"], "/api/readings", "{access}");
}

#[tokio::test]
async fn a_timed_out_request_still_echoes_its_request_id() {
    let server = Server::spawn(false, &[("IOT_REQUEST_TIMEOUT_MS", DEADLINE_MS)]).await;
    let (_, head, _) = timed_out(&server, Some("slow-2")).await;
    assert!(head.lines().any(|l| l == "x-request-id: slow-2"), "{head}");
    let (_, head, _) = timed_out(&server, None).await;
    let generated = head.lines().find_map(|l| l.strip_prefix("x-request-id: "));
    assert!(generated.is_some_and(is_uuid), "{head}");
}

#[tokio::test]
async fn a_timed_out_request_is_counted_under_its_route_template() {
    let server = Server::spawn(false, &[("IOT_REQUEST_TIMEOUT_MS", DEADLINE_MS)]).await;
    timed_out(&server, Some("slow-3")).await;
    let text = server.metrics().await;
    let labels = [
        ("route", "/api/readings"),
        ("method", "POST"),
        ("status", "503"),
    ];
    assert_eq!(
        sample(&text, "http_requests_total", &labels),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[
                ("route", "unmatched"),
                ("method", "POST"),
                ("status", "503")
            ]
        ),
        None,
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[tokio::test]
async fn metrics_count_requests_by_route_template_method_and_status() {
    let server = Server::spawn(false, &[]).await;
    let admin = token("acme", &["admin"]);
    let before = server.metrics().await;
    let not_found = [
        ("route", "/api/groups/{group_id}"),
        ("method", "GET"),
        ("status", "404"),
    ];
    assert_eq!(sample(&before, "http_requests_total", &not_found), None);

    let concrete: Vec<String> = (0..3).map(|_| Uuid::new_v4().to_string()).collect();
    for id in &concrete {
        let (status, _, _) = server
            .send(
                Method::GET,
                &format!("/api/groups/{id}"),
                &[],
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _, _) = server
        .send(Method::GET, "/api/groups/not-a-uuid", &[], None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = server
        .send(Method::GET, "/no/such/route/xyz", &[], Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let text = server.metrics().await;
    assert!(
        text.lines().any(|l| l == r#"http_requests_total{route="/api/groups/{group_id}",method="GET",status="404"} 3"#),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[
                ("route", "/api/groups/{group_id}"),
                ("method", "GET"),
                ("status", "401")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        Some(1.0)
    );
    for concrete in concrete
        .iter()
        .map(String::as_str)
        .chain(["not-a-uuid", "/no/such/route"])
    {
        assert!(
            !text.contains(concrete),
            "the concrete path {concrete} is a label: {text}"
        );
    }
    // The scrape before this one was counted too, under its own route.
    assert!(
        sample(
            &text,
            "http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "200")]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );

    // The latency histogram, by route template and method.
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE http_request_duration_seconds histogram"),
        "{text}"
    );
    let route = [("route", "/api/groups/{group_id}"), ("method", "GET")];
    let mut buckets: Vec<(f64, f64)> = samples(&text)
        .into_iter()
        .filter(|(n, l, _)| {
            n == "http_request_duration_seconds_bucket"
                && route
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, l, v)| (l["le"].parse::<f64>().expect("le"), v))
        .collect();
    assert!(buckets.len() >= 10, "{text}");
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative buckets: {buckets:?}"
    );
    assert_eq!(
        buckets.last().unwrap(),
        &(f64::INFINITY, 4.0),
        "{buckets:?}"
    );
    assert_eq!(
        sample(&text, "http_request_duration_seconds_count", &route),
        Some(4.0)
    );
    assert!(sample(&text, "http_request_duration_seconds_sum", &route).is_some_and(|s| s > 0.0));
    assert!(buckets.iter().any(|(le, _)| *le == 0.005), "{buckets:?}");
}

/// Methods a client made up: each would be a label value (a series kept for the process's life)
/// if labels were taken from the request as it came.
#[tokio::test]
async fn invented_methods_add_no_label_values_and_are_logged_as_other() {
    const INVENTED: usize = 3_000;
    const CONCURRENCY: usize = 16;
    /// Far above what the route table's series take, far below what one series per invented
    /// method takes (over 5 MB on a build that labels with the method as sent).
    const MAX_SCRAPE_BYTES: usize = 100 * 1024;
    let server = Server::spawn(false, &[]).await;
    let invented = |i: usize| format!("INVENTED{i:05}{}", "X".repeat(100));

    // Act: thousands of distinct methods without a token, on a route and off the route table.
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, base, next) = (server.client.clone(), server.base.clone(), next.clone());
        senders.spawn(async move {
            let mut statuses = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= INVENTED {
                    return statuses;
                }
                let method = Method::from_bytes(invented(i).as_bytes()).expect("a method token");
                let path = if i % 2 == 0 {
                    "/api/groups".to_owned()
                } else {
                    format!("/nowhere/{i}")
                };
                let response = client
                    .request(method, format!("{base}{path}"))
                    .send()
                    .await
                    .expect("request sent");
                statuses.push(response.status());
            }
        });
    }
    let mut answered = 0;
    while let Some(statuses) = senders.join_next().await {
        let statuses = statuses.expect("sender");
        assert!(
            statuses.iter().all(StatusCode::is_client_error),
            "{statuses:?}"
        );
        answered += statuses.len();
    }
    assert_eq!(answered, INVENTED);
    // One more, long, named by its request id, to read its access line.
    let long = format!("LONG{}", "Y".repeat(1_000));
    let (status, _, _) = server
        .send(
            Method::from_bytes(long.as_bytes()).expect("a method token"),
            "/api/groups",
            &[("X-Request-Id", b"invented-method")],
            None,
            None,
        )
        .await;
    assert!(status.is_client_error(), "{status}");

    // Assert: the scrape stays small, names no invented method, and counts them all as `other`.
    let text = server.metrics().await;
    println!(
        "{} requests with invented methods: /metrics is {} bytes",
        INVENTED + 1,
        text.len()
    );
    let leaked = text
        .lines()
        .find(|l| l.contains("INVENTED") || l.contains("LONG"));
    assert_eq!(leaked, None, "an invented method is a label value");
    assert!(
        text.len() < MAX_SCRAPE_BYTES,
        "/metrics is {} bytes",
        text.len()
    );
    let others: f64 = samples(&text)
        .into_iter()
        .filter(|(n, l, _)| {
            n == "http_requests_total" && l.get("method").map(String::as_str) == Some("other")
        })
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(others, (INVENTED + 1) as f64, "{text}");
    assert!(
        text.contains(r#"route="unmatched",method="other""#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/groups",method="other""#),
        "{text}"
    );
    let access = server.access_line("invented-method").await;
    assert_eq!(access["fields"]["method"], "other", "{access}");
    assert!(!access.to_string().contains("LONG"), "{access}");
}

async fn readings_ingested_are_counted_exactly(store_postgres: bool) {
    let server = Server::spawn(store_postgres, &[]).await;
    let admin = token("acme", &["admin"]);
    let ingested = |text: &str| sample(text, "iot_readings_ingested_total", &[]).unwrap_or(0.0);
    let (status, _, body) = server
        .send(
            Method::POST,
            "/api/devices",
            &[],
            Some(&admin),
            Some(json!({"name": "D"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let device = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let batch = |timestamps: &[&str], device: &str| json!({"readings": timestamps.iter().map(|t| json!({"device_id": device, "timestamp": t, "value": 1.5})).collect::<Vec<_>>()});
    let start = ingested(&server.metrics().await);

    let seven: Vec<String> = (0..7).map(|i| format!("2025-01-01T00:00:0{i}Z")).collect();
    let seven: Vec<&str> = seven.iter().map(String::as_str).collect();
    let (status, _, body) = server
        .send(
            Method::POST,
            "/api/readings",
            &[],
            Some(&admin),
            Some(batch(&seven, &device)),
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::CREATED, r#"{"accepted":7}"#)
    );
    assert_eq!(ingested(&server.metrics().await), start + 7.0);

    // One reading on its own.
    let (status, _, _) = server
        .send(
            Method::POST,
            &format!("/api/devices/{device}/readings"),
            &[],
            Some(&admin),
            Some(json!({"value": 2.0})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(ingested(&server.metrics().await), start + 8.0);

    // Refused batches store nothing and count nothing.
    let (status, _, _) = server
        .send(
            Method::POST,
            "/api/readings",
            &[],
            Some(&admin),
            Some(batch(&seven, &Uuid::new_v4().to_string())),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = server
        .send(
            Method::POST,
            "/api/readings",
            &[],
            Some(&token("acme", &["viewer"])),
            Some(batch(&seven, &device)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(ingested(&server.metrics().await), start + 8.0);

    // A reading repeated within a batch is stored, and counted, once.
    let (status, _, body) = server
        .send(
            Method::POST,
            "/api/readings",
            &[],
            Some(&admin),
            Some(batch(
                &[
                    "2025-02-01T00:00:00Z",
                    "2025-02-01T00:00:00Z",
                    "2025-02-01T00:00:01Z",
                ],
                &device,
            )),
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::CREATED, r#"{"accepted":2}"#)
    );
    assert_eq!(ingested(&server.metrics().await), start + 10.0);
}

#[tokio::test]
async fn readings_ingested_are_counted_exactly_on_the_embedded_store() {
    readings_ingested_are_counted_exactly(false).await;
}

#[tokio::test]
async fn readings_ingested_are_counted_exactly_on_postgres() {
    readings_ingested_are_counted_exactly(true).await;
}

/// Starts a server with `IOT_METRICS_BIND=127.0.0.1:0`; answers it and the metrics URL it logs.
async fn with_metrics_address() -> (Server, String) {
    let server = Server::spawn(false, &[("IOT_METRICS_BIND", "127.0.0.1:0")]).await;
    let line = server
        .wait_line("the metrics address", |l| {
            message(l).starts_with("metrics on http://")
        })
        .await;
    let url = message(&line)["metrics on ".len()..].trim().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/metrics"),
        "{url}"
    );
    assert!(
        !url.starts_with(&format!("{}/", server.base)),
        "{url} is the main address {}",
        server.base
    );
    (server, url)
}

#[tokio::test]
async fn with_a_metrics_address_the_main_address_has_no_metrics() {
    let (server, _) = with_metrics_address().await;
    let (status, _, body) = server.send(Method::GET, "/metrics", &[], None, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "/metrics is not on the main address: {body}"
    );
    assert!(!body.contains("http_requests_total"), "{body}");
}

#[tokio::test]
async fn metrics_are_served_on_their_own_address() {
    let (server, url) = with_metrics_address().await;
    let (status, _, _) = server
        .send(Method::GET, "/health/live", &[], None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = server.send(Method::GET, "/metrics", &[], None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let answered =
        tokio::time::timeout(Duration::from_secs(10), server.metrics_at(Some(&url))).await;
    let text = answered.unwrap_or_else(|_| panic!("{url} did not answer within 10 s"));
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[
                ("route", "/health/live"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn with_a_metrics_address_sigterm_still_stops_the_server() {
    let (mut server, _) = with_metrics_address().await;
    // A request answered: the server runs, its signal handlers are installed.
    let (status, _, _) = server
        .send(Method::GET, "/health/live", &[], None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let pid = server.app.pid().to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(signalled.success());
    let exited = tokio::time::timeout(Duration::from_secs(15), server.app.wait_for_exit()).await;
    let status = exited
        .expect("still running 15 s after SIGTERM on an idle server")
        .expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn postgres_pool_gauges_are_reported() {
    let server = Server::spawn(true, &[]).await;
    let admin = token("acme", &["admin"]);
    let (status, _, _) = server
        .send(Method::GET, "/api/devices", &[], Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // The background workers' first passes may briefly fill the pool at start, so a request can
    // be queued for a moment; once they settle, nothing may be left waiting.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = server.metrics().await;
        let gauge = |name: &str| {
            assert!(
                text.contains(&format!("# TYPE {name} gauge")),
                "{name}: {text}"
            );
            sample(&text, name, &[]).unwrap_or_else(|| panic!("no {name} in {text}"))
        };
        let (connections, idle, waiting, max) = (
            gauge("iot_db_pool_connections"),
            gauge("iot_db_pool_idle"),
            gauge("iot_db_pool_waiting"),
            gauge("iot_db_pool_max"),
        );
        assert_eq!(max, 4.0, "IOT_DB_POOL_SIZE");
        assert!((1.0..=max).contains(&connections), "{connections}");
        assert!(idle <= connections, "{idle} idle of {connections}");
        if waiting == 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} still waiting for a pool slot 10 s after start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
