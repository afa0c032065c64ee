//! Conditional requests (issue 15, point 3): an `ETag` on every JSON read, 304 for
//! `If-None-Match` with the current tag, and `If-Match` on the writes of groups (both
//! families, membership included), devices and windows, 412 when stale.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{detail, token, TestApp};
use crate::manners::{documented, fixture, header, Fixture};
use crate::on_both_stores;
use crate::readings::{ago, ingest};

const STALE: &str = "Precondition failed: the resource has changed";

/// An answer's status, `ETag` and body (`Null` when empty).
struct Answer {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
    bytes: usize,
}

async fn send(request: RequestBuilder) -> Answer {
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let etag = header(response.headers(), "etag").map(str::to_owned);
    let bytes = response.bytes().await.expect("body read");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Answer {
        status,
        etag,
        body,
        bytes: bytes.len(),
    }
}

fn call(app: &TestApp, method: Method, path: &str, token: &str) -> RequestBuilder {
    app.client()
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token)
}

/// GET `path`, asserting a 200 with a tag; returns the tag and the body.
async fn tagged(app: &TestApp, path: &str, token: &str) -> (String, Value) {
    let answer = send(call(app, Method::GET, path, token)).await;
    assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.body);
    let etag = answer
        .etag
        .unwrap_or_else(|| panic!("GET {path} has no ETag"));
    (etag, answer.body)
}

/// `method path` with `If-Match: condition` and `body` (if any).
async fn write(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    condition: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = call(app, method, path, token).header("if-match", condition);
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

/// The alert a reading over the threshold opens, on a device of its own.
async fn an_alert(app: &TestApp, admin: &str) -> String {
    let device = crate::devices::create_device(
        app,
        admin,
        json!({"name": "Hot", "unit": "°C", "site_id": "s", "threshold_warning_upper": 30}),
    )
    .await;
    ingest(app, admin, &[(&device, &ago(5), 35.0)]).await;
    let (status, list) = app.get("/api/alerts", admin).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["alerts"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no alert in {list}"))
        .to_owned()
}

impl Fixture {
    /// `template` filled, the alert routes with a real alert.
    fn filled(&self, template: &str, alert: &str, webhook: &str) -> String {
        if template == "/api/alerts/{id}" {
            format!("/api/alerts/{alert}")
        } else if let Some(rest) = template.strip_prefix("/api/webhooks/{id}") {
            format!("/api/webhooks/{webhook}{rest}")
        } else {
            self.path(template)
        }
    }
}

// Fails when a JSON read of the document answers without a tag, or ignores `If-None-Match`
// (one of the current tag, a list, a weak one, `*`), or answers 304 with a body.
on_both_stores! {
    async fn every_json_read_is_tagged_and_answers_304_to_its_current_tag(app) {
        let f = fixture(&app).await;
        let alert = an_alert(&app, &f.admin).await;
        let (status, webhook) = app
            .post("/api/webhooks", &f.admin, json!({"url": "https://93.184.215.14/hook", "event_types": ["alert.opened"]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{webhook}");
        let webhook = webhook["id"].as_str().expect("id").to_owned();
        let paths = documented(&app, "get").await;
        assert!(paths.len() > 15, "{paths:?}");
        let mut checked = 0;
        for template in &paths {
            // The probes and the docs page are checked below; the event stream never ends, so
            // it has no body to tag (tests/api/events.rs checks it has no ETag).
            if template.starts_with("/health/") || template == "/docs" || template == "/api/events" {
                continue;
            }
            let path = f.filled(template, &alert, &webhook);
            let first = send(call(&app, Method::GET, &path, &f.admin)).await;
            assert_eq!(first.status, StatusCode::OK, "GET {template}: {}", first.body);
            let tag = first.etag.unwrap_or_else(|| panic!("GET {template} has no ETag"));
            assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() > 20, "GET {template}: strong tag {tag}");
            for condition in [tag.clone(), format!("\"other\", {tag}"), format!("W/{tag}"), "*".to_owned()] {
                for method in [Method::GET, Method::HEAD] {
                    let again = send(call(&app, method.clone(), &path, &f.admin).header("if-none-match", &condition)).await;
                    assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{method} {template} If-None-Match: {condition}");
                    assert_eq!(again.etag.as_deref(), Some(tag.as_str()), "{method} {template}");
                    assert_eq!(again.bytes, 0, "{method} {template}: a 304 has no body");
                }
            }
            let other = send(call(&app, Method::GET, &path, &f.admin).header("if-none-match", "\"other\"")).await;
            assert_eq!(other.status, StatusCode::OK, "GET {template} with another tag");
            assert_eq!(other.etag.as_deref(), Some(tag.as_str()), "GET {template}: the same body, the same tag");
            checked += 1;
        }
        assert!(checked >= 15, "{checked} reads checked");
        // The probes answer with their status alone.
        let live = send(app.client().get(format!("{}/health/live", app.base))).await;
        assert_eq!(live.status, StatusCode::OK);
        assert_eq!(live.etag, None);
    }
}

// Fails when a change keeps the tag, or an old tag still gets a 304.
on_both_stores! {
    async fn a_change_answers_200_with_a_new_tag(app) {
        let f = fixture(&app).await;
        for (change, read) in [
            format!("/api/devices/{}", f.device),
            format!("/api/groups/{}", f.group),
            "/api/devices".to_owned(),
            "/customer/device-groups".to_owned(),
        ].into_iter().enumerate() {
            let (old, _) = tagged(&app, &read, &f.admin).await;
            let (status, _) = app.request(Method::PUT, &format!("/api/devices/{}", f.device), Some(&f.admin), Some(json!({"name": format!("Boiler {change}")}))).await;
            assert_eq!(status, StatusCode::OK);
            let (status, _) = app.request(Method::PUT, &format!("/api/groups/{}", f.group), Some(&f.admin), Some(json!({"description": format!("change {change}")}))).await;
            assert_eq!(status, StatusCode::OK);
            let answer = send(call(&app, Method::GET, &read, &f.admin).header("if-none-match", &old)).await;
            assert_eq!(answer.status, StatusCode::OK, "GET {read} after a change");
            let new = answer.etag.expect("a tag");
            assert_ne!(new, old, "GET {read}");
            let again = send(call(&app, Method::GET, &read, &f.admin).header("if-none-match", &new)).await;
            assert_eq!(again.status, StatusCode::NOT_MODIFIED, "GET {read}");
        }
    }
}

/// The checked writes of the fixture's resources: method, path, the GET whose tag guards it,
/// and a body that changes something.
fn checked_writes(f: &Fixture, member: &str) -> Vec<(Method, String, String, Option<Value>)> {
    let group = format!("/api/groups/{}", f.group);
    let slug = format!("/customer/device-groups/{}", f.slug);
    let device = format!("/api/devices/{}", f.device);
    let window = format!("/customer/maintenance-windows/{}", f.window);
    let membership = format!("{slug}/devices/{member}");
    vec![
        (
            Method::PUT,
            group.clone(),
            group.clone(),
            Some(json!({"description": "changed"})),
        ),
        (
            Method::PATCH,
            slug.clone(),
            slug.clone(),
            Some(json!({"description": "changed too"})),
        ),
        (Method::PUT, membership.clone(), slug.clone(), None),
        (Method::DELETE, membership, slug.clone(), None),
        (
            Method::PUT,
            device.clone(),
            device.clone(),
            Some(json!({"name": "Renamed"})),
        ),
        (
            Method::PATCH,
            window.clone(),
            window.clone(),
            Some(json!({"name": "Renamed"})),
        ),
        (Method::DELETE, window.clone(), window, None),
        (Method::DELETE, group.clone(), group, None),
        (Method::DELETE, device.clone(), device, None),
    ]
}

// Fails when a write with a stale `If-Match` (or one naming no tag, or a weak one) changes
// anything, or answers otherwise than 412 with the contract's words.
on_both_stores! {
    async fn a_stale_if_match_is_a_412_and_changes_nothing(app) {
        let f = fixture(&app).await;
        let member = crate::devices::create_device(&app, &f.admin, json!({"name": "Member", "unit": "V", "site_id": "s"})).await;
        for (method, path, guard, body) in checked_writes(&f, &member) {
            let (current, before) = tagged(&app, &guard, &f.admin).await;
            for condition in ["\"0123456789abcdef0123456789abcdef\"".to_owned(), format!("W/{current}"), "not a tag".to_owned()] {
                let answer = write(&app, method.clone(), &path, &f.admin, &condition, body.clone()).await;
                assert_eq!(answer.status, StatusCode::PRECONDITION_FAILED, "{method} {path} If-Match: {condition}: {}", answer.body);
                assert_eq!(answer.body, json!({"detail": STALE}), "{method} {path}");
                let (still, after) = tagged(&app, &guard, &f.admin).await;
                assert_eq!(after, before, "{method} {path} changed the resource");
                assert_eq!(still, current, "{method} {path}");
            }
        }
        // A tag read before another change is stale.
        let path = format!("/api/groups/{}", f.group);
        let (old, _) = tagged(&app, &path, &f.admin).await;
        let (status, _) = app.request(Method::PUT, &path, Some(&f.admin), Some(json!({"name": "First"}))).await;
        assert_eq!(status, StatusCode::OK);
        let answer = write(&app, Method::PUT, &path, &f.admin, &old, Some(json!({"name": "Second"}))).await;
        assert_eq!(answer.status, StatusCode::PRECONDITION_FAILED, "{}", answer.body);
        assert_eq!(detail(&answer.body), STALE);
        let (_, group) = tagged(&app, &path, &f.admin).await;
        assert_eq!(group["name"], "First", "the stale write changed nothing");
    }
}

// Fails when a write with the current tag (or `*`) is refused, or its answer lacks the tag a GET
// then gives.
on_both_stores! {
    async fn a_current_if_match_writes_and_answers_the_new_tag(app) {
        let admin = token("acme", &["admin"]);
        let member = crate::devices::create_device(&app, &admin, json!({"name": "Member", "unit": "V", "site_id": "s"})).await;
        for (round, condition_of) in [|tag: &str| tag.to_owned(), |tag: &str| format!("\"x\", {tag}"), |_: &str| "*".to_owned()].into_iter().enumerate() {
            let f = fixture_again(&app, &admin, round).await;
            for (method, path, guard, body) in checked_writes(&f, &member) {
                let (current, _) = tagged(&app, &guard, &f.admin).await;
                let body = body.map(|mut b| {
                    for value in b.as_object_mut().expect("an object").values_mut() {
                        *value = json!(format!("{} {round}", value.as_str().expect("text")));
                    }
                    b
                });
                let condition = condition_of(&current);
                let answer = write(&app, method.clone(), &path, &f.admin, &condition, body).await;
                assert!(answer.status.is_success(), "{method} {path} If-Match: {condition}: {} {}", answer.status, answer.body);
                if method == Method::DELETE && path == guard {
                    assert_eq!(answer.etag, None, "{method} {path}: nothing left to tag");
                    let gone = send(call(&app, Method::GET, &guard, &f.admin)).await;
                    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{method} {path}");
                    continue;
                }
                let new = answer.etag.unwrap_or_else(|| panic!("{method} {path} answers no ETag"));
                let (now, _) = tagged(&app, &guard, &f.admin).await;
                assert_eq!(new, now, "{method} {path}: the tag the next GET gives");
                if path == guard {
                    assert_ne!(new, current, "{method} {path} changed the resource");
                }
            }
        }
    }
}

/// Another fixture in the same tenant (names are unique per tenant).
async fn fixture_again(app: &TestApp, admin: &str, round: usize) -> Fixture {
    let device = crate::devices::create_device(
        app,
        admin,
        json!({"name": format!("Boiler {round}"), "unit": "°C", "site_id": "s"}),
    )
    .await;
    let (status, group) = app
        .post(
            "/api/groups",
            admin,
            json!({"name": format!("Plant {round}"), "device_ids": [device]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let (status, window) = app
        .post(
            "/customer/maintenance-windows",
            admin,
            json!({"name": format!("Nightly {round}"), "starts_at": "2025-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{window}");
    Fixture {
        admin: admin.to_owned(),
        device,
        group: group["id"].as_str().expect("id").to_owned(),
        slug: group["group_id"].as_str().expect("group_id").to_owned(),
        window: window["window_id"].as_str().expect("window_id").to_owned(),
    }
}

// Fails when the precondition is judged before the caller's role or the resource's existence.
on_both_stores! {
    async fn roles_and_404_come_before_the_precondition(app) {
        let f = fixture(&app).await;
        let viewer = token("acme", &["viewer"]);
        let member = f.device.clone();
        for (method, path, guard, body) in checked_writes(&f, &member) {
            let (_, before) = tagged(&app, &guard, &f.admin).await;
            for condition in ["\"stale\"", "*"] {
                let answer = write(&app, method.clone(), &path, &viewer, condition, body.clone()).await;
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path} as a viewer, If-Match: {condition}: {}", answer.body);
                assert!(detail(&answer.body).starts_with("Access forbidden"), "{}", answer.body);
                let anonymous = send(app.client().request(method.clone(), format!("{}{path}", app.base)).header("if-match", condition)).await;
                assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {path} without a token");
            }
            let (_, after) = tagged(&app, &guard, &f.admin).await;
            assert_eq!(after, before, "{method} {path}");
        }
        // A resource that does not exist is a 404, `*` or not.
        let nobody = uuid::Uuid::new_v4();
        for (method, path, body) in [
            (Method::PUT, format!("/api/groups/{nobody}"), Some(json!({"description": "x"}))),
            (Method::DELETE, format!("/api/devices/{nobody}"), None),
            (Method::PATCH, "/customer/device-groups/grp-00000000".to_owned(), Some(json!({"description": "x"}))),
            (Method::PUT, format!("/customer/device-groups/grp-00000000/devices/{}", f.device), None),
            (Method::DELETE, "/customer/maintenance-windows/mw-00000000".to_owned(), None),
        ] {
            for condition in ["\"stale\"", "*"] {
                let answer = write(&app, method.clone(), &path, &f.admin, condition, body.clone()).await;
                assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path} If-Match: {condition}: {}", answer.body);
            }
        }
        // Without If-Match, no check: the write happens.
        let (status, _) = app.request(Method::PUT, &format!("/api/devices/{}", f.device), Some(&f.admin), Some(json!({"name": "Unchecked"}))).await;
        assert_eq!(status, StatusCode::OK);
    }
}
