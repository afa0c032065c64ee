//! Input meant to break things: a body over the size limit, NUL, nesting bombs, invalid UTF-8,
//! huge arrays, paths and query strings, numbers and integers out of range, timestamps at and
//! past the edges of time, and SQL metacharacters everywhere text is stored. First a few cases
//! one at a time, then each kind on every write endpoint. Each gets its documented 4xx (or is
//! stored verbatim), never a 5xx or a dropped connection, and nothing refused is stored.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::concurrency::{assert_alive, send};
use crate::devices::create_device;
use crate::helpers::{detail, token, TestApp};
use crate::on_both_stores;

// ---------------------------------------------------------------------------------------------
// One case at a time

on_both_stores! {
    async fn a_body_over_one_mebibyte_answers_413(app) {
        let t = token("acme", &["admin"]);
        let body = format!(r#"{{"name": "big", "description": "{}"}}"#, "x".repeat(1024 * 1024));
        let (status, answer) = app.raw(Method::POST, "/customer/device-groups", &t, body.into_bytes()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
        assert!(detail(&answer).starts_with("body:"));
    }
}

on_both_stores! {
    async fn sql_metacharacters_are_stored_and_returned_verbatim(app) {
        let t = token("acme", &["admin"]);
        let name = "Robert'); DROP TABLE device_groups;-- \"%_\\";
        let (status, created) = app.post("/customer/device-groups", &t, json!({"name": name, "description": "$1 ' ; --"})).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let (_, list) = app.get("/customer/device-groups", &t).await;
        assert_eq!(list["groups"][0]["name"], name);
        assert_eq!(list["groups"][0]["description"], "$1 ' ; --");
    }
}

on_both_stores! {
    async fn nul_characters_and_nesting_bombs_answer_422(app) {
        let t = token("acme", &["admin"]);
        let (status, body) = app.post("/customer/device-groups", &t, json!({"name": "a\u{0}b"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("name:"));
        let (status, body) = app.post("/customer/device-groups", &t, json!({"name": "ok", "description": "a\u{0}"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("description:"));

        let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let (status, _) = app.raw(Method::POST, "/customer/device-groups", &t, nested.into_bytes()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        let (status, _) = app.raw(Method::POST, "/customer/maintenance-windows", &t,
            br#"{"name":"n","starts_at":"2025-01-01T00:00:00Z","recurring":{"start_hour":1e400,"end_hour":2}}"#.to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        let (status, _) = app.raw(Method::POST, "/customer/device-groups", &t, vec![0xff, 0xfe, b'{']).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        let (_, list) = app.get("/customer/device-groups", &t).await;
        assert_eq!(list["total"], 0);
    }
}

on_both_stores! {
    async fn timestamps_at_the_edges_of_the_representable_range_are_handled(app) {
        let t = token("acme", &["admin"]);
        let (status, body) = app.post("/customer/maintenance-windows", &t,
            json!({"name": "edge", "starts_at": "0001-01-01T00:00:00Z", "ends_at": "9999-12-31T23:59:59.999999Z"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["starts_at"], "0001-01-01T00:00:00Z");
        assert_eq!(body["ends_at"], "9999-12-31T23:59:59.999999Z");

        let (status, body) = app.post("/customer/maintenance-windows", &t,
            json!({"name": "before year 1", "starts_at": "0001-01-01T00:00:00+01:00"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("starts_at:"));

        let (status, _) = app.post("/customer/maintenance-windows", &t,
            json!({"name": "too far", "starts_at": "10000-01-01T00:00:00Z"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

on_both_stores! {
    async fn very_long_path_segments_answer_404(app) {
        let t = token("acme", &["admin"]);
        let (status, body) = app.get(&format!("/customer/device-groups/{}", "g".repeat(10_000)), &t).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"detail": "Group not found"}));
        let (status, _) = app.get("/customer/maintenance-windows/%00", &t).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

// ---------------------------------------------------------------------------------------------
// Every write endpoint

/// A device, a Group API group holding it, and a maintenance window, to aim writes at.
struct Fixture {
    admin: String,
    device: String,
    group: String,
    slug: String,
    window: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let admin = token("acme", &["admin"]);
    let device = create_device(
        app,
        &admin,
        json!({"name": "Base", "unit": "u", "site_id": "s", "device_type": "t"}),
    )
    .await;
    let (status, group) = app
        .post(
            "/api/groups",
            &admin,
            json!({"name": "Base group", "device_ids": [device]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let (status, window) = app
        .post(
            "/customer/maintenance-windows",
            &admin,
            json!({"name": "Base window", "starts_at": "2025-01-01T00:00:00Z", "site_ids": ["s"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{window}");
    Fixture {
        device,
        group: group["id"].as_str().expect("id").to_owned(),
        slug: group["group_id"].as_str().expect("group_id").to_owned(),
        window: window["window_id"].as_str().expect("window_id").to_owned(),
        admin,
    }
}

/// Everything the tenant has, as the reads show it: equal before and after means nothing was
/// stored or changed.
async fn snapshot(app: &TestApp, f: &Fixture) -> Vec<Value> {
    let mut state = Vec::new();
    for path in [
        "/api/devices".to_owned(),
        "/api/groups".to_owned(),
        format!("/api/groups/{}", f.group),
        format!("/api/devices/{}/readings?hours=8760&limit=10000", f.device),
        "/customer/device-groups".to_owned(),
        "/customer/maintenance-windows".to_owned(),
        format!("/customer/maintenance-windows/{}/devices", f.window),
    ] {
        let (status, body) = app.get(&path, &f.admin).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        state.push(body);
    }
    state
}

/// A write that must be refused: method, path, body, and the status and `detail` prefix (the
/// field) expected.
struct Refused {
    method: Method,
    path: String,
    body: Vec<u8>,
    status: StatusCode,
    detail_prefix: String,
    /// Another acceptable prefix, for refusals the JSON parser makes before any field is known.
    or_prefix: Option<&'static str>,
}

/// Sends each write and checks it is refused as expected, then that nothing changed.
async fn assert_all_refused(app: &TestApp, f: &Fixture, cases: Vec<Refused>) {
    let before = snapshot(app, f).await;
    let mut wrong = Vec::new();
    for case in &cases {
        let reply = send(
            app,
            Some(&f.admin),
            case.method.clone(),
            &case.path,
            Some(case.body.clone()),
        )
        .await;
        let detail = reply.json["detail"].as_str().unwrap_or_default();
        let named = detail.starts_with(&case.detail_prefix)
            || case.or_prefix.is_some_and(|p| detail.starts_with(p));
        if reply.status != case.status || !named {
            wrong.push(format!(
                "{} {} {} -> {} {} (expected {} '{}…')",
                case.method,
                case.path,
                String::from_utf8_lossy(&case.body).escape_debug(),
                reply.status,
                reply.text.escape_debug(),
                case.status,
                case.detail_prefix
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} writes answered wrongly:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    assert_eq!(
        snapshot(app, f).await,
        before,
        "a refused write changed data"
    );
    assert_alive(app).await;
}

/// Every string field of every write endpoint: `(method, path, template, field path, valid
/// value)`. The template holds `"@"` where the field's value goes.
fn string_fields(f: &Fixture) -> Vec<(Method, String, String, &'static str, String)> {
    let (d, g, slug, w) = (&f.device, &f.group, &f.slug, &f.window);
    let ts = "2025-06-01T00:00:00Z".to_owned();
    let window = r#"{"name": "N", "starts_at": "2025-01-01T00:00:00Z", "#;
    let mut fields = vec![
        // Devices
        (
            Method::POST,
            "/api/devices".into(),
            r#"{"name": "@"}"#.into(),
            "name",
            "New".into(),
        ),
        (
            Method::POST,
            "/api/devices".into(),
            r#"{"name": "New", "unit": "@"}"#.into(),
            "unit",
            "kPa".into(),
        ),
        (
            Method::POST,
            "/api/devices".into(),
            r#"{"name": "New", "status": "@"}"#.into(),
            "status",
            "connected".into(),
        ),
        (
            Method::POST,
            "/api/devices".into(),
            r#"{"name": "New", "site_id": "@"}"#.into(),
            "site_id",
            "s".into(),
        ),
        (
            Method::POST,
            "/api/devices".into(),
            r#"{"name": "New", "device_type": "@"}"#.into(),
            "device_type",
            "t".into(),
        ),
        (
            Method::PUT,
            format!("/api/devices/{d}"),
            r#"{"name": "@"}"#.into(),
            "name",
            "New".into(),
        ),
        (
            Method::PUT,
            format!("/api/devices/{d}"),
            r#"{"unit": "@"}"#.into(),
            "unit",
            "kPa".into(),
        ),
        (
            Method::PUT,
            format!("/api/devices/{d}"),
            r#"{"status": "@"}"#.into(),
            "status",
            "error".into(),
        ),
        (
            Method::PUT,
            format!("/api/devices/{d}"),
            r#"{"site_id": "@"}"#.into(),
            "site_id",
            "s2".into(),
        ),
        (
            Method::PUT,
            format!("/api/devices/{d}"),
            r#"{"device_type": "@"}"#.into(),
            "device_type",
            "t2".into(),
        ),
        // Readings
        (
            Method::POST,
            "/api/readings".into(),
            format!(r#"{{"readings": [{{"device_id": "@", "timestamp": "{ts}", "value": 1}}]}}"#),
            "readings[0].device_id",
            d.clone(),
        ),
        (
            Method::POST,
            "/api/readings".into(),
            format!(r#"{{"readings": [{{"device_id": "{d}", "timestamp": "@", "value": 1}}]}}"#),
            "readings[0].timestamp",
            ts.clone(),
        ),
        (
            Method::POST,
            format!("/api/devices/{d}/readings"),
            r#"{"value": 1, "timestamp": "@"}"#.into(),
            "timestamp",
            ts.clone(),
        ),
        // Group API
        (
            Method::POST,
            "/api/groups".into(),
            r#"{"name": "@"}"#.into(),
            "name",
            "New group".into(),
        ),
        (
            Method::POST,
            "/api/groups".into(),
            r#"{"name": "New group", "description": "@"}"#.into(),
            "description",
            "text".into(),
        ),
        (
            Method::PUT,
            format!("/api/groups/{g}"),
            r#"{"name": "@"}"#.into(),
            "name",
            "New group".into(),
        ),
        (
            Method::PUT,
            format!("/api/groups/{g}"),
            r#"{"description": "@"}"#.into(),
            "description",
            "text".into(),
        ),
        // Customer groups
        (
            Method::POST,
            "/customer/device-groups".into(),
            r#"{"group_id": "@", "name": "New group"}"#.into(),
            "group_id",
            "grp-new".into(),
        ),
        (
            Method::POST,
            "/customer/device-groups".into(),
            r#"{"name": "@"}"#.into(),
            "name",
            "New group".into(),
        ),
        (
            Method::POST,
            "/customer/device-groups".into(),
            r#"{"name": "New group", "description": "@"}"#.into(),
            "description",
            "text".into(),
        ),
        (
            Method::PATCH,
            format!("/customer/device-groups/{slug}"),
            r#"{"name": "@"}"#.into(),
            "name",
            "New group".into(),
        ),
        (
            Method::PATCH,
            format!("/customer/device-groups/{slug}"),
            r#"{"description": "@"}"#.into(),
            "description",
            "text".into(),
        ),
        // Maintenance windows
        (
            Method::POST,
            "/customer/maintenance-windows".into(),
            r#"{"name": "@", "starts_at": "2025-01-01T00:00:00Z"}"#.into(),
            "name",
            "New window".into(),
        ),
        (
            Method::POST,
            "/customer/maintenance-windows".into(),
            r#"{"name": "N", "starts_at": "@"}"#.into(),
            "starts_at",
            ts.clone(),
        ),
        (
            Method::POST,
            "/customer/maintenance-windows".into(),
            format!(r#"{window}"ends_at": "@"}}"#),
            "ends_at",
            "2026-01-01T00:00:00Z".into(),
        ),
        (
            Method::POST,
            "/customer/maintenance-windows".into(),
            format!(r#"{window}"site_ids": ["s", "@"]}}"#),
            "site_ids[1]",
            "s2".into(),
        ),
        (
            Method::POST,
            "/customer/maintenance-windows".into(),
            format!(r#"{window}"device_types": ["@"]}}"#),
            "device_types[0]",
            "t".into(),
        ),
        (
            Method::POST,
            "/customer/maintenance-windows".into(),
            format!(r#"{window}"group_ids": ["@"]}}"#),
            "group_ids[0]",
            slug.clone(),
        ),
        (
            Method::POST,
            "/customer/maintenance-windows".into(),
            format!(
                r#"{window}"recurring": {{"start_hour": 1, "end_hour": 2, "timezone": "@"}}}}"#
            ),
            "recurring.timezone",
            "Europe/Berlin".into(),
        ),
        (
            Method::PATCH,
            format!("/customer/maintenance-windows/{w}"),
            r#"{"name": "@"}"#.into(),
            "name",
            "New window".into(),
        ),
        (
            Method::PATCH,
            format!("/customer/maintenance-windows/{w}"),
            r#"{"starts_at": "@"}"#.into(),
            "starts_at",
            ts.clone(),
        ),
        (
            Method::PATCH,
            format!("/customer/maintenance-windows/{w}"),
            r#"{"ends_at": "@"}"#.into(),
            "ends_at",
            "2026-01-01T00:00:00Z".into(),
        ),
        (
            Method::PATCH,
            format!("/customer/maintenance-windows/{w}"),
            r#"{"site_ids": ["@"]}"#.into(),
            "site_ids[0]",
            "s2".into(),
        ),
        (
            Method::PATCH,
            format!("/customer/maintenance-windows/{w}"),
            r#"{"device_types": ["t", "@"]}"#.into(),
            "device_types[1]",
            "t2".into(),
        ),
        (
            Method::PATCH,
            format!("/customer/maintenance-windows/{w}"),
            r#"{"group_ids": ["@"]}"#.into(),
            "group_ids[0]",
            slug.clone(),
        ),
        (
            Method::PATCH,
            format!("/customer/maintenance-windows/{w}"),
            r#"{"recurring": {"start_hour": 1, "end_hour": 2, "timezone": "@"}}"#.into(),
            "recurring.timezone",
            "UTC".into(),
        ),
    ];
    // Member lists: a malformed id there is 400 GROUP_003, not 422 (seed 002).
    fields.push((
        Method::POST,
        "/api/groups".into(),
        format!(r#"{{"name": "New group", "device_ids": ["{d}", "@"]}}"#),
        "device_ids",
        d.clone(),
    ));
    fields.push((
        Method::PUT,
        format!("/api/groups/{g}"),
        r#"{"device_ids": ["@"]}"#.into(),
        "device_ids",
        d.clone(),
    ));
    fields
}

/// `template` with `value` (JSON-escaped) where `"@"` stands.
fn fill(template: &str, value: &str) -> Vec<u8> {
    template
        .replacen("\"@\"", &Value::String(value.to_owned()).to_string(), 1)
        .into_bytes()
}

// Fails when a field lets NUL through: the write answers 2xx (and the snapshot differs), or a
// store refuses the byte with a 5xx (PostgreSQL cannot store NUL in text), or the detail names
// another field than the one at fault.
on_both_stores! {
    async fn nul_in_any_string_field_of_any_write_endpoint_is_refused_and_nothing_is_stored(app) {
        let f = fixture(&app).await;
        let mut cases = Vec::new();
        for (method, path, template, field, valid) in string_fields(&f) {
            // The template with its valid value must be accepted: the refusal below is then the
            // NUL's doing, not the template's.
            let (half_a, half_b) = valid.split_at(valid.len() / 2);
            for bad in [
                "\u{0}".to_owned(),
                format!("{valid}\u{0}"),
                format!("\u{0}{valid}"),
                format!("{half_a}\u{0}{half_b}"),
            ] {
                let (status, prefix) = if field == "device_ids" {
                    (StatusCode::BAD_REQUEST, "Invalid device ID format".to_owned())
                } else {
                    (StatusCode::UNPROCESSABLE_ENTITY, format!("{field}:"))
                };
                cases.push(Refused { method: method.clone(), path: path.clone(), body: fill(&template, &bad), status, detail_prefix: prefix, or_prefix: None });
            }
        }
        // A NUL in a key, in a query parameter, in a path segment.
        let (d, w) = (&f.device, &f.window);
        cases.push(Refused { method: Method::POST, path: "/api/devices".into(), body: br#"{"name": "ok", "unit\u0000": "x"}"#.to_vec(), status: StatusCode::UNPROCESSABLE_ENTITY, detail_prefix: String::new(), or_prefix: None });
        assert_all_refused(&app, &f, cases).await;

        for (path, expected) in [
            ("/customer/maintenance-windows?status=active%00".to_owned(), StatusCode::UNPROCESSABLE_ENTITY),
            (format!("/customer/maintenance-windows/{w}/occurrences?from=2025-01-01T00:00:00Z%00"), StatusCode::UNPROCESSABLE_ENTITY),
            (format!("/customer/maintenance-windows/{w}/occurrences?limit=5%00"), StatusCode::UNPROCESSABLE_ENTITY),
            (format!("/api/devices/{d}/readings?hours=24%00"), StatusCode::UNPROCESSABLE_ENTITY),
            (format!("/api/devices/{d}%00"), StatusCode::NOT_FOUND),
            (format!("/api/groups/{}%00", f.group), StatusCode::NOT_FOUND),
            (format!("/customer/device-groups/{}%00", f.slug), StatusCode::NOT_FOUND),
        ] {
            let reply = send(&app, Some(&f.admin), Method::GET, &path, None).await;
            assert_eq!(reply.status, expected, "GET {path}: {}", reply.text);
        }
        let reply = send(&app, Some(&f.admin), Method::PUT, &format!("/customer/device-groups/{}/devices/{d}%00", f.slug), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    }
}

// Sanity check of the NUL test's templates: each one with its valid value is accepted, so the
// refusals above are caused by the NUL alone. Fails if a template is itself malformed.
on_both_stores! {
    async fn the_string_field_templates_are_accepted_with_valid_values(app) {
        let f = fixture(&app).await;
        for (i, (method, path, template, field, valid)) in string_fields(&f).into_iter().enumerate() {
            // Fresh names, so that creates do not collide with each other.
            let valid = match field {
                "name" => format!("{valid} {i}"),
                "group_id" => format!("{valid}-{i}"),
                _ => valid,
            };
            let body = fill(&template, &valid);
            let body = String::from_utf8(body).unwrap().replace("\"New group\"", &format!("\"New group {i}\"")).replace("\"New\"", &format!("\"New {i}\""));
            let reply = send(&app, Some(&f.admin), method.clone(), &path, Some(body.clone().into_bytes())).await;
            assert!(reply.status.is_success(), "{method} {path} {body} -> {} {}", reply.status, reply.text);
        }
    }
}

// Fails when bytes that are not UTF-8 reach a handler as text (a 2xx with mangled text stored)
// or crash the parser (5xx, dropped connection).
on_both_stores! {
    async fn bodies_that_are_not_utf8_answer_422_on_every_write_endpoint(app) {
        let f = fixture(&app).await;
        let (d, g, slug, w) = (&f.device, &f.group, &f.slug, &f.window);
        let templates: Vec<(Method, String, String)> = vec![
            (Method::POST, "/api/devices".into(), r#"{"name": "@"}"#.into()),
            (Method::PUT, format!("/api/devices/{d}"), r#"{"name": "@"}"#.into()),
            (Method::POST, format!("/api/devices/{d}/readings"), r#"{"value": 1, "timestamp": "@"}"#.into()),
            (Method::POST, "/api/readings".into(), r#"{"readings": [{"device_id": "@", "timestamp": "2025-01-01T00:00:00Z", "value": 1}]}"#.into()),
            (Method::POST, "/api/groups".into(), r#"{"name": "@"}"#.into()),
            (Method::PUT, format!("/api/groups/{g}"), r#"{"description": "@"}"#.into()),
            (Method::POST, "/customer/device-groups".into(), r#"{"name": "@"}"#.into()),
            (Method::PATCH, format!("/customer/device-groups/{slug}"), r#"{"description": "@"}"#.into()),
            (Method::POST, "/customer/maintenance-windows".into(), r#"{"name": "@", "starts_at": "2025-01-01T00:00:00Z"}"#.into()),
            (Method::PATCH, format!("/customer/maintenance-windows/{w}"), r#"{"name": "@"}"#.into()),
        ];
        let bad: [&[u8]; 6] = [
            b"ok\xff",                 // never valid in UTF-8
            b"ok\xc3\x28",             // a lead byte without its continuation
            b"\xc0\xaf",               // an overlong encoding of '/'
            b"\xed\xa0\x80",           // a UTF-16 surrogate encoded as UTF-8
            b"\xf4\x90\x80\x80",       // beyond U+10FFFF
            b"\\ud800",                // a lone surrogate as a JSON escape
        ];
        let mut cases = Vec::new();
        for (method, path, template) in &templates {
            for bytes in bad {
                let (head, tail) = template.split_once('@').expect("placeholder");
                let body = [head.as_bytes(), bytes, tail.as_bytes()].concat();
                cases.push(Refused { method: method.clone(), path: path.clone(), body, status: StatusCode::UNPROCESSABLE_ENTITY, detail_prefix: String::new(), or_prefix: None });
            }
            // Bad bytes in a key.
            cases.push(Refused { method: method.clone(), path: path.clone(), body: b"{\"\xff\": 1}".to_vec(), status: StatusCode::UNPROCESSABLE_ENTITY, detail_prefix: String::new(), or_prefix: None });
        }
        assert_all_refused(&app, &f, cases).await;
    }
}

// Fails when a huge list is not bounded: a 5xx, a timeout, a dropped connection, or a server that
// no longer answers afterwards; and when the documented answer (413 over the body limit, the list
// limits, repeats counting once) is not given.
on_both_stores! {
    async fn huge_arrays_get_a_4xx_or_are_handled_and_the_server_keeps_answering(app) {
        let f = fixture(&app).await;
        let admin = f.admin.clone();
        let quoted = |items: &mut dyn Iterator<Item = String>| -> String {
            items.map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(",")
        };

        // 100,000 well-formed, unknown device ids: 3.9 MB, over the 1 MiB body limit.
        let ids = quoted(&mut (0..100_000).map(|_| uuid::Uuid::new_v4().to_string()));
        for (method, path) in [(Method::POST, "/api/groups".to_owned()), (Method::PUT, format!("/api/groups/{}", f.group))] {
            let body = format!(r#"{{"name": "Huge", "device_ids": [{ids}]}}"#).into_bytes();
            let reply = send(&app, Some(&admin), method.clone(), &path, Some(body)).await;
            assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path}: {}", reply.text);
            assert_alive(&app).await;
        }
        // 100,000 short malformed ids (under the limit): the first is named, 400 GROUP_003.
        let short = quoted(&mut (0..100_000).map(|i| format!("{}", i % 10)));
        let reply = send(&app, Some(&admin), Method::POST, "/api/groups", Some(format!(r#"{{"name": "Huge", "device_ids": [{short}]}}"#).into_bytes())).await;
        assert_eq!((reply.status, &reply.json), (StatusCode::BAD_REQUEST, &json!({"detail": "Invalid device ID format: '0'", "code": "GROUP_003"})));
        // 25,000 distinct unknown ids (0.97 MiB): the first unknown one is named, 400 GROUP_002.
        let unknown: Vec<String> = (0..25_000).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        let body = json!({"device_ids": unknown});
        let (status, answer) = crate::devices::put(&app, &format!("/api/groups/{}", f.group), &admin, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], "GROUP_002");
        assert_eq!(answer["detail"], format!("Device {} not found", unknown[0]));
        // 25,000 repeats of one device: it counts once.
        let repeats = vec![f.device.clone(); 25_000];
        let (status, answer) = app.post("/api/groups", &admin, json!({"name": "Repeats", "device_ids": repeats})).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["devices"].as_array().map(Vec::len), Some(1), "{answer}");
        assert_alive(&app).await;

        // Scope lists: 100,000 entries (under the body limit) against a limit of 1,000.
        let many = quoted(&mut (0..100_000).map(|i| format!("{}", i % 10)));
        for field in ["site_ids", "device_types", "group_ids"] {
            let body = format!(r#"{{"name": "Huge", "starts_at": "2025-01-01T00:00:00Z", "{field}": [{many}]}}"#);
            let reply = send(&app, Some(&admin), Method::POST, "/customer/maintenance-windows", Some(body.into_bytes())).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {}", reply.text);
            assert!(reply.json["detail"].as_str().unwrap_or_default().starts_with(&format!("{field}: must hold at most 1000")), "{}", reply.text);
            let body = format!(r#"{{"{field}": [{many}]}}"#);
            let reply = send(&app, Some(&admin), Method::PATCH, &format!("/customer/maintenance-windows/{}", f.window), Some(body.into_bytes())).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {}", reply.text);
        }
        // Readings: 100,000 is over the 4 MiB ingest limit; 10,001 small ones over the count limit.
        let reading = format!(r#"{{"device_id":"{}","timestamp":"2025-01-01T00:00:00Z","value":1}}"#, f.device);
        let body = format!(r#"{{"readings": [{}]}}"#, vec![reading.as_str(); 100_000].join(","));
        let reply = send(&app, Some(&admin), Method::POST, "/api/readings", Some(body.into_bytes())).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);
        let body = format!(r#"{{"readings": [{}]}}"#, vec![reading.as_str(); 10_001].join(","));
        let reply = send(&app, Some(&admin), Method::POST, "/api/readings", Some(body.into_bytes())).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text);
        // Exactly 10,000 repeats of one reading: accepted, stored once.
        let body = format!(r#"{{"readings": [{}]}}"#, vec![reading.as_str(); 10_000].join(","));
        let reply = send(&app, Some(&admin), Method::POST, "/api/readings", Some(body.into_bytes())).await;
        assert_eq!((reply.status, &reply.json), (StatusCode::CREATED, &json!({"accepted": 1})));
        assert_alive(&app).await;

        // Nothing from the refused requests was stored.
        let (_, groups) = app.get("/api/groups", &admin).await;
        assert_eq!(crate::devices::names(&groups), ["Base group", "Repeats"]);
        let (_, windows) = app.get("/customer/maintenance-windows", &admin).await;
        assert_eq!(windows["total"], 1);
    }
}

/// Sends a request over a bare TCP connection (no client-side URI limit, unlike `reqwest`) and
/// returns the status code and the raw answer. No answer within 10 s, or none at all, fails.
async fn raw_http(app: &TestApp, method: &str, target: &str, token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    // The server may answer and close before it has read the whole line: a failed write is
    // fine as long as an answer comes back.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(
        read.is_ok(),
        "{method} {}…: no answer within 10 s",
        &target[..40]
    );
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{method} {}…: no HTTP answer: {answer:?}", &target[..40]));
    (status, answer)
}

// Fails when an oversized request line is answered with a 5xx or a dropped connection, or when
// the server stops answering afterwards; lines within the URI limit must reach the handlers
// and get their usual answer.
on_both_stores! {
    async fn huge_path_segments_and_query_strings_get_a_4xx_and_the_server_keeps_answering(app) {
        let f = fixture(&app).await;
        let (d, w) = (&f.device, &f.window);
        let huge = "a".repeat(100 * 1024);
        let digits = "9".repeat(100 * 1024);
        let targets = [
            format!("/api/groups/{huge}"),
            format!("/api/devices/{huge}"),
            format!("/api/devices/{huge}/readings"),
            format!("/customer/device-groups/{huge}"),
            format!("/customer/device-groups/{}/devices/{huge}", f.slug),
            format!("/customer/maintenance-windows/{huge}/occurrences"),
            format!("/{huge}"),
            format!("/api/devices/{d}/readings?hours={digits}"),
            format!("/api/groups/{}/readings?limit=1&x={huge}", f.group),
            format!("/customer/maintenance-windows/{w}/occurrences?from={huge}"),
            format!("/customer/maintenance-windows?status={huge}"),
        ];
        for target in &targets {
            for method in ["GET", "PUT", "DELETE"] {
                let (status, answer) = raw_http(&app, method, target, &f.admin).await;
                assert!(
                    [400, 404, 405, 414, 431].contains(&status),
                    "{method} {}… ({} bytes): {}", &target[..40], target.len(), answer.chars().take(300).collect::<String>()
                );
                assert_alive(&app).await;
            }
        }
        // 60 KB is within the URI limit: the handlers answer as for any unknown id or bad number.
        let long = "a".repeat(60 * 1024);
        let reply = send(&app, Some(&f.admin), Method::GET, &format!("/api/groups/{long}"), None).await;
        assert_eq!((reply.status, reply.json["code"].as_str()), (StatusCode::NOT_FOUND, Some("GROUP_005")));
        let reply = send(&app, Some(&f.admin), Method::GET, &format!("/customer/device-groups/{long}"), None).await;
        assert_eq!((reply.status, &reply.json), (StatusCode::NOT_FOUND, &json!({"detail": "Group not found"})));
        let reply = send(&app, Some(&f.admin), Method::GET, &format!("/api/devices/{d}/readings?hours={}", "9".repeat(60 * 1024)), None).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", &reply.text[..100.min(reply.text.len())]);
        assert!(reply.json["detail"].as_str().unwrap_or_default().starts_with("hours:"));
        let reply = send(&app, Some(&f.admin), Method::GET, &format!("/customer/maintenance-windows/{w}/occurrences?from={long}"), None).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_alive(&app).await;
    }
}

// Fails when a number JSON cannot represent in an f64 or i64 is accepted (clamped to infinity
// or wrapped) or crashes the parser, instead of a 422 naming the field.
on_both_stores! {
    async fn numbers_beyond_f64_and_integers_beyond_i64_answer_422(app) {
        let f = fixture(&app).await;
        let (d, g, w) = (&f.device, &f.group, &f.window);
        let mut cases = Vec::new();
        // serde_json refuses a number beyond f64 while tokenising, before it knows the field:
        // its 422 then names the body and the number instead.
        let mut push = |method: Method, path: String, body: String, prefix: &str| {
            cases.push(Refused {
                method, path, body: body.into_bytes(), status: StatusCode::UNPROCESSABLE_ENTITY,
                detail_prefix: prefix.to_owned(), or_prefix: Some("body: malformed JSON at line 1, column "),
            });
        };
        for big in ["1e400", "-1e400", "1.8e308", "-1.8e308"] {
            for field in ["threshold_warning_lower", "threshold_warning_upper", "threshold_critical_lower", "threshold_critical_upper"] {
                push(Method::POST, "/api/devices".into(), format!(r#"{{"name": "Big", "{field}": {big}}}"#), field);
                push(Method::PUT, format!("/api/devices/{d}"), format!(r#"{{"{field}": {big}}}"#), field);
            }
            push(Method::POST, "/api/readings".into(), format!(r#"{{"readings": [{{"device_id": "{d}", "timestamp": "2025-01-01T00:00:00Z", "value": {big}}}]}}"#), "readings[0].value");
            push(Method::POST, format!("/api/devices/{d}/readings"), format!(r#"{{"value": {big}}}"#), "value");
        }
        for big in ["9223372036854775808", "-9223372036854775809", "99999999999999999999999", "1e30", "1.5"] {
            for (field, path) in [("start_hour", "recurring.start_hour"), ("end_hour", "recurring.end_hour"), ("start_minute", "recurring.start_minute"), ("end_minute", "recurring.end_minute")] {
                let mut recurring = json!({"start_hour": 1, "end_hour": 2});
                recurring[field] = json!("@");
                let recurring = recurring.to_string().replace("\"@\"", big);
                push(Method::POST, "/customer/maintenance-windows".into(), format!(r#"{{"name": "N", "starts_at": "2025-01-01T00:00:00Z", "recurring": {recurring}}}"#), path);
                push(Method::PATCH, format!("/customer/maintenance-windows/{w}"), format!(r#"{{"recurring": {recurring}}}"#), path);
            }
            for field in ["dow", "days_of_month"] {
                push(Method::POST, "/customer/maintenance-windows".into(), format!(r#"{{"name": "N", "starts_at": "2025-01-01T00:00:00Z", "recurring": {{"start_hour": 1, "end_hour": 2, "{field}": [1, {big}]}}}}"#), &format!("recurring.{field}[1]"));
            }
        }
        assert_all_refused(&app, &f, cases).await;

        // Query integers beyond i64, or not integers at all.
        for value in ["9223372036854775808", "-9223372036854775809", "99999999999999999999999", "1e3", "NaN", "24.0", "%2024", "0x10", ""] {
            for (path, field) in [
                (format!("/api/devices/{d}/readings?hours={value}"), "hours"),
                (format!("/api/devices/{d}/readings?limit={value}"), "limit"),
                (format!("/api/groups/{g}/readings?hours={value}"), "hours"),
                (format!("/api/groups/{g}/readings?limit={value}"), "limit"),
                (format!("/customer/maintenance-windows/{w}/occurrences?limit={value}"), "limit"),
            ] {
                let reply = send(&app, Some(&f.admin), Method::GET, &path, None).await;
                assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "GET {path}: {}", reply.text);
                assert!(reply.json["detail"].as_str().unwrap_or_default().starts_with(&format!("{field}:")), "GET {path}: {}", reply.text);
            }
        }
        // The largest finite bounds are numbers like any other.
        let (status, device) = app.post("/api/devices", &f.admin, json!({"name": "Extreme", "threshold_critical_lower": -f64::MAX, "threshold_critical_upper": f64::MAX})).await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        assert_eq!(device["threshold_critical_upper"], f64::MAX);
        assert_eq!(device["threshold_critical_lower"], -f64::MAX);
    }
}

/// Every field that takes an instant, with `@` where it goes: `(method, path, template, field)`.
fn timestamp_fields(f: &Fixture) -> Vec<(Method, String, String, &'static str)> {
    let (d, w) = (&f.device, &f.window);
    vec![
        (
            Method::POST,
            "/api/readings".into(),
            format!(r#"{{"readings": [{{"device_id": "{d}", "timestamp": "@", "value": 1}}]}}"#),
            "readings[0].timestamp",
        ),
        (
            Method::POST,
            format!("/api/devices/{d}/readings"),
            r#"{"value": 2, "timestamp": "@"}"#.into(),
            "timestamp",
        ),
        (
            Method::POST,
            "/customer/maintenance-windows".into(),
            r#"{"name": "Edge", "starts_at": "@"}"#.into(),
            "starts_at",
        ),
        (
            Method::POST,
            "/customer/maintenance-windows".into(),
            r#"{"name": "Edge", "starts_at": "0001-01-01T00:00:00Z", "ends_at": "@"}"#.into(),
            "ends_at",
        ),
        (
            Method::PATCH,
            format!("/customer/maintenance-windows/{w}"),
            r#"{"ends_at": "@"}"#.into(),
            "ends_at",
        ),
        (
            Method::PATCH,
            format!("/customer/maintenance-windows/{w}"),
            r#"{"starts_at": "@", "ends_at": null}"#.into(),
            "starts_at",
        ),
    ]
}

// Fails when an instant at or past the edges of time crashes something (5xx, dropped
// connection), when an invalid one is stored, or when a valid one at the edge is refused or
// changed on the way back.
on_both_stores! {
    async fn timestamps_at_and_past_the_edges_of_time_are_stored_or_refused_with_422(app) {
        let f = fixture(&app).await;
        let accepted = ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999+00:00", "0001-01-01T01:00:00+01:00"];
        let refused = ["0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "2025-02-30T00:00:00Z", "2025-01-01T24:00:00Z", "2025-13-01T00:00:00Z", "-0001-01-01T00:00:00Z", "2025-01-01T00:00:00+24:00"];
        for (method, path, template, field) in timestamp_fields(&f) {
            for value in refused {
                let reply = send(&app, Some(&f.admin), method.clone(), &path, Some(fill(&template, value))).await;
                assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path} {field}={value}: {}", reply.text);
                assert!(reply.json["detail"].as_str().unwrap_or_default().starts_with(&format!("{field}:")), "{}", reply.text);
            }
            for value in accepted {
                let reply = send(&app, Some(&f.admin), method.clone(), &path, Some(fill(&template, value))).await;
                // An end at year 1 is not after its start: the one refusal the schedule makes.
                if field == "ends_at" && value.starts_with("0001") {
                    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path} {field}={value}: {}", reply.text);
                    continue;
                }
                // A reading may not lie more than the allowed skew ahead of the server's clock.
                if field.ends_with("timestamp") && value.starts_with("9999") {
                    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path} {field}={value}: {}", reply.text);
                    assert_eq!(reply.json["detail"], format!("{field}: more than 300 s in the future"), "{}", reply.text);
                    continue;
                }
                assert!(reply.status.is_success(), "{method} {path} {field}={value}: {} {}", reply.status, reply.text);
                let key = field.rsplit('.').next().unwrap_or(field);
                if let Some(stored) = reply.json.get(key) {
                    let expected = if value.starts_with("9999") { "9999-12-31T23:59:59.999999Z" } else { "0001-01-01T00:00:00Z" };
                    assert_eq!(stored, expected, "{method} {path}: {}", reply.text);
                }
            }
            assert_alive(&app).await;
        }
        // The stored edge instants read back, and everything computed from them still answers.
        let (status, readings) = app.get(&format!("/api/devices/{}/readings?start_time=0001-01-01T00:00:00Z&end_time=0001-01-02T00:00:00Z&limit=10", f.device), &f.admin).await;
        assert_eq!(status, StatusCode::OK, "{readings}");
        assert_eq!(readings["readings"][0]["timestamp"], "0001-01-01T00:00:00Z", "{readings}");
        for path in [
            format!("/api/groups/{}", f.group),
            format!("/api/groups/{}/alerts", f.group),
            format!("/api/groups/{}/readings?hours=8760", f.group),
            "/customer/maintenance-windows".to_owned(),
            format!("/customer/maintenance-windows/{}/occurrences?from=0001-01-01T00:00:00Z&limit=100", f.window),
            format!("/customer/maintenance-windows/{}/occurrences?from=9999-12-31T23:59:59.999999Z", f.window),
            format!("/customer/maintenance-windows/{}/devices", f.window),
        ] {
            let (status, body) = app.get(&path, &f.admin).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }
        // Recurring windows at both ends of time, in the zones furthest from UTC.
        for zone in ["Pacific/Kiritimati", "Etc/GMT+12", "America/St_Johns"] {
            for (starts_at, ends_at) in [("0001-01-01T00:00:00Z", Value::Null), ("9999-12-30T00:00:00Z", json!("9999-12-31T23:59:59.999999Z"))] {
                let (status, window) = app.post("/customer/maintenance-windows", &f.admin, json!({
                    "name": format!("Edge {zone}"), "starts_at": starts_at, "ends_at": ends_at,
                    "recurring": {"start_hour": 23, "end_hour": 1, "timezone": zone},
                })).await;
                assert_eq!(status, StatusCode::OK, "{window}");
                let id = window["window_id"].as_str().unwrap();
                for from in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "9999-12-30T12:00:00Z"] {
                    let (status, body) = app.get(&format!("/customer/maintenance-windows/{id}/occurrences?from={from}&limit=100"), &f.admin).await;
                    assert_eq!(status, StatusCode::OK, "{zone} {starts_at} from {from}: {body}");
                }
            }
        }
        let (status, _) = app.get(&format!("/api/groups/{}/alerts", f.group), &f.admin).await;
        assert_eq!(status, StatusCode::OK);
    }
}

// Fails today: `time` panics converting an instant whose UTC equivalent lies past its range
// (year 10000) inside `Timestamp::new`; the worker's connection is dropped with no answer at all.
on_both_stores! {
    async fn an_instant_in_year_9999_whose_utc_is_in_year_10000_answers_422(app) {
        let f = fixture(&app).await;
        for value in ["9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59.999999-23:59"] {
            for (method, path, template, field) in timestamp_fields(&f) {
                let reply = send(&app, Some(&f.admin), method.clone(), &path, Some(fill(&template, value))).await;
                assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path} {field}={value}: {}", reply.text);
            }
            let path = format!("/customer/maintenance-windows/{}/occurrences?from={}", f.window, value.replace('+', "%2B"));
            let reply = send(&app, Some(&f.admin), Method::GET, &path, None).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {}", reply.text);
        }
        assert_alive(&app).await;
    }
}

/// Text that would change an SQL statement if it were pasted into one.
const SQL: [&str; 8] = [
    "Robert'); DROP TABLE devices;--",
    "' OR '1'='1",
    "%_\\ LIKE '%'",
    "$1 $$ E'\\x00' ::text",
    "\"; DELETE FROM readings; --",
    "\\'; UPDATE devices SET name = 'x' --",
    "/* */ UNION SELECT tenant_id FROM devices --",
    "tenant_id = current_setting('app.tenant')",
];

// Fails when any stored string is altered on its way in or out (escaping doubled or dropped,
// wildcards interpreted), when metacharacters break a statement (5xx), or when they widen a
// lookup: a scope list matching devices it does not name, or another tenant's rows appearing.
on_both_stores! {
    async fn sql_metacharacters_in_every_stored_string_come_back_verbatim(app) {
        let admin = token("acme", &["admin"]);
        let other = token("other", &["admin"]);
        create_device(&app, &other, json!({"name": "Other tenant's"})).await;
        let mut devices = Vec::new();
        for (i, text) in SQL.iter().enumerate() {
            let unit: String = text.chars().take(20).collect();
            let body = json!({"name": text, "unit": unit, "site_id": text, "device_type": text});
            let (status, created) = app.post("/api/devices", &admin, body).await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            for (field, expected) in [("name", *text), ("unit", unit.as_str()), ("site_id", *text), ("device_type", *text)] {
                assert_eq!(created[field], expected, "device {i} {field}");
            }
            devices.push(created["id"].as_str().unwrap().to_owned());
        }
        // A device whose labels no scope list below names.
        let bystander = create_device(&app, &admin, json!({"name": "Bystander", "site_id": "x", "device_type": "y"})).await;
        for (i, (text, id)) in SQL.iter().zip(&devices).enumerate() {
            let (_, read) = app.get(&format!("/api/devices/{id}"), &admin).await;
            assert_eq!((read["name"].as_str(), read["site_id"].as_str(), read["device_type"].as_str()), (Some(*text), Some(*text), Some(*text)), "device {i}");
            // The same text after a rename through PUT.
            let renamed = format!("{text} (renamed)");
            let (status, updated) = crate::devices::put(&app, &format!("/api/devices/{id}"), &admin, json!({"name": renamed})).await;
            assert_eq!((status, updated["name"].as_str()), (StatusCode::OK, Some(renamed.as_str())));
        }
        let (_, list) = app.get("/api/devices", &admin).await;
        assert_eq!(list.as_array().map(Vec::len), Some(SQL.len() + 1), "{list}");

        // Groups in both API families, and windows, with the same texts.
        for (i, text) in SQL.iter().enumerate() {
            let (status, g) = app.post("/api/groups", &admin, json!({"name": format!("G {text}"), "description": text, "device_ids": [devices[i]]})).await;
            assert_eq!(status, StatusCode::CREATED, "{g}");
            assert_eq!((g["name"].as_str(), g["description"].as_str()), (Some(format!("G {text}").as_str()), Some(*text)));
            let (_, read) = app.get(&format!("/api/groups/{}", g["id"].as_str().unwrap()), &admin).await;
            assert_eq!((read["name"].as_str(), read["description"].as_str()), (Some(format!("G {text}").as_str()), Some(*text)));
            let (status, c) = app.post("/customer/device-groups", &admin, json!({"group_id": format!("c--{i}.~_"), "name": format!("C {text}"), "description": text})).await;
            assert_eq!(status, StatusCode::OK, "{c}");
            let (_, read) = app.get(&format!("/customer/device-groups/c--{i}.~_"), &admin).await;
            assert_eq!((read["name"].as_str(), read["description"].as_str()), (Some(format!("C {text}").as_str()), Some(*text)));
            let (status, patched) = app.patch(&format!("/customer/device-groups/c--{i}.~_"), &admin, json!({"description": format!("{text}{text}")})).await;
            assert_eq!((status, patched["description"].as_str()), (StatusCode::OK, Some(format!("{text}{text}").as_str())));

            let (status, w) = app.post("/customer/maintenance-windows", &admin, json!({
                "name": text, "starts_at": "2025-01-01T00:00:00Z",
                "site_ids": [text], "device_types": [text], "group_ids": [format!("c--{i}.~_")],
            })).await;
            assert_eq!(status, StatusCode::OK, "{w}");
            let (_, read) = app.get(&format!("/customer/maintenance-windows/{}", w["window_id"].as_str().unwrap()), &admin).await;
            assert_eq!(read["name"], *text);
            assert_eq!(read["site_ids"], json!([text]));
            assert_eq!(read["device_types"], json!([text]));
            assert_eq!(read["group_ids"], json!([format!("c--{i}.~_")]));

            // A window scoped by these labels (and no group) covers exactly the one device they
            // name: not the bystander, not the others, not the other tenant's.
            let (status, w) = app.post("/customer/maintenance-windows", &admin, json!({
                "name": format!("Scope {i}"), "starts_at": "2025-01-01T00:00:00Z", "site_ids": [text], "device_types": [text],
            })).await;
            assert_eq!(status, StatusCode::OK, "{w}");
            let (_, scoped) = app.get(&format!("/customer/maintenance-windows/{}/devices", w["window_id"].as_str().unwrap()), &admin).await;
            let ids: Vec<&str> = scoped["devices"].as_array().expect("devices").iter().map(|d| d["id"].as_str().unwrap()).collect();
            assert_eq!(ids, [devices[i].as_str()], "window scoped by {text:?}: {scoped}");
            assert!(!ids.contains(&bystander.as_str()));
        }
        let (_, list) = app.get("/customer/device-groups", &admin).await;
        assert_eq!(list["total"], 2 * SQL.len(), "{list}");
        let (_, list) = app.get("/customer/maintenance-windows", &admin).await;
        assert_eq!(list["total"], 2 * SQL.len(), "{list}");
        // The other tenant still sees only its own device.
        let (_, theirs) = app.get("/api/devices", &other).await;
        assert_eq!(crate::devices::names(&theirs), ["Other tenant's"]);
    }
}

// Fails when a route ignores a query parameter it does not declare (a misspelt filter a client
// believes applied, or junk that once keyed the group-views cache and grew it without bound).
on_both_stores! {
    async fn an_unknown_query_parameter_is_a_422_naming_it_on_every_route(app) {
        let f = fixture(&app).await;
        let before = snapshot(&app, &f).await;
        let (d, g, s, w) = (&f.device, &f.group, &f.slug, &f.window);
        let routes: Vec<(Method, String)> = vec![
            (Method::GET, "/health/live".into()),
            (Method::GET, "/health/ready".into()),
            (Method::GET, "/openapi.json".into()),
            (Method::GET, "/customer/device-groups".into()),
            (Method::POST, "/customer/device-groups".into()),
            (Method::GET, format!("/customer/device-groups/{s}")),
            (Method::PATCH, format!("/customer/device-groups/{s}")),
            (Method::DELETE, format!("/customer/device-groups/{s}")),
            (Method::GET, format!("/customer/device-groups/{s}/devices")),
            (Method::PUT, format!("/customer/device-groups/{s}/devices/{d}")),
            (Method::DELETE, format!("/customer/device-groups/{s}/devices/{d}")),
            (Method::GET, "/customer/maintenance-windows".into()),
            (Method::POST, "/customer/maintenance-windows".into()),
            (Method::GET, format!("/customer/maintenance-windows/{w}")),
            (Method::PATCH, format!("/customer/maintenance-windows/{w}")),
            (Method::DELETE, format!("/customer/maintenance-windows/{w}")),
            (Method::GET, format!("/customer/maintenance-windows/{w}/occurrences")),
            (Method::GET, format!("/customer/maintenance-windows/{w}/devices")),
            (Method::GET, "/api/devices".into()),
            (Method::POST, "/api/devices".into()),
            (Method::GET, format!("/api/devices/{d}")),
            (Method::PUT, format!("/api/devices/{d}")),
            (Method::DELETE, format!("/api/devices/{d}")),
            (Method::GET, format!("/api/devices/{d}/groups")),
            (Method::GET, format!("/api/devices/{d}/readings")),
            (Method::POST, format!("/api/devices/{d}/readings")),
            (Method::POST, "/api/readings".into()),
            (Method::GET, "/api/groups".into()),
            (Method::POST, "/api/groups".into()),
            (Method::GET, format!("/api/groups/{g}")),
            (Method::PUT, format!("/api/groups/{g}")),
            (Method::DELETE, format!("/api/groups/{g}")),
            (Method::GET, format!("/api/groups/{g}/readings")),
            (Method::GET, format!("/api/groups/{g}/alerts")),
        ];
        for (method, path) in &routes {
            // Known parameters beside the unknown one do not excuse it.
            let separator = if path.ends_with("/readings") && *method == Method::GET { "?hours=1&" } else { "?" };
            for unknown in ["hour=1", "bogus=error", "x="] {
                let target = format!("{path}{separator}{unknown}");
                let reply = send(&app, Some(&f.admin), method.clone(), &target, Some(br#"{"name": "Changed"}"#.to_vec())).await;
                assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {target}: {}", reply.text);
                let name = unknown.split('=').next().unwrap();
                let detail = reply.json["detail"].as_str().unwrap_or_default();
                assert_eq!(detail, format!("{name}: unknown query parameter"), "{method} {target}");
                assert!(reply.headers.contains_key("x-request-id"), "{method} {target}: the refusal carries a request id");
            }
        }
        // The token and the role are judged first: 401 without a token, 403 for a write the role
        // may not make, whatever the query string holds.
        let viewer = token("acme", &["viewer"]);
        let reply = send(&app, None, Method::GET, "/api/groups?bogus=1", None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
        let reply = send(&app, Some(&viewer), Method::DELETE, &format!("/api/groups/{g}?bogus=1"), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
        let reply = send(&app, Some(&viewer), Method::POST, "/customer/device-groups?x=1", Some(br#"{"name": "V"}"#.to_vec())).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
        // A write takes no query parameters, not even those its path's reads declare.
        let reply = send(&app, Some(&f.admin), Method::POST, "/customer/device-groups?limit=5", Some(br#"{"name": "Paged"}"#.to_vec())).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text);
        assert_eq!(reply.json["detail"], "limit: unknown query parameter", "{}", reply.text);
        // The parameters a route declares still work, in any order.
        let reply = send(&app, Some(&f.admin), Method::GET, &format!("/api/groups/{g}/readings?limit=5&hours=2"), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let reply = send(&app, Some(&f.admin), Method::GET, "/customer/maintenance-windows?status=active&limit=1&name=x", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(snapshot(&app, &f).await, before, "nothing refused was stored");
    }
}
