//! `/api/devices`: CRUD, validation, roles, a device's groups, and tenancy.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{detail, token, TestApp};
use crate::on_both_stores;

/// The 403 `detail` of every admin/owner-only endpoint.
pub(crate) const FORBIDDEN: &str = "Access forbidden. Required roles: admin, owner";

/// Every field a device answer carries.
const DEVICE_FIELDS: [&str; 12] = [
    "id",
    "name",
    "unit",
    "status",
    "site_id",
    "device_type",
    "threshold_warning_lower",
    "threshold_warning_upper",
    "threshold_critical_lower",
    "threshold_critical_upper",
    "created_at",
    "updated_at",
];

pub(crate) async fn put(
    app: &TestApp,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.request(Method::PUT, path, Some(token), Some(body))
        .await
}

/// Creates a device, asserting 201, and returns its id.
pub(crate) async fn create_device(app: &TestApp, token: &str, body: Value) -> String {
    let (status, created) = app.post("/api/devices", token, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body} -> {created}");
    created["id"].as_str().expect("id").to_owned()
}

/// The names of a bare array of devices or groups, in order.
pub(crate) fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|d| d["name"].as_str().expect("name"))
        .collect()
}

fn is_uuid(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

on_both_stores! {
    async fn a_device_is_created_listed_read_changed_and_deleted(app) {
        let admin = token("acme", &["admin"]);

        // Act: create with every field.
        let (status, created) = app.post("/api/devices", &admin, json!({
            "name": "Boiler", "unit": "°C", "site_id": "site-1", "device_type": "thermometer",
            "threshold_warning_lower": 0.0, "threshold_warning_upper": 30.0,
            "threshold_critical_lower": -10.0, "threshold_critical_upper": 40.0,
        })).await;

        // Assert: 201 with all fields; status defaults to disconnected.
        assert_eq!(status, StatusCode::CREATED, "{created}");
        for field in DEVICE_FIELDS {
            assert!(created.get(field).is_some(), "{field} missing from {created}");
        }
        assert!(is_uuid(&created["id"]), "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["name"], "Boiler");
        assert_eq!(created["unit"], "°C");
        assert_eq!(created["status"], "disconnected");
        assert_eq!(created["site_id"], "site-1");
        assert_eq!(created["device_type"], "thermometer");
        assert_eq!(created["threshold_warning_lower"], json!(0.0));
        assert_eq!(created["threshold_warning_upper"], json!(30.0));
        assert_eq!(created["threshold_critical_lower"], json!(-10.0));
        assert_eq!(created["threshold_critical_upper"], json!(40.0));
        assert!(created["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{created}");
        assert!(created["updated_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{created}");

        // The list is a bare array ordered by name.
        create_device(&app, &admin, json!({"name": "Zeta"})).await;
        create_device(&app, &admin, json!({"name": "Alpha"})).await;
        let (status, list) = app.get("/api/devices", &admin).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(names(&list), ["Alpha", "Boiler", "Zeta"]);

        let path = format!("/api/devices/{id}");
        let (status, one) = app.get(&path, &admin).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one, created);

        // PUT is partial: absent fields stay.
        let (status, changed) = put(&app, &path, &admin, json!({"unit": "K", "status": "connected"})).await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!(changed["unit"], "K");
        assert_eq!(changed["status"], "connected");
        assert_eq!(changed["name"], "Boiler");
        assert_eq!(changed["site_id"], "site-1");
        assert_eq!(changed["device_type"], "thermometer");
        assert_eq!(changed["threshold_warning_lower"], json!(0.0));
        assert_eq!(changed["threshold_critical_upper"], json!(40.0));
        assert_eq!(changed["created_at"], created["created_at"]);
        assert!(changed["updated_at"].as_str() >= created["updated_at"].as_str());

        // null clears a threshold, and only that one.
        let (status, cleared) = put(&app, &path, &admin, json!({"threshold_critical_upper": null})).await;
        assert_eq!(status, StatusCode::OK, "{cleared}");
        assert_eq!(cleared["threshold_critical_upper"], Value::Null);
        assert_eq!(cleared["threshold_warning_upper"], json!(30.0));
        assert_eq!(cleared["threshold_warning_lower"], json!(0.0));
        assert_eq!(cleared["threshold_critical_lower"], json!(-10.0));
        assert_eq!(cleared["unit"], "K");
        let (_, one) = app.get(&path, &admin).await;
        assert_eq!(one, cleared, "GET shows what PUT answered");

        // DELETE, then it is gone.
        let (status, body) = app.delete(&path, &admin).await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
        let (status, body) = app.get(&path, &admin).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(detail(&body), format!("Device {id} not found"));
        let (status, _) = app.delete(&path, &admin).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, list) = app.get("/api/devices", &admin).await;
        assert_eq!(names(&list), ["Alpha", "Zeta"]);
    }
}

on_both_stores! {
    async fn a_device_with_only_a_name_gets_the_defaults(app) {
        let admin = token("acme", &["owner"]);
        let (status, created) = app.post("/api/devices", &admin, json!({"name": "Bare"})).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["status"], "disconnected");
        assert_eq!(created["unit"], "");
        for field in ["site_id", "device_type", "threshold_warning_lower", "threshold_warning_upper", "threshold_critical_lower", "threshold_critical_upper"] {
            assert_eq!(created[field], Value::Null, "{field} in {created}");
        }
    }
}

on_both_stores! {
    async fn invalid_devices_are_refused_naming_the_field_and_nothing_is_stored(app) {
        let admin = token("acme", &["admin"]);
        let id = create_device(&app, &admin, json!({
            "name": "Boiler", "threshold_warning_lower": 0.0, "threshold_warning_upper": 30.0,
        })).await;

        // A taken name: 400 with detail, on create and on rename.
        let (status, body) = app.post("/api/devices", &admin, json!({"name": "Boiler"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(detail(&body), "Device with name 'Boiler' already exists");
        let other = create_device(&app, &admin, json!({"name": "Other"})).await;
        let (status, body) = put(&app, &format!("/api/devices/{other}"), &admin, json!({"name": "Boiler"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(detail(&body), "Device with name 'Boiler' already exists");

        // Invalid bodies: 422 naming the field.
        for (body, field) in [
            (json!({"name": "T", "threshold_warning_lower": 31.0, "threshold_warning_upper": 30.0}), "threshold_warning_lower:"),
            (json!({"name": "T", "threshold_critical_lower": 5.0, "threshold_warning_lower": 0.0}), "threshold_critical_lower:"),
            (json!({"name": "T", "threshold_warning_upper": 50.0, "threshold_critical_upper": 40.0}), "threshold_warning_upper:"),
            (json!({"name": "n".repeat(101)}), "name:"),
            (json!({"name": ""}), "name:"),
            (json!({"name": "T", "unit": "u".repeat(21)}), "unit:"),
            (json!({"name": "T", "status": "on"}), "status:"),
            (json!({"unit": "K"}), "name: required"),
        ] {
            let (status, answer) = app.post("/api/devices", &admin, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
            assert!(detail(&answer).starts_with(field), "{body} -> {answer}");
        }

        // A change whose merged thresholds are out of order is refused too.
        let path = format!("/api/devices/{id}");
        let (status, answer) = put(&app, &path, &admin, json!({"threshold_warning_lower": 40.0})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(detail(&answer).starts_with("threshold_warning_lower:"), "{answer}");
        for (body, field) in [
            (json!({"name": "n".repeat(101)}), "name:"),
            (json!({"unit": "u".repeat(21)}), "unit:"),
            (json!({"status": "on"}), "status:"),
            (json!({"name": null}), "name:"),
        ] {
            let (status, answer) = put(&app, &path, &admin, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
            assert!(detail(&answer).starts_with(field), "{body} -> {answer}");
        }

        // The limits themselves are accepted.
        create_device(&app, &admin, json!({"name": "n".repeat(100), "unit": "u".repeat(20)})).await;

        // Nothing refused was stored or changed.
        let (_, list) = app.get("/api/devices", &admin).await;
        assert_eq!(names(&list), ["Boiler", "Other", "n".repeat(100).as_str()]);
        let (_, device) = app.get(&path, &admin).await;
        assert_eq!(device["threshold_warning_lower"], json!(0.0));
        assert_eq!(device["unit"], "");
        assert_eq!(device["status"], "disconnected");
    }
}

on_both_stores! {
    async fn a_viewer_reads_devices_but_may_not_write_them(app) {
        let admin = token("acme", &["admin"]);
        let viewer = token("acme", &["viewer"]);
        let id = create_device(&app, &admin, json!({"name": "Boiler", "unit": "°C"})).await;
        let path = format!("/api/devices/{id}");
        let forbidden = json!({"detail": FORBIDDEN});

        for (status, body) in [
            app.post("/api/devices", &viewer, json!({"name": "Mine"})).await,
            put(&app, &path, &viewer, json!({"name": "Mine"})).await,
            app.delete(&path, &viewer).await,
        ] {
            assert_eq!((status, body), (StatusCode::FORBIDDEN, forbidden.clone()));
        }

        let (status, list) = app.get("/api/devices", &viewer).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(names(&list), ["Boiler"], "the refused create stored nothing");
        let (status, one) = app.get(&path, &viewer).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["name"], "Boiler", "the refused rename changed nothing");
        let (status, groups) = app.get(&format!("{path}/groups"), &viewer).await;
        assert_eq!((status, groups), (StatusCode::OK, json!([])));
    }
}

on_both_stores! {
    async fn a_devices_groups_are_listed_by_name(app) {
        let admin = token("acme", &["admin"]);
        let id = create_device(&app, &admin, json!({"name": "Boiler"})).await;
        let lonely = create_device(&app, &admin, json!({"name": "Lonely"})).await;
        for name in ["North", "East"] {
            let (status, body) = app.post("/api/groups", &admin, json!({"name": name, "device_ids": [id]})).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let (status, body) = app.post("/api/groups", &admin, json!({"name": "Empty"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, groups) = app.get(&format!("/api/devices/{id}/groups"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{groups}");
        assert_eq!(names(&groups), ["East", "North"]);
        for group in groups.as_array().unwrap() {
            assert!(is_uuid(&group["id"]), "{group}");
            assert_eq!(group["device_count"], 1, "{group}");
        }

        let (status, groups) = app.get(&format!("/api/devices/{lonely}/groups"), &admin).await;
        assert_eq!((status, groups), (StatusCode::OK, json!([])));
        let unknown = uuid::Uuid::new_v4();
        let (status, body) = app.get(&format!("/api/devices/{unknown}/groups"), &admin).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
}

on_both_stores! {
    async fn another_tenants_device_answers_404_and_stays_untouched(app) {
        let a = token("tenant-a", &["admin"]);
        let b = token("tenant-b", &["admin"]);
        let id = create_device(&app, &a, json!({"name": "A's", "unit": "°C"})).await;
        let path = format!("/api/devices/{id}");
        let (status, body) = app.post(&format!("{path}/readings"), &a, json!({"value": 1.0})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, list) = app.get("/api/devices", &b).await;
        assert_eq!((status, list), (StatusCode::OK, json!([])));
        for (what, (status, body)) in [
            ("GET", app.get(&path, &b).await),
            ("PUT", put(&app, &path, &b, json!({"name": "stolen"})).await),
            ("DELETE", app.delete(&path, &b).await),
            ("GET readings", app.get(&format!("{path}/readings"), &b).await),
            ("POST readings", app.post(&format!("{path}/readings"), &b, json!({"value": 2.0})).await),
            ("GET groups", app.get(&format!("{path}/groups"), &b).await),
        ] {
            assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
            assert_eq!(detail(&body), format!("Device {id} not found"), "{what}");
        }

        // B may use the same name.
        create_device(&app, &b, json!({"name": "A's"})).await;

        // A's device and reading are as they were.
        let (_, device) = app.get(&path, &a).await;
        assert_eq!(device["name"], "A's");
        let (_, readings) = app.get(&format!("{path}/readings"), &a).await;
        assert_eq!(readings["total"], 1, "{readings}");
        assert_eq!(readings["readings"][0]["value"], json!(1.0));
    }
}

on_both_stores! {
    async fn every_device_reading_and_group_endpoint_needs_a_token(app) {
        let id = uuid::Uuid::new_v4();
        for (method, path) in [
            (Method::GET, "/api/devices".to_owned()),
            (Method::POST, "/api/devices".to_owned()),
            (Method::GET, format!("/api/devices/{id}")),
            (Method::PUT, format!("/api/devices/{id}")),
            (Method::DELETE, format!("/api/devices/{id}")),
            (Method::GET, format!("/api/devices/{id}/groups")),
            (Method::GET, format!("/api/devices/{id}/readings")),
            (Method::POST, format!("/api/devices/{id}/readings")),
            (Method::POST, "/api/readings".to_owned()),
            (Method::GET, "/api/groups".to_owned()),
            (Method::POST, "/api/groups".to_owned()),
            (Method::GET, format!("/api/groups/{id}")),
            (Method::PUT, format!("/api/groups/{id}")),
            (Method::DELETE, format!("/api/groups/{id}")),
            (Method::GET, format!("/api/groups/{id}/readings")),
            (Method::GET, format!("/api/groups/{id}/alerts")),
            (Method::GET, "/customer/device-groups/grp-a/devices".to_owned()),
            (Method::PUT, format!("/customer/device-groups/grp-a/devices/{id}")),
            (Method::DELETE, format!("/customer/device-groups/grp-a/devices/{id}")),
        ] {
            let (status, body) = app.request(method.clone(), &path, None, Some(json!({}))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        }
    }
}

on_both_stores! {
    async fn racing_creates_of_one_device_name_store_one_and_refuse_the_rest_with_400(app) {
        let admin = token("acme", &["admin"]);
        let body = json!({"name": "Race"});
        let (r1, r2, r3, r4) = tokio::join!(
            app.post("/api/devices", &admin, body.clone()),
            app.post("/api/devices", &admin, body.clone()),
            app.post("/api/devices", &admin, body.clone()),
            app.post("/api/devices", &admin, body.clone()),
        );
        let answers = [r1, r2, r3, r4];
        assert_eq!(answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count(), 1, "{answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
            assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(detail(body), "Device with name 'Race' already exists");
        }
        let (_, list) = app.get("/api/devices", &admin).await;
        assert_eq!(names(&list), ["Race"]);
    }
}
