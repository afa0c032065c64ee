//! The API's manners with the clients a person meets it through (issue 18): a browser frontend
//! on another origin (CORS), unknown query parameters, `HEAD`, a trailing slash, a body that is
//! not JSON or starts with a byte order mark, and compressed answers.

use std::io::Read as _;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::devices::create_device;
use crate::helpers::{detail, token, TestApp};
use crate::on_both_stores;
use crate::readings::{ago, ingest};

const ORIGIN: &str = "https://app.example.com";

/// Real ids to fill the routes' path parameters with.
pub(crate) struct Fixture {
    pub(crate) admin: String,
    pub(crate) device: String,
    pub(crate) group: String,
    pub(crate) slug: String,
    pub(crate) window: String,
}

pub(crate) async fn fixture(app: &TestApp) -> Fixture {
    let admin = token("acme", &["admin"]);
    let device = create_device(
        app,
        &admin,
        json!({"name": "Boiler", "unit": "°C", "site_id": "s", "device_type": "t"}),
    )
    .await;
    let (status, group) = app
        .post(
            "/api/groups",
            &admin,
            json!({"name": "Plant", "device_ids": [device]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let (status, window) = app
        .post(
            "/customer/maintenance-windows",
            &admin,
            json!({"name": "Nightly", "starts_at": "2025-01-01T00:00:00Z", "site_ids": ["s"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{window}");
    Fixture {
        admin,
        device,
        group: group["id"].as_str().expect("id").to_owned(),
        slug: group["group_id"].as_str().expect("group_id").to_owned(),
        window: window["window_id"].as_str().expect("window_id").to_owned(),
    }
}

impl Fixture {
    /// `template` (an OpenAPI path) with its parameters filled from the fixture.
    pub(crate) fn path(&self, template: &str) -> String {
        let customer = template.starts_with("/customer");
        template
            .split('/')
            .map(|segment| match segment {
                "{group_id}" if customer => self.slug.clone(),
                "{group_id}" => self.group.clone(),
                "{window_id}" => self.window.clone(),
                // An alert id that names no alert: its route still reads the query first.
                "{id}" if template.starts_with("/api/alerts") => uuid::Uuid::new_v4().to_string(),
                "{id}" | "{device_id}" => self.device.clone(),
                s if s.starts_with('{') => panic!("no value for {s} in {template}"),
                s => s.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The paths of the served OpenAPI document that have an operation with `method`.
pub(crate) async fn documented(app: &TestApp, method: &str) -> Vec<String> {
    let spec: Value = app
        .client()
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = spec["paths"].as_object().expect("paths");
    paths
        .iter()
        .filter(|(_, item)| item.get(method).is_some())
        .map(|(path, _)| path.clone())
        .collect()
}

/// A client that shows redirects instead of following them.
fn not_following() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .map(|v| v.to_str().expect("a visible header"))
}

// Fails when a GET route (any family, the alerts ones included) ignores a parameter it does not
// declare, or words the refusal otherwise than the contract.
on_both_stores! {
    async fn an_unknown_query_parameter_is_a_422_saying_exactly_that_on_every_get_route(app) {
        let f = fixture(&app).await;
        let (status, answer) = app.get("/api/groups?sort=name", &f.admin).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer, json!({"detail": "sort: unknown query parameter"}));

        let paths = documented(&app, "get").await;
        for alerts in ["/api/alerts", "/api/alerts/{id}", "/api/devices/{id}/alerts", "/api/groups/{group_id}/alerts"] {
            assert!(paths.iter().any(|p| p == alerts), "{alerts} is documented");
        }
        for template in &paths {
            let path = f.path(template);
            // A known parameter beside it does not excuse it.
            let known = if template.ends_with("/readings") { "hours=1&" } else { "" };
            let (status, answer) = app.get(&format!("{path}?{known}sort=name"), &f.admin).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "GET {template}: {answer}");
            assert_eq!(detail(&answer), "sort: unknown query parameter", "GET {template}");
        }
    }
}

// Fails when a GET route does not answer HEAD, or answers it otherwise than GET.
on_both_stores! {
    async fn head_answers_every_get_route_like_get_without_a_body(app) {
        let f = fixture(&app).await;
        for template in documented(&app, "get").await {
            let url = format!("{}{}", app.base, f.path(&template));
            let get = app.client().get(&url).bearer_auth(&f.admin).send().await.unwrap();
            let head = app.client().head(&url).bearer_auth(&f.admin).send().await.unwrap();
            assert_eq!(head.status(), get.status(), "HEAD {template}");
            for name in ["content-type", "content-length", "x-total-count", "etag", "allow"] {
                assert_eq!(header(head.headers(), name), header(get.headers(), name), "HEAD {template}: {name}");
            }
            assert!(head.headers().contains_key("x-request-id"), "HEAD {template}");
            assert_eq!(head.bytes().await.unwrap().len(), 0, "HEAD {template} has no body");
        }
        // Where GET is not answered, neither is HEAD; and Allow lists HEAD beside GET.
        let response = app.client().head(format!("{}/api/readings", app.base)).bearer_auth(&f.admin).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(response.headers(), "allow"), Some("POST"));
        let response = app.client().patch(format!("{}/api/groups", app.base)).bearer_auth(&f.admin).send().await.unwrap();
        assert_eq!(header(response.headers(), "allow"), Some("GET, HEAD, POST"));
    }
}

// Fails when a trailing slash is a 404, loses the query string, or leads to another host.
#[tokio::test]
async fn a_trailing_slash_redirects_308_to_the_path_without_it() {
    let app = TestApp::spawn(crate::helpers::Store::Memory).await;
    let admin = token("acme", &["admin"]);
    let raw = not_following();
    for (path, location) in [
        ("/api/groups/", "/api/groups"),
        (
            "/api/groups/?limit=1&name=a%2Fb",
            "/api/groups?limit=1&name=a%2Fb",
        ),
        ("/health/live//", "/health/live"),
        (
            "/api/devices/00000000-0000-0000-0000-000000000000/readings/?hours=1",
            "/api/devices/00000000-0000-0000-0000-000000000000/readings?hours=1",
        ),
    ] {
        let response = raw.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(
            header(response.headers(), "location"),
            Some(location),
            "{path}"
        );
    }
    // Never a Location a browser would read as another host; `/` is a path of its own.
    for path in ["//evil.example/", "/", "/nowhere"] {
        let response = raw.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!response.headers().contains_key("location"), "{path}");
    }
    // A client that follows it keeps the method, the token and the body (that is what 308 is for).
    let (status, created) = app
        .post("/api/groups/", &admin, json!({"name": "Via slash"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, list) = app.get("/api/groups/?name=Via", &admin).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

// Fails when a body declared as something else than JSON is read as JSON anyway (or refused
// with another status), or when a body without a Content-Type, or with a BOM, is refused.
on_both_stores! {
    async fn a_body_declared_other_than_json_is_a_415_and_one_undeclared_is_read_as_json(app) {
        let f = fixture(&app).await;
        let send = |method: Method, path: String, content_type: Option<&'static str>, body: Vec<u8>| {
            let mut request = app.client().request(method, format!("{}{path}", app.base)).bearer_auth(&f.admin).body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                (status, response.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        // Every operation that reads a body.
        let spec: Value = app.client().get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
        let mut bodies = 0;
        for (template, item) in spec["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if operation.get("requestBody").is_none() {
                    continue;
                }
                bodies += 1;
                let method: Method = method.to_uppercase().parse().unwrap();
                for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/xml"] {
                    let (status, answer) = send(method.clone(), f.path(template), Some(content_type), br#"{"name": "x"}"#.to_vec()).await;
                    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{method} {template} as {content_type}: {answer}");
                    assert_eq!(answer, json!({"detail": "Content-Type must be application/json"}));
                }
            }
        }
        assert!(bodies >= 10, "{bodies} operations read a body");
        let (_, groups) = app.get("/api/groups", &f.admin).await;
        assert_eq!(groups.as_array().map(Vec::len), Some(1), "nothing refused was stored: {groups}");

        // JSON in any spelling, or no Content-Type at all (curl's `-d`), is read.
        for (i, content_type) in [None, Some("application/json"), Some("Application/JSON; charset=utf-8"), Some("application/merge-patch+json")].into_iter().enumerate() {
            let (status, answer) = send(Method::POST, "/api/groups".into(), content_type, format!(r#"{{"name": "Typed {i}"}}"#).into_bytes()).await;
            assert_eq!(status, StatusCode::CREATED, "{content_type:?}: {answer}");
        }
        // A UTF-8 byte order mark is skipped; the name after it is kept as written.
        let (status, answer) = send(Method::POST, "/api/groups".into(), Some("application/json"), b"\xEF\xBB\xBF{\"name\": \"Cha\xC3\xAEne\"}".to_vec()).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["name"], "Chaîne");
        let (status, answer) = send(Method::PATCH, format!("/customer/device-groups/{}", f.slug), None, b"\xEF\xBB\xBF{\"description\": \"bom\"}".to_vec()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["description"], "bom");
        // Only at the start: one anywhere else is still malformed JSON.
        let (status, answer) = send(Method::POST, "/api/groups".into(), None, b"{\"name\": \"x\"}\xEF\xBB\xBF".to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    }
}

/// Starts a server with `IOT_CORS_ORIGINS` set to `origins`.
async fn with_cors(origins: &str) -> TestApp {
    TestApp::builder()
        .env("IOT_CORS_ORIGINS", origins)
        .spawn()
        .await
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.client()
        .request(Method::OPTIONS, format!("{}{path}", app.base))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap()
}

// Fails when CORS headers are sent without IOT_CORS_ORIGINS.
#[tokio::test]
async fn without_cors_origins_no_cors_header_is_sent() {
    let app = TestApp::builder()
        .env_remove("IOT_CORS_ORIGINS")
        .spawn()
        .await;
    let admin = token("acme", &["admin"]);
    let response = app
        .client()
        .get(format!("{}/api/groups", app.base))
        .bearer_auth(&admin)
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = preflight(&app, "/api/groups", ORIGIN, "POST").await;
    assert_eq!(
        response.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "no preflight is answered"
    );
    for (name, _) in response.headers() {
        assert!(!name.as_str().starts_with("access-control-"), "{name}");
    }
}

// Fails when a preflight is not a 204 naming the route's own methods and the headers the API
// reads, when an actual answer does not expose its headers, or when another origin is let in.
#[tokio::test]
async fn cors_answers_preflights_per_route_and_exposes_the_headers_a_frontend_reads() {
    let app = with_cors(&format!("{ORIGIN}, http://localhost:3000")).await;
    let admin = token("acme", &["admin"]);
    let device = create_device(&app, &admin, json!({"name": "Cors"})).await;
    for (path, methods) in [
        ("/api/groups".to_owned(), "GET, HEAD, POST"),
        (format!("/api/devices/{device}"), "GET, HEAD, PUT, DELETE"),
        ("/api/readings".to_owned(), "POST"),
        (
            "/customer/device-groups/grp-00000000".to_owned(),
            "GET, HEAD, PATCH, DELETE",
        ),
    ] {
        let response = preflight(&app, &path, ORIGIN, "POST").await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{path}");
        let headers = response.headers();
        assert_eq!(
            header(headers, "access-control-allow-origin"),
            Some(ORIGIN),
            "{path}"
        );
        assert_eq!(
            header(headers, "access-control-allow-methods"),
            Some(methods),
            "{path}"
        );
        let allowed = header(headers, "access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        for name in [
            "authorization",
            "content-type",
            "if-match",
            "if-none-match",
            "idempotency-key",
            "last-event-id",
            "traceparent",
        ] {
            assert!(
                allowed.split(", ").any(|h| h == name),
                "{path}: {name} in {allowed}"
            );
        }
        assert!(headers.contains_key("access-control-max-age"), "{path}");
        assert!(
            headers.contains_key("x-request-id"),
            "{path}: a preflight is a request like any"
        );
    }
    let response = preflight(&app, "/api/groups", "http://localhost:3000", "GET").await;
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        Some("http://localhost:3000")
    );

    // Another origin: refused, and told nothing that would let its script in.
    let response = preflight(&app, "/api/groups", "https://evil.example", "POST").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
    assert!(detail(&response.json().await.unwrap()).starts_with("Origin:"));

    // An actual answer names the origin and exposes what a frontend reads.
    let response = app
        .client()
        .get(format!("{}/api/devices", app.base))
        .bearer_auth(&admin)
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        Some(ORIGIN)
    );
    let exposed = header(response.headers(), "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "x-total-count",
        "etag",
        "x-request-id",
        "location",
        "retry-after",
        "content-disposition",
    ] {
        assert!(
            exposed.split(", ").any(|h| h == name),
            "{name} in {exposed}"
        );
    }
    // So does an error.
    let response = app
        .client()
        .get(format!("{}/api/devices?sort=name", app.base))
        .bearer_auth(&admin)
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        Some(ORIGIN)
    );
    // Another origin's request is served (a browser keeps the answer from its script).
    let response = app
        .client()
        .get(format!("{}/api/devices", app.base))
        .bearer_auth(&admin)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
}

// Fails when a mistyped origin starts a server that would silently refuse the frontend.
#[tokio::test]
async fn a_malformed_cors_origin_stops_the_start_naming_it() {
    for (origins, why) in [
        ("https://app.example.com/", "no path"),
        ("app.example.com", "scheme://host[:port]"),
        (
            "https://app.example.com, ftp://files.example",
            "http or https",
        ),
    ] {
        let exited = TestApp::builder()
            .env("IOT_CORS_ORIGINS", origins)
            .run_to_exit(std::time::Duration::from_secs(60))
            .await;
        assert!(!exited.status.success(), "{origins} started");
        assert!(
            exited.stderr.contains("IOT_CORS_ORIGINS"),
            "{origins}: {}",
            exited.stderr
        );
        assert!(exited.stderr.contains(why), "{origins}: {}", exited.stderr);
        assert!(!exited.stderr.contains("panicked"), "{}", exited.stderr);
    }
}

async fn get_encoded(
    app: &TestApp,
    path: &str,
    token: &str,
    accept: &str,
    accept_encoding: Option<&str>,
) -> (HeaderMap, Vec<u8>) {
    let mut request = app
        .client()
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("accept", accept);
    if let Some(accept_encoding) = accept_encoding {
        request = request.header("accept-encoding", accept_encoding);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let headers = response.headers().clone();
    (headers, response.bytes().await.unwrap().to_vec())
}

fn decoded(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut plain)
                .expect("gzip");
        }
        "zstd" => plain = zstd::decode_all(body).expect("zstd"),
        other => panic!("unexpected coding {other}"),
    }
    plain
}

// Fails when a large JSON or CSV answer is not compressed for a client that accepts it, is
// compressed for one that does not, or when a small answer is compressed.
on_both_stores! {
    async fn large_json_and_csv_answers_are_compressed_as_the_client_accepts(app) {
        let admin = token("acme", &["admin"]);
        let mut devices = Vec::new();
        for i in 0..12 {
            devices.push(create_device(&app, &admin, json!({"name": format!("Compressible sensor number {i:02}"), "unit": "kPa"})).await);
        }
        let stamps: Vec<String> = (0..60).map(|i| ago(60 + i * 10)).collect();
        let readings: Vec<(&str, &str, f64)> = stamps.iter().enumerate().map(|(i, t)| (devices[0].as_str(), t.as_str(), i as f64 / 4.0)).collect();
        ingest(&app, &admin, &readings).await;

        for (path, accept) in [("/api/devices", "application/json"), (&*format!("/api/devices/{}/readings", devices[0]), "text/csv")] {
            let (headers, plain) = get_encoded(&app, path, &admin, accept, None).await;
            assert!(plain.len() > 1024, "{path}: {} bytes is a large answer", plain.len());
            assert_eq!(header(&headers, "content-encoding"), None, "{path}: not asked for");
            assert!(header(&headers, "vary").unwrap_or_default().to_ascii_lowercase().contains("accept-encoding"), "{path}");
            for (accepted, coding) in [("gzip", "gzip"), ("zstd", "zstd"), ("gzip;q=0.5, zstd", "zstd"), ("br, gzip", "gzip"), ("gzip, deflate, br, zstd", "zstd")] {
                let (headers, body) = get_encoded(&app, path, &admin, accept, Some(accepted)).await;
                assert_eq!(header(&headers, "content-encoding"), Some(coding), "{path} for {accepted}");
                assert!(body.len() < plain.len(), "{path} for {accepted}: {} >= {}", body.len(), plain.len());
                let body = decoded(coding, &body);
                if accept == "text/csv" {
                    assert_eq!(body, plain, "{path} for {accepted}");
                } else {
                    // Device views say how long ago each was seen: compare what does not move.
                    let names = |bytes: &[u8]| -> Vec<Value> {
                        serde_json::from_slice::<Value>(bytes).unwrap().as_array().unwrap().iter().map(|d| d["name"].clone()).collect()
                    };
                    assert_eq!(names(&body), names(&plain), "{path} for {accepted}");
                }
            }
            let (headers, _) = get_encoded(&app, path, &admin, accept, Some("br, identity")).await;
            assert_eq!(header(&headers, "content-encoding"), None, "{path}: no coding offered is accepted");
        }
        // Small answers, and other types, are sent as they are.
        for path in ["/health/live", "/health/ready", &*format!("/api/devices/{}", devices[1])] {
            let (headers, body) = get_encoded(&app, path, &admin, "application/json", Some("gzip, zstd")).await;
            assert!(body.len() <= 1024, "{path}");
            assert_eq!(header(&headers, "content-encoding"), None, "{path}");
            serde_json::from_slice::<Value>(&body).expect("plain JSON");
        }
        let (headers, _) = get_encoded(&app, "/docs", &admin, "text/html", Some("gzip")).await;
        assert_eq!(header(&headers, "content-encoding"), None, "/docs");
    }
}
